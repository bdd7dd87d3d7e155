//! Slack: approval requests as Block Kit messages with Approve / Reject
//! buttons (`chat.postMessage`, then `chat.update` with the outcome), the
//! clicks at `POST /v1/chat/slack/interactions`, and the `/warden` slash
//! command at `POST /v1/chat/slack/commands`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::blocks::{
    APPROVE, HELP, REJECT, fallback, outcome, request_blocks, similar_text, status_text,
};
use super::copilot::{self, Command};
use super::text::{clip, mrkdwn};
use super::verify::{ReplayGuard, check_slack};
use super::{SlackSection, post_json, users};
use crate::approvals::ApprovalEvent;
use crate::auth::Identity;
use crate::error::ServeError;
use crate::server::State;

/// The Slack side: the Web API client, the signing secret, the user map,
/// and which message shows which approval.
pub(crate) struct Slack {
    http: reqwest::Client,
    token: String,
    secret: String,
    channel: String,
    api_base: String,
    response_base: String,
    users: BTreeMap<String, Identity>,
    replay: ReplayGuard,
    /// approval id → (channel id, message ts) of the message showing it.
    posted: Mutex<HashMap<String, (String, String)>>,
}

impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slack")
            .field("channel", &self.channel)
            .field("api_base", &self.api_base)
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Slack {
    pub(crate) fn load(
        s: &SlackSection,
        base: &Path,
        http: reqwest::Client,
    ) -> Result<Slack, ServeError> {
        let mut response_base = s.response_base.clone();
        // `https://hooks.slack.com` would also let `https://hooks.slack.com.evil/` through.
        if !response_base.ends_with('/') {
            response_base.push('/');
        }
        Ok(Slack {
            http,
            token: s.bot_token.read(base, "chat.slack.bot_token")?,
            secret: s.signing_secret.read(base, "chat.slack.signing_secret")?,
            channel: s.channel.clone(),
            api_base: s.api_base.trim_end_matches('/').to_string(),
            response_base,
            users: users(&s.approvers),
            replay: ReplayGuard::default(),
            posted: Mutex::new(HashMap::new()),
        })
    }

    /// Call a Web API method; `Ok` holds Slack's answer when it says `ok`.
    async fn call(&self, method: &str, body: &Value) -> Result<Value, String> {
        let url = format!("{}/{method}", self.api_base);
        let answer = post_json(&self.http, &url, Some(&self.token), body).await?;
        let value: Value = serde_json::from_slice(&answer.body)
            .map_err(|_| format!("{method}: HTTP {} without a JSON answer", answer.status))?;
        if answer.status == 200 && value.get("ok") == Some(&Value::Bool(true)) {
            Ok(value)
        } else {
            let error = value.get("error").and_then(Value::as_str).unwrap_or("?");
            Err(format!(
                "{method}: HTTP {}, error `{}`",
                answer.status,
                clip(error, 100)
            ))
        }
    }

    /// Show an approval event: post the request, or update its message.
    pub(crate) async fn on_event(&self, event: &ApprovalEvent) {
        match event {
            ApprovalEvent::Asked(p) => {
                let body = json!({
                    "channel": self.channel,
                    "text": fallback(p),
                    "blocks": request_blocks(p, None),
                    "unfurl_links": false,
                    "unfurl_media": false,
                });
                match self.call("chat.postMessage", &body).await {
                    Ok(answer) => {
                        let channel = answer["channel"].as_str().unwrap_or(&self.channel);
                        let Some(ts) = answer["ts"].as_str() else {
                            tracing::warn!(approval = %p.id, "Slack posted the approval but gave no ts");
                            return;
                        };
                        self.posted
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(p.id.clone(), (channel.to_string(), ts.to_string()));
                    }
                    Err(e) => {
                        tracing::warn!(approval = %p.id, error = %e, "could not post the approval to Slack")
                    }
                }
            }
            ApprovalEvent::Closed {
                pending,
                answer,
                how,
            } => {
                let found = self
                    .posted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&pending.id);
                let Some((channel, ts)) = found else {
                    return;
                };
                let outcome = outcome(pending, answer, *how);
                let body = json!({
                    "channel": channel,
                    "ts": ts,
                    "text": format!("{} {}", fallback(pending), outcome),
                    "blocks": request_blocks(pending, Some(&outcome)),
                });
                if let Err(e) = self.call("chat.update", &body).await {
                    tracing::warn!(approval = %pending.id, error = %e, "could not update the approval in Slack");
                }
            }
        }
    }

    /// Answer through a `response_url`, only if it points where Slack's do.
    async fn respond(&self, url: &str, body: Value) {
        if url.len() > 2048
            || !url.starts_with(&self.response_base)
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            tracing::warn!(
                url = %clip(url, 200),
                "not following a response_url outside chat.slack.response_base"
            );
            return;
        }
        match post_json(&self.http, url, None, &body).await {
            Ok(a) if (200..300).contains(&a.status) => {}
            Ok(a) => tracing::warn!(status = a.status, "Slack refused a response"),
            Err(e) => tracing::warn!(error = %e, "could not answer through Slack's response_url"),
        }
    }

    /// Answer through `url` later, without holding up the request.
    fn respond_later(self: &Arc<Self>, url: String, body: Value) {
        let this = self.clone();
        tokio::spawn(async move { this.respond(&url, body).await });
    }
}

/// A refusal or a failure, as Slack shows it: a JSON `{"error": …}`.
fn refuse(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(json!({"error": why}))).into_response()
}

/// A message only the asker sees.
fn ephemeral(text: String) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": text})
}

/// The configured Slack side, and the request checked against its signing
/// secret.
fn verified(
    state: &State,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Arc<Slack>, (StatusCode, &'static str)> {
    let Some(slack) = state.chat.slack.clone() else {
        return Err((StatusCode::NOT_FOUND, "Slack is not configured"));
    };
    let now = jiff::Timestamp::now().as_second();
    if let Err(why) = check_slack(&slack.secret, headers, body, now, &slack.replay) {
        tracing::warn!(why, "refused a request that claims to come from Slack");
        return Err((StatusCode::UNAUTHORIZED, why));
    }
    Ok(slack)
}

/// The form fields of a Slack request (each value at most `max` bytes).
fn form(body: &[u8], max: usize) -> Result<HashMap<String, String>, (StatusCode, &'static str)> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if k.len() > 64 || v.len() > max {
            return Err((
                StatusCode::BAD_REQUEST,
                "a form field is longer than allowed",
            ));
        }
        out.insert(k.into_owned(), v.into_owned());
    }
    Ok(out)
}

/// A Slack id (`U…`, `C…`, `T…`): short, letters and digits.
fn slack_id(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric())).then_some(s)
}

/// An approval id: 32 hex digits.
fn approval_id(s: &str) -> Option<&str> {
    (s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())).then_some(s)
}

/// `POST /v1/chat/slack/interactions`: a button click.
pub(crate) async fn interactions(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let slack = match verified(&state, &headers, &body) {
        Ok(s) => s,
        Err((status, why)) => return refuse(status, why),
    };
    let fields = match form(&body, 256 * 1024) {
        Ok(f) => f,
        Err((status, why)) => return refuse(status, why),
    };
    let Some(payload) = fields.get("payload") else {
        return refuse(StatusCode::BAD_REQUEST, "no `payload` field");
    };
    let Ok(payload) = serde_json::from_str::<Value>(payload) else {
        return refuse(StatusCode::BAD_REQUEST, "`payload` is not JSON");
    };
    if payload["type"] != "block_actions" {
        // Other interactions (shortcuts, modals) are not ours: acknowledged.
        return StatusCode::OK.into_response();
    }
    let action = &payload["actions"][0];
    let approve = match action["action_id"].as_str() {
        Some(APPROVE) => true,
        Some(REJECT) => false,
        _ => return StatusCode::OK.into_response(),
    };
    let Some(id) = action["value"].as_str().and_then(approval_id) else {
        return refuse(StatusCode::BAD_REQUEST, "the button carries no approval id");
    };
    let Some(user) = payload["user"]["id"].as_str().and_then(slack_id) else {
        return refuse(StatusCode::BAD_REQUEST, "no user id in the payload");
    };
    let response_url = payload["response_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let verb = if approve { "approve" } else { "reject" };
    let key = format!("approval:{id}");
    let task = state.approvals.get(id).map(|p| p.request.task_id);
    let who = match slack.users.get(user) {
        Some(who) if who.may("approver") => who.clone(),
        found => {
            let (disposition, text) = match found {
                None => (
                    "refused: not a mapped Slack user",
                    "You may not answer warden approvals: your Slack user is not mapped in `[chat.slack] approvers`. The request still waits.".to_string(),
                ),
                Some(who) => (
                    "refused: no approver role",
                    format!(
                        "`{}` lacks the `approver` role, so this answer does not count. The request still waits.",
                        mrkdwn(&who.name, 64)
                    ),
                ),
            };
            if let Some(task) = &task {
                copilot::journal(
                    &state,
                    task,
                    "slack",
                    &key,
                    verb,
                    disposition,
                    &format!("slack:{user}"),
                );
            }
            slack.respond_later(response_url, ephemeral(text));
            return StatusCode::OK.into_response();
        }
    };
    let note = Some(format!("via Slack (user {user})"));
    match state
        .approvals
        .answer_via(id, &who, approve, note, "Slack")
        .await
    {
        Ok(p) => {
            state.metrics.approvals_pending(state.approvals.len());
            let by = format!("{} (slack:{user})", who.name);
            copilot::journal(
                &state,
                &p.request.task_id,
                "slack",
                &key,
                verb,
                "answered",
                &by,
            );
        }
        Err(_) => {
            slack.respond_later(
                response_url,
                ephemeral(format!(
                    "Approval `{id}` is no longer waiting (answered, expired, or never asked)."
                )),
            );
        }
    }
    StatusCode::OK.into_response()
}

/// `POST /v1/chat/slack/commands`: `/warden …`.
pub(crate) async fn commands(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let slack = match verified(&state, &headers, &body) {
        Ok(s) => s,
        Err((status, why)) => return refuse(status, why),
    };
    let fields = match form(&body, 8 * 1024) {
        Ok(f) => f,
        Err((status, why)) => return refuse(status, why),
    };
    let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    let Some(user) = slack_id(field("user_id")) else {
        return refuse(StatusCode::BAD_REQUEST, "no user_id");
    };
    let text = field("text");
    let response_url = field("response_url").to_string();
    let reply = |v: Value| axum::Json(v).into_response();
    let Some(who) = slack.users.get(user).cloned() else {
        copilot::journal(
            &state,
            &copilot::query_id("slack"),
            "slack",
            "",
            "command",
            "refused: not a mapped Slack user",
            &format!("slack:{user}"),
        );
        return reply(ephemeral(
            "You may not use /warden: your Slack user is not mapped in `[chat.slack] approvers`."
                .into(),
        ));
    };
    let by = format!("{} (slack:{user})", who.name);
    if text.chars().count() > copilot::MAX_QUESTION_CHARS {
        return reply(ephemeral(format!(
            "That is longer than {} characters; ask something shorter.",
            copilot::MAX_QUESTION_CHARS
        )));
    }
    match copilot::parse(text) {
        Command::Help | Command::Approve(..) | Command::Reject(..) => reply(ephemeral(HELP.into())),
        Command::Status => {
            copilot::journal(
                &state,
                &copilot::query_id("slack"),
                "slack",
                "",
                "status",
                "answered",
                &by,
            );
            match copilot::status(&state).await {
                Ok(s) => reply(ephemeral(status_text(&s))),
                Err(e) => reply(ephemeral(format!(
                    "Could not read the status: {}",
                    mrkdwn(&e, 300)
                ))),
            }
        }
        Command::Similar(q) => {
            copilot::journal(
                &state,
                &copilot::query_id("slack"),
                "slack",
                "",
                "similar",
                "answered",
                &by,
            );
            match copilot::similar(&state, q).await {
                Ok(hits) => reply(ephemeral(similar_text(q, &hits))),
                Err(e) => reply(ephemeral(format!("Recall failed: {}", mrkdwn(&e, 300)))),
            }
        }
        Command::Ask(question) => {
            if !who.may("operator") {
                return reply(ephemeral(format!(
                    "`{}` lacks the `operator` role, which questions need (they start a task).",
                    mrkdwn(&who.name, 64)
                )));
            }
            match copilot::ask(&state, &who, "slack", question).await {
                Ok(task) => {
                    follow_up(&state, &slack, task.clone(), response_url);
                    reply(json!({
                        "response_type": "in_channel",
                        "text": format!(
                            "Looking into it as task `{}`, on behalf of *{}*. Anything that would change something waits for an approval here.",
                            mrkdwn(&task, 200),
                            mrkdwn(&who.name, 64)
                        ),
                    }))
                }
                Err(e) => reply(ephemeral(format!(
                    "Could not start a task: {}",
                    mrkdwn(&e, 500)
                ))),
            }
        }
    }
}

/// Once the task ends, post its outcome where the question was asked.
fn follow_up(state: &Arc<State>, slack: &Arc<Slack>, task: String, response_url: String) {
    let state = state.clone();
    let slack = slack.clone();
    // Slack honours a response_url for 30 minutes.
    let limit = (state.config.limits.task_timeout + state.config.limits.approval_timeout)
        .min(Duration::from_secs(29 * 60));
    tokio::spawn(async move {
        let text = match copilot::wait_for(&state, &task, limit).await {
            Some(end) => format!(
                "Task `{}` *{}*: {}",
                mrkdwn(&task, 200),
                mrkdwn(&end.status, 40),
                mrkdwn(&end.summary, 2500)
            ),
            None => format!(
                "Task `{}` is still running; `GET /v1/tasks/{}` shows its timeline.",
                mrkdwn(&task, 200),
                mrkdwn(&task, 200)
            ),
        };
        slack
            .respond(
                &response_url,
                json!({"response_type": "in_channel", "replace_original": false, "text": text}),
            )
            .await;
    });
}
