//! Crash points for the project's fault-injection suite (`tests/faults.rs`,
//! `scripts/faults.sh`): with `CLUSTER_BACKUP_CRASH_AT=<point>` in its environment the process
//! aborts (no cleanup, no final writes: what `kill -9` does) when it reaches `<point>`, so the
//! suite can kill the operator at exact moments that a random `kill -9` hits only by luck.
//!
//! Points: `before-upload` (a backup run wrote `Running` and is about to store objects),
//! `upload:N` (after the N-th stored object), `after-manifest` (the manifest is stored, status
//! not yet), `before-final-status` (the final status write of a backup is next) and
//! `restore:N` (after the N-th object of a restore). Unset — always, outside that suite — a
//! point costs one read of a value computed once.

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const CRASH_ENV: &str = "CLUSTER_BACKUP_CRASH_AT";

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

fn crash(point: &str) {
    eprintln!("{CRASH_ENV}={point}: crashing here on purpose (fault-injection suite)");
    std::process::abort();
}
