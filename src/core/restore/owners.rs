//! `metadata.ownerReferences` on restore: pointing them at the owners' new UIDs without
//! changing the restore order.
//!
//! A reference names its owner by `apiVersion`, `kind`, `name` and `uid`; the garbage
//! collector follows the UID only, and deletes a dependent whose owner UID does not exist. A
//! restored owner gets a new UID, so every reference is decided on before its object is
//! created ([`OwnerIndex::resolve`], then [`decide`]), and nothing waits: objects are created in
//! restore order ([`super::order`]), which puts dependents first on purpose so that controllers
//! adopt what is already restored (pods before their ReplicaSet, a ReplicaSet before its
//! Deployment) instead of making their own.
//!
//! 1. the owner was restored in this restore (created, overwritten, or found existing and
//!    skipped): the reference gets the UID the API server returned for it;
//! 2. the owner exists in the target cluster (looked up by name, retrying passing errors): its
//!    UID;
//! 3. the owner is in this restore's selection but not restored yet: the reference is removed
//!    from the object for now and remembered ([`HeldReference`]: names and flags only, never
//!    the object); after the last level it is put back with the owner's new UID unless the
//!    object already has a reference to that owner (its controller adopted it meanwhile), and
//!    never as a second controller ([`reattachment`], [`reattach_patch`]). If the owner was not
//!    restored after all, the reference is dropped (and counted) then. A dry run writes
//!    nothing to put back: it leaves such references out without counting them;
//! 4. the owner exists in neither: the reference is dropped (and counted): keeping it would
//!    make the garbage collector delete the restored object.
//!
//! A lookup that keeps failing (anything but a definite 404) never drops a reference: it is
//! held as in 3 when its owner is still to be restored, and the object fails otherwise.
//!
//! An owner of a namespaced object lives in the same (target) namespace or is cluster-scoped;
//! an owner of a cluster-scoped object is cluster-scoped. Owners are matched by API group and
//! kind (not version: any served version has the same UID), namespace and name.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::guard::path_segment_problem;
use super::object::get;
use super::select::SelectedItem;

/// Most references one object keeps to put back later; more are dropped (and counted). Bounds
/// what a restore remembers per object whatever the (untrusted) backup holds.
pub const MAX_HELD_PER_OBJECT: usize = 16;

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

    /// Whether both name the same owner (group, kind and name; any version).
    pub fn same_owner(&self, other: &OwnerRef) -> bool {
        group_of(&self.api_version) == group_of(&other.api_version)
            && self.kind == other.kind
            && self.name == other.name
    }

    /// One entry of `metadata.ownerReferences`; `None` without a string `apiVersion`, `kind`
    /// and `name`, or with a name no object can have (the API server would refuse it; the
    /// name goes into a lookup's request path).
    fn parse(entry: &Value) -> Option<OwnerRef> {
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Some(OwnerRef {
            api_version: field("apiVersion")?,
            kind: field("kind")?,
            name: field("name").filter(|name| path_segment_problem(name).is_none())?,
        })
    }
}

/// The object's `metadata.ownerReferences` entries (empty when there is no list).
fn reference_entries(obj: &Value) -> &[Value] {
    get(obj, &["metadata", "ownerReferences"])
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The object's owner references in order; `None` for an entry without a string
/// `apiVersion`, `kind` and `name` (the API server would refuse it).
pub fn owner_references(obj: &Value) -> Vec<Option<OwnerRef>> {
    reference_entries(obj).iter().map(OwnerRef::parse).collect()
}

/// What this restore knows about one owner reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The owner was restored in this restore: its UID in the target cluster.
    Uid(String),
    /// The owner has no UID from this restore (yet): look it up in the target cluster, then
    /// [`decide`].
    Lookup(Place),
    /// Malformed reference: drop it.
    Invalid,
}

/// Where an owner without a UID stands in this restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The owner is one of the selected objects...
    pub in_selection: bool,
    /// ... and not restored yet (a later level, or in flight beside its dependent).
    pub later: bool,
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

    /// The UID this restore gave `owner` (of an object in `namespace`), if it restored it.
    pub fn uid(&self, owner: &OwnerRef, namespace: Option<&str>) -> Option<&str> {
        owner
            .candidates(namespace)
            .iter()
            .find_map(|k| self.uids.get(k))
            .map(String::as_str)
    }

    /// How to resolve one reference of an object in `namespace`.
    pub fn resolve(&self, owner: Option<&OwnerRef>, namespace: Option<&str>) -> Resolution {
        let Some(owner) = owner else {
            return Resolution::Invalid;
        };
        if let Some(uid) = self.uid(owner, namespace) {
            return Resolution::Uid(uid.to_string());
        }
        let candidates = owner.candidates(namespace);
        let selected = |k: &&OwnerKey| self.selected.contains(*k);
        Resolution::Lookup(Place {
            in_selection: candidates.iter().any(|k| selected(&k)),
            later: candidates
                .iter()
                .filter(selected)
                .any(|k| !self.finished.contains(k)),
        })
    }
}

/// What the target cluster said about an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// It exists, with this UID.
    Found(String),
    /// It definitely does not exist (404, or its type is not served, or a cluster-scoped
    /// object names a namespaced owner).
    Absent,
    /// It could not be read, even after retries: the error.
    Unknown(String),
}

/// What to do with one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep it, pointing at this UID.
    Keep(String),
    /// Remove it now; put it back once its owner is restored (see the module docs).
    Hold,
    /// Remove it; `counted` says whether it is reported (see [`decide`] for dry runs).
    Drop { counted: bool },
}

/// Decides on a reference whose owner this restore has no UID for, given what the target
/// cluster said. `Err` (the lookup error) when that is not known: the object must not be
/// restored with a reference that may be wrong, nor lose one that may be right.
pub fn decide(place: Place, lookup: Lookup, dry_run: bool) -> Result<Decision, String> {
    match lookup {
        Lookup::Found(uid) => Ok(Decision::Keep(uid)),
        // A dry run creates no owner and puts nothing back: the real restore would not drop
        // this reference, so it is not counted.
        _ if dry_run && place.in_selection => Ok(Decision::Drop { counted: false }),
        _ if place.later => Ok(Decision::Hold),
        Lookup::Absent => Ok(Decision::Drop { counted: true }),
        Lookup::Unknown(error) => Err(error),
    }
}

/// A reference removed from an object on create, to be put back once its owner is restored:
/// its names and flags only (never the object; see [`MAX_HELD_PER_OBJECT`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldReference {
    pub owner: OwnerRef,
    pub controller: Option<bool>,
    pub block_owner_deletion: Option<bool>,
}

impl HeldReference {
    fn parse(entry: &Value) -> Option<HeldReference> {
        let flag = |name: &str| entry.get(name).and_then(Value::as_bool);
        Some(HeldReference {
            owner: OwnerRef::parse(entry)?,
            controller: flag("controller"),
            block_owner_deletion: flag("blockOwnerDeletion"),
        })
    }

    /// The entry to put back, pointing at `uid`; `may_control`: the object has no controller
    /// reference (it can have one at most).
    fn entry(&self, uid: &str, may_control: bool) -> Value {
        let mut entry = Map::new();
        entry.insert("apiVersion".into(), json!(self.owner.api_version));
        entry.insert("kind".into(), json!(self.owner.kind));
        entry.insert("name".into(), json!(self.owner.name));
        entry.insert("uid".into(), json!(uid));
        match self.controller {
            Some(true) if !may_control => {}
            Some(controller) => {
                entry.insert("controller".into(), json!(controller));
            }
            None => {}
        }
        if let Some(block) = self.block_owner_deletion {
            entry.insert("blockOwnerDeletion".into(), json!(block));
        }
        Value::Object(entry)
    }
}

/// What [`rewrite_owner_references`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// References dropped and reported.
    pub dropped: u64,
    /// References removed to put back later, in order.
    pub held: Vec<HeldReference>,
}

/// Applies one decision per entry of `metadata.ownerReferences` (in order): rewrites kept
/// UIDs, removes dropped and held entries (and the list when none is left). Entries beyond
/// `decisions` are left as they are. A held reference to an owner already held, or beyond
/// [`MAX_HELD_PER_OBJECT`], is dropped and counted.
pub fn rewrite_owner_references(obj: &mut Value, decisions: &[Decision]) -> Rewritten {
    let mut out = Rewritten::default();
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return out;
    };
    let Some(refs) = meta
        .get_mut("ownerReferences")
        .and_then(Value::as_array_mut)
    else {
        return out;
    };
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
            Some(Decision::Hold) => {
                match HeldReference::parse(r) {
                    Some(held)
                        if out.held.len() < MAX_HELD_PER_OBJECT
                            && !out.held.iter().any(|h| h.owner.same_owner(&held.owner)) =>
                    {
                        out.held.push(held);
                    }
                    _ => out.dropped += 1,
                }
                false
            }
            Some(Decision::Drop { counted }) => {
                out.dropped += u64::from(*counted);
                false
            }
            None => true,
        }
    });
    if refs.is_empty() {
        meta.remove("ownerReferences");
    }
    out
}

/// What to do with an object's held references after the restore's last level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reattachment {
    /// Entries to append to `metadata.ownerReferences`.
    pub add: Vec<Value>,
    /// References the object has again already: the owner's controller adopted it.
    pub present: u64,
    /// References whose owner was not restored: dropped.
    pub lost: u64,
}

/// Which held references to put back on `live` (the object as it is now). `held` pairs each
/// with its owner's UID in the target cluster (`None`: the owner was not restored). An owner
/// the object already refers to (same group, kind and name) is left alone; a controller
/// reference is put back as one only if the object has no controller now.
pub fn reattachment(live: &Value, held: &[(HeldReference, Option<String>)]) -> Reattachment {
    let entries = reference_entries(live);
    let owners: Vec<OwnerRef> = entries.iter().filter_map(OwnerRef::parse).collect();
    let mut has_controller = entries
        .iter()
        .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true));
    let mut out = Reattachment::default();
    for (reference, uid) in held {
        let Some(uid) = uid else {
            out.lost += 1;
            continue;
        };
        if owners.iter().any(|o| o.same_owner(&reference.owner)) {
            out.present += 1;
            continue;
        }
        out.add.push(reference.entry(uid, !has_controller));
        has_controller |= reference.controller == Some(true);
    }
    out
}

/// A JSON Patch appending `add` to `live`'s references, applied only while the object is at
/// the resourceVersion `live` was read at (a controller may adopt it at the same moment).
/// `None` when `live` has no resourceVersion.
pub fn reattach_patch(live: &Value, add: &[Value]) -> Option<Value> {
    let version = get(live, &["metadata", "resourceVersion"]).and_then(Value::as_str)?;
    let mut ops = vec![json!({ "op": "test", "path": "/metadata/resourceVersion",
                               "value": version })];
    if get(live, &["metadata", "ownerReferences"]).is_some_and(Value::is_array) {
        ops.extend(
            add.iter()
                .map(|r| json!({ "op": "add", "path": "/metadata/ownerReferences/-", "value": r })),
        );
    } else {
        ops.push(json!({ "op": "add", "path": "/metadata/ownerReferences", "value": add }));
    }
    Some(Value::Array(ops))
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

    fn held(api_version: &str, kind: &str, name: &str, controller: bool) -> HeldReference {
        HeldReference {
            owner: owner(api_version, kind, name),
            controller: controller.then_some(true),
            block_owner_deletion: controller.then_some(true),
        }
    }

    const LATER: Place = Place {
        in_selection: true,
        later: true,
    };
    const DONE: Place = Place {
        in_selection: true,
        later: false,
    };
    const OUTSIDE: Place = Place {
        in_selection: false,
        later: false,
    };

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
        // Names that would change a lookup's request path are malformed too.
        let tricks = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "../secrets/x"},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": ".."},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "a%2Fb"},
        ]}});
        assert_eq!(owner_references(&tricks), vec![None, None, None]);
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
        assert!(o.same_owner(&owner("apps/v1beta2", "Deployment", "web")));
        assert!(!o.same_owner(&owner("extensions/v1beta1", "Deployment", "web")));
        assert!(!o.same_owner(&owner("apps/v1", "Deployment", "api")));
    }

    #[test]
    fn restored_owners_give_their_uid_others_are_looked_up() {
        let deploy = key("apps", "Deployment", Some("copy"), "web");
        let gizmo = key("example.com", "Gizmo", Some("copy"), "g");
        let mut index = OwnerIndex::new([deploy.clone(), gizmo.clone()]);
        let by_deploy = owner("apps/v1", "Deployment", "web");
        // Another version of the same group and kind is the same owner.
        let by_deploy_beta = owner("apps/v1beta2", "Deployment", "web");
        let by_gizmo = owner("example.com/v1", "Gizmo", "g");
        let outside = owner("v1", "Secret", "keeper");

        assert_eq!(
            index.resolve(Some(&by_deploy), Some("copy")),
            Resolution::Lookup(LATER)
        );
        // The same name in another namespace is not this owner.
        assert_eq!(
            index.resolve(Some(&by_deploy), Some("other")),
            Resolution::Lookup(OUTSIDE)
        );
        assert_eq!(
            index.resolve(Some(&outside), Some("copy")),
            Resolution::Lookup(OUTSIDE)
        );
        assert_eq!(index.resolve(None, Some("copy")), Resolution::Invalid);

        index.finish(deploy, Some("new-uid".into()));
        assert_eq!(
            index.resolve(Some(&by_deploy), Some("copy")),
            Resolution::Uid("new-uid".into())
        );
        assert_eq!(
            index.resolve(Some(&by_deploy_beta), Some("copy")),
            Resolution::Uid("new-uid".into())
        );
        assert_eq!(index.uid(&by_deploy, Some("copy")), Some("new-uid"));
        // Finished without a UID (failed, skipped by a rule): look it up in the cluster.
        index.finish(gizmo, None);
        assert_eq!(
            index.resolve(Some(&by_gizmo), Some("copy")),
            Resolution::Lookup(DONE)
        );
        assert_eq!(index.uid(&by_gizmo, Some("copy")), None);
    }

    #[test]
    fn cluster_scoped_owners_match_namespaced_dependents() {
        let ns = key("", "Namespace", None, "shop");
        let mut index = OwnerIndex::new([ns.clone()]);
        index.finish(ns, Some("ns-uid".into()));
        assert_eq!(
            index.resolve(Some(&owner("v1", "Namespace", "shop")), Some("shop")),
            Resolution::Uid("ns-uid".into())
        );
    }

    #[test]
    fn an_existing_owner_is_kept_a_later_one_held_a_missing_one_dropped() {
        let found = || Lookup::Found("live".into());
        let unknown = || Lookup::Unknown("connection refused".into());
        for place in [LATER, DONE, OUTSIDE] {
            for dry_run in [false, true] {
                assert_eq!(
                    decide(place, found(), dry_run),
                    Ok(Decision::Keep("live".into()))
                );
            }
        }
        // Restored later: held (never dropped for a failed lookup either).
        assert_eq!(decide(LATER, Lookup::Absent, false), Ok(Decision::Hold));
        assert_eq!(decide(LATER, unknown(), false), Ok(Decision::Hold));
        // Nowhere: dropped and counted.
        assert_eq!(
            decide(OUTSIDE, Lookup::Absent, false),
            Ok(Decision::Drop { counted: true })
        );
        assert_eq!(
            decide(DONE, Lookup::Absent, false),
            Ok(Decision::Drop { counted: true })
        );
        // Unknown and not to be restored: neither kept nor dropped.
        assert_eq!(
            decide(OUTSIDE, unknown(), false),
            Err("connection refused".into())
        );
        assert_eq!(
            decide(DONE, unknown(), false),
            Err("connection refused".into())
        );
        // A dry run holds nothing and does not count owners it would restore.
        for place in [LATER, DONE] {
            for lookup in [Lookup::Absent, unknown()] {
                assert_eq!(
                    decide(place, lookup, true),
                    Ok(Decision::Drop { counted: false })
                );
            }
        }
        assert_eq!(
            decide(OUTSIDE, Lookup::Absent, true),
            Ok(Decision::Drop { counted: true })
        );
        assert!(decide(OUTSIDE, unknown(), true).is_err());
    }

    #[test]
    fn uids_are_rewritten_held_references_removed_dropped_ones_counted() {
        let mut obj = json!({"metadata": {"name": "cm", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "old-1",
             "controller": true, "blockOwnerDeletion": true},
            {"apiVersion": "v1", "kind": "Secret", "name": "gone", "uid": "old-2"},
            {"apiVersion": "v1", "kind": "Secret", "name": "dry", "uid": "old-3"},
            {"apiVersion": "example.com/v1", "kind": "Gizmo", "name": "g", "uid": "old-4",
             "controller": false},
        ]}});
        let out = rewrite_owner_references(
            &mut obj,
            &[
                Decision::Keep("new-1".into()),
                Decision::Drop { counted: true },
                Decision::Drop { counted: false },
                Decision::Hold,
            ],
        );
        assert_eq!(
            out,
            Rewritten {
                dropped: 1,
                held: vec![HeldReference {
                    owner: owner("example.com/v1", "Gizmo", "g"),
                    controller: Some(false),
                    block_owner_deletion: None,
                }],
            }
        );
        assert_eq!(
            obj["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                    "uid": "new-1", "controller": true, "blockOwnerDeletion": true}])
        );

        let mut obj = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "Secret", "name": "gone", "uid": "old"}]}});
        assert_eq!(
            rewrite_owner_references(&mut obj, &[Decision::Drop { counted: true }]).dropped,
            1
        );
        assert_eq!(obj, json!({"metadata": {}}));
        assert_eq!(
            rewrite_owner_references(&mut json!({"metadata": 1}), &[]),
            Rewritten::default()
        );
    }

    #[test]
    fn held_references_are_bounded_per_object() {
        let refs: Vec<Value> = (0..MAX_HELD_PER_OBJECT + 3)
            .map(|i| json!({"apiVersion": "v1", "kind": "Secret", "name": format!("s{i}")}))
            // The same owner twice is held once.
            .chain([json!({"apiVersion": "v1", "kind": "Secret", "name": "s0"})])
            .collect();
        let decisions = vec![Decision::Hold; refs.len()];
        let mut obj = json!({"metadata": {"ownerReferences": refs}});
        let out = rewrite_owner_references(&mut obj, &decisions);
        assert_eq!(out.held.len(), MAX_HELD_PER_OBJECT);
        assert_eq!(out.dropped, 4);
        assert_eq!(obj, json!({"metadata": {}}));
    }

    #[test]
    fn adopted_objects_are_left_alone_the_others_get_their_references_back() {
        let rs = held("apps/v1", "ReplicaSet", "web-5d9", true);
        let gizmo = held("example.com/v1", "Gizmo", "g", false);
        let failed = held("v1", "Secret", "never", false);
        let uids = [
            (rs.clone(), Some("rs-uid".to_string())),
            (gizmo.clone(), Some("g-uid".to_string())),
            (failed, None),
        ];

        // Nothing adopted it: every restored owner is put back, the controller as controller.
        let live = json!({"metadata": {"resourceVersion": "7"}});
        let out = reattachment(&live, &uids);
        assert_eq!(
            out,
            Reattachment {
                add: vec![
                    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9",
                           "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}),
                    json!({"apiVersion": "example.com/v1", "kind": "Gizmo", "name": "g",
                           "uid": "g-uid"}),
                ],
                present: 0,
                lost: 1,
            }
        );
        assert_eq!(
            reattach_patch(&live, &out.add),
            Some(json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
                {"op": "add", "path": "/metadata/ownerReferences", "value": out.add},
            ]))
        );

        // The ReplicaSet controller adopted it meanwhile: that reference is there already.
        let adopted = json!({"metadata": {"resourceVersion": "9", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9", "uid": "rs-uid",
             "controller": true, "blockOwnerDeletion": true}]}});
        let out = reattachment(&adopted, &uids);
        assert_eq!(out.present, 1);
        assert_eq!(out.lost, 1);
        assert_eq!(
            out.add,
            vec![
                json!({"apiVersion": "example.com/v1", "kind": "Gizmo", "name": "g",
                        "uid": "g-uid"})
            ]
        );
        assert_eq!(
            reattach_patch(&adopted, &out.add),
            Some(json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "9"},
                {"op": "add", "path": "/metadata/ownerReferences/-", "value": out.add[0]},
            ]))
        );

        // Another controller claimed it: the reference comes back, but not as controller.
        let claimed = json!({"metadata": {"resourceVersion": "3", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "other", "uid": "o",
             "controller": true}]}});
        let out = reattachment(&claimed, &uids[..1]);
        assert_eq!(
            out.add,
            vec![
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9",
                        "uid": "rs-uid", "blockOwnerDeletion": true})
            ]
        );
        // Two held controllers (a malformed backup): only the first becomes the controller.
        let two = [
            (rs, Some("rs-uid".to_string())),
            (
                held("apps/v1", "StatefulSet", "db", true),
                Some("ss-uid".to_string()),
            ),
        ];
        let out = reattachment(&live, &two);
        assert_eq!(out.add[0]["controller"], json!(true));
        assert_eq!(out.add[1].get("controller"), None);

        // Nothing held with a UID: nothing to add.
        let out = reattachment(&live, &[(gizmo, None)]);
        assert!(out.add.is_empty());
        assert_eq!(out.lost, 1);
        assert_eq!(reattach_patch(&json!({"metadata": {}}), &[]), None);
    }
}
