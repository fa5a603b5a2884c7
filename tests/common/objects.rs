//! Objects tests create and read back: sample ConfigMaps, Secrets, Deployments…, a small
//! application ("shop"), test CRDs, and untyped get/delete of any object.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::{create_json, eventually, short_unique_name};

// ---------------------------------------------------------------------------------------------
// Sample objects (JSON)
// ---------------------------------------------------------------------------------------------

pub fn meta(ns: &str, name: &str, labels: Value) -> Value {
    json!({ "name": name, "namespace": ns, "labels": labels })
}

pub fn deployment(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(ns, name, labels),
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] }
            }
        }
    })
}

pub fn service(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service", "metadata": meta(ns, name, labels),
        "spec": {
            "selector": { "app": name },
            "ports": [{ "port": 80, "protocol": "TCP", "targetPort": 80 }]
        }
    })
}

pub fn configmap(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(ns, name, labels),
        "data": { "key": "value" }
    })
}

pub fn secret(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": meta(ns, name, labels),
        "type": "Opaque", "stringData": { "password": "secret123" }
    })
}

pub fn service_account_token(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": name, "namespace": ns,
            "annotations": { "kubernetes.io/service-account.name": "builder" }
        },
        "type": "kubernetes.io/service-account-token"
    })
}

pub fn pvc(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(ns, name, json!({})),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": "1Gi" } }
        }
    })
}

pub fn ingress(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": meta(ns, name, json!({})),
        "spec": { "defaultBackend": { "service": { "name": name, "port": { "number": 80 } } } }
    })
}

/// A ClusterRole `name` that may get `resource`.
pub fn cluster_role(name: &str, labels: Value, resource: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": { "name": name, "labels": labels },
        "rules": [{ "apiGroups": [""], "resources": [resource], "verbs": ["get"] }]
    })
}

/// An ownerReference (a controller's also blocks the owner's deletion).
pub fn owner_ref(api_version: &str, kind: &str, name: &str, uid: &str, controller: bool) -> Value {
    let mut r = json!({ "apiVersion": api_version, "kind": kind, "name": name, "uid": uid });
    if controller {
        r["controller"] = json!(true);
        r["blockOwnerDeletion"] = json!(true);
    }
    r
}

// ---------------------------------------------------------------------------------------------
// The "shop" application that restore tests back up and compare
// ---------------------------------------------------------------------------------------------

/// The types of every object of [`shop_app`].
pub const APP_TYPES: [&str; 7] = [
    "deployments",
    "services",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "roles",
    "rolebindings",
];

/// (apiVersion, kind, plural, name) of an object; what [`get_object`] and friends take.
pub type ObjectRef<'a> = (&'a str, &'a str, &'a str, &'a str);

/// Every object [`shop_app`] creates.
pub const APP_OBJECTS: [ObjectRef<'static>; 7] = [
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

/// A small application in `ns`: a Deployment of two replicas running as its ServiceAccount
/// with its ConfigMap, a Secret, a Service, and a Role bound to the ServiceAccount.
pub fn shop_app(ns: &str) -> Vec<Value> {
    let labels = json!({ "app": "shop" });
    vec![
        json!({ "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": { "name": "app", "namespace": ns, "labels": labels } }),
        json!({ "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "app-config", "namespace": ns, "labels": labels },
                "data": { "greeting": "hello", "size": "3" } }),
        json!({ "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": { "name": "app-secret", "namespace": ns, "labels": labels },
                "stringData": { "password": "s3cr3t" } }),
        json!({ "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": "app", "namespace": ns, "labels": labels },
                "spec": { "selector": { "app": "shop" },
                          "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] } }),
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
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": { "name": "reader", "namespace": ns, "labels": labels },
                "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"] }] }),
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": { "name": "reader", "namespace": ns, "labels": labels },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader" },
                "subjects": [{ "kind": "ServiceAccount", "name": "app", "namespace": ns }] }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Test CRDs
// ---------------------------------------------------------------------------------------------

/// The shared `widgets.example.com` CRD (kind Widget, never deleted).
pub const WIDGET_CRD: &str = "widgets.example.com";

/// Installs `widgets.example.com` (shared by the tests, never deleted) and waits until the API
/// server serves it.
pub async fn install_widget_crd(client: &Client) {
    apply_crd(client, "example.com", "Widget", "widgets", "widget", &[]).await;
}

/// A namespaced test CRD `gizmos.<group>` of a group unique to the test; returns the group.
pub async fn create_gizmo_crd(client: &Client) -> String {
    create_gizmo_crd_with_short_names(client, &[]).await
}

/// [`create_gizmo_crd`] declaring `short_names`.
pub async fn create_gizmo_crd_with_short_names(client: &Client, short_names: &[&str]) -> String {
    let group = format!("{}.example.com", short_unique_name("w"));
    apply_crd(client, &group, "Gizmo", "gizmos", "gizmo", short_names).await;
    group
}

/// A Gizmo `name` in `ns` (label `app: shop`).
pub async fn create_gizmo(client: &Client, group: &str, ns: &str, name: &str) {
    create_json(
        client,
        json!({ "apiVersion": format!("{group}/v1"), "kind": "Gizmo",
                "metadata": { "name": name, "namespace": ns, "labels": { "app": "shop" } },
                "spec": { "size": 3, "color": "blue", "parts": ["a", "b"] } }),
    )
    .await;
}

/// Applies a namespaced CRD `<plural>.<group>` (version v1, any spec) and waits until it is
/// Established and discovery serves its kind.
async fn apply_crd(
    client: &Client,
    group: &str,
    kind: &str,
    plural: &str,
    singular: &str,
    short_names: &[&str],
) {
    let name = format!("{plural}.{group}");
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": name },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "plural": plural, "singular": singular, "kind": kind,
                       "listKind": format!("{kind}List"), "shortNames": short_names },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": { "type": "object",
                                              "x-kubernetes-preserve-unknown-fields": true } }
                }}
            }]
        }
    });
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch(
        &name,
        &PatchParams::apply("cluster-backup-test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap_or_else(|e| panic!("apply the CRD {name}: {e}"));
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, &name, conditions::is_crd_established()),
    )
    .await
    .unwrap_or_else(|_| panic!("CRD {name} established in time"))
    .unwrap_or_else(|e| panic!("watch the CRD {name}: {e}"));
    // Discovery needs a moment after Established.
    let gvk = GroupVersionKind::gvk(group, "v1", kind);
    eventually(
        &format!("{kind} to appear in discovery"),
        Duration::from_secs(60),
        || async { kube::discovery::pinned_kind(client, &gvk).await.ok() },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Reading and deleting any object
// ---------------------------------------------------------------------------------------------

/// The API resource of an object given as JSON (discovered, or guessed from its kind).
pub async fn api_resource_of(client: &Client, value: &Value) -> ApiResource {
    let api_version = value["apiVersion"].as_str().unwrap();
    let kind = value["kind"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    match kube::discovery::pinned_kind(client, &gvk).await {
        Ok((resource, _)) => resource,
        Err(_) => ApiResource::from_gvk(&gvk),
    }
}

pub fn api_resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        plural: plural.to_string(),
    }
}

/// An untyped API for `object`'s type, in `ns` or cluster-wide.
pub fn dynamic_api(client: &Client, object: ObjectRef<'_>, ns: Option<&str>) -> Api<DynamicObject> {
    let (api_version, kind, plural, _) = object;
    let ar = api_resource(api_version, kind, plural);
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// A namespaced k8s-openapi type (ConfigMap, Deployment, …).
pub trait NamespacedKind:
    kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> NamespacedKind for K where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
{
}

/// A namespaced object of a typed kind, if it exists.
pub async fn get_opt<K: NamespacedKind>(client: &Client, ns: &str, name: &str) -> Option<K> {
    Api::<K>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("get {} {ns}/{name}: {e}", K::kind(&())))
}

/// A namespaced object of a typed kind that must exist.
pub async fn get<K: NamespacedKind>(client: &Client, ns: &str, name: &str) -> K {
    get_opt(client, ns, name)
        .await
        .unwrap_or_else(|| panic!("{} {ns}/{name} does not exist", K::kind(&())))
}

/// The object as JSON, if it exists.
pub async fn get_object(client: &Client, object: ObjectRef<'_>, ns: Option<&str>) -> Option<Value> {
    let (_, kind, _, name) = object;
    dynamic_api(client, object, ns)
        .get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("get {kind} {name}: {e}"))
        .map(|o| serde_json::to_value(o).unwrap())
}

/// `metadata.uid` of an object that must exist.
pub async fn uid_of(client: &Client, object: ObjectRef<'_>, ns: Option<&str>) -> String {
    let obj = get_object(client, object, ns)
        .await
        .unwrap_or_else(|| panic!("{object:?} in {ns:?}"));
    obj["metadata"]["uid"].as_str().unwrap().to_string()
}

/// Deletes an object in `ns` and waits until it is gone (for kinds without finalizers).
pub async fn delete_object(client: &Client, object: ObjectRef<'_>, ns: &str) {
    let (_, kind, _, name) = object;
    let api = dynamic_api(client, object, Some(ns));
    api.delete(name, &DeleteParams::default()).await.unwrap();
    eventually(
        &format!("{kind} {ns}/{name} to be deleted"),
        Duration::from_secs(10),
        || async { api.get_opt(name).await.unwrap().is_none().then_some(()) },
    )
    .await;
}

/// Deletes an object, best effort, without waiting (names are unique per test).
pub async fn delete_quietly(client: &Client, object: ObjectRef<'_>, ns: Option<&str>) {
    let _ = dynamic_api(client, object, ns)
        .delete(object.3, &DeleteParams::default())
        .await;
}

pub async fn namespace_exists(client: &Client, name: &str) -> bool {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    api.get_opt(name).await.unwrap().is_some()
}
