//! The order objects are restored in: a pure sort key over type folders (`type_dir`).
//!
//! 1. [`RESTORE_ORDER`], in that order — definitions and containers first, then what other
//!    objects refer to, then what runs:
//!    * `customresourcedefinitions` before anything (the engine waits until each is
//!      Established), then `namespaces`;
//!    * storage classes and CSI snapshot classes/contents/snapshots (a claim may be
//!      provisioned from a snapshot), `priorityclasses` and `runtimeclasses` (admission refuses
//!      a pod naming one that does not exist), persistent volumes, then claims;
//!    * service accounts, secrets, config maps (a pod refers to all three and does not start
//!      without them), limit ranges (defaults apply at pod admission) and resource quotas;
//!    * RBAC: cluster roles, roles, cluster role bindings, role bindings — roles before the
//!      bindings that reference them (binding a role that does not exist needs the `bind`
//!      verb), and all of it before the pods that need the permissions (a Velero complaint);
//!    * endpoints and endpoint slices (of selector-less Services), then `services` — before
//!      pods so that the `<SVC>_SERVICE_HOST` environment variables exist in them;
//!    * `pods`, then `replicasets`, then `deployments` — each adopts the orphans restored
//!      before it (restored pods into their ReplicaSet, ReplicaSets with their revision
//!      history into their Deployment) instead of creating duplicates that are deleted again;
//!      likewise `controllerrevisions` before `statefulsets` and `daemonsets`; then `jobs`,
//!      `cronjobs`;
//!    * `ingressclasses`, `ingresses`, `networkpolicies`, `poddisruptionbudgets`.
//! 2. Every other built-in type, alphabetically by `type_dir` (e.g. `horizontalpodautoscalers`).
//! 3. Custom resources (`type_dir` = `plural.group`), alphabetically — after all CRDs.
//! 4. [`RESTORE_LAST`]: admission webhooks and admission policies. They intercept every
//!    create; restored earlier, a fail-closed webhook whose backend is not running yet would
//!    refuse the rest of the restore.
//!
//! Owner references do not change this order: dependents come before their owners on
//! purpose, so an owner's controller or operator finds them (a ReplicaSet its Pods, an operator
//! the Secret it would otherwise regenerate). A reference to an owner restored later is left
//! out on create and put back at the end of the restore unless the owner's controller adopted
//! the object by then ([`super::owners`]).
//!
//! Within a type, objects are ordered by namespace (cluster-scoped first) and name, so a
//! restore is reproducible. Unlike Velero, the order is per restore-able type, not a server
//! flag, and covers RBAC and webhooks.

use crate::core::manifest::ManifestEntry;

/// The `type_dir` of CustomResourceDefinitions (`apiextensions.k8s.io` is a built-in group).
pub const CRD_TYPE_DIR: &str = "customresourcedefinitions";
/// The `type_dir` of Namespaces.
pub const NAMESPACE_TYPE_DIR: &str = "namespaces";

/// Types restored first, in this order (see the module docs for why).
pub const RESTORE_ORDER: [&str; 34] = [
    CRD_TYPE_DIR,
    NAMESPACE_TYPE_DIR,
    "storageclasses",
    "volumesnapshotclasses.snapshot.storage.k8s.io",
    "volumesnapshotcontents.snapshot.storage.k8s.io",
    "volumesnapshots.snapshot.storage.k8s.io",
    "priorityclasses",
    "runtimeclasses",
    "persistentvolumes",
    "persistentvolumeclaims",
    "serviceaccounts",
    "secrets",
    "configmaps",
    "limitranges",
    "resourcequotas",
    "clusterroles",
    "roles",
    "clusterrolebindings",
    "rolebindings",
    "endpoints",
    "endpointslices",
    "services",
    "pods",
    "replicasets",
    "deployments",
    "controllerrevisions",
    "statefulsets",
    "daemonsets",
    "jobs",
    "cronjobs",
    "ingressclasses",
    "ingresses",
    "networkpolicies",
    "poddisruptionbudgets",
];

/// Types restored after everything else, custom resources included, in this order.
pub const RESTORE_LAST: [&str; 6] = [
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
];

const OTHER_BUILTIN: u32 = RESTORE_ORDER.len() as u32;
const CUSTOM: u32 = OTHER_BUILTIN + 1;
const LAST: u32 = CUSTOM + 1;

/// Whether a `type_dir` names a custom resource (or an aggregated API): built-in groups store
/// under the bare plural, everything else under `plural.group`.
pub fn is_custom_type(type_dir: &str) -> bool {
    type_dir.contains('.')
}

/// Sort key of a type: lower restores earlier. The second part orders types of the same tier
/// alphabetically (it is the `type_dir` itself, empty for the fixed positions).
pub fn restore_priority(type_dir: &str) -> (u32, &str) {
    let position = |list: &[&str]| list.iter().position(|t| *t == type_dir);
    if let Some(i) = position(&RESTORE_ORDER) {
        (i as u32, "")
    } else if let Some(i) = position(&RESTORE_LAST) {
        (LAST + i as u32, "")
    } else if is_custom_type(type_dir) {
        (CUSTOM, type_dir)
    } else {
        (OTHER_BUILTIN, type_dir)
    }
}

/// Full sort key of one stored object: type priority, then namespace (cluster-scoped first),
/// then name.
pub fn entry_sort_key(entry: &ManifestEntry) -> ((u32, &str), Option<&str>, &str) {
    (
        restore_priority(&entry.resource),
        entry.namespace.as_deref(),
        &entry.name,
    )
}

/// Sorts entries into restore order (stable; see the module docs).
pub fn order_entries(entries: &mut [&ManifestEntry]) {
    entries.sort_by_cached_key(|e| entry_sort_key(e));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::manifest::Sha256Digest;
    use std::sync::Arc;

    fn entry(resource: &str, kind: &str, ns: Option<&str>, name: &str) -> ManifestEntry {
        ManifestEntry {
            key: format!("x/{resource}/{name}.json"),
            api_version: Arc::from("v1"),
            kind: Arc::from(kind),
            resource: Arc::from(resource),
            namespace: ns.map(Arc::from),
            name: name.into(),
            size: 0,
            sha256: Sha256Digest::default(),
        }
    }

    fn position(sorted: &[&ManifestEntry], resource: &str) -> usize {
        sorted
            .iter()
            .position(|e| &*e.resource == resource)
            .unwrap()
    }

    #[test]
    fn lists_have_no_duplicates_and_do_not_overlap() {
        let mut all: Vec<&str> = RESTORE_ORDER.iter().chain(&RESTORE_LAST).copied().collect();
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!(all.len(), before);
    }

    #[test]
    fn tiers() {
        assert_eq!(restore_priority(CRD_TYPE_DIR), (0, ""));
        assert_eq!(restore_priority(NAMESPACE_TYPE_DIR), (1, ""));
        let hpa = restore_priority("horizontalpodautoscalers");
        let leases = restore_priority("leases");
        assert_eq!(hpa.0, leases.0);
        assert!(hpa < leases, "alphabetical among the other built-ins");
        let widget = restore_priority("widgets.acme.io");
        assert!(widget > leases, "custom resources after every built-in");
        assert!(restore_priority("alerts.acme.io") < widget);
        assert!(restore_priority("validatingwebhookconfigurations") > widget);
        assert!(
            restore_priority("volumesnapshots.snapshot.storage.k8s.io")
                < restore_priority("persistentvolumeclaims")
        );
    }

    #[test]
    fn dependencies_come_first() {
        let entries = [
            entry(
                "validatingwebhookconfigurations",
                "ValidatingWebhookConfiguration",
                None,
                "w",
            ),
            entry("widgets.acme.io", "Widget", Some("shop"), "w1"),
            entry("rolebindings", "RoleBinding", Some("shop"), "read"),
            entry("deployments", "Deployment", Some("shop"), "web"),
            entry(
                "horizontalpodautoscalers",
                "HorizontalPodAutoscaler",
                Some("shop"),
                "web",
            ),
            entry("pods", "Pod", Some("shop"), "web-1"),
            entry("replicasets", "ReplicaSet", Some("shop"), "web-5d9"),
            entry("services", "Service", Some("shop"), "web"),
            entry("roles", "Role", Some("shop"), "reader"),
            entry("clusterroles", "ClusterRole", None, "view-widgets"),
            entry("serviceaccounts", "ServiceAccount", Some("shop"), "app"),
            entry("configmaps", "ConfigMap", Some("shop"), "cfg"),
            entry("secrets", "Secret", Some("shop"), "s"),
            entry(
                "persistentvolumeclaims",
                "PersistentVolumeClaim",
                Some("shop"),
                "data",
            ),
            entry("persistentvolumes", "PersistentVolume", None, "pv"),
            entry("priorityclasses", "PriorityClass", None, "high"),
            entry("namespaces", "Namespace", None, "shop"),
            entry(
                CRD_TYPE_DIR,
                "CustomResourceDefinition",
                None,
                "widgets.acme.io",
            ),
        ];
        let mut sorted: Vec<&ManifestEntry> = entries.iter().collect();
        order_entries(&mut sorted);
        let at = |r: &str| position(&sorted, r);

        assert_eq!(at(CRD_TYPE_DIR), 0);
        assert_eq!(at("namespaces"), 1);
        assert!(
            at("namespaces") < at("rolebindings"),
            "RoleBinding after its namespace"
        );
        assert!(at(CRD_TYPE_DIR) < at("widgets.acme.io"), "CR after its CRD");
        assert!(at("roles") < at("rolebindings"));
        assert!(at("clusterroles") < at("rolebindings"));
        assert!(at("rolebindings") < at("pods"));
        assert!(at("serviceaccounts") < at("pods"));
        assert!(at("secrets") < at("pods"));
        assert!(at("configmaps") < at("pods"));
        assert!(at("priorityclasses") < at("pods"));
        assert!(at("persistentvolumes") < at("persistentvolumeclaims"));
        assert!(at("persistentvolumeclaims") < at("pods"));
        assert!(at("services") < at("pods"));
        assert!(at("pods") < at("replicasets"));
        assert!(at("replicasets") < at("deployments"));
        assert!(at("deployments") < at("horizontalpodautoscalers"));
        assert!(at("horizontalpodautoscalers") < at("widgets.acme.io"));
        assert_eq!(at("validatingwebhookconfigurations"), sorted.len() - 1);
    }

    #[test]
    fn within_a_type_cluster_scoped_first_then_namespace_and_name() {
        let entries = [
            entry("configmaps", "ConfigMap", Some("b"), "a"),
            entry("configmaps", "ConfigMap", Some("a"), "z"),
            entry("configmaps", "ConfigMap", Some("a"), "b"),
            entry("widgets.acme.io", "Widget", None, "x"),
            entry("widgets.acme.io", "Widget", Some("a"), "a"),
        ];
        let mut sorted: Vec<&ManifestEntry> = entries.iter().collect();
        order_entries(&mut sorted);
        let names: Vec<(Option<&str>, &str)> = sorted
            .iter()
            .map(|e| (e.namespace.as_deref(), e.name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                (Some("a"), "b"),
                (Some("a"), "z"),
                (Some("b"), "a"),
                (None, "x"),
                (Some("a"), "a"),
            ]
        );
    }

    #[test]
    fn custom_types_are_recognised_by_their_group_suffix() {
        assert!(is_custom_type("certificates.cert-manager.io"));
        assert!(is_custom_type("gateways.gateway.networking.k8s.io"));
        assert!(!is_custom_type("deployments"));
        assert!(!is_custom_type(CRD_TYPE_DIR));
    }
}
