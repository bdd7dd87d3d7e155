//! The history the policy sees, counted from the journal so that limits
//! hold across runs and processes. A change counts from the moment it is
//! allowed (an allowed decision, or an approval), not when the call ends,
//! and [`Journal::decide`](super::Journal::decide) reads the count and
//! records the decision under one lock: two processes cannot both take the
//! last change under a limit.

use std::collections::{HashMap, VecDeque};

use jiff::{SignedDuration, Timestamp};

use super::event::JournalEvent;
use super::record::JournalRecord;

/// Changes made in the last hour, as the journal counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentMutations {
    /// By the same agent (its name).
    pub by_agent: u64,
    /// On behalf of the same principal.
    pub by_principal: u64,
    /// In the same environment.
    pub in_env: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Who {
    agent: String,
    principal: String,
    env: String,
}

/// Who runs each open task, and the recent mutations.
#[derive(Debug, Default)]
pub(crate) struct History {
    tasks: HashMap<String, Who>,
    mutations: VecDeque<(Timestamp, Who)>,
}

/// Tasks remembered at most (a task that never ended, e.g. a crash, would
/// otherwise stay forever).
const MAX_OPEN_TASKS: usize = 100_000;

impl History {
    pub(crate) fn observe(&mut self, record: &JournalRecord) {
        self.observe_parts(&record.ts, &record.task_id, &record.event);
    }

    pub(crate) fn observe_parts(&mut self, ts: &str, task_id: &str, event: &JournalEvent) {
        match event {
            JournalEvent::Task(t) => {
                if self.tasks.len() >= MAX_OPEN_TASKS {
                    self.tasks.clear();
                }
                self.tasks.insert(
                    task_id.to_string(),
                    Who {
                        agent: t.agent.clone(),
                        principal: t.principal.clone(),
                        env: t.env.clone(),
                    },
                );
            }
            JournalEvent::Decision(d) if d.is_allowed_change() => self.count(ts, task_id),
            JournalEvent::Approval(a)
                if a.approved && !a.dry_run && a.effect != warden_types::Effect::ReadOnly =>
            {
                self.count(ts, task_id);
            }
            JournalEvent::Outcome(_) => {
                self.tasks.remove(task_id);
            }
            _ => {}
        }
    }

    fn count(&mut self, ts: &str, task_id: &str) {
        let (Ok(at), Some(who)) = (ts.parse::<Timestamp>(), self.tasks.get(task_id)) else {
            return;
        };
        let who = who.clone();
        self.prune(at);
        self.mutations.push_back((at, who));
    }

    fn prune(&mut self, now: Timestamp) {
        let hour_ago = now - SignedDuration::from_hours(1);
        while self.mutations.front().is_some_and(|(t, _)| *t <= hour_ago) {
            self.mutations.pop_front();
        }
    }

    pub(crate) fn recent(
        &mut self,
        agent: &str,
        principal: &str,
        env: &str,
        now: Timestamp,
    ) -> RecentMutations {
        self.prune(now);
        let mut r = RecentMutations::default();
        for (_, who) in &self.mutations {
            r.by_agent += u64::from(who.agent == agent);
            r.by_principal += u64::from(who.principal == principal);
            r.in_env += u64::from(who.env == env);
        }
        r
    }
}
