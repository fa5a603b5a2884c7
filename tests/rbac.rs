//! The shipped RBAC (`config/rbac/`) is enough for the operator, and no more than it claims:
//! the operator's ServiceAccount reads and writes nothing of the teams' with its own rights,
//! yet a backup and a restore an administrator asks for complete, because the runs act as the
//! administrator (impersonation). The single-tenant pieces are accepted by the API server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cluster_backup::api::{RestorePhase, RunResult};
use common::{Scene, short_unique_name};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const OPERATOR: &str = "system:serviceaccount:cluster-backup-system:cluster-backup-operator";
/// The test ground's administrator (its client certificate's common name).
const ADMIN: &str = "testenv-admin";

#[tokio::test]
async fn operator_holds_least_privilege_and_runs_as_the_requester() {
    let scene = Scene::bare("rbac").await;
    let env = &scene.env;
    let _ = env.kubectl(&["create", "namespace", "cluster-backup-system"]);
    let (ok, out) = env.kubectl(&["apply", "-k", "config/rbac"]);
    assert!(ok, "kubectl apply -k config/rbac: {out}");

    let everywhere = ["-A"];
    let own = ["-n", "cluster-backup-system"];
    for (verb, resource, scope, expected) in [
        ("list", "secrets", &everywhere[..], "no"),
        ("get", "secrets", &own[..], "yes"),
        (
            "list",
            "clusterroles.rbac.authorization.k8s.io",
            &everywhere,
            "no",
        ),
        ("list", "backups.backup.cnd.dk", &everywhere, "yes"),
        ("patch", "backups.backup.cnd.dk", &everywhere, "no"),
        ("patch", "backups.backup.cnd.dk/status", &everywhere, "yes"),
        ("patch", "restores.backup.cnd.dk/status", &everywhere, "yes"),
        ("create", "events.events.k8s.io", &everywhere, "yes"),
        (
            "create",
            "subjectaccessreviews.authorization.k8s.io",
            &everywhere,
            "yes",
        ),
        ("impersonate", "users", &everywhere, "yes"),
        ("impersonate", "groups", &everywhere, "yes"),
        ("impersonate", "serviceaccounts", &everywhere, "yes"),
        ("create", "configmaps", &everywhere, "no"),
        ("delete", "deployments.apps", &everywhere, "no"),
        ("update", "secrets", &everywhere, "no"),
        (
            "create",
            "customresourcedefinitions.apiextensions.k8s.io",
            &everywhere,
            "no",
        ),
    ] {
        let mut args = vec!["auth", "can-i", verb, "--as", OPERATOR];
        match resource.split_once('/') {
            Some((resource, subresource)) => {
                args.extend([resource, "--subresource", subresource]);
            }
            None => args.push(resource),
        }
        args.extend(scope);
        let (_, out) = env.kubectl(&args);
        assert_eq!(
            out.trim(),
            expected,
            "can the operator {verb} {resource} {scope:?}?"
        );
    }

    // Not discoverable, so not for `kubectl auth can-i`: asked of the authorizer directly.
    for (resource, subresource) in [
        ("uids", ""),
        ("userextras", "authentication.kubernetes.io/credential-id"),
    ] {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(OPERATOR.to_string()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some("authentication.k8s.io".into()),
                    resource: Some(resource.into()),
                    subresource: Some(subresource.into()).filter(|s: &String| !s.is_empty()),
                    verb: Some("impersonate".into()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = Api::<SubjectAccessReview>::all(scene.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .unwrap();
        assert!(
            answer.status.unwrap().allowed,
            "impersonate {resource}/{subresource}"
        );
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

    let as_operator = env.client_as(OPERATOR).await;
    let _operator = scene.start_backup_operator_as(&as_operator);
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
    assert_eq!(run.requester.as_deref(), Some(ADMIN));

    // A restore the administrator asks for writes what the operator itself may not.
    let _restorer = scene.start_restore_operator_as(&as_operator);
    let target = short_unique_name("rbac-to");
    let _target = scene.adopt_namespace(&target);
    let spec = json!({"source": scene.by_path(status.backup_path.as_deref().unwrap()),
        "target": {"namespaceMapping": {source.name.clone(): target.clone()},
            "resourceTypes": ["secrets"]},
        "options": {"createNamespaces": true}});
    let restored = scene.restore("as-operator", spec).await;
    assert_eq!(
        restored.phase,
        Some(RestorePhase::Completed),
        "{restored:#?}"
    );
    assert!(common::objects::namespace_exists(&scene.client, &target).await);
}

/// The single-tenant installation (`config/single-tenant`) and the default one are accepted
/// by the API server as they are (server-side dry run: nothing changes on the ground).
#[tokio::test]
async fn shipped_installations_are_accepted_by_the_api_server() {
    let scene = Scene::bare("rbac-kustomize").await;
    let env = &scene.env;
    let _ = env.kubectl(&["create", "namespace", "cluster-backup-system"]);
    for dir in ["config/default", "config/single-tenant"] {
        let (ok, out) = env.kubectl(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=cluster-backup-operator",
            "-k",
            dir,
        ]);
        assert!(ok, "kubectl apply --dry-run=server -k {dir}: {out}");
    }
    let (ok, rendered) = env.kubectl(&["kustomize", "config/single-tenant"]);
    assert!(ok, "{rendered}");
    assert!(rendered.contains("- --single-tenant"), "{rendered}");
    assert!(rendered.contains("name: cluster-backup-operator-single-tenant"));
    // Nobody but administrators may create Backups or Restores in single-tenant mode.
    assert!(
        !rendered.contains("rbac.authorization.k8s.io/aggregate-to-edit: \"true\""),
        "{rendered}"
    );
    let (ok, rendered) = env.kubectl(&["kustomize", "config/default"]);
    assert!(ok, "{rendered}");
    assert!(
        rendered.contains("kind: MutatingAdmissionPolicy"),
        "{rendered}"
    );
    assert!(!rendered.contains("--single-tenant"));
    assert!(!rendered.contains("single-tenant\n"));
    assert!(rendered.contains("rbac.authorization.k8s.io/aggregate-to-edit: \"true\""));
    assert!(
        !rendered.contains("rbac.authorization.k8s.io/aggregate-to-view: \"true\""),
        "inline keys stay away from view"
    );
}
