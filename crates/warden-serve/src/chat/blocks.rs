//! Slack messages: approval requests as Block Kit, their outcomes, and
//! the `/warden` answers, every piece of outside text escaped for mrkdwn
//! and clipped to Block Kit's limits.

use serde_json::{Value, json};
use warden::Approval;

use super::copilot;
use super::text::{mrkdwn, plain};
use crate::approvals::{Closing, Pending};

/// `action_id`s of the two buttons; their `value` is the approval id.
pub(crate) const APPROVE: &str = "warden-approve";
pub(crate) const REJECT: &str = "warden-reject";

/// Block Kit's limits (characters).
const SECTION_MAX: usize = 3000;
const HEADER_MAX: usize = 150;

/// The message text Slack shows in notifications (mrkdwn, escaped).
pub(crate) fn fallback(p: &Pending) -> String {
    format!(
        "Approval needed: {} in {} for task {}",
        mrkdwn(&p.request.tool, 100),
        mrkdwn(&p.request.env, 50),
        mrkdwn(&p.request.task_id, 200)
    )
}

/// The request as Block Kit: what, where, for whom, why, the arguments;
/// then the buttons, or the outcome once there is one.
pub(crate) fn request_blocks(p: &Pending, outcome: Option<&str>) -> Value {
    let r = &p.request;
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text",
            "text": plain(&format!("Approval needed: {}", r.tool), HEADER_MAX)}}),
        section(format!(
            "*{}* ({}) in *{}* on behalf of *{}*\nTask `{}`, step `{}`",
            mrkdwn(&r.tool, 100),
            mrkdwn(&r.effect, 20),
            mrkdwn(&r.env, 50),
            mrkdwn(&r.principal, 200),
            mrkdwn(&r.task_id, 200),
            mrkdwn(&r.step_id, 100),
        )),
    ];
    if !r.why.trim().is_empty() {
        blocks.push(section(format!("*Why:* {}", mrkdwn(&r.why, 1000))));
    }
    if !r.reasons.is_empty() {
        let mut text = String::from("*Policy:*");
        for reason in r.reasons.iter().take(10) {
            let line = format!("\n• {}", mrkdwn(reason, 600));
            if text.chars().count() + line.chars().count() > SECTION_MAX {
                break;
            }
            text.push_str(&line);
        }
        blocks.push(section(text));
    }
    let args = serde_json::to_string(&r.args).unwrap_or_default();
    blocks.push(section(format!(
        "*Arguments:*\n```{}```",
        mrkdwn(&args, 2500)
    )));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
        "text": format!("Approval `{}` · expires {}", mrkdwn(&p.id, 64), mrkdwn(&p.expires_at, 40))}]}));
    match outcome {
        None => blocks.push(json!({
            "type": "actions",
            "block_id": "warden-approval",
            "elements": [
                {"type": "button", "action_id": APPROVE, "style": "primary",
                 "text": {"type": "plain_text", "text": "Approve"}, "value": p.id},
                {"type": "button", "action_id": REJECT, "style": "danger",
                 "text": {"type": "plain_text", "text": "Reject"}, "value": p.id},
            ],
        })),
        Some(text) => blocks.push(section(text.to_string())),
    }
    Value::Array(blocks)
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// What became of the request, in mrkdwn (escaped).
pub(crate) fn outcome(p: &Pending, answer: &Approval, how: Closing) -> String {
    let note = answer.note.as_deref().unwrap_or_default();
    let note = match how {
        Closing::Answered { via } => super::said(note, via),
        _ => note,
    };
    let note = if note.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", mrkdwn(note, 500))
    };
    match how {
        Closing::Answered { via } => format!(
            "{} by *{}* via {}{note}\n_The approval policy has the last word; see task `{}`._",
            if answer.approved {
                ":white_check_mark: Approved"
            } else {
                ":x: Rejected"
            },
            mrkdwn(&answer.by, 100),
            via,
            mrkdwn(&p.request.task_id, 200),
        ),
        Closing::Expired => format!(":hourglass: Expired{note}"),
        Closing::Shutdown => format!(":stop_sign: Not answered{note}"),
    }
}

pub(crate) const HELP: &str = "*/warden status*: tasks and pending approvals\n*/warden similar <text>*: past incidents like it\n*/warden <question>*: start an investigation (approvals come here as buttons)";

pub(crate) fn status_text(s: &copilot::Status) -> String {
    let mut text = format!(
        "*warden*: {} task(s) running, {} waiting, {} approval(s) pending",
        s.running,
        s.waiting,
        s.approvals.len()
    );
    for p in s.approvals.iter().take(10) {
        let r = &p.request;
        text.push_str(&format!(
            "\n• `{}` ({}) in *{}* for task `{}`, step `{}`; approval `{}` expires {}",
            mrkdwn(&r.tool, 100),
            mrkdwn(&r.effect, 20),
            mrkdwn(&r.env, 50),
            mrkdwn(&r.task_id, 100),
            mrkdwn(&r.step_id, 64),
            mrkdwn(&p.id, 32),
            mrkdwn(&p.expires_at, 40),
        ));
    }
    if s.approvals.len() > 10 {
        text.push_str(&format!("\n… and {} more", s.approvals.len() - 10));
    }
    text
}

pub(crate) fn similar_text(q: &str, hits: &[copilot::Similar]) -> String {
    if hits.is_empty() {
        return format!(
            "No past incidents like “{}” (is `[agent] memory` configured?)",
            mrkdwn(q, 200)
        );
    }
    let mut text = format!("Past incidents like “{}”:", mrkdwn(q, 200));
    for h in hits {
        text.push_str(&format!(
            "\n• *{}* {} ({:.2})",
            mrkdwn(&h.id, 64),
            mrkdwn(&h.title, 200),
            h.score
        ));
        if let Some(r) = &h.resolution {
            text.push_str(&format!(": resolved by {}", mrkdwn(r, 300)));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use warden::ApprovalRequest;

    use super::*;

    fn huge() -> Pending {
        let long = "<!here> & ".repeat(5000);
        Pending {
            id: "0123456789abcdef0123456789abcdef".into(),
            asked_at: "2026-12-05T10:00:00Z".into(),
            expires_at: "2026-12-05T10:15:00Z".into(),
            request: ApprovalRequest {
                task_id: long.clone(),
                step_id: long.clone(),
                tool: long.clone(),
                effect: "mutating".into(),
                env: long.clone(),
                principal: long.clone(),
                args: json!({"blob": long.clone()}),
                reasons: vec![long.clone(); 40],
                why: long,
            },
        }
    }

    #[test]
    fn every_field_of_an_oversized_request_fits_block_kits_limits_escaped() {
        let p = huge();
        let answer = Approval::no("timeout", "<!channel> ".repeat(1000));
        for blocks in [
            request_blocks(&p, None),
            request_blocks(&p, Some(&outcome(&p, &answer, Closing::Expired))),
        ] {
            for b in blocks.as_array().unwrap() {
                let text = b["text"]["text"]
                    .as_str()
                    .or_else(|| b["elements"][0]["text"].as_str())
                    .unwrap_or_default();
                let limit = if b["type"] == "header" { 150 } else { 3000 };
                assert!(text.chars().count() <= limit, "{} over {limit}", b["type"]);
                if b["type"] != "header" {
                    assert!(!text.contains('<'), "unescaped: {text}");
                }
            }
        }
        assert!(fallback(&p).chars().count() <= 400);
        assert!(!fallback(&p).contains('<'));
    }
}
