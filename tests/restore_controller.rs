//! The Restore controller end to end, against the REAL kube-apiserver(s) and S3 server of
//! `scripts/testenv.sh`: backups are taken by the in-process Backup controller, then restored
//! by the in-process Restore controller, and the restored objects are compared semantically
//! with the originals (ignoring only the fields `restore::clean` documents as stripped).
//!
//! The cross-cluster test also needs the second test ground (`scripts/testenv.sh up second`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use cluster_backup::api::{Backup, Restore, RestorePhase, RestoreStatus, RunResult};
use cluster_backup::controller::crds::install_crds;
use cluster_backup::core::manifest::Manifest;
use common::{
    OperatorHandle, TestEnv, TestNamespace, create_json, short_unique_name, start_operator,
    start_restore_operator, wait_for_backup, wait_for_restore,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const RUN_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// Scene: one control plane, a namespace for Backups/Restores, operators, a bucket
// ---------------------------------------------------------------------------------------------

struct Scene {
    env: TestEnv,
    client: Client,
    ns: TestNamespace,
    backups: Api<Backup>,
    restores: Api<Restore>,
    bucket: String,
    _operators: (OperatorHandle, OperatorHandle),
}

impl Scene {
    async fn new(prefix: &str, env: TestEnv, bucket: &str) -> Scene {
        let client = env.client().await;
        install_crds(&client, Duration::from_secs(60))
            .await
            .expect("CRDs install and become Established");
        let ns = TestNamespace::named(&client, &short_unique_name("r")).await;
        eprintln!(
            "{prefix}: [{}] Backups/Restores in namespace {}, bucket {bucket}",
            env.name, ns.name
        );
        let operators = (
            start_operator(&client, &ns.name),
            start_restore_operator(&client, &ns.name),
        );
        Scene {
            backups: Api::namespaced(client.clone(), &ns.name),
            restores: Api::namespaced(client.clone(), &ns.name),
            env,
            client,
            ns,
            bucket: bucket.to_string(),
            _operators: operators,
        }
    }

    async fn default(prefix: &str) -> Scene {
        Scene::new(prefix, TestEnv::load(), &short_unique_name("b")).await
    }

    fn location(&self) -> Value {
        serde_json::to_value(self.env.storage_location(&self.bucket)).unwrap()
    }

    async fn namespace(&self, prefix: &str) -> TestNamespace {
        TestNamespace::named(&self.client, &short_unique_name(prefix)).await
    }

    /// A one-shot Backup of `types` in `namespaces`; returns its `status.backupPath`.
    async fn backup(&self, name: &str, namespaces: &[&str], types: &[&str]) -> String {
        let backup: Backup = serde_json::from_value(json!({
            "apiVersion": "backup.cnd.dk/v1",
            "kind": "Backup",
            "metadata": { "name": name, "namespace": self.ns.name },
            "spec": {
                "source": { "namespaces": namespaces, "resourceTypes": types },
                "storageLocation": self.location(),
            }
        }))
        .unwrap();
        self.backups
            .create(&PostParams::default(), &backup)
            .await
            .unwrap();
        let done = wait_for_backup(&self.backups, name, RUN_TIMEOUT, |s| {
            s.last_run.as_ref().and_then(|r| r.result).is_some()
        })
        .await;
        let status = done.status.unwrap();
        assert_eq!(
            status.last_run.as_ref().and_then(|r| r.result),
            Some(RunResult::Completed),
            "backup {name} completes: {:?}",
            status.message
        );
        status.backup_path.expect("backupPath")
    }

    /// Creates a Restore with `spec` and waits until it finishes.
    async fn restore(&self, name: &str, spec: Value) -> RestoreStatus {
        let restore: Restore = serde_json::from_value(json!({
            "apiVersion": "backup.cnd.dk/v1",
            "kind": "Restore",
            "metadata": { "name": name, "namespace": self.ns.name },
            "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("Restore {name} spec: {e}"));
        self.restores
            .create(&PostParams::default(), &restore)
            .await
            .unwrap_or_else(|e| panic!("create Restore {name}: {e}"));
        let done = wait_for_restore(&self.restores, name, RUN_TIMEOUT).await;
        let status = done.status.unwrap();
        eprintln!(
            "restore {name}: {:?} {:?} counts {:?} failed {:?}",
            status.phase, status.message, status.resource_counts, status.failed_resources
        );
        status
    }

    /// [`Scene::restore`], also returning every phase the Restore's status went through (from a
    /// watch started before the Restore exists, so no write is missed).
    async fn restore_with_phases(
        &self,
        name: &str,
        spec: Value,
    ) -> (RestoreStatus, Vec<RestorePhase>) {
        use futures::StreamExt;
        use kube::api::{ListParams, WatchEvent, WatchParams};
        let list = self.restores.list(&ListParams::default()).await.unwrap();
        let version = list.metadata.resource_version.unwrap_or_default();
        let stream = self
            .restores
            .watch(
                &WatchParams::default().fields(&format!("metadata.name={name}")),
                &version,
            )
            .await
            .unwrap();
        let collector = tokio::spawn(async move {
            let mut phases: Vec<RestorePhase> = Vec::new();
            let mut stream = std::pin::pin!(stream);
            while let Some(Ok(event)) = stream.next().await {
                if let WatchEvent::Added(r) | WatchEvent::Modified(r) = event
                    && let Some(phase) = r.status.and_then(|s| s.phase)
                {
                    if phases.last() != Some(&phase) {
                        phases.push(phase);
                    }
                    if cluster_backup::controller::restore::is_finished(Some(phase)) {
                        break;
                    }
                }
            }
            phases
        });
        let status = self.restore(name, spec).await;
        let phases = tokio::time::timeout(Duration::from_secs(30), collector)
            .await
            .expect("watch saw the final phase")
            .unwrap();
        (status, phases)
    }

    /// `spec.source` by storage location and path.
    fn by_path(&self, path: &str) -> Value {
        json!({ "storageLocation": self.location(), "backupPath": path })
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures and comparison
// ---------------------------------------------------------------------------------------------

const APP_TYPES: [&str; 7] = [
    "deployments",
    "services",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "roles",
    "rolebindings",
];

/// (apiVersion, kind, plural, name) of every object [`populate`] creates.
const APP_OBJECTS: [(&str, &str, &str, &str); 7] = [
    ("apps/v1", "Deployment", "deployments", "app"),
    ("v1", "Service", "services", "app"),
    ("v1", "ConfigMap", "configmaps", "app-config"),
    ("v1", "Secret", "secrets", "app-secret"),
    ("v1", "ServiceAccount", "serviceaccounts", "app"),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", "reader"),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rolebindings",
        "reader",
    ),
];

/// A small application in `ns`.
async fn populate(client: &Client, ns: &str) {
    let labels = json!({ "app": "shop" });
    create_json(
        client,
        json!({ "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": { "name": "app", "namespace": ns, "labels": labels } }),
    )
    .await;
    create_json(
        client,
        json!({ "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "app-config", "namespace": ns, "labels": labels },
                "data": { "greeting": "hello", "size": "3" } }),
    )
    .await;
    create_json(
        client,
        json!({ "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": { "name": "app-secret", "namespace": ns, "labels": labels },
                "stringData": { "password": "s3cr3t" } }),
    )
    .await;
    create_json(
        client,
        json!({ "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": "app", "namespace": ns, "labels": labels },
                "spec": { "selector": { "app": "shop" },
                          "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] } }),
    )
    .await;
    create_json(
        client,
        json!({ "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "app", "namespace": ns, "labels": labels },
                "spec": {
                    "replicas": 2,
                    "selector": { "matchLabels": { "app": "shop" } },
                    "template": {
                        "metadata": { "labels": { "app": "shop" } },
                        "spec": {
                            "serviceAccountName": "app",
                            "containers": [{ "name": "web", "image": "nginx:1.27",
                                             "envFrom": [{ "configMapRef": { "name": "app-config" } }] }]
                        }
                    }
                } }),
    )
    .await;
    create_json(
        client,
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": { "name": "reader", "namespace": ns, "labels": labels },
                "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"] }] }),
    )
    .await;
    create_json(
        client,
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": { "name": "reader", "namespace": ns, "labels": labels },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader" },
                "subjects": [{ "kind": "ServiceAccount", "name": "app", "namespace": ns }] }),
    )
    .await;
}

/// A namespaced test CRD `gizmos.<group>`; returns its group.
async fn create_gizmo_crd(client: &Client) -> String {
    let group = format!("{}.example.com", short_unique_name("w"));
    create_json(
        client,
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": { "name": format!("gizmos.{group}") },
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": { "plural": "gizmos", "singular": "gizmo", "kind": "Gizmo" },
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": { "openAPIV3Schema": {
                        "type": "object",
                        "properties": { "spec": { "type": "object",
                            "x-kubernetes-preserve-unknown-fields": true } }
                    } }
                }]
            }
        }),
    )
    .await;
    let crds: Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = Api::all(client.clone());
    tokio::time::timeout(
        Duration::from_secs(60),
        kube::runtime::wait::await_condition(
            crds,
            &format!("gizmos.{group}"),
            kube::runtime::wait::conditions::is_crd_established(),
        ),
    )
    .await
    .expect("CRD established in time")
    .unwrap();
    // Discovery needs a moment after Established.
    for _ in 0..40 {
        let gvk = GroupVersionKind::gvk(&group, "v1", "Gizmo");
        if kube::discovery::pinned_kind(client, &gvk).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    group
}

async fn create_gizmo(client: &Client, group: &str, ns: &str, name: &str) {
    create_json(
        client,
        json!({ "apiVersion": format!("{group}/v1"), "kind": "Gizmo",
                "metadata": { "name": name, "namespace": ns, "labels": { "app": "shop" } },
                "spec": { "size": 3, "color": "blue", "parts": ["a", "b"] } }),
    )
    .await;
}

fn api_resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        plural: plural.to_string(),
    }
}

async fn get_object(
    client: &Client,
    (api_version, kind, plural, name): (&str, &str, &str, &str),
    ns: Option<&str>,
) -> Option<Value> {
    let ar = api_resource(api_version, kind, plural);
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("get {kind} {name}: {e}"))
        .map(|o| serde_json::to_value(o).unwrap())
}

async fn delete_object(client: &Client, object: (&str, &str, &str, &str), ns: &str) {
    let (api_version, kind, plural, name) = object;
    let ar = api_resource(api_version, kind, plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    api.delete(name, &Default::default()).await.unwrap();
    // No garbage collector here, and these kinds have no finalizers: gone at once.
    for _ in 0..40 {
        if api.get_opt(name).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{kind} {ns}/{name} was not deleted");
}

/// An object without the fields the restore documents as stripped or server-assigned, with
/// its namespace (and namespace references) read as `ns`.
fn normalized(mut obj: Value, from_ns: Option<&str>, to_ns: Option<&str>) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
            "ownerReferences",
            "namespace",
        ] {
            meta.remove(field);
        }
    }
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
    }
    // Written by the Deployment controller as it rolls out: present on the original or on the
    // restored copy depending on how far the controller got when each was read.
    let emptied = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        .is_some_and(|annotations| {
            annotations.remove("deployment.kubernetes.io/revision");
            annotations.is_empty()
        });
    if emptied && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("annotations");
    }
    if obj["kind"] == "Service"
        && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    if let (Some(from), Some(to)) = (from_ns, to_ns)
        && let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut)
    {
        for s in subjects {
            if s["namespace"] == from {
                s["namespace"] = json!(to);
            }
        }
    }
    obj
}

/// Every object of [`APP_OBJECTS`] in `to` equals its original in `from` (semantically).
async fn assert_restored(
    source: &Client,
    from: &str,
    target: &Client,
    to: &str,
    objects: &[(&str, &str, &str, &str)],
) {
    for object in objects {
        let original = get_object(source, *object, Some(from))
            .await
            .unwrap_or_else(|| panic!("original {object:?} in {from}"));
        let restored = get_object(target, *object, Some(to))
            .await
            .unwrap_or_else(|| panic!("{object:?} was not restored into {to}"));
        assert_eq!(
            normalized(restored, None, None),
            normalized(original, Some(from), Some(to)),
            "{object:?} restored into {to} equals the original in {from}"
        );
    }
}

/// Waits until Restore `name` has Events with every reason of `reasons`; returns all reasons.
async fn restore_event_reasons(scene: &Scene, name: &str, reasons: &[&str]) -> Vec<String> {
    let api: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(scene.client.clone(), &scene.ns.name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<String> = api
            .list(&Default::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("Restore")
            })
            .map(|e| e.reason.unwrap_or_default())
            .collect();
        if reasons.iter().all(|r| found.iter().any(|f| f == r)) {
            return found;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("Restore {name}: expected Events {reasons:?}, found {found:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn count(status: &RestoreStatus, key: &str) -> i64 {
    status.resource_counts.get(key).copied().unwrap_or(0)
}

/// `created`, not counting the namespace's `default` ServiceAccount: kube-controller-manager
/// makes one in every new namespace, so a restore into a namespace it just created either
/// creates the backed-up copy first or finds the controller's (skipped) — a race either way.
fn created_apart_from_default_sa(status: &RestoreStatus) -> i64 {
    let default_sa_created = status
        .restored_resources
        .iter()
        .any(|r| r.kind == "ServiceAccount" && r.name == "default");
    count(status, "created") - i64::from(default_sa_created)
}

async fn namespace_exists(client: &Client, name: &str) -> bool {
    let api: Api<Namespace> = Api::all(client.clone());
    api.get_opt(name).await.unwrap().is_some()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Back up a namespace (workloads, config, RBAC, a custom resource), restore it under a new
/// name next to the original, then delete objects from the original and restore them in place.
#[tokio::test]
async fn same_cluster_restore_with_mapping_and_in_place() {
    let scene = Scene::default("same-cluster").await;
    let client = &scene.client;
    let group = create_gizmo_crd(client).await;
    let shop = scene.namespace("shop").await;
    populate(client, &shop.name).await;
    create_gizmo(client, &group, &shop.name, "w1").await;
    let gizmo_type = format!("gizmos.{group}");
    let mut types: Vec<&str> = APP_TYPES.to_vec();
    types.push(&gizmo_type);
    let path = scene.backup("shop", &[&shop.name], &types).await;

    // (b) namespace mapping into a new namespace, created by the restore.
    let copy = short_unique_name("copy");
    let (status, phases) = scene
        .restore_with_phases(
            "to-copy",
            json!({
                "source": scene.by_path(&path),
                "target": { "namespaceMapping": { shop.name.clone(): copy } },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    assert_eq!(
        phases,
        [
            RestorePhase::Validating,
            RestorePhase::Restoring,
            RestorePhase::Completed
        ]
    );
    let _copy_guard = TestNamespace::adopt(client, &copy);
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0);
    // 7 app objects + the gizmo, plus the namespace itself; the CRD exists (skipped).
    assert_eq!(
        created_apart_from_default_sa(&status),
        9,
        "{:?}",
        status.resource_counts
    );
    assert_eq!(count(&status, "created/namespaces"), 1);
    assert_eq!(count(&status, "skipped/customresourcedefinitions"), 1);
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    let info = status.backup_info.as_ref().expect("backupInfo");
    assert_eq!(info.backup_path, path);
    assert_eq!(info.namespaces, vec![shop.name.clone()]);
    assert_restored(client, &shop.name, client, &copy, &APP_OBJECTS).await;
    let gizmo = ("", "Gizmo", "gizmos", "w1");
    let gv = format!("{group}/v1");
    let gizmo = (gv.as_str(), gizmo.1, gizmo.2, gizmo.3);
    assert_restored(client, &shop.name, client, &copy, &[gizmo]).await;
    let binding = get_object(client, APP_OBJECTS[6], Some(&copy))
        .await
        .unwrap();
    assert_eq!(binding["subjects"][0]["namespace"], json!(copy));

    // (a) delete some objects in the original namespace and restore in place: the deleted
    // ones come back, the others are skipped (conflictResolution skip is the default).
    let saved: Vec<Value> = {
        let mut v = Vec::new();
        for o in [APP_OBJECTS[2], APP_OBJECTS[3], APP_OBJECTS[0]] {
            v.push(get_object(client, o, Some(&shop.name)).await.unwrap());
        }
        v
    };
    for o in [APP_OBJECTS[2], APP_OBJECTS[3], APP_OBJECTS[0]] {
        delete_object(client, o, &shop.name).await;
    }
    let status = scene
        .restore("in-place", json!({ "source": scene.by_path(&path) }))
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created"), 3, "{:?}", status.resource_counts);
    assert_eq!(count(&status, "failed"), 0);
    assert!(
        status
            .skipped_resources
            .iter()
            .any(|s| s.kind == "Service" && s.reason.as_deref() == Some("already exists")),
        "{:?}",
        status.skipped_resources
    );
    for (o, before) in [APP_OBJECTS[2], APP_OBJECTS[3], APP_OBJECTS[0]]
        .into_iter()
        .zip(saved)
    {
        let after = get_object(client, o, Some(&shop.name)).await.unwrap();
        assert_eq!(
            normalized(after, None, None),
            normalized(before, None, None)
        );
    }

    restore_event_reasons(&scene, "in-place", &["RestoreStarted", "RestoreCompleted"]).await;

    // The Restore is one-shot: its status does not change afterwards.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = scene.restores.get("in-place").await.unwrap();
    assert_eq!(
        again.status.unwrap().completion_time,
        status.completion_time
    );
}

/// A Backup on control plane A, restored on the independent control plane B (which never had
/// the Backup object) by storage location + backup path: CRD, custom resources, a ClusterRole.
#[tokio::test]
async fn cross_cluster_restore_by_path() {
    let a = Scene::default("cross-cluster A").await;
    let second = TestEnv::load_named("second");
    let b = Scene::new("cross-cluster B", second, &a.bucket).await;
    assert_ne!(
        a.env.kubeconfig, b.env.kubeconfig,
        "two different control planes"
    );

    let group = create_gizmo_crd(&a.client).await;
    let shop = a.namespace("xshop").await;
    populate(&a.client, &shop.name).await;
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
    create_json(
        &a.client,
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": { "name": cluster_role, "labels": { "app": "shop" } },
                "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get"] }] }),
    )
    .await;
    let gizmo_type = format!("gizmos.{group}");
    let mut types: Vec<&str> = APP_TYPES.to_vec();
    types.push(&gizmo_type);
    types.push("clusterroles");
    let path = a.backup("xshop", &[&shop.name], &types).await;

    assert!(!namespace_exists(&b.client, &shop.name).await);
    let status = b
        .restore(
            "from-a",
            json!({
                "source": b.by_path(&path),
                // Only this test's objects among the cluster's ClusterRoles (the CRD and
                // namespaces are exempt from the selector).
                "target": { "labelSelector": { "matchLabels": { "app": "shop" } } },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    let _guard = TestNamespace::adopt(&b.client, &shop.name);
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

/// dryRun reports what would happen and writes nothing; validateOnly verifies and writes
/// nothing.
#[tokio::test]
async fn dry_run_and_validate_only_write_nothing() {
    let scene = Scene::default("dry-run").await;
    let client = &scene.client;
    let shop = scene.namespace("dshop").await;
    populate(client, &shop.name).await;
    let path = scene.backup("dshop", &[&shop.name], &APP_TYPES).await;

    // Into a new namespace: everything would be created.
    let copy = short_unique_name("dcopy");
    let status = scene
        .restore(
            "dry-copy",
            json!({
                "source": scene.by_path(&path),
                "target": { "namespaceMapping": { shop.name.clone(): copy } },
                "options": { "dryRun": true, "createNamespaces": true },
            }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    // The namespace and the app's objects; with kube-controller-manager on the ground the
    // backup also holds the namespace's `default` ServiceAccount.
    let service_accounts = count(&status, "created/serviceaccounts");
    assert!((1..=2).contains(&service_accounts), "{status:?}");
    assert_eq!(
        count(&status, "created"),
        7 + service_accounts,
        "{:?}",
        status.resource_counts
    );
    assert!(
        status
            .restored_resources
            .iter()
            .all(|r| r.action.as_deref() == Some("created (dry run)"))
    );
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("Dry run")
    );
    assert!(
        !namespace_exists(client, &copy).await,
        "dry run created a namespace"
    );

    // In place after deleting one object and changing another: the API server checks each
    // create for real; the deleted one would be created, the rest would be overwritten.
    delete_object(client, APP_OBJECTS[2], &shop.name).await;
    let status = scene
        .restore(
            "dry-in-place",
            json!({
                "source": scene.by_path(&path),
                "target": { "conflictResolution": "overwrite" },
                "options": { "dryRun": true },
            }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created"), 1, "{:?}", status.resource_counts);
    assert_eq!(count(&status, "created/configmaps"), 1);
    assert_eq!(count(&status, "overwritten"), 5 + service_accounts);
    assert!(
        get_object(client, APP_OBJECTS[2], Some(&shop.name))
            .await
            .is_none(),
        "dry run re-created the deleted ConfigMap"
    );

    // validateOnly: verifies every object, creates nothing.
    let (status, phases) = scene
        .restore_with_phases(
            "validate",
            json!({
                "source": scene.by_path(&path),
                "options": { "validateOnly": true },
            }),
        )
        .await;
    assert_eq!(
        phases,
        [
            RestorePhase::Validating,
            RestorePhase::Downloading,
            RestorePhase::Completed
        ]
    );
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created"), 0);
    assert_eq!(count(&status, "failed"), 0);
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or_default()
            .contains(&format!(
                "{} objects verified",
                status.backup_info.as_ref().unwrap().total_resources
            )),
        "{:?}",
        status.message
    );
    assert!(
        get_object(client, APP_OBJECTS[2], Some(&shop.name))
            .await
            .is_none(),
        "validateOnly re-created the deleted ConfigMap"
    );
}

/// conflictResolution skip (default), overwrite, fail.
#[tokio::test]
async fn conflict_resolution() {
    let scene = Scene::default("conflicts").await;
    let client = &scene.client;
    let shop = scene.namespace("cshop").await;
    populate(client, &shop.name).await;
    let path = scene
        .backup("cshop", &[&shop.name], &["configmaps", "secrets"])
        .await;

    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &shop.name);
    let change = || async {
        let mut cm = cms.get("app-config").await.unwrap();
        cm.data
            .get_or_insert_default()
            .insert("greeting".to_string(), "changed".to_string());
        cms.replace("app-config", &PostParams::default(), &cm)
            .await
            .unwrap();
    };
    change().await;

    // By backupName: the newest complete run of that Backup, at its storage location.
    let status = scene
        .restore("skip", json!({ "source": { "backupName": "cshop" } }))
        .await;
    assert_eq!(
        status.backup_info.as_ref().map(|i| i.backup_path.as_str()),
        Some(path.as_str())
    );
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "skipped"), 2);
    let cm = cms.get("app-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "changed");

    let status = scene
        .restore(
            "overwrite",
            json!({ "source": scene.by_path(&path),
                    "target": { "conflictResolution": "overwrite" } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(
        count(&status, "overwritten"),
        2,
        "{:?}",
        status.resource_counts
    );
    let cm = cms.get("app-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "hello");

    change().await;
    let status = scene
        .restore(
            "fail",
            json!({ "source": scene.by_path(&path),
                    "target": { "conflictResolution": "fail" } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    // Secrets restore before ConfigMaps (restore order): the Secret is the first conflict and
    // the restore stops there.
    assert!(
        message.contains(&format!(
            "Secret {}/app-secret already exists and conflictResolution is fail",
            shop.name
        )),
        "{message}"
    );
    assert_eq!(count(&status, "failed"), 1);
    assert_eq!(count(&status, "skipped") + count(&status, "created"), 0);
    restore_event_reasons(&scene, "fail", &["RestoreStarted", "RestoreFailed"]).await;
    let cm = cms.get("app-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "changed");
}

/// A stored object changed after the backup is an item error naming it; the rest restores.
#[tokio::test]
async fn corrupted_object_is_reported_and_the_rest_restores() {
    let scene = Scene::default("corrupt").await;
    let client = &scene.client;
    let shop = scene.namespace("kshop").await;
    populate(client, &shop.name).await;
    let path = scene.backup("kshop", &[&shop.name], &APP_TYPES).await;

    let storage = scene.env.storage(&scene.bucket);
    let manifest =
        Manifest::from_bytes(&storage.get(&format!("{path}/manifest.json")).await.unwrap())
            .unwrap();
    let entry = manifest
        .objects
        .iter()
        .find(|e| e.kind.as_ref() == "Secret")
        .expect("the Secret is in the manifest");
    let key = format!("{path}/{}", entry.key);
    let mut bytes = storage.get(&key).await.unwrap().to_vec();
    let text = String::from_utf8(bytes.clone())
        .unwrap()
        .replace("app-secret", "app-secreT");
    bytes = text.into_bytes();
    storage.put(&key, Bytes::from(bytes)).await.unwrap();

    let copy = short_unique_name("kcopy");
    let status = scene
        .restore(
            "corrupt",
            json!({
                "source": scene.by_path(&path),
                "target": { "namespaceMapping": { shop.name.clone(): copy } },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    let _guard = TestNamespace::adopt(client, &copy);
    assert_eq!(
        status.phase,
        Some(RestorePhase::PartiallyFailed),
        "{status:?}"
    );
    assert_eq!(count(&status, "failed"), 1);
    assert_eq!(count(&status, "failed/secrets"), 1);
    assert_eq!(
        created_apart_from_default_sa(&status),
        7,
        "{:?}",
        status.resource_counts
    );
    let failed = &status.failed_resources[0];
    assert_eq!(failed.kind, "Secret");
    assert_eq!(failed.name, "app-secret");
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&entry.key) && error.contains("sha256"),
        "{error}"
    );
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("app-secret"),
        "{:?}",
        status.message
    );
    assert!(
        get_object(client, APP_OBJECTS[3], Some(&copy))
            .await
            .is_none()
    );
    assert_restored(client, &shop.name, client, &copy, &APP_OBJECTS[..3]).await;
    restore_event_reasons(&scene, "corrupt", &["RestorePartiallyFailed"]).await;
}

/// Bad input ends in Failed with a specific message, never a crash.
#[tokio::test]
async fn bad_input_fails_with_specific_messages() {
    let scene = Scene::default("bad-input").await;

    let status = scene
        .restore("no-backup", json!({ "source": { "backupName": "nope" } }))
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Failed));
    let message = status.message.unwrap_or_default();
    assert!(message.contains("Backup nope not found"), "{message}");

    // A Backup that has not produced a complete run (its storage is unreachable).
    let backup: Backup = serde_json::from_value(json!({
        "apiVersion": "backup.cnd.dk/v1", "kind": "Backup",
        "metadata": { "name": "never", "namespace": scene.ns.name },
        "spec": { "schedule": "0 0 1 1 *",
                  "source": { "namespaces": ["default"], "resourceTypes": ["configmaps"] },
                  "storageLocation": scene.location() }
    }))
    .unwrap();
    scene
        .backups
        .create(&PostParams::default(), &backup)
        .await
        .unwrap();
    let status = scene
        .restore("never-ran", json!({ "source": { "backupName": "never" } }))
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Failed));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("Backup never has no complete backup yet"),
        "{message}"
    );

    // A path without manifest.json (an incomplete run or no backup at all).
    let storage = scene.env.storage(&scene.bucket);
    storage.ensure_bucket().await.unwrap();
    storage
        .put(
            "backups/x/y/2020-01-01T00-00-00Z/namespaces/a/configmaps/c.json",
            Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
    for (name, path) in [
        ("incomplete", "backups/x/y/2020-01-01T00-00-00Z"),
        ("nothing", "no/such/backup"),
    ] {
        let status = scene
            .restore(name, json!({ "source": scene.by_path(path) }))
            .await;
        assert_eq!(status.phase, Some(RestorePhase::Failed));
        let message = status.message.unwrap_or_default();
        assert!(
            message.contains(&format!(
                "backup at {path} has no manifest.json: it is incomplete or not a backup"
            )),
            "{message}"
        );
    }

    // An unknown conflictResolution is refused by the API server (the CRD's enum).
    let bad: Restore = serde_json::from_value(json!({
        "apiVersion": "backup.cnd.dk/v1", "kind": "Restore",
        "metadata": { "name": "bad-conflict", "namespace": scene.ns.name },
        "spec": { "source": { "backupName": "never" } }
    }))
    .unwrap();
    let mut bad = serde_json::to_value(bad).unwrap();
    bad["spec"]["target"] = json!({ "conflictResolution": "replace" });
    let api: Api<DynamicObject> = Api::namespaced_with(
        scene.client.clone(),
        &scene.ns.name,
        &api_resource("backup.cnd.dk/v1", "Restore", "restores"),
    );
    let err = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(bad).unwrap(),
        )
        .await
        .expect_err("conflictResolution: replace is refused");
    let err = err.to_string();
    assert!(
        err.contains("conflictResolution") && err.contains("\"overwrite\""),
        "{err}"
    );

    // An invalid namespace mapping is refused before anything is written.
    let shop = scene.namespace("bshop").await;
    populate(&scene.client, &shop.name).await;
    let path = scene.backup("bshop", &[&shop.name], &["configmaps"]).await;
    let status = scene
        .restore(
            "bad-mapping",
            json!({ "source": scene.by_path(&path),
                    "target": { "namespaceMapping": { shop.name.clone(): "Bad_NS" } } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Failed));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("\"Bad_NS\" is not a valid namespace name"),
        "{message}"
    );

    // Without createNamespaces, objects for a missing namespace are item errors naming it.
    let missing = short_unique_name("miss");
    let status = scene
        .restore(
            "missing-ns",
            json!({ "source": scene.by_path(&path),
                    "target": { "namespaceMapping": { shop.name.clone(): missing } } }),
        )
        .await;
    assert_eq!(
        status.phase,
        Some(RestorePhase::PartiallyFailed),
        "{status:?}"
    );
    let error = status.failed_resources[0].error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!("namespace {missing} does not exist")),
        "{error}"
    );
}

/// An example Restore of the workshop's `stage5-restore-samples/`, made local: endpoint → local
/// S3 server, bucket and keys → this test's, backupPath → `path`, metadata.namespace → the
/// scene's, and every namespace NAME in `spec.target` renamed as `renames` says.
fn restore_sample(
    scene: &Scene,
    file: &str,
    name: &str,
    path: &str,
    renames: &[(&str, &str)],
) -> Value {
    let dir = common::repo_root().join("config/samples");
    let text =
        std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"));
    let text = scene.env.localize_yaml(&text);
    let mut doc = yaml_serde::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("valid YAML"))
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{file} has no document named {name}"));
    doc["metadata"]["namespace"] = json!(scene.ns.name);
    let source = &mut doc["spec"]["source"];
    common::assert_loopback(source["storageLocation"]["endpoint"].as_str().unwrap());
    source["storageLocation"]["bucket"] = json!(scene.bucket);
    source["storageLocation"]["accessKey"] = json!(scene.env.s3_access_key);
    source["storageLocation"]["secretKey"] = json!(scene.env.s3_secret_key);
    source["backupPath"] = json!(path);
    let rename = |ns: &str| -> String {
        renames
            .iter()
            .find(|(from, _)| *from == ns)
            .map(|(_, to)| to.to_string())
            .unwrap_or_else(|| panic!("{name}: no rename for namespace {ns}"))
    };
    let target = &mut doc["spec"]["target"];
    // `get_mut`, not indexing: indexing a missing key would insert `null`.
    if let Some(list) = target.get_mut("namespaces").and_then(Value::as_array_mut) {
        for ns in list {
            *ns = json!(rename(ns.as_str().unwrap()));
        }
    }
    if let Some(map) = target
        .get("namespaceMapping")
        .and_then(Value::as_object)
        .cloned()
    {
        target["namespaceMapping"] = map
            .iter()
            .map(|(k, v)| (rename(k), json!(rename(v.as_str().unwrap()))))
            .collect::<serde_json::Map<String, Value>>()
            .into();
    }
    doc
}

/// Every example of `stage5-restore-samples/` ends in the phase its comments describe, and
/// does what they say, against a backup of two namespaces standing in for `default` and `test`.
#[tokio::test]
async fn workshop_samples_run_as_described() {
    let scene = Scene::default("samples").await;
    let client = &scene.client;
    let default_ns = scene.namespace("sdef").await;
    let test_ns = scene.namespace("stst").await;
    populate(client, &default_ns.name).await;
    populate(client, &test_ns.name).await;
    for kind in ["Deployment", "Service"] {
        let spec = if kind == "Service" {
            json!({ "selector": { "app": "web-server" }, "ports": [{ "port": 80 }] })
        } else {
            json!({ "selector": { "matchLabels": { "app": "web-server" } },
                    "template": { "metadata": { "labels": { "app": "web-server" } },
                                  "spec": { "containers": [{ "name": "web", "image": "nginx" }] } } })
        };
        let api_version = if kind == "Service" { "v1" } else { "apps/v1" };
        create_json(
            client,
            json!({ "apiVersion": api_version, "kind": kind,
                    "metadata": { "name": "web", "namespace": default_ns.name,
                                  "labels": { "app": "web-server" } },
                    "spec": spec }),
        )
        .await;
    }
    let path = scene
        .backup(
            "samples",
            &[&default_ns.name, &test_ns.name],
            &["deployments", "services", "configmaps", "secrets"],
        )
        .await;
    let fresh: Vec<String> = (0..5).map(|_| short_unique_name("sx")).collect();
    let _guards: Vec<TestNamespace> = fresh
        .iter()
        .map(|ns| TestNamespace::adopt(client, ns))
        .collect();
    let renames = [
        ("default", default_ns.name.as_str()),
        ("test", test_ns.name.as_str()),
        ("test-namespace", fresh[0].as_str()),
        ("production", fresh[1].as_str()),
        ("staging", fresh[2].as_str()),
        ("restored-apps", fresh[3].as_str()),
        ("restored-namespace", fresh[4].as_str()),
    ];
    const COMPREHENSIVE: &str = "backup_v1_comprehensive_restore_examples.yaml";
    let run = |file: &'static str, name: &'static str| {
        let doc = restore_sample(&scene, file, name, &path, &renames);
        let scene = &scene;
        async move { scene.restore(name, doc["spec"].clone()).await }
    };

    // Example 1: dry run into one namespace: reports, writes nothing.
    let status = run(COMPREHENSIVE, "basic-restore-dry-run").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert!(count(&status, "created") > 0);
    assert!(!namespace_exists(client, &fresh[0]).await);

    // Example 2: default → production, test → staging, overwrite, namespaces created.
    let status = run(COMPREHENSIVE, "cross-cluster-restore").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_restored(
        client,
        &default_ns.name,
        client,
        &fresh[1],
        &APP_OBJECTS[..4],
    )
    .await;
    assert_restored(client, &test_ns.name, client, &fresh[2], &APP_OBJECTS[..4]).await;

    // Example 3: only app=web-server Deployments and Services, into restored-apps.
    let status = run(COMPREHENSIVE, "selective-restore").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    let web = [
        ("apps/v1", "Deployment", "deployments", "web"),
        ("v1", "Service", "services", "web"),
    ];
    assert_restored(client, &default_ns.name, client, &fresh[3], &web).await;
    assert!(
        get_object(client, APP_OBJECTS[0], Some(&fresh[3]))
            .await
            .is_none()
    );
    assert_eq!(count(&status, "created/deployments"), 1);
    assert_eq!(count(&status, "created/services"), 1);

    // Example 4: validation only.
    let status = run(COMPREHENSIVE, "validation-restore").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created"), 0);
    assert_eq!(count(&status, "failed"), 0);

    // The single sample: a dry run of default → restored-namespace.
    let status = run("backup_v1_restore.yaml", "restore-sample").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert!(count(&status, "created") > 0);
    assert!(!namespace_exists(client, &fresh[4]).await);
}

/// Runs the test ground's kubectl against `env` (server-side apply of real-world manifests).
fn kubectl(env: &TestEnv, args: &[String]) -> String {
    let out = std::process::Command::new(&env.kubectl)
        .env("KUBECONFIG", &env.kubeconfig)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubectl {args:?}: {text}");
    text
}

/// The kube-prometheus manifests of `tests/fixtures/` (ten CRDs of up to 800 KB, their custom
/// resources, RBAC, workloads) applied on control plane A, backed up, restored on B: every
/// restored object equals its original apart from the documented stripped fields.
///
/// The APIService is left out: its backend never runs here, and an unavailable aggregated API
/// would disturb discovery for every other test on the shared control planes.
#[tokio::test]
async fn kube_prometheus_round_trip_to_another_cluster() {
    let a = Scene::default("kube-prometheus A").await;
    let b = Scene::new(
        "kube-prometheus B",
        TestEnv::load_named("second"),
        &a.bucket,
    )
    .await;
    let corpus = common::repo_root().join("tests/fixtures/kube-prometheus/manifests");
    let files = |dir: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .filter(|p| !p.to_string_lossy().ends_with("apiService.yaml"))
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let apply = |paths: Vec<String>| {
        let mut args: Vec<String> = ["apply", "--server-side", "--force-conflicts"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for p in paths {
            args.push("-f".to_string());
            args.push(p);
        }
        kubectl(&a.env, &args);
    };
    apply(files(&corpus.join("setup")));
    kubectl(
        &a.env,
        &[
            "wait".into(),
            "--for=condition=Established".into(),
            "--timeout=60s".into(),
            "crd".into(),
            "--all".into(),
        ],
    );
    // Discovery needs a moment after Established.
    let mut applied = false;
    for _ in 0..20 {
        let mut args: Vec<String> = ["apply", "--server-side", "--force-conflicts"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for p in files(&corpus) {
            args.push("-f".to_string());
            args.push(p);
        }
        let out = std::process::Command::new(&a.env.kubectl)
            .env("KUBECONFIG", &a.env.kubeconfig)
            .args(&args)
            .output()
            .unwrap();
        if out.status.success() {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(applied, "kube-prometheus manifests apply on A");
    let _ = apply;

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
    let path = a.backup("kp", &["monitoring"], &types).await;
    let selector = json!({ "matchLabels": { "app.kubernetes.io/part-of": "kube-prometheus" } });
    let status = b
        .restore(
            "kube-prometheus",
            json!({
                "source": b.by_path(&path),
                "target": { "labelSelector": selector },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0);

    // Every object of the backup that the selector takes, compared between A and B.
    let storage = a.env.storage(&a.bucket);
    let manifest =
        Manifest::from_bytes(&storage.get(&format!("{path}/manifest.json")).await.unwrap())
            .unwrap();
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

/// Storage contents are untrusted input: a manifest describing unparseable bytes (with a
/// matching checksum), an impossible size and an odd key gives item errors, never a panic, and
/// the rest restores.
#[tokio::test]
async fn untrusted_storage_contents_are_item_errors() {
    use cluster_backup::core::manifest::Sha256Digest;
    let scene = Scene::default("untrusted").await;
    let client = &scene.client;
    let shop = scene.namespace("ushop").await;
    populate(client, &shop.name).await;
    let path = scene.backup("ushop", &[&shop.name], &APP_TYPES).await;

    let storage = scene.env.storage(&scene.bucket);
    let manifest_key = format!("{path}/manifest.json");
    let mut manifest = Manifest::from_bytes(&storage.get(&manifest_key).await.unwrap()).unwrap();
    for entry in &mut manifest.objects {
        match &*entry.kind {
            "ConfigMap" => {
                let junk = b"{ this is not JSON \xff".to_vec();
                entry.size = junk.len() as u64;
                entry.sha256 = Sha256Digest::of(&junk);
                storage
                    .put(&format!("{path}/{}", entry.key), Bytes::from(junk))
                    .await
                    .unwrap();
            }
            "Secret" => entry.size = 1 << 40,
            "Role" => entry.key = "../../../../etc/passwd%00/..".to_string(),
            _ => {}
        }
    }
    storage
        .put(&manifest_key, Bytes::from(manifest.to_bytes().unwrap()))
        .await
        .unwrap();

    let copy = short_unique_name("ucopy");
    let status = scene
        .restore(
            "untrusted",
            json!({
                "source": scene.by_path(&path),
                "target": { "namespaceMapping": { shop.name.clone(): copy } },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    let _guard = TestNamespace::adopt(client, &copy);
    assert_eq!(
        status.phase,
        Some(RestorePhase::PartiallyFailed),
        "{status:?}"
    );
    assert_eq!(count(&status, "failed"), 3, "{:?}", status.failed_resources);
    let error_of = |kind: &str| {
        status
            .failed_resources
            .iter()
            .find(|f| f.kind == kind)
            .and_then(|f| f.error.clone())
            .unwrap_or_else(|| panic!("no failure for {kind}: {:?}", status.failed_resources))
    };
    assert!(
        error_of("ConfigMap").contains("not valid JSON"),
        "{}",
        error_of("ConfigMap")
    );
    assert!(
        error_of("Secret").contains("not downloaded"),
        "{}",
        error_of("Secret")
    );
    assert!(
        error_of("Role").contains("cannot read stored object"),
        "{}",
        error_of("Role")
    );
    // The other four objects and the namespace.
    assert_eq!(
        created_apart_from_default_sa(&status),
        5,
        "{:?}",
        status.resource_counts
    );
}

/// A finished Restore never runs again (even when the operator starts afresh); one the
/// operator was interrupted in (phase Restoring) runs again to the end.
#[tokio::test]
async fn finished_restores_stay_finished_and_interrupted_ones_rerun() {
    use kube::api::{Patch, PatchParams};
    let env = TestEnv::load();
    let client = env.client().await;
    install_crds(&client, Duration::from_secs(60))
        .await
        .unwrap();
    let ns = TestNamespace::named(&client, &short_unique_name("rr")).await;
    let restores: Api<Restore> = Api::namespaced(client.clone(), &ns.name);
    for (name, phase) in [("done", "Completed"), ("interrupted", "Restoring")] {
        let restore: Restore = serde_json::from_value(json!({
            "apiVersion": "backup.cnd.dk/v1", "kind": "Restore",
            "metadata": { "name": name, "namespace": ns.name },
            "spec": { "source": { "backupName": "missing" } }
        }))
        .unwrap();
        restores
            .create(&PostParams::default(), &restore)
            .await
            .unwrap();
        restores
            .patch_status(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(json!({
                    "apiVersion": "backup.cnd.dk/v1", "kind": "Restore",
                    "status": { "phase": phase, "message": "set by the test" }
                })),
            )
            .await
            .unwrap();
    }
    let _operator = start_restore_operator(&client, &ns.name);
    let rerun = wait_for_restore(&restores, "interrupted", RUN_TIMEOUT).await;
    let status = rerun.status.unwrap();
    assert_eq!(status.phase, Some(RestorePhase::Failed));
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("Backup missing not found"),
        "{status:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let done = restores.get("done").await.unwrap().status.unwrap();
    assert_eq!(done.phase, Some(RestorePhase::Completed));
    assert_eq!(done.message.as_deref(), Some("set by the test"));
}

// ---------------------------------------------------------------------------------------------
// Restore fidelity: existing objects however refused, owner references
// ---------------------------------------------------------------------------------------------

/// Creates a NodePort Service `name` with an explicit nodePort (recorded in managedFields, so
/// the restore keeps it); returns the port. Ports are picked at random: Terminating namespaces
/// of earlier runs may still hold theirs.
async fn create_node_port_service(client: &Client, ns: &str, name: &str) -> i64 {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &api_resource("v1", "Service", "services"),
    );
    let mut last_error = String::new();
    for attempt in 0..20u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
        let port = 30000 + (nanos / 7 + attempt * 131) % 2700;
        let service: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": name, "namespace": ns, "labels": { "tier": "edge" } },
            "spec": { "type": "NodePort", "selector": { "app": "edge" },
                      "ports": [{ "name": "http", "port": 80, "targetPort": 8080,
                                  "nodePort": port }] }
        }))
        .unwrap();
        match api.create(&PostParams::default(), &service).await {
            Ok(_) => return port as i64,
            Err(err) => last_error = err.to_string(),
        }
    }
    panic!("no free nodePort for Service {ns}/{name}: {last_error}");
}

/// An existing Service with a pinned nodePort is refused with 422 (port already allocated),
/// not 409; it is still a conflict: skipped with `skip`, replaced with `overwrite`, and the
/// reason to stop with `fail`.
#[tokio::test]
async fn existing_node_port_service_is_a_conflict() {
    let scene = Scene::default("nodeport").await;
    let client = &scene.client;
    let shop = scene.namespace("np").await;
    let port = create_node_port_service(client, &shop.name, "edge").await;
    let path = scene.backup("np", &[&shop.name], &["services"]).await;

    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), &shop.name);
    let mut live = services.get("edge").await.unwrap();
    live.metadata
        .labels
        .get_or_insert_default()
        .insert("tier".to_string(), "changed".to_string());
    services
        .replace("edge", &PostParams::default(), &live)
        .await
        .unwrap();
    let tier = |s: &k8s_openapi::api::core::v1::Service| {
        s.metadata.labels.as_ref().unwrap()["tier"].clone()
    };
    let node_port = |s: &k8s_openapi::api::core::v1::Service| {
        s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].node_port
    };

    let status = scene
        .restore("np-skip", json!({ "source": scene.by_path(&path) }))
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "skipped"), 1, "{:?}", status.resource_counts);
    assert_eq!(count(&status, "failed"), 0, "{:?}", status.failed_resources);
    assert_eq!(
        status.skipped_resources[0].reason.as_deref(),
        Some("already exists")
    );
    assert_eq!(tier(&services.get("edge").await.unwrap()), "changed");

    let status = scene
        .restore(
            "np-overwrite",
            json!({ "source": scene.by_path(&path),
                    "target": { "conflictResolution": "overwrite" } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(
        count(&status, "overwritten"),
        1,
        "{:?}",
        status.resource_counts
    );
    let restored = services.get("edge").await.unwrap();
    assert_eq!(tier(&restored), "edge");
    assert_eq!(node_port(&restored), Some(port as i32));

    let status = scene
        .restore(
            "np-fail",
            json!({ "source": scene.by_path(&path),
                    "target": { "conflictResolution": "fail" } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{status:?}");
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains(&format!(
            "Service {}/edge already exists and conflictResolution is fail",
            shop.name
        )),
        "{message}"
    );
}

async fn uid_of(client: &Client, object: (&str, &str, &str, &str), ns: &str) -> String {
    let obj = get_object(client, object, Some(ns))
        .await
        .unwrap_or_else(|| panic!("{object:?} in {ns}"));
    obj["metadata"]["uid"].as_str().unwrap().to_string()
}

/// `metadata.ownerReferences` of an object in `ns` (`[]` when it has none).
async fn owner_refs_of(client: &Client, object: (&str, &str, &str, &str), ns: &str) -> Value {
    get_object(client, object, Some(ns)).await.unwrap()["metadata"]
        .get("ownerReferences")
        .cloned()
        .unwrap_or(json!([]))
}

fn owner_ref(api_version: &str, kind: &str, name: &str, uid: &str, controller: bool) -> Value {
    let mut r = json!({ "apiVersion": api_version, "kind": kind, "name": name, "uid": uid });
    if controller {
        r["controller"] = json!(true);
        r["blockOwnerDeletion"] = json!(true);
    }
    r
}

/// Owner references survive a restore into another namespace, pointing at the owners there:
/// a ReplicaSet at the restored Deployment, ConfigMaps at the restored ReplicaSet and at a
/// custom resource (all three restored after their dependents: the references are put back at
/// the end), at an owner that is not in the backup but exists in the target; a reference whose
/// owner exists nowhere is dropped and counted. A dry run of the same never fails because of
/// owners.
#[tokio::test]
async fn owner_references_point_at_the_restored_owners() {
    let scene = Scene::default("owners").await;
    let client = &scene.client;
    let group = create_gizmo_crd(client).await;
    let src = scene.namespace("own").await;
    let ns = src.name.as_str();

    // Paused, no replicas: a running controller-manager leaves these objects as they are.
    let template = json!({ "metadata": { "labels": { "app": "web" } },
                           "spec": { "containers": [{ "name": "web", "image": "nginx:1.27" }] } });
    create_json(
        client,
        json!({ "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "web", "namespace": ns },
                "spec": { "replicas": 0, "paused": true,
                          "selector": { "matchLabels": { "app": "web" } },
                          "template": template } }),
    )
    .await;
    const DEPLOY: (&str, &str, &str, &str) = ("apps/v1", "Deployment", "deployments", "web");
    const RS: (&str, &str, &str, &str) = ("apps/v1", "ReplicaSet", "replicasets", "web-5d9c8b");
    let deploy_uid = uid_of(client, DEPLOY, ns).await;
    create_json(
        client,
        json!({ "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": { "name": "web-5d9c8b", "namespace": ns,
                              // What the Deployment's selector matches, or it releases it.
                              "labels": { "app": "web" },
                              "ownerReferences": [owner_ref("apps/v1", "Deployment", "web",
                                                            &deploy_uid, true)] },
                "spec": { "replicas": 0,
                          "selector": { "matchLabels": { "app": "web" } },
                          "template": template } }),
    )
    .await;
    let rs_uid = uid_of(client, RS, ns).await;
    create_gizmo(client, &group, ns, "g1").await;
    let gizmo = (
        format!("{group}/v1"),
        "Gizmo".to_string(),
        "gizmos".to_string(),
    );
    let gizmo_obj = (gizmo.0.as_str(), gizmo.1.as_str(), gizmo.2.as_str(), "g1");
    let gizmo_uid = uid_of(client, gizmo_obj, ns).await;
    // Owners outside the backup (it holds no Secrets): one will exist in the target, one not.
    for name in ["present", "absent"] {
        create_json(
            client,
            json!({ "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": { "name": name, "namespace": ns } }),
        )
        .await;
    }
    let secret = |name: &'static str| ("v1", "Secret", "secrets", name);
    let present_uid = uid_of(client, secret("present"), ns).await;
    let absent_uid = uid_of(client, secret("absent"), ns).await;
    let owned: [(&str, Vec<Value>); 5] = [
        (
            "by-rs",
            vec![owner_ref("apps/v1", "ReplicaSet", RS.3, &rs_uid, true)],
        ),
        (
            "by-gizmo",
            vec![owner_ref(&gizmo.0, "Gizmo", "g1", &gizmo_uid, false)],
        ),
        (
            "by-present",
            vec![owner_ref("v1", "Secret", "present", &present_uid, false)],
        ),
        (
            "by-absent",
            vec![owner_ref("v1", "Secret", "absent", &absent_uid, false)],
        ),
        (
            "by-both",
            vec![
                owner_ref("v1", "Secret", "absent", &absent_uid, false),
                owner_ref("apps/v1", "ReplicaSet", RS.3, &rs_uid, false),
            ],
        ),
    ];
    for (name, refs) in &owned {
        create_json(
            client,
            json!({ "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": { "name": name, "namespace": ns, "ownerReferences": refs },
                    "data": { "k": "v" } }),
        )
        .await;
    }
    let gizmo_type = format!("gizmos.{group}");
    let path = scene
        .backup(
            "own",
            &[ns],
            &["deployments", "replicasets", "configmaps", &gizmo_type],
        )
        .await;

    // The dry run into a namespace it would create: owners are never a failure.
    let dry = short_unique_name("owndry");
    let _dry_guard = TestNamespace::adopt(client, &dry);
    let status = scene
        .restore(
            "owners-dry",
            json!({ "source": scene.by_path(&path),
                    "target": { "namespaceMapping": { ns: dry } },
                    "options": { "dryRun": true, "createNamespaces": true } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0, "{:?}", status.failed_resources);
    assert!(!namespace_exists(client, &dry).await);

    let copy = scene.namespace("owncp").await;
    let to = copy.name.as_str();
    create_json(
        client,
        json!({ "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": { "name": "present", "namespace": to } }),
    )
    .await;
    let present_target_uid = uid_of(client, secret("present"), to).await;
    let status = scene
        .restore(
            "owners",
            json!({ "source": scene.by_path(&path),
                    "target": { "namespaceMapping": { ns: to } } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0, "{:?}", status.failed_resources);
    assert_eq!(count(&status, "created/configmaps"), 5, "{status:?}");
    assert_eq!(count(&status, "created/replicasets"), 1, "{status:?}");
    assert_eq!(
        count(&status, "ownerReferencesDropped"),
        2,
        "{:?}",
        status.resource_counts
    );
    let message = status.message.clone().unwrap_or_default();
    assert!(message.contains("2 owner references dropped"), "{message}");
    // by-rs, by-gizmo, by-both (its ReplicaSet) and the ReplicaSet (its Deployment).
    assert_eq!(
        count(&status, "ownerReferencesRestored"),
        4,
        "{:?}",
        status.resource_counts
    );

    let new_deploy_uid = uid_of(client, DEPLOY, to).await;
    let new_rs_uid = uid_of(client, RS, to).await;
    let new_gizmo_uid = uid_of(client, gizmo_obj, to).await;
    assert_ne!(new_deploy_uid, deploy_uid);
    assert_ne!(new_rs_uid, rs_uid);
    let refs_of = |obj| owner_refs_of(client, obj, to);
    assert_eq!(
        refs_of(RS).await,
        json!([owner_ref(
            "apps/v1",
            "Deployment",
            "web",
            &new_deploy_uid,
            true
        )])
    );
    let cm = |name| ("v1", "ConfigMap", "configmaps", name);
    assert_eq!(
        refs_of(cm("by-rs")).await,
        json!([owner_ref("apps/v1", "ReplicaSet", RS.3, &new_rs_uid, true)])
    );
    assert_eq!(
        refs_of(cm("by-gizmo")).await,
        json!([owner_ref(&gizmo.0, "Gizmo", "g1", &new_gizmo_uid, false)])
    );
    assert_eq!(
        refs_of(cm("by-present")).await,
        json!([owner_ref(
            "v1",
            "Secret",
            "present",
            &present_target_uid,
            false
        )])
    );
    assert_eq!(refs_of(cm("by-absent")).await, json!([]));
    assert_eq!(
        refs_of(cm("by-both")).await,
        json!([owner_ref("apps/v1", "ReplicaSet", RS.3, &new_rs_uid, false)])
    );
    // Still there a moment later: nothing points at a UID the garbage collector cannot find.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (name, _) in &owned {
        assert!(
            get_object(client, cm(name), Some(to)).await.is_some(),
            "ConfigMap {to}/{name} was garbage-collected"
        );
    }
}

/// A Namespace owned by an object restored after it (Capsule makes a Tenant the owner of its
/// Namespaces; here a ClusterRole) is restored in its own level, so the objects in it find it,
/// and gets its owner reference back at the end.
#[tokio::test]
async fn a_namespace_owned_by_a_later_object_is_restored_first() {
    let scene = Scene::default("ns-owner").await;
    let client = &scene.client;
    let tenant = short_unique_name("tenant");
    const CR: &str = "rbac.authorization.k8s.io/v1";
    create_json(
        client,
        json!({ "apiVersion": CR, "kind": "ClusterRole",
                "metadata": { "name": tenant, "labels": { "tenant": tenant } },
                "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get"] }] }),
    )
    .await;
    let tenant_obj = (CR, "ClusterRole", "clusterroles", tenant.as_str());
    let old_uid = get_object(client, tenant_obj, None).await.unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let src = short_unique_name("nsown");
    create_json(
        client,
        json!({ "apiVersion": "v1", "kind": "Namespace",
                "metadata": { "name": src, "labels": { "tenant": tenant },
                              "ownerReferences": [owner_ref(CR, "ClusterRole", &tenant,
                                                            &old_uid, false)] } }),
    )
    .await;
    let _src_guard = TestNamespace::adopt(client, &src);
    create_json(
        client,
        json!({ "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "settings", "namespace": src,
                              "labels": { "tenant": tenant } },
                "data": { "k": "v" } }),
    )
    .await;
    let path = scene
        .backup(
            "nsown",
            &[&src],
            &["namespaces", "configmaps", "clusterroles"],
        )
        .await;

    // The tenant is gone (the garbage collector then removes its namespace too); restore both
    // under a new namespace name.
    let roles: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &api_resource(CR, "ClusterRole", "clusterroles"),
    );
    roles
        .delete(&tenant, &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let copy = short_unique_name("nsowncp");
    let _copy_guard = TestNamespace::adopt(client, &copy);
    let status = scene
        .restore(
            "nsown",
            json!({ "source": scene.by_path(&path),
                    "target": { "namespaceMapping": { src.as_str(): copy },
                                // Only this test's ClusterRole of the cluster's.
                                "labelSelector": { "matchLabels": { "tenant": tenant } } } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0, "{:?}", status.failed_resources);
    assert_eq!(count(&status, "created/namespaces"), 1, "{status:?}");
    assert_eq!(count(&status, "created/configmaps"), 1, "{status:?}");
    assert_eq!(count(&status, "created/clusterroles"), 1, "{status:?}");
    assert_eq!(count(&status, "ownerReferencesRestored"), 1, "{status:?}");
    assert_eq!(count(&status, "ownerReferencesDropped"), 0, "{status:?}");

    let new_uid = get_object(client, tenant_obj, None).await.unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_uid, old_uid);
    let namespace = get_object(client, ("v1", "Namespace", "namespaces", &copy), None)
        .await
        .unwrap();
    assert_eq!(
        namespace["metadata"]["ownerReferences"],
        json!([owner_ref(CR, "ClusterRole", &tenant, &new_uid, false)])
    );
    assert!(
        get_object(
            client,
            ("v1", "ConfigMap", "configmaps", "settings"),
            Some(&copy)
        )
        .await
        .is_some()
    );
    // Deleting the tenant deletes its restored namespace: the reference is a real one.
    roles
        .delete(&tenant, &kube::api::DeleteParams::default())
        .await
        .unwrap();
}

/// Every spec problem is reported at once, before storage or the target is touched: a Restore
/// with an invalid mapped namespace name, a bad label selector and an impossible type name,
/// pointing at an unreachable storage endpoint, fails with InvalidSpec naming all three and
/// no storage error.
#[tokio::test]
async fn spec_problems_are_reported_together_before_any_io() {
    let scene = Scene::default("spec").await;
    let mut location = scene.location();
    location["endpoint"] = json!("http://127.0.0.1:1");
    common::assert_loopback(location["endpoint"].as_str().unwrap());
    let status = scene
        .restore(
            "bad-spec",
            json!({
                "source": { "storageLocation": location,
                            "backupPath": "backups/x/y/2020-01-01T00-00-00Z" },
                "target": {
                    "namespaceMapping": { "shop": "Shop_Copy" },
                    "resourceTypes": ["configmaps", "config maps"],
                    "labelSelector": { "matchExpressions": [
                        { "key": "app", "operator": "Equals", "values": ["web"] }] },
                },
            }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    for part in [
        "target.namespaceMapping[\"shop\"]: \"Shop_Copy\" is not a valid namespace name",
        "target.labelSelector.matchExpressions[0]: operator \"Equals\"",
        "target.resourceTypes[1]: \"config maps\" cannot name a type",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    for storage_word in ["127.0.0.1:1", "reach", "manifest"] {
        assert!(!message.contains(storage_word), "{message}");
    }
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    assert_eq!(ready.reason, "InvalidSpec");
    assert_eq!(ready.status, "False");
    let reasons = restore_event_reasons(&scene, "bad-spec", &["InvalidSpec"]).await;
    assert!(
        !reasons.iter().any(|r| r == "RestoreStarted"),
        "{reasons:?}"
    );
}
