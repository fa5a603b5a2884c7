//! The operator as an operator's operator sees it: `cluster-backup run` as its own process
//! serves `/metrics`, `/healthz` and `/readyz`, and
//!
//! * a backup run shows up while it runs (`runs_in_progress`, `runs_started`) and after it
//!   (`runs_finished`, objects, last success ≈ the run's completion time);
//! * a Restore of it counts as a `restore` run with the objects it created;
//! * a scheduled Backup exposes its schedule interval (`*/5 * * * *` → 300 s);
//! * a ClusterStorageLocation that cannot be reached is not available (0);
//! * a Backup whose storage cannot be reached counts a storage error `Unreachable`;
//! * a restarted operator knows each Backup's last success from its status;
//! * started with an identity that may not list Backups, `run` exits 1 at once with one line
//!   that says what is missing and what to do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use cluster_backup::api::{BackupPhase, RestorePhase, from_time};
use cluster_backup::engine::faults::PAUSE_ENV;
use common::process::OperatorProcess;
use common::process::{free_port, get};
use common::{repo_root, short_unique_name, unused_local_endpoint};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(120);
const LOG_DIR: &str = "metrics-logs";

/// The value of the series `series` (`name{labels}`, labels in exposition order) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Scrapes until `series` satisfies `check`; returns the whole scrape.
async fn wait_metric(port: u16, series: &str, check: impl Fn(f64) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let scrape = get(port, "/metrics").await.map(|(_, body)| body);
        if let Some(text) = &scrape
            && value(text, series).is_some_and(&check)
        {
            return text.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{series} never matched; last scrape:\n{}",
            scrape.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_ready(port: u16) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some((200, _)) = get(port, "/readyz").await {
            return;
        }
        assert!(Instant::now() < deadline, "/readyz never answered 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn metrics_follow_runs_schedules_and_storage_errors() {
    let scene = common::Scene::bare("metrics").await;
    let source = scene.new_namespace("src").await;
    scene
        .create_all((0..3).map(|i| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i}"), "namespace": source.name},
                "data": {"index": i.to_string()}})
        }))
        .await;
    let ns = scene.namespace().to_string();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    // Every run holds still for a moment before listing, so it is seen while it runs.
    let mut operator = OperatorProcess::start(
        &scene.env,
        &ns,
        &["--metrics-bind-address", &bind],
        &[(PAUSE_ENV, "before-list:3")],
        LOG_DIR,
        &ns,
    );
    wait_ready(port).await;
    assert_eq!(get(port, "/healthz").await.map(|r| r.0), Some(200));
    let (code, scrape) = get(port, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(scrape.ends_with("# EOF\n"), "{scrape}");

    // During the run.
    scene
        .create_backup(&scene.one_shot("once", &source.name))
        .await;
    let started = format!(
        r#"cluster_backup_runs_started_total{{kind="backup",namespace="{ns}",name="once",trigger="initial"}}"#
    );
    let during = wait_metric(port, &started, |v| v == 1.0).await;
    let in_progress = value(&during, r#"cluster_backup_runs_in_progress{kind="backup"}"#);
    assert_eq!(in_progress, Some(1.0), "{during}");

    // After it.
    let backup = scene.wait_finished("once").await;
    let status = backup.status.unwrap();
    assert_eq!(status.phase, Some(BackupPhase::Completed), "{status:#?}");
    let finished = format!(
        r#"cluster_backup_runs_finished_total{{kind="backup",namespace="{ns}",name="once",result="Completed"}}"#
    );
    let after = wait_metric(port, &finished, |v| v == 1.0).await;
    eprintln!("scrape after the run:\n{after}");
    let objects =
        format!(r#"cluster_backup_run_objects{{kind="backup",namespace="{ns}",name="once"}}"#);
    let last_run = status.last_run.unwrap();
    assert_eq!(value(&after, &objects), Some(last_run.objects as f64));
    assert_eq!(last_run.objects, 3);
    let bytes =
        format!(r#"cluster_backup_run_bytes{{kind="backup",namespace="{ns}",name="once"}}"#);
    assert_eq!(value(&after, &bytes), Some(last_run.bytes as f64));
    let success =
        format!(r#"cluster_backup_last_success_timestamp_seconds{{namespace="{ns}",name="once"}}"#);
    let completed = from_time(status.last_backup_time.as_ref().unwrap());
    let at = value(&after, &success).unwrap();
    assert!(
        (at - completed.timestamp() as f64).abs() <= 1.0,
        "{at} vs {completed}"
    );
    assert_eq!(
        value(
            &after,
            r#"cluster_backup_run_duration_seconds_count{kind="backup",result="Completed"}"#
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        value(&after, r#"cluster_backup_runs_in_progress{kind="backup"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(&after, r#"cluster_backup_queue_depth{kind="backup"}"#),
        Some(0.0)
    );
    // A Restore of it into a new namespace.
    let target = short_unique_name("rt");
    let _target = scene.adopt_namespace(&target);
    let restored = scene
        .restore(
            "back",
            json!({
                "source": {"backupName": "once"},
                "target": {"namespaceMapping": {(source.name.clone()): target}},
                "options": {"createNamespaces": true},
            }),
        )
        .await;
    assert_eq!(
        restored.phase,
        Some(RestorePhase::Completed),
        "{restored:#?}"
    );
    let restore_finished = format!(
        r#"cluster_backup_runs_finished_total{{kind="restore",namespace="{ns}",name="back",result="Completed"}}"#
    );
    let text = wait_metric(port, &restore_finished, |v| v == 1.0).await;
    let restore_started = format!(
        r#"cluster_backup_runs_started_total{{kind="restore",namespace="{ns}",name="back",trigger="restore"}}"#
    );
    assert_eq!(value(&text, &restore_started), Some(1.0), "{text}");
    let count = |key: &str| restored.resource_counts.get(key).copied().unwrap_or(0);
    let restore_objects =
        format!(r#"cluster_backup_run_objects{{kind="restore",namespace="{ns}",name="back"}}"#);
    assert_eq!(
        value(&text, &restore_objects),
        Some((count("created") + count("overwritten")) as f64),
        "{text}"
    );
    assert!(count("created") >= 3, "{restored:#?}");

    // A one-shot Backup has no schedule interval.
    assert!(!after.contains(r#"cluster_backup_schedule_interval_seconds{namespace=""#));

    // A scheduled Backup.
    scene
        .create_backup(&scene.scheduled("every5", &source.name, "*/5 * * * *"))
        .await;
    let interval =
        format!(r#"cluster_backup_schedule_interval_seconds{{namespace="{ns}",name="every5"}}"#);
    wait_metric(port, &interval, |v| v == 300.0).await;

    // A ClusterStorageLocation nobody answers on: its availability check says 0.
    let location = common::TestClusterObject::create(
        &scene.env,
        &scene.client,
        json!({
            "apiVersion": "backup.cnd.dk/v1", "kind": "ClusterStorageLocation",
            "metadata": { "name": short_unique_name("csl") },
            "spec": {
                "provider": "minio",
                "bucket": scene.bucket.name,
                "endpoint": unused_local_endpoint(),
                "region": scene.env.s3_region,
            },
        }),
    )
    .await;
    let available = format!(
        r#"cluster_backup_storage_location_available{{name="{}"}}"#,
        location.name
    );
    wait_metric(port, &available, |v| v == 0.0).await;

    // Storage nobody answers on.
    let unreachable = r#"cluster_backup_storage_errors_total{category="Unreachable"}"#;
    let before = get(port, "/metrics")
        .await
        .and_then(|(_, text)| value(&text, unreachable))
        .unwrap_or(0.0);
    let mut doc = scene.one_shot("nowhere", &source.name);
    doc["spec"]["storageLocation"]["endpoint"] = json!(unused_local_endpoint());
    scene.create_backup(&doc).await;
    let failed = scene.wait_finished("nowhere").await;
    assert_eq!(
        failed.status.as_ref().and_then(|s| s.phase),
        Some(BackupPhase::Failed)
    );
    let text = wait_metric(port, unreachable, |v| v >= before + 1.0).await;
    eprintln!("final scrape:\n{text}");
    let failed_runs = format!(
        r#"cluster_backup_runs_finished_total{{kind="backup",namespace="{ns}",name="nowhere",result="Failed"}}"#
    );
    assert_eq!(value(&text, &failed_runs), Some(1.0), "{text}");

    // A restarted operator starts from the status: the last success is still known.
    operator.kill();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let _restarted = OperatorProcess::start(
        &scene.env,
        &ns,
        &["--metrics-bind-address", &bind],
        &[],
        LOG_DIR,
        &format!("{ns}-restarted"),
    );
    wait_ready(port).await;
    // Status times have whole seconds.
    let text = wait_metric(port, &success, |v| (v - at).abs() <= 1.0).await;
    assert_eq!(value(&text, &interval), Some(300.0), "{text}");
}

#[tokio::test]
async fn run_without_rights_exits_at_once_saying_what_to_do() {
    let scene = common::Scene::bare("metrics-norbac").await;
    let ns = scene.namespace().to_string();
    // A ServiceAccount bound to nothing, authenticating with its own token.
    let name = "no-rights";
    scene
        .create(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": ns}}))
        .await;
    let token = common::tenant::service_account_token(&scene.client, &ns, name).await;
    let kubeconfig_path =
        common::tenant::kubeconfig_file_with_token(&scene.env, &token, LOG_DIR, &ns)
            .to_str()
            .unwrap()
            .to_string();

    let log = format!("{ns}-norbac");
    let started = Instant::now();
    let mut operator = OperatorProcess::start(
        &scene.env,
        &ns,
        &["--metrics-bind-address", "0"],
        &[("KUBECONFIG", &kubeconfig_path)],
        LOG_DIR,
        &log,
    );
    let exit = operator.wait_exit(Duration::from_secs(30)).await;
    let took = started.elapsed();
    assert!(
        exit.is_some_and(|s| s.code() == Some(1)),
        "{exit:?} after {took:?}"
    );
    let output = std::fs::read_to_string(
        repo_root()
            .join("target")
            .join(LOG_DIR)
            .join(format!("{log}.log")),
    )
    .unwrap();
    eprintln!("exit {exit:?} after {took:?}:\n{output}");
    let line = output
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line:\n{output}"));
    for needle in [
        "may not list backups.backup.cnd.dk",
        "may not list restores.backup.cnd.dk",
        "may not list clusterstoragelocations.backup.cnd.dk cluster-wide",
        "to fix: bind the operator's ServiceAccount the ClusterRole in config/rbac",
        &ns,
    ] {
        assert!(line.contains(needle), "{needle}: {line}");
    }
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// Readiness flips: while the watches are not synced (held here by a pause point right after
/// they synced) `/readyz` answers 503 saying what it waits for and `/healthz` 200; then 200.
#[tokio::test]
async fn readiness_waits_for_the_watches_then_flips() {
    let scene = common::Scene::bare("readyz").await;
    let ns = scene.namespace().to_string();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let _operator = OperatorProcess::start(
        &scene.env,
        &ns,
        &["--metrics-bind-address", &bind],
        &[(PAUSE_ENV, "before-ready:4")],
        LOG_DIR,
        &format!("{ns}-readyz"),
    );
    let deadline = Instant::now() + TIMEOUT;
    let waiting = loop {
        match get(port, "/readyz").await {
            Some((503, body)) => break body,
            Some((200, _)) => panic!("/readyz answered 200 before the watches were marked synced"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "/readyz never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(waiting.contains("not synced"), "{waiting}");
    assert_eq!(get(port, "/healthz").await.map(|r| r.0), Some(200));
    wait_ready(port).await;
}
