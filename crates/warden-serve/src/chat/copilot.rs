//! What `/warden` answers, whatever the chat: the service's status, past
//! incidents like some text, and questions that become tasks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use warden::journal::{JournalEvent, read_journal};

use crate::approvals::Pending;
use crate::auth::Identity;
use crate::inbox::{Accepted, Item, ItemState};
use crate::server::State;

/// The most a question, or a `similar` query, may hold.
pub(crate) const MAX_QUESTION_CHARS: usize = 1000;

/// Tasks and approvals right now.
#[derive(Debug)]
pub(crate) struct Status {
    /// Tasks running.
    pub running: usize,
    /// Tasks waiting for a worker.
    pub waiting: usize,
    /// Approvals waiting for a human, oldest first.
    pub approvals: Vec<Pending>,
}

pub(crate) async fn status(state: &Arc<State>) -> Result<Status, String> {
    let items = state
        .inbox(|i| i.items())
        .await
        .map_err(|e| e.to_string())?;
    let count = |s: ItemState| items.iter().filter(|i| i.state == s).count();
    Ok(Status {
        running: count(ItemState::Running),
        waiting: count(ItemState::Pending),
        approvals: state.approvals.list(),
    })
}

/// One past incident.
#[derive(Debug)]
pub(crate) struct Similar {
    pub id: String,
    pub title: String,
    pub score: f32,
    pub resolution: Option<String>,
}

pub(crate) async fn similar(state: &Arc<State>, text: &str) -> Result<Vec<Similar>, String> {
    let agent = state.agent();
    let text = text.to_string();
    let hits = tokio::task::spawn_blocking(move || agent.recall(&text, 5))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(hits
        .into_iter()
        .map(|h| Similar {
            id: h.incident.id,
            title: h.incident.title,
            score: h.score,
            resolution: h.incident.resolution,
        })
        .collect())
}

/// Start a task for `question`, asked by `who` through `platform`: source
/// `chat`, on `who`'s behalf, in `[chat] env`. Journaled as received
/// before the answer. Returns the task id.
pub(crate) async fn ask(
    state: &Arc<State>,
    who: &Identity,
    platform: &str,
    question: &str,
) -> Result<String, String> {
    if !state.accepting.load(std::sync::atomic::Ordering::SeqCst) {
        return Err("the service is draining; ask again in a moment".into());
    }
    if !state.admit("chat") {
        return Err(
            "too many questions this minute (data.warden.config.intake.chat); ask again in a minute"
                .into(),
        );
    }
    let env = state
        .config
        .chat
        .env
        .clone()
        .or_else(|| state.config.agent.env.clone())
        .unwrap_or_default();
    state
        .agent()
        .policy()
        .environments()
        .canonical(&env)
        .map_err(|e| e.to_string())?;
    let id = format!(
        "chat-{}-{}",
        jiff::Timestamp::now().as_second(),
        &crate::approvals::new_id()[..12]
    );
    let item = Item {
        id: id.clone(),
        source: "chat".into(),
        key: String::new(),
        body: json!({"goal": question}),
        env,
        principal: who.name.clone(),
        received_at: jiff::Timestamp::now().to_string(),
        state: ItemState::Pending,
        status: None,
        reason: None,
        done_at: None,
        repeats: 0,
    };
    let window = state.config.limits.group_window;
    match state
        .inbox(move |i| i.accept(item, window))
        .await
        .map_err(|e| e.to_string())?
    {
        Accepted::New(_) | Accepted::Duplicate(_) | Accepted::Grouped(_) => {}
        Accepted::Full => return Err("the inbox is full; ask again later".into()),
    }
    state
        .journal(
            &id,
            &JournalEvent::Received {
                source: "chat".into(),
                key: String::new(),
                status: "goal".into(),
                disposition: "queued".into(),
                by: format!("{} ({platform})", who.name),
            },
        )
        .map_err(|e| e.to_string())?;
    state.metrics.received("chat", "queued");
    state.wake.notify_one();
    Ok(id)
}

/// How a task ended, once it has: its status and summary.
#[derive(Debug)]
pub(crate) struct Ended {
    pub status: String,
    pub summary: String,
}

/// Wait (polling the inbox, at most `limit`) for task `id` to end, then
/// read its summary from the journal.
pub(crate) async fn wait_for(state: &Arc<State>, id: &str, limit: Duration) -> Option<Ended> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(100);
    let item = loop {
        let lookup = id.to_string();
        if let Ok(Some(item)) = state.inbox(move |i| i.get(&lookup)).await
            && item.state == ItemState::Done
        {
            break item;
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    };
    let agent = state.agent();
    let path = agent.journal().path().to_path_buf();
    let key = agent.journal().key().clone();
    let id = id.to_string();
    let summary = tokio::task::spawn_blocking(move || {
        let records = read_journal(&path, &key).ok()?;
        records.into_iter().rev().find_map(|r| match r.event {
            JournalEvent::Outcome(o) if r.task_id == id => Some(o.summary),
            _ => None,
        })
    })
    .await
    .ok()
    .flatten();
    Some(Ended {
        status: item.status.unwrap_or_else(|| "ended".into()),
        summary: summary.or(item.reason).unwrap_or_default(),
    })
}

/// Journal a chat request against `task` (an approval's task, or a
/// query's own id): who, through which chat, and what came of it.
pub(crate) fn journal(
    state: &State,
    task: &str,
    platform: &str,
    key: &str,
    what: &str,
    disposition: &str,
    by: &str,
) {
    let event = JournalEvent::Received {
        source: platform.to_string(),
        key: key.to_string(),
        status: what.to_string(),
        disposition: disposition.to_string(),
        by: by.to_string(),
    };
    if let Err(e) = state.journal(task, &event) {
        tracing::error!(task, error = %e, "could not journal a chat request");
    }
}

/// An id for a query that starts no task, so its journal entry stands apart.
pub(crate) fn query_id(platform: &str) -> String {
    format!(
        "{platform}-query-{}-{}",
        jiff::Timestamp::now().as_second(),
        &crate::approvals::new_id()[..12]
    )
}

/// What a chat user asked for, parsed from `/warden <text>` or a Teams
/// mention.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    /// `help` or nothing.
    Help,
    /// `status`.
    Status,
    /// `similar <text>`.
    Similar(&'a str),
    /// `approve <id> [note]` (Teams; Slack has buttons).
    Approve(&'a str, &'a str),
    /// `reject <id> [note]`.
    Reject(&'a str, &'a str),
    /// Anything else: a question.
    Ask(&'a str),
}

pub(crate) fn parse(text: &str) -> Command<'_> {
    let text = text.trim();
    let (word, rest) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(w, r)| (w, r.trim()));
    match word.to_ascii_lowercase().as_str() {
        "" | "help" => Command::Help,
        "status" if rest.is_empty() => Command::Status,
        "similar" if !rest.is_empty() => Command::Similar(rest),
        "approve" if !rest.is_empty() => {
            let (id, note) = split_id(rest);
            Command::Approve(id, note)
        }
        "reject" if !rest.is_empty() => {
            let (id, note) = split_id(rest);
            Command::Reject(id, note)
        }
        _ => Command::Ask(text),
    }
}

fn split_id(rest: &str) -> (&str, &str) {
    rest.split_once(char::is_whitespace)
        .map_or((rest, ""), |(id, note)| (id, note.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_from_the_first_word_and_anything_else_is_a_question() {
        assert_eq!(parse("  "), Command::Help);
        assert_eq!(parse("STATUS"), Command::Status);
        assert_eq!(
            parse("similar  disk full on db-1 "),
            Command::Similar("disk full on db-1")
        );
        assert_eq!(
            parse("approve 1a2b3c4d looks safe"),
            Command::Approve("1a2b3c4d", "looks safe")
        );
        assert_eq!(parse("reject 1a2b3c4d"), Command::Reject("1a2b3c4d", ""));
        assert_eq!(
            parse("status of checkout?"),
            Command::Ask("status of checkout?")
        );
        assert_eq!(parse("similar"), Command::Ask("similar"));
    }
}
