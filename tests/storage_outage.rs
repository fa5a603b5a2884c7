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

use cluster_backup::api::{BackupPhase, RunResult};
use cluster_backup::engine::retention;
use common::{Scene, repo_root};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
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

#[tokio::test]
async fn storage_outage_fails_the_run_cleanly_and_the_next_run_succeeds() {
    let scene = Scene::backups("outage").await;
    let source = scene.new_namespace("src").await;
    seed(&scene.client, &source.name).await;
    scene
        .create_backup(&scene.scheduled("outage", &source.name, "@daily"))
        .await;
    scene
        .wait_backup("outage", |s| s.phase == Some(BackupPhase::Scheduled))
        .await;

    // Run 1: the S3 server goes away while objects are being uploaded.
    scene.run_now("outage", "during-outage").await;
    scene
        .wait_backup("outage", |s| {
            s.current_run.as_ref().is_some_and(|run| run.objects > 0)
                || s.phase == Some(BackupPhase::Running)
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let restart = RestartS3OnDrop;
    testenv("s3-stop");
    let failed = scene.wait_backup("outage", |s| s.last_run.is_some()).await;
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
        !message.contains(&scene.env.s3_secret_key),
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
    let storage = scene.storage();
    assert!(
        !retention::manifest_exists(&storage, &run.backup_path)
            .await
            .unwrap(),
        "failed run {} has a manifest",
        run.backup_path
    );
    scene.run_now("outage", "after-outage").await;
    let done = scene.wait_backup("outage", |s| s.backup_count >= 1).await;
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
