//! Operator restarts: a run missed while the operator was down runs once on start, an
//! interrupted run is retried once, and a restart never repeats a finished run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chrono::Utc;
use cluster_backup::api::{Backup, BackupSpec, BackupStatus, RunResult, to_time};
use cluster_backup::controller::crds::{FIELD_MANAGER, install_crds};
use common::{
    TestEnv, TestNamespace, create_json, fresh_bucket_name, start_operator, wait_for_backup,
};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

async fn setup(prefix: &str) -> (TestEnv, Client, TestNamespace, TestNamespace) {
    let env = TestEnv::load();
    let client = env.client().await;
    install_crds(&client, Duration::from_secs(60))
        .await
        .unwrap();
    let ns = TestNamespace::new(&client, prefix).await;
    let source = TestNamespace::new(&client, &format!("{prefix}-src")).await;
    create_json(
        &client,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": source.name}, "data": {"a": "1"}}),
    )
    .await;
    (env, client, ns, source)
}

fn spec(env: &TestEnv, source: &str, schedule: Option<&str>) -> BackupSpec {
    let mut spec: BackupSpec = serde_json::from_value(json!({
        "source": {"namespaces": [source], "resourceTypes": ["configmaps"]},
        "storageLocation": {"provider": "minio", "bucket": "x"}
    }))
    .unwrap();
    spec.schedule = schedule.map(str::to_string);
    spec.storage_location = env.storage_location(&fresh_bucket_name("restart"));
    spec
}

/// Writes status as a previous operator would have left it (the operator is not running).
async fn preset_status(api: &Api<Backup>, name: &str, status: BackupStatus) {
    let patch = json!({"apiVersion": "backup.cnd.dk/v1", "kind": "Backup", "status": status});
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn missed_schedule_runs_once_after_restart() {
    let (env, client, ns, source) = setup("missed").await;
    let api: Api<Backup> = Api::namespaced(client.clone(), &ns.name);
    api.create(
        &PostParams::default(),
        &Backup::new("nightly", spec(&env, &source.name, Some("@daily"))),
    )
    .await
    .unwrap();
    // The last slot this Backup ran was two days ago: yesterday's and today's midnight were
    // missed while "the operator was down".
    let two_days_ago = Utc::now() - chrono::TimeDelta::days(2);
    preset_status(
        &api,
        "nightly",
        BackupStatus {
            last_schedule_time: Some(to_time(two_days_ago)),
            ..BackupStatus::default()
        },
    )
    .await;

    let _operator = start_operator(&client, &ns.name);
    let done = wait_for_backup(&api, "nightly", Duration::from_secs(60), |s| {
        s.backup_count >= 1
    })
    .await;
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
    drop(_operator);
    let _operator = start_operator(&client, &ns.name);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = api.get("nightly").await.unwrap().status.unwrap();
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
    let (env, client, ns, source) = setup("interrupted").await;
    let api: Api<Backup> = Api::namespaced(client.clone(), &ns.name);
    api.create(
        &PostParams::default(),
        &Backup::new("once", spec(&env, &source.name, None)),
    )
    .await
    .unwrap();
    // An operator died in the middle of the run.
    let status = BackupStatus {
        phase: Some(cluster_backup::api::BackupPhase::Running),
        current_run: Some(cluster_backup::api::BackupRun {
            backup_path: format!("backups/{}/once/2020-01-01T00-00-00Z", ns.name),
            trigger: "initial".into(),
            attempt: None,
            start_time: to_time(Utc::now() - chrono::TimeDelta::minutes(5)),
            completion_time: None,
            result: None,
            objects: 10,
            bytes: 100,
            failed: 0,
            message: None,
            errors: vec![],
        }),
        ..BackupStatus::default()
    };
    preset_status(&api, "once", status).await;

    let _operator = start_operator(&client, &ns.name);
    let done = wait_for_backup(&api, "once", Duration::from_secs(60), |s| {
        s.backup_count >= 1
    })
    .await;
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
    drop(_operator);
    let _operator = start_operator(&client, &ns.name);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = api.get("once").await.unwrap().status.unwrap();
    assert_eq!(status.backup_count, 1);
    assert_eq!(format!("{:?}", status.phase), "Some(Completed)");
}

/// Regression: a reconcile working from a stale cache entry (our own `Running` write) must not
/// mistake a finished run for an interrupted one and run a one-shot Backup again.
#[tokio::test]
async fn one_shot_backups_run_exactly_once_under_load() {
    let (env, client, ns, source) = setup("once-each").await;
    let api: Api<Backup> = Api::namespaced(client.clone(), &ns.name);
    let _operator = start_operator(&client, &ns.name);
    let names: Vec<String> = (0..20).map(|i| format!("b{i:02}")).collect();
    for name in &names {
        api.create(
            &PostParams::default(),
            &Backup::new(name, spec(&env, &source.name, None)),
        )
        .await
        .unwrap();
    }
    for name in &names {
        wait_for_backup(&api, name, Duration::from_secs(120), |s| {
            s.last_run.is_some()
        })
        .await;
    }
    // Give a stale reconcile the chance to do harm.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for name in &names {
        let status = api.get(name).await.unwrap().status.unwrap();
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
