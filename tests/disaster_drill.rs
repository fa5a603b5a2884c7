//! The disaster drill users actually run, on a test ground with kube-controller-manager
//! (namespace deletion, garbage collection, Deployment and ReplicaSet controllers, the
//! ServiceAccount controllers): back up a namespace with a Deployment of two replicas (and the
//! ReplicaSet and Pods its controllers made; no scheduler, so they stay Pending), ConfigMaps,
//! Secrets, a ServiceAccount, RBAC and owned objects; delete the namespace and wait until it is
//! gone; restore; compare. Then check that the controllers adopted what was restored instead of
//! making their own: the only ReplicaSet is the one the restore created, owned by the restored
//! Deployment, and the only Pods are the two restored ones, owned by it. Restoring an owner
//! before its dependents breaks exactly this (the Deployment controller makes the ReplicaSet
//! first, the ReplicaSet controller new Pods). Last, ownership works: deleting the restored
//! owner garbage-collects its dependents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use cluster_backup::api::{RestorePhase, RunResult};
use cluster_backup::engine::restore::RESTORE_FIELD_MANAGER;
use common::objects::{get, get_opt};
use common::{Scene, create_all, eventually};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, ListParams, PropagationPolicy};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(120);

async fn populate(client: &Client, ns: &str) -> String {
    create_all(client, [
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"serviceAccountName": "web",
                                              "containers": [{"name": "web", "image": "nginx:1.27",
                                                              "envFrom": [{"configMapRef": {"name": "web-config"}}]}]}}}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "web", "namespace": ns}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "web-config", "namespace": ns},
               "data": {"MODE": "production", "WORKERS": "4"}}),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "web-secret", "namespace": ns}, "type": "Opaque",
               "stringData": {"password": "s3cr3t"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "web-reader", "namespace": ns},
               "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "web-reader", "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "web-reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": ns}]}),
    ])
    .await;
    // Objects owned by the Deployment and by a ConfigMap (not controllers' children: only the
    // ownerReference ties them to their owner).
    let deployment = get::<Deployment>(client, ns, "web").await;
    let config = get::<ConfigMap>(client, ns, "web-config").await;
    create_all(
        client,
        [
            json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "web-owned", "namespace": ns, "ownerReferences": [{
                   "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                   "uid": deployment.uid().unwrap()}]},
               "data": {"owned-by": "deployment"}}),
            json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "web-config-derived", "namespace": ns, "ownerReferences": [{
                   "apiVersion": "v1", "kind": "ConfigMap", "name": "web-config",
                   "uid": config.uid().unwrap()}]},
               "type": "Opaque", "stringData": {"derived": "yes"}}),
        ],
    )
    .await;
    deployment.uid().unwrap()
}

/// The ReplicaSets of the `web` Deployment.
async fn replica_sets(client: &Client, ns: &str) -> Vec<ReplicaSet> {
    Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
}

/// The names of the `web` Deployment's Pods, sorted.
async fn pod_names(client: &Client, ns: &str) -> Vec<String> {
    let mut names: Vec<String> = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

fn owner_uids(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Vec<String> {
    meta.owner_references
        .iter()
        .flatten()
        .map(|r| r.uid.clone())
        .collect()
}

/// What the drill compares: user-visible content, without server-populated fields.
async fn snapshot(client: &Client, ns: &str) -> Value {
    let cm =
        |name: &'static str| async move { json!(get::<ConfigMap>(client, ns, name).await.data) };
    let secret =
        |name: &'static str| async move { json!(get::<Secret>(client, ns, name).await.data) };
    let deployment = get::<Deployment>(client, ns, "web").await;
    let role = get::<Role>(client, ns, "web-reader").await;
    let binding = get::<RoleBinding>(client, ns, "web-reader").await;
    let sa = get::<ServiceAccount>(client, ns, "web").await;
    json!({
        "configmaps": {"web-config": cm("web-config").await, "web-owned": cm("web-owned").await},
        "secrets": {"web-secret": secret("web-secret").await,
                    "web-config-derived": secret("web-config-derived").await},
        "deployment": {"replicas": deployment.spec.as_ref().unwrap().replicas,
                       "template": deployment.spec.as_ref().unwrap().template},
        "role": role.rules,
        "rolebinding": {"roleRef": binding.role_ref, "subjects": binding.subjects},
        "serviceaccount": sa.metadata.name,
    })
}

#[tokio::test]
async fn delete_the_namespace_restore_it_and_compare() {
    let scene = Scene::restores("drill").await;
    let client = scene.client.clone();
    let app_ns = scene.new_namespace("drill").await;
    let app = app_ns.name.clone();

    let old_deployment_uid = populate(&client, &app).await;
    // The Deployment controller makes a ReplicaSet, which makes two Pods (never scheduled).
    let old_rs = eventually("the Deployment's ReplicaSet", TIMEOUT, || async {
        replica_sets(&client, &app).await.into_iter().next()
    })
    .await;
    let old_pods = eventually("the ReplicaSet's two Pods", TIMEOUT, || async {
        let names = pod_names(&client, &app).await;
        (names.len() == 2).then_some(names)
    })
    .await;
    assert_eq!(
        owner_uids(&old_rs.metadata),
        std::slice::from_ref(&old_deployment_uid)
    );
    let before = snapshot(&client, &app).await;

    // Back up the namespace: its Namespace object, the workload with what its controllers made,
    // configuration, identity and RBAC.
    let backup = scene.backup_json(
        "drill",
        &[&app],
        &[
            "namespaces",
            "deployments",
            "replicasets",
            "pods",
            "configmaps",
            "secrets",
            "serviceaccounts",
            "roles",
            "rolebindings",
        ],
    );
    scene.create_backup(&backup).await;
    let done = scene.wait_backup("drill", |s| s.last_run.is_some()).await;
    let status = done.status.unwrap();
    let run = status.last_run.clone().unwrap();
    assert_eq!(run.result, Some(RunResult::Completed), "{run:?}");
    // Only the backed-up namespace's own Namespace object, not every namespace of the cluster.
    assert_eq!(
        status.resource_counts.get("cluster/namespaces"),
        Some(&1),
        "{:?}",
        status.resource_counts
    );

    // Disaster: the namespace is deleted, and really gone.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&app, &DeleteParams::default())
        .await
        .unwrap();
    let deleted_at = Instant::now();
    eventually("the namespace to be gone", TIMEOUT, || async {
        namespaces
            .get_opt(&app)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    println!(
        "namespace {app} deleted in {:.1} s",
        deleted_at.elapsed().as_secs_f64()
    );

    // Restore.
    let status = scene
        .restore("drill", json!({ "source": { "backupName": "drill" } }))
        .await;
    assert_eq!(
        status.phase,
        Some(RestorePhase::Completed),
        "{}",
        serde_json::to_string_pretty(&status).unwrap()
    );
    println!(
        "restore: {:?}; skipped {:?}",
        status.message, status.skipped_resources
    );

    // Compare what users see.
    let after = snapshot(&client, &app).await;
    assert_eq!(before, after);

    // The restored ReplicaSet belongs to the restored Deployment, and the Deployment controller
    // adopts it instead of making a second one (it would if the template hash differed), or
    // the same one before the restore could (it would if the Deployment came first).
    let deployment = get::<Deployment>(&client, &app, "web").await;
    let new_uid = deployment.uid().unwrap();
    assert_ne!(new_uid, old_deployment_uid);
    // Time for the controllers to act on what was restored.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sets = replica_sets(&client, &app).await;
    assert_eq!(
        sets.iter().map(|rs| rs.name_any()).collect::<Vec<_>>(),
        [old_rs.name_any()],
        "the Deployment should keep exactly its restored ReplicaSet"
    );
    let rs = &sets[0];
    assert_eq!(owner_uids(&rs.metadata), std::slice::from_ref(&new_uid));
    // Created by the restore, not a controller's ReplicaSet of the same name.
    let listed_rs = status
        .restored_resources
        .iter()
        .find(|r| r.kind == "ReplicaSet")
        .unwrap_or_else(|| panic!("no ReplicaSet in {:?}", status.restored_resources));
    assert_eq!(listed_rs.name, old_rs.name_any());
    assert_eq!(listed_rs.action.as_deref(), Some("created"));
    assert!(
        !status
            .skipped_resources
            .iter()
            .any(|r| r.kind == "ReplicaSet"),
        "{:?}",
        status.skipped_resources
    );
    // (A controller's copy would carry only kube-controller-manager's fields.)
    let managers: Vec<_> = rs
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|f| f.manager.as_deref())
        .collect();
    assert!(managers.contains(&RESTORE_FIELD_MANAGER), "{managers:?}");
    // Exactly the two restored Pods (the ReplicaSet adopted them; no surplus ones, none new),
    // owned by the restored ReplicaSet.
    assert_eq!(pod_names(&client, &app).await, old_pods);
    let rs_uid = rs.uid().unwrap();
    for pod in Api::<Pod>::namespaced(client.clone(), &app)
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
    {
        assert_eq!(
            owner_uids(&pod.metadata),
            std::slice::from_ref(&rs_uid),
            "{}",
            pod.name_any()
        );
    }
    assert_eq!(
        status.resource_counts.get("created/pods"),
        Some(&2),
        "{:?}",
        status.resource_counts
    );
    // Two Pods, the ReplicaSet, web-owned and web-config-derived: each was restored before its
    // owner and is owned by it again.
    assert_eq!(
        status.resource_counts.get("ownerReferencesRestored"),
        Some(&5),
        "{:?}",
        status.resource_counts
    );
    assert_eq!(
        status.resource_counts.get("ownerReferencesDropped"),
        None,
        "{:?}",
        status.resource_counts
    );
    let owned = get::<ConfigMap>(&client, &app, "web-owned").await;
    assert_eq!(owner_uids(&owned.metadata), [new_uid]);
    let config = get::<ConfigMap>(&client, &app, "web-config").await;
    let derived = get::<Secret>(&client, &app, "web-config-derived").await;
    assert_eq!(owner_uids(&derived.metadata), [config.uid().unwrap()]);

    // Ownership works after the restore: the garbage collector removes the dependents of a
    // deleted owner (it would remove them at once if they pointed at the old uids).
    Api::<Deployment>::namespaced(client.clone(), &app)
        .delete(
            "web",
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), &app)
        .delete("web-config", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the garbage collector to remove the dependents",
        TIMEOUT,
        || async {
            let sets = replica_sets(&client, &app).await;
            let owned = get_opt::<ConfigMap>(&client, &app, "web-owned").await;
            let derived = get_opt::<Secret>(&client, &app, "web-config-derived").await;
            let pods = pod_names(&client, &app).await;
            (sets.is_empty() && pods.is_empty() && owned.is_none() && derived.is_none())
                .then_some(())
        },
    )
    .await;
    // Unowned objects stay.
    assert!(
        get_opt::<Secret>(&client, &app, "web-secret")
            .await
            .is_some()
    );
}
