//! Crash points for the project's fault-injection suite (`tests/faults.rs`,
//! `scripts/faults.sh`): with `CLUSTER_BACKUP_CRASH_AT=<point>` in its environment the process
//! aborts (no cleanup, no final writes: what `kill -9` does) when it reaches `<point>`, so the
//! suite can kill the operator at exact moments that a random `kill -9` hits only by luck.
//!
//! Points: `before-upload` (a backup run wrote `Running` and is about to store objects),
//! `upload:N` (after the N-th stored object), `after-manifest` (the manifest is stored, status
//! not yet), `before-final-status` (the final status write of a backup is next) and
//! `restore:N` (after the N-th object of a restore). `CLUSTER_BACKUP_PAUSE_AT=before-list:S`
//! instead holds a backup run for S seconds right before it lists the first type, and
//! `before-restore:S` a restore run right before it restores the first object, and
//! `before-ready:S` holds readiness (`/readyz`) after the watches synced. Unset —
//! always, outside that suite — a point costs one read of a value computed once.

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const CRASH_ENV: &str = "CLUSTER_BACKUP_CRASH_AT";
/// The environment variable naming a pause point: `<point>:<seconds>` (e.g. `before-list:4`)
/// holds the run there, so the suite can take the API server away at that exact moment.
pub const PAUSE_ENV: &str = "CLUSTER_BACKUP_PAUSE_AT";
/// The longest pause a pause point honours.
const MAX_PAUSE_SECONDS: u64 = 60;

fn configured() -> Option<&'static str> {
    static CRASH_AT: OnceLock<Option<String>> = OnceLock::new();
    CRASH_AT
        .get_or_init(|| std::env::var(CRASH_ENV).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Aborts the process if the configured crash point is `point`.
pub fn crash_point(point: &str) {
    if configured() == Some(point) {
        crash(point);
    }
}

/// Aborts the process if the configured crash point is `<prefix>:<count>`.
pub fn crash_at_count(prefix: &str, count: u64) {
    if let Some(rest) = configured().and_then(|c| c.strip_prefix(prefix))
        && rest.strip_prefix(':').and_then(|n| n.parse::<u64>().ok()) == Some(count)
    {
        crash(&format!("{prefix}:{count}"));
    }
}

/// Sleeps at `point` when the pause point says so (see [`PAUSE_ENV`]).
pub async fn pause_point(point: &str) {
    static PAUSE_AT: OnceLock<Option<(String, u64)>> = OnceLock::new();
    let configured = PAUSE_AT.get_or_init(|| {
        let value = std::env::var(PAUSE_ENV).ok()?;
        let (name, seconds) = value.rsplit_once(':')?;
        Some((name.to_string(), seconds.parse().ok()?))
    });
    if let Some((name, seconds)) = configured
        && name == point
    {
        let seconds = (*seconds).min(MAX_PAUSE_SECONDS);
        eprintln!("{PAUSE_ENV}={point}:{seconds}: pausing here on purpose (fault-injection suite)");
        tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    }
}

fn crash(point: &str) {
    eprintln!("{CRASH_ENV}={point}: crashing here on purpose (fault-injection suite)");
    std::process::abort();
}
