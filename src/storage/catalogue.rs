//! The catalogue of a bucket: every complete backup stored in it, read from the manifests, so a
//! user in a fresh cluster can find what to restore. Runs without a manifest are incomplete and
//! never listed as restorable.

use chrono::{DateTime, Utc};

use crate::core::layout;
use crate::core::manifest::{Manifest, ManifestError};
use crate::storage::{Storage, StorageError};

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

/// Walks `backups/<namespace>/<name>/<timestamp>/` and reads every manifest.
pub async fn list(storage: &Storage) -> Result<Catalogue, CatalogueError> {
    let mut catalogue = Catalogue::default();
    for namespace_dir in storage.list_dirs(layout::BACKUPS_DIR).await? {
        for backup_dir in storage.list_dirs(&namespace_dir).await? {
            for run_dir in storage.list_dirs(&backup_dir).await? {
                if layout::parse_run_timestamp(&run_dir).is_none() {
                    continue;
                }
                match storage.get(&layout::manifest_key(&run_dir)).await {
                    Ok(bytes) => match Manifest::from_bytes(&bytes) {
                        Ok(manifest) => catalogue.complete.push(entry(&run_dir, manifest)),
                        Err(err) => catalogue.unrestorable.push(Unrestorable {
                            backup_path: run_dir,
                            reason: unreadable(&err),
                        }),
                    },
                    Err(err) if err.category() == crate::storage::ErrorCategory::NotFound => {
                        catalogue.unrestorable.push(Unrestorable {
                            backup_path: run_dir,
                            reason: "no manifest.json: the run did not finish".to_string(),
                        });
                    }
                    Err(err) => return Err(err.into()),
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
