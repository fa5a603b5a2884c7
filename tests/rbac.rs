//! The shipped RBAC (`config/rbac/`) is enough for the operator, and no more than it claims:
//! a backup run as the operator's ServiceAccount (impersonated) completes, and that account
//! cannot write the objects it backs up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cluster_backup::api::RunResult;
use common::Scene;
use serde_json::json;

const OPERATOR: &str = "system:serviceaccount:cluster-backup-system:cluster-backup-operator";

#[tokio::test]
async fn operator_service_account_can_back_up_and_cannot_write_workloads() {
    let scene = Scene::bare("rbac").await;
    let env = &scene.env;
    let _ = env.kubectl(&["create", "namespace", "cluster-backup-system"]);
    let (ok, out) = env.kubectl(&["apply", "-k", "config/rbac"]);
    assert!(ok, "kubectl apply -k config/rbac: {out}");

    for (verb, resource, expected) in [
        ("list", "secrets", "yes"),
        ("list", "clusterroles.rbac.authorization.k8s.io", "yes"),
        ("patch", "backups.backup.cnd.dk/status", "yes"),
        ("create", "events.events.k8s.io", "yes"),
        ("create", "configmaps", "no"),
        ("delete", "deployments.apps", "no"),
        ("update", "secrets", "no"),
    ] {
        let (_, out) = env.kubectl(&["auth", "can-i", verb, resource, "-A", "--as", OPERATOR]);
        assert_eq!(out.trim(), expected, "can the operator {verb} {resource}?");
    }

    let source = scene.new_namespace("src").await;
    scene
        .create(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": source.name}, "stringData": {"password": "p"}}))
        .await;
    scene
        .create(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s3", "namespace": scene.namespace()},
            "stringData": {"accessKey": env.s3_access_key, "secretKey": env.s3_secret_key}}))
        .await;
    let mut doc = scene.backup_json("as-operator", &[&source.name], &["secrets", "clusterroles"]);
    let location = doc["spec"]["storageLocation"].as_object_mut().unwrap();
    location.remove("accessKey");
    location.remove("secretKey");
    location.insert("credentialsSecret".into(), json!("s3"));
    scene.create_backup(&doc).await;

    let _operator = scene.start_backup_operator_as(&env.client_as(OPERATOR).await);
    let done = scene
        .wait_backup("as-operator", |s| s.last_run.is_some())
        .await;
    let status = done.status.unwrap();
    let run = status.last_run.unwrap();
    assert_eq!(
        run.result,
        Some(RunResult::Completed),
        "{:?} {:?}",
        run.message,
        run.errors
    );
    assert_eq!(
        status
            .resource_counts
            .get(&format!("{}/secrets", source.name)),
        Some(&1)
    );
    assert!(
        status
            .resource_counts
            .get("cluster/clusterroles")
            .copied()
            .unwrap_or(0)
            > 10
    );
}
