//! Which namespace each source namespace is restored into, and rewriting objects to match.
//!
//! # Rules (`spec.target.namespaces` = the list, `spec.target.namespaceMapping` = the map)
//!
//! A source namespace `s` is first mapped: `m = namespaceMapping[s]`, or `s` itself when the
//! map has no entry. Then the list decides:
//!
//! * **list empty**: `s` is restored into `m`. (No target at all restores every namespace of
//!   the backup under its own name.)
//! * **exactly one entry `t`**: `s` is restored into `t` when the map has no entry for it
//!   (all of the backup goes into `t`); a mapped `s` is restored into `m` only if `m` is `t`.
//! * **several entries**: `s` is restored into `m` only if `m` is in the list.
//!
//! So the list always filters *after* mapping, as the API documents ("the target namespaces to
//! restore into (after mapping)"). Several source namespaces may land in one target; objects
//! with the same kind and name then meet as conflicts (`conflictResolution`).
//!
//! Validation (all problems are reported at once): every entry of the list and every value
//! and key of the map must be a valid namespace name (RFC 1123 label: at most 63 characters,
//! `a-z`, `0-9` and `-`, starting and ending with a letter or digit); with a non-empty list,
//! a mapping to a namespace that is not in it is refused (it could never apply).
//!
//! # What [`apply_mapping`] rewrites inside objects
//!
//! Only references to a namespace whose objects this restore moves (a namespace of the
//! backup, restored under another name) are rewritten:
//!
//! 1. `metadata.namespace` of namespaced objects;
//! 2. a `Namespace` object's `metadata.name`, and its `kubernetes.io/metadata.name` label
//!    (which the API server would correct anyway);
//! 3. `subjects` of `RoleBinding`s and `ClusterRoleBinding`s (`rbac.authorization.k8s.io`):
//!    the `namespace` of `ServiceAccount` subjects, the `<ns>` of `User` subjects named
//!    `system:serviceaccount:<ns>:<name>` and of `Group` subjects named
//!    `system:serviceaccounts:<ns>` — all three name service accounts of `<ns>`;
//! 4. `spec.claimRef.namespace` of `PersistentVolume`s.
//!
//! Nothing else is rewritten: not free text (environment variables, ConfigMap data, DNS names
//! such as `db.shop.svc`), not label selectors over namespaces (a NetworkPolicy's
//! `namespaceSelector` matching `kubernetes.io/metadata.name: shop`), not webhook, APIService
//! or CRD-conversion `service.namespace`, not references inside custom resources (their
//! meaning is known only to their controllers).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::object::{get_object_mut, get_str, is_kind};
use crate::api::RestoreTarget;

/// The longest namespace name Kubernetes accepts.
pub const MAX_NAMESPACE_LEN: usize = 63;

/// The label the API server keeps equal to a namespace's name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const SA_USER_PREFIX: &str = "system:serviceaccount:";
const SA_GROUP_PREFIX: &str = "system:serviceaccounts:";

/// An invalid `target`; every problem is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    /// Each names the field, e.g. `namespaceMapping["default"]: "Bad_NS" is not a valid
    /// namespace name`.
    pub problems: Vec<String>,
    /// Some problem is an invalid name: the message then states the naming rule once.
    bad_names: bool,
}

impl std::fmt::Display for MappingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid restore target: {}", self.problems.join("; "))?;
        if self.bad_names {
            write!(f, " ({NAME_RULE})")?;
        }
        Ok(())
    }
}

impl std::error::Error for MappingError {}

impl MappingError {
    /// The namespace naming rule, when some problem is an invalid name (to state it once).
    pub fn name_rule(&self) -> Option<&'static str> {
        self.bad_names.then_some(NAME_RULE)
    }
}

const NAME_RULE: &str = "a namespace name is at most 63 characters of a-z, 0-9 and '-', \
                         starting and ending with a letter or digit";

/// Whether `name` is a valid namespace name (an RFC 1123 label).
pub fn is_valid_namespace_name(name: &str) -> bool {
    crate::core::names::is_dns1123_label(name)
}

/// Source namespace → target namespace for one restore.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespaceMap {
    mapping: BTreeMap<String, String>,
    targets: BTreeSet<String>,
    /// Namespaces of the backup restored under another name (what references follow).
    renamed: BTreeMap<String, String>,
}

impl NamespaceMap {
    /// Validates `target` and builds the map. `source_namespaces` are the namespaces of the
    /// backup (the manifest's `namespaces`): references inside objects are only rewritten for
    /// these (see the module docs).
    pub fn new<S: AsRef<str>>(
        target: &RestoreTarget,
        source_namespaces: &[S],
    ) -> Result<NamespaceMap, MappingError> {
        let mut problems = Vec::new();
        let mut bad_names = false;
        let mut bad = |problem: String, problems: &mut Vec<String>| {
            bad_names = true;
            problems.push(problem);
        };
        for (i, ns) in target.namespaces.iter().enumerate() {
            if !is_valid_namespace_name(ns) {
                bad(
                    format!("namespaces[{i}]: {ns:?} is not a valid namespace name"),
                    &mut problems,
                );
            }
        }
        let targets: BTreeSet<String> = target.namespaces.iter().cloned().collect();
        for (from, to) in &target.namespace_mapping {
            if !is_valid_namespace_name(from) {
                bad(
                    format!("namespaceMapping: key {from:?} is not a valid namespace name"),
                    &mut problems,
                );
            }
            if !is_valid_namespace_name(to) {
                bad(
                    format!("namespaceMapping[{from:?}]: {to:?} is not a valid namespace name"),
                    &mut problems,
                );
            } else if !targets.is_empty() && !targets.contains(to) {
                problems.push(format!(
                    "namespaceMapping[{from:?}]: {to:?} is not in namespaces ({}), so nothing \
                     would be restored there; add it to namespaces or remove the mapping",
                    target.namespaces.join(", ")
                ));
            }
        }
        if !problems.is_empty() {
            return Err(MappingError {
                problems,
                bad_names,
            });
        }
        let mut map = NamespaceMap {
            mapping: target.namespace_mapping.clone(),
            targets,
            renamed: BTreeMap::new(),
        };
        for source in source_namespaces {
            let source = source.as_ref();
            if let Some(to) = map.target_ref(source).filter(|to| *to != source) {
                let to = to.to_string();
                map.renamed.insert(source.to_string(), to);
            }
        }
        Ok(map)
    }

    /// The namespace `source_ns` is restored into, `None` when it is not restored.
    pub fn target(&self, source_ns: &str) -> Option<String> {
        self.target_ref(source_ns).map(str::to_string)
    }

    /// [`NamespaceMap::target`] without allocating.
    pub fn target_ref<'a>(&'a self, source_ns: &'a str) -> Option<&'a str> {
        let mapped = self.mapping.get(source_ns).map(String::as_str);
        let mut targets = self.targets.iter();
        match (targets.next(), targets.next(), mapped) {
            (None, _, mapped) => Some(mapped.unwrap_or(source_ns)),
            (Some(only), None, None) => Some(only.as_str()),
            (_, _, mapped) => {
                let to = mapped.unwrap_or(source_ns);
                self.targets.contains(to).then_some(to)
            }
        }
    }

    /// Whether objects of `source_ns` are restored.
    pub fn restores(&self, source_ns: &str) -> bool {
        self.target_ref(source_ns).is_some()
    }

    /// The new name of a backup namespace restored under another name; `None` leaves a
    /// reference to `ns` as it is.
    pub fn renamed(&self, ns: &str) -> Option<&str> {
        self.renamed.get(ns).map(String::as_str)
    }

    /// True when every namespace keeps its name (nothing to rewrite).
    pub fn is_identity(&self) -> bool {
        self.renamed.is_empty()
    }

    /// Mapping keys that are not namespaces of the backup (likely typos; worth a warning).
    pub fn unused_mappings<'a, S: AsRef<str>>(&'a self, source_namespaces: &[S]) -> Vec<&'a str> {
        let sources: BTreeSet<&str> = source_namespaces.iter().map(AsRef::as_ref).collect();
        self.mapping
            .keys()
            .map(String::as_str)
            .filter(|k| !sources.contains(k))
            .collect()
    }
}

/// Rewrites the namespace references listed in the module docs, in place. Objects of
/// namespaces that are not restored are left as they are (the engine never restores them).
pub fn apply_mapping(obj: &mut Value, map: &NamespaceMap) {
    if map.is_identity() {
        return;
    }
    rename_field(get_object_mut(obj, &["metadata"]), "namespace", map);
    if is_kind(obj, "", "Namespace") {
        rename_namespace_object(obj, map);
    } else if is_kind(obj, RBAC_GROUP, "RoleBinding")
        || is_kind(obj, RBAC_GROUP, "ClusterRoleBinding")
    {
        if let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) {
            for subject in subjects {
                map_subject(subject, map);
            }
        }
    } else if is_kind(obj, "", "PersistentVolume") {
        rename_field(get_object_mut(obj, &["spec", "claimRef"]), "namespace", map);
    }
}

/// Renames the namespace in `parent[field]` when it is a string naming a moved namespace.
fn rename_field(parent: Option<&mut Map<String, Value>>, field: &str, map: &NamespaceMap) {
    if let Some(Value::String(ns)) = parent.and_then(|p| p.get_mut(field))
        && let Some(to) = map.renamed(ns)
    {
        *ns = to.to_string();
    }
}

fn rename_namespace_object(obj: &mut Value, map: &NamespaceMap) {
    let Some(to) = get_str(obj, &["metadata", "name"])
        .and_then(|name| map.renamed(name))
        .map(str::to_string)
    else {
        return;
    };
    if let Some(meta) = get_object_mut(obj, &["metadata"]) {
        meta.insert("name".into(), Value::String(to.clone()));
    }
    if let Some(labels) = get_object_mut(obj, &["metadata", "labels"])
        && labels.contains_key(NAMESPACE_NAME_LABEL)
    {
        labels.insert(NAMESPACE_NAME_LABEL.into(), Value::String(to));
    }
}

fn map_subject(subject: &mut Value, map: &NamespaceMap) {
    let Some(subject) = subject.as_object_mut() else {
        return;
    };
    let kind = subject
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match kind.as_str() {
        "ServiceAccount" => rename_field(Some(subject), "namespace", map),
        "User" | "Group" => {
            let Some(Value::String(name)) = subject.get_mut("name") else {
                return;
            };
            let renamed = if kind == "User" {
                name.strip_prefix(SA_USER_PREFIX)
                    .and_then(|rest| rest.split_once(':'))
                    .and_then(|(ns, sa)| {
                        map.renamed(ns)
                            .map(|to| format!("{SA_USER_PREFIX}{to}:{sa}"))
                    })
            } else {
                name.strip_prefix(SA_GROUP_PREFIX)
                    .and_then(|ns| map.renamed(ns))
                    .map(|to| format!("{SA_GROUP_PREFIX}{to}"))
            };
            if let Some(renamed) = renamed {
                *name = renamed;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(namespaces: &[&str], mapping: &[(&str, &str)]) -> RestoreTarget {
        RestoreTarget {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            namespace_mapping: mapping
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn map(namespaces: &[&str], mapping: &[(&str, &str)], sources: &[&str]) -> NamespaceMap {
        NamespaceMap::new(&target(namespaces, mapping), sources).unwrap()
    }

    const SOURCES: [&str; 4] = ["default", "test", "shop", "other"];

    #[test]
    fn empty_target_restores_every_namespace_under_its_own_name() {
        let m = map(&[], &[], &SOURCES);
        for ns in SOURCES {
            assert_eq!(m.target(ns).as_deref(), Some(ns));
        }
        assert!(m.is_identity());
    }

    #[test]
    fn mapping_applies_without_a_namespace_list() {
        let m = map(&[], &[("shop", "shop-copy")], &SOURCES);
        assert_eq!(m.target("shop").as_deref(), Some("shop-copy"));
        assert_eq!(m.target("default").as_deref(), Some("default"));
        assert_eq!(m.renamed("shop"), Some("shop-copy"));
        assert_eq!(m.renamed("default"), None);
        assert!(!m.is_identity());
    }

    #[test]
    fn one_target_namespace_takes_every_unmapped_source() {
        // Sample "basic-restore-dry-run": namespaces: [test-namespace].
        let m = map(&["test-namespace"], &[], &SOURCES);
        for ns in SOURCES {
            assert_eq!(m.target(ns).as_deref(), Some("test-namespace"), "{ns}");
        }
        // Sample "restore-sample": one target, mapping to it.
        let m = map(
            &["restored-namespace"],
            &[("default", "restored-namespace")],
            &SOURCES,
        );
        assert_eq!(m.target("default").as_deref(), Some("restored-namespace"));
        assert_eq!(m.target("test").as_deref(), Some("restored-namespace"));
        assert_eq!(m.renamed("shop"), Some("restored-namespace"));
        // A source already named like the target stays put.
        let m = map(&["shop"], &[], &SOURCES);
        assert_eq!(m.target("shop").as_deref(), Some("shop"));
        assert_eq!(m.renamed("shop"), None);
    }

    #[test]
    fn several_targets_filter_after_mapping() {
        // Sample "cross-cluster-restore".
        let m = map(
            &["production", "staging"],
            &[("default", "production"), ("test", "staging")],
            &SOURCES,
        );
        assert_eq!(m.target("default").as_deref(), Some("production"));
        assert_eq!(m.target("test").as_deref(), Some("staging"));
        assert_eq!(m.target("shop"), None);
        assert!(!m.restores("other"));
        // An unmapped source whose own name is listed is restored under it.
        let m = map(
            &["shop", "production"],
            &[("default", "production")],
            &SOURCES,
        );
        assert_eq!(m.target("shop").as_deref(), Some("shop"));
        assert_eq!(m.target("test"), None);
        // Two sources into one target.
        let m = map(
            &["all", "x"],
            &[("default", "all"), ("test", "all")],
            &SOURCES,
        );
        assert_eq!(m.target("default"), m.target("test"));
    }

    #[test]
    fn invalid_names_are_named() {
        let err = NamespaceMap::new(&target(&[], &[("default", "Bad_NS")]), &SOURCES).unwrap_err();
        assert_eq!(
            err.problems,
            vec![r#"namespaceMapping["default"]: "Bad_NS" is not a valid namespace name"#]
        );
        assert!(
            err.to_string()
                .starts_with(r#"invalid restore target: namespaceMapping["default"]: "Bad_NS" is not a valid namespace name (a namespace name is at most 63"#),
            "{err}"
        );

        let long = "a".repeat(64);
        let err = NamespaceMap::new(
            &target(&["ok", "-bad", &long, ""], &[("Key", "fine")]),
            &SOURCES,
        )
        .unwrap_err();
        assert_eq!(
            err.problems,
            vec![
                r#"namespaces[1]: "-bad" is not a valid namespace name"#.to_string(),
                format!(r#"namespaces[2]: "{long}" is not a valid namespace name"#),
                r#"namespaces[3]: "" is not a valid namespace name"#.to_string(),
                r#"namespaceMapping: key "Key" is not a valid namespace name"#.to_string(),
                r#"namespaceMapping["Key"]: "fine" is not in namespaces (ok, -bad, aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, ), so nothing would be restored there; add it to namespaces or remove the mapping"#.to_string(),
            ]
        );
    }

    #[test]
    fn mapping_outside_the_namespace_list_is_refused() {
        let err = NamespaceMap::new(&target(&["production"], &[("default", "prod")]), &SOURCES)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid restore target: namespaceMapping["default"]: "prod" is not in namespaces (production), so nothing would be restored there; add it to namespaces or remove the mapping"#
        );
    }

    #[test]
    fn namespace_names() {
        for ok in ["a", "shop", "shop-copy", "0", "a1-b2", &"x".repeat(63)] {
            assert!(is_valid_namespace_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "ä",
            " a",
            &"x".repeat(64),
        ] {
            assert!(!is_valid_namespace_name(bad), "{bad}");
        }
    }

    #[test]
    fn unused_mappings_are_reported() {
        let m = map(&[], &[("shop", "a"), ("typo", "b")], &SOURCES);
        assert_eq!(m.unused_mappings(&SOURCES), vec!["typo"]);
    }

    // --- rewriting objects ---

    fn shop_copy() -> NamespaceMap {
        map(&[], &[("shop", "shop-copy")], &SOURCES)
    }

    #[test]
    fn namespaced_objects_move() {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "c", "namespace": "shop"}});
        apply_mapping(&mut cm, &shop_copy());
        assert_eq!(cm["metadata"]["namespace"], "shop-copy");
        let mut stays = json!({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "c", "namespace": "default"}});
        apply_mapping(&mut stays, &shop_copy());
        assert_eq!(stays["metadata"]["namespace"], "default");
    }

    #[test]
    fn role_binding_subjects_follow_their_namespace() {
        let mut rb = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "read", "namespace": "shop"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "app", "namespace": "shop"},
                {"kind": "ServiceAccount", "name": "mon", "namespace": "monitoring"},
                {"kind": "ServiceAccount", "name": "implicit"},
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                 "name": "system:serviceaccount:shop:app"},
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane@shop"},
                {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                 "name": "system:serviceaccounts:shop"},
                {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                 "name": "system:serviceaccounts"},
                "garbage"
            ]
        });
        apply_mapping(&mut rb, &shop_copy());
        assert_eq!(rb["metadata"]["namespace"], "shop-copy");
        let s = &rb["subjects"];
        assert_eq!(s[0]["namespace"], "shop-copy");
        assert_eq!(s[1]["namespace"], "monitoring");
        assert!(s[2].get("namespace").is_none());
        assert_eq!(s[3]["name"], "system:serviceaccount:shop-copy:app");
        assert_eq!(s[4]["name"], "jane@shop");
        assert_eq!(s[5]["name"], "system:serviceaccounts:shop-copy");
        assert_eq!(s[6]["name"], "system:serviceaccounts");
        assert_eq!(s[7], "garbage");

        let mut crb = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "shop-view"},
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "shop"}]
        });
        apply_mapping(&mut crb, &shop_copy());
        assert_eq!(crb["subjects"][0]["namespace"], "shop-copy");
        assert!(crb["metadata"].get("namespace").is_none());
    }

    #[test]
    fn references_to_namespaces_outside_the_backup_stay() {
        // One target takes every source, but "monitoring" is not in the backup.
        let m = map(&["restored"], &[], &["shop"]);
        let mut rb = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "r", "namespace": "shop"},
            "subjects": [{"kind": "ServiceAccount", "name": "a", "namespace": "shop"},
                         {"kind": "ServiceAccount", "name": "p", "namespace": "monitoring"}]
        });
        apply_mapping(&mut rb, &m);
        assert_eq!(rb["metadata"]["namespace"], "restored");
        assert_eq!(rb["subjects"][0]["namespace"], "restored");
        assert_eq!(rb["subjects"][1]["namespace"], "monitoring");
    }

    #[test]
    fn namespace_objects_and_claims_are_renamed() {
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {
                "kubernetes.io/metadata.name": "shop", "team": "shop"}}});
        apply_mapping(&mut ns, &shop_copy());
        assert_eq!(ns["metadata"]["name"], "shop-copy");
        assert_eq!(
            ns["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "shop-copy", "team": "shop"})
        );

        let mut pv = json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv-1"},
            "spec": {"claimRef": {"name": "data", "namespace": "shop"}}});
        apply_mapping(&mut pv, &shop_copy());
        assert_eq!(pv["spec"]["claimRef"]["namespace"], "shop-copy");
        assert!(pv["metadata"].get("namespace").is_none());
    }

    #[test]
    fn other_references_are_not_rewritten() {
        let mut webhook = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "w"},
            "webhooks": [{"clientConfig": {"service": {"name": "svc", "namespace": "shop"}}}]
        });
        let before = webhook.clone();
        apply_mapping(&mut webhook, &shop_copy());
        assert_eq!(webhook, before);
        let mut not_rbac = json!({"apiVersion": "acme.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "a", "namespace": "shop"}]});
        apply_mapping(&mut not_rbac, &shop_copy());
        assert_eq!(not_rbac["subjects"][0]["namespace"], "shop");
        // Tolerates garbage.
        for mut v in [
            json!(null),
            json!({"metadata": {"namespace": 3}}),
            json!([]),
        ] {
            apply_mapping(&mut v, &shop_copy());
        }
    }
}
