//! `metadata.ownerReferences` on restore: pointing them at the owners' new UIDs.
//!
//! A reference names its owner by `apiVersion`, `kind`, `name` and `uid`; the garbage
//! collector follows the UID only, and deletes a dependent whose owner UID does not exist. A
//! restored owner gets a new UID, so every reference is rewritten before its object is
//! created ([`rewrite_owner_references`]), using [`OwnerIndex::resolve`]:
//!
//! 1. the owner was restored in this restore (created, overwritten, or found existing and
//!    skipped): the UID the API server returned for it;
//! 2. the owner is in this restore's selection but not restored yet (restore order puts it
//!    later, e.g. a ConfigMap owned by a custom resource, or a ReplicaSet owned by a
//!    Deployment): the object waits ([`Resolution::Pending`]) and is restored after its owners;
//! 3. otherwise the owner is looked up in the target cluster by name, and its UID used if it
//!    exists ([`Resolution::Lookup`]);
//! 4. an owner that exists in neither is dropped from the list (and counted): keeping it would
//!    make the garbage collector delete the restored object.
//!
//! An owner of a namespaced object lives in the same (target) namespace or is cluster-scoped;
//! an owner of a cluster-scoped object is cluster-scoped. Owners are matched by API group and
//! kind (not version: any served version has the same UID), namespace and name.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::object::get;
use super::select::SelectedItem;

/// One object a reference may point at: API group (`""` for core), kind, namespace (`None`:
/// cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerKey {
    pub group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl OwnerKey {
    /// The key of a selected object, as it is restored (target namespace and name).
    pub fn of_item(item: &SelectedItem<'_>) -> OwnerKey {
        OwnerKey {
            group: group_of(&item.entry.api_version).to_string(),
            kind: item.entry.kind.to_string(),
            namespace: item.target_namespace().map(str::to_string),
            name: item.target_name().to_string(),
        }
    }
}

/// The API group of an `apiVersion` (`""` for `v1`).
pub fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// One entry of `metadata.ownerReferences`, as far as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

impl OwnerRef {
    /// The keys the owner of an object in `namespace` may have: the same namespace, or the
    /// cluster.
    pub fn candidates(&self, namespace: Option<&str>) -> Vec<OwnerKey> {
        let key = |namespace: Option<&str>| OwnerKey {
            group: group_of(&self.api_version).to_string(),
            kind: self.kind.clone(),
            namespace: namespace.map(str::to_string),
            name: self.name.clone(),
        };
        match namespace {
            Some(ns) => vec![key(Some(ns)), key(None)],
            None => vec![key(None)],
        }
    }
}

/// The object's owner references in order; `None` for an entry without a string
/// `apiVersion`, `kind` and `name` (the API server would refuse it).
pub fn owner_references(obj: &Value) -> Vec<Option<OwnerRef>> {
    let Some(refs) = get(obj, &["metadata", "ownerReferences"]).and_then(Value::as_array) else {
        return Vec::new();
    };
    refs.iter()
        .map(|r| {
            let field = |name: &str| {
                r.get(name)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            Some(OwnerRef {
                api_version: field("apiVersion")?,
                kind: field("kind")?,
                name: field("name")?,
            })
        })
        .collect()
}

/// What is known locally about one owner reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The owner's UID in the target cluster.
    Uid(String),
    /// The owner is in the selection and not restored yet: restore the object later.
    Pending,
    /// Not known here: look the owner up in the target cluster. `in_selection` says whether the
    /// owner was selected (restored without a UID: failed, skipped, or a dry run).
    Lookup { in_selection: bool },
    /// Malformed reference: drop it.
    Invalid,
}

/// The objects a restore selected and the UIDs of those already restored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerIndex {
    selected: BTreeSet<OwnerKey>,
    finished: BTreeSet<OwnerKey>,
    uids: BTreeMap<OwnerKey, String>,
}

impl OwnerIndex {
    /// An index of the selected objects, none restored yet.
    pub fn new(selected: impl IntoIterator<Item = OwnerKey>) -> OwnerIndex {
        OwnerIndex {
            selected: selected.into_iter().collect(),
            ..OwnerIndex::default()
        }
    }

    /// The object is done with (whatever the outcome); `uid` is its UID in the target cluster
    /// when the API server returned one.
    pub fn finish(&mut self, key: OwnerKey, uid: Option<String>) {
        if let Some(uid) = uid.filter(|u| !u.is_empty()) {
            self.uids.insert(key.clone(), uid);
        }
        self.finished.insert(key);
    }

    /// How to resolve one reference of an object in `namespace`. With `force`, owners that
    /// are still pending are looked up instead (breaks ownership cycles).
    pub fn resolve(
        &self,
        owner: Option<&OwnerRef>,
        namespace: Option<&str>,
        force: bool,
    ) -> Resolution {
        let Some(owner) = owner else {
            return Resolution::Invalid;
        };
        let candidates = owner.candidates(namespace);
        if let Some(uid) = candidates.iter().find_map(|k| self.uids.get(k)) {
            return Resolution::Uid(uid.clone());
        }
        let in_selection = candidates.iter().any(|k| self.selected.contains(k));
        let pending = candidates
            .iter()
            .any(|k| self.selected.contains(k) && !self.finished.contains(k));
        if pending && !force {
            Resolution::Pending
        } else {
            Resolution::Lookup { in_selection }
        }
    }
}

/// What to do with one reference once resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep it, pointing at this UID.
    Keep(String),
    /// Remove it; `counted` says whether it is reported (see the engine for dry runs).
    Drop { counted: bool },
}

/// Applies one decision per entry of `metadata.ownerReferences` (in order): rewrites kept
/// UIDs, removes dropped entries (and the list when none is left). Returns how many counted
/// drops there were. Entries beyond `decisions` are left as they are.
pub fn rewrite_owner_references(obj: &mut Value, decisions: &[Decision]) -> u64 {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return 0;
    };
    let Some(refs) = meta
        .get_mut("ownerReferences")
        .and_then(Value::as_array_mut)
    else {
        return 0;
    };
    let mut counted = 0;
    let mut index = 0;
    refs.retain_mut(|r| {
        let decision = decisions.get(index);
        index += 1;
        match decision {
            Some(Decision::Keep(uid)) => {
                if let Some(r) = r.as_object_mut() {
                    r.insert("uid".to_string(), Value::String(uid.clone()));
                }
                true
            }
            Some(Decision::Drop { counted: c }) => {
                counted += u64::from(*c);
                false
            }
            None => true,
        }
    });
    if refs.is_empty() {
        meta.remove("ownerReferences");
    }
    counted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner(api_version: &str, kind: &str, name: &str) -> OwnerRef {
        OwnerRef {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    fn key(group: &str, kind: &str, ns: Option<&str>, name: &str) -> OwnerKey {
        OwnerKey {
            group: group.into(),
            kind: kind.into(),
            namespace: ns.map(str::to_string),
            name: name.into(),
        }
    }

    #[test]
    fn references_are_read_in_order_and_malformed_ones_marked() {
        let obj = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "a"},
            {"apiVersion": "v1", "kind": "ConfigMap"},
            {"apiVersion": "example.com/v1", "kind": "Gizmo", "name": "g", "uid": "b"},
        ]}});
        assert_eq!(
            owner_references(&obj),
            vec![
                Some(owner("apps/v1", "ReplicaSet", "web-1")),
                None,
                Some(owner("example.com/v1", "Gizmo", "g")),
            ]
        );
        assert!(owner_references(&json!({"metadata": {"ownerReferences": "x"}})).is_empty());
        assert!(owner_references(&json!({})).is_empty());
    }

    #[test]
    fn owners_are_in_the_same_namespace_or_the_cluster() {
        let o = owner("apps/v1", "Deployment", "web");
        assert_eq!(
            o.candidates(Some("shop")),
            vec![
                key("apps", "Deployment", Some("shop"), "web"),
                key("apps", "Deployment", None, "web"),
            ]
        );
        assert_eq!(
            owner("v1", "Node", "n").candidates(None),
            vec![key("", "Node", None, "n")]
        );
    }

    #[test]
    fn restored_owners_give_their_uid_pending_ones_wait() {
        let deploy = key("apps", "Deployment", Some("copy"), "web");
        let gizmo = key("example.com", "Gizmo", Some("copy"), "g");
        let mut index = OwnerIndex::new([deploy.clone(), gizmo.clone()]);
        let by_deploy = owner("apps/v1", "Deployment", "web");
        // Another version of the same group and kind is the same owner.
        let by_deploy_beta = owner("apps/v1beta2", "Deployment", "web");
        let by_gizmo = owner("example.com/v1", "Gizmo", "g");
        let outside = owner("v1", "Secret", "keeper");

        assert_eq!(
            index.resolve(Some(&by_deploy), Some("copy"), false),
            Resolution::Pending
        );
        assert_eq!(
            index.resolve(Some(&by_deploy), Some("copy"), true),
            Resolution::Lookup { in_selection: true }
        );
        // The same name in another namespace is not this owner.
        assert_eq!(
            index.resolve(Some(&by_deploy), Some("other"), false),
            Resolution::Lookup {
                in_selection: false
            }
        );
        assert_eq!(
            index.resolve(Some(&outside), Some("copy"), false),
            Resolution::Lookup {
                in_selection: false
            }
        );
        assert_eq!(
            index.resolve(None, Some("copy"), false),
            Resolution::Invalid
        );

        index.finish(deploy, Some("new-uid".into()));
        assert_eq!(
            index.resolve(Some(&by_deploy), Some("copy"), false),
            Resolution::Uid("new-uid".into())
        );
        assert_eq!(
            index.resolve(Some(&by_deploy_beta), Some("copy"), false),
            Resolution::Uid("new-uid".into())
        );
        // Finished without a UID (failed, skipped by a rule): look it up in the cluster.
        index.finish(gizmo, None);
        assert_eq!(
            index.resolve(Some(&by_gizmo), Some("copy"), false),
            Resolution::Lookup { in_selection: true }
        );
    }

    #[test]
    fn cluster_scoped_owners_match_namespaced_dependents() {
        let ns = key("", "Namespace", None, "shop");
        let mut index = OwnerIndex::new([ns.clone()]);
        index.finish(ns, Some("ns-uid".into()));
        assert_eq!(
            index.resolve(Some(&owner("v1", "Namespace", "shop")), Some("shop"), false),
            Resolution::Uid("ns-uid".into())
        );
    }

    #[test]
    fn uids_are_rewritten_and_dropped_references_counted() {
        let mut obj = json!({"metadata": {"name": "cm", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "old-1",
             "controller": true, "blockOwnerDeletion": true},
            {"apiVersion": "v1", "kind": "Secret", "name": "gone", "uid": "old-2"},
            {"apiVersion": "v1", "kind": "Secret", "name": "dry", "uid": "old-3"},
        ]}});
        let dropped = rewrite_owner_references(
            &mut obj,
            &[
                Decision::Keep("new-1".into()),
                Decision::Drop { counted: true },
                Decision::Drop { counted: false },
            ],
        );
        assert_eq!(dropped, 1);
        assert_eq!(
            obj["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                    "uid": "new-1", "controller": true, "blockOwnerDeletion": true}])
        );

        let mut obj = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "Secret", "name": "gone", "uid": "old"}]}});
        assert_eq!(
            rewrite_owner_references(&mut obj, &[Decision::Drop { counted: true }]),
            1
        );
        assert_eq!(obj, json!({"metadata": {}}));
        assert_eq!(
            rewrite_owner_references(&mut json!({"metadata": 1}), &[]),
            0
        );
    }
}
