//! Retrying API calls that failed for a passing reason.
//!
//! A backup must never record "the API server was restarting" as "this namespace has nothing
//! in it": connection errors, timeouts, `429 Too Many Requests` and `5xx` answers are retried
//! with a bounded back-off, and only lasting answers (`403 Forbidden`, `404` of a type, a
//! response that does not decode) reach the caller as errors about the item. `401` is retried
//! too: a restarted API server refuses tokens until its authenticators are ready.

use std::future::Future;
use std::time::Duration;

/// Attempts of one request before a passing error is given up on (about 30 s in all).
pub const API_ATTEMPTS: u32 = 7;
/// Pause after the first failed attempt; doubles up to [`API_RETRY_MAX`].
pub const API_RETRY_INITIAL: Duration = Duration::from_millis(500);
/// Longest pause between two attempts (also caps a server's `Retry-After`).
pub const API_RETRY_MAX: Duration = Duration::from_secs(8);

/// Whether `err` may go away if the same request is sent again. Only the kinds known to pass
/// are retried; anything else (a request that cannot be built, an answer that does not
/// decode, TLS or kubeconfig trouble) gives the same result every time.
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => {
            // 401: a restarted API server refuses tokens until its authenticators are ready.
            matches!(status.code, 401 | 408 | 429 | 500 | 502 | 503 | 504)
                // The API server answers 500 with reason Timeout/ServerTimeout when etcd is slow.
                || matches!(status.reason.as_str(), "ServerTimeout" | "Timeout" | "TooManyRequests")
        }
        // Connection refused/reset, a TLS handshake cut short, timeouts, a stream that ended
        // early: the API server or the network between us is (re)starting.
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// The pause before attempt `attempt + 1` (1-based `attempt` just failed), honouring a
/// server's `Retry-After` (details.retryAfterSeconds) within the cap.
pub fn pause_after(attempt: u32, err: &kube::Error) -> Duration {
    let exponential = API_RETRY_INITIAL
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(API_RETRY_MAX);
    let asked = match err {
        kube::Error::Api(status) => status
            .details
            .as_ref()
            .map(|d| Duration::from_secs(u64::from(d.retry_after_seconds)))
            .unwrap_or_default(),
        _ => Duration::ZERO,
    };
    exponential.max(asked.min(API_RETRY_MAX))
}

/// Runs `call` until it succeeds, fails for a lasting reason, or [`API_ATTEMPTS`] attempts
/// failed for passing ones; returns the last error then. `what` names the call in logs.
pub async fn with_retries<T, F, Fut>(what: &str, mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Ok(value) => return Ok(value),
            Err(err) if attempt < API_ATTEMPTS && is_transient(&err) => {
                let pause = pause_after(attempt, &err);
                tracing::info!(what, attempt, error = %err, ?pause, "API request failed; retrying");
                tokio::time::sleep(pause).await;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("m", reason).with_code(code)))
    }

    #[test]
    fn passing_and_lasting_errors() {
        for code in [401, 429, 500, 502, 503, 504] {
            assert!(is_transient(&api(code, "")), "{code}");
        }
        for (code, reason) in [(403, "Forbidden"), (404, "NotFound"), (422, "Invalid")] {
            assert!(!is_transient(&api(code, reason)), "{code}");
        }
        let not_json = serde_json::from_str::<u8>("x").map_err(kube::Error::SerdeError);
        assert!(!is_transient(&not_json.unwrap_err()));
    }

    #[test]
    fn pauses_grow_to_the_cap() {
        let err = api(503, "");
        let pauses: Vec<u64> = (1..=6)
            .map(|a| pause_after(a, &err).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [500, 1000, 2000, 4000, 8000, 8000]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_passing_errors_then_succeeds() {
        let mut calls = 0;
        let result = with_retries("test", || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(api(503, "")) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn lasting_errors_are_not_retried_and_attempts_are_bounded() {
        let mut calls = 0;
        let result: Result<(), _> = with_retries("test", || {
            calls += 1;
            async { Err(api(403, "Forbidden")) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
        let mut calls = 0;
        let result: Result<(), _> = with_retries("test", || {
            calls += 1;
            async { Err(api(503, "")) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, API_ATTEMPTS);
    }
}
