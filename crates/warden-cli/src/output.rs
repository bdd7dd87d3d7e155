//! Small helpers for printing data on stdout.

use std::io::Write;

/// Print `value` as pretty JSON on stdout.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `text` safe for a terminal, its line breaks kept (every other control
/// character escaped).
pub fn safe_lines(text: &str) -> String {
    text.split('\n')
        .map(warden::terminal_safe)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Print rows as an aligned table; the first row is the header. Cells are
/// escaped for the terminal.
pub fn table(rows: &[Vec<String>]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| warden::terminal_safe(c)).collect())
        .collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
