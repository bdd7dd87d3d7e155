//! Reading incidents from JSONL or CSV files, with column auto-detection.

use std::io::BufRead;
use std::path::Path;

use jiff::Timestamp;

use crate::{Incident, MemoryError};

/// Which input columns (CSV headers or JSON keys) hold which field.
/// `None` means auto-detect from common names, case- and punctuation-blind:
/// `id`/`Issue id`/`key`, `title`/`Summary`, `body`/`Description`, and
/// `service`, `labels`, `severity`/`priority`, `opened`/`created`,
/// `resolved`, `resolution`, `plan` for the rest.
///
/// ```
/// use warden_memory::Columns;
///
/// let mut cols = Columns::default();
/// cols.id = Some("ticket_no".into());
/// assert!(cols.title.is_none(), "still auto-detected");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Columns {
    /// Column of the record id.
    pub id: Option<String>,
    /// Column of the title.
    pub title: Option<String>,
    /// Column of the body.
    pub body: Option<String>,
}

const ID_NAMES: &[&str] = &[
    "id",
    "issueid",
    "key",
    "issuekey",
    "incidentid",
    "ticketid",
    "number",
];
const TITLE_NAMES: &[&str] = &["title", "summary", "subject", "name", "shortdescription"];
const BODY_NAMES: &[&str] = &[
    "body",
    "description",
    "text",
    "message",
    "details",
    "content",
];
const SERVICE_NAMES: &[&str] = &["service", "component", "components", "app", "application"];
const LABEL_NAMES: &[&str] = &["labels", "tags", "label"];
const SEVERITY_NAMES: &[&str] = &["severity", "priority", "sev"];
const OPENED_NAMES: &[&str] = &[
    "openedat",
    "opened",
    "created",
    "createdat",
    "timestamp",
    "time",
];
const RESOLVED_NAMES: &[&str] = &["resolvedat", "resolved", "closedat", "closed"];
const RESOLUTION_NAMES: &[&str] = &["resolution", "resolutiontext", "fix", "remediation"];
const PLAN_NAMES: &[&str] = &["plan"];

fn canon(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Resolved positions (CSV) or keys (JSON) of each field.
#[derive(Debug)]
struct Layout<K> {
    id: K,
    title: Option<K>,
    body: Option<K>,
    service: Option<K>,
    labels: Option<K>,
    severity: Option<K>,
    opened: Option<K>,
    resolved: Option<K>,
    resolution: Option<K>,
    plan: Option<K>,
}

/// Finds the field for `wanted` (explicit) or the first of `names` among `headers`.
fn pick(headers: &[String], wanted: Option<&str>, names: &[&str]) -> Result<Option<usize>, String> {
    if let Some(w) = wanted {
        return headers
            .iter()
            .position(|h| h == w)
            .or_else(|| headers.iter().position(|h| canon(h) == canon(w)))
            .map(Some)
            .ok_or_else(|| format!("no column named {w:?} (columns: {})", headers.join(", ")));
    }
    Ok(names
        .iter()
        .find_map(|n| headers.iter().position(|h| canon(h) == *n)))
}

fn layout(headers: &[String], cols: &Columns) -> Result<Layout<usize>, String> {
    let id = pick(headers, cols.id.as_deref(), ID_NAMES)?.ok_or_else(|| {
        format!(
            "no id column (looked for id, Issue id, key; columns: {}); name one with --id-col",
            headers.join(", ")
        )
    })?;
    let title = pick(headers, cols.title.as_deref(), TITLE_NAMES)?;
    let body = pick(headers, cols.body.as_deref(), BODY_NAMES)?;
    if title.is_none() && body.is_none() {
        return Err(format!(
            "no title or body column (looked for title, Summary, body, Description; columns: {}); name one with --title-col or --body-col",
            headers.join(", ")
        ));
    }
    Ok(Layout {
        id,
        title,
        body,
        service: pick(headers, None, SERVICE_NAMES)?,
        labels: pick(headers, None, LABEL_NAMES)?,
        severity: pick(headers, None, SEVERITY_NAMES)?,
        opened: pick(headers, None, OPENED_NAMES)?,
        resolved: pick(headers, None, RESOLVED_NAMES)?,
        resolution: pick(headers, None, RESOLUTION_NAMES)?,
        plan: pick(headers, None, PLAN_NAMES)?,
    })
}

/// Reads every incident of a JSONL (`.jsonl`, `.ndjson`, `.json`) or CSV
/// file; other extensions are sniffed (a first `{` means JSONL).
///
/// The whole file is validated before anything is returned, so a caller that
/// ingests the result never writes half a file because of a bad line.
///
/// # Errors
/// [`MemoryError::Malformed`] with the 1-based line of the first bad record
/// (the line where a multi-line CSV record starts), [`MemoryError::Io`] when
/// the file cannot be read.
pub fn read_incidents(path: &Path, columns: &Columns) -> Result<Vec<Incident>, MemoryError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let jsonl = match ext.as_str() {
        "jsonl" | "ndjson" | "json" => true,
        "csv" | "tsv" => false,
        _ => sniff_json(path)?,
    };
    if jsonl {
        read_jsonl(path, columns)
    } else {
        read_csv(path, columns, ext == "tsv")
    }
}

fn sniff_json(path: &Path) -> Result<bool, MemoryError> {
    let file = open_regular(path)?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| MemoryError::io(path, e))?;
        let t = line.trim_start();
        if !t.is_empty() {
            return Ok(t.starts_with('{'));
        }
    }
    Ok(false)
}

fn malformed(path: &Path, line: u64, reason: impl Into<String>) -> MemoryError {
    MemoryError::Malformed {
        origin: path.display().to_string(),
        line,
        reason: reason.into(),
    }
}

/// Open `path` if it is a regular file (symlinks followed): a FIFO or a
/// device named like an export would block or never end.
fn open_regular(path: &Path) -> Result<fs_err::File, MemoryError> {
    let meta = fs_err::metadata(path).map_err(|e| MemoryError::io(path, e))?;
    if !meta.is_file() {
        return Err(malformed(path, 0, "not a regular file"));
    }
    fs_err::File::open(path).map_err(|e| MemoryError::io(path, e))
}

fn read_csv(path: &Path, columns: &Columns, tsv: bool) -> Result<Vec<Incident>, MemoryError> {
    let file = open_regular(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if tsv { b'\t' } else { b',' })
        .from_reader(std::io::BufReader::new(file));
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| malformed(path, 1, e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    let lay = layout(&headers, columns).map_err(|r| malformed(path, 1, r))?;
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            malformed(path, line, e.to_string())
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let get = |k: Option<usize>| {
            k.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let fields = Fields {
            id: get(Some(lay.id)).map(str::to_owned),
            title: get(lay.title),
            body: get(lay.body),
            service: get(lay.service),
            labels: get(lay.labels).map(split_labels).unwrap_or_default(),
            severity: get(lay.severity),
            opened: get(lay.opened),
            resolved: get(lay.resolved),
            resolution: get(lay.resolution),
            plan: get(lay.plan)
                .map(|p| serde_json::from_str(p).map_err(|e| format!("plan is not JSON: {e}")))
                .transpose()
                .map_err(|r| malformed(path, line, r))?,
        };
        out.push(
            fields
                .into_incident()
                .map_err(|r| malformed(path, line, r))?,
        );
    }
    Ok(out)
}

fn read_jsonl(path: &Path, columns: &Columns) -> Result<Vec<Incident>, MemoryError> {
    let file = open_regular(path)?;
    let mut reader = std::io::BufReader::new(file);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for n in 0.. {
        let line_no = n as u64 + 1;
        buf.clear();
        let read = std::io::Read::take(&mut reader, crate::MAX_RECORD_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| MemoryError::io(path, e))?;
        if read == 0 {
            break;
        }
        if buf.len() > crate::MAX_RECORD_BYTES {
            return Err(malformed(
                path,
                line_no,
                format!(
                    "the record is longer than the limit of {} bytes",
                    crate::MAX_RECORD_BYTES
                ),
            ));
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| malformed(path, line_no, format!("invalid JSON: {e}")))?;
        let serde_json::Value::Object(obj) = value else {
            return Err(malformed(path, line_no, "expected a JSON object"));
        };
        let keys: Vec<String> = obj.keys().cloned().collect();
        let lay = layout(&keys, columns).map_err(|r| malformed(path, line_no, r))?;
        let get = |k: Option<usize>| k.and_then(|i| obj.get(&keys[i]));
        let text = |k: Option<usize>| -> Option<String> {
            match get(k)? {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
                other => Some(other.to_string()),
            }
        };
        let labels = match get(lay.labels) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect(),
            Some(serde_json::Value::String(s)) => split_labels(s),
            _ => Vec::new(),
        };
        let plan = match get(lay.plan) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(
                serde_json::from_str(s)
                    .map_err(|e| malformed(path, line_no, format!("plan is not JSON: {e}")))?,
            ),
            Some(other) => Some(other.clone()),
        };
        let (id, title, body) = (text(Some(lay.id)), text(lay.title), text(lay.body));
        let (service, severity) = (text(lay.service), text(lay.severity));
        let (opened, resolved, resolution) =
            (text(lay.opened), text(lay.resolved), text(lay.resolution));
        let fields = Fields {
            id,
            title: title.as_deref(),
            body: body.as_deref(),
            service: service.as_deref(),
            labels,
            severity: severity.as_deref(),
            opened: opened.as_deref(),
            resolved: resolved.as_deref(),
            resolution: resolution.as_deref(),
            plan,
        };
        out.push(
            fields
                .into_incident()
                .map_err(|r| malformed(path, line_no, r))?,
        );
    }
    Ok(out)
}

fn split_labels(s: &str) -> Vec<String> {
    s.split([',', ';'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

struct Fields<'a> {
    id: Option<String>,
    title: Option<&'a str>,
    body: Option<&'a str>,
    service: Option<&'a str>,
    labels: Vec<String>,
    severity: Option<&'a str>,
    opened: Option<&'a str>,
    resolved: Option<&'a str>,
    resolution: Option<&'a str>,
    plan: Option<serde_json::Value>,
}

impl Fields<'_> {
    fn into_incident(self) -> Result<Incident, String> {
        let id = self.id.ok_or("the id is empty")?;
        if self.title.is_none() && self.body.is_none() {
            return Err(format!("record {id:?} has neither a title nor a body"));
        }
        Ok(Incident {
            id,
            title: self.title.unwrap_or_default().to_owned(),
            body: self.body.unwrap_or_default().to_owned(),
            service: self.service.map(str::to_owned),
            labels: self.labels,
            severity: self.severity.map(str::to_owned),
            opened_at: self.opened.map(parse_time).transpose()?,
            resolved_at: self.resolved.map(parse_time).transpose()?,
            resolution: self.resolution.map(str::to_owned),
            plan: self.plan,
        })
    }
}

/// Civil formats tried after RFC 3339, read as UTC. The JIRA export format
/// (`30/Sep/21 17:20`) comes first because ticket dumps are the common input.
const TIME_FORMATS: &[&str] = &[
    "%d/%b/%y %H:%M",
    "%d/%b/%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%d %b %Y %H:%M:%S",
];

/// Parses an RFC 3339 timestamp, a civil date-time (UTC), a date, one of
/// [`TIME_FORMATS`] or Unix seconds/milliseconds.
pub(crate) fn parse_time(s: &str) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let civil = s
        .parse::<jiff::civil::DateTime>()
        .ok()
        .or_else(|| {
            s.parse::<jiff::civil::Date>()
                .ok()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .or_else(|| {
            TIME_FORMATS
                .iter()
                .find_map(|f| jiff::civil::DateTime::strptime(f, s).ok())
        });
    if let Some(dt) = civil {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| format!("time {s:?} out of range: {e}"));
    }
    if let Ok(n) = s.parse::<i64>() {
        // Past 10^11 seconds (year 5138) the number is surely milliseconds.
        let t = if n.abs() >= 100_000_000_000 {
            Timestamp::from_millisecond(n)
        } else {
            Timestamp::from_second(n)
        };
        return t.map_err(|e| format!("time {s:?} out of range: {e}"));
    }
    Err(format!(
        "cannot read time {s:?} (expected RFC 3339, YYYY-MM-DD[ HH:MM[:SS]], DD/Mon/YY HH:MM or Unix seconds)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        fs_err::write(&path, text).unwrap();
        path
    }

    #[test]
    fn detects_jira_style_csv_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "bugs.csv",
            "Summary,Issue id,Priority,Resolution,Created,Description\n\
             NN crash,101,Major,Fixed,30/Sep/21 17:20,\"stack\ntrace\"\n\
             DN slow,102,Minor,,,disk\n",
        );
        let got = read_incidents(&path, &Columns::default()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].id, "101");
        assert_eq!(got[0].title, "NN crash");
        assert_eq!(got[0].body, "stack\ntrace");
        assert_eq!(got[0].severity.as_deref(), Some("Major"));
        assert_eq!(
            got[0].opened_at.unwrap().to_string(),
            "2021-09-30T17:20:00Z"
        );
        assert_eq!(got[1].resolution, None);
    }

    #[test]
    fn explicit_columns_override_detection() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "t.csv", "ref,headline,id\nA-1,hello,9\n");
        let cols = Columns {
            id: Some("ref".into()),
            title: Some("headline".into()),
            body: None,
        };
        let got = read_incidents(&path, &cols).unwrap();
        assert_eq!(
            (got[0].id.as_str(), got[0].title.as_str()),
            ("A-1", "hello")
        );
    }

    #[test]
    fn reads_jsonl_with_numbers_arrays_and_plans() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "i.jsonl",
            "{\"id\": 7, \"title\": \"disk full\", \"labels\": [\"db\", \"prod\"], \"plan\": {\"steps\": []}, \"opened_at\": \"2024-05-01T10:00:00Z\"}\n\n\
             {\"key\": \"X\", \"description\": \"only a body\", \"labels\": \"a, b\"}\n",
        );
        let got = read_incidents(&path, &Columns::default()).unwrap();
        assert_eq!(got[0].id, "7");
        assert_eq!(got[0].labels, vec!["db", "prod"]);
        assert_eq!(got[0].plan, Some(serde_json::json!({"steps": []})));
        assert_eq!(got[1].id, "X");
        assert_eq!(got[1].labels, vec!["a", "b"]);
    }

    #[test]
    fn reports_the_line_of_a_malformed_jsonl_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "bad.jsonl",
            "{\"id\":1,\"title\":\"a\"}\n{\"id\":2,\"title\":\n",
        );
        let err = read_incidents(&path, &Columns::default()).unwrap_err();
        match err {
            MemoryError::Malformed { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn reports_the_line_of_a_csv_record_without_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "bad.csv", "id,title\n1,a\n2,b\n,c\n");
        let err = read_incidents(&path, &Columns::default())
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("bad.csv:4: the id is empty"), "{err}");
    }

    #[test]
    fn a_file_without_an_id_column_names_the_flag_to_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "x.csv", "ref,title\n1,a\n");
        let err = read_incidents(&path, &Columns::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--id-col"), "{err}");
    }

    #[test]
    fn parses_common_time_formats_and_rejects_others() {
        for (input, want) in [
            ("2024-05-01T10:00:00+02:00", "2024-05-01T08:00:00Z"),
            ("2024-05-01 10:00:00", "2024-05-01T10:00:00Z"),
            ("2024-05-01", "2024-05-01T00:00:00Z"),
            ("20/Jul/22 20:51", "2022-07-20T20:51:00Z"),
            ("1700000000", "2023-11-14T22:13:20Z"),
            ("1700000000000", "2023-11-14T22:13:20Z"),
        ] {
            assert_eq!(parse_time(input).unwrap().to_string(), want, "{input}");
        }
        assert!(parse_time("next tuesday").is_err());
    }
}
