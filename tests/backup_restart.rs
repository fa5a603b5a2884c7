//! Operator restarts: a run missed while the operator was down runs once on start, an
//! interrupted run is retried once, and a restart never repeats a finished run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chrono::{Timelike, Utc};
use cluster_backup::api::{BackupPhase, BackupRun, BackupStatus, RunResult, to_time};
use common::{Scene, TestNamespace};

/// A scene whose operator the test starts itself, and a namespace with one ConfigMap.
async fn setup(prefix: &str) -> (Scene, TestNamespace) {
    let scene = Scene::bare(prefix).await;
    let source = scene.namespace_with_configmap("src", "settings").await;
    (scene, source)
}

#[tokio::test]
async fn missed_schedule_runs_once_after_restart() {
    let (scene, source) = setup("missed").await;
    // Daily, twelve hours from now: no slot falls due while the test runs (an `@daily` run
    // started just after midnight is a plain `schedule` run, not a missed one).
    let hour = (Utc::now().hour() + 12) % 24;
    scene
        .create_backup(&scene.scheduled("nightly", &source.name, &format!("0 {hour} * * *")))
        .await;
    // The last slot this Backup ran was two days ago: the slots since were missed while "the
    // operator was down".
    let two_days_ago = Utc::now() - chrono::TimeDelta::days(2);
    scene
        .preset_status(
            "Backup",
            "nightly",
            BackupStatus {
                last_schedule_time: Some(to_time(two_days_ago)),
                ..BackupStatus::default()
            },
        )
        .await;

    let operator = scene.start_backup_operator();
    let done = scene.wait_backup("nightly", |s| s.backup_count >= 1).await;
    let status = done.status.unwrap();
    let run = status.last_run.unwrap();
    assert_eq!(run.trigger, "missed-schedule");
    assert_eq!(run.result, Some(RunResult::Completed));
    assert_eq!(
        status
            .resource_counts
            .get(&format!("{}/configmaps", source.name)),
        Some(&1)
    );

    // A restarted operator does not run the same slot again.
    drop(operator);
    let _operator = scene.start_backup_operator();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = scene.backup_status("nightly").await;
    assert_eq!(
        status.backup_count, 1,
        "the missed slot ran twice: {:?}",
        status.history
    );
    assert_eq!(status.history.len(), 1);
    assert_eq!(format!("{:?}", status.phase), "Some(Scheduled)");
    assert!(status.next_backup_time.is_some());
}

#[tokio::test]
async fn interrupted_run_is_marked_and_retried_once() {
    let (scene, source) = setup("interrupted").await;
    scene
        .create_backup(&scene.one_shot("once", &source.name))
        .await;
    // An operator died in the middle of the run.
    let status = BackupStatus {
        phase: Some(BackupPhase::Running),
        current_run: Some(BackupRun {
            backup_path: format!("backups/{}/once/2020-01-01T00-00-00Z", scene.namespace()),
            trigger: "initial".into(),
            attempt: None,
            requester: None,
            start_time: to_time(Utc::now() - chrono::TimeDelta::minutes(5)),
            completion_time: None,
            result: None,
            objects: 10,
            bytes: 100,
            failed: 0,
            message: None,
            errors: vec![],
            reused_objects: None,
            upload_requests: None,
            uploaded_bytes: None,
            storage_requests: None,
        }),
        ..BackupStatus::default()
    };
    scene.preset_status("Backup", "once", status).await;

    let operator = scene.start_backup_operator();
    let done = scene.wait_backup("once", |s| s.backup_count >= 1).await;
    let status = done.status.unwrap();
    assert_eq!(status.history.len(), 2, "{:?}", status.history);
    assert_eq!(status.history[1].result, Some(RunResult::Failed));
    assert!(
        status.history[1]
            .message
            .as_deref()
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(status.history[0].trigger, "retry");
    assert_eq!(status.history[0].result, Some(RunResult::Completed));
    assert!(status.current_run.is_none());

    // A one-shot Backup that completed is not run again by a restarted operator.
    drop(operator);
    let _operator = scene.start_backup_operator();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = scene.backup_status("once").await;
    assert_eq!(status.backup_count, 1);
    assert_eq!(format!("{:?}", status.phase), "Some(Completed)");
}

/// Regression: a reconcile working from a stale cache entry (our own `Running` write) must not
/// mistake a finished run for an interrupted one and run a one-shot Backup again.
#[tokio::test]
async fn one_shot_backups_run_exactly_once_under_load() {
    let (scene, source) = setup("once-each").await;
    let _operator = scene.start_backup_operator();
    let names: Vec<String> = (0..20).map(|i| format!("b{i:02}")).collect();
    for name in &names {
        scene
            .create_backup(&scene.one_shot(name, &source.name))
            .await;
    }
    for name in &names {
        scene.wait_backup(name, |s| s.last_run.is_some()).await;
    }
    // Give a stale reconcile the chance to do harm.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for name in &names {
        let status = scene.backup_status(name).await;
        assert_eq!(
            status.history.len(),
            1,
            "{name} ran more than once: {:?}",
            status.history
        );
        assert_eq!(status.history[0].trigger, "initial");
        assert_eq!(status.backup_count, 1);
    }
}
