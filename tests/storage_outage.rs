//! The S3 server stops in the middle of a run: the run fails cleanly with a clear message and
//! no manifest (never presented as restorable), the schedule carries on, and once the server is
//! back the next run succeeds.
//!
//! This stops the SHARED S3 server, so it lives alone in its own test binary (cargo runs test
//! binaries one after another).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use cluster_backup::api::{Backup, BackupPhase, BackupSpec, RUN_NOW_ANNOTATION, RunResult};
use cluster_backup::controller::crds::install_crds;
use cluster_backup::engine::retention;
use cluster_backup::storage::{Credentials, Storage};
use common::{
    TestEnv, TestNamespace, fresh_bucket_name, repo_root, start_operator, wait_for_backup,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const OBJECTS: usize = 4000;

fn testenv(action: &str) {
    let status = Command::new(repo_root().join("scripts/testenv.sh"))
        .arg(action)
        .status()
        .unwrap();
    assert!(status.success(), "scripts/testenv.sh {action} failed");
}

/// Restarts the S3 server even when an assertion fails, so later tests are not affected.
struct RestartS3OnDrop;
impl Drop for RestartS3OnDrop {
    fn drop(&mut self) {
        testenv("s3-start");
    }
}

async fn seed(client: &Client, ns: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let payload = "x".repeat(1024);
    futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let api = api.clone();
            let cm: ConfigMap = serde_json::from_value(json!({
                "metadata": {"name": format!("cm-{i:05}")}, "data": {"payload": payload}
            }))
            .unwrap();
            async move { api.create(&PostParams::default(), &cm).await.unwrap() }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

async fn trigger(api: &Api<Backup>, value: &str) {
    let patch = json!({"metadata": {"annotations": {RUN_NOW_ANNOTATION: value}}});
    api.patch("outage", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn storage_outage_fails_the_run_cleanly_and_the_next_run_succeeds() {
    let env = TestEnv::load();
    let client = env.client().await;
    install_crds(&client, Duration::from_secs(60))
        .await
        .unwrap();
    let ns = TestNamespace::new(&client, "outage").await;
    let source = TestNamespace::new(&client, "outage-src").await;
    seed(&client, &source.name).await;

    let bucket = fresh_bucket_name("outage");
    let location = env.storage_location(&bucket);
    let mut spec: BackupSpec = serde_json::from_value(json!({
        "source": {"namespaces": [source.name], "resourceTypes": ["configmaps"]},
        "schedule": "@daily",
        "storageLocation": {"provider": "minio", "bucket": bucket}
    }))
    .unwrap();
    spec.storage_location = location.clone();
    let api: Api<Backup> = Api::namespaced(client.clone(), &ns.name);
    api.create(&PostParams::default(), &Backup::new("outage", spec))
        .await
        .unwrap();
    let _operator = start_operator(&client, &ns.name);
    wait_for_backup(&api, "outage", Duration::from_secs(30), |s| {
        s.phase == Some(BackupPhase::Scheduled)
    })
    .await;

    // Run 1: the S3 server goes away while objects are being uploaded.
    trigger(&api, "during-outage").await;
    wait_for_backup(&api, "outage", Duration::from_secs(30), |s| {
        s.current_run.as_ref().is_some_and(|run| run.objects > 0)
            || s.phase == Some(BackupPhase::Running)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let restart = RestartS3OnDrop;
    testenv("s3-stop");
    let failed = wait_for_backup(&api, "outage", Duration::from_secs(120), |s| {
        s.last_run.is_some()
    })
    .await;
    let status = failed.status.unwrap();
    let run = status.last_run.clone().unwrap();
    println!(
        "run during outage: {:?}: {}",
        run.result,
        run.message.clone().unwrap_or_default()
    );
    assert_eq!(run.result, Some(RunResult::Failed), "{status:?}");
    let message = status.message.clone().unwrap();
    assert!(message.contains("Backup failed"), "{message}");
    assert!(
        ["refused", "unreachable", "connect", "timed out"]
            .iter()
            .any(|w| message.to_lowercase().contains(w)),
        "the message should say storage is unreachable: {message}"
    );
    assert!(
        !message.contains(&env.s3_secret_key),
        "secret leaked: {message}"
    );
    assert_eq!(
        status.phase,
        Some(BackupPhase::Scheduled),
        "the schedule carries on"
    );
    assert!(status.next_backup_time.is_some());
    assert_eq!(status.backup_count, 0);
    assert!(
        status.backup_path.is_none(),
        "a failed run is never presented as restorable"
    );

    // Storage is back: the failed run left no manifest, the next run succeeds.
    drop(restart);
    let credentials = Credentials {
        access_key_id: env.s3_access_key.clone(),
        secret_access_key: env.s3_secret_key.clone(),
        session_token: None,
    };
    let storage = Storage::new(&location, Some(credentials)).unwrap();
    assert!(
        !retention::manifest_exists(&storage, &run.backup_path)
            .await
            .unwrap(),
        "failed run {} has a manifest",
        run.backup_path
    );
    trigger(&api, "after-outage").await;
    let done = wait_for_backup(&api, "outage", Duration::from_secs(120), |s| {
        s.backup_count >= 1
    })
    .await;
    let status = done.status.unwrap();
    let run = status.last_run.unwrap();
    assert_eq!(run.result, Some(RunResult::Completed), "{:?}", run.message);
    assert_eq!(run.objects, OBJECTS as i64);
    assert!(
        retention::manifest_exists(&storage, status.backup_path.as_deref().unwrap())
            .await
            .unwrap()
    );
    assert_eq!(status.history[1].result, Some(RunResult::Failed));
}
