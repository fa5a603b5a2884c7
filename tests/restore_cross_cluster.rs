//! Restoring into another cluster: a backup taken on control plane A is restored on the
//! independent control plane B (`scripts/testenv.sh up second`), which never had the Backup
//! object, by storage location and path — CRDs and custom resources, cluster-scoped objects,
//! and the real-world kube-prometheus manifests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use cluster_backup::api::RestorePhase;
use common::objects::{
    APP_OBJECTS, APP_TYPES, create_gizmo, create_gizmo_crd, get_object, namespace_exists, shop_app,
};
use common::restored::{assert_restored, count, normalized};
use common::{Scene, short_unique_name};
use kube::Api;
use serde_json::json;

/// A Backup on control plane A, restored on the independent control plane B (which never had
/// the Backup object) by storage location + backup path: CRD, custom resources, a ClusterRole
/// (cluster-scoped types are restored when `resourceTypes` names them).
#[tokio::test]
async fn cross_cluster_restore_by_path() {
    let a = Scene::restores("cross-cluster A").await;
    let b = a.second_cluster("cross-cluster B").await;
    assert_ne!(
        a.env.kubeconfig, b.env.kubeconfig,
        "two different control planes"
    );

    let group = create_gizmo_crd(&a.client).await;
    let shop = a.new_namespace("xshop").await;
    a.create_all(shop_app(&shop.name)).await;
    create_gizmo(&a.client, &group, &shop.name, "w1").await;
    create_gizmo(&a.client, &group, &shop.name, "w2").await;
    // ClusterRoles outlive a test's namespaces: remove the ones earlier runs of this test left
    // on a reused control plane, so the restore's `app: shop` selector finds only this one.
    let cluster_roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(a.client.clone());
    cluster_roles
        .delete_collection(
            &kube::api::DeleteParams::default(),
            &kube::api::ListParams::default().labels("app=shop"),
        )
        .await
        .unwrap();
    let cluster_role = short_unique_name("cr");
    a.create(common::objects::cluster_role(
        &cluster_role,
        json!({ "app": "shop" }),
        "pods",
    ))
    .await;
    let gizmo_type = format!("gizmos.{group}");
    let mut types: Vec<&str> = APP_TYPES.to_vec();
    types.push(&gizmo_type);
    types.push("clusterroles");
    let path = a.back_up("xshop", &[&shop.name], &types).await;

    assert!(!namespace_exists(&b.client, &shop.name).await);
    let status = b
        .restore(
            "from-a",
            json!({
                "source": b.by_path(&path),
                // Only this test's objects among the cluster's ClusterRoles (the CRD and
                // namespaces are exempt from the selector); naming the custom type names its
                // CRD.
                "target": { "labelSelector": { "matchLabels": { "app": "shop" } },
                            "resourceTypes": types },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    let _guard = b.adopt_namespace(&shop.name);
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0);
    assert_eq!(count(&status, "created/customresourcedefinitions"), 1);
    assert_eq!(count(&status, &format!("created/{gizmo_type}")), 2);
    assert_eq!(count(&status, "created/clusterroles"), 1);
    assert_eq!(count(&status, "created/namespaces"), 1);
    assert_restored(&a.client, &shop.name, &b.client, &shop.name, &APP_OBJECTS).await;
    let gv = format!("{group}/v1");
    for name in ["w1", "w2"] {
        let gizmo = (gv.as_str(), "Gizmo", "gizmos", name);
        assert_restored(&a.client, &shop.name, &b.client, &shop.name, &[gizmo]).await;
    }
    let cr = (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "clusterroles",
        cluster_role.as_str(),
    );
    let original = get_object(&a.client, cr, None).await.unwrap();
    let restored = get_object(&b.client, cr, None)
        .await
        .expect("ClusterRole restored on B");
    assert_eq!(
        normalized(restored, None, None),
        normalized(original, None, None)
    );
    let crd = (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        gizmo_type.as_str(),
    );
    let restored_crd = get_object(&b.client, crd, None)
        .await
        .expect("CRD restored on B");
    assert_eq!(restored_crd["spec"]["group"], json!(group));
}

/// The kube-prometheus manifests of `tests/fixtures/` (ten CRDs of up to 800 KB, their custom
/// resources, RBAC, workloads) applied on control plane A, backed up, restored on B: every
/// restored object equals its original apart from the documented stripped fields.
///
/// The APIService is left out: its backend never runs here, and an unavailable aggregated API
/// would disturb discovery for every other test on the shared control planes.
#[tokio::test]
async fn kube_prometheus_round_trip_to_another_cluster() {
    let a = Scene::restores("kube-prometheus A").await;
    let b = a.second_cluster("kube-prometheus B").await;
    let corpus = common::repo_root().join("tests/fixtures/kube-prometheus/manifests");
    a.env
        .kubectl_ok(&server_side_apply(&yaml_files(&corpus.join("setup"))));
    a.env.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "--all",
    ]);
    // Discovery needs a moment after Established.
    let mut applied = false;
    for _ in 0..20 {
        if a.env.kubectl(&server_side_apply(&yaml_files(&corpus))).0 {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(applied, "kube-prometheus manifests apply on A");

    let types = [
        "deployments",
        "daemonsets",
        "services",
        "serviceaccounts",
        "configmaps",
        "secrets",
        "networkpolicies",
        "poddisruptionbudgets",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
        "prometheuses.monitoring.coreos.com",
        "alertmanagers.monitoring.coreos.com",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ];
    let path = a.back_up("kp", &["monitoring"], &types).await;
    let selector = json!({ "matchLabels": { "app.kubernetes.io/part-of": "kube-prometheus" } });
    // Everything, also the cluster-scoped types (named) and what the guard calls sensitive:
    // the `system:aggregated-metrics-reader` ClusterRole, aggregated into the built-in roles,
    // and the binding of `system:auth-delegator`.
    let status = b
        .restore(
            "kube-prometheus",
            json!({
                "source": b.by_path(&path),
                "target": { "labelSelector": selector, "resourceTypes": types },
                "options": { "createNamespaces": true, "includeSensitiveResources": true },
            }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0);

    // Every object of the backup that the selector takes, compared between A and B.
    let manifest = a.manifest(&path).await;
    let mut compared = 0;
    for entry in &manifest.objects {
        let plural = entry.resource.split('.').next().unwrap();
        let object = (
            &*entry.api_version,
            &*entry.kind,
            plural,
            entry.name.as_str(),
        );
        let ns = entry.namespace.as_deref();
        let original = get_object(&a.client, object, ns).await.unwrap();
        let labelled =
            original["metadata"]["labels"]["app.kubernetes.io/part-of"] == json!("kube-prometheus");
        if !labelled && &*entry.kind != "CustomResourceDefinition" {
            continue;
        }
        let restored = get_object(&b.client, object, ns)
            .await
            .unwrap_or_else(|| panic!("{object:?} in {ns:?} restored on B"));
        assert_eq!(
            normalized(restored, None, None),
            normalized(original, None, None),
            "{object:?} in {ns:?}"
        );
        compared += 1;
    }
    eprintln!("kube-prometheus: {compared} objects equal on A and B");
    assert!(compared > 80, "only {compared} objects compared");
}

/// The YAML files of `dir`, sorted, without the APIService (see above).
fn yaml_files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.to_string_lossy().ends_with("apiService.yaml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `kubectl apply --server-side --force-conflicts -f <each file>`.
fn server_side_apply(files: &[String]) -> Vec<&str> {
    let mut args = vec!["apply", "--server-side", "--force-conflicts"];
    for file in files {
        args.extend(["-f", file.as_str()]);
    }
    args
}
