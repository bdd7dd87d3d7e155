//! Scale-out for `warden serve`: many workers on the distributed engines a
//! team already runs, not a home-made cluster.
//!
//! - **PostgreSQL is the record** ([`Record`]): every task with its intake
//!   key (a retried webhook is stored once), the leases workers hold on
//!   tasks, the fenced outcome of every step, the journal, the history the
//!   policy's rate limits read ([`Record::decide`]), approvals any worker
//!   can answer ([`Record::answer_approval`]), and resolved incidents each
//!   worker's memory follows ([`IncidentFollower`]).
//! - **NATS JetStream carries the traffic**: alert intake, wake-ups for idle
//!   workers, and edge boxes as leaf nodes.
//!
//! - **Workers** ([`Worker`]) claim tasks with a lease and an epoch, run
//!   them on the agent's one path with a [`ClusterLedger`] (plan and step
//!   outcomes kept, fenced, so a re-claimed task resumes and no mutating
//!   call is repeated), and journal into one keyed chain per task plus a
//!   global anchor chain ([`verify_journal`]).
//!
//! The embedded single-machine mode (redb and the in-process queue) stays
//! `warden serve`'s default.
//!
//! ```no_run
//! # async fn demo() -> Result<(), warden_cluster::ClusterError> {
//! let record = warden_cluster::Record::connect("postgresql://warden@127.0.0.1/warden").await?;
//! record.migrate().await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod approvals;
mod bus;
mod bus_error;
mod edge_sink;
mod error;
mod feed;
mod history;
mod incidents;
mod journal;
mod leaf;
mod ledger;
mod record;
mod security;
mod worker;

pub use approvals::{AskedApproval, StoredApproval};
pub use bus::{
    Bus, BusConfig, INTAKE_CONSUMER, INTAKE_STREAM, INTAKE_SUBJECTS, IntakeStats, Published,
    WAKE_SUBJECT, WakeGuard,
};
pub use bus_error::BusError;
pub use edge_sink::{
    EDGE_SINK_CONSUMER, EdgeSink, SinkStats, edge_journal_id, edge_journal_payload,
    seal_edge_record, verify_edge_journal,
};
pub use error::ClusterError;
pub use feed::{APPROVALS_CHANNEL, Feed, FeedEvent};
pub use incidents::{INCIDENTS_CHANNEL, IncidentFollower};
pub use journal::{ClusterVerify, verify_journal};
pub use leaf::{EDGE_IN_STREAM, EDGE_STREAM, EdgeHub, EdgeLink, EdgeRecord, is_jetstream_domain};
pub use ledger::ClusterLedger;
pub use record::{Claim, Commit, Enqueued, Fence, Finish, MAX_TASK_BYTES, Record, StepRow};
pub use security::{NatsAuth, Security};
pub use worker::{DEFAULT_MAX_ATTEMPTS, Worker, WorkerStats};
