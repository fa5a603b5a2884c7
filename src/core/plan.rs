//! What a backup run covers: namespaces, resource types and per-object exclusions.
//!
//! Everything here is pure: the engine fetches the namespace list and the discovery data, and
//! these functions decide. Namespace selection follows the design document's
//! `getNamespacesToBackup`; resource types are resolved through API discovery (as `kubectl`
//! resolves them) instead of the document's hard-coded switch, so any served type, including
//! custom resources, can be backed up.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::api::BackupSource;

/// Excluded when neither `namespaces` nor `namespace` is set (the document's default).
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

/// The resource that carries CustomResourceDefinitions.
pub const CRD_RESOURCE: &str = "customresourcedefinitions.apiextensions.k8s.io";
const CRD_GROUP: &str = "apiextensions.k8s.io";
const CRD_PLURAL: &str = "customresourcedefinitions";

/// API groups served by kube-apiserver itself, in the apiserver's group priority order (the
/// order discovery lists them, which is what decides a bare name for `kubectl`).
///
/// Deliberately a list and not "ends with `.k8s.io`": CRDs may use `*.k8s.io` groups
/// (`gateway.networking.k8s.io`, `snapshot.storage.k8s.io`) and are custom resources.
const BUILTIN_GROUPS: [&str; 24] = [
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
    "storagemigration.k8s.io",
    "internal.apiserver.k8s.io",
    // No longer served since 1.22, kept so manifests from old clusters classify correctly.
    "extensions",
];

/// Whether `group` is served by kube-apiserver itself (not a CRD or an aggregated API).
pub fn is_builtin_group(group: &str) -> bool {
    builtin_rank(group).is_some()
}

fn builtin_rank(group: &str) -> Option<usize> {
    BUILTIN_GROUPS.iter().position(|g| *g == group)
}

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

/// The design document's `getNamespacesToBackup`, without the cluster call:
///
/// 1. `namespaces` empty and `namespace` set → that one namespace;
/// 2. `"*"` anywhere in `namespaces` → every namespace minus `excludeNamespaces` only (the
///    system namespaces are *not* excluded: `"*"` means all, as in the document);
/// 3. a non-empty `namespaces` list → exactly those;
/// 4. nothing → every namespace minus kube-system, kube-public, kube-node-lease and
///    `excludeNamespaces`.
///
/// Deviation from the document: `excludeNamespaces` also removes names from an explicit
/// list (cases 1 and 3). A user who writes an exclusion expects it to win; the document
/// silently ignored it there.
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

/// One resource of API discovery (one group/version/resource).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredResource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    /// `version` is the group's preferred version.
    pub preferred: bool,
}

impl DiscoveredResource {
    /// `plural.group`, or just `plural` for the core group: the unambiguous name.
    pub fn qualified_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `group/version`, or `version` for the core group (the objects' `apiVersion`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn is_subresource(&self) -> bool {
        self.plural.contains('/')
    }

    fn can_list(&self) -> bool {
        self.verbs.iter().any(|v| v == "list")
    }

    fn same_resource(&self, other: &DiscoveredResource) -> bool {
        self.group == other.group && self.plural == other.plural
    }
}

/// How strongly a name matched a resource. `kubectl` only expands a short name when no
/// resource has that full name, so full names win over short names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum MatchTier {
    FullName,
    ShortName,
}

fn match_tier(res: &DiscoveredResource, name: &str) -> Option<MatchTier> {
    // Older API servers report an empty singularName; an empty field never matches.
    let is = |field: &str| !field.is_empty() && field.eq_ignore_ascii_case(name);
    if is(&res.plural) || is(&res.singular) || is(&res.kind) {
        Some(MatchTier::FullName)
    } else if res.short_names.iter().any(|s| is(s)) {
        Some(MatchTier::ShortName)
    } else {
        None
    }
}

/// Resolves a user's resource type name as `kubectl get <name>` would.
///
/// Accepted (case-insensitive): plural, singular, kind, short name, `plural.group`,
/// `kind.group` and `plural.version.group`. Subresources and resources without the `list`
/// verb never resolve (the latter give [`PlanError::NotListable`]). A bare name served by
/// several groups resolves to the core group, then to the built-in group that kube-apiserver
/// ranks first (so `events` is core `v1` Events, not `events.k8s.io`); between custom groups
/// it is ambiguous. Within one group the preferred version wins, then the newest stable one.
pub fn resolve_resource_type<'a>(
    name: &str,
    discovered: &'a [DiscoveredResource],
) -> Result<&'a DiscoveredResource, PlanError> {
    let wanted = name.trim();
    let candidates: Vec<(&DiscoveredResource, MatchTier)> = discovered
        .iter()
        .filter(|r| !r.is_subresource())
        .filter_map(|r| name_matches(r, wanted).map(|t| (r, t)))
        .collect();

    let listable: Vec<_> = candidates.iter().filter(|(r, _)| r.can_list()).collect();
    let Some(best_tier) = listable.iter().map(|(_, t)| *t).min() else {
        if let Some((r, _)) = candidates.first() {
            return Err(PlanError::NotListable {
                name: name.to_string(),
                resource: r.qualified_name(),
                verbs: r.verbs.clone(),
            });
        }
        return Err(PlanError::UnknownResourceType {
            name: name.to_string(),
            suggestion: suggest(wanted, discovered),
        });
    };
    let matched: Vec<&DiscoveredResource> = listable
        .iter()
        .filter(|(_, t)| *t == best_tier)
        .map(|(r, _)| *r)
        .collect();

    // One group: the core group, else the highest-priority built-in group, else the only
    // custom group.
    let groups: BTreeSet<&str> = matched.iter().map(|r| r.group.as_str()).collect();
    let group = match groups
        .iter()
        .filter_map(|g| builtin_rank(g).map(|i| (i, *g)))
        .min()
    {
        Some((_, g)) => g,
        None if groups.len() == 1 => groups.first().copied().unwrap_or_default(),
        None => {
            let mut names: Vec<String> = Vec::new();
            for r in &matched {
                let q = r.qualified_name();
                if !names.contains(&q) {
                    names.push(q);
                }
            }
            names.sort();
            return Err(PlanError::AmbiguousResourceType {
                name: name.to_string(),
                candidates: names,
            });
        }
    };

    let mut in_group: Vec<&DiscoveredResource> =
        matched.into_iter().filter(|r| r.group == group).collect();
    in_group.sort_by(|a, b| {
        b.preferred
            .cmp(&a.preferred)
            .then_with(|| compare_kube_versions(&a.version, &b.version))
    });
    // Two different plurals of one group matching the same bare name (e.g. a kind and
    // someone else's short name) cannot be told apart.
    let mut plurals: Vec<String> = in_group.iter().map(|r| r.qualified_name()).collect();
    plurals.sort();
    plurals.dedup();
    if plurals.len() > 1 {
        return Err(PlanError::AmbiguousResourceType {
            name: name.to_string(),
            candidates: plurals,
        });
    }
    in_group
        .first()
        .copied()
        .ok_or_else(|| PlanError::UnknownResourceType {
            name: name.to_string(),
            suggestion: None,
        })
}

/// Matches `wanted` against one resource in every accepted spelling.
fn name_matches(res: &DiscoveredResource, wanted: &str) -> Option<MatchTier> {
    let Some((head, rest)) = wanted.split_once('.') else {
        return match_tier(res, wanted);
    };
    // `plural.group` / `kind.group`.
    let mut best = if res.group.eq_ignore_ascii_case(rest) {
        match_tier(res, head)
    } else {
        None
    };
    // `plural.version.group`.
    if let Some((version, group)) = rest.split_once('.')
        && res.version.eq_ignore_ascii_case(version)
        && res.group.eq_ignore_ascii_case(group)
        && let Some(t) = match_tier(res, head)
    {
        best = Some(best.map_or(t, |b| b.min(t)));
    }
    best
}

/// Kubernetes version order (`v1` > `v1beta2` > `v1beta1` > `v1alpha1` > anything else),
/// as `Less` = higher priority so it can be used directly in an ascending sort.
fn compare_kube_versions(a: &str, b: &str) -> Ordering {
    fn key(v: &str) -> (u8, u64, u64, String) {
        // (stability rank: 0 GA, 1 beta, 2 alpha, 3 other; major; minor; raw)
        let parsed = v.strip_prefix('v').and_then(|rest| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let major: u64 = rest.get(..digits)?.parse().ok()?;
            let tail = rest.get(digits..)?;
            if tail.is_empty() {
                return Some((0, major, 0));
            }
            for (rank, word) in [(1u8, "beta"), (2u8, "alpha")] {
                if let Some(n) = tail.strip_prefix(word) {
                    return n.parse::<u64>().ok().map(|minor| (rank, major, minor));
                }
            }
            None
        });
        match parsed {
            Some((rank, major, minor)) => (rank, major, minor, String::new()),
            None => (3, 0, 0, v.to_string()),
        }
    }
    let (ra, ma, na, sa) = key(a);
    let (rb, mb, nb, sb) = key(b);
    ra.cmp(&rb)
        .then(mb.cmp(&ma))
        .then(nb.cmp(&na))
        .then(sa.cmp(&sb))
}

/// The closest listable name for "did you mean": edit distance ≤ 2 or a prefix.
fn suggest(wanted: &str, discovered: &[DiscoveredResource]) -> Option<String> {
    let wanted = wanted.to_ascii_lowercase();
    if wanted.is_empty() {
        return None;
    }
    let qualified = wanted.contains('.');
    let mut best: Option<(usize, usize, String)> = None; // (distance, group rank, suggestion)
    for r in discovered
        .iter()
        .filter(|r| !r.is_subresource() && r.can_list())
    {
        // Suggest the spelling that resolves without ambiguity worries: plural for built-in
        // groups, plural.group for the rest.
        let suggestion = if is_builtin_group(&r.group) {
            r.plural.to_ascii_lowercase()
        } else {
            r.qualified_name().to_ascii_lowercase()
        };
        let mut spellings = vec![
            r.plural.to_ascii_lowercase(),
            r.singular.to_ascii_lowercase(),
            r.kind.to_ascii_lowercase(),
        ];
        if qualified {
            spellings = spellings
                .into_iter()
                .filter(|_| !r.group.is_empty())
                .map(|s| format!("{s}.{}", r.group.to_ascii_lowercase()))
                .collect();
        }
        for s in spellings.iter().filter(|s| !s.is_empty()) {
            let d = if s.starts_with(&wanted) && wanted.len() >= 3 {
                0
            } else {
                edit_distance(&wanted, s)
            };
            if d > 2 {
                continue;
            }
            let rank = builtin_rank(&r.group).unwrap_or(usize::MAX);
            let cand = (d, rank, suggestion.clone());
            if best.as_ref().is_none_or(|b| cand < *b) {
                best = Some(cand);
            }
        }
    }
    best.map(|(_, _, s)| s).filter(|s| *s != wanted)
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), so the
/// common typo `deplyoments` is one edit away.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (i, cell) in d.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = v;
        }
    }
    d[a.len() * width + b.len()]
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
    /// Default types this cluster does not serve; skipped rather than failing the backup
    /// (the engine should log them).
    pub unavailable_defaults: Vec<String>,
}

impl TypePlan {
    /// Whether the cluster-scoped object `name` of `resource` belongs in the backup. Only
    /// CRDs are filtered: those of the selected custom resources, unless all were asked for.
    pub fn wants_cluster_object(&self, resource: &DiscoveredResource, name: &str) -> bool {
        if resource.group == CRD_GROUP && resource.plural == CRD_PLURAL {
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
    let mut plan = TypePlan::default();
    let mut errors = Vec::new();
    let mut selected: Vec<&DiscoveredResource> = Vec::new();

    if source.resource_types.is_empty() {
        for name in DEFAULT_NAMESPACED_TYPES {
            match resolve_resource_type(name, discovered) {
                Ok(r) => selected.push(r),
                Err(_) => plan.unavailable_defaults.push(name.to_string()),
            }
        }
    } else {
        for name in &source.resource_types {
            match resolve_resource_type(name, discovered) {
                Ok(r) => {
                    if r.group == CRD_GROUP && r.plural == CRD_PLURAL {
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
            match resolve_resource_type(name, discovered) {
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
        .filter(|r| !is_builtin_group(&r.group))
        .map(|r| r.qualified_name())
        .collect();
    if !plan.crd_names.is_empty() {
        // Always served by a real API server; a discovery snapshot without it only loses the
        // CRDs, which the engine cannot back up anyway.
        if let Ok(crd) = resolve_resource_type(CRD_RESOURCE, discovered) {
            selected.push(crd);
        }
    }

    for r in selected {
        if plan.all().any(|p| p.same_resource(r)) {
            continue;
        }
        if r.namespaced {
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
///   recreates them and a restored one would carry a token of another cluster. The design
///   document also skipped every Secret whose *name* contains `token-`; that drops user data
///   (a Secret `api-token-x`) and is not done here.
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
    let core = resource.group.is_empty();
    if core
        && resource.plural == "secrets"
        && data.get("type").and_then(serde_json::Value::as_str) == Some(SERVICE_ACCOUNT_TOKEN_TYPE)
    {
        return Some("service-account token");
    }
    if core && resource.plural == "configmaps" && name == ROOT_CA_CONFIGMAP {
        return Some("published by the control plane");
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn res(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        short: &[&str],
        namespaced: bool,
    ) -> DiscoveredResource {
        DiscoveredResource {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            short_names: short.iter().map(|s| s.to_string()).collect(),
            namespaced,
            verbs: [
                "create", "delete", "get", "list", "patch", "update", "watch",
            ]
            .map(String::from)
            .to_vec(),
            preferred: true,
        }
    }

    /// A discovery snapshot shaped like a real 1.36 API server plus two CRDs.
    pub(crate) fn discovery() -> Vec<DiscoveredResource> {
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
        // The legacy field is ignored once `namespaces` is set (document behaviour).
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
            "\"*\" keeps kube-node-lease: only excludeNamespaces apply, as in the document"
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

    fn resolve(name: &str) -> Result<String, PlanError> {
        let d = discovery();
        resolve_resource_type(name, &d).map(|r| format!("{}@{}", r.qualified_name(), r.version))
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
        assert_eq!(
            resolve_resource_type("deployments", &d).unwrap().group,
            "apps"
        );
        assert_eq!(
            resolve_resource_type("deployments.acme.io", &d)
                .unwrap()
                .group,
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
            resolve_resource_type("configmaps", &d)
                .unwrap()
                .qualified_name(),
            "configmaps"
        );
        let mut d = discovery();
        d.push(res("acme.io", "v1", "Widget", "widgets", &["w"], true));
        d.push(res("other.io", "v1", "W", "ws", &[], true));
        assert_eq!(
            resolve_resource_type("w", &d).unwrap().qualified_name(),
            "ws.other.io"
        );
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
        assert_eq!(resolve_resource_type("widgets", &d).unwrap().version, "v1");
        d.retain(|r| r.version != "v1");
        assert_eq!(
            resolve_resource_type("widgets", &d).unwrap().version,
            "v2beta2"
        );
        assert_eq!(compare_kube_versions("v10", "v2"), Ordering::Less);
        assert_eq!(compare_kube_versions("v1beta1", "foo"), Ordering::Less);
        assert_eq!(
            compare_kube_versions("v1alpha2", "v1alpha1"),
            Ordering::Less
        );
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
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("deplyoments", "deployments"), 1);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn builtin_groups() {
        for g in [
            "",
            "apps",
            "batch",
            "autoscaling",
            "policy",
            "networking.k8s.io",
            "rbac.authorization.k8s.io",
            "storage.k8s.io",
            "apiextensions.k8s.io",
            "flowcontrol.apiserver.k8s.io",
            "storagemigration.k8s.io",
            "resource.k8s.io",
        ] {
            assert!(is_builtin_group(g), "{g}");
        }
        for g in [
            "cert-manager.io",
            "gateway.networking.k8s.io",
            "snapshot.storage.k8s.io",
            "metrics.k8s.io",
            "backup.cnd.dk",
        ] {
            assert!(!is_builtin_group(g), "{g}");
        }
    }

    #[test]
    fn default_plan_is_the_documents_types() {
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
            plan.namespaced[1].version, "v2",
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
            .filter(|r| r.plural != "ingresses" && r.plural != "storageclasses")
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
        let secrets = resolve_resource_type("secrets", &d).unwrap();
        let sa = json!({"kind": "Secret", "type": "kubernetes.io/service-account-token"});
        assert_eq!(
            skip_object(secrets, "default-token-abcde", &sa),
            Some("service-account token")
        );

        // The design document skipped these by name; they are user data.
        for name in ["api-token-x", "default-token-lookalike", "my-token-store"] {
            let user = json!({"kind": "Secret", "type": "Opaque"});
            assert_eq!(skip_object(secrets, name, &user), None, "{name}");
        }
        let untyped = json!({"kind": "Secret"});
        assert_eq!(skip_object(secrets, "token-1", &untyped), None);

        // Other resources are never skipped, whatever their `type` field says.
        let cms = resolve_resource_type("configmaps", &d).unwrap();
        let cm = json!({"type": "kubernetes.io/service-account-token"});
        assert_eq!(skip_object(cms, "cm", &cm), None);
    }

    #[test]
    fn the_published_root_ca_is_skipped_only_as_a_core_configmap() {
        let d = discovery();
        let cms = resolve_resource_type("configmaps", &d).unwrap();
        let data = json!({"kind": "ConfigMap", "data": {"ca.crt": "x"}});
        assert_eq!(
            skip_object(cms, "kube-root-ca.crt", &data),
            Some("published by the control plane")
        );
        assert_eq!(skip_object(cms, "kube-root-ca.crt.bak", &data), None);
        let secrets = resolve_resource_type("secrets", &d).unwrap();
        assert_eq!(skip_object(secrets, "kube-root-ca.crt", &data), None);
    }
}
