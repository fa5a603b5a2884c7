//! What a backup run covers: namespaces, resource types and per-object exclusions.
//!
//! Everything here is pure: the engine fetches the namespace list and the discovery data, and
//! these functions decide. Resource types are resolved through API discovery (as `kubectl`
//! resolves them, [`crate::core::types::catalog`]), so any served type, including custom
//! resources, can be backed up.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use kube::core::Version;

use crate::api::BackupSource;
use crate::core::types::catalog::{Resolution, TypeCatalog};
use crate::core::types::{CRD_GROUP, CRD_PLURAL, DiscoveredResource, is_builtin_group};

/// Excluded when neither `namespaces` nor `namespace` is set.
pub const DEFAULT_EXCLUDED_NAMESPACES: [&str; 3] =
    ["kube-system", "kube-public", "kube-node-lease"];

/// Backed up when `resourceTypes` is empty.
pub const DEFAULT_NAMESPACED_TYPES: [&str; 6] = [
    "deployments",
    "services",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "ingresses",
];

/// Added when `includeClusterResources` is set.
pub const DEFAULT_CLUSTER_TYPES: [&str; 4] = [
    "clusterroles",
    "clusterrolebindings",
    "persistentvolumes",
    "storageclasses",
];

/// Why the backup cannot be planned. Messages name the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "unknown resource type {name:?} (not served by this cluster){}",
        suggestion.as_ref().map(|s| format!(", did you mean {s:?}?")).unwrap_or_default()
    )]
    UnknownResourceType {
        name: String,
        suggestion: Option<String>,
    },
    #[error("ambiguous resource type {name:?}: matches {} — use plural.group", candidates.join(", "))]
    AmbiguousResourceType {
        name: String,
        /// `plural.group` of each match.
        candidates: Vec<String>,
    },
    #[error(
        "resource type {name:?} ({resource}) cannot be listed, so it cannot be backed up \
         (verbs: {})",
        verbs.join(", ")
    )]
    NotListable {
        name: String,
        resource: String,
        verbs: Vec<String>,
    },
    /// Several of the above at once, so the user can fix the spec in one go.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Multiple(Vec<PlanError>),
}

// ---------------------------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------------------------

/// Which namespaces a Backup asks for, before looking at the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceSelection {
    /// Exactly these (de-duplicated, in the order given).
    Explicit(Vec<String>),
    /// Every existing namespace except these.
    AllExcept(BTreeSet<String>),
}

/// The namespaces a Backup's source names, without the cluster call:
///
/// 1. `namespaces` empty and `namespace` set → that one namespace;
/// 2. `"*"` anywhere in `namespaces` → every namespace minus `excludeNamespaces` only (the
///    system namespaces are *not* excluded: `"*"` means all);
/// 3. a non-empty `namespaces` list → exactly those;
/// 4. nothing → every namespace minus kube-system, kube-public, kube-node-lease and
///    `excludeNamespaces`.
///
/// `excludeNamespaces` also removes names from an explicit list (cases 1 and 3): a user who
/// writes an exclusion expects it to win.
pub fn namespace_selection(source: &BackupSource) -> NamespaceSelection {
    let excluded: BTreeSet<&str> = source
        .exclude_namespaces
        .iter()
        .map(String::as_str)
        .collect();

    if source.namespaces.is_empty() {
        return match source.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => {
                NamespaceSelection::Explicit(dedup_excluding([ns], &excluded))
            }
            _ => NamespaceSelection::AllExcept(
                excluded
                    .iter()
                    .chain(DEFAULT_EXCLUDED_NAMESPACES.iter())
                    .map(|s| s.to_string())
                    .collect(),
            ),
        };
    }
    if source.namespaces.iter().any(|n| n == "*") {
        return NamespaceSelection::AllExcept(excluded.iter().map(|s| s.to_string()).collect());
    }
    NamespaceSelection::Explicit(dedup_excluding(
        source.namespaces.iter().map(String::as_str),
        &excluded,
    ))
}

/// First occurrence of each name, in order, without the excluded ones.
fn dedup_excluding<'a>(
    names: impl IntoIterator<Item = &'a str>,
    excluded: &BTreeSet<&str>,
) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names
        .into_iter()
        .filter(|n| !excluded.contains(n) && seen.insert(*n))
        .map(str::to_string)
        .collect()
}

/// The namespaces a run covers, given the ones that exist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedNamespaces {
    /// Sorted, unique.
    pub to_back_up: Vec<String>,
    /// Named explicitly but not existing, in the order given (the engine reports them).
    pub missing: Vec<String>,
}

/// Applies a selection to the cluster's namespace list.
pub fn resolve_namespaces(sel: &NamespaceSelection, existing: &[String]) -> ResolvedNamespaces {
    let existing: BTreeSet<&str> = existing.iter().map(String::as_str).collect();
    match sel {
        NamespaceSelection::Explicit(names) => {
            let (present, missing): (Vec<&String>, Vec<&String>) =
                names.iter().partition(|n| existing.contains(n.as_str()));
            let to_back_up: BTreeSet<&String> = present.into_iter().collect();
            ResolvedNamespaces {
                to_back_up: to_back_up.into_iter().cloned().collect(),
                missing: missing.into_iter().cloned().collect(),
            }
        }
        NamespaceSelection::AllExcept(excluded) => ResolvedNamespaces {
            to_back_up: existing
                .into_iter()
                .filter(|n| !excluded.contains(*n))
                .map(str::to_string)
                .collect(),
            missing: Vec::new(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Resource types
// ---------------------------------------------------------------------------------------------

/// Resolves a user's resource type name against the cluster's discovery, as `kubectl get
/// <name>` would (the resolver of [`crate::core::types::catalog`], among the served types).
/// Resources without the `list` verb cannot be backed up ([`PlanError::NotListable`]). Within
/// the type, a version the name names wins, then the preferred version, then the newest
/// stable one.
fn resolve_resource_type<'d>(
    name: &str,
    catalog: &TypeCatalog,
    discovered: &'d [DiscoveredResource],
) -> Result<&'d DiscoveredResource, PlanError> {
    let (ty, version) = match catalog.resolve(name, |t| t.served) {
        Resolution::Found { ty, version } => (ty, version),
        Resolution::Ambiguous(types) => {
            let mut candidates: Vec<String> = types.iter().map(|t| t.qualified_name()).collect();
            candidates.sort();
            candidates.dedup();
            return Err(PlanError::AmbiguousResourceType {
                name: name.to_string(),
                candidates,
            });
        }
        Resolution::Unknown => {
            return Err(PlanError::UnknownResourceType {
                name: name.to_string(),
                suggestion: catalog.suggest(name, |t| t.served && t.listable),
            });
        }
    };
    let of_type: Vec<&DiscoveredResource> = discovered
        .iter()
        .filter(|r| r.is(&ty.group, &ty.plural))
        .filter(|r| version.is_none_or(|v| r.api.version == v))
        .collect();
    let mut listable: Vec<&DiscoveredResource> =
        of_type.iter().copied().filter(|r| r.can_list()).collect();
    listable.sort_by_cached_key(|r| {
        (
            !r.preferred,
            Reverse(Version::parse(&r.api.version).priority()),
        )
    });
    match (listable.first(), of_type.first()) {
        (Some(r), _) => Ok(r),
        (None, Some(r)) => Err(PlanError::NotListable {
            name: name.to_string(),
            resource: r.qualified_name(),
            verbs: r.verbs.clone(),
        }),
        (None, None) => Err(PlanError::UnknownResourceType {
            name: name.to_string(),
            suggestion: None,
        }),
    }
}

/// The resource types of one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypePlan {
    /// Listed in every selected namespace, in the order asked.
    pub namespaced: Vec<DiscoveredResource>,
    /// Listed once, cluster-wide: explicit cluster-scoped types, then the defaults when
    /// `includeClusterResources`, then CustomResourceDefinitions.
    pub cluster: Vec<DiscoveredResource>,
    /// `<plural>.<group>` of every selected custom resource: the CRDs to back up with them.
    /// Names that are no CRD (an aggregated API) simply match nothing.
    pub crd_names: BTreeSet<String>,
    /// True when the user named `customresourcedefinitions` in `resourceTypes`: then every
    /// CRD is backed up, not only `crd_names`.
    pub all_crds: bool,
    /// Default types this cluster does not serve; skipped rather than failing the backup (the
    /// engine logs them).
    pub unavailable_defaults: Vec<String>,
}

impl TypePlan {
    /// Whether the cluster-scoped object `name` of `resource` belongs in the backup. Only
    /// CRDs are filtered: those of the selected custom resources, unless all were asked for.
    pub fn wants_cluster_object(&self, resource: &DiscoveredResource, name: &str) -> bool {
        if resource.is(CRD_GROUP, CRD_PLURAL) {
            self.all_crds || self.crd_names.contains(name)
        } else {
            true
        }
    }

    /// Every type of the plan, namespaced first.
    pub fn all(&self) -> impl Iterator<Item = &DiscoveredResource> {
        self.namespaced.iter().chain(self.cluster.iter())
    }
}

/// Decides the resource types of a Backup from its source and the cluster's discovery data.
///
/// `resourceTypes` (or [`DEFAULT_NAMESPACED_TYPES`] when empty) are split by scope; a
/// cluster-scoped type named explicitly is backed up as a cluster type even without
/// `includeClusterResources` (an explicit ask). `includeClusterResources` adds
/// [`DEFAULT_CLUSTER_TYPES`]. When any selected type is a custom resource, the CRD resource is
/// added with [`TypePlan::crd_names`] as filter — regardless of `includeClusterResources`,
/// because without its CRD a restore into an empty cluster fails (Velero does the same).
/// Each resource appears once (by group and plural), in the order first asked.
/// All unknown, ambiguous or unlistable names are reported in one error.
pub fn plan_types(
    source: &BackupSource,
    discovered: &[DiscoveredResource],
) -> Result<TypePlan, PlanError> {
    let catalog = TypeCatalog::from_discovery(discovered);
    let resolve = |name: &str| resolve_resource_type(name, &catalog, discovered);
    let mut plan = TypePlan::default();
    let mut errors = Vec::new();
    let mut selected: Vec<&DiscoveredResource> = Vec::new();

    if source.resource_types.is_empty() {
        for name in DEFAULT_NAMESPACED_TYPES {
            match resolve(name) {
                Ok(r) => selected.push(r),
                Err(_) => plan.unavailable_defaults.push(name.to_string()),
            }
        }
    } else {
        for name in &source.resource_types {
            match resolve(name) {
                Ok(r) => {
                    if r.is(CRD_GROUP, CRD_PLURAL) {
                        plan.all_crds = true;
                    }
                    selected.push(r);
                }
                Err(e) => errors.push(e),
            }
        }
    }
    if source.include_cluster_resources {
        for name in DEFAULT_CLUSTER_TYPES {
            match resolve(name) {
                Ok(r) => selected.push(r),
                Err(_) => plan.unavailable_defaults.push(name.to_string()),
            }
        }
    }
    match errors.len() {
        0 => {}
        1 => return Err(errors.remove(0)),
        _ => return Err(PlanError::Multiple(errors)),
    }

    plan.crd_names = selected
        .iter()
        .filter(|r| !is_builtin_group(r.group()))
        .map(|r| r.qualified_name())
        .collect();
    if !plan.crd_names.is_empty() {
        // Always served by a real API server; a discovery snapshot without it only loses the
        // CRDs, which the engine cannot back up anyway.
        if let Some(crd) = discovered
            .iter()
            .find(|r| r.is(CRD_GROUP, CRD_PLURAL) && r.preferred)
        {
            selected.push(crd);
        }
    }

    for r in selected {
        if plan.all().any(|p| p.is(r.group(), r.plural())) {
            continue;
        }
        if r.namespaced() {
            plan.namespaced.push(r.clone());
        } else {
            plan.cluster.push(r.clone());
        }
    }
    Ok(plan)
}

// ---------------------------------------------------------------------------------------------
// Object filter
// ---------------------------------------------------------------------------------------------

const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// The ConfigMap the control plane publishes in every namespace with its own CA.
const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// Why an object listed for the backup is not stored, or `None` to store it.
///
/// Two kinds of objects the control plane makes for itself are skipped:
/// * core Secrets of type `kubernetes.io/service-account-token`: the token controller
///   recreates them and a restored one would carry a token of another cluster. Secrets are
///   skipped by type only, never by name: a Secret `api-token-x` is user data.
/// * the core ConfigMap `kube-root-ca.crt`: kube-controller-manager publishes it in every
///   namespace with the cluster's own CA (a restore skips it too; a copy would hand pods the
///   source cluster's CA), so storing it only costs one object per namespace.
///
/// `data` is the object without `metadata` (a `DynamicObject`'s `data`).
pub fn skip_object(
    resource: &DiscoveredResource,
    name: &str,
    data: &serde_json::Value,
) -> Option<&'static str> {
    skip_object_of(resource.group(), resource.plural(), name, data)
}

/// [`skip_object`] for a type given by API group and plural (`backups diff --live` compares
/// the cluster with a backup, and leaves out what a backup never stores).
pub fn skip_object_of(
    group: &str,
    plural: &str,
    name: &str,
    data: &serde_json::Value,
) -> Option<&'static str> {
    if group.is_empty()
        && plural == "secrets"
        && data.get("type").and_then(serde_json::Value::as_str) == Some(SERVICE_ACCOUNT_TOKEN_TYPE)
    {
        return Some("service-account token");
    }
    if group.is_empty() && plural == "configmaps" && name == ROOT_CA_CONFIGMAP {
        return Some("published by the control plane");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::tests::res;
    use serde_json::json;

    /// A discovery snapshot shaped like a real 1.36 API server plus two CRDs.
    fn discovery() -> Vec<DiscoveredResource> {
        let mut v = vec![
            res("", "v1", "ConfigMap", "configmaps", &["cm"], true),
            res("", "v1", "Secret", "secrets", &[], true),
            res("", "v1", "Service", "services", &["svc"], true),
            res("", "v1", "Pod", "pods", &["po"], true),
            res("", "v1", "Event", "events", &["ev"], true),
            res("", "v1", "Namespace", "namespaces", &["ns"], false),
            res(
                "",
                "v1",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                &["pvc"],
                true,
            ),
            res(
                "",
                "v1",
                "PersistentVolume",
                "persistentvolumes",
                &["pv"],
                false,
            ),
            res("apps", "v1", "Deployment", "deployments", &["deploy"], true),
            res("apps", "v1", "StatefulSet", "statefulsets", &["sts"], true),
            res("events.k8s.io", "v1", "Event", "events", &["ev"], true),
            res(
                "networking.k8s.io",
                "v1",
                "Ingress",
                "ingresses",
                &["ing"],
                true,
            ),
            res(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                "clusterroles",
                &[],
                false,
            ),
            res(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
                "clusterrolebindings",
                &[],
                false,
            ),
            res(
                "storage.k8s.io",
                "v1",
                "StorageClass",
                "storageclasses",
                &["sc"],
                false,
            ),
            res(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                &["crd", "crds"],
                false,
            ),
            res(
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                &["hpa"],
                true,
            ),
            res(
                "cert-manager.io",
                "v1",
                "Certificate",
                "certificates",
                &["cert", "certs"],
                true,
            ),
            res(
                "cert-manager.io",
                "v1",
                "ClusterIssuer",
                "clusterissuers",
                &[],
                false,
            ),
            res(
                "example.org",
                "v1",
                "Certificate",
                "certificates",
                &[],
                true,
            ),
            res(
                "snapshot.storage.k8s.io",
                "v1",
                "VolumeSnapshot",
                "volumesnapshots",
                &["vs"],
                true,
            ),
        ];
        let mut hpa_v1 = res(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            &["hpa"],
            true,
        );
        hpa_v1.preferred = false;
        v.push(hpa_v1);
        let mut status = res("apps", "v1", "Deployment", "deployments/status", &[], true);
        status.verbs = vec!["get".into(), "patch".into(), "update".into()];
        v.push(status);
        let mut review = res(
            "authentication.k8s.io",
            "v1",
            "TokenReview",
            "tokenreviews",
            &[],
            false,
        );
        review.verbs = vec!["create".into()];
        v.push(review);
        v
    }

    fn source() -> BackupSource {
        BackupSource::default()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn names(v: &[DiscoveredResource]) -> Vec<String> {
        v.iter().map(|r| r.qualified_name()).collect()
    }

    // --- namespaces ---

    #[test]
    fn single_namespace_field() {
        let s = BackupSource {
            namespace: Some("prod".into()),
            ..source()
        };
        assert_eq!(
            namespace_selection(&s),
            NamespaceSelection::Explicit(strings(&["prod"]))
        );
        // The deprecated field is ignored once `namespaces` is set.
        let s = BackupSource {
            namespace: Some("prod".into()),
            namespaces: strings(&["a"]),
            ..source()
        };
        assert_eq!(
            namespace_selection(&s),
            NamespaceSelection::Explicit(strings(&["a"]))
        );
        // An empty legacy field means "not set".
        let s = BackupSource {
            namespace: Some(String::new()),
            ..source()
        };
        assert!(matches!(
            namespace_selection(&s),
            NamespaceSelection::AllExcept(_)
        ));
    }

    #[test]
    fn explicit_list_is_deduplicated_in_order_and_exclusions_win() {
        let s = BackupSource {
            namespaces: strings(&["staging", "prod", "staging", "kube-system", "tmp"]),
            exclude_namespaces: strings(&["tmp"]),
            ..source()
        };
        assert_eq!(
            namespace_selection(&s),
            NamespaceSelection::Explicit(strings(&["staging", "prod", "kube-system"]))
        );
        let s = BackupSource {
            namespace: Some("tmp".into()),
            exclude_namespaces: strings(&["tmp"]),
            ..source()
        };
        assert_eq!(
            namespace_selection(&s),
            NamespaceSelection::Explicit(vec![])
        );
    }

    #[test]
    fn wildcard_excludes_only_the_listed_namespaces() {
        let s = BackupSource {
            namespaces: strings(&["prod", "*"]),
            exclude_namespaces: strings(&["kube-system", "kube-public"]),
            ..source()
        };
        let sel = namespace_selection(&s);
        assert_eq!(
            sel,
            NamespaceSelection::AllExcept(["kube-public", "kube-system"].map(String::from).into())
        );
        let existing = strings(&[
            "default",
            "kube-system",
            "kube-node-lease",
            "prod",
            "kube-public",
        ]);
        assert_eq!(
            resolve_namespaces(&sel, &existing).to_back_up,
            strings(&["default", "kube-node-lease", "prod"]),
            "\"*\" keeps kube-node-lease: only excludeNamespaces apply"
        );
    }

    #[test]
    fn default_excludes_system_namespaces_and_exclusions() {
        let s = BackupSource {
            exclude_namespaces: strings(&["monitoring"]),
            ..source()
        };
        let sel = namespace_selection(&s);
        let existing = strings(&[
            "kube-system",
            "monitoring",
            "default",
            "kube-public",
            "app",
            "kube-node-lease",
        ]);
        let r = resolve_namespaces(&sel, &existing);
        assert_eq!(r.to_back_up, strings(&["app", "default"]));
        assert!(r.missing.is_empty());
    }

    #[test]
    fn explicit_resolution_reports_missing_namespaces() {
        let sel = NamespaceSelection::Explicit(strings(&["zeta", "ghost", "alpha", "nope"]));
        let r = resolve_namespaces(&sel, &strings(&["alpha", "zeta", "default"]));
        assert_eq!(r.to_back_up, strings(&["alpha", "zeta"]));
        assert_eq!(r.missing, strings(&["ghost", "nope"]));
    }

    // --- resource types ---

    fn resolve_in<'d>(
        name: &str,
        d: &'d [DiscoveredResource],
    ) -> Result<&'d DiscoveredResource, PlanError> {
        resolve_resource_type(name, &TypeCatalog::from_discovery(d), d)
    }

    fn resolve(name: &str) -> Result<String, PlanError> {
        let d = discovery();
        resolve_in(name, &d).map(|r| format!("{}@{}", r.qualified_name(), r.api.version))
    }

    #[test]
    fn resolves_every_spelling() {
        for name in [
            "deployments",
            "deployment",
            "Deployment",
            "DEPLOYMENTS",
            "deploy",
            "deployments.apps",
            "Deployment.apps",
            "deploy.apps",
            "deployments.v1.apps",
        ] {
            assert_eq!(resolve(name).unwrap(), "deployments.apps@v1", "{name}");
        }
        assert_eq!(resolve("cm").unwrap(), "configmaps@v1");
        assert_eq!(
            resolve("volumesnapshots").unwrap(),
            "volumesnapshots.snapshot.storage.k8s.io@v1"
        );
    }

    #[test]
    fn core_group_wins_for_events() {
        assert_eq!(resolve("events").unwrap(), "events@v1");
        assert_eq!(resolve("ev").unwrap(), "events@v1");
        assert_eq!(
            resolve("events.events.k8s.io").unwrap(),
            "events.events.k8s.io@v1"
        );
    }

    #[test]
    fn builtin_group_wins_over_custom_group() {
        let mut d = discovery();
        d.push(res("acme.io", "v1", "Deployment", "deployments", &[], true));
        assert_eq!(resolve_in("deployments", &d).unwrap().group(), "apps");
        assert_eq!(
            resolve_in("deployments.acme.io", &d).unwrap().group(),
            "acme.io"
        );
    }

    #[test]
    fn ambiguous_custom_groups_are_refused() {
        let err = resolve("certificates").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ambiguous resource type \"certificates\": matches certificates.cert-manager.io, \
             certificates.example.org — use plural.group"
        );
        assert_eq!(
            resolve("certificates.cert-manager.io").unwrap(),
            "certificates.cert-manager.io@v1"
        );
        // The short name is only on one of them.
        assert_eq!(resolve("cert").unwrap(), "certificates.cert-manager.io@v1");
    }

    #[test]
    fn full_names_win_over_short_names() {
        let mut d = discovery();
        d.push(res(
            "acme.io",
            "v1",
            "Widget",
            "widgets",
            &["configmaps"],
            true,
        ));
        assert_eq!(
            resolve_in("configmaps", &d).unwrap().qualified_name(),
            "configmaps"
        );
        let mut d = discovery();
        d.push(res("acme.io", "v1", "Widget", "widgets", &["w"], true));
        d.push(res("other.io", "v1", "W", "ws", &[], true));
        assert_eq!(resolve_in("w", &d).unwrap().qualified_name(), "ws.other.io");
    }

    #[test]
    fn preferred_version_wins_then_newest() {
        assert_eq!(
            resolve("hpa").unwrap(),
            "horizontalpodautoscalers.autoscaling@v2"
        );
        assert_eq!(
            resolve("horizontalpodautoscalers.v1.autoscaling").unwrap(),
            "horizontalpodautoscalers.autoscaling@v1"
        );
        let mut d: Vec<_> = ["v1alpha1", "v1beta1", "v2beta2", "v1", "v1beta2"]
            .iter()
            .map(|v| {
                let mut r = res("acme.io", v, "Widget", "widgets", &[], true);
                r.preferred = false;
                r
            })
            .collect();
        assert_eq!(resolve_in("widgets", &d).unwrap().api.version, "v1");
        d.retain(|r| r.api.version != "v1");
        assert_eq!(resolve_in("widgets", &d).unwrap().api.version, "v2beta2");
    }

    #[test]
    fn subresources_and_unlistable_types_do_not_resolve() {
        assert!(matches!(
            resolve("deployments/status"),
            Err(PlanError::UnknownResourceType { .. })
        ));
        let err = resolve("tokenreviews").unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource type \"tokenreviews\" (tokenreviews.authentication.k8s.io) cannot be \
             listed, so it cannot be backed up (verbs: create)"
        );
    }

    #[test]
    fn unknown_types_get_a_suggestion_when_close() {
        assert_eq!(
            resolve("deploymnts").unwrap_err().to_string(),
            "unknown resource type \"deploymnts\" (not served by this cluster), did you mean \
             \"deployments\"?"
        );
        assert_eq!(
            resolve("deplyoments").unwrap_err(),
            PlanError::UnknownResourceType {
                name: "deplyoments".into(),
                suggestion: Some("deployments".into())
            }
        );
        assert_eq!(
            resolve("configm").unwrap_err(),
            PlanError::UnknownResourceType {
                name: "configm".into(),
                suggestion: Some("configmaps".into())
            }
        );
        assert_eq!(
            resolve("certificates.cert-manager.com").unwrap_err(),
            PlanError::UnknownResourceType {
                name: "certificates.cert-manager.com".into(),
                suggestion: Some("certificates.cert-manager.io".into())
            }
        );
        assert_eq!(
            resolve("frobnicators").unwrap_err().to_string(),
            "unknown resource type \"frobnicators\" (not served by this cluster)"
        );
        assert_eq!(
            resolve("").unwrap_err(),
            PlanError::UnknownResourceType {
                name: "".into(),
                suggestion: None
            }
        );
    }

    #[test]
    fn default_plan_is_the_default_types() {
        let plan = plan_types(&source(), &discovery()).unwrap();
        assert_eq!(
            names(&plan.namespaced),
            strings(&[
                "deployments.apps",
                "services",
                "configmaps",
                "secrets",
                "persistentvolumeclaims",
                "ingresses.networking.k8s.io",
            ])
        );
        assert!(plan.cluster.is_empty());
        assert!(plan.crd_names.is_empty());
        assert!(plan.unavailable_defaults.is_empty());
    }

    #[test]
    fn cluster_resources_are_added_on_request() {
        let s = BackupSource {
            include_cluster_resources: true,
            resource_types: strings(&["configmaps"]),
            ..source()
        };
        let plan = plan_types(&s, &discovery()).unwrap();
        assert_eq!(names(&plan.namespaced), strings(&["configmaps"]));
        assert_eq!(
            names(&plan.cluster),
            strings(&[
                "clusterroles.rbac.authorization.k8s.io",
                "clusterrolebindings.rbac.authorization.k8s.io",
                "persistentvolumes",
                "storageclasses.storage.k8s.io",
            ])
        );
    }

    #[test]
    fn explicit_cluster_types_are_kept_and_duplicates_dropped() {
        let s = BackupSource {
            resource_types: strings(&[
                "pv",
                "cm",
                "configmaps",
                "ConfigMap",
                "hpa",
                "horizontalpodautoscalers.v1.autoscaling",
                "namespaces",
            ]),
            include_cluster_resources: true,
            ..source()
        };
        let plan = plan_types(&s, &discovery()).unwrap();
        assert_eq!(
            names(&plan.namespaced),
            strings(&["configmaps", "horizontalpodautoscalers.autoscaling"])
        );
        assert_eq!(
            plan.namespaced[1].api.version, "v2",
            "first asked version is kept"
        );
        assert_eq!(
            names(&plan.cluster),
            strings(&[
                "persistentvolumes",
                "namespaces",
                "clusterroles.rbac.authorization.k8s.io",
                "clusterrolebindings.rbac.authorization.k8s.io",
                "storageclasses.storage.k8s.io",
            ])
        );
    }

    #[test]
    fn custom_resources_bring_their_crds() {
        let s = BackupSource {
            resource_types: strings(&[
                "certificates.cert-manager.io",
                "clusterissuers",
                "vs",
                "configmaps",
            ]),
            ..source()
        };
        let d = discovery();
        let plan = plan_types(&s, &d).unwrap();
        assert_eq!(
            names(&plan.namespaced),
            strings(&[
                "certificates.cert-manager.io",
                "volumesnapshots.snapshot.storage.k8s.io",
                "configmaps",
            ])
        );
        assert_eq!(
            names(&plan.cluster),
            strings(&[
                "clusterissuers.cert-manager.io",
                "customresourcedefinitions.apiextensions.k8s.io",
            ])
        );
        assert_eq!(
            plan.crd_names,
            [
                "certificates.cert-manager.io",
                "clusterissuers.cert-manager.io",
                "volumesnapshots.snapshot.storage.k8s.io",
            ]
            .map(String::from)
            .into()
        );
        assert!(!plan.all_crds);
        let crd = &plan.cluster[1];
        assert!(plan.wants_cluster_object(crd, "certificates.cert-manager.io"));
        assert!(!plan.wants_cluster_object(crd, "issuers.cert-manager.io"));
        assert!(plan.wants_cluster_object(&plan.cluster[0], "anything"));
    }

    #[test]
    fn explicitly_asked_crds_are_all_backed_up() {
        let s = BackupSource {
            resource_types: strings(&["crds", "certs"]),
            ..source()
        };
        let plan = plan_types(&s, &discovery()).unwrap();
        assert!(plan.all_crds);
        assert_eq!(
            names(&plan.cluster),
            strings(&["customresourcedefinitions.apiextensions.k8s.io"])
        );
        assert!(plan.wants_cluster_object(&plan.cluster[0], "whatever.acme.io"));
    }

    #[test]
    fn all_bad_types_are_reported_together() {
        let s = BackupSource {
            resource_types: strings(&["deploymnts", "configmaps", "certificates", "widgets"]),
            ..source()
        };
        let err = plan_types(&s, &discovery()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown resource type \"deploymnts\" (not served by this cluster), did you mean \
             \"deployments\"?; ambiguous resource type \"certificates\": matches \
             certificates.cert-manager.io, certificates.example.org — use plural.group; \
             unknown resource type \"widgets\" (not served by this cluster)"
        );
        let s = BackupSource {
            resource_types: strings(&["widgets"]),
            ..source()
        };
        assert!(matches!(
            plan_types(&s, &discovery()),
            Err(PlanError::UnknownResourceType { .. })
        ));
    }

    #[test]
    fn missing_default_types_are_skipped_not_fatal() {
        let d: Vec<_> = discovery()
            .into_iter()
            .filter(|r| r.plural() != "ingresses" && r.plural() != "storageclasses")
            .collect();
        let s = BackupSource {
            include_cluster_resources: true,
            ..source()
        };
        let plan = plan_types(&s, &d).unwrap();
        assert_eq!(plan.namespaced.len(), 5);
        assert_eq!(plan.cluster.len(), 3);
        assert_eq!(
            plan.unavailable_defaults,
            strings(&["ingresses", "storageclasses"])
        );
    }

    // --- object filter ---

    #[test]
    fn service_account_tokens_are_skipped_by_type_only() {
        let d = discovery();
        let secrets = resolve_in("secrets", &d).unwrap();
        let sa = json!({"kind": "Secret", "type": "kubernetes.io/service-account-token"});
        assert_eq!(
            skip_object(secrets, "default-token-abcde", &sa),
            Some("service-account token")
        );

        // Secrets are skipped by type, never by name: these are user data.
        for name in ["api-token-x", "default-token-lookalike", "my-token-store"] {
            let user = json!({"kind": "Secret", "type": "Opaque"});
            assert_eq!(skip_object(secrets, name, &user), None, "{name}");
        }
        let untyped = json!({"kind": "Secret"});
        assert_eq!(skip_object(secrets, "token-1", &untyped), None);

        // Other resources are never skipped, whatever their `type` field says.
        let cms = resolve_in("configmaps", &d).unwrap();
        let cm = json!({"type": "kubernetes.io/service-account-token"});
        assert_eq!(skip_object(cms, "cm", &cm), None);
    }

    #[test]
    fn the_published_root_ca_is_skipped_only_as_a_core_configmap() {
        let d = discovery();
        let cms = resolve_in("configmaps", &d).unwrap();
        let data = json!({"kind": "ConfigMap", "data": {"ca.crt": "x"}});
        assert_eq!(
            skip_object(cms, "kube-root-ca.crt", &data),
            Some("published by the control plane")
        );
        assert_eq!(skip_object(cms, "kube-root-ca.crt.bak", &data), None);
        let secrets = resolve_in("secrets", &d).unwrap();
        assert_eq!(skip_object(secrets, "kube-root-ca.crt", &data), None);
    }
}
