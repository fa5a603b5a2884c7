//! Which stored objects a Restore takes.
//!
//! Two stages, because some criteria are inside the objects:
//!
//! 1. [`select`], from the manifest alone (before downloading anything): `resourceTypes`,
//!    `skipClusterResources` and the namespaces ([`NamespaceMap`]). The result lists the
//!    entries in restore order ([`super::order`]) with their target namespace.
//! 2. [`RestoreSelection::decide_object`], per downloaded object: `labelSelector` and the
//!    PersistentVolume rule below.
//!
//! # `resourceTypes`
//!
//! Empty: every type of the backup. Otherwise each name is resolved with the type catalogue's
//! resolver ([`crate::core::types::catalog`]) against the built-in types and the types the
//! backup contains (its `resourceTypes` and the types of its objects), as `kubectl` would:
//! the type folder (`deployments`, `certificates.cert-manager.io`), the plural, the singular,
//! the kind, `plural.group` / `kind.group`, `plural.version.group`, and short names — those of
//! built-in types, and those the backup's stored CRDs declare once they are added
//! ([`TypeCatalog::add_crd`]; the engine reads the stored CRDs when a name does not resolve
//! without them, [`needs_stored_crds`]). A bare name matching a built-in type and a custom one
//! means the built-in type; matching several custom types is an error asking for
//! `plural.group`.
//!
//! A name that resolves to a type the backup does not contain restores nothing and is
//! reported in [`RestoreSelection::absent_types`] (a note in the Restore's message, not an
//! error: a Restore may name types a given backup lacks). A name that matches nothing is an
//! error naming it and listing the types the backup contains.
//!
//! Selecting a custom resource type also selects its CustomResourceDefinition from the
//! backup (as the backup stores them together); `customresourcedefinitions` selects all.
//!
//! # Scope
//!
//! * Namespaced objects are taken when their namespace is restored ([`NamespaceMap`]).
//! * `Namespace` objects belong to their namespace, not to the cluster-scoped objects: taken
//!   (under the mapped name) when that namespace is restored, also with
//!   `skipClusterResources` — their labels (e.g. Pod Security admission) matter to what runs
//!   in them. Whether a missing namespace may be created is the engine's `createNamespaces`
//!   decision.
//! * Other cluster-scoped objects are left out with `skipClusterResources` (then also the
//!   CRDs: a custom resource whose CRD is missing in the target fails with that reason).
//!
//! # What the bucket cannot widen ([`super::guard`])
//!
//! Every entry the above takes then passes the guard: an entry whose names could change a
//! request path fails; cluster-scoped objects whose type `resourceTypes` does not name,
//! objects of `kube-*` namespaces the target does not name, and sensitive objects without
//! `includeSensitiveResources` are skipped. Those are in [`RestoreSelection::guarded`] with
//! the reason, for the status lists; they are no items, so nothing is created for them (not
//! even their namespace) and no owner waits for them.
//!
//! # Per object ([`RestoreSelection::decide_object`])
//!
//! * `labelSelector` applies to every object except CustomResourceDefinitions and `Namespace`
//!   objects, which are the schema and the container of the selected objects and rarely carry
//!   application labels. Unselected objects are not restored and not reported as skipped.
//! * A `PersistentVolume` bound (`spec.claimRef`) to a claim in a namespace that this restore
//!   does not restore is skipped: it would stay reserved for a claim that never comes.
//! * Sensitive by content ([`Guard::sensitive_object`]): bindings of `cluster-admin` or a
//!   `system:` role, aggregated ClusterRoles, skipped without `includeSensitiveResources`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::core::{Selector, SelectorExt};
use serde_json::Value;

use super::guard::{Guard, Verdict};
use super::mapping::NamespaceMap;
use super::object::get;
use super::order::{CRD_TYPE_DIR, NAMESPACE_TYPE_DIR, entry_sort_key};
use super::status::{Action, ObjectRef};
use crate::api::{RestoreOptions, RestoreTarget};
use crate::core::manifest::{Manifest, ManifestEntry};
use crate::core::selector::{self, SelectorError};
use crate::core::types::catalog::{Resolution, TypeCatalog};
use crate::core::types::is_custom_type;

/// Why the selection cannot be made. Every bad `resourceTypes` entry is reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error(
        "resourceTypes: {} {} no type in this backup ({})",
        names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
        if names.len() == 1 { "matches" } else { "match" },
        contents(available)
    )]
    UnknownResourceTypes {
        names: Vec<String>,
        /// The type folders of the backup.
        available: Vec<String>,
    },
    #[error(
        "resourceTypes: {name:?} matches several types of this backup ({}); use plural.group",
        candidates.join(", ")
    )]
    AmbiguousResourceType {
        name: String,
        candidates: Vec<String>,
    },
    #[error(transparent)]
    LabelSelector(#[from] SelectorError),
    /// Several of the above.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Multiple(Vec<SelectError>),
}

fn contents(available: &[String]) -> String {
    if available.is_empty() {
        "it contains no objects".to_string()
    } else {
        format!("it contains: {}", available.join(", "))
    }
}

// ---------------------------------------------------------------------------------------------
// Type names
// ---------------------------------------------------------------------------------------------

/// What a `resourceTypes` entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeResolution {
    /// A type of the backup (its `type_dir`).
    InBackup(String),
    /// A type the backup does not contain (its `type_dir`).
    NotInBackup(String),
    /// Several types (their `type_dir`s).
    Ambiguous(Vec<String>),
    Unknown,
}

/// Resolves one `resourceTypes` entry against a backup's catalogue (see the module docs).
pub fn resolve_type(catalog: &TypeCatalog, name: &str) -> TypeResolution {
    match catalog.resolve(name, |_| true) {
        Resolution::Found { ty, .. } if ty.stored => TypeResolution::InBackup(ty.type_dir.clone()),
        Resolution::Found { ty, .. } => TypeResolution::NotInBackup(ty.type_dir.clone()),
        Resolution::Ambiguous(types) => {
            let mut names: Vec<String> = types.iter().map(|t| t.type_dir.clone()).collect();
            names.sort();
            names.dedup();
            TypeResolution::Ambiguous(names)
        }
        Resolution::Unknown => TypeResolution::Unknown,
    }
}

/// Whether some `resourceTypes` entry matches nothing yet, so the names the backup's stored
/// CRDs declare (short names of custom resources) are worth reading.
pub fn needs_stored_crds(catalog: &TypeCatalog, target: &RestoreTarget) -> bool {
    target
        .resource_types
        .iter()
        .any(|name| resolve_type(catalog, name) == TypeResolution::Unknown)
}

// ---------------------------------------------------------------------------------------------
// Selection
// ---------------------------------------------------------------------------------------------

/// One stored object the Restore takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedItem<'m> {
    pub entry: &'m ManifestEntry,
    /// `metadata.namespace` after mapping; `None` for cluster-scoped objects.
    pub namespace: Option<Arc<str>>,
    /// For a `Namespace` object restored under another name: that name.
    pub renamed_to: Option<Arc<str>>,
}

impl SelectedItem<'_> {
    /// The name the object is restored under.
    pub fn target_name(&self) -> &str {
        self.renamed_to.as_deref().unwrap_or(&self.entry.name)
    }

    /// The namespace the object is restored into (`None`: cluster-scoped).
    pub fn target_namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// How the object appears in status lists (target name and namespace).
    pub fn object_ref(&self) -> ObjectRef<'_> {
        ObjectRef {
            api_version: &self.entry.api_version,
            kind: &self.entry.kind,
            type_dir: &self.entry.resource,
            namespace: self.target_namespace(),
            name: self.target_name(),
        }
    }
}

/// A selected entry the guard refuses ([`super::guard`]): reported, never restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarded<'m> {
    pub item: SelectedItem<'m>,
    /// [`Action::Skipped`] or [`Action::Failed`].
    pub action: Action,
    /// The skip's reason or the failure's error.
    pub message: String,
}

/// Entries left out by [`select`], by cause (for the Restore's message; they are not
/// "skipped" objects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Excluded {
    /// Type not in `resourceTypes`.
    pub by_type: u64,
    /// Namespace not restored.
    pub by_namespace: u64,
    /// Cluster-scoped, with `skipClusterResources`.
    pub cluster_scoped: u64,
}

/// What a Restore takes from a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSelection<'m> {
    /// In restore order.
    pub items: Vec<SelectedItem<'m>>,
    /// The resolved `resourceTypes` (type folders); `None` means every type.
    pub types: Option<BTreeSet<String>>,
    /// `resourceTypes` entries naming a type the backup does not contain: nothing to restore
    /// for them (a note, not an error; see [`RestoreSelection::notes`]).
    pub absent_types: Vec<String>,
    /// `namespaceMapping` keys that are no namespace of the backup (likely typos).
    pub unused_mappings: Vec<String>,
    /// Every namespace objects are restored into (including renamed Namespace objects).
    pub target_namespaces: BTreeSet<String>,
    /// `None` when there is no selector or it selects everything.
    pub label_selector: Option<Selector>,
    pub excluded: Excluded,
    /// Entries the target selects but the guard refuses, in restore order.
    pub guarded: Vec<Guarded<'m>>,
    /// Source namespaces whose objects are restored (for the PersistentVolume rule).
    restored_sources: BTreeSet<String>,
    guard: Guard,
}

/// What to do with one downloaded object (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectDecision {
    Restore,
    /// Left out by `labelSelector`; not reported per object.
    NotSelected,
    /// Not restored; the reason is user-facing (status `skippedResources`).
    Skip(&'static str),
}

const PV_CLAIM_NOT_RESTORED: &str = "bound to a claim in a namespace this restore does not restore";

/// Decides from the manifest which entries a Restore takes (see the module docs).
pub fn select<'m>(
    manifest: &'m Manifest,
    catalog: &TypeCatalog,
    target: &RestoreTarget,
    options: &RestoreOptions,
    map: &NamespaceMap,
) -> Result<RestoreSelection<'m>, SelectError> {
    let mut errors = Vec::new();
    let label_selector = match target.label_selector.as_ref().map(selector::parse) {
        Some(Ok(s)) if !s.selects_all() => Some(s),
        Some(Err(e)) => {
            errors.push(SelectError::LabelSelector(e));
            None
        }
        _ => None,
    };

    let mut absent_types = Vec::new();
    let types = if target.resource_types.is_empty() {
        None
    } else {
        let mut types = BTreeSet::new();
        let mut unknown = Vec::new();
        for name in &target.resource_types {
            match resolve_type(catalog, name) {
                TypeResolution::InBackup(t) => {
                    types.insert(t);
                }
                TypeResolution::NotInBackup(t) => {
                    if !absent_types.contains(&t) {
                        absent_types.push(t);
                    }
                }
                TypeResolution::Ambiguous(candidates) => {
                    errors.push(SelectError::AmbiguousResourceType {
                        name: name.clone(),
                        candidates,
                    });
                }
                TypeResolution::Unknown => unknown.push(name.clone()),
            }
        }
        if !unknown.is_empty() {
            errors.insert(
                0,
                SelectError::UnknownResourceTypes {
                    names: unknown,
                    available: catalog.stored_types(),
                },
            );
        }
        Some(types)
    };
    match errors.len() {
        0 => {}
        1 => return Err(errors.remove(0)),
        _ => return Err(SelectError::Multiple(errors)),
    }

    // CRDs of the selected custom resources come along (their CRD's name is the type folder).
    let crds_of_selected: BTreeSet<&str> = types
        .iter()
        .flatten()
        .filter(|t| is_custom_type(t))
        .map(String::as_str)
        .collect();
    let type_selected = |e: &ManifestEntry| match &types {
        None => true,
        Some(types) => {
            types.contains(&*e.resource)
                || (&*e.resource == CRD_TYPE_DIR && crds_of_selected.contains(e.name.as_str()))
        }
    };

    let guard = Guard::new(target, options);
    let mut selection = RestoreSelection {
        items: Vec::new(),
        types: None,
        absent_types,
        unused_mappings: map
            .unused_mappings(&manifest.namespaces)
            .into_iter()
            .map(str::to_string)
            .collect(),
        target_namespaces: BTreeSet::new(),
        label_selector,
        excluded: Excluded::default(),
        guarded: Vec::new(),
        restored_sources: BTreeSet::new(),
        guard,
    };
    let mut targets: BTreeMap<String, Arc<str>> = BTreeMap::new();
    let mut target_arc = |ns: &str| -> Arc<str> {
        if let Some(a) = targets.get(ns) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(ns);
        targets.insert(ns.to_string(), a.clone());
        a
    };

    for ns in &manifest.namespaces {
        if let Some(to) = map.target_ref(ns)
            && selection.guard.allows_namespaces(ns, to)
        {
            selection.restored_sources.insert(ns.clone());
        }
    }
    // With `resourceTypes`, whatever passes the type filter was named.
    let type_named = types.is_some();
    for entry in &manifest.objects {
        if !type_selected(entry) {
            selection.excluded.by_type += 1;
            continue;
        }
        // The namespaces the guard's system-namespace rule looks at: source and target.
        let (item, namespaces) = match (entry.namespace.as_deref(), &*entry.resource) {
            (Some(ns), _) => match map.target_ref(ns) {
                Some(to) => (
                    SelectedItem {
                        entry,
                        namespace: Some(target_arc(to)),
                        renamed_to: None,
                    },
                    Some((ns, to)),
                ),
                None => {
                    selection.excluded.by_namespace += 1;
                    continue;
                }
            },
            (None, NAMESPACE_TYPE_DIR) => match map.target_ref(&entry.name) {
                Some(to) => (
                    SelectedItem {
                        entry,
                        namespace: None,
                        renamed_to: (to != entry.name).then(|| target_arc(to)),
                    },
                    Some((entry.name.as_str(), to)),
                ),
                None => {
                    selection.excluded.by_namespace += 1;
                    continue;
                }
            },
            (None, _) if options.skip_cluster_resources => {
                selection.excluded.cluster_scoped += 1;
                continue;
            }
            (None, _) => (
                SelectedItem {
                    entry,
                    namespace: None,
                    renamed_to: None,
                },
                None,
            ),
        };
        let (action, message) = match selection.guard.check(entry, namespaces, type_named) {
            Verdict::Restore => {
                if let Some((source, _)) = namespaces.filter(|_| entry.namespace.is_some()) {
                    selection.restored_sources.insert(source.to_string());
                }
                selection.items.push(item);
                continue;
            }
            Verdict::Skip(reason) => (Action::Skipped, reason),
            Verdict::Fail(error) => (Action::Failed, error),
        };
        selection.guarded.push(Guarded {
            item,
            action,
            message,
        });
    }
    selection
        .items
        .sort_by_cached_key(|item| entry_sort_key(item.entry));
    selection
        .guarded
        .sort_by_cached_key(|g| entry_sort_key(g.item.entry));
    // Only where something is restored: a refused object's namespace is not created.
    for item in &selection.items {
        let target_namespace = match &*item.entry.resource {
            NAMESPACE_TYPE_DIR if item.entry.namespace.is_none() => item.target_name(),
            _ => match item.target_namespace() {
                Some(ns) => ns,
                None => continue,
            },
        };
        if !selection.target_namespaces.contains(target_namespace) {
            selection
                .target_namespaces
                .insert(target_namespace.to_string());
        }
    }
    selection.types = types;
    Ok(selection)
}

impl RestoreSelection<'_> {
    /// Parts of the target that select nothing in this backup, as sentences for the Restore's
    /// message: likely typos, or types a shared Restore names that this backup lacks.
    pub fn notes(&self) -> Vec<String> {
        let quoted = |names: &[String]| {
            names
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut notes = Vec::new();
        if !self.absent_types.is_empty() {
            notes.push(format!(
                "nothing to restore for resourceTypes {} (not in this backup)",
                quoted(&self.absent_types)
            ));
        }
        if !self.unused_mappings.is_empty() {
            notes.push(format!(
                "namespaceMapping {} {} no namespace of this backup",
                quoted(&self.unused_mappings),
                if self.unused_mappings.len() == 1 {
                    "names"
                } else {
                    "name"
                }
            ));
        }
        notes
    }

    /// Per-object criteria, on the object as stored (before cleaning and mapping).
    pub fn decide_object(&self, entry: &ManifestEntry, obj: &Value) -> ObjectDecision {
        let decision = self.decide_selected(entry, obj);
        match self.guard.sensitive_object(obj) {
            Some(reason) if decision == ObjectDecision::Restore => ObjectDecision::Skip(reason),
            _ => decision,
        }
    }

    /// `labelSelector` and the PersistentVolume rule.
    fn decide_selected(&self, entry: &ManifestEntry, obj: &Value) -> ObjectDecision {
        let exempt = matches!(&*entry.resource, CRD_TYPE_DIR | NAMESPACE_TYPE_DIR);
        if let Some(sel) = &self.label_selector
            && !exempt
            && !labels_match(sel, obj)
        {
            return ObjectDecision::NotSelected;
        }
        if &*entry.resource == "persistentvolumes"
            && let Some(ns) = get(obj, &["spec", "claimRef", "namespace"]).and_then(Value::as_str)
            && !self.restored_sources.contains(ns)
        {
            return ObjectDecision::Skip(PV_CLAIM_NOT_RESTORED);
        }
        ObjectDecision::Restore
    }
}

/// Whether the object's `metadata.labels` satisfy `sel`. Labels that are not strings (only in
/// corrupt data) count as absent.
pub fn labels_match(sel: &Selector, obj: &Value) -> bool {
    let labels: BTreeMap<String, String> = get(obj, &["metadata", "labels"])
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    sel.matches(&labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConflictResolution;
    use crate::core::manifest::{
        BackupRef, ClusterInfo, OBJECTS_FORMAT_VERSION, RESULT_COMPLETED, Sha256Digest, TOOL,
    };
    use crate::core::restore::guard;
    use chrono::{TimeZone, Utc};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
    use serde_json::json;

    fn entry(
        api_version: &str,
        kind: &str,
        resource: &str,
        ns: Option<&str>,
        name: &str,
    ) -> ManifestEntry {
        ManifestEntry {
            key: crate::core::layout::relative_object_key(ns, resource, name),
            api_version: Arc::from(api_version),
            kind: Arc::from(kind),
            resource: Arc::from(resource),
            namespace: ns.map(Arc::from),
            name: name.into(),
            size: 2,
            sha256: Sha256Digest::of(b"{}"),
            location: None,
        }
    }

    /// A backup of `shop` and `default` with a custom resource, RBAC, a PV and a Namespace.
    fn manifest() -> Manifest {
        let objects = vec![
            entry("apps/v1", "Deployment", "deployments", Some("shop"), "web"),
            entry("v1", "Service", "services", Some("shop"), "web"),
            entry("v1", "ConfigMap", "configmaps", Some("shop"), "cfg"),
            entry("v1", "ConfigMap", "configmaps", Some("default"), "cfg"),
            entry("v1", "Secret", "secrets", Some("default"), "s"),
            entry(
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                "rolebindings",
                Some("shop"),
                "read",
            ),
            entry(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                "clusterroles",
                None,
                "widget-viewer",
            ),
            entry("v1", "PersistentVolume", "persistentvolumes", None, "pv-1"),
            entry("v1", "Namespace", "namespaces", None, "shop"),
            entry("v1", "Namespace", "namespaces", None, "default"),
            entry(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                CRD_TYPE_DIR,
                None,
                "widgets.acme.io",
            ),
            entry(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                CRD_TYPE_DIR,
                None,
                "gadgets.example.org",
            ),
            entry(
                "acme.io/v1",
                "Widget",
                "widgets.acme.io",
                Some("shop"),
                "w1",
            ),
            entry(
                "example.org/v1beta1",
                "Gadget",
                "gadgets.example.org",
                Some("default"),
                "g1",
            ),
            entry(
                "other.io/v1",
                "Widget",
                "widgets.other.io",
                Some("default"),
                "w2",
            ),
        ];
        let t = Utc.with_ymd_and_hms(2025, 1, 21, 15, 30, 0).unwrap();
        Manifest {
            format_version: OBJECTS_FORMAT_VERSION,
            tool: TOOL.into(),
            backup: BackupRef {
                namespace: "default".into(),
                name: "b".into(),
                uid: None,
            },
            spec: crate::core::manifest::RecordedSpec::new(&json!({})),
            cluster: ClusterInfo {
                server_version: "v1.36.0".into(),
                platform: None,
            },
            backup_path: "backups/default/b/2025-01-21T15-30-00Z".into(),
            started_at: t,
            completed_at: t,
            result: RESULT_COMPLETED.into(),
            namespaces: vec!["default".into(), "shop".into()],
            resource_types: [
                "deployments",
                "services",
                "configmaps",
                "secrets",
                "persistentvolumeclaims",
                "ingresses",
                "rolebindings",
                "clusterroles",
                "persistentvolumes",
                "namespaces",
                "widgets.acme.io",
                "gadgets.example.org",
                "widgets.other.io",
                CRD_TYPE_DIR,
            ]
            .map(String::from)
            .to_vec(),
            counts: BTreeMap::new(),
            total_objects: objects.len() as u64,
            total_bytes: 0,
            packed: None,
            objects,
            errors: vec![],
            encryption: None,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    struct Case {
        target: RestoreTarget,
        options: RestoreOptions,
    }

    impl Case {
        fn new() -> Case {
            Case {
                target: RestoreTarget::default(),
                options: RestoreOptions::default(),
            }
        }
        fn types(mut self, t: &[&str]) -> Case {
            self.target.resource_types = strings(t);
            self
        }
        fn types_also(mut self, t: &[&str]) -> Case {
            self.target.resource_types.extend(strings(t));
            self
        }
        fn sensitive(mut self) -> Case {
            self.options.include_sensitive_resources = true;
            self
        }
        fn namespaces(mut self, n: &[&str]) -> Case {
            self.target.namespaces = strings(n);
            self
        }
        fn mapping(mut self, m: &[(&str, &str)]) -> Case {
            self.target.namespace_mapping = m
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            self
        }
        fn skip_cluster(mut self) -> Case {
            self.options.skip_cluster_resources = true;
            self
        }
        fn run<'m>(&self, m: &'m Manifest) -> Result<RestoreSelection<'m>, SelectError> {
            let map = NamespaceMap::new(&self.target, &m.namespaces).unwrap();
            select(
                m,
                &TypeCatalog::from_manifest(m),
                &self.target,
                &self.options,
                &map,
            )
        }
    }

    /// `<action> <type> <target name>: <message>` of every guarded entry, in order.
    fn guarded(sel: &RestoreSelection<'_>) -> Vec<String> {
        sel.guarded
            .iter()
            .map(|g| {
                format!(
                    "{} {} {}: {}",
                    g.action.as_str(),
                    g.item.entry.resource,
                    g.item.target_name(),
                    g.message
                )
            })
            .collect()
    }

    /// `(target namespace or "-", type, target name)` of every item, in order.
    fn items(sel: &RestoreSelection<'_>) -> Vec<String> {
        sel.items
            .iter()
            .map(|i| {
                format!(
                    "{} {} {}",
                    i.target_namespace().unwrap_or("-"),
                    i.entry.resource,
                    i.target_name()
                )
            })
            .collect()
    }

    // --- type names ---

    fn resolve(name: &str) -> TypeResolution {
        resolve_type(&TypeCatalog::from_manifest(&manifest()), name)
    }

    fn in_backup(t: &str) -> TypeResolution {
        TypeResolution::InBackup(t.into())
    }

    #[test]
    fn every_spelling_of_a_type_resolves() {
        for name in [
            "deployments",
            "Deployments",
            "deployment",
            "Deployment",
            "deploy",
            "deployments.apps",
            "Deployment.apps",
            "deployments.v1.apps",
            " deploy ",
        ] {
            assert_eq!(resolve(name), in_backup("deployments"), "{name}");
        }
        for name in ["cm", "configmap", "ConfigMap", "configmaps"] {
            assert_eq!(resolve(name), in_backup("configmaps"), "{name}");
        }
        for name in [
            "widgets.acme.io",
            "Widget.acme.io",
            "widget.acme.io",
            "widgets.v1.acme.io",
        ] {
            assert_eq!(resolve(name), in_backup("widgets.acme.io"), "{name}");
        }
        assert_eq!(resolve("gadget"), in_backup("gadgets.example.org"));
        assert_eq!(resolve("crd"), in_backup(CRD_TYPE_DIR));
        assert_eq!(resolve("ns"), in_backup("namespaces"));
        // The core group has no `.group` spelling; a wrong version does not match.
        assert_eq!(resolve("configmaps.v1"), TypeResolution::Unknown);
        assert_eq!(resolve("widgets.v2.acme.io"), TypeResolution::Unknown);
    }

    #[test]
    fn ambiguous_custom_types_need_their_group() {
        assert_eq!(
            resolve("widgets"),
            TypeResolution::Ambiguous(strings(&["widgets.acme.io", "widgets.other.io"]))
        );
        assert_eq!(resolve("widgets.other.io"), in_backup("widgets.other.io"));
    }

    #[test]
    fn builtin_types_win_over_custom_ones() {
        let mut m = manifest();
        m.objects.push(entry(
            "acme.io/v1",
            "Deployment",
            "deployments.acme.io",
            Some("shop"),
            "d",
        ));
        let c = TypeCatalog::from_manifest(&m);
        assert_eq!(resolve_type(&c, "deployments"), in_backup("deployments"));
        assert_eq!(
            resolve_type(&c, "deployments.acme.io"),
            in_backup("deployments.acme.io")
        );
    }

    #[test]
    fn builtin_types_missing_from_the_backup_are_known() {
        assert_eq!(
            resolve("sts"),
            TypeResolution::NotInBackup("statefulsets".into())
        );
        assert_eq!(
            resolve("ingresses"),
            in_backup("ingresses"),
            "covered by the backup even without objects"
        );
        assert_eq!(resolve("deploymnets"), TypeResolution::Unknown);
        assert_eq!(resolve(""), TypeResolution::Unknown);
    }

    fn crd(group: &str, plural: &str, kind: &str, short_names: &[&str]) -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": format!("{plural}.{group}")},
               "spec": {"group": group, "scope": "Namespaced",
                        "names": {"plural": plural, "singular": kind.to_ascii_lowercase(),
                                  "kind": kind, "shortNames": short_names}}})
    }

    #[test]
    fn short_names_of_stored_crds_resolve() {
        let m = manifest();
        let mut c = TypeCatalog::from_manifest(&m);
        let target = RestoreTarget {
            resource_types: strings(&["configmaps", "wg"]),
            ..RestoreTarget::default()
        };
        assert_eq!(resolve_type(&c, "wg"), TypeResolution::Unknown);
        assert!(needs_stored_crds(&c, &target));
        c.add_crd(&crd("acme.io", "widgets", "Widget", &["WG"]));
        assert_eq!(resolve_type(&c, "wg"), in_backup("widgets.acme.io"));
        assert!(!needs_stored_crds(&c, &target));
        // Full names win over short names, as in kubectl.
        c.add_crd(&crd("example.org", "gadgets", "Gadget", &["widget"]));
        assert_eq!(
            resolve_type(&c, "widget"),
            TypeResolution::Ambiguous(strings(&["widgets.acme.io", "widgets.other.io"]))
        );
        // A stored CRD whose objects the backup lacks: nothing to restore, not an error.
        c.add_crd(&crd(
            "cert-manager.io",
            "certificates",
            "Certificate",
            &["cert"],
        ));
        assert_eq!(
            resolve_type(&c, "cert"),
            TypeResolution::NotInBackup("certificates.cert-manager.io".into())
        );
    }

    // --- selection ---

    #[test]
    fn no_target_restores_every_namespaced_object_in_order() {
        let m = manifest();
        let sel = Case::new().run(&m).unwrap();
        assert_eq!(sel.types, None);
        assert_eq!(sel.excluded, Excluded::default());
        let got = items(&sel);
        assert_eq!(
            got,
            strings(&[
                "- namespaces default",
                "- namespaces shop",
                "default secrets s",
                "default configmaps cfg",
                "shop configmaps cfg",
                "shop rolebindings read",
                "shop services web",
                "shop deployments web",
                "default gadgets.example.org g1",
                "shop widgets.acme.io w1",
                "default widgets.other.io w2",
            ])
        );
        assert_eq!(
            sel.target_namespaces,
            ["default", "shop"].map(String::from).into()
        );
        // Cluster-scoped objects are reported, not restored: no type is named.
        assert_eq!(
            guarded(&sel),
            strings(&[
                "skipped customresourcedefinitions gadgets.example.org: cluster-scoped: restored \
                 only when spec.target.resourceTypes names its type (customresourcedefinitions)",
                "skipped customresourcedefinitions widgets.acme.io: cluster-scoped: restored \
                 only when spec.target.resourceTypes names its type (customresourcedefinitions)",
                "skipped persistentvolumes pv-1: cluster-scoped: restored only when \
                 spec.target.resourceTypes names its type (persistentvolumes)",
                "skipped clusterroles widget-viewer: cluster-scoped: restored only when \
                 spec.target.resourceTypes names its type (clusterroles)",
            ])
        );
        assert_eq!(sel.items.len() + sel.guarded.len(), m.objects.len());

        // Named, they are restored.
        let all = Case::new()
            .types(&[
                "crd",
                "pv",
                "ClusterRole",
                "cm",
                "secrets",
                "rolebindings",
                "svc",
            ])
            .types_also(&[
                "deploy",
                "ns",
                "gadgets",
                "widgets.acme.io",
                "widgets.other.io",
            ])
            .run(&m)
            .unwrap();
        assert_eq!(all.items.len(), m.objects.len());
        assert!(all.guarded.is_empty());
    }

    /// The crafted bucket: what a restore with an empty target takes from it.
    fn crafted() -> Manifest {
        let mut m = manifest();
        m.namespaces.push("kube-system".into());
        let rbac = "rbac.authorization.k8s.io/v1";
        let admission = "admissionregistration.k8s.io/v1";
        m.objects.extend([
            entry(
                rbac,
                "ClusterRoleBinding",
                "clusterrolebindings",
                None,
                "pwn",
            ),
            entry(rbac, "ClusterRole", "clusterroles", None, "system:pwn"),
            entry("v1", "Secret", "secrets", Some("kube-system"), "token"),
            entry(
                admission,
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
                None,
                "hook",
            ),
            entry(
                "apiregistration.k8s.io/v1",
                "APIService",
                "apiservices",
                None,
                "v1.pwn.io",
            ),
            entry("v1", "ConfigMap", "configmaps", Some("shop"), "../x"),
            entry("v1", "ConfigMap", "configmaps", Some("shop"), "a/b"),
            entry("v1", "Namespace", "namespaces", None, "kube-system"),
            entry(
                "v1",
                "PersistentVolume",
                "persistentvolumes",
                None,
                "pv-system",
            ),
        ]);
        m.resource_types.extend(
            [
                "clusterrolebindings",
                "validatingwebhookconfigurations",
                "apiservices",
            ]
            .map(String::from),
        );
        m
    }

    fn guarded_names(sel: &RestoreSelection<'_>, action: Action) -> Vec<String> {
        sel.guarded
            .iter()
            .filter(|g| g.action == action)
            .map(|g| g.item.entry.name.clone())
            .collect()
    }

    #[test]
    fn a_crafted_bucket_cannot_widen_an_empty_target() {
        let m = crafted();
        let sel = Case::new().run(&m).unwrap();
        assert!(
            !items(&sel).iter().any(|i| i.contains("kube-system")
                || i.contains("pwn")
                || i.contains("hook")
                || i.contains("/")),
            "{:?}",
            items(&sel)
        );
        assert_eq!(
            guarded_names(&sel, Action::Failed),
            strings(&["../x", "a/b"])
        );
        let skipped = guarded_names(&sel, Action::Skipped);
        for name in [
            "pwn",
            "system:pwn",
            "token",
            "hook",
            "v1.pwn.io",
            "kube-system",
            "pv-system",
        ] {
            assert!(skipped.contains(&name.to_string()), "{name}: {skipped:?}");
        }
        // Nothing is created for what is refused: not the kube-system namespace either.
        assert_eq!(
            sel.target_namespaces,
            ["default", "shop"].map(String::from).into()
        );
        let reason = |name: &str| {
            sel.guarded
                .iter()
                .find(|g| g.item.entry.name == name)
                .map(|g| g.message.clone())
                .unwrap()
        };
        assert!(reason("token").starts_with("kube-system is a system namespace"));
        assert!(
            reason("a/b").contains("must not contain '/'"),
            "{}",
            reason("a/b")
        );
        assert!(reason("hook").starts_with("cluster-scoped"));
    }

    #[test]
    fn named_cluster_types_still_need_the_opt_in_when_sensitive() {
        let m = crafted();
        let types = [
            "clusterrolebindings",
            "clusterroles",
            "validatingwebhookconfigurations",
            "apiservices",
            "configmaps",
        ];
        let sel = Case::new().types(&types).run(&m).unwrap();
        let skipped = |sel: &RestoreSelection<'_>, name: &str| {
            sel.guarded
                .iter()
                .find(|g| g.item.entry.name == name && g.action == Action::Skipped)
                .map(|g| g.message.clone())
        };
        assert_eq!(
            skipped(&sel, "system:pwn").as_deref(),
            Some(guard::SENSITIVE_SYSTEM_RBAC)
        );
        assert_eq!(
            skipped(&sel, "hook").as_deref(),
            Some(guard::SENSITIVE_ADMISSION)
        );
        assert_eq!(
            skipped(&sel, "v1.pwn.io").as_deref(),
            Some(guard::SENSITIVE_API_SERVICE)
        );
        // Its roleRef is in the object: decided per object.
        let pwn = sel.items.iter().find(|i| i.entry.name == "pwn").unwrap();
        let to_cluster_admin = json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding", "metadata": {"name": "pwn"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"}});
        assert_eq!(
            sel.decide_object(pwn.entry, &to_cluster_admin),
            ObjectDecision::Skip(guard::SENSITIVE_BINDING)
        );
        assert!(items(&sel).contains(&"- clusterroles widget-viewer".to_string()));

        // With the opt-in, all of them.
        let opted_in = Case::new()
            .types(&types)
            .types_also(&["secrets"])
            .sensitive()
            .run(&m)
            .unwrap();
        for name in ["system:pwn", "hook", "v1.pwn.io", "pwn"] {
            assert!(
                opted_in.items.iter().any(|i| i.entry.name == name),
                "{name}"
            );
        }
        let pwn = opted_in
            .items
            .iter()
            .find(|i| i.entry.name == "pwn")
            .unwrap();
        assert_eq!(
            opted_in.decide_object(pwn.entry, &to_cluster_admin),
            ObjectDecision::Restore
        );
        // The opt-in does not name types nor system namespaces.
        assert_eq!(
            guarded_names(&opted_in, Action::Skipped),
            strings(&["token"])
        );
    }

    #[test]
    fn system_namespaces_restore_when_named() {
        let m = crafted();
        let sel = Case::new()
            .mapping(&[("kube-system", "sys-copy")])
            .types(&["secrets", "namespaces", "pv"])
            .run(&m)
            .unwrap();
        let got = items(&sel);
        assert!(
            got.contains(&"sys-copy secrets token".to_string()),
            "{got:?}"
        );
        assert!(
            got.contains(&"- namespaces sys-copy".to_string()),
            "{got:?}"
        );
        assert!(sel.target_namespaces.contains("sys-copy"));
        assert!(sel.guarded.is_empty(), "{:?}", guarded(&sel));

        // The PersistentVolume rule: a claim in kube-system is restored only when it is named.
        let pv = m.objects.iter().find(|e| e.name == "pv-system").unwrap();
        let bound = json!({"spec": {"claimRef": {"name": "data", "namespace": "kube-system"}}});
        assert_eq!(sel.decide_object(pv, &bound), ObjectDecision::Restore);
        let not_named = Case::new().types(&["pv"]).run(&m).unwrap();
        assert_eq!(
            not_named.decide_object(pv, &bound),
            ObjectDecision::Skip(PV_CLAIM_NOT_RESTORED)
        );
    }

    #[test]
    fn skip_cluster_resources_still_wins() {
        let m = crafted();
        let sel = Case::new()
            .types(&["clusterroles", "clusterrolebindings", "configmaps"])
            .sensitive()
            .skip_cluster()
            .run(&m)
            .unwrap();
        assert!(
            items(&sel).iter().all(|i| !i.starts_with("- ")),
            "{:?}",
            items(&sel)
        );
        assert_eq!(sel.excluded.cluster_scoped, 3);
        assert_eq!(
            guarded_names(&sel, Action::Failed),
            strings(&["../x", "a/b"])
        );
        assert_eq!(guarded_names(&sel, Action::Skipped), Vec::<String>::new());
    }

    #[test]
    fn resource_types_filter_and_bring_their_crds() {
        let m = manifest();
        let sel = Case::new()
            .types(&["deploy", "Widget.acme.io", "svc"])
            .run(&m)
            .unwrap();
        assert_eq!(
            items(&sel),
            strings(&[
                "- customresourcedefinitions widgets.acme.io",
                "shop services web",
                "shop deployments web",
                "shop widgets.acme.io w1",
            ])
        );
        assert_eq!(
            sel.types,
            Some(
                ["deployments", "services", "widgets.acme.io"]
                    .map(String::from)
                    .into()
            )
        );
        assert_eq!(sel.excluded.by_type, 11);

        let all_crds = Case::new().types(&["crds"]).run(&m).unwrap();
        assert_eq!(all_crds.items.len(), 2);
    }

    #[test]
    fn the_samples_type_lists_resolve_against_a_default_backup() {
        let m = manifest();
        let sel = Case::new()
            .types(&[
                "deployments",
                "services",
                "configmaps",
                "secrets",
                "statefulsets",
            ])
            .run(&m)
            .unwrap();
        assert_eq!(sel.absent_types, strings(&["statefulsets"]));
        assert_eq!(sel.items.len(), 5);
        assert_eq!(
            sel.notes(),
            ["nothing to restore for resourceTypes \"statefulsets\" (not in this backup)"]
        );
    }

    #[test]
    fn unknown_and_ambiguous_types_are_all_reported() {
        let m = manifest();
        let err = Case::new()
            .types(&["deploymnets", "widgets", "pods", "frobs"])
            .run(&m)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "resourceTypes: \"deploymnets\", \"frobs\" match no type in this backup (it \
             contains: clusterroles, configmaps, customresourcedefinitions, deployments, \
             gadgets.example.org, ingresses, namespaces, persistentvolumeclaims, \
             persistentvolumes, rolebindings, secrets, services, widgets.acme.io, \
             widgets.other.io); resourceTypes: \"widgets\" matches several types of this \
             backup (widgets.acme.io, widgets.other.io); use plural.group"
        );
        let err = Case::new().types(&["frobs"]).run(&m).unwrap_err();
        assert!(matches!(
            err,
            SelectError::UnknownResourceTypes { ref names, .. } if names == &strings(&["frobs"])
        ));
        assert!(err.to_string().starts_with(
            "resourceTypes: \"frobs\" matches no type in this backup (it contains: clusterroles"
        ));
    }

    #[test]
    fn an_empty_backup_says_so() {
        let mut m = manifest();
        m.objects.clear();
        m.resource_types.clear();
        let err = Case::new().types(&["frobs"]).run(&m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resourceTypes: \"frobs\" matches no type in this backup (it contains no objects)"
        );
    }

    #[test]
    fn skip_cluster_resources_keeps_namespace_objects() {
        let m = manifest();
        let sel = Case::new().skip_cluster().run(&m).unwrap();
        let got = items(&sel);
        assert!(got.contains(&"- namespaces shop".to_string()));
        assert!(!got.iter().any(|i| i.contains("clusterroles")));
        assert!(!got.iter().any(|i| i.contains(CRD_TYPE_DIR)));
        assert!(!got.iter().any(|i| i.contains("persistentvolumes ")));
        assert_eq!(sel.excluded.cluster_scoped, 4);
    }

    #[test]
    fn namespaces_are_selected_and_mapped() {
        let m = manifest();
        // Sample "cross-cluster-restore" (default → production; "test" is not in the backup).
        let sel = Case::new()
            .namespaces(&["production", "staging"])
            .mapping(&[("default", "production"), ("test", "staging")])
            .types(&["deployments", "services", "configmaps", "secrets"])
            .skip_cluster()
            .run(&m)
            .unwrap();
        assert_eq!(
            items(&sel),
            strings(&["production secrets s", "production configmaps cfg"])
        );
        assert_eq!(sel.excluded.by_namespace, 3);
        assert_eq!(
            sel.target_namespaces,
            ["production"].map(String::from).into()
        );

        // shop → shop-copy, next to the original; the Namespace object is renamed too.
        let sel = Case::new()
            .mapping(&[("shop", "shop-copy")])
            .types(&["configmaps", "namespaces", "rolebindings"])
            .run(&m)
            .unwrap();
        assert_eq!(
            items(&sel),
            strings(&[
                "- namespaces default",
                "- namespaces shop-copy",
                "default configmaps cfg",
                "shop-copy configmaps cfg",
                "shop-copy rolebindings read",
            ])
        );
        assert_eq!(
            sel.target_namespaces,
            ["default", "shop-copy"].map(String::from).into()
        );
        let ns_item = &sel.items[1];
        assert_eq!(ns_item.object_ref().name, "shop-copy");
        assert_eq!(ns_item.object_ref().namespace, None);
        let cm = &sel.items[3];
        assert_eq!(cm.object_ref().namespace, Some("shop-copy"));
        assert_eq!(cm.object_ref().type_dir, "configmaps");
        // Items of one target namespace share one allocation.
        assert!(Arc::ptr_eq(
            sel.items[3].namespace.as_ref().unwrap(),
            sel.items[4].namespace.as_ref().unwrap()
        ));

        // One target namespace takes the whole backup.
        let sel = Case::new()
            .namespaces(&["restored-apps"])
            .types(&["configmaps"])
            .run(&m)
            .unwrap();
        assert_eq!(
            items(&sel),
            strings(&[
                "restored-apps configmaps cfg",
                "restored-apps configmaps cfg"
            ])
        );
    }

    #[test]
    fn targets_that_select_nothing_are_noted() {
        let m = manifest();
        let sel = Case::new().run(&m).unwrap();
        assert!(sel.notes().is_empty());
        let sel = Case::new()
            .mapping(&[("shop", "shop-copy"), ("shpo", "x"), ("tset", "y")])
            .types(&["configmaps", "sts", "ds", "StatefulSet"])
            .run(&m)
            .unwrap();
        assert_eq!(sel.absent_types, strings(&["statefulsets", "daemonsets"]));
        assert_eq!(sel.unused_mappings, strings(&["shpo", "tset"]));
        assert_eq!(
            sel.notes(),
            [
                "nothing to restore for resourceTypes \"statefulsets\", \"daemonsets\" (not in \
                 this backup)",
                "namespaceMapping \"shpo\", \"tset\" name no namespace of this backup",
            ]
        );
    }

    fn label_selector(key: &str, value: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some([(key.to_string(), value.to_string())].into()),
            match_expressions: None,
        }
    }

    #[test]
    fn label_selector_applies_per_object_except_to_crds_and_namespaces() {
        let m = manifest();
        let mut case = Case::new();
        // Every type, so the cluster-scoped objects are selected too.
        case.target.resource_types = m.resource_types.clone();
        case.target.label_selector = Some(label_selector("app", "web-server"));
        case.target.conflict_resolution = ConflictResolution::Fail;
        let sel = case.run(&m).unwrap();
        assert_eq!(sel.items.len(), m.objects.len(), "labels are read later");
        let find = |resource: &str| {
            sel.items
                .iter()
                .find(|i| &*i.entry.resource == resource)
                .unwrap()
                .entry
        };
        let labelled = json!({"metadata": {"labels": {"app": "web-server"}}});
        let other = json!({"metadata": {"labels": {"app": "db"}}});
        let unlabelled = json!({"metadata": {}});
        assert_eq!(
            sel.decide_object(find("deployments"), &labelled),
            ObjectDecision::Restore
        );
        assert_eq!(
            sel.decide_object(find("deployments"), &other),
            ObjectDecision::NotSelected
        );
        assert_eq!(
            sel.decide_object(find("clusterroles"), &unlabelled),
            ObjectDecision::NotSelected
        );
        assert_eq!(
            sel.decide_object(find(CRD_TYPE_DIR), &unlabelled),
            ObjectDecision::Restore
        );
        assert_eq!(
            sel.decide_object(find("namespaces"), &unlabelled),
            ObjectDecision::Restore
        );
    }

    #[test]
    fn invalid_label_selectors_are_refused_before_anything_runs() {
        let m = manifest();
        let mut case = Case::new().types(&["frobs"]);
        case.target.label_selector = Some(LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "Equals".into(),
                values: Some(vec!["x".into()]),
            }]),
        });
        let err = case.run(&m).unwrap_err();
        let SelectError::Multiple(errors) = &err else {
            panic!("{err:?}");
        };
        assert!(matches!(
            errors[0],
            SelectError::UnknownResourceTypes { .. }
        ));
        assert!(matches!(errors[1], SelectError::LabelSelector(_)));
        assert!(
            err.to_string()
                .contains("invalid labelSelector: matchExpressions[0]")
        );

        // An empty selector selects everything and needs no per-object work.
        let mut case = Case::new();
        case.target.label_selector = Some(LabelSelector::default());
        assert_eq!(case.run(&m).unwrap().label_selector, None);
    }

    #[test]
    fn volumes_of_claims_that_are_not_restored_are_skipped() {
        let m = manifest();
        let pv = m
            .objects
            .iter()
            .find(|e| &*e.resource == "persistentvolumes")
            .unwrap();
        let bound_to = |ns: &str| json!({"spec": {"claimRef": {"name": "data", "namespace": ns}}});

        // Two targets: "default" is not restored (with one, it would go into "shop").
        let only_shop = Case::new()
            .namespaces(&["shop", "staging"])
            .run(&m)
            .unwrap();
        assert_eq!(
            only_shop.decide_object(pv, &bound_to("shop")),
            ObjectDecision::Restore
        );
        assert_eq!(
            only_shop.decide_object(pv, &bound_to("default")),
            ObjectDecision::Skip(PV_CLAIM_NOT_RESTORED)
        );
        assert_eq!(
            only_shop.decide_object(pv, &bound_to("elsewhere")),
            ObjectDecision::Skip(PV_CLAIM_NOT_RESTORED)
        );
        assert_eq!(
            only_shop.decide_object(pv, &json!({"spec": {}})),
            ObjectDecision::Restore,
            "an unbound volume is restored"
        );
        // Mapped: the claim's *source* namespace counts.
        let mapped = Case::new().mapping(&[("shop", "x")]).run(&m).unwrap();
        assert_eq!(
            mapped.decide_object(pv, &bound_to("shop")),
            ObjectDecision::Restore
        );
    }

    #[test]
    fn labels_match_tolerates_odd_labels() {
        let sel = selector::parse(&label_selector("app", "web")).unwrap();
        assert!(labels_match(
            &sel,
            &json!({"metadata": {"labels": {"app": "web", "n": 1}}})
        ));
        assert!(!labels_match(
            &sel,
            &json!({"metadata": {"labels": {"app": 1}}})
        ));
        assert!(!labels_match(
            &sel,
            &json!({"metadata": {"labels": "app=web"}})
        ));
        assert!(!labels_match(&sel, &json!(null)));
        assert!(labels_match(&Selector::default(), &json!({})));
    }
}
