//! Microsoft Teams through webhooks: approval requests (and what became of
//! them) posted as Adaptive Cards to an incoming webhook, answers taken
//! from an outgoing webhook at `POST /v1/chat/teams/actions`.
//!
//! Incoming-webhook cards cannot carry buttons that call back
//! (`Action.Execute` needs a registered bot), so the card says what to
//! type: `@warden approve <id>`. Teams signs what it sends to an outgoing
//! webhook with `Authorization: HMAC <base64 HMAC-SHA256 of the body under
//! the base64-decoded security token>`; the scheme has no timestamp header,
//! so the activity's own `timestamp` (inside the signed body) must be within
//! five minutes and a signature is taken once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use warden::Approval;

use super::copilot::{self, Command};
use super::text::{clip, teams as md};
use super::verify::{ReplayGuard, WINDOW_SECS, check_teams};
use super::{TeamsSection, post_json, users};
use crate::approvals::{ApprovalEvent, Closing, Pending};
use crate::auth::Identity;
use crate::error::ServeError;
use crate::server::State;

/// How many hex digits of an approval id a card shows and a reply must give.
const SHORT_ID: usize = 8;

/// The Teams side: the incoming webhook, the outgoing webhook's key, the
/// user map.
pub(crate) struct Teams {
    http: reqwest::Client,
    webhook_url: Option<String>,
    key: Vec<u8>,
    users: BTreeMap<String, Identity>,
    replay: ReplayGuard,
}

impl std::fmt::Debug for Teams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teams")
            .field("cards", &self.webhook_url.is_some())
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Teams {
    pub(crate) fn load(
        t: &TeamsSection,
        base: &Path,
        http: reqwest::Client,
    ) -> Result<Teams, ServeError> {
        let token = t.outgoing_secret.read(base, "chat.teams.outgoing_secret")?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .map_err(|_| ServeError::Config {
                reason:
                    "chat.teams.outgoing_secret: not base64 (paste the security token Teams showed)"
                        .into(),
            })?;
        let webhook_url = t
            .webhook_url
            .as_ref()
            .map(|w| w.read(base, "chat.teams.webhook_url"))
            .transpose()?;
        if let Some(url) = &webhook_url
            && !url.starts_with("https://")
        {
            return Err(ServeError::Config {
                reason: "chat.teams.webhook_url must be an https:// URL".into(),
            });
        }
        Ok(Teams {
            http,
            webhook_url,
            key,
            users: users(&t.approvers),
            replay: ReplayGuard::default(),
        })
    }

    /// Show an approval event: a card when asked, another when closed.
    pub(crate) async fn on_event(&self, event: &ApprovalEvent) {
        let Some(url) = &self.webhook_url else {
            return;
        };
        let (id, card) = match event {
            ApprovalEvent::Asked(p) => (&p.id, request_card(p)),
            ApprovalEvent::Closed {
                pending,
                answer,
                how,
            } => (&pending.id, closed_card(pending, answer, *how)),
        };
        match post_json(&self.http, url, None, &card).await {
            Ok(a) if (200..300).contains(&a.status) => {}
            Ok(a) => tracing::warn!(approval = %id, status = a.status, "Teams refused the card"),
            Err(e) => {
                tracing::warn!(approval = %id, error = %e, "could not post the card to Teams")
            }
        }
    }
}

fn adaptive(body: Vec<Value>) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    })
}

fn text_block(text: String) -> Value {
    json!({"type": "TextBlock", "text": text, "wrap": true})
}

fn short(id: &str) -> &str {
    id.get(..SHORT_ID).unwrap_or(id)
}

fn request_card(p: &Pending) -> Value {
    let r = &p.request;
    let fact = |title: &str, value: String| json!({"title": title, "value": value});
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
            "text": format!("Approval needed: {}", md(&r.tool, 100))}),
        json!({"type": "FactSet", "facts": [
            fact("Tool", format!("{} ({})", md(&r.tool, 100), md(&r.effect, 20))),
            fact("Environment", md(&r.env, 50)),
            fact("On behalf of", md(&r.principal, 200)),
            fact("Task", md(&r.task_id, 200)),
            fact("Step", md(&r.step_id, 100)),
            fact("Expires", md(&p.expires_at, 40)),
        ]}),
    ];
    if !r.why.trim().is_empty() {
        body.push(text_block(format!("Why: {}", md(&r.why, 1000))));
    }
    for reason in r.reasons.iter().take(10) {
        body.push(text_block(format!("Policy: {}", md(reason, 600))));
    }
    let args = serde_json::to_string(&r.args).unwrap_or_default();
    body.push(
        json!({"type": "TextBlock", "wrap": true, "fontType": "Monospace",
        "text": md(&args, 2500)}),
    );
    body.push(text_block(format!(
        "Answer in this channel by mentioning warden's outgoing webhook: **approve {id}** or **reject {id} <why>**",
        id = short(&p.id)
    )));
    adaptive(body)
}

fn closed_card(p: &Pending, answer: &Approval, how: Closing) -> Value {
    let what = format!(
        "Approval {} ({} in {}, task {})",
        short(&p.id),
        md(&p.request.tool, 100),
        md(&p.request.env, 50),
        md(&p.request.task_id, 200)
    );
    let note = answer.note.as_deref().unwrap_or_default();
    let note = match how {
        Closing::Answered { via } => super::said(note, via),
        _ => note,
    };
    let note = if note.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", md(note, 500))
    };
    let outcome = match how {
        Closing::Answered { via } => format!(
            "{} by {} via {via}{note}. The approval policy has the last word; see the task's timeline.",
            if answer.approved {
                "approved"
            } else {
                "rejected"
            },
            md(&answer.by, 100)
        ),
        Closing::Expired => format!("expired{note}"),
        Closing::Shutdown => format!("not answered{note}"),
    };
    adaptive(vec![text_block(format!("{what}: {outcome}"))])
}

/// A reply in the conversation.
fn reply(text: String) -> Response {
    axum::Json(json!({"type": "message", "text": text})).into_response()
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(json!({"error": why}))).into_response()
}

/// The words typed after the mention: tags (`<at>warden</at>`, markup)
/// removed, the few entities Teams uses decoded.
fn words(text: &str) -> String {
    let mut out = String::new();
    let mut in_at = false;
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        if !in_at {
            out.push_str(&rest[..open]);
        }
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim().to_ascii_lowercase();
        if tag == "at" || tag.starts_with("at ") {
            in_at = true;
        } else if tag == "/at" {
            in_at = false;
        }
        out.push(' ');
        rest = &rest[open + close + 1..];
    }
    if !in_at {
        out.push_str(rest);
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The pending approval whose id starts with `given` (at least
/// [`SHORT_ID`] hex digits, matching one only).
fn find(state: &State, given: &str) -> Result<Pending, String> {
    let given = given.to_ascii_lowercase();
    if given.len() < SHORT_ID || given.len() > 32 || !given.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "give at least {SHORT_ID} hex digits of the approval id, as the card shows"
        ));
    }
    let matches: Vec<Pending> = state
        .approvals
        .list()
        .into_iter()
        .filter(|p| p.id.starts_with(&given))
        .collect();
    match matches.len() {
        1 => matches.into_iter().next().ok_or_else(String::new),
        0 => Err(format!(
            "no approval {} is waiting (answered, expired, or never asked)",
            md(&given, 32)
        )),
        _ => Err(format!(
            "{} matches more than one approval; give more of the id",
            md(&given, 32)
        )),
    }
}

/// `POST /v1/chat/teams/actions`: a message to the outgoing webhook.
pub(crate) async fn actions(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(teams) = state.chat.teams.clone() else {
        return refuse(StatusCode::NOT_FOUND, "Teams is not configured");
    };
    let mac = match check_teams(&teams.key, &headers, &body) {
        Ok(mac) => mac,
        Err(why) => {
            tracing::warn!(why, "refused a request that claims to come from Teams");
            return refuse(StatusCode::UNAUTHORIZED, why);
        }
    };
    let Ok(activity) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let now = jiff::Timestamp::now().as_second();
    let sent = activity["timestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    match sent {
        Some(t) if (now - t).abs() <= WINDOW_SECS => {}
        _ => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "the activity's timestamp is missing or more than 5 minutes from now",
            );
        }
    }
    if !teams.replay.first_time(mac, now) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "this signed request was already received (replay)",
        );
    }
    if activity["type"] != "message" {
        return StatusCode::OK.into_response();
    }
    let aad = activity["from"]["aadObjectId"].as_str().unwrap_or_default();
    let sender = format!("teams:{}", clip(aad, 64));
    let text = words(activity["text"].as_str().unwrap_or_default());
    if text.chars().count() > copilot::MAX_QUESTION_CHARS {
        return reply(format!(
            "That is longer than {} characters.",
            copilot::MAX_QUESTION_CHARS
        ));
    }
    let command = copilot::parse(&text);
    let Some(who) = teams.users.get(aad).cloned() else {
        // A refused answer is journaled with the task it tried to decide.
        let (task, key, what) = match &command {
            Command::Approve(id, _) | Command::Reject(id, _) => match find(&state, id) {
                Ok(p) => (
                    p.request.task_id,
                    format!("approval:{}", p.id),
                    if matches!(command, Command::Approve(..)) {
                        "approve"
                    } else {
                        "reject"
                    },
                ),
                Err(_) => (copilot::query_id("teams"), String::new(), "command"),
            },
            _ => (copilot::query_id("teams"), String::new(), "command"),
        };
        copilot::journal(
            &state,
            &task,
            "teams",
            &key,
            what,
            "refused: not a mapped Teams user",
            &sender,
        );
        return reply(
            "You may not use warden here: your Teams user is not mapped in `[chat.teams] approvers`."
                .into(),
        );
    };
    let by = format!("{} ({sender})", who.name);
    match command {
        Command::Approve(id, note) => answer(&state, &who, &by, id, note, true).await,
        Command::Reject(id, note) => answer(&state, &who, &by, id, note, false).await,
        Command::Status => {
            copilot::journal(&state, &copilot::query_id("teams"), "teams", "", "status", "answered", &by);
            match copilot::status(&state).await {
                Ok(s) => {
                    let mut text = format!(
                        "warden: {} task(s) running, {} waiting, {} approval(s) pending",
                        s.running,
                        s.waiting,
                        s.approvals.len()
                    );
                    for p in s.approvals.iter().take(10) {
                        text.push_str(&format!(
                            "\n\n- {} {} in {} for task {} (step {})",
                            short(&p.id),
                            md(&p.request.tool, 100),
                            md(&p.request.env, 50),
                            md(&p.request.task_id, 200),
                            md(&p.request.step_id, 64),
                        ));
                    }
                    reply(text)
                }
                Err(e) => reply(format!("Could not read the status: {}", md(&e, 300))),
            }
        }
        Command::Similar(q) => {
            copilot::journal(&state, &copilot::query_id("teams"), "teams", "", "similar", "answered", &by);
            match copilot::similar(&state, q).await {
                Ok(hits) if hits.is_empty() => reply(format!("No past incidents like {}", md(q, 200))),
                Ok(hits) => {
                    let mut text = format!("Past incidents like {}:", md(q, 200));
                    for h in hits {
                        text.push_str(&format!(
                            "\n\n- {} {} ({:.2})",
                            md(&h.id, 64),
                            md(&h.title, 200),
                            h.score
                        ));
                    }
                    reply(text)
                }
                Err(e) => reply(format!("Recall failed: {}", md(&e, 300))),
            }
        }
        Command::Help | Command::Ask(_) => reply(
            "Say: **approve <id> [why]**, **reject <id> [why]**, **status**, or **similar <text>**. Questions go to /warden in Slack."
                .into(),
        ),
    }
}

async fn answer(
    state: &Arc<State>,
    who: &Identity,
    by: &str,
    id: &str,
    note: &str,
    approve: bool,
) -> Response {
    let verb = if approve { "approve" } else { "reject" };
    let pending = match find(state, id) {
        Ok(p) => p,
        Err(why) => return reply(why),
    };
    let key = format!("approval:{}", pending.id);
    if !who.may("approver") {
        copilot::journal(
            state,
            &pending.request.task_id,
            "teams",
            &key,
            verb,
            "refused: no approver role",
            by,
        );
        return reply(format!(
            "{} lacks the approver role, so this answer does not count. The request still waits.",
            md(&who.name, 64)
        ));
    }
    let note = if note.is_empty() {
        "via Teams".to_string()
    } else {
        format!("via Teams: {}", clip(note, 500))
    };
    match state
        .approvals
        .answer_via(&pending.id, who, approve, Some(note), "Teams")
        .await
    {
        Ok(p) => {
            state.metrics.approvals_pending(state.approvals.len());
            copilot::journal(
                state,
                &p.request.task_id,
                "teams",
                &key,
                verb,
                "answered",
                by,
            );
            reply(format!(
                "{} approval {} ({} in {}, task {}) as {}. The approval policy has the last word.",
                if approve { "Approved" } else { "Rejected" },
                short(&p.id),
                md(&p.request.tool, 100),
                md(&p.request.env, 50),
                md(&p.request.task_id, 200),
                md(&who.name, 64)
            ))
        }
        Err(_) => reply(format!(
            "Approval {} is no longer waiting.",
            short(&pending.id)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mention_and_markup_are_not_part_of_the_words() {
        assert_eq!(
            words("<at>warden</at>&nbsp;approve 1a2b3c4d  pool restart\n"),
            "approve 1a2b3c4d pool restart"
        );
        assert_eq!(
            words("<p><at id=\"0\">Warden Bot</at> status</p>"),
            "status"
        );
        assert_eq!(words("similar a &lt;b&gt; &amp; c"), "similar a <b> & c");
        assert_eq!(words("unclosed <at"), "unclosed");
    }
}
