//! Chat: approvals as Slack buttons and Teams cards, and `/warden`, a
//! ChatOps copilot.
//!
//! Every request from a chat is authenticated as the platform documents
//! (Slack's v0 signature, the Teams outgoing-webhook HMAC), then its
//! sender is mapped through `[chat.*] approvers` to an identity with roles;
//! anyone unmapped is told no. Approvals reach the chat through an
//! observer on [`Approvals`]: posted when asked, updated when answered
//! (here or elsewhere), expired or dropped at shutdown. Calls out go over
//! HTTPS with the same TLS setup as every warden client, never follow
//! redirects, and are bounded in time and size.

mod blocks;
mod config;
pub(crate) mod copilot;
mod slack;
mod teams;
pub(crate) mod text;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use tokio::sync::mpsc;

pub use config::{ChatSection, ChatUser, SlackSection, TeamsSection};

use crate::approvals::{ApprovalEvent, Approvals};
use crate::auth::Identity;
use crate::config::Config;
use crate::error::ServeError;
use crate::server::State;

/// The chats the service talks to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chat {
    pub slack: Option<Arc<slack::Slack>>,
    pub teams: Option<Arc<teams::Teams>>,
}

/// Approval events waiting for the chats; beyond this many, new ones are
/// dropped with a warning (the approval itself still waits in the API).
const EVENT_QUEUE: usize = 1024;

impl Chat {
    /// Read the chat secrets and build the clients, without starting anything.
    pub(crate) fn load(config: &Config) -> Result<Chat, ServeError> {
        let c = &config.chat;
        if c.slack.is_none() && c.teams.is_none() {
            return Ok(Chat::default());
        }
        let http = http_client(config)?;
        let slack = c
            .slack
            .as_ref()
            .map(|s| slack::Slack::load(s, &config.base, http.clone()).map(Arc::new))
            .transpose()?;
        let teams = c
            .teams
            .as_ref()
            .map(|t| teams::Teams::load(t, &config.base, http.clone()).map(Arc::new))
            .transpose()?;
        Ok(Chat { slack, teams })
    }

    /// Follow `approvals`: each event goes, in order, to every chat.
    pub(crate) fn follow(&self, approvals: &Approvals) {
        if self.slack.is_none() && self.teams.is_none() {
            return;
        }
        let (tx, mut rx) = mpsc::channel::<ApprovalEvent>(EVENT_QUEUE);
        approvals.observe(move |e| {
            if tx.try_send(e.clone()).is_err() {
                tracing::warn!("too many approval events for the chats; one was not shown");
            }
        });
        let chat = self.clone();
        tokio::spawn(async move {
            // One at a time, so a message is posted before it is updated.
            while let Some(event) = rx.recv().await {
                if let Some(s) = &chat.slack {
                    s.on_event(&event).await;
                }
                if let Some(t) = &chat.teams {
                    t.on_event(&event).await;
                }
            }
        });
    }
}

/// The chat routes (each answers 404 while its chat is not configured).
pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/v1/chat/slack/interactions", post(slack::interactions))
        .route("/v1/chat/slack/commands", post(slack::commands))
        .route("/v1/chat/teams/actions", post(teams::actions))
}

/// A chat user id mapped to who that is here.
fn users(
    map: &std::collections::BTreeMap<String, ChatUser>,
) -> std::collections::BTreeMap<String, Identity> {
    map.iter()
        .map(|(id, u)| {
            (
                id.clone(),
                Identity {
                    name: u.name.trim().to_string(),
                    roles: u.roles.clone(),
                },
            )
        })
        .collect()
}

/// How long one call to Slack or Teams may take, all in.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an answer from Slack or Teams that is read.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

fn http_client(config: &Config) -> Result<reqwest::Client, ServeError> {
    let extra = config.chat.extra_ca_file.clone().or_else(|| {
        std::env::var_os("WARDEN_EXTRA_CA_FILE")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    });
    let tls = warden_tls::client_config(extra.as_deref()).map_err(|e| ServeError::Config {
        reason: format!("chat: {e}"),
    })?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // A bearer token must not follow a redirect anywhere.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CALL_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .https_only(true)
        .build()
        .map_err(|e| ServeError::Config {
            reason: format!("chat: building the HTTP client: {e}"),
        })
}

/// An answer from a chat's API: the status and (at most
/// [`MAX_ANSWER_BYTES`] of) the body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// POST `body` as JSON to `url`, with `bearer` when given; one retry after
/// a 429 (honouring `Retry-After` up to 30 s) or a refused connection,
/// where nothing was delivered.
async fn post_json(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> Result<Answer, String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut req = http
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .body(bytes.clone());
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        match req.send().await {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let mut body = Vec::new();
                while let Ok(Some(chunk)) = resp.chunk().await {
                    let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if room <= chunk.len() {
                        break;
                    }
                }
                if status == 429 && attempt == 1 {
                    let wait = retry_after.unwrap_or(1).min(30);
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    continue;
                }
                return Ok(Answer { status, body });
            }
            Err(e) if e.is_connect() && attempt == 1 => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(describe(&e)),
        }
    }
}

/// What the answerer said, without the `via <chat>` the note starts with
/// when the answer came from a chat (the outcome names the chat already).
fn said<'a>(note: &'a str, via: &str) -> &'a str {
    match note.strip_prefix("via ").and_then(|r| r.strip_prefix(via)) {
        Some(rest) => rest.split_once(": ").map_or("", |(_, said)| said),
        None => note,
    }
}

/// A transport error with its causes (TLS refusals are named in them).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    fn load(text: &str) -> Result<crate::Config, crate::ServeError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.toml");
        fs_err::write(&path, text).unwrap();
        crate::Config::load(&path)
    }

    #[test]
    fn the_note_shown_drops_the_chat_it_came_through() {
        assert_eq!(super::said("via Slack (user U0A)", "Slack"), "");
        assert_eq!(super::said("via Teams: looks safe", "Teams"), "looks safe");
        assert_eq!(super::said("not now", "the API"), "not now");
    }

    const SLACK: &str =
        "[agent]\n[chat.slack]\nbot_token = { env = \"T\" }\nsigning_secret = { env = \"S\" }\n";

    #[test]
    fn the_chat_config_takes_secrets_by_reference_and_https_only() {
        let ok = load(&format!(
            "{SLACK}channel = \"C0123\"\n[chat.slack.approvers.U0A]\nname = \"alice\"\nroles = [\"approver\"]\n"
        ))
        .unwrap();
        let slack = ok.chat.slack.unwrap();
        assert_eq!(slack.api_base, "https://slack.com/api");
        assert_eq!(slack.approvers["U0A"].name, "alice");
        // A secret inline is refused.
        assert!(load("[agent]\n[chat.slack]\nbot_token = \"xoxb-1\"\nsigning_secret = { env = \"S\" }\nchannel = \"C1\"\n").is_err());
        let err = load(&format!(
            "{SLACK}channel = \"C1\"\napi_base = \"http://slack.example/api\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("chat.slack.api_base must be an https:// URL"),
            "{err}"
        );
        let err = load(&format!("{SLACK}channel = \"#ops <!channel>\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("chat.slack.channel"), "{err}");
        let err = load(&format!(
            "{SLACK}channel = \"C1\"\n[chat.slack.approvers.U0A]\nname = \"alice\"\nroles = [\"root\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown role `root`"), "{err}");
    }
}
