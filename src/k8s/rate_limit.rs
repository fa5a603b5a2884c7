//! A ceiling on the operator's request rate towards the API server (`--kube-api-qps`,
//! `--kube-api-burst`), shared by every request the operator makes, impersonated ones
//! included (they go through the operator's client). Concurrency is bounded separately where
//! requests are issued (one list at a time per backup, a few creates at a time per restore);
//! the rate limit keeps many runs together polite too.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kube::Client;
use kube::client::Body;

/// Default `--kube-api-qps`: far above what one backup needs (a list page of 500 objects is
/// one request) and above what one restore's creates reach on a small control plane (≈ 1,300
/// per second with 16 in flight on 2 CPUs), so it bounds a crowd of runs, not one run. (300
/// held a 100k-object restore to 333 s against a 98 s create floor; 1000 held it to 100 s
/// against a 59–69 s floor.)
pub const DEFAULT_QPS: u32 = 2000;
/// Default `--kube-api-burst`.
pub const DEFAULT_BURST: u32 = 4000;

/// `client` with every request waiting for a token of a bucket of `burst` tokens refilled at
/// `qps` per second; `qps` 0 means no limit (the client as it is).
pub fn rate_limited(client: Client, qps: u32, burst: u32) -> Client {
    let Some(qps) = NonZeroU32::new(qps) else {
        return client;
    };
    let burst = NonZeroU32::new(burst).unwrap_or(qps);
    let limiter: Arc<DefaultDirectRateLimiter> = Arc::new(RateLimiter::direct(
        Quota::per_second(qps).allow_burst(burst),
    ));
    let namespace = client.default_namespace().to_string();
    let service = tower::service_fn(move |request: http::Request<Body>| {
        let client = client.clone();
        let limiter = Arc::clone(&limiter);
        async move {
            limiter.until_ready().await;
            client.send(request).await
        }
    });
    Client::new(service, namespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use tower_test::mock;

    #[tokio::test]
    async fn requests_beyond_the_burst_wait_for_tokens() {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = rate_limited(Client::new(service, "default"), 20, 5);
        let server = tokio::spawn(async move {
            let mut served = 0;
            while let Some((_, send)) = handle.next_request().await {
                send.send_response(Response::builder().body(Body::from(br#"{"major":"1","minor":"36","gitVersion":"v1.36.3","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#.to_vec())).unwrap());
                served += 1;
                if served == 10 {
                    break;
                }
            }
        });
        let start = std::time::Instant::now();
        for _ in 0..10 {
            client.apiserver_version().await.unwrap();
        }
        // 5 at once, then 5 more at 20 per second: a lower bound, whatever the machine's load.
        let waited = start.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(200),
            "{waited:?}"
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn zero_means_no_limit() {
        let (service, _handle) = mock::pair::<Request<Body>, Response<Body>>();
        let _client = rate_limited(Client::new(service, "default"), 0, 0);
    }
}
