//! The order objects are restored in: a pure sort key over type folders (`type_dir`), read
//! from the type catalogue ([`crate::core::types::KNOWN_TYPES`], which says per type why it sits
//! where it does).
//!
//! 1. The types marked [`Restore::Early`], in the catalogue's order: definitions and containers
//!    first (`customresourcedefinitions` before anything, the engine waits until each is
//!    Established, then `namespaces`), then what other objects refer to (storage and snapshot
//!    classes, priority and runtime classes, volumes and claims, service accounts, secrets,
//!    config maps, limits, RBAC, endpoints and services), then what runs: `pods`, then
//!    `replicasets`, then `deployments` — each adopts the orphans restored before it instead of
//!    creating duplicates — likewise `controllerrevisions` before `statefulsets` and
//!    `daemonsets`; then jobs, ingresses, network policies and disruption budgets.
//! 2. Every other built-in type, alphabetically by `type_dir` (e.g. `horizontalpodautoscalers`).
//! 3. Custom resources (`type_dir` = `plural.group`), alphabetically — after all CRDs.
//! 4. The types marked [`Restore::Last`]: admission webhooks and admission policies. They
//!    intercept every create; restored earlier, a fail-closed webhook whose backend is not
//!    running yet would refuse the rest of the restore.
//!
//! Owner references do not change this order: dependents come before their owners on
//! purpose, so an owner's controller or operator finds them (a ReplicaSet its Pods, an operator
//! the Secret it would otherwise regenerate). A reference to an owner restored later is left
//! out on create and put back at the end of the restore unless the owner's controller adopted
//! the object by then ([`super::owners`]).
//!
//! Within a type, objects are ordered by namespace (cluster-scoped first) and name, so a
//! restore is reproducible.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::core::manifest::ManifestEntry;
use crate::core::types::{self, CRD_PLURAL, KNOWN_TYPES, NAMESPACE_PLURAL, Restore};

/// The `type_dir` of CustomResourceDefinitions (`apiextensions.k8s.io` is a built-in group).
pub const CRD_TYPE_DIR: &str = CRD_PLURAL;
/// The `type_dir` of Namespaces.
pub const NAMESPACE_TYPE_DIR: &str = NAMESPACE_PLURAL;

/// The fixed positions of the catalogue's early and last types.
struct Positions {
    early: HashMap<String, u32>,
    last: HashMap<String, u32>,
}

static POSITIONS: LazyLock<Positions> = LazyLock::new(|| {
    let positions = |stage: Restore| -> HashMap<String, u32> {
        let mut map = HashMap::new();
        for t in KNOWN_TYPES.iter().filter(|t| t.restore == stage) {
            let next = map.len() as u32;
            map.entry(t.type_dir()).or_insert(next);
        }
        map
    };
    Positions {
        early: positions(Restore::Early),
        last: positions(Restore::Last),
    }
});

/// Sort key of a type: lower restores earlier. The second part orders types of the same tier
/// alphabetically (it is the `type_dir` itself, empty for the fixed positions).
pub fn restore_priority(type_dir: &str) -> (u32, &str) {
    let positions = &*POSITIONS;
    let other_builtin = positions.early.len() as u32;
    let custom = other_builtin + 1;
    let last = custom + 1;
    if let Some(i) = positions.early.get(type_dir) {
        (*i, "")
    } else if let Some(i) = positions.last.get(type_dir) {
        (last + i, "")
    } else if types::is_custom_type(type_dir) {
        (custom, type_dir)
    } else {
        (other_builtin, type_dir)
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
            location: None,
        }
    }

    fn position(sorted: &[&ManifestEntry], resource: &str) -> usize {
        sorted
            .iter()
            .position(|e| &*e.resource == resource)
            .unwrap()
    }

    #[test]
    fn fixed_positions_do_not_overlap() {
        let p = &*POSITIONS;
        assert!(p.early.keys().all(|t| !p.last.contains_key(t)));
        assert_eq!(p.early.len(), 34);
        assert_eq!(p.last.len(), 6);
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
        sorted.sort_by_cached_key(|e| entry_sort_key(e));
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
        sorted.sort_by_cached_key(|e| entry_sort_key(e));
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
}
