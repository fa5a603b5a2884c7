//! When a Backup runs: a scheduled Backup waits as `Scheduled` and runs once per new value of
//! the run-now annotation, each run to its own path; an invalid cron schedule never runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use cluster_backup::api::{Backup, BackupPhase, RUN_NOW_ANNOTATION};
use common::Scene;
use common::scene::message;

/// A scheduled Backup runs once per new value of the run-now annotation: the same value again
/// (even with the object otherwise changed) does not run; a new value runs again to a new path.
#[tokio::test]
async fn run_now_annotation_runs_exactly_once_per_new_value() {
    let scene = Scene::backups("bk-trigger").await;
    let source = scene.namespace_with_configmap("s", "cfg").await;
    scene
        .create_backup(&scene.scheduled("nightly", &source.name, "@yearly"))
        .await;
    let waiting = scene
        .wait_backup("nightly", |s| s.phase == Some(BackupPhase::Scheduled))
        .await;
    let status = waiting.status.as_ref().unwrap();
    assert!(status.next_backup_time.is_some());
    assert_eq!(status.backup_count, 0);
    assert!(status.last_run.is_none() && status.history.is_empty());

    scene.run_now("nightly", "first").await;
    let after_first = wait_scheduled_after_runs(&scene, "nightly", 1).await;
    let first = scene.verify_run(&after_first).await;
    let status = after_first.status.as_ref().unwrap();
    assert_eq!(status.last_run.as_ref().unwrap().trigger, "manual");
    assert_eq!(status.last_manual_trigger.as_deref(), Some("first"));

    // Same value, plus an unrelated change so the operator certainly reconciles.
    scene
        .annotate(
            "nightly",
            &[(RUN_NOW_ANNOTATION, "first"), ("touched", "yes")],
        )
        .await;
    let quiet_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < quiet_until {
        let current = scene.backups.get("nightly").await.unwrap();
        let status = current.status.unwrap();
        assert_eq!(status.backup_count, 1, "ran again for the same value");
        assert!(status.current_run.is_none(), "ran again for the same value");
        assert_eq!(status.history.len(), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    scene.run_now("nightly", "second").await;
    let after_second = wait_scheduled_after_runs(&scene, "nightly", 2).await;
    let second = scene.verify_run(&after_second).await;
    assert_ne!(first.path, second.path);
    let status = after_second.status.as_ref().unwrap();
    let history: Vec<&str> = status
        .history
        .iter()
        .map(|r| r.backup_path.as_str())
        .collect();
    assert_eq!(history, vec![second.path.as_str(), first.path.as_str()]);
    assert_eq!(status.last_manual_trigger.as_deref(), Some("second"));
    // The first run is untouched by the second.
    assert!(scene.has_manifest(&first.path).await);
    assert_eq!(first.keys(), second.keys());
}

#[tokio::test]
async fn invalid_cron_schedule_is_reported_and_never_runs() {
    let scene = Scene::backups("bk-bad-cron").await;
    let source = scene.new_namespace("s").await;
    scene
        .create_backup(&scene.scheduled("bad-cron", &source.name, "61 * * * *"))
        .await;
    let backup = scene
        .wait_backup("bad-cron", |s| s.phase == Some(BackupPhase::Failed))
        .await;
    let msg = message(&backup);
    assert!(msg.contains("invalid schedule \"61 * * * *\""), "{msg}");
    let status = backup.status.as_ref().unwrap();
    assert!(status.next_backup_time.is_none(), "{status:#?}");
    assert!(
        status.last_run.is_none() && status.backup_count == 0,
        "{status:#?}"
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, "InvalidSchedule");
    let note = scene
        .warning_event("Backup", "bad-cron", "InvalidSchedule")
        .await;
    assert!(note.contains("61 * * * *"), "{note}");

    scene.good_backup_still_completes("good").await;
}

/// Waits until Backup `name` has `runs` complete runs and waits as `Scheduled` again.
async fn wait_scheduled_after_runs(scene: &Scene, name: &str, runs: i64) -> Backup {
    scene
        .wait_backup(name, |s| {
            s.backup_count == runs
                && s.current_run.is_none()
                && s.phase == Some(BackupPhase::Scheduled)
        })
        .await
}
