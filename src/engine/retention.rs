//! Retention: which stored runs of a Backup expire (pure), and deleting them (I/O).
//!
//! Rules, in one place:
//! - only runs of this Backup (`backups/<namespace>/<name>/<timestamp>/`) are considered;
//! - `keepLast: N` keeps the newest N complete runs (with a manifest);
//! - `ttl` expires complete runs that finished more than `ttl` ago;
//! - the newest complete run is never deleted, whatever the policy says;
//! - incomplete runs (no manifest: failed or interrupted) older than the newest complete run
//!   are garbage and are deleted too; newer ones may still be running and are left alone;
//! - packed runs share packs and index documents (`<backup>/data/`): after runs are deleted,
//!   only data that no remaining complete run references and that was written before the
//!   newest complete run started is deleted ([`crate::engine::packed::collect_garbage`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::RetentionPolicy;
use crate::core::layout;
use object_store::ObjectStoreExt;

use crate::storage::{Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("invalid retention.ttl \"{ttl}\": {source} (examples: 720h, 30d, 1w)")]
    InvalidTtl {
        ttl: String,
        source: humantime::DurationError,
    },
    #[error("retention: {source}")]
    Storage {
        #[from]
        source: StorageError,
    },
}

/// Parses `retention.ttl` (`720h`, `30d`, `1w`, `1h30m`).
pub fn parse_ttl(ttl: &str) -> Result<Duration, RetentionError> {
    humantime::parse_duration(ttl.trim()).map_err(|source| RetentionError::InvalidTtl {
        ttl: ttl.to_string(),
        source,
    })
}

/// One stored run as seen in the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRun {
    pub dir: String,
    pub started: DateTime<Utc>,
    pub complete: bool,
}

/// Pure: the run directories to delete.
pub fn expired(
    runs: &[StoredRun],
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<Vec<String>, RetentionError> {
    let ttl = policy.ttl.as_deref().map(parse_ttl).transpose()?;
    let mut complete: Vec<&StoredRun> = runs.iter().filter(|r| r.complete).collect();
    complete.sort_by_key(|run| std::cmp::Reverse(run.started));
    let Some(newest) = complete.first().map(|r| r.started) else {
        return Ok(Vec::new());
    };
    let mut doomed = Vec::new();
    for (index, run) in complete.iter().enumerate().skip(1) {
        let over_count = policy.keep_last.is_some_and(|keep| index >= keep as usize);
        let too_old = ttl.is_some_and(|ttl| {
            chrono::TimeDelta::from_std(ttl).is_ok_and(|ttl| now - run.started > ttl)
        });
        if over_count || too_old {
            doomed.push(run.dir.clone());
        }
    }
    doomed.extend(
        runs.iter()
            .filter(|r| !r.complete && r.started < newest)
            .map(|r| r.dir.clone()),
    );
    doomed.sort();
    Ok(doomed)
}

/// Lists this Backup's runs, deletes the expired ones and returns their directories.
pub async fn apply(
    storage: &Storage,
    backup_namespace: &str,
    backup_name: &str,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<Vec<String>, RetentionError> {
    let runs = list_runs(storage, backup_namespace, backup_name).await?;
    let doomed = expired(&runs, policy, now)?;
    for dir in &doomed {
        storage.delete_dir(dir).await?;
    }
    if !doomed.is_empty() {
        // Packed runs share data: delete only what no kept run references.
        let deleted =
            crate::engine::packed::collect_garbage(storage, backup_namespace, backup_name).await?;
        if deleted > 0 {
            tracing::info!(
                deleted,
                "deleted packs and index documents no kept run needs"
            );
        }
    }
    Ok(doomed)
}

/// Every run directory of one Backup, complete or not.
pub async fn list_runs(
    storage: &Storage,
    backup_namespace: &str,
    backup_name: &str,
) -> Result<Vec<StoredRun>, StorageError> {
    let parent = layout::backup_prefix(backup_namespace, backup_name);
    let mut runs = Vec::new();
    for dir in storage.list_dirs(&parent).await? {
        let Some(started) = layout::parse_run_timestamp(&dir) else {
            continue;
        };
        let complete = manifest_exists(storage, &dir).await?;
        runs.push(StoredRun {
            dir,
            started,
            complete,
        });
    }
    Ok(runs)
}

/// Whether a run has its commit marker (a HEAD request, not a download of the manifest).
pub async fn manifest_exists(storage: &Storage, run_dir: &str) -> Result<bool, StorageError> {
    let key = layout::manifest_key(run_dir);
    match storage.store().head(&storage.path(&key)).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(err) => Err(storage.error("head", Some(&key), err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn run(day: u32, complete: bool) -> StoredRun {
        StoredRun {
            dir: format!("backups/ns/b/2025-01-{day:02}T00-00-00Z"),
            started: Utc.with_ymd_and_hms(2025, 1, day, 0, 0, 0).unwrap(),
            complete,
        }
    }

    fn policy(keep_last: Option<u32>, ttl: Option<&str>) -> RetentionPolicy {
        RetentionPolicy {
            keep_last,
            ttl: ttl.map(str::to_string),
        }
    }

    #[test]
    fn keep_last_keeps_newest_complete_runs() {
        let runs = vec![run(1, true), run(2, true), run(3, true), run(4, true)];
        let now = Utc.with_ymd_and_hms(2025, 1, 5, 0, 0, 0).unwrap();
        let doomed = expired(&runs, &policy(Some(2), None), now).unwrap();
        assert_eq!(doomed, vec![runs[0].dir.clone(), runs[1].dir.clone()]);
    }

    #[test]
    fn ttl_expires_old_runs_but_never_the_newest_complete_one() {
        let runs = vec![run(1, true), run(2, true)];
        let now = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
        let doomed = expired(&runs, &policy(None, Some("7d")), now).unwrap();
        assert_eq!(doomed, vec![runs[0].dir.clone()]);
    }

    #[test]
    fn incomplete_runs_older_than_newest_complete_are_garbage() {
        let runs = vec![run(1, false), run(2, true), run(3, false)];
        let now = Utc.with_ymd_and_hms(2025, 1, 5, 0, 0, 0).unwrap();
        let doomed = expired(&runs, &policy(Some(5), None), now).unwrap();
        assert_eq!(doomed, vec![runs[0].dir.clone()]);
    }

    #[test]
    fn nothing_complete_means_nothing_deleted() {
        let runs = vec![run(1, false), run(2, false)];
        let now = Utc.with_ymd_and_hms(2025, 1, 5, 0, 0, 0).unwrap();
        assert!(
            expired(&runs, &policy(Some(1), Some("1h")), now)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn invalid_ttl_names_the_value() {
        let err = parse_ttl("forever").unwrap_err().to_string();
        assert!(err.contains("\"forever\""), "{err}");
        assert_eq!(parse_ttl("720h").unwrap(), Duration::from_secs(720 * 3600));
        assert_eq!(parse_ttl("30d").unwrap(), Duration::from_secs(30 * 86400));
    }
}
