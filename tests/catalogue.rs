//! A user in a fresh cluster finds what to restore: the catalogue lists the complete backups of
//! a bucket from their manifests, and shows runs without a manifest as not restorable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use cluster_backup::storage::catalogue;
use common::Scene;

#[tokio::test]
async fn catalogue_lists_complete_backups_and_flags_incomplete_runs() {
    let scene = Scene::backups("cat").await;
    let source = scene.namespace_with_configmap("src", "c").await;
    scene
        .create_backup(&scene.one_shot("listed", &source.name))
        .await;
    let done = scene.wait_backup("listed", |s| s.backup_count >= 1).await;
    let path = done.status.unwrap().backup_path.unwrap();

    // A run that died before its manifest: objects, no commit marker.
    let storage = scene.storage();
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
        (scene.namespace(), "listed")
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
