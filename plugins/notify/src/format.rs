//! The three wire formats: Slack Block Kit, a Microsoft Teams Adaptive Card
//! for incoming webhooks, and a plain JSON document.

use serde_json::{Value, json};

use crate::{Link, Severity};

/// Slack caps a header at 150 characters, a section text at 3000, a field
/// at 2000 and a section at 10 fields.
const SLACK_HEADER_MAX: usize = 150;
const SLACK_SECTION_MAX: usize = 3000;
const SLACK_FIELD_MAX: usize = 2000;
const SLACK_FIELDS_PER_SECTION: usize = 10;

/// What every format renders.
pub struct Message<'a> {
    pub title: &'a str,
    pub text: &'a str,
    pub severity: Severity,
    pub fields: &'a [(String, String)],
    pub link: Option<&'a Link>,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Ok => "ok",
        }
    }

    fn slack_emoji(self) -> &'static str {
        match self {
            Severity::Critical => ":red_circle:",
            Severity::Warning => ":warning:",
            Severity::Info => ":information_source:",
            Severity::Ok => ":white_check_mark:",
        }
    }

    /// Adaptive Card text colour.
    fn teams_color(self) -> &'static str {
        match self {
            Severity::Critical => "Attention",
            Severity::Warning => "Warning",
            Severity::Info => "Accent",
            Severity::Ok => "Good",
        }
    }
}

/// Slack Block Kit: `text` is the notification fallback, `blocks` the
/// message (header, markdown section, field sections, context).
pub fn slack(m: &Message) -> Value {
    let fallback = format!("[{}] {}", m.severity.as_str().to_uppercase(), m.title);
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(&format!("{} {}", m.severity.slack_emoji(), m.title), SLACK_HEADER_MAX),
                "emoji": true,
            },
        }),
        json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&mrkdwn(m.text), SLACK_SECTION_MAX)},
        }),
    ];
    for chunk in m.fields.chunks(SLACK_FIELDS_PER_SECTION) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(k, v)| {
                let text = format!("*{}*\n{}", escape(k), escape(v));
                json!({"type": "mrkdwn", "text": truncate(&text, SLACK_FIELD_MAX)})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let mut context = format!("Severity: *{}*", m.severity.as_str());
    if let Some(link) = m.link {
        context.push_str(&format!(
            " | <{}|{}>",
            escape(&link.url),
            escape(&link.title).replace('|', "/")
        ));
    }
    context.push_str(" | sent by warden");
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context}],
    }));
    json!({"text": fallback, "blocks": blocks})
}

/// A Teams incoming-webhook message carrying one Adaptive Card 1.4.
pub fn teams(m: &Message) -> Value {
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": m.title,
            "size": "Large",
            "weight": "Bolder",
            "color": m.severity.teams_color(),
            "wrap": true,
        }),
        json!({"type": "TextBlock", "text": teams_markdown(m.text), "wrap": true}),
    ];
    if !m.fields.is_empty() {
        let facts: Vec<Value> = m
            .fields
            .iter()
            .map(|(k, v)| json!({"title": k, "value": v}))
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    body.push(json!({
        "type": "TextBlock",
        "text": format!("Severity: {} | sent by warden", m.severity.as_str()),
        "isSubtle": true,
        "size": "Small",
        "wrap": true,
    }));
    let mut card = json!({
        "type": "AdaptiveCard",
        "version": "1.4",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "msteams": {"width": "Full"},
        "body": body,
    });
    if let Some(link) = m.link {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": link.title, "url": link.url}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// A plain JSON document for any other receiver.
pub fn webhook(m: &Message) -> Value {
    let fields: serde_json::Map<String, Value> = m
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "title": m.title,
        "text": m.text,
        "severity": m.severity.as_str(),
        "fields": fields,
        "link": m.link.map(|l| json!({"title": l.title, "url": l.url})),
        "source": "warden",
    })
}

/// At most `max` characters, with an ellipsis when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Slack treats `&`, `<` and `>` as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Common markdown to Slack mrkdwn: `**b**` to `*b*`, `*i*` to `_i_`,
/// `~~s~~` to `~s~`, `[t](u)` to `<u|t>`, headings to bold lines, list
/// markers to bullets; code spans and fenced blocks are kept.
pub fn mrkdwn(markdown: &str) -> String {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push(escape(line));
            continue;
        }
        if fenced {
            out.push(escape(line));
            continue;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        let body = line.trim_start();
        let converted = if let Some(heading) = heading(body) {
            format!("*{}*", inline(&escape(heading)))
        } else if let Some(item) = body.strip_prefix("- ").or_else(|| body.strip_prefix("* ")) {
            format!("{indent}• {}", inline(&escape(item)))
        } else {
            format!("{indent}{}", inline(&escape(body)))
        };
        out.push(converted);
    }
    out.join("\n")
}

/// Adaptive Card text has no headings; render them bold.
fn teams_markdown(markdown: &str) -> String {
    markdown
        .lines()
        .map(|line| match heading(line.trim_start()) {
            Some(h) => format!("**{h}**"),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn heading(line: &str) -> Option<&str> {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    if (1..=6).contains(&hashes) {
        line[hashes..].strip_prefix(' ').map(str::trim)
    } else {
        None
    }
}

/// Inline spans of one (already escaped) line.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '`'
            && let Some(end) = rest[1..].find('`')
        {
            out.push_str(&rest[..end + 2]);
            rest = &rest[end + 2..];
            continue;
        }
        if let Some((marker, to)) = [("**", '*'), ("__", '*'), ("~~", '~')]
            .into_iter()
            .find(|(m, _)| rest.starts_with(m))
            && let Some(end) = rest[2..].find(marker)
            && end > 0
        {
            out.push(to);
            out.push_str(&inline(&rest[2..2 + end]));
            out.push(to);
            rest = &rest[end + 4..];
            continue;
        }
        if c == '*'
            && rest[1..].starts_with(|n: char| !n.is_whitespace() && n != '*')
            && let Some(end) = rest[1..].find('*')
        {
            out.push('_');
            out.push_str(&inline(&rest[1..1 + end]));
            out.push('_');
            rest = &rest[end + 2..];
            continue;
        }
        if c == '['
            && let Some(close) = rest.find("](")
            && let Some(end) = rest[close + 2..].find(')')
        {
            let label = &rest[1..close];
            let url = &rest[close + 2..close + 2 + end];
            if !label.contains('[') && !url.contains(char::is_whitespace) && !url.is_empty() {
                out.push_str(&format!("<{url}|{}>", label.replace('|', "/")));
                rest = &rest[close + 3 + end..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}
