//! Verifying the journal kept in the record: one keyed chain per task, and
//! the global chain of anchors that fixes each task chain's head after
//! every commit.

use std::collections::BTreeMap;

use warden::journal::{HostKey, JournalEvent, JournalRecord};

use crate::error::ClusterError;
use crate::record::Record;

/// What [`verify_journal`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterVerify {
    /// Task chains read.
    pub tasks: u64,
    /// Records in them.
    pub records: u64,
    /// Anchors in the global chain.
    pub anchors: u64,
    /// Everything wrong, one sentence each; empty when it verifies.
    pub problems: Vec<String>,
}

impl ClusterVerify {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Check `line`, stored as record `seq` of `task`'s chain (called `label`
/// in problems), against the chain so far (its MACs, in order); push its
/// MAC (empty when it does not open) and any problem.
pub(crate) fn check_line(
    key: &HostKey,
    label: &str,
    task: &str,
    seq: i64,
    line: &str,
    chain: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    let expected = chain.len() as u64;
    let rec = match JournalRecord::open(key, line) {
        Ok(r) => r,
        Err(why) => {
            problems.push(format!("{label} record {seq}: {why}"));
            chain.push(String::new());
            return;
        }
    };
    let prev = chain.last().map_or(JournalRecord::GENESIS, String::as_str);
    if u64::try_from(seq).ok() != Some(expected) || rec.seq != expected {
        problems.push(format!(
            "{label}: record {} where record {expected} belongs (a gap or a duplicate)",
            rec.seq
        ));
    }
    if rec.task_id != task {
        problems.push(format!(
            "{label} record {seq} belongs to task `{}`",
            rec.task_id
        ));
    }
    if rec.prev != prev {
        problems.push(format!(
            "{label} record {seq} does not follow the record before it (the chain is broken)"
        ));
    }
    chain.push(rec.mac);
}

/// Verify the journal in `record` under `key`: every task's chain (or only
/// `task`'s) record by record (MAC, sequence, link to the previous record),
/// and the global anchor chain, whose anchors must each name a record that
/// is in its task's chain, and whose last anchor for each task must be that
/// task's head (a record appended without its anchor, or a cut tail, shows).
///
/// ```no_run
/// # async fn demo(record: &warden_cluster::Record) -> Result<(), warden_cluster::ClusterError> {
/// let key = warden::journal::HostKey::from_bytes([7; 32]);
/// let report = warden_cluster::verify_journal(record, &key, None).await?;
/// assert!(report.is_ok(), "{:?}", report.problems);
/// # Ok(()) }
/// ```
pub async fn verify_journal(
    record: &Record,
    key: &HostKey,
    task: Option<&str>,
) -> Result<ClusterVerify, ClusterError> {
    let (lines, anchors) = record.journal_lines(task).await?;
    let mut report = ClusterVerify::default();
    // task -> MACs in order.
    let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (task_id, seq, line) in lines {
        let chain = chains.entry(task_id.clone()).or_default();
        report.records += 1;
        let label = format!("task `{task_id}`");
        check_line(
            key,
            &label,
            &task_id,
            seq,
            &line,
            chain,
            &mut report.problems,
        );
    }
    report.tasks = chains.len() as u64;

    let mut last_anchor: BTreeMap<String, u64> = BTreeMap::new();
    let mut prev = JournalRecord::GENESIS.to_string();
    for (n, (seq, line)) in anchors.into_iter().enumerate() {
        report.anchors += 1;
        let rec = match JournalRecord::open(key, &line) {
            Ok(r) => r,
            Err(why) => {
                report.problems.push(format!("anchor {seq}: {why}"));
                prev = String::new();
                continue;
            }
        };
        if u64::try_from(seq).ok() != Some(n as u64) || rec.seq != n as u64 {
            report
                .problems
                .push(format!("anchor {seq} where anchor {n} belongs"));
        }
        if rec.prev != prev {
            report.problems.push(format!(
                "anchor {seq} does not follow the anchor before it (the global chain is broken)"
            ));
        }
        prev = rec.mac.clone();
        let (anchored, records, head) = match rec.event {
            JournalEvent::Anchored {
                task,
                records,
                head,
            } => (task, records, head),
            other => {
                report
                    .problems
                    .push(format!("anchor {seq} is a `{}` record", other.kind()));
                continue;
            }
        };
        if task.is_some_and(|t| t != anchored) {
            continue;
        }
        let at = records
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| chains.get(&anchored)?.get(i));
        if at != Some(&head) {
            report.problems.push(format!(
                "anchor {seq} fixes record {} of task `{anchored}`, which is not in its chain",
                records.saturating_sub(1)
            ));
        }
        last_anchor.insert(anchored, records);
    }
    for (task_id, chain) in &chains {
        match last_anchor.get(task_id) {
            Some(&n) if n == chain.len() as u64 => {}
            Some(&n) => report.problems.push(format!(
                "task `{task_id}` has {} records but its last anchor fixes {n}",
                chain.len()
            )),
            None => report
                .problems
                .push(format!("task `{task_id}` has no anchor")),
        }
    }
    Ok(report)
}
