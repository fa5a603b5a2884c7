//! The shipped RBAC (`config/rbac/`) is enough for the operator, and no more than it claims:
//! a backup run as the operator's ServiceAccount (impersonated) completes, and that account
//! cannot write the objects it backs up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use cluster_backup::api::{Backup, BackupSpec, RunResult};
use cluster_backup::controller::crds::install_crds;
use common::{
    TestEnv, TestNamespace, create_json, fresh_bucket_name, repo_root, start_operator,
    wait_for_backup,
};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;

const OPERATOR: &str = "system:serviceaccount:cluster-backup-system:cluster-backup-operator";

fn kubectl(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let out = Command::new(&env.kubectl)
        .env("KUBECONFIG", &env.kubeconfig)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn operator_client(env: &TestEnv) -> Client {
    let kubeconfig = Kubeconfig::read_from(&env.kubeconfig).unwrap();
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some(OPERATOR.to_string());
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn operator_service_account_can_back_up_and_cannot_write_workloads() {
    let env = TestEnv::load();
    let admin = env.client().await;
    install_crds(&admin, Duration::from_secs(60)).await.unwrap();
    let (_, _) = kubectl(&env, &["create", "namespace", "cluster-backup-system"]);
    let (ok, out) = kubectl(&env, &["apply", "-k", "config/rbac"]);
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
        let (_, out) = kubectl(
            &env,
            &["auth", "can-i", verb, resource, "-A", "--as", OPERATOR],
        );
        assert_eq!(out.trim(), expected, "can the operator {verb} {resource}?");
    }

    let ns = TestNamespace::new(&admin, "rbac").await;
    let source = TestNamespace::new(&admin, "rbac-src").await;
    create_json(
        &admin,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": source.name}, "stringData": {"password": "p"}}),
    )
    .await;
    create_json(
        &admin,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s3", "namespace": ns.name},
        "stringData": {"accessKey": env.s3_access_key, "secretKey": env.s3_secret_key}}),
    )
    .await;
    let mut spec: BackupSpec = serde_json::from_value(json!({
        "source": {"namespaces": [source.name], "resourceTypes": ["secrets", "clusterroles"]},
        "storageLocation": {"provider": "minio", "bucket": "x"}
    }))
    .unwrap();
    spec.storage_location = env.storage_location(&fresh_bucket_name("rbac"));
    spec.storage_location.access_key = None;
    spec.storage_location.secret_key = None;
    spec.storage_location.credentials_secret = Some("s3".into());
    let api: Api<Backup> = Api::namespaced(admin.clone(), &ns.name);
    api.create(&PostParams::default(), &Backup::new("as-operator", spec))
        .await
        .unwrap();

    let client = operator_client(&env).await;
    let _operator = start_operator(&client, &ns.name);
    let done = wait_for_backup(&api, "as-operator", Duration::from_secs(60), |s| {
        s.last_run.is_some()
    })
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
