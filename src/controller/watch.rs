//! How both controllers watch: a short, resetting back-off on watch errors, and watch errors
//! logged where an operator sees them.
//!
//! kube-runtime's default trigger back-off grows to 30 s (with jitter) and only resets after
//! 120 s without errors. After an API-server restart every watch fails with `410 Expired` or a
//! connection error a few times in a row, so new objects were picked up 25–65 s late. A backup
//! operator must pick up a new Backup or Restore within seconds of the API server answering
//! again; an attempt every second while the server is down costs nothing.

use std::time::Duration;

use kube::runtime::controller;
use kube::runtime::utils::Backoff;

/// First pause after a watch error.
pub const WATCH_BACKOFF_INITIAL: Duration = Duration::from_millis(250);
/// Longest pause between attempts while the API server stays unreachable.
/// 1 s: after a restart the API server first answers a resumed watch with `410 Expired`,
/// which counts as one more error; with a 2 s cap that pause alone put pick-up at ~6 s.
pub const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Doubles from [`WATCH_BACKOFF_INITIAL`] up to [`WATCH_BACKOFF_MAX`]; back to the start on
/// the first event that arrives, so recovery never waits on an old error streak.
#[derive(Clone, Debug)]
pub struct QuickBackoff {
    next: Duration,
}

impl Default for QuickBackoff {
    fn default() -> Self {
        QuickBackoff {
            next: WATCH_BACKOFF_INITIAL,
        }
    }
}

impl Iterator for QuickBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        self.next = (current * 2).min(WATCH_BACKOFF_MAX);
        Some(current)
    }
}

impl Backoff for QuickBackoff {
    fn reset(&mut self) {
        self.next = WATCH_BACKOFF_INITIAL;
    }
}

/// Logs what a controller stream yields: watch and queue errors (a missing CRD, missing RBAC,
/// an unreachable API server) at warn, so a misconfigured operator never does nothing silently.
pub fn log_result<K, E: std::error::Error + 'static>(
    kind: &str,
    result: Result<K, controller::Error<E, kube::runtime::watcher::Error>>,
) {
    match result {
        Ok(_) => {}
        Err(controller::Error::QueueError(err)) => {
            tracing::warn!(kind, error = %err, "watch failed; retrying shortly");
        }
        // `error_policy` logs it, with the object, at warn.
        Err(controller::Error::ReconcilerFailed(..)) => {}
        // A trigger for an object deleted meanwhile: expected, nothing to do.
        Err(controller::Error::ObjectNotFound(object)) => {
            tracing::debug!(kind, %object, "object gone before its reconcile");
        }
        Err(err) => tracing::error!(kind, error = %err, "controller failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut backoff = QuickBackoff::default();
        let first: Vec<Duration> = backoff.by_ref().take(6).collect();
        assert_eq!(
            first,
            [250, 500, 1000, 1000, 1000, 1000].map(Duration::from_millis)
        );
        backoff.reset();
        assert_eq!(backoff.next(), Some(WATCH_BACKOFF_INITIAL));
    }
}
