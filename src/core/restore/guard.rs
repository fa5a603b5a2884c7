//! A restore never widens what the Restore asked for, whatever the bucket says.
//!
//! A bucket is untrusted input: whoever can write to it may have crafted the manifest and the
//! objects (the checksums only prove that the objects are the ones the manifest lists). So on
//! top of what the Restore's target selects ([`super::select`]), these rules hold. All but the
//! last are decided from the manifest, before anything is downloaded, so dry runs and
//! `validateOnly` report them the same way.
//!
//! # 1. Names are checked before any use in an API path ([`check_entry`]) — a failure
//!
//! The client puts namespace, name, API version and plural into request paths as they are, so
//! an entry is refused (in `failedResources`, never sent to the API server) unless:
//!
//! * `namespace` is a DNS-1123 label (a namespace name);
//! * `name` follows Kubernetes' path-segment rules, the loosest any type allows (RBAC objects
//!   are named `system:…`): not empty, at most 253 bytes, not `.` or `..`, no `/`, no `%`, no
//!   control characters; a Namespace's name is a DNS-1123 label;
//! * `apiVersion` is `<group>/<version>` or `<version>` (group a DNS-1123 subdomain, version a
//!   label); `kind` is letters, digits and `-`, starting with a letter (a DNS-1035 label once
//!   lower-cased, as the API server requires of CRD kinds);
//! * the type folder (`resource`) is `<plural>` or `<plural>.<group>` in DNS-1123 terms, and
//!   is the one the kind belongs in: the catalogue's folder for a kind it knows (and no other
//!   kind may use a catalogue folder), a bare plural for the built-in groups, `<plural>.<group>`
//!   of the entry's own group otherwise — so an object cannot pass as another type to the
//!   type rules below;
//! * the scope is the type's: a namespace exactly when the catalogue says the type is
//!   namespaced (and, in the engine, when discovery says so: [`check_served`]).
//!
//! The stored object must then agree with its entry (`apiVersion`, `kind`, `metadata.name`,
//! `metadata.namespace`: [`super::clean::check_stored_object`]), and owner references with
//! names that break the path-segment rules are dropped ([`super::owners`]).
//!
//! # 2. Cluster-scoped objects only when `resourceTypes` names their type — a skip
//!
//! With `resourceTypes` empty, no cluster-scoped object is restored: they are listed in
//! `skippedResources` with the type to name. Any spelling the type resolver accepts counts
//! (plural, kind, short name, `plural.group`). Naming a custom resource type names its
//! CustomResourceDefinition too: the backup stores them together and the custom resources
//! cannot be created without it.
//!
//! The exception is `Namespace` objects: the one of each namespace the restore targets is
//! restored (under its mapped name) without being named, as it always was — it is the
//! container the Restore asked for, and its labels (e.g. Pod Security admission) are what the
//! restored workloads were admitted under. Rule 3 still applies to it, and
//! `createNamespaces` only decides about namespaces the backup holds no object for.
//!
//! `skipClusterResources: true` still wins: every cluster-scoped object but those Namespace
//! objects is left out, silently as before.
//!
//! # 3. System namespaces only when named — a skip
//!
//! Objects of a `kube-*` namespace (`kube-system`, `kube-public`, `kube-node-lease`, …), as the
//! source or as the target after mapping, are restored only when `target.namespaces` or a key
//! or value of `target.namespaceMapping` names that namespace. `namespaceMapping: {kube-system:
//! copy}` names it; a single `target.namespaces` entry that takes every namespace of the backup
//! does not name the `kube-*` ones it would take.
//!
//! # 4. Sensitive objects only with `options.includeSensitiveResources: true` — a skip
//!
//! Also when `resourceTypes` names their type (rule 2 applies on top for cluster-scoped ones):
//!
//! * admission webhooks and policies: every type of `admissionregistration.k8s.io`
//!   (validating/mutating webhook configurations, admission policies and their bindings) —
//!   they see or change every request;
//! * `APIService`s (`apiregistration.k8s.io`): they route a whole API group to a backend;
//! * RBAC objects of the control plane: Roles, ClusterRoles and their bindings named `system:…`,
//!   and the built-in ClusterRoles and ClusterRoleBindings `cluster-admin`, `admin`, `edit`,
//!   `view` (an overwrite would change what every holder of them may do);
//! * from the object itself: RoleBindings and ClusterRoleBindings whose `roleRef` is
//!   `cluster-admin` or a `system:…` role, ClusterRoles carrying an
//!   `rbac.authorization.k8s.io/aggregate-to-…` label (their rules are added to the built-in
//!   `admin`/`edit`/`view` roles), and CustomResourceDefinitions with a conversion webhook
//!   (the API server would send every object of the type to that backend) — a CRD also comes
//!   along with its named custom resource type, so this keeps naming the type from implying
//!   a webhook.

use std::collections::BTreeSet;

use serde_json::Value;

use super::mapping::is_valid_namespace_name;
use super::object::{api_group, get, get_str, is_kind, kind};
use super::order::NAMESPACE_TYPE_DIR;
use crate::api::{RestoreOptions, RestoreTarget};
use crate::core::manifest::ManifestEntry;
use crate::core::types::{CRD_GROUP, KNOWN_TYPES, is_builtin_group, known_kind, type_dir};
use kube::core::discovery::Scope;

/// The longest object name Kubernetes accepts.
pub const MAX_NAME_LEN: usize = 253;
/// The longest DNS-1123 label (namespace names, versions, plurals).
pub const MAX_LABEL_LEN: usize = 63;
/// How much of a refused value a message repeats.
const SHOWN_LEN: usize = 100;

/// The option that lets sensitive objects through (rule 4).
pub const INCLUDE_SENSITIVE_OPTION: &str = "spec.options.includeSensitiveResources";

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const ADMISSION_GROUP: &str = "admissionregistration.k8s.io";
const API_REGISTRATION_GROUP: &str = "apiregistration.k8s.io";
const SYSTEM_PREFIX: &str = "system:";
const AGGREGATE_LABEL_PREFIX: &str = "rbac.authorization.k8s.io/aggregate-to-";
/// The bootstrap ClusterRoles (and the `cluster-admin` binding) every cluster has.
const BUILTIN_ROLES: [&str; 4] = ["cluster-admin", "admin", "edit", "view"];

macro_rules! needs_opt_in {
    ($what:literal) => {
        concat!(
            $what,
            "; restored only with spec.options.includeSensitiveResources: true"
        )
    };
}

/// Why an admission webhook or policy is skipped.
pub const SENSITIVE_ADMISSION: &str =
    needs_opt_in!("admission webhook or policy: it sees or changes every API request");
/// Why an APIService is skipped.
pub const SENSITIVE_API_SERVICE: &str =
    needs_opt_in!("APIService: it routes a whole API group to a backend");
/// Why a control-plane RBAC object is skipped.
pub const SENSITIVE_SYSTEM_RBAC: &str = needs_opt_in!(
    "RBAC object of the control plane (named system:*, or the built-in cluster-admin, admin, \
     edit, view)"
);
/// Why a binding to a powerful role is skipped.
pub const SENSITIVE_BINDING: &str = needs_opt_in!("binds cluster-admin or a system:* role");
/// Why a CRD with a conversion webhook is skipped.
pub const SENSITIVE_CONVERSION_WEBHOOK: &str = needs_opt_in!(
    "CustomResourceDefinition with a conversion webhook: the API server would send its objects \
     to that backend"
);
/// Why an aggregated ClusterRole is skipped.
pub const SENSITIVE_AGGREGATED: &str = needs_opt_in!(
    "ClusterRole aggregated into the built-in roles (label rbac.authorization.k8s.io/aggregate-to-*)"
);

/// A manifest entry that cannot name an object safely (rule 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("the backup manifest names an invalid {field} {value:?}: {problem}")]
    InvalidName {
        field: &'static str,
        /// The value, shortened.
        value: String,
        problem: &'static str,
    },
    #[error(
        "the backup manifest stores {kind} ({api_version}) under type {resource:?}, which is \
         not that kind's type"
    )]
    WrongType {
        api_version: String,
        kind: String,
        resource: String,
    },
    #[error("the backup manifest puts cluster-scoped {kind} in namespace {namespace}")]
    ClusterScopedInNamespace { kind: String, namespace: String },
    #[error("the backup manifest puts namespaced {kind} outside any namespace")]
    NamespacedWithoutNamespace { kind: String },
}

// ---------------------------------------------------------------------------------------------
// Rule 1: names
// ---------------------------------------------------------------------------------------------

const LABEL_RULE: &str = "must be at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit";
const SUBDOMAIN_RULE: &str = "must be at most 253 characters of DNS labels (lowercase letters, \
                              digits and '-') joined by '.'";
const API_VERSION_RULE: &str =
    "must be <version> or <group>/<version> (a DNS subdomain and a DNS label)";
const KIND_RULE: &str = "must be at most 63 letters, digits and '-', starting with a letter and ending with a letter \
     or digit";
const TYPE_RULE: &str = "must be <plural> or <plural>.<group> (a DNS label and a DNS subdomain)";

/// Why `s` is not a DNS-1123 label.
pub fn label_problem(s: &str) -> Option<&'static str> {
    (!is_valid_namespace_name(s)).then_some(LABEL_RULE)
}

/// Why `s` is not a DNS-1123 subdomain.
pub fn subdomain_problem(s: &str) -> Option<&'static str> {
    (!crate::core::names::is_dns1123_subdomain(s)).then_some(SUBDOMAIN_RULE)
}

/// Why `name` cannot be an object name in a request path: Kubernetes' path-segment rules
/// (which every type's name rule implies), plus no control characters.
pub fn path_segment_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("must be at most 253 bytes")
    } else if name == "." || name == ".." {
        Some("must not be '.' or '..'")
    } else if name.contains('/') {
        Some("must not contain '/'")
    } else if name.contains('%') {
        Some("must not contain '%'")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    }
}

fn api_version_problem(api_version: &str) -> Option<&'static str> {
    let valid = match api_version.split_once('/') {
        Some((group, version)) => {
            subdomain_problem(group).is_none() && label_problem(version).is_none()
        }
        None => label_problem(api_version).is_none(),
    };
    (!valid).then_some(API_VERSION_RULE)
}

/// A DNS-1035 label once lower-cased (what the API server requires of a CRD's kind).
fn kind_problem(kind: &str) -> Option<&'static str> {
    let b = kind.as_bytes();
    let valid = match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= MAX_LABEL_LEN
                && first.is_ascii_alphabetic()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    };
    (!valid).then_some(KIND_RULE)
}

fn type_problem(resource: &str) -> Option<&'static str> {
    let valid = match resource.split_once('.') {
        Some((plural, group)) => {
            label_problem(plural).is_none() && subdomain_problem(group).is_none()
        }
        None => label_problem(resource).is_none(),
    };
    (!valid).then_some(TYPE_RULE)
}

/// At most [`SHOWN_LEN`] bytes of `s`, cut at a character boundary.
fn shown(s: &str) -> String {
    if s.len() <= SHOWN_LEN {
        return s.to_string();
    }
    let mut end = SHOWN_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// Checks that a manifest entry can name an object safely (rule 1 of the module docs).
pub fn check_entry(entry: &ManifestEntry) -> Result<(), EntryError> {
    let invalid =
        |field: &'static str, value: &str, problem: &'static str| EntryError::InvalidName {
            field,
            value: shown(value),
            problem,
        };
    if let Some(ns) = entry.namespace.as_deref()
        && let Some(problem) = label_problem(ns)
    {
        return Err(invalid("namespace", ns, problem));
    }
    let name_problem = if &*entry.resource == NAMESPACE_TYPE_DIR {
        label_problem(&entry.name)
    } else {
        path_segment_problem(&entry.name)
    };
    if let Some(problem) = name_problem {
        return Err(invalid("name", &entry.name, problem));
    }
    if let Some(problem) = api_version_problem(&entry.api_version) {
        return Err(invalid("apiVersion", &entry.api_version, problem));
    }
    if let Some(problem) = kind_problem(&entry.kind) {
        return Err(invalid("kind", &entry.kind, problem));
    }
    if let Some(problem) = type_problem(&entry.resource) {
        return Err(invalid("type", &entry.resource, problem));
    }

    let group = group_of(&entry.api_version);
    let wrong_type = || EntryError::WrongType {
        api_version: entry.api_version.to_string(),
        kind: entry.kind.to_string(),
        resource: entry.resource.to_string(),
    };
    match known_kind(group, &entry.kind) {
        Some(known) => {
            if *entry.resource != *known.type_dir() {
                return Err(wrong_type());
            }
            check_scope(entry, known.scope == Scope::Namespaced)
        }
        None => {
            // A folder of the catalogue holds only its own kind (also from another built-in
            // group: `extensions` Ingresses of old clusters are `ingresses`).
            if let Some(known) = KNOWN_TYPES
                .iter()
                .find(|t| *entry.resource == *t.type_dir())
            {
                if known.kind != &*entry.kind || !is_builtin_group(group) {
                    return Err(wrong_type());
                }
                return check_scope(entry, known.scope == Scope::Namespaced);
            }
            let own_folder = if is_builtin_group(group) {
                !entry.resource.contains('.')
            } else {
                entry
                    .resource
                    .split_once('.')
                    .is_some_and(|(_, folder_group)| folder_group == group)
            };
            if !own_folder {
                return Err(wrong_type());
            }
            Ok(())
        }
    }
}

/// Checks the entry's scope against the type's.
fn check_scope(entry: &ManifestEntry, namespaced: bool) -> Result<(), EntryError> {
    match (entry.namespace.as_deref(), namespaced) {
        (Some(ns), false) => Err(EntryError::ClusterScopedInNamespace {
            kind: entry.kind.to_string(),
            namespace: ns.to_string(),
        }),
        (None, true) => Err(EntryError::NamespacedWithoutNamespace {
            kind: entry.kind.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Checks a (checked) entry against the resource the target cluster serves for its
/// `apiVersion` and `kind` (API discovery): the request goes to that resource, so it must be
/// the entry's type and scope.
pub fn check_served(
    entry: &ManifestEntry,
    plural: &str,
    namespaced: bool,
) -> Result<(), EntryError> {
    if *entry.resource != *type_dir(group_of(&entry.api_version), plural) {
        return Err(EntryError::WrongType {
            api_version: entry.api_version.to_string(),
            kind: entry.kind.to_string(),
            resource: entry.resource.to_string(),
        });
    }
    check_scope(entry, namespaced)
}

// ---------------------------------------------------------------------------------------------
// Rules 2 to 4
// ---------------------------------------------------------------------------------------------

/// Whether `ns` is a system namespace (rule 3).
pub fn is_system_namespace(ns: &str) -> bool {
    ns.starts_with("kube-")
}

/// What the guard decides about one selected entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Restore,
    /// Not restored; the reason is user-facing (`skippedResources`).
    Skip(String),
    /// Refused; the error is user-facing (`failedResources`).
    Fail(String),
}

/// The rules of the module docs for one Restore.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guard {
    /// `target.namespaces` and the keys and values of `target.namespaceMapping`.
    named_namespaces: BTreeSet<String>,
    include_sensitive: bool,
}

impl Guard {
    pub fn new(target: &RestoreTarget, options: &RestoreOptions) -> Guard {
        let mut named_namespaces: BTreeSet<String> = target.namespaces.iter().cloned().collect();
        for (from, to) in &target.namespace_mapping {
            named_namespaces.insert(from.clone());
            named_namespaces.insert(to.clone());
        }
        Guard {
            named_namespaces,
            include_sensitive: options.include_sensitive_resources,
        }
    }

    /// Whether objects of `source` restored into `target` pass rule 3.
    pub fn allows_namespaces(&self, source: &str, target: &str) -> bool {
        self.namespace_skip(source, target).is_none()
    }

    fn namespace_skip(&self, source: &str, target: &str) -> Option<String> {
        [source, target]
            .into_iter()
            .find(|ns| is_system_namespace(ns) && !self.named_namespaces.contains(*ns))
            .map(|ns| {
                format!(
                    "{ns} is a system namespace: restored only when spec.target.namespaces or \
                     spec.target.namespaceMapping names it"
                )
            })
    }

    /// Decides about an entry the target selected. `namespaces`: the source and target
    /// namespace of a namespaced object, or the source and target name of a `Namespace`
    /// object; `type_named`: `resourceTypes` names its type (or it is the CRD of a named
    /// custom resource type).
    pub fn check(
        &self,
        entry: &ManifestEntry,
        namespaces: Option<(&str, &str)>,
        type_named: bool,
    ) -> Verdict {
        if let Err(err) = check_entry(entry) {
            return Verdict::Fail(err.to_string());
        }
        if let Some(reason) =
            namespaces.and_then(|(source, target)| self.namespace_skip(source, target))
        {
            return Verdict::Skip(reason);
        }
        if entry.namespace.is_none() && &*entry.resource != NAMESPACE_TYPE_DIR && !type_named {
            return Verdict::Skip(format!(
                "cluster-scoped: restored only when spec.target.resourceTypes names its type \
                 ({})",
                entry.resource
            ));
        }
        match self.sensitive_entry(entry) {
            Some(reason) => Verdict::Skip(reason.to_string()),
            None => Verdict::Restore,
        }
    }

    /// Rule 4 from the manifest entry: why it is skipped, unless opted in.
    pub fn sensitive_entry(&self, entry: &ManifestEntry) -> Option<&'static str> {
        if self.include_sensitive {
            return None;
        }
        sensitive_type(group_of(&entry.api_version), &entry.kind, &entry.name)
    }

    /// Rule 4 from the stored object itself: why it is skipped, unless opted in.
    pub fn sensitive_object(&self, obj: &Value) -> Option<&'static str> {
        if self.include_sensitive {
            return None;
        }
        sensitive_content(obj)
    }
}

/// Sensitive by type and name alone.
fn sensitive_type(group: &str, kind: &str, name: &str) -> Option<&'static str> {
    match group {
        ADMISSION_GROUP => Some(SENSITIVE_ADMISSION),
        API_REGISTRATION_GROUP => Some(SENSITIVE_API_SERVICE),
        RBAC_GROUP => {
            let cluster_wide = matches!(kind, "ClusterRole" | "ClusterRoleBinding");
            let rbac_kind = cluster_wide || matches!(kind, "Role" | "RoleBinding");
            let system =
                name.starts_with(SYSTEM_PREFIX) || (cluster_wide && BUILTIN_ROLES.contains(&name));
            (rbac_kind && system).then_some(SENSITIVE_SYSTEM_RBAC)
        }
        _ => None,
    }
}

/// Sensitive by what the object says: bindings of powerful roles, aggregated ClusterRoles,
/// conversion webhooks.
fn sensitive_content(obj: &Value) -> Option<&'static str> {
    if is_kind(obj, CRD_GROUP, "CustomResourceDefinition") {
        let webhook = get_str(obj, &["spec", "conversion", "strategy"]) == Some("Webhook");
        return webhook.then_some(SENSITIVE_CONVERSION_WEBHOOK);
    }
    if api_group(obj) != Some(RBAC_GROUP) {
        return None;
    }
    match kind(obj) {
        Some("RoleBinding" | "ClusterRoleBinding") => {
            let role = get_str(obj, &["roleRef", "name"]).unwrap_or_default();
            let cluster_role = get_str(obj, &["roleRef", "kind"]) == Some("ClusterRole");
            let powerful =
                role.starts_with(SYSTEM_PREFIX) || (cluster_role && role == "cluster-admin");
            powerful.then_some(SENSITIVE_BINDING)
        }
        Some("ClusterRole") => {
            let aggregated = get(obj, &["metadata", "labels"])
                .and_then(Value::as_object)
                .is_some_and(|labels| {
                    labels
                        .keys()
                        .any(|key| key.starts_with(AGGREGATE_LABEL_PREFIX))
                });
            aggregated.then_some(SENSITIVE_AGGREGATED)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::manifest::Sha256Digest;
    use serde_json::json;
    use std::sync::Arc;

    fn entry(
        api_version: &str,
        kind: &str,
        resource: &str,
        ns: Option<&str>,
        name: &str,
    ) -> ManifestEntry {
        ManifestEntry {
            key: "k".into(),
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

    fn cm(ns: &str, name: &str) -> ManifestEntry {
        entry("v1", "ConfigMap", "configmaps", Some(ns), name)
    }

    fn rbac(kind: &str, resource: &str, ns: Option<&str>, name: &str) -> ManifestEntry {
        entry("rbac.authorization.k8s.io/v1", kind, resource, ns, name)
    }

    fn invalid(e: &ManifestEntry) -> (&'static str, &'static str) {
        match check_entry(e) {
            Err(EntryError::InvalidName { field, problem, .. }) => (field, problem),
            other => panic!("{e:?}: {other:?}"),
        }
    }

    // --- rule 1 ---

    #[test]
    fn ordinary_entries_pass() {
        for e in [
            cm("shop", "app-config"),
            cm("a", &"x".repeat(253)),
            rbac("ClusterRole", "clusterroles", None, "system:controller:x"),
            rbac("RoleBinding", "rolebindings", Some("shop"), "a:b@c"),
            entry("v1", "Namespace", "namespaces", None, "shop"),
            entry("apps/v1", "Deployment", "deployments", Some("shop"), "web"),
            entry(
                "acme.io/v1beta1",
                "Widget",
                "widgets.acme.io",
                Some("shop"),
                "w.1",
            ),
            entry("acme.io/v1", "Cluster-Thing", "things.acme.io", None, "t"),
            // A built-in group's kind the catalogue does not list.
            entry("v1", "Binding", "bindings", Some("shop"), "b"),
            entry(
                "extensions/v1beta1",
                "Ingress",
                "ingresses",
                Some("shop"),
                "i",
            ),
            entry(
                "extensions/v1beta1",
                "DaemonSet",
                "daemonsets",
                Some("shop"),
                "d",
            ),
            entry("events.k8s.io/v1", "Event", "events", Some("shop"), "e"),
        ] {
            assert_eq!(check_entry(&e), Ok(()), "{e:?}");
        }
    }

    #[test]
    fn names_that_could_change_the_request_path_are_refused() {
        for (name, problem) in [
            ("", "must not be empty"),
            (".", "must not be '.' or '..'"),
            ("..", "must not be '.' or '..'"),
            ("../x", "must not contain '/'"),
            ("a/b", "must not contain '/'"),
            ("a%2Fb", "must not contain '%'"),
            ("a\nb", "must not contain control characters"),
            ("a\u{7f}", "must not contain control characters"),
        ] {
            assert_eq!(invalid(&cm("shop", name)), ("name", problem), "{name:?}");
        }
        assert_eq!(
            invalid(&cm("shop", &"x".repeat(254))),
            ("name", "must be at most 253 bytes")
        );
        // Dots are fine inside a name (`..x` is no path step).
        assert_eq!(check_entry(&cm("shop", "..x")), Ok(()));
    }

    #[test]
    fn namespaces_are_dns_labels() {
        let long = "a".repeat(64);
        for ns in ["", "Shop", "-a", "a-", "a.b", "a/b", "..", long.as_str()] {
            assert_eq!(invalid(&cm(ns, "x")), ("namespace", LABEL_RULE), "{ns:?}");
        }
        // A Namespace object's name is a namespace.
        let e = entry("v1", "Namespace", "namespaces", None, "Bad_NS");
        assert_eq!(invalid(&e), ("name", LABEL_RULE));
    }

    #[test]
    fn api_versions_kinds_and_types_are_dns_names() {
        for v in [
            "",
            "/v1",
            "apps/",
            "Apps/v1",
            "apps/v1/x",
            "a..b/v1",
            "../v1",
            "v1 ",
        ] {
            let e = entry(v, "Deployment", "deployments", Some("a"), "x");
            assert_eq!(invalid(&e), ("apiVersion", API_VERSION_RULE), "{v:?}");
        }
        let long = "K".repeat(64);
        for k in ["", "1Thing", "Thing-", "Th/ing", "Thing.x", long.as_str()] {
            let e = entry("acme.io/v1", k, "things.acme.io", Some("a"), "x");
            assert_eq!(invalid(&e), ("kind", KIND_RULE), "{k:?}");
        }
        for t in [
            "",
            "Things",
            "things/x",
            "things.",
            "things..acme.io",
            ".acme.io",
            "../x",
        ] {
            let e = entry("acme.io/v1", "Thing", t, Some("a"), "x");
            assert_eq!(invalid(&e), ("type", TYPE_RULE), "{t:?}");
        }
    }

    #[test]
    fn an_object_cannot_pass_as_another_type() {
        let wrong = |e: ManifestEntry| {
            assert!(
                matches!(check_entry(&e), Err(EntryError::WrongType { .. })),
                "{e:?}"
            );
        };
        // A ClusterRoleBinding stored as ConfigMaps (to be selected as "configmaps").
        wrong(rbac("ClusterRoleBinding", "configmaps", None, "x"));
        // An unknown kind in a catalogue folder (to be taken for a Namespace object).
        wrong(entry("apps/v1", "Frob", "namespaces", None, "x"));
        wrong(entry("acme.io/v1", "Namespace", "namespaces", None, "x"));
        // A built-in group's kind in a custom folder, a custom kind in another group's folder.
        wrong(entry("apps/v1", "Frob", "frobs.apps", Some("a"), "x"));
        wrong(entry(
            "acme.io/v1",
            "Widget",
            "widgets.evil.io",
            Some("a"),
            "x",
        ));
        wrong(entry("acme.io/v1", "Widget", "widgets", Some("a"), "x"));
        let err = check_entry(&rbac("ClusterRoleBinding", "configmaps", None, "x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the backup manifest stores ClusterRoleBinding (rbac.authorization.k8s.io/v1) under \
             type \"configmaps\", which is not that kind's type"
        );
    }

    #[test]
    fn scopes_follow_the_catalogue() {
        let e = rbac(
            "ClusterRoleBinding",
            "clusterrolebindings",
            Some("shop"),
            "x",
        );
        assert_eq!(
            check_entry(&e).unwrap_err().to_string(),
            "the backup manifest puts cluster-scoped ClusterRoleBinding in namespace shop"
        );
        let e = entry("v1", "Secret", "secrets", None, "x");
        assert_eq!(
            check_entry(&e).unwrap_err().to_string(),
            "the backup manifest puts namespaced Secret outside any namespace"
        );
        // Kinds of old groups take the scope of their catalogue folder.
        let e = entry("extensions/v1beta1", "Ingress", "ingresses", None, "x");
        assert!(matches!(
            check_entry(&e),
            Err(EntryError::NamespacedWithoutNamespace { .. })
        ));
    }

    #[test]
    fn refused_values_are_shown_short() {
        let long = format!("{}/x", "é".repeat(200));
        let Err(EntryError::InvalidName { value, .. }) = check_entry(&cm("a", &long)) else {
            panic!()
        };
        assert!(value.len() <= SHOWN_LEN + '…'.len_utf8(), "{value}");
        assert!(value.ends_with('…'));
    }

    #[test]
    fn served_types_must_be_the_entrys() {
        let e = entry("acme.io/v1", "Widget", "widgets.acme.io", Some("a"), "x");
        assert_eq!(check_served(&e, "widgets", true), Ok(()));
        assert!(matches!(
            check_served(&e, "gadgets", true),
            Err(EntryError::WrongType { .. })
        ));
        assert!(matches!(
            check_served(&e, "widgets", false),
            Err(EntryError::ClusterScopedInNamespace { .. })
        ));
        let c = entry("acme.io/v1", "Widget", "widgets.acme.io", None, "x");
        assert!(matches!(
            check_served(&c, "widgets", true),
            Err(EntryError::NamespacedWithoutNamespace { .. })
        ));
        assert_eq!(check_served(&cm("a", "x"), "configmaps", true), Ok(()));
    }

    // --- rules 2 to 4 ---

    fn guard(namespaces: &[&str], mapping: &[(&str, &str)], sensitive: bool) -> Guard {
        let target = RestoreTarget {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            namespace_mapping: mapping
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..RestoreTarget::default()
        };
        let options = RestoreOptions {
            include_sensitive_resources: sensitive,
            ..RestoreOptions::default()
        };
        Guard::new(&target, &options)
    }

    fn skip(v: Verdict) -> String {
        match v {
            Verdict::Skip(reason) => reason,
            other => panic!("expected a skip: {other:?}"),
        }
    }

    #[test]
    fn invalid_entries_fail_before_any_other_rule() {
        let g = guard(&[], &[], true);
        let v = g.check(
            &cm("kube-system", "a/b"),
            Some(("kube-system", "kube-system")),
            true,
        );
        assert!(
            matches!(v, Verdict::Fail(ref e) if e.contains("must not contain '/'")),
            "{v:?}"
        );
    }

    #[test]
    fn cluster_scoped_objects_need_their_type_named() {
        let g = guard(&[], &[], false);
        let pv = entry("v1", "PersistentVolume", "persistentvolumes", None, "pv-1");
        assert_eq!(
            skip(g.check(&pv, None, false)),
            "cluster-scoped: restored only when spec.target.resourceTypes names its type \
             (persistentvolumes)"
        );
        assert_eq!(g.check(&pv, None, true), Verdict::Restore);
        // Namespace objects of the restored namespaces need no naming.
        let ns = entry("v1", "Namespace", "namespaces", None, "shop");
        assert_eq!(
            g.check(&ns, Some(("shop", "shop-copy")), false),
            Verdict::Restore
        );
        // Namespaced objects never do.
        assert_eq!(
            g.check(&cm("shop", "c"), Some(("shop", "shop")), false),
            Verdict::Restore
        );
    }

    #[test]
    fn system_namespaces_need_naming_as_source_and_as_target() {
        let reason = |ns: &str| {
            format!(
                "{ns} is a system namespace: restored only when spec.target.namespaces or \
                 spec.target.namespaceMapping names it"
            )
        };
        let secret = entry("v1", "Secret", "secrets", Some("kube-system"), "s");
        let not_named = guard(&[], &[], true);
        for ns in [
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "kube-anything",
        ] {
            assert!(is_system_namespace(ns));
            assert_eq!(
                skip(not_named.check(&cm(ns, "c"), Some((ns, ns)), false)),
                reason(ns)
            );
        }
        for ns in ["default", "kubernetes", "kube", "my-kube-system"] {
            assert!(!is_system_namespace(ns), "{ns}");
        }
        // A single target takes every namespace, but names none of the system ones.
        let one_target = guard(&["copy"], &[], false);
        assert_eq!(
            skip(one_target.check(&secret, Some(("kube-system", "copy")), false)),
            reason("kube-system")
        );
        // Named as a mapping key (source) ...
        let mapped = guard(&[], &[("kube-system", "copy")], false);
        assert_eq!(
            mapped.check(&secret, Some(("kube-system", "copy")), false),
            Verdict::Restore
        );
        // ... as the target, explicitly.
        let into = guard(&["kube-system"], &[], false);
        assert_eq!(
            into.check(&cm("shop", "c"), Some(("shop", "kube-system")), false),
            Verdict::Restore
        );
        assert_eq!(
            into.check(&secret, Some(("kube-system", "kube-system")), false),
            Verdict::Restore
        );
        // A mapping into a system namespace names it as a value.
        let onto = guard(&[], &[("shop", "kube-public")], false);
        assert!(onto.allows_namespaces("shop", "kube-public"));
        // Mapped elsewhere, the target still needs naming.
        assert_eq!(
            skip(mapped.check(&cm("shop", "c"), Some(("shop", "kube-public")), false)),
            reason("kube-public")
        );
        // The Namespace object of a system namespace too.
        let ns = entry("v1", "Namespace", "namespaces", None, "kube-system");
        assert_eq!(
            skip(not_named.check(&ns, Some(("kube-system", "kube-system")), false)),
            reason("kube-system")
        );
        assert_eq!(
            mapped.check(&ns, Some(("kube-system", "copy")), false),
            Verdict::Restore
        );
    }

    #[test]
    fn sensitive_types_need_the_opt_in_even_when_named() {
        let g = guard(&[], &[], false);
        let opted_in = guard(&[], &[], true);
        let admission = "admissionregistration.k8s.io/v1";
        for (e, reason) in [
            (
                entry(
                    admission,
                    "ValidatingWebhookConfiguration",
                    "validatingwebhookconfigurations",
                    None,
                    "w",
                ),
                SENSITIVE_ADMISSION,
            ),
            (
                entry(
                    admission,
                    "MutatingWebhookConfiguration",
                    "mutatingwebhookconfigurations",
                    None,
                    "w",
                ),
                SENSITIVE_ADMISSION,
            ),
            (
                entry(
                    admission,
                    "ValidatingAdmissionPolicy",
                    "validatingadmissionpolicies",
                    None,
                    "p",
                ),
                SENSITIVE_ADMISSION,
            ),
            (
                entry(
                    admission,
                    "ValidatingAdmissionPolicyBinding",
                    "validatingadmissionpolicybindings",
                    None,
                    "p",
                ),
                SENSITIVE_ADMISSION,
            ),
            (
                entry(
                    "admissionregistration.k8s.io/v1beta1",
                    "MutatingAdmissionPolicy",
                    "mutatingadmissionpolicies",
                    None,
                    "p",
                ),
                SENSITIVE_ADMISSION,
            ),
            (
                entry(
                    admission,
                    "MutatingAdmissionPolicyBinding",
                    "mutatingadmissionpolicybindings",
                    None,
                    "p",
                ),
                SENSITIVE_ADMISSION,
            ),
            (
                entry(
                    "apiregistration.k8s.io/v1",
                    "APIService",
                    "apiservices",
                    None,
                    "v1.acme.io",
                ),
                SENSITIVE_API_SERVICE,
            ),
            (
                rbac("ClusterRole", "clusterroles", None, "system:node"),
                SENSITIVE_SYSTEM_RBAC,
            ),
            (
                rbac(
                    "ClusterRoleBinding",
                    "clusterrolebindings",
                    None,
                    "system:masters-x",
                ),
                SENSITIVE_SYSTEM_RBAC,
            ),
            (
                rbac("Role", "roles", Some("shop"), "system:x"),
                SENSITIVE_SYSTEM_RBAC,
            ),
            (
                rbac("RoleBinding", "rolebindings", Some("shop"), "system:x"),
                SENSITIVE_SYSTEM_RBAC,
            ),
            (
                rbac("ClusterRole", "clusterroles", None, "cluster-admin"),
                SENSITIVE_SYSTEM_RBAC,
            ),
            (
                rbac("ClusterRole", "clusterroles", None, "edit"),
                SENSITIVE_SYSTEM_RBAC,
            ),
            (
                rbac(
                    "ClusterRoleBinding",
                    "clusterrolebindings",
                    None,
                    "cluster-admin",
                ),
                SENSITIVE_SYSTEM_RBAC,
            ),
        ] {
            assert_eq!(skip(g.check(&e, None, true)), reason, "{e:?}");
            assert!(reason.ends_with("spec.options.includeSensitiveResources: true"));
            assert_eq!(opted_in.check(&e, None, true), Verdict::Restore, "{e:?}");
        }
        // Ordinary RBAC, and a namespaced Role that merely shares a built-in role's name.
        for e in [
            rbac("ClusterRole", "clusterroles", None, "widget-viewer"),
            rbac("ClusterRole", "clusterroles", None, "my-system:x"),
            rbac("Role", "roles", Some("shop"), "admin"),
            rbac("RoleBinding", "rolebindings", Some("shop"), "edit"),
        ] {
            assert_eq!(g.check(&e, None, true), Verdict::Restore, "{e:?}");
        }
        // Both rules for a cluster-scoped sensitive object: the type first.
        let hook = entry(
            admission,
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            None,
            "w",
        );
        assert!(skip(opted_in.check(&hook, None, false)).starts_with("cluster-scoped"));
    }

    #[test]
    fn powerful_bindings_and_aggregated_roles_need_the_opt_in() {
        let g = guard(&[], &[], false);
        let binding = |kind: &str, role_kind: &str, role: &str| {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                   "metadata": {"name": "b"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
                   "subjects": [{"kind": "User", "name": "mallory"}]})
        };
        for obj in [
            binding("ClusterRoleBinding", "ClusterRole", "cluster-admin"),
            binding("RoleBinding", "ClusterRole", "cluster-admin"),
            binding("ClusterRoleBinding", "ClusterRole", "system:controller:x"),
            binding("RoleBinding", "Role", "system:x"),
        ] {
            assert_eq!(g.sensitive_object(&obj), Some(SENSITIVE_BINDING), "{obj}");
            assert_eq!(guard(&[], &[], true).sensitive_object(&obj), None);
        }
        for obj in [
            binding("ClusterRoleBinding", "ClusterRole", "view-widgets"),
            binding("RoleBinding", "Role", "cluster-admin"),
            binding("RoleBinding", "ClusterRole", "edit"),
            json!({"apiVersion": "v1", "kind": "RoleBinding", "roleRef": {"name": "system:x"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "roleRef": "cluster-admin"}),
        ] {
            assert_eq!(g.sensitive_object(&obj), None, "{obj}");
        }
        let role = |labels: Value| {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "r", "labels": labels}})
        };
        assert_eq!(
            g.sensitive_object(&role(
                json!({"rbac.authorization.k8s.io/aggregate-to-view": "true"})
            )),
            Some(SENSITIVE_AGGREGATED)
        );
        assert_eq!(g.sensitive_object(&role(json!({"app": "x"}))), None);
        let crd = |conversion: Value| {
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "widgets.acme.io"}, "spec": {"conversion": conversion}})
        };
        let webhook = crd(json!({"strategy": "Webhook",
            "webhook": {"clientConfig": {"url": "https://evil.example/convert"},
                        "conversionReviewVersions": ["v1"]}}));
        assert_eq!(
            g.sensitive_object(&webhook),
            Some(SENSITIVE_CONVERSION_WEBHOOK)
        );
        assert_eq!(guard(&[], &[], true).sensitive_object(&webhook), None);
        assert_eq!(g.sensitive_object(&crd(json!({"strategy": "None"}))), None);
        assert_eq!(g.sensitive_object(&crd(json!(null))), None);
        assert_eq!(g.sensitive_object(&role(json!("oops"))), None);
        assert_eq!(g.sensitive_object(&json!(null)), None);
    }
}
