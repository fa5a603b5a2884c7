//! Storage credentials: inline keys work with a warning Event, a credentials Secret in the
//! Backup's namespace is read, and wrong or missing credentials fail the run with a message
//! that names the problem and never the secret (the design document's walkthroughs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::objects::{configmap, deployment, secret, service};
use common::stored::{keys, ns_key};
use common::{Scene, TestNamespace, unique_name};
use serde_json::json;

/// The walkthrough's namespace: deployment nginx, configmap test-config, secret test-secret,
/// service nginx (as `kubectl create`/`expose` make them).
async fn walkthrough_namespace(scene: &Scene) -> TestNamespace {
    let source = scene.new_namespace("tb").await;
    let ns = source.name.as_str();
    scene
        .create_all([
            deployment(ns, "nginx", json!({ "app": "nginx" })),
            configmap(ns, "test-config", json!({})),
            secret(ns, "test-secret", json!({})),
            service(ns, "nginx", json!({ "app": "nginx" })),
        ])
        .await;
    source
}

fn walkthrough_keys(ns: &str) -> BTreeSet<String> {
    keys([
        ns_key(ns, "configmaps", "test-config"),
        ns_key(ns, "deployments", "nginx"),
        ns_key(ns, "secrets", "test-secret"),
        ns_key(ns, "services", "nginx"),
    ])
}

/// `test-backup` ("Manual Testing Steps"): default resource types, inline keys.
#[tokio::test]
async fn test_backup_walkthrough_stores_its_four_objects() {
    let scene = Scene::backups("bk-walk").await;
    let source = walkthrough_namespace(&scene).await;
    let doc = scene.backup_sample(
        "backup_v1_test_backup.yaml",
        "test-backup",
        &[("test-backup", &source.name)],
    );
    let backup = scene.run_scheduled(&doc).await;
    let run = scene.verify_run(&backup).await;
    assert_eq!(run.keys(), walkthrough_keys(&source.name));
    // Inline keys are accepted, with a warning Event that does not repeat them.
    let note = scene
        .warning_event("Backup", "test-backup", "CredentialsWarning")
        .await;
    assert!(note.contains("inline"), "{note}");
    assert!(!note.contains(&scene.env.s3_secret_key));
}

/// `test-namespace-backup` ("Testing Procedures"): credentials from the Secret
/// `minio-credentials` in the Backup's namespace.
#[tokio::test]
async fn test_namespace_backup_walkthrough_reads_credentials_from_its_secret() {
    let scene = Scene::backups("bk-walk-secret").await;
    let source = walkthrough_namespace(&scene).await;
    scene
        .create(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "minio-credentials", "namespace": scene.namespace() },
            "stringData": {
                "accessKey": scene.env.s3_access_key,
                "secretKey": scene.env.s3_secret_key,
            }
        }))
        .await;
    let doc = scene.backup_sample(
        "backup_v1_test_namespace_backup.yaml",
        "test-namespace-backup",
        &[("test-backup", &source.name)],
    );
    assert_eq!(
        doc["spec"]["storageLocation"]["credentialsSecret"],
        "minio-credentials"
    );
    let backup = scene.run_scheduled(&doc).await;
    let run = scene.verify_run(&backup).await;
    assert_eq!(run.keys(), walkthrough_keys(&source.name));
    assert_eq!(
        run.manifest.spec.value()["storageLocation"]["credentialsSecret"],
        "minio-credentials"
    );
}

#[tokio::test]
async fn wrong_credentials_are_reported_without_the_secret() {
    let scene = Scene::backups("bk-bad-creds").await;
    let source = scene.new_namespace("s").await;
    let wrong_secret = format!("wrong-secret-{}", unique_name("k"));
    let mut doc = scene.one_shot("bad-creds", &source.name);
    doc["spec"]["storageLocation"]["secretKey"] = json!(wrong_secret);
    let backup = scene
        .expect_failed_run(&doc, &["rejected the credentials"])
        .await;

    let status_text = serde_json::to_string(&backup.status).unwrap();
    let events_text = format!("{:?}", scene.events("Backup", "bad-creds").await);
    for secret in [&wrong_secret, &scene.env.s3_secret_key] {
        assert!(!status_text.contains(secret.as_str()), "secret in status");
        assert!(!events_text.contains(secret.as_str()), "secret in events");
    }
    scene.good_backup_still_completes("good").await;
}

#[tokio::test]
async fn missing_credentials_secret_is_named() {
    let scene = Scene::backups("bk-bad-secret").await;
    let source = scene.new_namespace("s").await;
    let secret_name = unique_name("no-such-credentials");
    let mut doc = scene.one_shot("no-secret", &source.name);
    let location = doc["spec"]["storageLocation"].as_object_mut().unwrap();
    location.remove("accessKey");
    location.remove("secretKey");
    location.insert("credentialsSecret".into(), json!(secret_name));
    scene
        .expect_failed_run(
            &doc,
            &[format!("credentials Secret \"{secret_name}\" not found").as_str()],
        )
        .await;
    scene.good_backup_still_completes("good").await;
}
