//! The append-only, keyed journal.
//!
//! One JSON object per line: `{"seq", "ts", "task_id", "kind", "data",
//! "prev", "mac"}`, where `kind`/`data` is one typed [`JournalEvent`].
//! `mac` is HMAC-SHA256, under the [`HostKey`], of the exact bytes of the
//! line without its `mac` member (the text up to it, closed with `}`), and
//! `prev` is the previous record's MAC. Editing, reordering or deleting a
//! record breaks the chain at that line, and without the key nobody can
//! recompute it. At its creation, at the end of each task and after each
//! approval the writer records the last `{records, mac}` in a keyed `.head`
//! file beside the journal (temporary file, fsync, rename): a journal
//! shorter than its head, or one without a head, was cut. Against a writer
//! who also keeps an old head, `warden journal anchor` prints the head for an
//! outside system to keep, and `verify --anchor` checks against it.

mod event;
mod history;
mod key;
mod record;
mod verify;
mod writer;

pub use event::{
    ApprovalGiven, CallDecided, CallEnded, CapabilityDecided, Digest, JournalEvent,
    OutboxAttempted, OutcomeReached, PlanProposed, RecalledCase, TaskStarted,
};
pub use history::RecentMutations;
pub use key::HostKey;
pub use record::JournalRecord;
pub use verify::{
    Anchor, JournalTail, Problem, ProblemKind, VerifyReport, read_journal, verify_journal,
};
pub use writer::{Journal, JournalTap};
