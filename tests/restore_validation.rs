//! Bad Restore input ends in `Failed` with a specific message, never a crash: a missing or
//! never-completed Backup, a path without a manifest, an invalid mapping, a missing target
//! namespace; every spec problem is reported at once before any I/O.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use cluster_backup::api::RestorePhase;
use common::{Scene, short_unique_name, try_create_json};
use serde_json::{Value, json};

/// Bad input ends in Failed with a specific message, never a crash.
#[tokio::test]
async fn bad_input_fails_with_specific_messages() {
    let scene = Scene::restores("bad-input").await;

    expect_failed(
        &scene,
        "no-backup",
        json!({ "source": { "backupName": "nope" } }),
        "Backup nope not found",
    )
    .await;

    // A Backup that has not produced a complete run (its storage is unreachable).
    scene
        .create_backup(&scene.scheduled("never", "default", "0 0 1 1 *"))
        .await;
    expect_failed(
        &scene,
        "never-ran",
        json!({ "source": { "backupName": "never" } }),
        "Backup never has no complete backup yet",
    )
    .await;

    // A path without manifest.json (an incomplete run or no backup at all).
    let storage = scene.storage();
    storage.ensure_bucket().await.unwrap();
    storage
        .put(
            "backups/x/y/2020-01-01T00-00-00Z/namespaces/a/configmaps/c.json",
            Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
    for (name, path) in [
        ("incomplete", "backups/x/y/2020-01-01T00-00-00Z"),
        ("nothing", "no/such/backup"),
    ] {
        expect_failed(
            &scene,
            name,
            json!({ "source": scene.by_path(path) }),
            format!("backup at {path} has no manifest.json: it is incomplete or not a backup"),
        )
        .await;
    }

    // An unknown conflictResolution is refused by the API server (the CRD's enum).
    let err = try_create_json(
        &scene.client,
        json!({
            "apiVersion": "backup.cnd.dk/v1", "kind": "Restore",
            "metadata": { "name": "bad-conflict", "namespace": scene.namespace() },
            "spec": { "source": { "backupName": "never" },
                      "target": { "conflictResolution": "replace" } }
        }),
    )
    .await
    .expect_err("conflictResolution: replace is refused");
    let err = err.to_string();
    assert!(
        err.contains("conflictResolution") && err.contains("\"overwrite\""),
        "{err}"
    );

    // An invalid namespace mapping is refused before anything is written.
    let (shop, path) = scene.backed_up_shop("bshop", &["configmaps"]).await;
    expect_failed(
        &scene,
        "bad-mapping",
        json!({ "source": scene.by_path(&path),
                    "target": { "namespaceMapping": { shop.name.clone(): "Bad_NS" } } }),
        "\"Bad_NS\" is not a valid namespace name",
    )
    .await;

    // Without createNamespaces, objects for a missing namespace are item errors naming it.
    let missing = short_unique_name("miss");
    let status = scene
        .restore(
            "missing-ns",
            json!({ "source": scene.by_path(&path),
                    "target": { "namespaceMapping": { shop.name.clone(): missing } } }),
        )
        .await;
    assert_eq!(
        status.phase,
        Some(RestorePhase::PartiallyFailed),
        "{status:?}"
    );
    let error = status.failed_resources[0].error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!("namespace {missing} does not exist")),
        "{error}"
    );
}

/// Every spec problem is reported at once, before storage or the target is touched: a Restore
/// with an invalid mapped namespace name, a bad label selector and an impossible type name,
/// pointing at an unreachable storage endpoint, fails with InvalidSpec naming all three and
/// no storage error.
#[tokio::test]
async fn spec_problems_are_reported_together_before_any_io() {
    let scene = Scene::restores("spec").await;
    let mut location = scene.location();
    location["endpoint"] = json!("http://127.0.0.1:1");
    common::assert_loopback(location["endpoint"].as_str().unwrap());
    let status = scene
        .restore(
            "bad-spec",
            json!({
                "source": { "storageLocation": location,
                            "backupPath": "backups/x/y/2020-01-01T00-00-00Z" },
                "target": {
                    "namespaceMapping": { "shop": "Shop_Copy" },
                    "resourceTypes": ["configmaps", "config maps"],
                    "labelSelector": { "matchExpressions": [
                        { "key": "app", "operator": "Equals", "values": ["web"] }] },
                },
            }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    for part in [
        "target.namespaceMapping[\"shop\"]: \"Shop_Copy\" is not a valid namespace name",
        "target.labelSelector.matchExpressions[0]: operator \"Equals\"",
        "target.resourceTypes[1]: \"config maps\" cannot name a type",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    for storage_word in ["127.0.0.1:1", "reach", "manifest"] {
        assert!(!message.contains(storage_word), "{message}");
    }
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    assert_eq!(ready.reason, "InvalidSpec");
    assert_eq!(ready.status, "False");
    let reasons = scene
        .event_reasons("Restore", "bad-spec", &["InvalidSpec"])
        .await;
    assert!(
        !reasons.iter().any(|r| r == "RestoreStarted"),
        "{reasons:?}"
    );
}

/// Restores with `spec`, which must end `Failed` with a message containing `needle`.
async fn expect_failed(scene: &Scene, name: &str, spec: Value, needle: impl AsRef<str>) {
    let status = scene.restore(name, spec).await;
    assert_eq!(status.phase, Some(RestorePhase::Failed));
    let message = status.message.unwrap_or_default();
    assert!(message.contains(needle.as_ref()), "{message}");
}
