//! What a restore made: its counts, and restored objects compared with their originals
//! (ignoring only the fields the restore documents as stripped or the server assigns).

use cluster_backup::api::RestoreStatus;
use kube::Client;
use serde_json::{Value, json};

use super::objects::{ObjectRef, get_object};

/// An object without the fields the restore documents as stripped or server-assigned, with
/// its namespace (and namespace references) read as `ns`.
pub fn normalized(mut obj: Value, from_ns: Option<&str>, to_ns: Option<&str>) -> Value {
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
pub async fn assert_restored(
    source: &Client,
    from: &str,
    target: &Client,
    to: &str,
    objects: &[ObjectRef<'_>],
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

/// `status.message` (empty without one).
pub fn message(status: &RestoreStatus) -> &str {
    status.message.as_deref().unwrap_or_default()
}

/// `status.resourceCounts[key]` (0 when absent).
pub fn count(status: &RestoreStatus, key: &str) -> i64 {
    status.resource_counts.get(key).copied().unwrap_or(0)
}

/// `created`, not counting the namespace's `default` ServiceAccount: kube-controller-manager
/// makes one in every new namespace, so a restore into a namespace it just created either
/// creates the backed-up copy first or finds the controller's (skipped) — a race either way.
pub fn created_apart_from_default_sa(status: &RestoreStatus) -> i64 {
    let default_sa_created = status
        .restored_resources
        .iter()
        .any(|r| r.kind == "ServiceAccount" && r.name == "default");
    count(status, "created") - i64::from(default_sa_created)
}
