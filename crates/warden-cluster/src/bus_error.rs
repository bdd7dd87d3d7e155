//! What can go wrong on the bus (NATS JetStream).

use crate::ClusterError;

/// Errors from the bus: connecting, setting up streams, publishing,
/// forwarding edge records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The NATS server at `url` could not be reached.
    #[error("NATS at {url}: cannot connect: {why}")]
    Connect {
        /// The URL tried.
        url: String,
        /// Why it failed (refused, timed out, …).
        why: String,
    },
    /// A stream or consumer could not be created, updated or read.
    #[error("NATS: {what} `{name}`: {source}")]
    Setup {
        /// What was being set up (`the intake stream`, …).
        what: &'static str,
        /// The stream's or consumer's name.
        name: String,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
    /// A publish was refused or not acknowledged.
    #[error("NATS: publish to `{subject}`: {source}")]
    Publish {
        /// The subject published to.
        subject: String,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
    /// A subscription could not be made.
    #[error("NATS: subscribe to `{subject}`: {source}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
    /// An intake key cannot be used as a message id.
    #[error("intake key `{key}`: {why}")]
    IntakeKey {
        /// The key (its first 64 characters).
        key: String,
        /// What is wrong with it.
        why: String,
    },
    /// A task or record is larger than the bus carries.
    #[error("`{id}` is {bytes} bytes; at most {max}")]
    TooBig {
        /// The task's or record's id.
        id: String,
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Something could not be encoded or decoded.
    #[error("{what}: {why}")]
    Malformed {
        /// What it was.
        what: String,
        /// What was wrong.
        why: String,
    },
    /// An edge box's buffer is full: the record is refused, not dropped.
    /// It frees up as records are forwarded to the hub and trimmed.
    #[error(
        "edge `{domain}`: the buffer `{stream}` is full ({max_bytes} bytes); record `{id}` refused"
    )]
    EdgeBufferFull {
        /// The edge's JetStream domain.
        domain: String,
        /// The buffering stream.
        stream: String,
        /// Its bound.
        max_bytes: i64,
        /// The refused record's id.
        id: String,
    },
    /// A name that must be a single subject token (a domain) is not one.
    #[error("`{name}` is not a valid {what}: letters, digits, `-` and `_` only")]
    Name {
        /// What the name is for.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// The record (PostgreSQL) failed in a way the bus cannot retry.
    #[error(transparent)]
    Record(#[from] ClusterError),
}

impl BusError {
    pub(crate) fn setup<E>(what: &'static str, name: &str, source: E) -> BusError
    where
        E: Into<async_nats::Error>,
    {
        BusError::Setup {
            what,
            name: name.to_string(),
            source: source.into(),
        }
    }
}

/// Box a client error.
pub(crate) fn boxed<E>(e: E) -> async_nats::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    Box::new(e)
}
