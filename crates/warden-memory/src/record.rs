//! Public data types: incidents in, hits and clusters out.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// An incident or ticket as stored. Only `id` is required; `title` and `body`
/// are what gets embedded, the rest travels with the record for recall.
///
/// ```
/// use warden_memory::Incident;
///
/// let inc = Incident::new("INC-1", "disk full on db-1", "/var/lib/pg at 100%")
///     .with_resolution("rotated WAL archive");
/// assert_eq!(inc.resolution.as_deref(), Some("rotated WAL archive"));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Incident {
    /// Stable identifier; ingesting the same id again updates the record.
    pub id: String,
    /// Short summary.
    #[serde(default)]
    pub title: String,
    /// Description, log excerpt or ticket text.
    #[serde(default)]
    pub body: String,
    /// Service or component affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Severity or priority as the source system names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// When the incident was opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Timestamp>,
    /// When it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// How it was resolved, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// The plan that resolved it, as the planner wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<serde_json::Value>,
}

impl Incident {
    /// An incident with an id, a title and a body; other fields empty.
    pub fn new(id: impl Into<String>, title: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            body: body.into(),
            ..Self::default()
        }
    }

    /// Sets the resolution text.
    #[must_use]
    pub fn with_resolution(mut self, resolution: impl Into<String>) -> Self {
        self.resolution = Some(resolution.into());
        self
    }

    /// Sets the plan that resolved the incident.
    #[must_use]
    pub fn with_plan(mut self, plan: serde_json::Value) -> Self {
        self.plan = Some(plan);
        self
    }

    /// Sets when the incident was opened.
    #[must_use]
    pub fn with_opened_at(mut self, at: Timestamp) -> Self {
        self.opened_at = Some(at);
        self
    }

    /// The text that is embedded: title, then body.
    pub(crate) fn text(&self) -> String {
        if self.body.is_empty() {
            self.title.clone()
        } else {
            format!("{}\n{}", self.title, self.body)
        }
    }
}

/// One nearest neighbour from [`Memory::similar`](crate::Memory::similar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hit {
    /// Incident id.
    pub id: String,
    /// Cosine similarity to the query, in `[-1, 1]`.
    pub score: f32,
    /// Cluster the incident belongs to.
    pub cluster: Option<u64>,
}

/// One recalled case from [`Memory::recall`](crate::Memory::recall): the
/// whole incident, with its resolution and plan, and its cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecallHit {
    /// The stored incident.
    pub incident: Incident,
    /// Cosine similarity to the query.
    pub score: f32,
    /// Its cluster.
    pub cluster: Option<Cluster>,
}

/// A group of similar incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cluster {
    /// Identifier, kept stable across re-clustering where membership overlaps.
    pub id: u64,
    /// The most distinctive terms of its members.
    pub label: Vec<String>,
    /// Number of members.
    pub size: usize,
    /// Earliest member (opened time, else ingest time).
    pub first_seen: Option<Timestamp>,
    /// Latest member.
    pub last_seen: Option<Timestamp>,
    /// Ids of the members closest to the centroid.
    pub representatives: Vec<String>,
}

/// An incident with the cluster it belongs to, from [`Memory::show`](crate::Memory::show).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IncidentView {
    /// The stored incident.
    pub incident: Incident,
    /// Its cluster.
    pub cluster: Option<Cluster>,
}

/// What one [`Memory::ingest`](crate::Memory::ingest) call changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IngestReport {
    /// Records with a new id.
    pub inserted: usize,
    /// Records whose id existed and whose content changed.
    pub updated: usize,
    /// Records identical to the stored version.
    pub unchanged: usize,
    /// Clusters created by online assignment.
    pub new_clusters: usize,
    /// Whether all stored vectors were recomputed (corpus statistics drifted
    /// or the embedder changed).
    pub reembedded: bool,
}

/// What one [`Memory::recluster`](crate::Memory::recluster) call produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReclusterReport {
    /// Records clustered.
    pub records: usize,
    /// Clusters after the run.
    pub clusters: usize,
    /// Clusters with a single member.
    pub singletons: usize,
    /// Edges of the similarity graph that were kept.
    pub edges: usize,
}
