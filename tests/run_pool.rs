//! Runs are jobs of the run pool, not reconciles: the operator runs as its own process
//! (`cluster-backup run`, as in a pod) against the real API server and S3 server, and
//!
//! * with one backup slot taken by a long run, another Backup's invalid spec is still reported
//!   at once, and a third Backup says it waits for a free run slot, then runs after the first;
//! * SIGTERM mid-run: the process exits within its `--shutdown-timeout`, the Backup's
//!   `currentRun` ends `Failed` saying the operator stopped, no manifest is stored, and the
//!   next operator start runs it again to completion;
//! * a run interrupted more often than `--run-retries` allows (crash points kill the process
//!   at a known point each time) ends `Failed` saying how often it was interrupted;
//! * the same for a Restore: a crash is retried to completion, a shutdown is recorded and
//!   retried, and repeated crashes end `Failed`.
//!
//! Long runs come from the engine's pause points and kills from its crash points (see
//! `cluster_backup::engine::faults`); they are read once per process, hence one operator
//! process per step. No timing is asserted beyond generous timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::process::OperatorProcess;
use std::time::{Duration, Instant};

use cluster_backup::api::{
    BackupPhase, BackupStatus, RestorePhase, RestoreStatus, RunResult, from_time,
};
use cluster_backup::engine::faults::{CRASH_ENV, PAUSE_ENV};
use common::{TestNamespace, short_unique_name, wait_for_restore};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;

/// Longest wait for anything that should happen (runs here take seconds).
const TIMEOUT: Duration = Duration::from_secs(120);
/// The operator's shutdown timeout in these tests.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a paused run holds its slot: far longer than validating a spec takes.
const LONG_RUN_PAUSE: &str = "15";

/// `cluster-backup run` as its own process, watching one namespace, with the tests' shutdown
/// timeout.
type Operator = OperatorProcess;

/// The common scene (a namespace for Backups and Restores, a bucket, no in-process operator)
/// plus a namespace to back up with `objects` ConfigMaps.
struct Scene {
    common: common::Scene,
    source: TestNamespace,
}

impl Scene {
    async fn new(prefix: &str, objects: usize) -> Scene {
        let common = common::Scene::bare(prefix).await;
        let source = common.new_namespace("src").await;
        common
            .create_all((0..objects).map(|i| {
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("cm-{i}"), "namespace": source.name},
                    "data": {"index": i.to_string()}})
            }))
            .await;
        Scene { common, source }
    }

    fn operator(&self, args: &[&str], fault: Option<(&str, &str)>, log: &str) -> Operator {
        let namespace = self.common.namespace();
        let log = format!("{namespace}-{log}");
        let shutdown = format!("{}s", SHUTDOWN_TIMEOUT.as_secs());
        let args: Vec<&str> = ["--shutdown-timeout", shutdown.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        let fault: Vec<(&str, &str)> = fault.into_iter().collect();
        OperatorProcess::start(
            &self.common.env,
            namespace,
            &args,
            &fault,
            "run-pool-logs",
            &log,
        )
    }

    /// A one-shot Backup of the source's ConfigMaps; `types` replaces `["configmaps"]`.
    async fn create_backup(&self, name: &str, types: &[&str]) {
        let doc = self.common.backup_json(name, &[&self.source.name], types);
        self.common.create_backup(&doc).await;
    }

    async fn wait_backup(&self, name: &str, done: impl Fn(&BackupStatus) -> bool) -> BackupStatus {
        self.common.wait_backup(name, done).await.status.unwrap()
    }

    /// Waits until a one-shot Backup has no run in flight and a final phase.
    async fn wait_backup_final(&self, name: &str) -> BackupStatus {
        self.wait_backup(name, |s| {
            s.current_run.is_none()
                && matches!(
                    s.phase,
                    Some(
                        BackupPhase::Completed | BackupPhase::PartiallyFailed | BackupPhase::Failed
                    )
                )
        })
        .await
    }

    /// Object keys of the bucket that are manifests.
    async fn manifests(&self) -> Vec<String> {
        let storage = self.common.storage();
        // No run may have got as far as creating it.
        storage.ensure_bucket().await.unwrap();
        let keys: Vec<String> = storage
            .list("")
            .map_ok(|o| o.key)
            .try_collect()
            .await
            .unwrap();
        keys.into_iter()
            .filter(|k| k.ends_with("manifest.json"))
            .collect()
    }

    /// Waits until a run has created the bucket: it is then inside the backup engine.
    async fn wait_bucket(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while self.common.storage().list("").try_next().await.is_err() {
            assert!(Instant::now() < deadline, "no run created the bucket");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn has_manifest(&self, run_path: &str) -> bool {
        self.common.has_manifest(run_path).await
    }

    /// A Restore of Backup `backup` into a new namespace; returns the target namespace.
    async fn create_restore(&self, name: &str, backup: &str) -> TestNamespace {
        let target = short_unique_name("rt");
        let spec = json!({
            "source": {"backupName": backup},
            "target": {"namespaceMapping": {(self.source.name.clone()): target}},
            "options": {"createNamespaces": true},
        });
        self.common.create_restore(name, spec).await;
        self.common.adopt_namespace(&target)
    }

    async fn wait_restore(
        &self,
        name: &str,
        done: impl Fn(&RestoreStatus) -> bool,
    ) -> RestoreStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let restore = self.common.restores.get(name).await.unwrap();
            let status = restore.status.unwrap_or_default();
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "restore {name} did not reach the expected state; status: {status:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Names of the user's ConfigMaps in `namespace`.
    async fn configmaps(&self, namespace: &str) -> Vec<String> {
        let api: Api<ConfigMap> = Api::namespaced(self.common.client.clone(), namespace);
        let mut names: Vec<String> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|cm| cm.metadata.name)
            .filter(|n| n != "kube-root-ca.crt")
            .collect();
        names.sort();
        names
    }

    /// Reasons of the Events about `kind` `name`.
    async fn event_reasons(&self, kind: &str, name: &str) -> Vec<String> {
        self.common
            .events(kind, name)
            .await
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }

    /// Waits for an Event `reason` about `kind` `name` (Events go out after the status write).
    async fn wait_event(&self, kind: &str, name: &str, reason: &str) {
        self.common.event_reasons(kind, name, &[reason]).await;
    }

    /// A complete one-shot Backup `name` of the source, made by an operator that is stopped
    /// afterwards.
    async fn complete_backup(&self, name: &str) {
        let _operator = self.operator(&[], None, "backup");
        self.create_backup(name, &["configmaps"]).await;
        let status = self.wait_backup_final(name).await;
        assert_eq!(status.phase, Some(BackupPhase::Completed), "{status:#?}");
    }
}

/// The `Running` condition is False with `reason`.
fn assert_not_running(conditions: &[Condition], reason: &str) {
    let running = conditions
        .iter()
        .find(|c| c.type_ == "Running")
        .expect("Running condition");
    assert_eq!(
        (running.status.as_str(), running.reason.as_str()),
        ("False", reason),
        "{conditions:#?}"
    );
}

/// SIGTERM, then the process must exit successfully within its shutdown timeout (generous:
/// the run is cancelled at once; the timeout is what the operator promises).
async fn terminate_cleanly(operator: &mut Operator) {
    let sent = Instant::now();
    operator.terminate();
    let exit = operator.wait_exit(SHUTDOWN_TIMEOUT + TIMEOUT).await;
    let took = sent.elapsed();
    eprintln!("SIGTERM → exit after {took:?}: {exit:?}");
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    assert!(
        took < SHUTDOWN_TIMEOUT + Duration::from_secs(5),
        "took {took:?}"
    );
}

async fn crash(operator: &mut Operator, point: &str) {
    let exit = operator.wait_exit(TIMEOUT).await;
    assert!(
        exit.is_some_and(|s| !s.success()),
        "the operator did not crash at {point}: {exit:?}"
    );
}

fn message(status: &BackupStatus) -> String {
    status.message.clone().unwrap_or_default()
}

#[tokio::test]
async fn a_full_pool_still_validates_and_queues() {
    let scene = Scene::new("pool-full", 2).await;
    let _operator = scene.operator(
        &["--concurrency", "1"],
        Some((PAUSE_ENV, &format!("before-list:{LONG_RUN_PAUSE}"))),
        "operator",
    );
    scene.create_backup("long", &["configmaps"]).await;
    scene.wait_backup("long", |s| s.current_run.is_some()).await;

    // The only slot is taken: neither of these can run now.
    scene.create_backup("invalid", &["deploymnts"]).await;
    scene.create_backup("queued", &["configmaps"]).await;

    let invalid = scene
        .wait_backup("invalid", |s| s.phase == Some(BackupPhase::Failed))
        .await;
    assert!(
        message(&invalid).contains("\"deploymnts\"")
            && message(&invalid).contains("did you mean \"deployments\""),
        "{invalid:#?}"
    );
    scene.wait_event("Backup", "invalid", "BackupFailed").await;

    let waiting = scene
        .wait_backup("queued", |s| {
            s.message
                .as_deref()
                .is_some_and(|m| m.contains("Waiting for a free run slot"))
        })
        .await;
    eprintln!("queued: {}", message(&waiting));
    assert!(
        message(&waiting).contains("1 of 1 backup runs in progress"),
        "{waiting:#?}"
    );
    assert_eq!(waiting.phase, Some(BackupPhase::New), "{waiting:#?}");
    assert!(waiting.current_run.is_none() && waiting.last_run.is_none());
    assert_not_running(&waiting.conditions, "WaitingForRunSlot");

    let long = scene.wait_backup_final("long").await;
    let queued = scene.wait_backup_final("queued").await;
    for status in [&long, &queued] {
        assert_eq!(status.phase, Some(BackupPhase::Completed), "{status:#?}");
        assert_eq!(status.history.len(), 1, "{status:#?}");
    }
    let long_run = long.last_run.unwrap();
    let long_end = from_time(long_run.completion_time.as_ref().unwrap());
    // The invalid spec was reported while the long run held the slot, not after it.
    let invalid_end = from_time(
        invalid
            .last_run
            .as_ref()
            .unwrap()
            .completion_time
            .as_ref()
            .unwrap(),
    );
    assert!(invalid_end < long_end, "{invalid_end} vs {long_end}");
    // The queued run started only once the long one had ended.
    let queued_start = from_time(&queued.last_run.as_ref().unwrap().start_time);
    assert!(queued_start >= long_end, "{queued_start} vs {long_end}");
    assert_eq!(scene.manifests().await.len(), 2);
}

#[tokio::test]
async fn shutdown_mid_run_is_recorded_and_the_run_is_retried() {
    let scene = Scene::new("pool-term", 3).await;
    let mut operator = scene.operator(&[], Some((PAUSE_ENV, "before-list:60")), "first");
    scene.create_backup("nightly", &["configmaps"]).await;
    scene
        .wait_backup("nightly", |s| s.current_run.is_some())
        .await;
    // The run is held at its pause point, right before it lists the first type.
    scene.wait_bucket().await;

    terminate_cleanly(&mut operator).await;

    let interrupted = scene
        .common
        .backups
        .get("nightly")
        .await
        .unwrap()
        .status
        .unwrap();
    let run = interrupted.current_run.clone().expect("currentRun stays");
    assert_eq!(run.result, Some(RunResult::Failed), "{interrupted:#?}");
    assert_eq!(run.attempt, Some(1));
    assert!(
        run.message
            .as_deref()
            .is_some_and(|m| m.contains("the operator stopped during the run")),
        "{interrupted:#?}"
    );
    assert!(run.completion_time.is_some());
    assert!(
        message(&interrupted).contains("Backup interrupted"),
        "{interrupted:#?}"
    );
    assert_not_running(&interrupted.conditions, "Interrupted");
    assert!(!scene.has_manifest(&run.backup_path).await);
    assert!(scene.manifests().await.is_empty());
    assert_eq!(interrupted.backup_count, 0);

    let _operator = scene.operator(&[], None, "second");
    let done = scene.wait_backup_final("nightly").await;
    assert_eq!(done.phase, Some(BackupPhase::Completed), "{done:#?}");
    assert_eq!(done.history.len(), 2, "{done:#?}");
    let (retry, first) = (&done.history[0], &done.history[1]);
    assert_eq!(
        (retry.trigger.as_str(), retry.attempt, retry.result),
        ("retry", Some(2), Some(RunResult::Completed))
    );
    assert_eq!(first.backup_path, run.backup_path);
    assert_eq!(first.result, Some(RunResult::Failed));
    assert!(first.message.as_deref().unwrap().contains("interrupted"));
    assert_eq!(done.backup_count, 1);
    assert!(scene.has_manifest(&retry.backup_path).await);
    assert!(!scene.has_manifest(&first.backup_path).await);
}

#[tokio::test]
async fn a_run_interrupted_more_often_than_retries_allow_ends_failed() {
    let scene = Scene::new("pool-bound", 2).await;
    scene.create_backup("crashy", &["configmaps"]).await;
    // Default --run-retries: 1. Killed in the first attempt and in its retry.
    for (attempt, log) in [(1, "crash-1"), (2, "crash-2")] {
        let mut operator = scene.operator(&[], Some((CRASH_ENV, "before-upload")), log);
        crash(&mut operator, "before-upload").await;
        let status = scene
            .common
            .backups
            .get("crashy")
            .await
            .unwrap()
            .status
            .unwrap();
        let run = status
            .current_run
            .clone()
            .expect("the killed run is in currentRun");
        assert_eq!(run.attempt, Some(attempt), "{status:#?}");
        assert_eq!(run.result, None, "killed, nothing recorded: {status:#?}");
    }

    let _operator = scene.operator(&[], None, "last");
    let done = scene.wait_backup_final("crashy").await;
    assert_eq!(done.phase, Some(BackupPhase::Failed), "{done:#?}");
    let last = done.last_run.clone().unwrap();
    assert_eq!(last.result, Some(RunResult::Failed));
    assert_eq!((last.trigger.as_str(), last.attempt), ("retry", Some(2)));
    assert!(
        message(&done).contains("interrupted 2 times"),
        "{}",
        message(&done)
    );
    assert_eq!(last.message, done.message);
    let ready = done.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Interrupted")
    );
    assert_eq!(done.history.len(), 2, "{done:#?}");
    assert_eq!(done.backup_count, 0);
    assert!(scene.manifests().await.is_empty());
    scene.wait_event("Backup", "crashy", "BackupFailed").await;
    // Never retried again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = scene
        .common
        .backups
        .get("crashy")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(later.history.len(), 2);
    assert!(later.current_run.is_none());
}

#[tokio::test]
async fn no_retries_gives_up_after_the_first_interruption() {
    let scene = Scene::new("pool-noretry", 1).await;
    scene.create_backup("once", &["configmaps"]).await;
    let mut operator = scene.operator(&[], Some((CRASH_ENV, "before-upload")), "crash");
    crash(&mut operator, "before-upload").await;
    let _operator = scene.operator(&["--run-retries", "0"], None, "last");
    let done = scene.wait_backup_final("once").await;
    assert_eq!(done.phase, Some(BackupPhase::Failed), "{done:#?}");
    assert!(
        message(&done).contains("interrupted 1 time "),
        "{}",
        message(&done)
    );
    assert_eq!(done.history.len(), 1);
    assert!(scene.manifests().await.is_empty());
}

#[tokio::test]
async fn an_interrupted_restore_is_retried_then_bounded() {
    let scene = Scene::new("pool-rst", 6).await;
    scene.complete_backup("base").await;
    let expected = scene.configmaps(&scene.source.name).await;
    assert_eq!(expected.len(), 6);

    // Killed once half-way: run again from the start, to the end.
    let target = scene.create_restore("once", "base").await;
    let mut operator = scene.operator(&[], Some((CRASH_ENV, "restore:3")), "once-crash");
    crash(&mut operator, "restore:3").await;
    let interrupted = scene
        .common
        .restores
        .get("once")
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(
        matches!(interrupted.phase, Some(RestorePhase::Restoring)),
        "{interrupted:#?}"
    );
    {
        let _operator = scene.operator(&[], None, "once-retry");
        let done = wait_for_restore(&scene.common.restores, "once", TIMEOUT)
            .await
            .status
            .unwrap();
        assert_eq!(done.phase, Some(RestorePhase::Completed), "{done:#?}");
        assert_eq!(done.attempt, Some(2));
        assert_eq!(scene.configmaps(&target.name).await, expected);
        scene
            .wait_event("Restore", "once", "RestoreCompleted")
            .await;
        let reasons = scene.event_reasons("Restore", "once").await;
        assert_eq!(
            reasons.iter().filter(|r| *r == "RestoreStarted").count(),
            2,
            "{reasons:?}"
        );
    }

    // Killed in the first attempt and in its retry: given up.
    let _target = scene.create_restore("twice", "base").await;
    for log in ["twice-crash-1", "twice-crash-2"] {
        let mut operator = scene.operator(&[], Some((CRASH_ENV, "restore:3")), log);
        crash(&mut operator, "restore:3").await;
    }
    let status = scene
        .common
        .restores
        .get("twice")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.attempt, Some(2), "{status:#?}");
    let _operator = scene.operator(&[], None, "twice-last");
    let done = wait_for_restore(&scene.common.restores, "twice", TIMEOUT)
        .await
        .status
        .unwrap();
    assert_eq!(done.phase, Some(RestorePhase::Failed), "{done:#?}");
    let message = done.message.clone().unwrap_or_default();
    assert!(message.contains("interrupted 2 times"), "{message}");
    let ready = done.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.reason, "Interrupted");
    scene.wait_event("Restore", "twice", "RestoreFailed").await;
}

#[tokio::test]
async fn shutdown_mid_restore_is_recorded_and_the_restore_is_retried() {
    let scene = Scene::new("pool-rst-term", 4).await;
    scene.complete_backup("base").await;
    let expected = scene.configmaps(&scene.source.name).await;

    let target = scene.create_restore("copy", "base").await;
    let mut operator = scene.operator(&[], Some((PAUSE_ENV, "before-restore:60")), "first");
    scene
        .wait_restore("copy", |s| s.phase == Some(RestorePhase::Restoring))
        .await;
    terminate_cleanly(&mut operator).await;
    let interrupted = scene
        .common
        .restores
        .get("copy")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(interrupted.phase, Some(RestorePhase::Restoring));
    let message = interrupted.message.clone().unwrap_or_default();
    assert!(
        message.contains("Restore interrupted: the operator stopped during the run"),
        "{interrupted:#?}"
    );
    assert_not_running(&interrupted.conditions, "Interrupted");

    let _operator = scene.operator(&[], None, "second");
    let done = wait_for_restore(&scene.common.restores, "copy", TIMEOUT)
        .await
        .status
        .unwrap();
    assert_eq!(done.phase, Some(RestorePhase::Completed), "{done:#?}");
    assert_eq!(done.attempt, Some(2));
    assert_eq!(scene.configmaps(&target.name).await, expected);
}
