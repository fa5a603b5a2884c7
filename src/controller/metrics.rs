//! The operator's metrics (one registry, handed to the controllers in their `Context`) and the
//! admin HTTP server: `/metrics` (OpenMetrics text), `/healthz`, `/readyz`.
//!
//! The exposed names are a contract with the alert rules and the dashboard
//! (`charts/cluster-backup-operator`): `prometheus-client` adds `_total` to counters, so
//! counters are registered without it, and no unit is registered (it would be appended again).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::health::{Health, StartError};
use crate::storage::ErrorCategory;

/// `kind` label of Backup runs.
pub const BACKUP: &str = "backup";
/// `kind` label of Restore runs.
pub const RESTORE: &str = "restore";
/// `kind` label of the ClusterStorageLocation controller (reconcile errors, readiness).
pub const LOCATION: &str = "clusterstoragelocation";
/// `trigger` label of every Restore run (a Restore runs once).
pub const RESTORE_TRIGGER: &str = "restore";

/// Every `trigger` a run may have, to remove a deleted object's series.
const TRIGGERS: [&str; 6] = [
    "initial",
    "schedule",
    "missed-schedule",
    "manual",
    "retry",
    RESTORE_TRIGGER,
];
/// Every `result` a finished run may have.
pub const RESULTS: [&str; 3] = ["Completed", "PartiallyFailed", "Failed"];

/// Run durations from half a second to an hour; longer runs land in `+Inf`.
const DURATION_BUCKETS: [f64; 13] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// Slots of a cron looked at for its longest gap (a weekday-only schedule shows its weekend).
pub const SCHEDULE_SLOTS: usize = 30;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: &'static str,
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StartedLabels {
    kind: &'static str,
    namespace: String,
    name: String,
    trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FinishedLabels {
    kind: &'static str,
    namespace: String,
    name: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackupLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CategoryLabels {
    category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LocationLabels {
    name: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// How one run ended, for [`Metrics::run_finished`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finished<'a> {
    pub kind: &'static str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// `Completed`, `PartiallyFailed` or `Failed`.
    pub result: &'static str,
    /// `None` for a run given up after interruptions: it has no duration of its own.
    pub seconds: Option<f64>,
    pub objects: i64,
    /// `None` where the run does not count bytes (restores).
    pub bytes: Option<i64>,
    pub items_failed: u64,
}

/// The operator's metrics. One per process, shared by every controller.
pub struct Metrics {
    registry: Registry,
    runs_started: Family<StartedLabels, Counter>,
    runs_finished: Family<FinishedLabels, Counter>,
    run_duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    run_objects: Family<ObjectLabels, Gauge>,
    run_bytes: Family<ObjectLabels, Gauge>,
    items_failed: Family<ObjectLabels, Counter>,
    last_success: Family<BackupLabels, FloatGauge>,
    schedule_interval: Family<BackupLabels, Gauge>,
    storage_errors: Family<CategoryLabels, Counter>,
    location_available: Family<LocationLabels, Gauge>,
    queue_depth: Family<KindLabels, Gauge>,
    reconcile_errors: Family<KindLabels, Counter>,
    runs_in_progress: Family<KindLabels, Gauge>,
    /// Objects with series of their own, so those of deleted objects can be removed.
    objects: Mutex<BTreeSet<(&'static str, String, String)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let runs_started = Family::default();
        registry.register(
            "cluster_backup_runs_started",
            "Backup and restore runs started, by object and trigger",
            runs_started.clone(),
        );
        let runs_finished = Family::default();
        registry.register(
            "cluster_backup_runs_finished",
            "Backup and restore runs finished, by object and result",
            runs_finished.clone(),
        );
        let run_duration: Family<DurationLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "cluster_backup_run_duration_seconds",
            "Duration of finished runs in seconds",
            run_duration.clone(),
        );
        let run_objects = Family::default();
        registry.register(
            "cluster_backup_run_objects",
            "Objects stored (backup) or created and overwritten (restore) by the last finished run",
            run_objects.clone(),
        );
        let run_bytes = Family::default();
        registry.register(
            "cluster_backup_run_bytes",
            "Bytes stored by the last finished backup run",
            run_bytes.clone(),
        );
        let items_failed = Family::default();
        registry.register(
            "cluster_backup_items_failed",
            "Objects a run could not back up or restore",
            items_failed.clone(),
        );
        let last_success = Family::default();
        registry.register(
            "cluster_backup_last_success_timestamp_seconds",
            "Unix time of the newest restorable (Completed or PartiallyFailed) run of each Backup",
            last_success.clone(),
        );
        let schedule_interval = Family::default();
        registry.register(
            "cluster_backup_schedule_interval_seconds",
            "Longest gap between consecutive slots of a scheduled Backup's cron",
            schedule_interval.clone(),
        );
        let storage_errors = Family::default();
        registry.register(
            "cluster_backup_storage_errors",
            "Runs ended by a storage error, by category",
            storage_errors.clone(),
        );
        let location_available = Family::default();
        registry.register(
            "cluster_backup_storage_location_available",
            "1 when the last check of a ClusterStorageLocation reached its storage, else 0",
            location_available.clone(),
        );
        let queue_depth = Family::default();
        registry.register(
            "cluster_backup_queue_depth",
            "Runs waiting for a free run slot",
            queue_depth.clone(),
        );
        let reconcile_errors = Family::default();
        registry.register(
            "cluster_backup_reconcile_errors",
            "Reconciles and run jobs that failed and are retried",
            reconcile_errors.clone(),
        );
        let runs_in_progress = Family::default();
        registry.register(
            "cluster_backup_runs_in_progress",
            "Runs holding a run slot",
            runs_in_progress.clone(),
        );
        let metrics = Metrics {
            registry,
            runs_started,
            runs_finished,
            run_duration,
            run_objects,
            run_bytes,
            items_failed,
            last_success,
            schedule_interval,
            storage_errors,
            location_available,
            queue_depth,
            reconcile_errors,
            runs_in_progress,
            objects: Mutex::new(BTreeSet::new()),
        };
        // Present from the start, so dashboards show 0 rather than no data and `increase()`
        // sees the first error.
        for kind in [BACKUP, RESTORE] {
            metrics.set_pool(kind, 0, 0);
        }
        for kind in [BACKUP, RESTORE, LOCATION] {
            let _ = metrics.reconcile_errors.get_or_create(&KindLabels { kind });
        }
        for category in [
            ErrorCategory::Config,
            ErrorCategory::Auth,
            ErrorCategory::Unreachable,
            ErrorCategory::NotFound,
            ErrorCategory::Integrity,
            ErrorCategory::Other,
        ] {
            let _ = metrics.storage_errors.get_or_create(&CategoryLabels {
                category: category.as_str(),
            });
        }
        metrics
    }

    fn objects(&self) -> MutexGuard<'_, BTreeSet<(&'static str, String, String)>> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn track(&self, kind: &'static str, namespace: &str, name: &str) {
        self.objects()
            .insert((kind, namespace.to_string(), name.to_string()));
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    pub fn run_started(
        &self,
        kind: &'static str,
        namespace: &str,
        name: &str,
        trigger: &'static str,
    ) {
        self.track(kind, namespace, name);
        self.runs_started
            .get_or_create(&StartedLabels {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
                trigger,
            })
            .inc();
    }

    pub fn run_finished(&self, run: Finished<'_>) {
        self.track(run.kind, run.namespace, run.name);
        let object = ObjectLabels {
            kind: run.kind,
            namespace: run.namespace.to_string(),
            name: run.name.to_string(),
        };
        self.runs_finished
            .get_or_create(&FinishedLabels {
                kind: run.kind,
                namespace: run.namespace.to_string(),
                name: run.name.to_string(),
                result: run.result,
            })
            .inc();
        if let Some(seconds) = run.seconds {
            self.run_duration
                .get_or_create(&DurationLabels {
                    kind: run.kind,
                    result: run.result,
                })
                .observe(seconds.max(0.0));
        }
        self.run_objects.get_or_create(&object).set(run.objects);
        if let Some(bytes) = run.bytes {
            self.run_bytes.get_or_create(&object).set(bytes);
        }
        // Created even at 0, so `increase()` sees the first failure.
        self.items_failed
            .get_or_create(&object)
            .inc_by(run.items_failed);
    }

    /// The newest restorable run of a Backup finished at `unix_seconds`; never moves back
    /// (a reconcile may still see an older `lastBackupTime` in its cache).
    pub fn backup_succeeded(&self, namespace: &str, name: &str, unix_seconds: f64) {
        self.track(BACKUP, namespace, name);
        let gauge = self.last_success.get_or_create(&BackupLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
        if gauge.get() < unix_seconds {
            gauge.set(unix_seconds);
        }
    }

    /// The longest gap of a Backup's schedule; `None` for a one-shot Backup or an invalid
    /// schedule (no series).
    pub fn set_schedule_interval(&self, namespace: &str, name: &str, seconds: Option<i64>) {
        let labels = BackupLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        match seconds {
            Some(seconds) => {
                self.track(BACKUP, namespace, name);
                self.schedule_interval.get_or_create(&labels).set(seconds);
            }
            None => {
                self.schedule_interval.remove(&labels);
            }
        }
    }

    /// A run ended with a storage error of `category`.
    pub fn storage_error(&self, category: ErrorCategory) {
        self.storage_errors
            .get_or_create(&CategoryLabels {
                category: category.as_str(),
            })
            .inc();
    }

    pub fn set_location_available(&self, name: &str, available: bool) {
        self.track(LOCATION, "", name);
        self.location_available
            .get_or_create(&LocationLabels {
                name: name.to_string(),
            })
            .set(i64::from(available));
    }

    /// How full the run pool of `kind` is.
    pub fn set_pool(&self, kind: &'static str, running: usize, waiting: usize) {
        let labels = KindLabels { kind };
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.runs_in_progress
            .get_or_create(&labels)
            .set(as_i64(running));
        self.queue_depth.get_or_create(&labels).set(as_i64(waiting));
    }

    /// A reconcile or a run job of `kind` failed and is retried.
    pub fn reconcile_error(&self, kind: &'static str) {
        self.reconcile_errors
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// Removes the series of `kind` objects not in `present` (namespace, name): deleted ones.
    pub fn forget_missing(&self, kind: &'static str, present: &BTreeSet<(String, String)>) {
        let gone: Vec<(String, String)> = {
            let mut objects = self.objects();
            let gone: Vec<(String, String)> = objects
                .iter()
                .filter(|(k, ns, name)| {
                    *k == kind && !present.contains(&(ns.clone(), name.clone()))
                })
                .map(|(_, ns, name)| (ns.clone(), name.clone()))
                .collect();
            for (ns, name) in &gone {
                objects.remove(&(kind, ns.clone(), name.clone()));
            }
            gone
        };
        for (namespace, name) in gone {
            self.forget(kind, &namespace, &name);
        }
    }

    fn forget(&self, kind: &'static str, namespace: &str, name: &str) {
        let object = ObjectLabels {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        for trigger in TRIGGERS {
            self.runs_started.remove(&StartedLabels {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
                trigger,
            });
        }
        for result in RESULTS {
            self.runs_finished.remove(&FinishedLabels {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
                result,
            });
        }
        if kind == LOCATION {
            self.location_available.remove(&LocationLabels {
                name: name.to_string(),
            });
            return;
        }
        self.run_objects.remove(&object);
        self.run_bytes.remove(&object);
        self.items_failed.remove(&object);
        if kind == BACKUP {
            let backup = BackupLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
            };
            self.last_success.remove(&backup);
            self.schedule_interval.remove(&backup);
        }
    }
}

/// What the admin HTTP server shows: the metrics and the readiness. One per `run`.
#[derive(Clone, Debug, Default)]
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub health: Health,
}

/// How often the series of deleted objects are looked for.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

impl Telemetry {
    /// Marks the watch of `kind` synced once `store` (its controller's cache) has listed
    /// everything, then removes the series of objects gone from it every minute (there is no
    /// reconcile for a deleted object). Never ends.
    pub async fn watch_store<K>(&self, kind: &'static str, store: Store<K>)
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        if store.wait_until_ready().await.is_err() {
            // The controller is gone; nothing to watch.
            std::future::pending::<()>().await;
        }
        crate::engine::faults::pause_point("before-ready").await;
        self.health.set_synced(kind);
        tracing::info!(kind, "watch synced");
        let mut ticker = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            ticker.tick().await;
            let present = store
                .state()
                .iter()
                .map(|o| (o.namespace().unwrap_or_default(), o.name_any()))
                .collect();
            self.metrics.forget_missing(kind, &present);
        }
    }
}

/// Reads `--metrics-bind-address`: `:PORT` (every interface), `HOST:PORT`, or `0` (no server).
pub fn parse_bind_address(text: &str) -> Result<Option<SocketAddr>, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(None);
    }
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("invalid port in {text:?}: expected :PORT, HOST:PORT or 0"))?;
        return Ok(Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
        )));
    }
    text.parse::<SocketAddr>()
        .map(Some)
        .map_err(|_| format!("invalid address {text:?}: expected :PORT, HOST:PORT or 0"))
}

/// Binds the admin port; a port in use is a start-up error.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Bind { address, source })
}

/// Unix time in seconds, for timestamp gauges.
pub fn unix_seconds(time: chrono::DateTime<chrono::Utc>) -> f64 {
    time.timestamp_millis() as f64 / 1000.0
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Health) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    }
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(error = %err, "cannot accept a metrics connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(&request, &metrics, &health);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "metrics connection ended with an error");
            }
        });
    }
}

fn respond<B>(request: &Request<B>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_string());
    }
    match request.uri().path() {
        "/metrics" => match metrics.encode() {
            Ok(body) => {
                let mut response = text(StatusCode::OK, body);
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static(CONTENT_TYPE),
                );
                response
            }
            Err(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode metrics\n".to_string(),
            ),
        },
        "/healthz" => text(StatusCode::OK, "ok\n".to_string()),
        "/readyz" => match health.readiness() {
            Ok(()) => text(StatusCode::OK, "ok\n".to_string()),
            Err(waiting) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{waiting}\n")),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_string()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses() {
        assert_eq!(parse_bind_address("0"), Ok(None));
        assert_eq!(
            parse_bind_address(":8080"),
            Ok(Some("0.0.0.0:8080".parse().unwrap()))
        );
        assert_eq!(
            parse_bind_address("127.0.0.1:9090"),
            Ok(Some("127.0.0.1:9090".parse().unwrap()))
        );
        assert_eq!(
            parse_bind_address("[::1]:9090"),
            Ok(Some("[::1]:9090".parse().unwrap()))
        );
        for bad in [":", ":http", "localhost", "8080", ":70000"] {
            assert!(parse_bind_address(bad).is_err(), "{bad}");
        }
    }

    /// The names the alert rules and the dashboard use, exactly as exposed.
    #[test]
    fn exposed_names() {
        let metrics = Metrics::new();
        metrics.run_started(BACKUP, "ns", "b", "schedule");
        metrics.run_finished(Finished {
            kind: BACKUP,
            namespace: "ns",
            name: "b",
            result: "Completed",
            seconds: Some(1.5),
            objects: 3,
            bytes: Some(300),
            items_failed: 0,
        });
        metrics.backup_succeeded("ns", "b", 1_700_000_000.0);
        metrics.set_schedule_interval("ns", "b", Some(300));
        metrics.storage_error(ErrorCategory::Unreachable);
        metrics.set_location_available("loc", true);
        metrics.reconcile_error(BACKUP);
        let text = metrics.encode().unwrap();
        for line in [
            r#"cluster_backup_runs_started_total{kind="backup",namespace="ns",name="b",trigger="schedule"} 1"#,
            r#"cluster_backup_runs_finished_total{kind="backup",namespace="ns",name="b",result="Completed"} 1"#,
            r#"cluster_backup_run_duration_seconds_bucket{le="2.5",kind="backup",result="Completed"} 1"#,
            r#"cluster_backup_run_duration_seconds_count{kind="backup",result="Completed"} 1"#,
            r#"cluster_backup_run_objects{kind="backup",namespace="ns",name="b"} 3"#,
            r#"cluster_backup_run_bytes{kind="backup",namespace="ns",name="b"} 300"#,
            r#"cluster_backup_items_failed_total{kind="backup",namespace="ns",name="b"} 0"#,
            r#"cluster_backup_last_success_timestamp_seconds{namespace="ns",name="b"} 1700000000.0"#,
            r#"cluster_backup_schedule_interval_seconds{namespace="ns",name="b"} 300"#,
            r#"cluster_backup_storage_errors_total{category="Unreachable"} 1"#,
            r#"cluster_backup_storage_location_available{name="loc"} 1"#,
            r#"cluster_backup_queue_depth{kind="restore"} 0"#,
            r#"cluster_backup_reconcile_errors_total{kind="backup"} 1"#,
            r#"cluster_backup_reconcile_errors_total{kind="clusterstoragelocation"} 0"#,
            r#"cluster_backup_storage_errors_total{category="Auth"} 0"#,
            r#"cluster_backup_runs_in_progress{kind="backup"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn deleted_objects_lose_their_series_and_success_never_moves_back() {
        let metrics = Metrics::new();
        metrics.run_started(BACKUP, "ns", "gone", "initial");
        metrics.backup_succeeded("ns", "gone", 20.0);
        metrics.backup_succeeded("ns", "gone", 10.0);
        metrics.set_schedule_interval("ns", "kept", Some(60));
        assert!(metrics.encode().unwrap().contains(
            r#"cluster_backup_last_success_timestamp_seconds{namespace="ns",name="gone"} 20.0"#
        ));
        let present = BTreeSet::from([("ns".to_string(), "kept".to_string())]);
        metrics.forget_missing(BACKUP, &present);
        let text = metrics.encode().unwrap();
        assert!(!text.contains("gone"), "{text}");
        assert!(text.contains(r#"name="kept"} 60"#), "{text}");
        metrics.set_schedule_interval("ns", "kept", None);
        assert!(!metrics.encode().unwrap().contains("kept"));
    }

    #[test]
    fn routes() {
        let metrics = Metrics::new();
        let health = Health::default();
        let get = |path: &str| {
            let request = Request::get(path).body(()).unwrap();
            respond(&request, &metrics, &health)
        };
        let scrape = get("/metrics");
        assert_eq!(scrape.status(), StatusCode::OK);
        assert_eq!(scrape.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(get("/healthz").status(), StatusCode::OK);
        assert_eq!(get("/readyz").status(), StatusCode::SERVICE_UNAVAILABLE);
        health.set_crds_ok(true);
        assert_eq!(get("/readyz").status(), StatusCode::OK);
        assert_eq!(get("/nope").status(), StatusCode::NOT_FOUND);
    }
}
