//! A change feed from PostgreSQL: `LISTEN` on one channel over a
//! connection of its own, reconnecting when PostgreSQL goes away. A
//! notification is a hint (the row is read back); after every (re)connect
//! the feed says [`FeedEvent::Resync`], because notifications sent while it
//! was away are lost.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::ClusterError;
use crate::record::Record;
use crate::security::Security;

/// The channel approvals are announced on (payload: the approval id).
pub const APPROVALS_CHANNEL: &str = "warden_approvals";

/// What the feed saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// A notification's payload.
    Notified(String),
    /// The feed (re)connected: what happened meanwhile was not announced,
    /// so read the state again.
    Resync,
}

/// Notifications on one channel, until dropped.
///
/// ```no_run
/// # async fn demo(record: warden_cluster::Record) {
/// use warden_cluster::{APPROVALS_CHANNEL, FeedEvent};
/// let mut feed = record.feed(APPROVALS_CHANNEL);
/// while let Some(event) = feed.next().await {
///     match event {
///         FeedEvent::Notified(id) => println!("approval {id} changed"),
///         FeedEvent::Resync => println!("read every approval again"),
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Feed {
    rx: mpsc::Receiver<FeedEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Feed {
    /// The next event; `None` only when the feed stopped.
    pub async fn next(&mut self) -> Option<FeedEvent> {
        self.rx.recv().await
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Record {
    /// Listen on `channel` (a fixed identifier such as
    /// [`APPROVALS_CHANNEL`]) over a connection of its own, on the current
    /// tokio runtime. The first event is a [`FeedEvent::Resync`] once the
    /// feed listens.
    pub fn feed(&self, channel: &'static str) -> Feed {
        let (tx, rx) = mpsc::channel(256);
        let url = self.url().to_string();
        let security = self.security().clone();
        let task = tokio::spawn(async move {
            let mut pause = Duration::from_millis(100);
            loop {
                match listen(&url, &security, channel, &tx).await {
                    Ok(Ended::Dropped) => return,
                    Ok(Ended::Lost) => pause = Duration::from_millis(100),
                    Err(e) => tracing::warn!(channel, error = %e, "cannot listen; retrying"),
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        });
        Feed { rx, task }
    }
}

enum Ended {
    /// Nobody reads the feed any more.
    Dropped,
    /// The connection ended.
    Lost,
}

async fn listen(
    url: &str,
    security: &Security,
    channel: &'static str,
    tx: &mpsc::Sender<FeedEvent>,
) -> Result<Ended, ClusterError> {
    let (ntx, mut nrx) = mpsc::unbounded_channel();
    let client = security.connect_postgres_feeding(url, Some(ntx)).await?;
    let listening = client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .map_err(ClusterError::pg("listen"));
    listening?;
    if tx.send(FeedEvent::Resync).await.is_err() {
        return Ok(Ended::Dropped);
    }
    while let Some(payload) = nrx.recv().await {
        if tx.send(FeedEvent::Notified(payload)).await.is_err() {
            return Ok(Ended::Dropped);
        }
    }
    // The driver ended: the connection is gone. `client` lives until here
    // so the connection is not closed from this side.
    drop(client);
    Ok(Ended::Lost)
}
