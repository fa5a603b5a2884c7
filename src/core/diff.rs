//! `backups diff`: what changed between two backups, or between a backup and the live cluster.
//! Objects are matched by type, namespace and name, and compared after the cleaning a restore
//! applies ([`clean_for_restore`]), so fields a restore would drop (uid, resourceVersion,
//! managedFields, status, ...) never show as changes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::core::restore::clean::{STRIPPED_METADATA, clean_for_restore};

/// One object's identity in a diff: its type folder (`deployments`, `widgets.acme.io`), its
/// namespace (`None`: cluster-scoped) and its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectId {
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.resource, self.name),
            None => write!(f, "{}/{}", self.resource, self.name),
        }
    }
}

/// One changed field, as a JSON pointer into the object (`/spec/replicas`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    /// `None`: the field is new.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// `None`: the field is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// An object present on both sides whose cleaned content differs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Changed {
    #[serde(flatten)]
    pub id: ObjectId,
    pub fields: Vec<FieldChange>,
}

/// The differences from a `before` side to an `after` side.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diff {
    /// Only in `after`.
    pub added: Vec<ObjectId>,
    /// Only in `before`.
    pub removed: Vec<ObjectId>,
    pub changed: Vec<Changed>,
    /// Present on both sides with the same content.
    pub unchanged: u64,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Records an object present on both sides: unchanged when no field differs.
    pub fn record(&mut self, id: &ObjectId, fields: Vec<FieldChange>) {
        if fields.is_empty() {
            self.unchanged += 1;
        } else {
            self.changed.push(Changed {
                id: id.clone(),
                fields,
            });
        }
    }
}

/// What is compared of an object: the object as a restore would create it. An object a
/// restore would skip is compared without the metadata a restore always strips and without
/// `status`.
pub fn comparable(mut obj: Value) -> Value {
    let _ = clean_for_restore(&mut obj);
    if let Some(map) = obj.as_object_mut() {
        map.remove("status");
        if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in STRIPPED_METADATA {
                metadata.remove(field);
            }
        }
    }
    obj
}

/// The fields that differ between two cleaned objects (see [`comparable`]).
pub fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    json_patch::diff(before, after)
        .0
        .into_iter()
        .map(|op| {
            let path = op.path().to_string();
            let at = |side: &Value| side.pointer(&path).cloned();
            FieldChange {
                before: at(before),
                after: at(after),
                path,
            }
        })
        .collect()
}

/// What a diff shows for a value it must not print.
pub const REDACTED: &str = "(redacted)";

/// Where a Secret holds its values: `data`, `stringData`, and the `kubectl apply` annotation,
/// which holds a copy of them (a restore keeps it).
const SECRET_VALUE_PATHS: [&str; 3] = [
    "/data",
    "/stringData",
    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
];

/// [`field_changes`] of an object of type `resource`: the values of a core Secret's `data`,
/// `stringData` and its `kubectl apply` annotation are shown as [`REDACTED`] (the path still
/// says which key changed), so a diff printed to a terminal or a CI log does not leak them.
pub fn object_changes(resource: &str, before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut fields = field_changes(before, after);
    if resource == "secrets" {
        for field in &mut fields {
            // Inside a value path, or a parent of one (annotations added or removed whole).
            let within = |outer: &str, inner: &str| {
                inner == outer || inner.starts_with(&format!("{outer}/"))
            };
            if SECRET_VALUE_PATHS
                .iter()
                .any(|p| within(p, &field.path) || within(&field.path, p) || field.path.is_empty())
            {
                let hide = |v: &mut Option<Value>| {
                    if v.is_some() {
                        *v = Some(Value::String(REDACTED.to_string()));
                    }
                };
                hide(&mut field.before);
                hide(&mut field.after);
            }
        }
    }
    fields
}

/// Compares two sides given as `id -> comparable object` (see [`comparable`]).
pub fn compare(before: &BTreeMap<ObjectId, Value>, after: &BTreeMap<ObjectId, Value>) -> Diff {
    let mut diff = Diff::default();
    for (id, old) in before {
        match after.get(id) {
            None => diff.removed.push(id.clone()),
            Some(new) => diff.record(id, object_changes(&id.resource, old, new)),
        }
    }
    diff.added = after
        .keys()
        .filter(|id| !before.contains_key(id))
        .cloned()
        .collect();
    diff
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(name: &str) -> ObjectId {
        ObjectId {
            resource: "configmaps".into(),
            namespace: Some("shop".into()),
            name: name.into(),
        }
    }

    fn map(name: &str, data: Value, rv: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": name, "namespace": "shop", "resourceVersion": rv,
                          "uid": format!("uid-{rv}"), "creationTimestamp": "2026-01-01T00:00:00Z" },
            "data": data,
        })
    }

    #[test]
    fn finds_added_removed_and_changed_fields_ignoring_what_a_restore_drops() {
        let before: BTreeMap<_, _> = [
            (id("same"), comparable(map("same", json!({"a": "1"}), "1"))),
            (id("gone"), comparable(map("gone", json!({}), "2"))),
            (
                id("edited"),
                comparable(map("edited", json!({"a": "1", "b": "x"}), "3")),
            ),
        ]
        .into();
        let after: BTreeMap<_, _> = [
            // Only the resourceVersion and uid differ: unchanged.
            (id("same"), comparable(map("same", json!({"a": "1"}), "9"))),
            (
                id("edited"),
                comparable(map("edited", json!({"a": "2", "c": "y"}), "8")),
            ),
            (id("new"), comparable(map("new", json!({}), "7"))),
        ]
        .into();
        let diff = compare(&before, &after);
        assert_eq!(diff.added, vec![id("new")]);
        assert_eq!(diff.removed, vec![id("gone")]);
        assert_eq!(diff.unchanged, 1);
        assert_eq!(diff.changed.len(), 1);
        let fields = &diff.changed[0].fields;
        let by_path: BTreeMap<_, _> = fields.iter().map(|f| (f.path.as_str(), f)).collect();
        assert_eq!(by_path["/data/a"].before, Some(json!("1")));
        assert_eq!(by_path["/data/a"].after, Some(json!("2")));
        assert_eq!(by_path["/data/b"].after, None);
        assert_eq!(by_path["/data/c"].before, None);
        assert_eq!(fields.len(), 3, "{fields:?}");
    }

    #[test]
    fn secret_values_are_never_shown() {
        let secret = |v: &str| {
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "data": {"password": v, "user": "YQ=="}})
        };
        let fields = object_changes("secrets", &secret("b2xk"), &secret("bmV3"));
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].path, "/data/password");
        assert_eq!(fields[0].before, Some(json!(REDACTED)));
        assert_eq!(fields[0].after, Some(json!(REDACTED)));
        // The apply annotation holds the same values.
        let applied = |v: &str| {
            let mut secret = secret(v);
            secret["metadata"]["annotations"] = json!({
                "kubectl.kubernetes.io/last-applied-configuration":
                    format!("{{\"data\":{{\"password\":\"{v}\"}}}}"),
            });
            secret
        };
        let fields = object_changes("secrets", &applied("b2xk"), &applied("bmV3"));
        assert_eq!(fields.len(), 2, "{fields:?}");
        let text = serde_json::to_string(&fields).unwrap();
        assert!(!text.contains("b2xk") && !text.contains("bmV3"), "{text}");
        // Annotations appearing whole (a Secret first applied with kubectl apply).
        let fields = object_changes("secrets", &secret("b2xk"), &applied("bmV3"));
        let text = serde_json::to_string(&fields).unwrap();
        assert!(!text.contains("bmV3"), "{text}");
        // Other types show their values.
        let fields = object_changes("configmaps", &secret("b2xk"), &secret("bmV3"));
        assert_eq!(fields[0].after, Some(json!("bmV3")));
    }

    #[test]
    fn status_never_shows_as_a_change() {
        let mut a = map("x", json!({}), "1");
        let mut b = map("x", json!({}), "2");
        a["status"] = json!({"phase": "A"});
        b["status"] = json!({"phase": "B"});
        assert!(field_changes(&comparable(a), &comparable(b)).is_empty());
    }
}
