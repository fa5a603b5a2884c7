//! `spec.format: packed` against the real API server and S3 server: a packed run restores like
//! a one-file-per-object run, later runs upload only what changed (measured by the run's own
//! `uploadRequests` / `reusedObjects`), every run restores on its own, and retention never
//! deletes data a kept run still needs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cluster_backup::api::{BackupRun, RestorePhase, RunResult};
use cluster_backup::core::packed;
use common::objects::{APP_OBJECTS, APP_TYPES, shop_app};
use common::restored::{assert_restored, count};
use common::{Scene, TestNamespace, short_unique_name};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

const EXTRA_CONFIGMAPS: usize = 40;

fn packed_backup(scene: &Scene, name: &str, ns: &str) -> Value {
    let mut doc = scene.backup_json(name, &[ns], &APP_TYPES);
    doc["spec"]["format"] = json!("packed");
    doc
}

async fn seed(scene: &Scene, ns: &str) {
    scene.create_all(shop_app(ns)).await;
    scene
        .create_all((0..EXTRA_CONFIGMAPS).map(|i| {
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": format!("cfg-{i:03}"), "namespace": ns },
                "data": { "value": format!("v{i}"), "blob": "x".repeat(2000) },
            })
        }))
        .await;
}

/// Waits for run number `count` of Backup `name` to finish and returns it.
async fn run_number(scene: &Scene, name: &str, count: i64) -> (BackupRun, String) {
    let done = scene
        .wait_backup(name, |s| s.backup_count >= count && s.current_run.is_none())
        .await;
    let status = done.status.unwrap();
    let run = status.last_run.unwrap();
    assert_eq!(run.result, Some(RunResult::Completed), "{:?}", run.message);
    (run, status.backup_path.unwrap())
}

async fn set_value(scene: &Scene, ns: &str, name: &str, value: &str) {
    let api: Api<ConfigMap> = Api::namespaced(scene.client.clone(), ns);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "value": value } })),
    )
    .await
    .unwrap();
}

async fn value_in(scene: &Scene, ns: &str, name: &str) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(scene.client.clone(), ns);
    api.get_opt(name)
        .await
        .unwrap()
        .and_then(|cm| cm.data)
        .and_then(|d| d.get("value").cloned())
}

/// Restores `path` into a new namespace, checks the app's objects there equal their originals
/// in `from` (none of them changes between runs), and returns it (deleted when the guard drops).
async fn restore_copy(scene: &Scene, restore: &str, path: &str, from: &str) -> TestNamespace {
    let copy = short_unique_name("copy");
    let status = scene
        .restore(
            restore,
            json!({
                "source": scene.by_path(path),
                "target": { "namespaceMapping": { from: copy.clone() } },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    let guard = scene.adopt_namespace(&copy);
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0, "{status:?}");
    assert_restored(&scene.client, from, &scene.client, &copy, &APP_OBJECTS).await;
    guard
}

#[tokio::test]
async fn packed_runs_restore_and_upload_only_what_changed() {
    let scene = Scene::restores("packed").await;
    let shop = scene.new_namespace("shop").await;
    seed(&scene, &shop.name).await;
    scene
        .create_backup(&packed_backup(&scene, "packed", &shop.name))
        .await;
    let (first, path1) = run_number(&scene, "packed", 1).await;
    let objects = first.objects;
    assert!(objects > EXTRA_CONFIGMAPS as i64, "{first:?}");
    assert_eq!(first.reused_objects, Some(0));
    let first_uploads = first.upload_requests.unwrap();
    assert!(
        first_uploads < 10,
        "a pack, a few index documents and the manifest, not one PUT per object: {first:?}"
    );

    // The run folder holds only the manifest; the data is beside it, compressed.
    let storage = scene.storage();
    let in_run: Vec<_> = storage.list(&path1).try_collect().await.unwrap();
    assert_eq!(in_run.len(), 1, "{in_run:?}");
    let data = packed::data_dir(scene.namespace(), "packed");
    let stored: Vec<_> = storage.list(&data).try_collect().await.unwrap();
    let stored_bytes: u64 = stored.iter().map(|o| o.size).sum();
    assert!(
        (stored_bytes as i64) < first.bytes / 3,
        "zstd: {stored_bytes} stored for {} bytes of JSON",
        first.bytes
    );

    // Restored objects equal their originals.
    let copy = restore_copy(&scene, "from-first", &path1, &shop.name).await;
    assert_eq!(
        value_in(&scene, &copy.name, "cfg-007").await.as_deref(),
        Some("v7")
    );

    // Unchanged: the second run references everything and uploads only its manifest.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    scene.run_now("packed", "2").await;
    let (second, _) = run_number(&scene, "packed", 2).await;
    assert_eq!(second.objects, objects);
    assert_eq!(second.reused_objects, Some(objects), "{second:?}");
    assert_eq!(second.upload_requests, Some(1), "{second:?}");

    // One object changed: one pack, one delta, the manifest.
    set_value(&scene, &shop.name, "cfg-007", "changed").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    scene.run_now("packed", "3").await;
    let (third, path3) = run_number(&scene, "packed", 3).await;
    assert_eq!(third.reused_objects, Some(objects - 1), "{third:?}");
    assert_eq!(third.upload_requests, Some(3), "{third:?}");

    // Every run restores on its own: the third has the change, the first still does not.
    let copy3 = restore_copy(&scene, "from-third", &path3, &shop.name).await;
    assert_eq!(
        value_in(&scene, &copy3.name, "cfg-007").await.as_deref(),
        Some("changed")
    );
    let again = restore_copy(&scene, "first-again", &path1, &shop.name).await;
    assert_eq!(
        value_in(&scene, &again.name, "cfg-007").await.as_deref(),
        Some("v7")
    );
}

#[tokio::test]
async fn retention_keeps_the_data_kept_runs_reference() {
    let scene = Scene::restores("packed-retention").await;
    let shop = scene.new_namespace("shop").await;
    seed(&scene, &shop.name).await;
    let mut doc = packed_backup(&scene, "kept", &shop.name);
    doc["spec"]["retention"] = json!({ "keepLast": 1 });
    scene.create_backup(&doc).await;
    let (_, path1) = run_number(&scene, "kept", 1).await;

    set_value(&scene, &shop.name, "cfg-001", "second").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    scene.run_now("kept", "2").await;
    let (second, path2) = run_number(&scene, "kept", 2).await;
    assert_eq!(second.reused_objects, Some(second.objects - 1));

    // The first run is gone; its pack holds all but one object of the second run and stays.
    let storage = scene.storage();
    let left: Vec<_> = storage.list(&path1).try_collect().await.unwrap();
    assert!(left.is_empty(), "retention deleted the first run: {left:?}");
    let copy = restore_copy(&scene, "after-retention", &path2, &shop.name).await;
    assert_eq!(
        value_in(&scene, &copy.name, "cfg-001").await.as_deref(),
        Some("second")
    );
    assert_eq!(
        value_in(&scene, &copy.name, "cfg-002").await.as_deref(),
        Some("v2")
    );
}
