//! A Slack Web API on `127.0.0.1` over HTTPS, and requests as Slack signs
//! them.
//!
//! [`FakeSlack`] answers `chat.postMessage` and `chat.update` as Slack does
//! (HTTP 200 with `{"ok": …}`; `not_authed` / `invalid_auth` for a missing
//! or wrong bot token; `invalid_blocks` for Block Kit over Slack's limits;
//! `message_not_found` for an update of a message it never posted) and keeps
//! each message's latest text and blocks. Paths under `/hooks/` stand in
//! for `response_url`s and record what is posted there.
//!
//! [`signed`] signs a body with Slack's v0 scheme; [`block_actions`] and
//! [`slash_command`] build the form bodies Slack posts for a button click
//! and for a slash command.
//!
//! ```
//! use warden_fakes::slack::{sign, slash_command};
//!
//! let body = slash_command("U0ALICE", "status", "https://hooks.slack.com/commands/1/2/3");
//! assert!(body.contains("command=%2Fwarden") && body.contains("user_id=U0ALICE"));
//! // Slack's documented example.
//! let example = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
//! assert_eq!(
//!     sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", example),
//!     "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
//! );
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::http::{Responder, Response, Seen};
use crate::tls::ServerCert;

/// One call to the Web API.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `chat.postMessage`, `chat.update`, …
    pub method: String,
    /// The JSON body (`null` when it was not JSON).
    pub body: Value,
    /// Slack's answer.
    pub answer: Value,
}

#[derive(Debug, Default)]
struct Workspace {
    next: u64,
    /// (channel, ts) → the message as it stands.
    messages: BTreeMap<(String, String), Value>,
    calls: Vec<Call>,
    hooks: Vec<(String, Value)>,
}

/// The fake Web API (see the module docs); stops when dropped.
#[derive(Debug)]
pub struct FakeSlack {
    server: Responder,
    state: Arc<Mutex<Workspace>>,
}

impl FakeSlack {
    /// Serve HTTPS with `cert`, accepting `bot_token` only.
    pub fn start_tls(cert: &ServerCert, bot_token: &str) -> FakeSlack {
        let state = Arc::new(Mutex::new(Workspace::default()));
        let shared = Arc::clone(&state);
        let token = bot_token.to_owned();
        let server = Responder::start_tls(cert, move |seen| {
            let Ok(mut ws) = shared.lock() else {
                return Response::text(500, "fake: poisoned");
            };
            answer(&mut ws, &token, seen)
        });
        FakeSlack { server, state }
    }

    /// `https://127.0.0.1:<port>/api`: the value for `api_base`.
    pub fn api_base(&self) -> String {
        self.server.url("/api")
    }

    /// `https://127.0.0.1:<port>/hooks/`: the value for `response_base`.
    pub fn hooks_base(&self) -> String {
        self.server.url("/hooks/")
    }

    /// A `response_url` named `name`.
    pub fn response_url(&self, name: &str) -> String {
        self.server.url(&format!("/hooks/{name}"))
    }

    fn with<T>(&self, f: impl FnOnce(&Workspace) -> T) -> T {
        match self.state.lock() {
            Ok(ws) => f(&ws),
            Err(p) => f(&p.into_inner()),
        }
    }

    /// Every Web API call, in order (accepted or not).
    pub fn calls(&self) -> Vec<Call> {
        self.with(|ws| ws.calls.clone())
    }

    /// The bodies of the `method` calls Slack accepted.
    pub fn accepted(&self, method: &str) -> Vec<Value> {
        self.with(|ws| {
            ws.calls
                .iter()
                .filter(|c| c.method == method && c.answer["ok"] == true)
                .map(|c| c.body.clone())
                .collect()
        })
    }

    /// Calls Slack refused, with its `error`.
    pub fn refused(&self) -> Vec<(String, String)> {
        self.with(|ws| {
            ws.calls
                .iter()
                .filter(|c| c.answer["ok"] != true)
                .map(|c| {
                    (
                        c.method.clone(),
                        c.answer["error"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
    }

    /// The message at `ts` in `channel` as it stands now.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.with(|ws| {
            ws.messages
                .get(&(channel.to_owned(), ts.to_owned()))
                .cloned()
        })
    }

    /// What was posted to the `response_url` named `name`, in order.
    pub fn responses(&self, name: &str) -> Vec<Value> {
        self.with(|ws| {
            ws.hooks
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .collect()
        })
    }

    /// Requests that reached the server at all (HTTP level).
    pub fn requests(&self) -> Vec<Seen> {
        self.server.requests()
    }
}

fn ok(ws: &mut Workspace, method: &str, body: Value, answer: Value) -> Response {
    ws.calls.push(Call {
        method: method.to_owned(),
        body,
        answer: answer.clone(),
    });
    Response::json(200, &answer)
}

fn error(ws: &mut Workspace, method: &str, body: Value, error: &str) -> Response {
    ok(ws, method, body, json!({"ok": false, "error": error}))
}

fn answer(ws: &mut Workspace, token: &str, seen: &Seen) -> Response {
    if let Some(name) = seen.path.strip_prefix("/hooks/") {
        let body = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        ws.hooks.push((name.to_owned(), body));
        return Response::text(200, "ok");
    }
    let Some(method) = seen.path.strip_prefix("/api/") else {
        return Response::text(404, "no such path");
    };
    let method = method.to_owned();
    let body: Value = if seen
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        serde_json::from_str(&seen.body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    if seen.method != "POST" {
        return error(ws, &method, body, "invalid_request");
    }
    match seen
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    {
        None => return error(ws, &method, body, "not_authed"),
        Some(t) if t != token => return error(ws, &method, body, "invalid_auth"),
        Some(_) => {}
    }
    if body.is_null() {
        return error(ws, &method, body, "invalid_arguments");
    }
    if let Some(why) = block_problem(&body["blocks"]) {
        return error(
            ws,
            &method,
            json!({"body": body, "problem": why}),
            "invalid_blocks",
        );
    }
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    match method.as_str() {
        "chat.postMessage" => {
            if !channel.starts_with(['C', 'G', 'D']) {
                return error(ws, &method, body, "channel_not_found");
            }
            if body["text"].as_str().is_none_or(str::is_empty) && body["blocks"].is_null() {
                return error(ws, &method, body, "no_text");
            }
            ws.next += 1;
            let ts = format!("1700000000.{:06}", ws.next);
            let message = json!({"type": "message", "text": body["text"], "blocks": body["blocks"], "ts": ts});
            ws.messages
                .insert((channel.clone(), ts.clone()), message.clone());
            ok(
                ws,
                &method,
                body,
                json!({"ok": true, "channel": channel, "ts": ts, "message": message}),
            )
        }
        "chat.update" => {
            let ts = body["ts"].as_str().unwrap_or_default().to_owned();
            let key = (channel.clone(), ts.clone());
            if !ws.messages.contains_key(&key) {
                return error(ws, &method, body, "message_not_found");
            }
            let message = json!({"type": "message", "text": body["text"], "blocks": body["blocks"], "ts": ts});
            ws.messages.insert(key, message);
            let text = body["text"].clone();
            ok(
                ws,
                &method,
                body,
                json!({"ok": true, "channel": channel, "ts": ts, "text": text}),
            )
        }
        _ => error(ws, &method, body, "unknown_method"),
    }
}

/// Why Slack would refuse these blocks (its published limits), if it would.
fn block_problem(blocks: &Value) -> Option<String> {
    let Some(blocks) = blocks.as_array() else {
        return (!blocks.is_null()).then(|| "blocks is not an array".to_owned());
    };
    if blocks.len() > 50 {
        return Some("more than 50 blocks".into());
    }
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    for b in blocks {
        match b["type"].as_str() {
            Some("header") if chars(&b["text"]["text"]) > 150 => {
                return Some("header text over 150".into());
            }
            Some("section") if chars(&b["text"]["text"]) > 3000 => {
                return Some("section text over 3000".into());
            }
            Some("actions") => {
                for e in b["elements"].as_array().into_iter().flatten() {
                    if chars(&e["value"]) > 2000 || chars(&e["action_id"]) > 255 {
                        return Some("button value or action_id too long".into());
                    }
                    if chars(&e["text"]["text"]) > 75 {
                        return Some("button text over 75".into());
                    }
                }
            }
            Some("context") => {
                for e in b["elements"].as_array().into_iter().flatten() {
                    if chars(&e["text"]) > 3000 {
                        return Some("context text over 3000".into());
                    }
                }
            }
            Some("header" | "section") => {}
            other => return Some(format!("unexpected block type {other:?}")),
        }
    }
    None
}

/// Slack's v0 signature of `body` sent at `timestamp`: `v0=<hex>`.
pub fn sign(signing_secret: &str, timestamp: &str, body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(signing_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// The headers Slack sends with `body` at `timestamp` (Unix seconds):
/// content type, `X-Slack-Request-Timestamp` and `X-Slack-Signature`.
pub fn signed(signing_secret: &str, timestamp: i64, body: &str) -> Vec<(String, String)> {
    let ts = timestamp.to_string();
    vec![
        (
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ),
        ("x-slack-request-timestamp".into(), ts.clone()),
        ("x-slack-signature".into(), sign(signing_secret, &ts, body)),
    ]
}

/// The form body Slack posts when `user` clicks the button `action_id`
/// (carrying `value`) on the message at `message_ts` in `channel`.
pub fn block_actions(
    user: &str,
    action_id: &str,
    value: &str,
    response_url: &str,
    channel: &str,
    message_ts: &str,
) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": "T0WARDEN"},
        "api_app_id": "A0WARDEN",
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": false},
        "trigger_id": "1700000000.1.abcdef",
        "team": {"id": "T0WARDEN", "domain": "warden-test"},
        "channel": {"id": channel, "name": "ops"},
        "message": {"type": "message", "ts": message_ts},
        "response_url": response_url,
        "actions": [{
            "action_id": action_id,
            "block_id": "warden-approval",
            "text": {"type": "plain_text", "text": "Approve"},
            "value": value,
            "type": "button",
            "action_ts": "1700000001.000001",
        }],
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

/// The form body Slack posts for `/warden <text>` typed by `user`.
pub fn slash_command(user: &str, text: &str, response_url: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "deprecated-verification-token")
        .append_pair("team_id", "T0WARDEN")
        .append_pair("team_domain", "warden-test")
        .append_pair("channel_id", "C0WARDEN1")
        .append_pair("channel_name", "ops")
        .append_pair("user_id", user)
        .append_pair("user_name", &user.to_lowercase())
        .append_pair("command", "/warden")
        .append_pair("text", text)
        .append_pair("api_app_id", "A0WARDEN")
        .append_pair("response_url", response_url)
        .append_pair("trigger_id", "1700000000.1.abcdef")
        .finish()
}
