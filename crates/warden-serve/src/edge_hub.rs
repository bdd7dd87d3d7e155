//! The hub's end of the edge boxes (`[cluster] edges`): `WARDEN_EDGE_IN`
//! sources each edge's buffer, and the edge sink stores the records in
//! PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use warden_cluster::{EdgeHub, EdgeSink, Record, Security};

/// The hub's end (`[cluster] edges`): make `WARDEN_EDGE_IN` source from
/// each edge (retried until each edge's leaf connection is up), and store
/// edge records in PostgreSQL with the edge sink (started again when its
/// connection fails) until `stop` fires.
pub(crate) async fn hub(
    nats: String,
    postgres: String,
    security: Security,
    edges: Vec<String>,
    stop: CancellationToken,
) {
    let sources = {
        let (nats, security, stop) = (nats.clone(), security.clone(), stop.clone());
        tokio::spawn(async move { source_edges(&nats, &security, edges, &stop).await })
    };
    while !stop.is_cancelled() {
        let sink = async {
            let sink = EdgeSink::connect_with(&nats, &security)
                .await
                .map_err(|e| e.to_string())?;
            let record = Record::connect_with(&postgres, &security)
                .await
                .map_err(|e| e.to_string())?;
            sink.run(Arc::new(record), stop.clone())
                .await
                .map_err(|e| e.to_string())
        };
        match sink.await {
            Ok(stats) => tracing::info!(?stats, "the edge sink stopped"),
            Err(e) => tracing::warn!(error = %e, "the edge sink failed; starting it again"),
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    sources.abort();
}

async fn source_edges(
    nats: &str,
    security: &Security,
    mut edges: Vec<String>,
    stop: &CancellationToken,
) {
    let mut hub = None;
    let mut pause = Duration::from_millis(200);
    while !edges.is_empty() && !stop.is_cancelled() {
        if hub.is_none() {
            match EdgeHub::connect_with(nats, security).await {
                Ok(h) => hub = Some(h),
                Err(e) => tracing::warn!(error = %e, "[cluster] nats: cannot source the edges yet"),
            }
        }
        if let Some(h) = &hub {
            let mut left = Vec::new();
            for domain in edges {
                match h.ensure_hub_source(&domain).await {
                    Ok(()) => tracing::info!(edge = %domain, "the hub sources this edge's records"),
                    Err(e) => {
                        tracing::debug!(edge = %domain, error = %e, "cannot source the edge yet (its leaf link is not up?)");
                        left.push(domain);
                    }
                }
            }
            edges = left;
        }
        if edges.is_empty() {
            return;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}
