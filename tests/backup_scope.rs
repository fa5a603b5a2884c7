//! What a Backup stores: the namespaces, types and labels its `source` names, and nothing
//! else — the design document's examples (from `config/samples/`) run for real, plus custom
//! resources, which bring their CRD.
//!
//! `"*"` backups also see other tests' namespaces, so they assert exact keys for this test's
//! namespaces only, plus the invariants `Scene::verify_run` checks on every stored object.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use cluster_backup::api::{Backup, BackupPhase, RunResult};
use common::objects::{
    WIDGET_CRD, cluster_role, configmap, delete_quietly, deployment, ingress, install_widget_crd,
    pvc, secret, service, service_account_token,
};
use common::scene::{assert_last_run, phase};
use common::stored::{StoredRun, cluster_key, keys, ns_key};
use common::{Scene, unique_name};
use serde_json::json;

const COMPREHENSIVE: &str = "backup_v1_comprehensive_examples_v2.yaml";

/// Runs example `name` of `file` (a `"*"` Backup) once with namespace `excluded` added to
/// its exclusions; the Backup and what it stored.
async fn run_excluding(
    scene: &Scene,
    file: &str,
    name: &str,
    excluded: &str,
) -> (Backup, StoredRun) {
    let mut doc = scene.backup_sample(file, name, &[]);
    doc["spec"]["source"]["excludeNamespaces"]
        .as_array_mut()
        .expect("the example excludes namespaces")
        .push(json!(excluded));
    let backup = scene.run_scheduled(&doc).await;
    let run = scene.verify_run(&backup).await;
    (backup, run)
}

/// `single-namespace-backup`: the legacy `namespace` field and four resource types. Objects of
/// other types in that namespace, and other namespaces, are not stored.
#[tokio::test]
async fn single_namespace_example_stores_exactly_the_listed_types() {
    let scene = Scene::backups("bk-single").await;
    let production = scene.new_namespace("p").await;
    let other = scene.new_namespace("o").await;
    let ns = production.name.as_str();
    scene
        .create_all([
            deployment(ns, "web", json!({ "app": "web" })),
            service(ns, "web", json!({})),
            configmap(ns, "web-config", json!({})),
            secret(ns, "web-secret", json!({})),
            pvc(ns, "data"), // not a listed type
            configmap(&other.name, "not-mine", json!({})),
        ])
        .await;

    let doc = scene.backup_sample(
        COMPREHENSIVE,
        "single-namespace-backup",
        &[("production", ns)],
    );
    let backup = scene.run_scheduled(&doc).await;
    assert_last_run(&backup, RunResult::Completed);

    let run = scene.verify_run(&backup).await;
    assert_eq!(
        run.keys(),
        keys([
            ns_key(ns, "configmaps", "web-config"),
            ns_key(ns, "deployments", "web"),
            ns_key(ns, "secrets", "web-secret"),
            ns_key(ns, "services", "web"),
        ])
    );
    assert_eq!(run.manifest.namespaces, vec![ns.to_string()]);
    let secret = run.object(&ns_key(ns, "secrets", "web-secret"));
    assert_eq!(
        secret["data"]["password"], "c2VjcmV0MTIz",
        "secret data is stored"
    );
    let deployment = run.object(&ns_key(ns, "deployments", "web"));
    assert_eq!(deployment["apiVersion"], "apps/v1");
    assert_eq!(deployment["kind"], "Deployment");
}

/// `production-backup`: three namespaces, a label selector evaluated by the API server. Only
/// objects carrying BOTH labels are stored.
#[tokio::test]
async fn production_example_stores_only_labelled_objects_of_its_three_namespaces() {
    let scene = Scene::backups("bk-prod").await;
    let production = scene.new_namespace("p").await;
    let data = scene.new_namespace("pd").await;
    let monitoring = scene.new_namespace("pm").await;
    let both = json!({ "environment": "production", "backup": "enabled" });
    let only_env = json!({ "environment": "production" });
    let mut expected = BTreeSet::new();
    for ns in [&production.name, &data.name, &monitoring.name] {
        scene
            .create_all([
                deployment(ns, "api", both.clone()),
                service(ns, "api", both.clone()),
                configmap(ns, "api-config", both.clone()),
                secret(ns, "api-secret", both.clone()),
                configmap(ns, "unlabelled", json!({})),
                secret(ns, "half-labelled", only_env.clone()),
                deployment(
                    ns,
                    "staging",
                    json!({ "environment": "staging", "backup": "enabled" }),
                ),
            ])
            .await;
        expected.extend([
            ns_key(ns, "deployments", "api"),
            ns_key(ns, "services", "api"),
            ns_key(ns, "configmaps", "api-config"),
            ns_key(ns, "secrets", "api-secret"),
        ]);
    }

    let doc = scene.backup_sample(
        COMPREHENSIVE,
        "production-backup",
        &[
            ("production", &production.name),
            ("prod-data", &data.name),
            ("prod-monitoring", &monitoring.name),
        ],
    );
    let backup = scene.run_scheduled(&doc).await;
    assert_last_run(&backup, RunResult::Completed);
    let run = scene.verify_run(&backup).await;
    assert_eq!(run.keys(), expected);
    let mut namespaces = vec![
        production.name.clone(),
        data.name.clone(),
        monitoring.name.clone(),
    ];
    namespaces.sort();
    assert_eq!(run.manifest.namespaces, namespaces);
    for object in run.objects.values() {
        assert_eq!(object["metadata"]["labels"]["backup"], "enabled");
        assert_eq!(object["metadata"]["labels"]["environment"], "production");
    }
}

/// `config-backup`: `"*"` with ConfigMaps and Secrets only, minus excluded namespaces.
/// Service-account token Secrets are skipped by TYPE; a user Secret named `api-token-x` is
/// stored (the design document's name rule would have dropped it).
#[tokio::test]
async fn config_example_stores_configmaps_and_secrets_of_every_namespace_but_excluded() {
    let scene = Scene::backups("bk-config").await;
    let apps = scene.new_namespace("a").await;
    let excluded = scene.new_namespace("x").await;
    let ns = apps.name.as_str();
    scene
        .create_all([
            configmap(ns, "app-config", json!({})),
            secret(ns, "api-token-x", json!({})),
            secret(ns, "plain-secret", json!({})),
            service_account_token(ns, "builder-token-abcde"),
            deployment(ns, "web", json!({})), // not a listed type
            configmap(&excluded.name, "hidden", json!({})),
            secret(&excluded.name, "hidden", json!({})),
        ])
        .await;

    let (_, run) = run_excluding(&scene, COMPREHENSIVE, "config-backup", &excluded.name).await;

    assert_eq!(
        run.keys_in(ns),
        keys([
            ns_key(ns, "configmaps", "app-config"),
            ns_key(ns, "secrets", "api-token-x"),
            ns_key(ns, "secrets", "plain-secret"),
        ])
    );
    let covered = run.second_segments("namespaces");
    for gone in [
        excluded.name.as_str(),
        "kube-system",
        "kube-public",
        "monitoring",
    ] {
        assert!(!covered.contains(gone), "{gone} was backed up");
        assert!(
            !run.manifest.namespaces.iter().any(|n| n == gone),
            "{gone} in manifest"
        );
    }
    assert!(run.manifest.namespaces.iter().any(|n| n == ns));
    assert!(run.cluster_keys().is_empty(), "{:?}", run.cluster_keys());
    for (key, object) in &run.objects {
        let type_dir = key.split('/').nth(2).unwrap();
        assert!(
            type_dir == "configmaps" || type_dir == "secrets",
            "{key} is neither a ConfigMap nor a Secret"
        );
        assert_ne!(
            object["type"], "kubernetes.io/service-account-token",
            "{key} is a service-account token"
        );
    }
}

/// `full-cluster-backup` and `full-cluster-test`: `"*"` with the default types plus the
/// default cluster types. RBAC names with ':' round-trip.
async fn full_cluster_example(sample_file: &str, sample_name: &str) {
    let scene = Scene::backups("bk-full").await;
    let apps = scene.new_namespace("a").await;
    let excluded = scene.new_namespace("x").await;
    let ns = apps.name.as_str();
    scene
        .create_all([
            deployment(ns, "web", json!({})),
            service(ns, "web", json!({})),
            configmap(ns, "web-config", json!({})),
            secret(ns, "web-secret", json!({})),
            pvc(ns, "data"),
            ingress(ns, "web"),
            configmap(&excluded.name, "hidden", json!({})),
        ])
        .await;
    let role = format!("cluster-backup-test:{}", unique_name("role"));
    let storage_class = unique_name("cbt-sc");
    let volume = unique_name("cbt-pv");
    scene
        .create_all([
            cluster_role(&role, json!({}), "configmaps"),
            json!({
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": { "name": storage_class },
                "provisioner": "example.com/none", "reclaimPolicy": "Retain"
            }),
            json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": { "name": volume },
                "spec": {
                    "capacity": { "storage": "1Gi" },
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": storage_class,
                    "hostPath": { "path": "/tmp/cluster-backup-test" }
                }
            }),
        ])
        .await;

    let (backup, run) = run_excluding(&scene, sample_file, sample_name, &excluded.name).await;

    assert_eq!(
        run.keys_in(ns),
        keys([
            ns_key(ns, "configmaps", "web-config"),
            ns_key(ns, "deployments", "web"),
            ns_key(ns, "ingresses", "web"),
            ns_key(ns, "persistentvolumeclaims", "data"),
            ns_key(ns, "secrets", "web-secret"),
            ns_key(ns, "services", "web"),
        ])
    );
    let covered = run.second_segments("namespaces");
    for gone in [excluded.name.as_str(), "kube-system", "kube-public"] {
        assert!(!covered.contains(gone), "{gone} was backed up");
    }

    assert_eq!(
        run.second_segments("cluster"),
        keys([
            "clusterrolebindings",
            "clusterroles",
            "persistentvolumes",
            "storageclasses"
        ])
    );
    for (type_dir, name, kind) in [
        ("clusterroles", "system:aggregate-to-admin", "ClusterRole"),
        ("clusterroles", "cluster-admin", "ClusterRole"),
        ("clusterroles", role.as_str(), "ClusterRole"),
        ("clusterrolebindings", "cluster-admin", "ClusterRoleBinding"),
        (
            "clusterrolebindings",
            "system:basic-user",
            "ClusterRoleBinding",
        ),
        ("storageclasses", storage_class.as_str(), "StorageClass"),
        ("persistentvolumes", volume.as_str(), "PersistentVolume"),
    ] {
        // ':' is kept in keys as is; the stored name is the object's real name.
        let object = run.object(&cluster_key(type_dir, name));
        assert_eq!(object["metadata"]["name"], name);
        assert_eq!(object["kind"], kind);
        assert!(object["metadata"].get("namespace").is_none());
    }
    let status = backup.status.as_ref().unwrap();
    assert_eq!(status.resource_counts[&format!("{ns}/deployments")], 1);
    assert!(
        status.resource_counts["cluster/clusterroles"] > 50,
        "{status:#?}"
    );

    for object in [
        (
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            volume.as_str(),
        ),
        (
            "storage.k8s.io/v1",
            "StorageClass",
            "storageclasses",
            &storage_class,
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "clusterroles",
            &role,
        ),
    ] {
        delete_quietly(&scene.client, object, None).await;
    }
}

#[tokio::test]
async fn full_cluster_backup_example_stores_namespaces_and_cluster_resources() {
    full_cluster_example(COMPREHENSIVE, "full-cluster-backup").await;
}

#[tokio::test]
async fn full_cluster_test_example_stores_namespaces_and_cluster_resources() {
    full_cluster_example("backup_v1_full_cluster_test.yaml", "full-cluster-test").await;
}

/// Custom resources are resolved through discovery under every spelling (plural, singular,
/// kind, plural.group), stored under `<plural>.<group>`, and their CRD goes with them even
/// without `includeClusterResources`.
#[tokio::test]
async fn custom_resources_are_stored_with_their_crd() {
    let scene = Scene::backups("bk-cr").await;
    install_widget_crd(&scene.client).await;
    let source = scene.new_namespace("w").await;
    let ns = source.name.as_str();
    for (name, size) in [("w-one", 1), ("w-two", 2)] {
        scene
            .create(json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": { "name": name, "namespace": ns },
                "spec": { "size": size }
            }))
            .await;
    }
    scene.create(configmap(ns, "not-a-widget", json!({}))).await;

    let spellings = [
        ("cr-plural", "widgets"),
        ("cr-singular", "widget"),
        ("cr-kind", "Widget"),
        ("cr-qualified", "widgets.example.com"),
    ];
    for (name, spelling) in spellings {
        let mut doc = scene.one_shot(name, ns);
        doc["spec"]["source"]["resourceTypes"] = json!([spelling]);
        doc["spec"]["source"]["includeClusterResources"] = json!(false);
        scene.create_backup(&doc).await;
    }
    let crd_key = cluster_key("customresourcedefinitions", WIDGET_CRD);
    for (name, spelling) in spellings {
        let backup = scene.wait_finished(name).await;
        assert_eq!(
            phase(&backup),
            BackupPhase::Completed,
            "resourceTypes [{spelling:?}]: {:#?}",
            backup.status
        );
        let run = scene.verify_run(&backup).await;
        assert_eq!(
            run.keys(),
            keys([
                crd_key.clone(),
                ns_key(ns, "widgets.example.com", "w-one"),
                ns_key(ns, "widgets.example.com", "w-two"),
            ]),
            "resourceTypes [{spelling:?}]"
        );
        let widget = run.object(&ns_key(ns, "widgets.example.com", "w-two"));
        assert_eq!(widget["apiVersion"], "example.com/v1");
        assert_eq!(widget["kind"], "Widget");
        assert_eq!(widget["spec"]["size"], 2);
        let crd = run.object(&crd_key);
        assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(crd["kind"], "CustomResourceDefinition");
        assert_eq!(crd["metadata"]["name"], WIDGET_CRD);
        assert_eq!(crd["spec"]["names"]["kind"], "Widget");
    }
}
