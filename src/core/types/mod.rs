//! The catalogue of Kubernetes resource types: the one place that knows, per type, its API
//! group, plural, kind, short names and scope, where it goes in a restore and whether it is
//! restored at all; and the one resolver of the names users write for types ([`catalog`]).
//!
//! [`KNOWN_TYPES`] lists every type kube-apiserver serves with its default settings that has
//! objects to keep (the types that can only be created, such as `tokenreviews`, and the
//! computed `componentstatuses` are left out), plus the custom types whose restore needs a rule
//! (CSI snapshots, this operator's own `Backup` and `Restore`). At run time a
//! [`catalog::TypeCatalog`] starts from the built-in entries and is extended by what the run
//! knows: API discovery for a backup (every served type, custom resources with their short
//! names), the backup's contents and stored CRDs for a restore. `tests/type_catalogue.rs`
//! compares the built-in entries with what a live API server serves, so a Kubernetes release
//! that adds, renames or re-scopes a type fails the suite instead of diverging silently.
//!
//! Objects are stored per type in a folder ([`type_dir`]): the plural for the built-in API
//! groups ([`BUILTIN_GROUPS`]), `plural.group` for every other group.

pub mod catalog;

use kube::core::discovery::{ApiResource, Scope, verbs};

/// API groups served by kube-apiserver itself, in its group priority order: the order it
/// lists them in discovery, which is what decides a bare type name served by several groups
/// (`events` is the core group's, not `events.k8s.io`'s).
///
/// A list and not "ends with `.k8s.io`": CRDs may use `*.k8s.io` groups
/// (`gateway.networking.k8s.io`, `snapshot.storage.k8s.io`) and are custom resources. Groups
/// served only when enabled (`internal.apiserver.k8s.io`, `storagemigration.k8s.io`) are listed
/// too, so their objects are stored under the bare plural like every built-in type.
pub const BUILTIN_GROUPS: [&str; 24] = [
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
    "resource.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "storagemigration.k8s.io",
    // No longer served since 1.22, kept so manifests from old clusters classify correctly.
    "extensions",
];

/// Whether `group` is served by kube-apiserver itself (not a CRD or an aggregated API).
pub fn is_builtin_group(group: &str) -> bool {
    builtin_rank(group).is_some()
}

/// Position of a built-in group in [`BUILTIN_GROUPS`] (lower wins a bare name).
pub fn builtin_rank(group: &str) -> Option<usize> {
    BUILTIN_GROUPS.iter().position(|g| *g == group)
}

/// The folder a type's objects are stored in: the plural for built-in groups (`deployments`,
/// `clusterroles`), `plural.group` for everything else, so two custom resources with the same
/// plural never share a folder.
pub fn type_dir(group: &str, plural: &str) -> String {
    if is_builtin_group(group) {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// Whether a type folder holds a custom resource (or an aggregated API's type): built-in groups
/// store under the bare plural, everything else under `plural.group`.
pub fn is_custom_type(type_dir: &str) -> bool {
    type_dir.contains('.')
}

/// The API group of CustomResourceDefinitions.
pub const CRD_GROUP: &str = "apiextensions.k8s.io";
/// The plural (and type folder) of CustomResourceDefinitions.
pub const CRD_PLURAL: &str = "customresourcedefinitions";
/// The plural (and type folder) of Namespaces.
pub const NAMESPACE_PLURAL: &str = "namespaces";

// ---------------------------------------------------------------------------------------------
// The known types
// ---------------------------------------------------------------------------------------------

/// Where a type's objects go in a restore (see [`crate::core::restore::order`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// First, in the order of [`KNOWN_TYPES`]: definitions and containers, then what other
    /// objects refer to, then what runs.
    Early,
    /// After the early types, alphabetically by type folder together with every built-in type
    /// the catalogue does not list.
    Anytime,
    /// After everything else, custom resources included, in the order of [`KNOWN_TYPES`].
    Last,
    /// Never restored; the reason is shown in the Restore's `skippedResources`.
    Never(&'static str),
}

/// What the catalogue knows about one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownType {
    /// API group, `""` for the core group.
    pub group: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    /// Only for built-in types: a custom type's short names come from its CRD (discovery, or
    /// the CRD stored in a backup).
    pub short_names: &'static [&'static str],
    pub scope: Scope,
    pub restore: Restore,
}

impl KnownType {
    /// Served by kube-apiserver itself.
    pub fn is_builtin(&self) -> bool {
        is_builtin_group(self.group)
    }

    /// The folder its objects are stored in ([`type_dir`]).
    pub fn type_dir(&self) -> String {
        type_dir(self.group, self.plural)
    }

    /// Why objects of this type are never restored, if they are not.
    pub fn never_restored(&self) -> Option<&'static str> {
        match self.restore {
            Restore::Never(reason) => Some(reason),
            _ => None,
        }
    }
}

/// Why Events are not restored.
pub const EVENTS_NOT_RESTORED: &str =
    "events record the source cluster's history and are not restored";
/// Why Leases are not restored.
pub const LEASES_NOT_RESTORED: &str =
    "leases hold the source cluster's leader-election and heartbeat state";
/// Why Nodes, CSINodes and VolumeAttachments are not restored.
pub const NODE_STATE_NOT_RESTORED: &str =
    "node state of the source cluster: nodes register themselves";
/// Why this operator's Backups are not restored.
pub const BACKUPS_NOT_RESTORED: &str = "Backup objects are not restored: a second copy would \
                                        write to, and expire runs in, the same storage path";
/// Why this operator's Restores are not restored.
pub const RESTORES_NOT_RESTORED: &str =
    "Restore objects are not restored: the copy would run again";
/// Why this operator's ClusterStorageLocations are not restored.
pub const LOCATIONS_NOT_RESTORED: &str = "ClusterStorageLocation objects are not restored: they \
                                          hand storage and the operator's keys to namespaces, \
                                          which only an administrator sets up";

const NS: Scope = Scope::Namespaced;
const CLUSTER: Scope = Scope::Cluster;

const fn t(
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    short_names: &'static [&'static str],
    scope: Scope,
    restore: Restore,
) -> KnownType {
    KnownType {
        group,
        plural,
        kind,
        short_names,
        scope,
        restore,
    }
}

use Restore::{Anytime, Early, Last, Never};

/// The catalogue, in restore order: the [`Restore::Early`] types in the order they are
/// restored, then the others, then the [`Restore::Last`] types in their order.
#[rustfmt::skip]
pub const KNOWN_TYPES: &[KnownType] = &[
    // CRDs before anything (the restore waits until each is Established), then the namespaces
    // everything else lives in.
    t(CRD_GROUP, CRD_PLURAL, "CustomResourceDefinition", &["crd", "crds"], CLUSTER, Early),
    t("", NAMESPACE_PLURAL, "Namespace", &["ns"], CLUSTER, Early),
    // Storage classes and CSI snapshots (a claim may be provisioned from a snapshot).
    t("storage.k8s.io", "storageclasses", "StorageClass", &["sc"], CLUSTER, Early),
    t("snapshot.storage.k8s.io", "volumesnapshotclasses", "VolumeSnapshotClass", &[], CLUSTER, Early),
    t("snapshot.storage.k8s.io", "volumesnapshotcontents", "VolumeSnapshotContent", &[], CLUSTER, Early),
    t("snapshot.storage.k8s.io", "volumesnapshots", "VolumeSnapshot", &[], NS, Early),
    // Admission refuses a pod naming a priority or runtime class that does not exist.
    t("scheduling.k8s.io", "priorityclasses", "PriorityClass", &["pc"], CLUSTER, Early),
    t("node.k8s.io", "runtimeclasses", "RuntimeClass", &[], CLUSTER, Early),
    t("", "persistentvolumes", "PersistentVolume", &["pv"], CLUSTER, Early),
    t("", "persistentvolumeclaims", "PersistentVolumeClaim", &["pvc"], NS, Early),
    // A pod refers to all three and does not start without them.
    t("", "serviceaccounts", "ServiceAccount", &["sa"], NS, Early),
    t("", "secrets", "Secret", &[], NS, Early),
    t("", "configmaps", "ConfigMap", &["cm"], NS, Early),
    // Defaults and limits apply at pod admission.
    t("", "limitranges", "LimitRange", &["limits"], NS, Early),
    t("", "resourcequotas", "ResourceQuota", &["quota"], NS, Early),
    // Roles before the bindings that reference them (binding a role that does not exist needs
    // the `bind` verb), all of it before the pods that need the permissions.
    t("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", &[], CLUSTER, Early),
    t("rbac.authorization.k8s.io", "roles", "Role", &[], NS, Early),
    t("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", &[], CLUSTER, Early),
    t("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", &[], NS, Early),
    // Endpoints of selector-less Services, then Services: before pods, so the
    // `<SVC>_SERVICE_HOST` environment variables exist in them.
    t("", "endpoints", "Endpoints", &["ep"], NS, Early),
    t("discovery.k8s.io", "endpointslices", "EndpointSlice", &[], NS, Early),
    t("", "services", "Service", &["svc"], NS, Early),
    // Each controller adopts the orphans restored before it (pods into their ReplicaSet,
    // ReplicaSets with their revision history into their Deployment) instead of creating
    // duplicates that are deleted again.
    t("", "pods", "Pod", &["po"], NS, Early),
    t("apps", "replicasets", "ReplicaSet", &["rs"], NS, Early),
    t("apps", "deployments", "Deployment", &["deploy"], NS, Early),
    t("apps", "controllerrevisions", "ControllerRevision", &[], NS, Early),
    t("apps", "statefulsets", "StatefulSet", &["sts"], NS, Early),
    t("apps", "daemonsets", "DaemonSet", &["ds"], NS, Early),
    t("batch", "jobs", "Job", &[], NS, Early),
    t("batch", "cronjobs", "CronJob", &["cj"], NS, Early),
    t("networking.k8s.io", "ingressclasses", "IngressClass", &[], CLUSTER, Early),
    t("networking.k8s.io", "ingresses", "Ingress", &["ing"], NS, Early),
    t("networking.k8s.io", "networkpolicies", "NetworkPolicy", &["netpol"], NS, Early),
    t("policy", "poddisruptionbudgets", "PodDisruptionBudget", &["pdb"], NS, Early),
    // The other built-in types.
    t("", "podtemplates", "PodTemplate", &[], NS, Anytime),
    t("", "replicationcontrollers", "ReplicationController", &["rc"], NS, Anytime),
    t("apiregistration.k8s.io", "apiservices", "APIService", &[], CLUSTER, Anytime),
    t("autoscaling", "horizontalpodautoscalers", "HorizontalPodAutoscaler", &["hpa"], NS, Anytime),
    t("certificates.k8s.io", "certificatesigningrequests", "CertificateSigningRequest", &["csr"], CLUSTER, Anytime),
    t("flowcontrol.apiserver.k8s.io", "flowschemas", "FlowSchema", &[], CLUSTER, Anytime),
    t("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations", "PriorityLevelConfiguration", &[], CLUSTER, Anytime),
    t("networking.k8s.io", "ipaddresses", "IPAddress", &["ip"], CLUSTER, Anytime),
    t("networking.k8s.io", "servicecidrs", "ServiceCIDR", &[], CLUSTER, Anytime),
    t("resource.k8s.io", "deviceclasses", "DeviceClass", &[], CLUSTER, Anytime),
    t("resource.k8s.io", "resourceclaims", "ResourceClaim", &[], NS, Anytime),
    t("resource.k8s.io", "resourceclaimtemplates", "ResourceClaimTemplate", &[], NS, Anytime),
    t("resource.k8s.io", "resourceslices", "ResourceSlice", &[], CLUSTER, Anytime),
    t("storage.k8s.io", "csidrivers", "CSIDriver", &[], CLUSTER, Anytime),
    t("storage.k8s.io", "csistoragecapacities", "CSIStorageCapacity", &[], NS, Anytime),
    t("storage.k8s.io", "volumeattributesclasses", "VolumeAttributesClass", &["vac"], CLUSTER, Anytime),
    // State of the source cluster's processes and nodes.
    t("", "events", "Event", &["ev"], NS, Never(EVENTS_NOT_RESTORED)),
    t("events.k8s.io", "events", "Event", &["ev"], NS, Never(EVENTS_NOT_RESTORED)),
    t("coordination.k8s.io", "leases", "Lease", &[], NS, Never(LEASES_NOT_RESTORED)),
    t("", "nodes", "Node", &["no"], CLUSTER, Never(NODE_STATE_NOT_RESTORED)),
    t("storage.k8s.io", "csinodes", "CSINode", &[], CLUSTER, Never(NODE_STATE_NOT_RESTORED)),
    t("storage.k8s.io", "volumeattachments", "VolumeAttachment", &[], CLUSTER, Never(NODE_STATE_NOT_RESTORED)),
    // This operator's own types.
    t(crate::api::GROUP, "backups", "Backup", &[], NS, Never(BACKUPS_NOT_RESTORED)),
    t(crate::api::GROUP, "restores", "Restore", &[], NS, Never(RESTORES_NOT_RESTORED)),
    t(crate::api::GROUP, "clusterstoragelocations", "ClusterStorageLocation", &[], CLUSTER, Never(LOCATIONS_NOT_RESTORED)),
    // Admission webhooks and policies intercept every create: restored earlier, a fail-closed
    // webhook whose backend is not running yet would refuse the rest of the restore.
    t("admissionregistration.k8s.io", "mutatingadmissionpolicies", "MutatingAdmissionPolicy", &[], CLUSTER, Last),
    t("admissionregistration.k8s.io", "mutatingadmissionpolicybindings", "MutatingAdmissionPolicyBinding", &[], CLUSTER, Last),
    t("admissionregistration.k8s.io", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", &[], CLUSTER, Last),
    t("admissionregistration.k8s.io", "validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding", &[], CLUSTER, Last),
    t("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", &[], CLUSTER, Last),
    t("admissionregistration.k8s.io", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", &[], CLUSTER, Last),
];

/// The catalogue's entry for a kind of an API group (as objects name it: `apiVersion`'s group
/// and `kind`).
pub fn known_kind(group: &str, kind: &str) -> Option<&'static KnownType> {
    KNOWN_TYPES
        .iter()
        .find(|t| t.group == group && t.kind == kind)
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

/// One resource of API discovery: one group/version/resource, with kube's [`ApiResource`]
/// (what the dynamic `Api` needs) and the names and capabilities discovery adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredResource {
    pub api: ApiResource,
    pub scope: Scope,
    /// Falls back to the lower-case kind when the API server leaves it empty.
    pub singular: String,
    pub short_names: Vec<String>,
    pub verbs: Vec<String>,
    /// `api.version` is the group's preferred version.
    pub preferred: bool,
}

impl DiscoveredResource {
    pub fn group(&self) -> &str {
        &self.api.group
    }

    pub fn plural(&self) -> &str {
        &self.api.plural
    }

    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    pub fn can_list(&self) -> bool {
        self.verbs.iter().any(|v| v == verbs::LIST)
    }

    /// Whether this is the resource `plural` of `group`.
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.api.group == group && self.api.plural == plural
    }

    /// `plural.group`, or just `plural` for the core group: the unambiguous name.
    pub fn qualified_name(&self) -> String {
        qualified_name(&self.api.group, &self.api.plural)
    }

    /// The folder its objects are stored in ([`type_dir`]).
    pub fn type_dir(&self) -> String {
        type_dir(&self.api.group, &self.api.plural)
    }
}

/// `plural.group`, or `plural` for the core group.
pub fn qualified_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeSet;

    pub(crate) fn res(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        short: &[&str],
        namespaced: bool,
    ) -> DiscoveredResource {
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        DiscoveredResource {
            api: ApiResource {
                group: group.into(),
                version: version.into(),
                api_version,
                kind: kind.into(),
                plural: plural.into(),
            },
            scope: if namespaced { NS } else { CLUSTER },
            singular: kind.to_ascii_lowercase(),
            short_names: short.iter().map(|s| s.to_string()).collect(),
            verbs: [
                "create", "delete", "get", "list", "patch", "update", "watch",
            ]
            .map(String::from)
            .to_vec(),
            preferred: true,
        }
    }

    #[test]
    fn every_type_is_listed_once() {
        let mut seen = BTreeSet::new();
        for t in KNOWN_TYPES {
            assert!(seen.insert((t.group, t.plural)), "{}.{}", t.plural, t.group);
            assert!(
                known_kind(t.group, t.kind).is_some_and(|k| k.plural == t.plural),
                "{} {} is listed twice",
                t.group,
                t.kind
            );
        }
    }

    #[test]
    fn the_table_is_in_restore_order() {
        // Early types first, Last types at the end: the table reads as the restore order.
        let stages: Vec<u8> = KNOWN_TYPES
            .iter()
            .map(|t| match t.restore {
                Early => 0,
                Anytime | Never(_) => 1,
                Last => 2,
            })
            .collect();
        assert!(stages.is_sorted(), "{stages:?}");
    }

    #[test]
    fn types_sharing_a_folder_share_their_rules() {
        // The core group's and events.k8s.io's Events are both stored under `events`.
        for a in KNOWN_TYPES {
            for b in KNOWN_TYPES {
                if a.type_dir() == b.type_dir() {
                    assert_eq!(a.restore, b.restore, "{}", a.type_dir());
                }
            }
        }
    }

    #[test]
    fn custom_entries_carry_no_names_of_their_own() {
        for t in KNOWN_TYPES.iter().filter(|t| !t.is_builtin()) {
            assert!(t.short_names.is_empty(), "{}", t.type_dir());
            assert!(is_custom_type(&t.type_dir()));
        }
    }

    #[test]
    fn the_operators_own_types_match_its_crds() {
        for crd in crate::api::crds() {
            let names = &crd.spec.names;
            let known = known_kind(&crd.spec.group, &names.kind).unwrap();
            assert_eq!(known.plural, names.plural);
            assert_eq!(
                known.scope == NS,
                crd.spec.scope == "Namespaced",
                "{}",
                names.kind
            );
            assert!(known.never_restored().is_some());
        }
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
        assert!(builtin_rank("") < builtin_rank("events.k8s.io"));
    }

    #[test]
    fn custom_types_are_recognised_by_their_group_suffix() {
        assert!(is_custom_type("certificates.cert-manager.io"));
        assert!(is_custom_type("gateways.gateway.networking.k8s.io"));
        assert!(!is_custom_type("deployments"));
        assert!(!is_custom_type(CRD_PLURAL));
        assert_eq!(type_dir("apps", "deployments"), "deployments");
        assert_eq!(type_dir("acme.io", "widgets"), "widgets.acme.io");
        assert_eq!(qualified_name("", "pods"), "pods");
        assert_eq!(qualified_name("apps", "deployments"), "deployments.apps");
    }

    #[test]
    fn discovered_resources_say_what_they_are() {
        let d = res("apps", "v1", "Deployment", "deployments", &["deploy"], true);
        assert!(d.namespaced() && d.can_list() && d.is("apps", "deployments"));
        assert_eq!(d.qualified_name(), "deployments.apps");
        assert_eq!(d.type_dir(), "deployments");
        let mut create_only = res("", "v1", "Binding", "bindings", &[], true);
        create_only.verbs = vec!["create".into()];
        assert!(!create_only.can_list());
    }
}
