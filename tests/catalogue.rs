//! A user in a fresh cluster finds what to restore: the catalogue lists the complete backups of
//! a bucket from their manifests, and shows runs without a manifest as not restorable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use cluster_backup::api::{Backup, BackupSpec};
use cluster_backup::controller::crds::install_crds;
use cluster_backup::storage::catalogue;
use common::{TestBucket, TestEnv, TestNamespace, create_json, start_operator, wait_for_backup};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

#[tokio::test]
async fn catalogue_lists_complete_backups_and_flags_incomplete_runs() {
    let env = TestEnv::load();
    let client = env.client().await;
    install_crds(&client, Duration::from_secs(60))
        .await
        .unwrap();
    let ns = TestNamespace::new(&client, "cat").await;
    let source = TestNamespace::new(&client, "cat-src").await;
    create_json(
        &client,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": source.name}, "data": {"k": "v"}}),
    )
    .await;
    let bucket = TestBucket::new(&env, "cat");
    let mut spec: BackupSpec = serde_json::from_value(json!({
        "source": {"namespaces": [source.name], "resourceTypes": ["configmaps"]},
        "storageLocation": {"provider": "minio", "bucket": "x"}
    }))
    .unwrap();
    spec.storage_location = env.storage_location(&bucket.name);
    let api: Api<Backup> = Api::namespaced(client.clone(), &ns.name);
    api.create(&PostParams::default(), &Backup::new("listed", spec))
        .await
        .unwrap();
    let _operator = start_operator(&client, &ns.name);
    let done = wait_for_backup(&api, "listed", Duration::from_secs(60), |s| {
        s.backup_count >= 1
    })
    .await;
    let path = done.status.unwrap().backup_path.unwrap();

    // A run that died before its manifest: objects, no commit marker.
    let storage = bucket.storage();
    let stray = "backups/other/crashed/2020-01-01T00-00-00Z";
    storage
        .put(
            &format!("{stray}/namespaces/a/configmaps/b.json"),
            Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();

    let catalogue = catalogue::list(&storage).await.unwrap();
    assert_eq!(catalogue.complete.len(), 1, "{catalogue:?}");
    let entry = &catalogue.complete[0];
    assert_eq!(entry.backup_path, path);
    assert_eq!(
        (entry.backup_namespace.as_str(), entry.backup_name.as_str()),
        (ns.name.as_str(), "listed")
    );
    assert_eq!(entry.objects, 1);
    assert_eq!(entry.result, "Completed");
    assert!(entry.cluster_version.starts_with("v1."));
    assert_eq!(catalogue.unrestorable.len(), 1);
    assert_eq!(catalogue.unrestorable[0].backup_path, stray);
    assert!(
        catalogue.unrestorable[0]
            .reason
            .contains("no manifest.json")
    );
}
