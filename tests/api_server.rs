//! Foundation tests against the REAL kube-apiserver of `scripts/testenv.sh`: the CRDs install,
//! every example YAML of the design documents is accepted unchanged and reads back intact,
//! and invalid objects are refused by the schema.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use cluster_backup::controller::crds::install_crds;
use common::{Scene, TestEnv, try_create_json};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};
use serde_json::Value;

fn api_for(client: &Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("backup.cnd.dk", "v1", kind);
    let resource = ApiResource::from_gvk(&gvk);
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// Every field of `expected` is present in `actual` with the same value (the server may add
/// schema defaults, but must not drop or change anything the user wrote).
fn assert_contains(actual: &Value, expected: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            for (key, value) in want {
                let child = format!("{path}.{key}");
                let got_value = got.get(key).unwrap_or_else(|| panic!("{child} was pruned"));
                assert_contains(got_value, value, &child);
            }
        }
        _ => assert_eq!(actual, expected, "{path} changed"),
    }
}

#[tokio::test]
async fn server_version_is_real_kube_apiserver() {
    let env = TestEnv::load();
    let client = env.client().await;
    let version = client.apiserver_version().await.expect("GET /version");
    println!(
        "kube-apiserver /version: gitVersion={} platform={} goVersion={}",
        version.git_version, version.platform, version.go_version
    );
    assert_eq!(version.major, "1");
    assert!(
        version.git_version.starts_with("v1."),
        "{}",
        version.git_version
    );
}

#[tokio::test]
async fn crds_install_and_become_established() {
    let scene = Scene::bare("crds").await;
    // Installing twice is idempotent (server-side apply).
    let names = install_crds(&scene.client, Duration::from_secs(30))
        .await
        .expect("second install");
    assert_eq!(
        names,
        vec![
            "backups.backup.cnd.dk",
            "restores.backup.cnd.dk",
            "clusterstoragelocations.backup.cnd.dk"
        ]
    );
}

async fn apply_samples_and_compare(file: &str, kind: &str) {
    let scene = Scene::bare("samples").await;
    let ns = scene.namespace();
    let docs = scene.env.sample_documents(file);
    assert!(!docs.is_empty(), "{file} has documents");
    for mut doc in docs {
        assert_eq!(doc["kind"], kind, "{file}");
        // The samples name `default` (or nothing); each test runs in its own namespace.
        doc["metadata"]["namespace"] = Value::String(ns.to_string());
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        try_create_json(&scene.client, doc.clone())
            .await
            .unwrap_or_else(|e| panic!("{file}: {kind} {name} refused: {e}"));
        let api = api_for(&scene.client, ns, kind);
        let stored = api.get(&name).await.unwrap();
        let stored = serde_json::to_value(&stored).unwrap();
        assert_contains(&stored["spec"], &doc["spec"], &format!("{name}.spec"));
        assert_contains(
            &stored["metadata"]["labels"],
            &doc["metadata"]["labels"],
            "labels",
        );
        println!("{file}: {kind} {name} accepted and read back intact");
    }
}

#[tokio::test]
async fn design_doc_backup_examples_are_accepted_unchanged() {
    for file in [
        "backup_v1_comprehensive_examples_v2.yaml",
        "backup_v1_full_cluster_test.yaml",
        "backup_v1_test_namespace_backup.yaml",
        "backup_v1_test_backup.yaml",
    ] {
        apply_samples_and_compare(file, "Backup").await;
    }
}

#[tokio::test]
async fn credentials_secret_is_not_pruned() {
    let scene = Scene::bare("credsecret").await;
    let doc = scene.sample(
        "backup_v1_test_namespace_backup.yaml",
        "test-namespace-backup",
    );
    scene.create(doc).await;
    let api = api_for(&scene.client, scene.namespace(), "Backup");
    let stored = serde_json::to_value(api.get("test-namespace-backup").await.unwrap()).unwrap();
    assert_eq!(
        stored["spec"]["storageLocation"]["credentialsSecret"],
        "minio-credentials"
    );
}

#[tokio::test]
async fn stage5_restore_examples_are_accepted_unchanged() {
    for file in [
        "backup_v1_comprehensive_restore_examples.yaml",
        "backup_v1_restore.yaml",
    ] {
        apply_samples_and_compare(file, "Restore").await;
    }
}

#[tokio::test]
async fn invalid_objects_are_rejected_by_the_schema() {
    let scene = Scene::bare("invalid").await;
    let location = serde_json::json!({
        "provider": "minio", "bucket": "b", "endpoint": scene.env.s3_endpoint
    });
    let cases = [
        (
            "Backup",
            "resourcetypes-int",
            serde_json::json!({"source": {"resourceTypes": 5}, "storageLocation": location}),
        ),
        (
            "Backup",
            "schedule-int",
            serde_json::json!({"schedule": 5, "storageLocation": location}),
        ),
        (
            "Backup",
            "no-storage",
            serde_json::json!({"source": {"namespaces": ["a"]}}),
        ),
        (
            "Backup",
            "bad-provider",
            serde_json::json!({"storageLocation": {"provider": "ftp", "bucket": "b"}}),
        ),
        (
            "Backup",
            "no-bucket",
            serde_json::json!({"storageLocation": {"provider": "minio"}}),
        ),
        (
            "Backup",
            "keeplast-zero",
            serde_json::json!({"storageLocation": location, "retention": {"keepLast": 0}}),
        ),
        (
            "Backup",
            "namespaces-string",
            serde_json::json!({"source": {"namespaces": "prod"}, "storageLocation": location}),
        ),
        (
            "Restore",
            "bad-conflict",
            serde_json::json!({"source": {"backupName": "x"}, "target": {"conflictResolution": "merge"}}),
        ),
        ("Restore", "no-source", serde_json::json!({"target": {}})),
        (
            "Restore",
            "dryrun-string",
            serde_json::json!({"source": {"backupName": "x"}, "options": {"dryRun": "yes please"}}),
        ),
    ];
    for (kind, name, spec) in cases {
        let object = serde_json::json!({
            "apiVersion": "backup.cnd.dk/v1", "kind": kind,
            "metadata": {"name": name, "namespace": scene.namespace()}, "spec": spec
        });
        let err = try_create_json(&scene.client, object)
            .await
            .expect_err(&format!("{kind} {name} must be rejected"));
        match err {
            kube::Error::Api(status) => {
                assert_eq!(status.code, 422, "{kind} {name}: {status:?}");
                println!("{kind} {name} rejected: {}", status.message);
            }
            other => panic!("{kind} {name}: unexpected error {other}"),
        }
    }
}
