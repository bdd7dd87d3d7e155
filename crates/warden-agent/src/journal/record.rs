//! One keyed line of the journal: how it is written and read back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::event::JournalEvent;
use super::key::HostKey;

/// The `prev` of the first record.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// `,"mac":"` + 64 hex digits + `"}`.
const MAC_SUFFIX_LEN: usize = 8 + 64 + 2;

/// One journal record, as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// Position in the journal, from 0, with no gaps.
    pub seq: u64,
    /// When it was written, RFC 3339 UTC.
    pub ts: String,
    /// The task it belongs to.
    pub task_id: String,
    /// What happened.
    #[serde(flatten)]
    pub event: JournalEvent,
    /// The previous record's MAC.
    pub prev: String,
    /// HMAC-SHA256 of this record's bytes (without this field) under the
    /// host key.
    pub mac: String,
}

impl JournalRecord {
    /// The `prev` of a chain's first record.
    pub const GENESIS: &'static str = GENESIS;

    /// Seal `event` as record `seq` of a chain whose last MAC is `prev`,
    /// in the journal's own format under `key`: the line (ending in `\n`),
    /// exactly as a journal file holds it, and the record. Other stores of
    /// the same chain (a cluster's PostgreSQL) keep these lines.
    ///
    /// ```
    /// use warden_agent::{HostKey, JournalEvent, JournalRecord};
    ///
    /// let key = HostKey::from_bytes([7; 32]);
    /// let event = JournalEvent::Skip { step_id: "s1".into(), tool: "probe".into(), reason: "not needed".into() };
    /// let (line, record) = JournalRecord::seal(&key, 0, "2026-12-05T14:00:00Z", "t-1", &event, JournalRecord::GENESIS)?;
    /// assert_eq!(JournalRecord::open(&key, &line).map_err(|e| warden_agent::AgentError::Config { reason: e })?, record);
    /// let forged = line.replace("not needed", "not wanted");
    /// assert!(JournalRecord::open(&key, &forged).is_err());
    /// # Ok::<(), warden_agent::AgentError>(())
    /// ```
    pub fn seal(
        key: &HostKey,
        seq: u64,
        ts: &str,
        task_id: &str,
        event: &JournalEvent,
        prev: &str,
    ) -> Result<(String, JournalRecord), crate::error::AgentError> {
        let (line, mac) = encode(key, seq, ts, task_id, event, prev).map_err(|e| {
            crate::error::AgentError::Config {
                reason: format!("journal record: {e}"),
            }
        })?;
        let record = JournalRecord {
            seq,
            ts: ts.to_string(),
            task_id: task_id.to_string(),
            event: event.clone(),
            prev: prev.to_string(),
            mac,
        };
        Ok((line, record))
    }

    /// Read one line back (with or without its `\n`), checking its MAC
    /// under `key`; the error says what is wrong with it.
    pub fn open(key: &HostKey, line: &str) -> Result<JournalRecord, String> {
        match decode(key, line.strip_suffix('\n').unwrap_or(line)) {
            Decoded::Good(r) => Ok(*r),
            Decoded::Forged(r) => Err(format!(
                "record {} does not match its MAC: edited, or keyed with another host key",
                r.seq
            )),
            Decoded::Bad(why) => Err(why),
        }
    }
}

#[derive(Deserialize)]
struct Raw {
    seq: u64,
    ts: String,
    task_id: String,
    kind: String,
    data: Value,
    prev: String,
    mac: String,
}

/// The line for `event` (ending in `\n`) and its MAC.
///
/// The body is `{"seq","ts","task_id","kind","data","prev"}`: the event
/// serialises adjacently tagged (`{"kind":…,"data":…}`), so its two members
/// are written straight between the header and `prev`, in one pass and
/// without an intermediate `serde_json::Value`. The MAC covers these bytes
/// as written; readers check it against the line's text, never a
/// re-encoding.
pub(crate) fn encode(
    key: &HostKey,
    seq: u64,
    ts: &str,
    task_id: &str,
    event: &JournalEvent,
    prev: &str,
) -> Result<(String, String), serde_json::Error> {
    let mut body = Vec::with_capacity(256);
    body.extend_from_slice(b"{\"seq\":");
    serde_json::to_writer(&mut body, &seq)?;
    body.extend_from_slice(b",\"ts\":");
    serde_json::to_writer(&mut body, ts)?;
    body.extend_from_slice(b",\"task_id\":");
    serde_json::to_writer(&mut body, task_id)?;
    let members = body.len();
    serde_json::to_writer(&mut body, event)?;
    // `{"kind":…,"data":…}` → `,"kind":…,"data":…`: the event's opening
    // brace becomes the separator in place, its closing one goes.
    if body.get(members) != Some(&b'{') || body.pop() != Some(b'}') {
        return Err(serde::ser::Error::custom(
            "a journal event must serialise as an object",
        ));
    }
    body[members] = b',';
    body.extend_from_slice(b",\"prev\":");
    serde_json::to_writer(&mut body, prev)?;
    body.push(b'}');
    let mac = key.tag(&body);
    body.pop();
    body.extend_from_slice(b",\"mac\":\"");
    body.extend_from_slice(mac.as_bytes());
    body.extend_from_slice(b"\"}\n");
    // serde_json writes UTF-8 only, and the rest is ASCII.
    let line = String::from_utf8(body).map_err(|e| serde::ser::Error::custom(e.to_string()))?;
    Ok((line, mac))
}

/// How a line read back.
pub(crate) enum Decoded {
    /// A record whose MAC matches.
    Good(Box<JournalRecord>),
    /// A well-formed record whose MAC does not match its content.
    Forged(Box<JournalRecord>),
    /// Not a record at all, or a kind/data this version does not know.
    Bad(String),
}

pub(crate) fn decode(key: &HostKey, line: &str) -> Decoded {
    let raw: Raw = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => {
            let hint = if line.contains("\"hash\":\"") && !line.contains("\"mac\":\"") {
                " (an unkeyed record from an earlier warden version: move that journal aside)"
            } else {
                ""
            };
            return Decoded::Bad(format!("not a journal record: {e}{hint}"));
        }
    };
    if line.len() < MAC_SUFFIX_LEN || !line.ends_with("\"}") {
        return Decoded::Bad("the record does not end with its MAC".into());
    }
    let cut = line.len() - MAC_SUFFIX_LEN;
    if !line.is_char_boundary(cut) || !line[cut..].starts_with(",\"mac\":\"") {
        return Decoded::Bad("the record does not end with its MAC".into());
    }
    let event: JournalEvent =
        match serde_json::from_value(serde_json::json!({"kind": raw.kind, "data": raw.data})) {
            Ok(e) => e,
            Err(e) => {
                return Decoded::Bad(format!(
                    "record {} has kind `{}` with data this version cannot read: {e}",
                    raw.seq,
                    raw.kind.escape_debug()
                ));
            }
        };
    let mut body = String::with_capacity(cut + 1);
    body.push_str(&line[..cut]);
    body.push('}');
    let ok = key.check(body.as_bytes(), &raw.mac);
    let record = Box::new(JournalRecord {
        seq: raw.seq,
        ts: raw.ts,
        task_id: raw.task_id,
        event,
        prev: raw.prev,
        mac: raw.mac,
    });
    if ok {
        Decoded::Good(record)
    } else {
        Decoded::Forged(record)
    }
}
