//! The crash-safe record store (redb): incidents, vectors, clusters, metadata.
//!
//! Every mutation of the memory happens inside one redb write transaction,
//! committed with fsync (redb's default `Durability::Immediate`), so a batch
//! is either wholly on disk or not at all. The index on disk is derived data.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, Table, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{Cluster, Incident, MemoryError};

/// id -> JSON [`Row`].
const INCIDENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("incidents");
/// live slot -> id. A slot numbers one version of one record's vector.
const SLOTS: TableDefinition<u64, &str> = TableDefinition::new("slots");
/// slot -> f32 little-endian vector.
const VECTORS: TableDefinition<u64, &[u8]> = TableDefinition::new("vectors");
/// slot -> cluster id.
const MEMBERSHIP: TableDefinition<u64, u64> = TableDefinition::new("membership");
/// cluster id -> JSON [`Cluster`].
const CLUSTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("clusters");
/// cluster id -> f32 little-endian sum of member vectors.
const SUMS: TableDefinition<u64, &[u8]> = TableDefinition::new("cluster_sums");
/// name -> bytes.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Store format version in `meta/format`.
pub(crate) const FORMAT: u64 = 1;

/// Metadata keys.
pub(crate) mod key {
    pub(crate) const FORMAT: &str = "format";
    /// Bumped by every commit; the index dump records the one it reflects.
    pub(crate) const GENERATION: &str = "generation";
    pub(crate) const NEXT_SLOT: &str = "next_slot";
    pub(crate) const NEXT_CLUSTER: &str = "next_cluster";
    pub(crate) const FINGERPRINT: &str = "fingerprint";
    pub(crate) const DIM: &str = "dim";
    pub(crate) const EMBEDDER_STATE: &str = "embedder_state";
    /// Documents in the corpus when all vectors were last computed.
    pub(crate) const EMBEDDED_DOCS: &str = "embedded_docs";
    /// The HNSW shape the store was created with (`MemoryOptions`).
    pub(crate) const HNSW_LINKS: &str = "hnsw_max_connections";
    pub(crate) const HNSW_EF_CONSTRUCTION: &str = "hnsw_ef_construction";
}

/// A stored incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    pub incident: Incident,
    pub slot: u64,
    pub ingested_at: Timestamp,
}

impl Row {
    /// When the incident happened, for a cluster's first/last seen.
    pub(crate) fn seen_at(&self) -> Timestamp {
        self.incident.opened_at.unwrap_or(self.ingested_at)
    }
}

/// A cluster: its public description and the sum of its members' vectors
/// (the centroid before normalisation, so members can be added and removed
/// exactly), stored in two tables so listing clusters skips the vectors.
#[derive(Debug, Clone)]
pub(crate) struct ClusterRow {
    pub info: Cluster,
    pub sum: Vec<f32>,
}

/// The database file and how to reach it.
#[derive(Debug)]
pub(crate) struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens or creates the store file and makes sure every table exists.
    pub(crate) fn open(path: &Path) -> Result<Self, MemoryError> {
        let db = Database::builder().create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => MemoryError::Locked {
                path: path.to_path_buf(),
            },
            other => store_err(path, other),
        })?;
        let store = Self {
            db,
            path: path.to_path_buf(),
        };
        store.write(|w| {
            if w.meta_u64(key::FORMAT)?.is_none() {
                w.set_meta_u64(key::FORMAT, FORMAT)?;
            }
            Ok(())
        })?;
        let format = store.read()?.meta_u64(key::FORMAT)?;
        if format != Some(FORMAT) {
            return Err(MemoryError::Store {
                path: path.to_path_buf(),
                reason: format!("unsupported store format {format:?}, this build reads {FORMAT}"),
            });
        }
        Ok(store)
    }

    /// A consistent snapshot for reading.
    pub(crate) fn read(&self) -> Result<Reader, MemoryError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        Reader::new(txn, &self.path)
    }

    /// Runs `f` in one write transaction: committed when `f` returns `Ok`,
    /// rolled back (nothing written) when it returns `Err`.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, MemoryError>,
    ) -> Result<T, MemoryError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let out = {
            let mut w = Writer::new(&txn, &self.path)?;
            f(&mut w)
        };
        match out {
            Ok(v) => {
                txn.commit().map_err(|e| self.err(e))?;
                Ok(v)
            }
            Err(e) => {
                // Dropping also aborts; aborting explicitly reports nothing new.
                let _ = txn.abort();
                Err(e)
            }
        }
    }

    fn err(&self, e: impl Into<redb::Error>) -> MemoryError {
        store_err(&self.path, e)
    }
}

fn store_err(path: &Path, e: impl Into<redb::Error>) -> MemoryError {
    MemoryError::Store {
        path: path.to_path_buf(),
        reason: e.into().to_string(),
    }
}

/// Read access shared by [`Reader`] and [`Writer`]: the tables behind one snapshot.
macro_rules! readers {
    () => {
        pub(crate) fn row(&self, id: &str) -> Result<Option<Row>, MemoryError> {
            match self
                .incidents
                .get(id)
                .map_err(|e| store_err(&self.path, e))?
            {
                Some(g) => Ok(Some(decode(g.value(), &self.path)?)),
                None => Ok(None),
            }
        }

        pub(crate) fn rows(&self) -> Result<Vec<Row>, MemoryError> {
            let mut out = Vec::new();
            for entry in self
                .incidents
                .iter()
                .map_err(|e| store_err(&self.path, e))?
            {
                let (_, v) = entry.map_err(|e| store_err(&self.path, e))?;
                out.push(decode(v.value(), &self.path)?);
            }
            Ok(out)
        }

        pub(crate) fn len(&self) -> Result<u64, MemoryError> {
            self.incidents.len().map_err(|e| store_err(&self.path, e))
        }

        pub(crate) fn id_of(&self, slot: u64) -> Result<Option<String>, MemoryError> {
            Ok(self
                .slots
                .get(slot)
                .map_err(|e| store_err(&self.path, e))?
                .map(|g| g.value().to_owned()))
        }

        /// Every live `(slot, vector)`.
        #[allow(
            dead_code,
            reason = "one macro serves Reader and Writer; only Reader uses it"
        )]
        pub(crate) fn vectors(&self) -> Result<Vec<(u64, Vec<f32>)>, MemoryError> {
            let mut out = Vec::new();
            for entry in self.slots.iter().map_err(|e| store_err(&self.path, e))? {
                let (slot, _) = entry.map_err(|e| store_err(&self.path, e))?;
                let slot = slot.value();
                if let Some(v) = self.vector(slot)? {
                    out.push((slot, v));
                }
            }
            Ok(out)
        }

        pub(crate) fn vector(&self, slot: u64) -> Result<Option<Vec<f32>>, MemoryError> {
            Ok(self
                .vectors
                .get(slot)
                .map_err(|e| store_err(&self.path, e))?
                .map(|g| bytes_to_f32(g.value())))
        }

        pub(crate) fn cluster_of(&self, slot: u64) -> Result<Option<u64>, MemoryError> {
            Ok(self
                .membership
                .get(slot)
                .map_err(|e| store_err(&self.path, e))?
                .map(|g| g.value()))
        }

        /// A cluster with its member sum, for updating it.
        #[allow(
            dead_code,
            reason = "one macro serves Reader and Writer; only Writer uses it"
        )]
        pub(crate) fn cluster(&self, id: u64) -> Result<Option<ClusterRow>, MemoryError> {
            let Some(info) = self.cluster_info(id)? else {
                return Ok(None);
            };
            let stored = self
                .sums
                .get(id)
                .map_err(|e| store_err(&self.path, e))?
                .map(|g| bytes_to_f32(g.value()));
            let sum = match stored {
                Some(sum) => sum,
                // A singleton's sum is its member's vector, not stored twice.
                None => match info.representatives.first() {
                    Some(member) => match self.row(member)? {
                        Some(row) => self.vector(row.slot)?.unwrap_or_default(),
                        None => Vec::new(),
                    },
                    None => Vec::new(),
                },
            };
            Ok(Some(ClusterRow { info, sum }))
        }

        pub(crate) fn cluster_info(&self, id: u64) -> Result<Option<Cluster>, MemoryError> {
            match self
                .clusters
                .get(id)
                .map_err(|e| store_err(&self.path, e))?
            {
                Some(g) => Ok(Some(decode(g.value(), &self.path)?)),
                None => Ok(None),
            }
        }

        pub(crate) fn clusters(&self) -> Result<Vec<Cluster>, MemoryError> {
            let mut out = Vec::new();
            for entry in self.clusters.iter().map_err(|e| store_err(&self.path, e))? {
                let (_, v) = entry.map_err(|e| store_err(&self.path, e))?;
                out.push(decode(v.value(), &self.path)?);
            }
            Ok(out)
        }

        pub(crate) fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, MemoryError> {
            Ok(self
                .meta
                .get(name)
                .map_err(|e| store_err(&self.path, e))?
                .map(|g| g.value().to_vec()))
        }

        pub(crate) fn meta_u64(&self, name: &str) -> Result<Option<u64>, MemoryError> {
            Ok(self
                .meta(name)?
                .and_then(|b| b.try_into().ok().map(u64::from_le_bytes)))
        }

        #[allow(
            dead_code,
            reason = "one macro serves Reader and Writer; only Reader uses it"
        )]
        pub(crate) fn meta_str(&self, name: &str) -> Result<Option<String>, MemoryError> {
            Ok(self.meta(name)?.and_then(|b| String::from_utf8(b).ok()))
        }
    };
}

/// A read snapshot.
pub(crate) struct Reader {
    incidents: ReadOnlyTable<&'static str, &'static [u8]>,
    slots: ReadOnlyTable<u64, &'static str>,
    vectors: ReadOnlyTable<u64, &'static [u8]>,
    membership: ReadOnlyTable<u64, u64>,
    clusters: ReadOnlyTable<u64, &'static [u8]>,
    #[allow(
        dead_code,
        reason = "read by the shared `cluster` helper, which only Writer calls"
    )]
    sums: ReadOnlyTable<u64, &'static [u8]>,
    meta: ReadOnlyTable<&'static str, &'static [u8]>,
    path: PathBuf,
}

impl Reader {
    fn new(txn: ReadTransaction, path: &Path) -> Result<Self, MemoryError> {
        let e = |e: redb::TableError| store_err(path, e);
        Ok(Self {
            incidents: txn.open_table(INCIDENTS).map_err(e)?,
            slots: txn.open_table(SLOTS).map_err(e)?,
            vectors: txn.open_table(VECTORS).map_err(e)?,
            membership: txn.open_table(MEMBERSHIP).map_err(e)?,
            clusters: txn.open_table(CLUSTERS).map_err(e)?,
            sums: txn.open_table(SUMS).map_err(e)?,
            meta: txn.open_table(META).map_err(e)?,
            path: path.to_path_buf(),
        })
    }

    readers!();
}

/// The tables of one write transaction.
pub(crate) struct Writer<'t> {
    incidents: Table<'t, &'static str, &'static [u8]>,
    slots: Table<'t, u64, &'static str>,
    vectors: Table<'t, u64, &'static [u8]>,
    membership: Table<'t, u64, u64>,
    clusters: Table<'t, u64, &'static [u8]>,
    sums: Table<'t, u64, &'static [u8]>,
    meta: Table<'t, &'static str, &'static [u8]>,
    path: PathBuf,
}

impl<'t> Writer<'t> {
    fn new(txn: &'t WriteTransaction, path: &Path) -> Result<Self, MemoryError> {
        let e = |e: redb::TableError| store_err(path, e);
        Ok(Self {
            incidents: txn.open_table(INCIDENTS).map_err(e)?,
            slots: txn.open_table(SLOTS).map_err(e)?,
            vectors: txn.open_table(VECTORS).map_err(e)?,
            membership: txn.open_table(MEMBERSHIP).map_err(e)?,
            clusters: txn.open_table(CLUSTERS).map_err(e)?,
            sums: txn.open_table(SUMS).map_err(e)?,
            meta: txn.open_table(META).map_err(e)?,
            path: path.to_path_buf(),
        })
    }

    readers!();

    pub(crate) fn put_row(&mut self, row: &Row) -> Result<(), MemoryError> {
        let bytes = encode(row, &self.path)?;
        self.incidents
            .insert(row.incident.id.as_str(), bytes.as_slice())
            .map_err(|e| store_err(&self.path, e))?;
        Ok(())
    }

    pub(crate) fn remove_row(&mut self, id: &str) -> Result<(), MemoryError> {
        self.incidents
            .remove(id)
            .map_err(|e| store_err(&self.path, e))?;
        Ok(())
    }

    /// Stores the vector of a new slot and maps the slot to its record.
    pub(crate) fn put_slot(&mut self, slot: u64, id: &str, v: &[f32]) -> Result<(), MemoryError> {
        self.slots
            .insert(slot, id)
            .map_err(|e| store_err(&self.path, e))?;
        self.put_vector(slot, v)
    }

    pub(crate) fn put_vector(&mut self, slot: u64, v: &[f32]) -> Result<(), MemoryError> {
        let bytes = f32_to_bytes(v);
        self.vectors
            .insert(slot, bytes.as_slice())
            .map_err(|e| store_err(&self.path, e))?;
        Ok(())
    }

    pub(crate) fn remove_slot(&mut self, slot: u64) -> Result<(), MemoryError> {
        self.slots
            .remove(slot)
            .map_err(|e| store_err(&self.path, e))?;
        self.vectors
            .remove(slot)
            .map_err(|e| store_err(&self.path, e))?;
        self.membership
            .remove(slot)
            .map_err(|e| store_err(&self.path, e))?;
        Ok(())
    }

    pub(crate) fn set_cluster_of(&mut self, slot: u64, cluster: u64) -> Result<(), MemoryError> {
        self.membership
            .insert(slot, cluster)
            .map_err(|e| store_err(&self.path, e))?;
        Ok(())
    }

    pub(crate) fn put_cluster(&mut self, row: &ClusterRow) -> Result<(), MemoryError> {
        let bytes = encode(&row.info, &self.path)?;
        self.clusters
            .insert(row.info.id, bytes.as_slice())
            .map_err(|e| store_err(&self.path, e))?;
        if row.info.size == 1 && row.info.representatives.len() == 1 {
            self.sums
                .remove(row.info.id)
                .map_err(|e| store_err(&self.path, e))?;
        } else {
            let sum = f32_to_bytes(&row.sum);
            self.sums
                .insert(row.info.id, sum.as_slice())
                .map_err(|e| store_err(&self.path, e))?;
        }
        Ok(())
    }

    pub(crate) fn remove_cluster(&mut self, id: u64) -> Result<(), MemoryError> {
        self.clusters
            .remove(id)
            .map_err(|e| store_err(&self.path, e))?;
        self.sums.remove(id).map_err(|e| store_err(&self.path, e))?;
        Ok(())
    }

    /// Drops every cluster and membership (before a batch re-clustering).
    pub(crate) fn clear_clusters(&mut self) -> Result<(), MemoryError> {
        self.clusters
            .retain(|_, _| false)
            .map_err(|e| store_err(&self.path, e))?;
        self.sums
            .retain(|_, _| false)
            .map_err(|e| store_err(&self.path, e))?;
        self.membership
            .retain(|_, _| false)
            .map_err(|e| store_err(&self.path, e))?;
        Ok(())
    }

    pub(crate) fn set_meta(&mut self, name: &str, value: &[u8]) -> Result<(), MemoryError> {
        self.meta
            .insert(name, value)
            .map_err(|e| store_err(&self.path, e))?;
        Ok(())
    }

    pub(crate) fn set_meta_u64(&mut self, name: &str, value: u64) -> Result<(), MemoryError> {
        self.set_meta(name, &value.to_le_bytes())
    }

    /// Takes the next value of a counter kept in metadata.
    pub(crate) fn next(&mut self, name: &str) -> Result<u64, MemoryError> {
        let n = self.meta_u64(name)?.unwrap_or(0);
        self.set_meta_u64(name, n + 1)?;
        Ok(n)
    }
}

fn encode<T: Serialize>(v: &T, path: &Path) -> Result<Vec<u8>, MemoryError> {
    serde_json::to_vec(v).map_err(|e| MemoryError::Store {
        path: path.to_path_buf(),
        reason: format!("cannot encode record: {e}"),
    })
}

fn decode<T: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, MemoryError> {
    serde_json::from_slice(bytes).map_err(|e| MemoryError::Store {
        path: path.to_path_buf(),
        reason: format!("cannot decode record: {e}"),
    })
}

pub(crate) fn f32_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn bytes_to_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
