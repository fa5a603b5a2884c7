//! The catalogue of a bucket: every complete backup stored in it, read from the manifests, so a
//! user in a fresh cluster can find what to restore. Runs without a manifest are incomplete and
//! never listed as restorable.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use crate::core::layout;
use crate::core::manifest::{Manifest, ManifestError};
use crate::storage::{ErrorCategory, Storage, StorageError};

/// Default of the largest manifest read or written: room for a one-file-per-object run of about
/// 200,000 objects (packed runs keep their object list in index documents, so their manifest
/// stays small). Reading one holds its bytes and then its parsed form, at most about twice its
/// size (lists and maps of short strings are bounded by count, see [`crate::core::manifest`]),
/// so a crafted manifest costs the operator at most about 200 MiB: within the chart's 256 MiB
/// memory limit.
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 48 << 20;

static MAX_MANIFEST_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_MAX_MANIFEST_BYTES);

/// The largest manifest this process reads (untrusted input: the bytes actually read are
/// counted) and writes (a backup whose manifest would be larger fails, rather than completing
/// a run no restore could read).
pub fn max_manifest_bytes() -> u64 {
    MAX_MANIFEST_BYTES.load(Ordering::Relaxed)
}

/// Whether `bytes` are within what a manifest may be: the same check for what a backup writes
/// and what a restore reads (which also counts what it reads). `Err` says why not.
pub fn check_manifest_limits(bytes: &[u8]) -> Result<(), String> {
    let limit = max_manifest_bytes();
    if bytes.len() as u64 > limit {
        return Err(format!(
            "{} bytes, more than the {limit} bytes read (--max-manifest-bytes)",
            bytes.len()
        ));
    }
    Ok(())
}

/// Sets [`max_manifest_bytes`] for the whole process (`--max-manifest-bytes`): it is a question
/// of the process's memory, so one value serves every location.
pub fn set_max_manifest_bytes(limit: u64) {
    MAX_MANIFEST_BYTES.store(limit.max(1 << 20), Ordering::Relaxed);
}

/// One stored run, as its manifest describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogueEntry {
    /// The run's key prefix: what a Restore's `source.backupPath` takes.
    pub backup_path: String,
    pub backup_namespace: String,
    pub backup_name: String,
    pub completed_at: DateTime<Utc>,
    pub result: String,
    pub objects: u64,
    pub bytes: u64,
    pub errors: usize,
    pub cluster_version: String,
}

/// A run directory that is not restorable, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Unrestorable {
    pub backup_path: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Catalogue {
    /// Complete backups, newest first.
    pub complete: Vec<CatalogueEntry>,
    pub unrestorable: Vec<Unrestorable>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error(transparent)]
    Storage(#[from] Box<StorageError>),
}

impl From<StorageError> for CatalogueError {
    fn from(err: StorageError) -> Self {
        CatalogueError::Storage(Box::new(err))
    }
}

/// Why a run's manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestReadError {
    /// No `manifest.json`: the run did not finish, or the path is not a run.
    #[error("backup at {path} has no manifest.json: it is incomplete or not a backup")]
    Missing {
        path: String,
        #[source]
        source: StorageError,
    },
    #[error("cannot read the manifest of backup {path}: {source}")]
    Storage {
        path: String,
        #[source]
        source: StorageError,
    },
    /// A packed run's index cannot be read or does not add up (the bucket is untrusted).
    #[error("backup at {path} has an unusable index: {source}")]
    Index {
        path: String,
        #[source]
        source: StorageError,
    },
    /// The bytes are not a manifest this version can read (the bucket is untrusted).
    #[error("backup at {path} has an unreadable manifest.json: {source}")]
    Invalid {
        path: String,
        #[source]
        source: ManifestError,
    },
}

/// Reads and parses the manifest of the run at `run_path` (trailing `/` ignored): the one
/// place the backup engine (adopting a finished run), the restore engine and the catalogue
/// read a manifest.
pub async fn read_manifest(
    storage: &Storage,
    run_path: &str,
) -> Result<Manifest, ManifestReadError> {
    let path = run_path.trim_end_matches('/').to_string();
    let bytes = match storage
        .get_bounded(&layout::manifest_key(&path), max_manifest_bytes())
        .await
    {
        Ok(bytes) => bytes,
        Err(source) if source.category() == ErrorCategory::NotFound => {
            return Err(ManifestReadError::Missing { path, source });
        }
        Err(source) => return Err(ManifestReadError::Storage { path, source }),
    };
    check_manifest_limits(&bytes).map_err(|reason| ManifestReadError::Invalid {
        path: path.clone(),
        source: ManifestError::TooLarge { reason },
    })?;
    Manifest::from_bytes(&bytes).map_err(|source| ManifestReadError::Invalid { path, source })
}

/// Walks `backups/<namespace>/<name>/<timestamp>/` and reads every manifest.
pub async fn list(storage: &Storage) -> Result<Catalogue, CatalogueError> {
    let mut catalogue = Catalogue::default();
    for namespace_dir in storage.list_dirs(layout::BACKUPS_DIR).await? {
        for backup_dir in storage.list_dirs(&namespace_dir).await? {
            for run_dir in storage.list_dirs(&backup_dir).await? {
                if layout::parse_run_timestamp(&run_dir).is_none() {
                    continue;
                }
                match read_manifest(storage, &run_dir).await {
                    Ok(manifest) => catalogue.complete.push(entry(&run_dir, manifest)),
                    Err(ManifestReadError::Invalid { source, .. }) => {
                        catalogue.unrestorable.push(Unrestorable {
                            backup_path: run_dir,
                            reason: unreadable(&source),
                        })
                    }
                    Err(ManifestReadError::Missing { .. }) => {
                        catalogue.unrestorable.push(Unrestorable {
                            backup_path: run_dir,
                            reason: "no manifest.json: the run did not finish".to_string(),
                        });
                    }
                    // Encrypted with a key this location does not have (or altered): that
                    // run cannot be read here, the others still can.
                    Err(ManifestReadError::Storage {
                        source: source @ StorageError::Sealed { .. },
                        ..
                    }) => catalogue.unrestorable.push(Unrestorable {
                        backup_path: run_dir,
                        reason: format!("manifest.json cannot be read: {source}"),
                    }),
                    Err(ManifestReadError::Storage { source, .. })
                    | Err(ManifestReadError::Index { source, .. }) => return Err(source.into()),
                }
            }
        }
    }
    catalogue
        .complete
        .sort_by_key(|e| std::cmp::Reverse(e.completed_at));
    Ok(catalogue)
}

fn entry(run_dir: &str, manifest: Manifest) -> CatalogueEntry {
    CatalogueEntry {
        backup_path: run_dir.to_string(),
        backup_namespace: manifest.backup.namespace,
        backup_name: manifest.backup.name,
        completed_at: manifest.completed_at,
        result: manifest.result,
        objects: manifest.total_objects,
        bytes: manifest.total_bytes,
        errors: manifest.errors.len(),
        cluster_version: manifest.cluster.server_version,
    }
}

fn unreadable(err: &ManifestError) -> String {
    format!("manifest.json cannot be read: {err}")
}
