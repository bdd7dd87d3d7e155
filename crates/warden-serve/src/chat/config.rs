//! `[chat]` in `warden.toml`: Slack and Teams, each optional.
//!
//! ```toml
//! [chat]
//! env = "prod"                       # questions asked in chat act here
//!
//! [chat.slack]
//! bot_token = { env = "SLACK_BOT_TOKEN" }
//! signing_secret = { env = "SLACK_SIGNING_SECRET" }
//! channel = "C0123456789"            # where approval requests are posted
//! approvers = { "U0123ABCD" = { name = "alice", roles = ["approver"] } }
//!
//! [chat.teams]
//! webhook_url = { file = "secrets/teams-webhook-url" }
//! outgoing_secret = { file = "secrets/teams-outgoing-token" }
//! approvers = { "2f1c…-aad-object-id" = { name = "carol", roles = ["approver"] } }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::SecretRef;

/// `[chat]`: approvals and the ChatOps copilot in Slack and Teams.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSection {
    /// Environment for tasks asked for in chat [default: `[agent] env`,
    /// else the bundle's default].
    #[serde(default)]
    pub env: Option<String>,
    /// A PEM bundle trusted beside the Mozilla roots for calls to Slack and
    /// Teams [default: `$WARDEN_EXTRA_CA_FILE`, else none].
    #[serde(default)]
    pub extra_ca_file: Option<PathBuf>,
    /// Slack: approval buttons, and the `/warden` slash command.
    #[serde(default)]
    pub slack: Option<SlackSection>,
    /// Microsoft Teams: approval cards through an incoming webhook, answers
    /// through an outgoing webhook.
    #[serde(default)]
    pub teams: Option<TeamsSection>,
}

/// `[chat.slack]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSection {
    /// The bot token (`xoxb-…`) for `chat.postMessage` and `chat.update`.
    pub bot_token: SecretRef,
    /// The app's signing secret: every request from Slack is checked with it.
    pub signing_secret: SecretRef,
    /// The channel id approval requests are posted to.
    pub channel: String,
    /// The Web API [default: `https://slack.com/api`].
    #[serde(default = "default_slack_api")]
    pub api_base: String,
    /// Where Slack's `response_url`s point; any other is not followed
    /// [default: `https://hooks.slack.com/`].
    #[serde(default = "default_slack_hooks")]
    pub response_base: String,
    /// Slack user id (`U…`) → who that is here. Roles say what each may
    /// do: `viewer` `/warden status` and `similar`, `operator` questions,
    /// `approver` the buttons. Anyone else is told no.
    #[serde(default)]
    pub approvers: BTreeMap<String, ChatUser>,
}

/// `[chat.teams]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsSection {
    /// The incoming webhook URL approval cards are posted to (a secret:
    /// whoever has it can post to the channel) [default: none, no cards].
    #[serde(default)]
    pub webhook_url: Option<SecretRef>,
    /// The outgoing webhook's security token (base64), which Teams shows
    /// once when the webhook is created: it signs every message to us.
    pub outgoing_secret: SecretRef,
    /// Entra object id of the sender (`from.aadObjectId`) → who that is
    /// here, with roles as for Slack.
    #[serde(default)]
    pub approvers: BTreeMap<String, ChatUser>,
}

/// A chat user as warden knows them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatUser {
    /// The identity the journal records (and the approval policy sees).
    pub name: String,
    /// `viewer`, `operator`, `approver`.
    #[serde(default)]
    pub roles: Vec<String>,
}

fn default_slack_api() -> String {
    "https://slack.com/api".into()
}

fn default_slack_hooks() -> String {
    "https://hooks.slack.com/".into()
}

impl ChatSection {
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        if let Some(ca) = self.extra_ca_file.as_mut()
            && ca.is_relative()
        {
            *ca = base.join(&*ca);
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if let Some(s) = &self.slack {
            let channel = &s.channel;
            if channel.is_empty() || channel.len() > 80 || !channel.chars().all(id_char) {
                return Err(format!(
                    "chat.slack.channel must be a channel id (letters, digits, `-`, `_`), got `{}`",
                    crate::chat::text::clip(channel, 80)
                ));
            }
            for (key, value) in [
                ("api_base", &s.api_base),
                ("response_base", &s.response_base),
            ] {
                if !value.starts_with("https://") || value.len() > 512 {
                    return Err(format!(
                        "chat.slack.{key} must be an https:// URL of at most 512 bytes"
                    ));
                }
            }
            check_users("chat.slack.approvers", &s.approvers)?;
        }
        if let Some(t) = &self.teams {
            check_users("chat.teams.approvers", &t.approvers)?;
        }
        Ok(())
    }
}

fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn check_users(what: &str, users: &BTreeMap<String, ChatUser>) -> Result<(), String> {
    for (id, user) in users {
        if id.is_empty() || id.len() > 64 || !id.chars().all(id_char) {
            return Err(format!(
                "{what}: `{}` is not a user id (at most 64 letters, digits, `-`, `_`)",
                crate::chat::text::clip(id, 64)
            ));
        }
        let name = user.name.trim();
        if name.is_empty() || user.name.len() > 64 || user.name.chars().any(char::is_control) {
            return Err(format!(
                "{what}.{id}: `name` must be 1 to 64 printable characters"
            ));
        }
        for r in &user.roles {
            if !matches!(r.as_str(), "viewer" | "operator" | "approver") {
                return Err(format!(
                    "{what}.{id}: unknown role `{r}` (viewer, operator, approver)"
                ));
            }
        }
    }
    Ok(())
}
