//! The types a run can name, and the one resolver of type names, used by the backup (against
//! API discovery) and the restore (against the backup's contents) alike.
//!
//! A name resolves as `kubectl get <name>` resolves it, case-insensitively: the plural, the
//! singular, the kind, a short name, `plural.group` (also `kind.group`, `singular.group`,
//! `short.group`) and `plural.version.group`. `kubectl` expands a short name only when no type
//! has that full name, so full names win over short names. A bare name that several API
//! groups serve means the core group's type, then the type of the built-in group kube-apiserver
//! ranks first ([`super::BUILTIN_GROUPS`]); between custom groups it is ambiguous, and so are
//! two types of one group.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    DiscoveredResource, KNOWN_TYPES, builtin_rank, is_custom_type, qualified_name, type_dir,
};
use crate::core::manifest::Manifest;

/// One type a name can resolve to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogType {
    /// API group, `""` for the core group.
    pub group: String,
    pub plural: String,
    pub kind: String,
    pub singular: String,
    pub short_names: Vec<String>,
    /// The folder its objects are stored in: [`super::type_dir`], or a backup's own folder.
    pub type_dir: String,
    /// Versions it is served at (discovery) or stored in (a backup): what a
    /// `plural.version.group` may name.
    pub versions: Vec<String>,
    /// The cluster serves it (API discovery).
    pub served: bool,
    /// Some served version can be listed.
    pub listable: bool,
    /// The backup contains it.
    pub stored: bool,
}

impl CatalogType {
    fn new(group: &str, plural: &str, kind: &str) -> CatalogType {
        CatalogType {
            group: group.to_string(),
            plural: plural.to_string(),
            kind: kind.to_string(),
            singular: kind.to_ascii_lowercase(),
            short_names: Vec::new(),
            type_dir: type_dir(group, plural),
            versions: Vec::new(),
            served: false,
            listable: false,
            stored: false,
        }
    }

    /// `plural.group`, or `plural` for the core group.
    pub fn qualified_name(&self) -> String {
        qualified_name(&self.group, &self.plural)
    }

    fn add_short_names<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            if !name.is_empty()
                && !self
                    .short_names
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(name))
            {
                self.short_names.push(name.to_string());
            }
        }
    }

    fn add_version(&mut self, version: &str) {
        if !version.is_empty() && !self.versions.iter().any(|v| v == version) {
            self.versions.push(version.to_string());
        }
    }

    fn is(&self, group: &str, plural: &str) -> bool {
        self.group.eq_ignore_ascii_case(group) && self.plural.eq_ignore_ascii_case(plural)
    }

    fn tier(&self, name: &str) -> Option<Tier> {
        // Older API servers report an empty singular name; an empty field never matches.
        let is = |field: &str| !field.is_empty() && field.eq_ignore_ascii_case(name);
        if is(&self.plural) || is(&self.singular) || is(&self.kind) {
            Some(Tier::FullName)
        } else if self.short_names.iter().any(|s| is(s)) {
            Some(Tier::ShortName)
        } else {
            None
        }
    }

    /// How `wanted` (trimmed) names this type, and the version it names, if any.
    fn matches(&self, wanted: &str) -> Option<(Tier, Option<&str>)> {
        let Some((head, rest)) = wanted.split_once('.') else {
            return self.tier(wanted).map(|t| (t, None));
        };
        // The core group has no `.group` spelling.
        if self.group.is_empty() {
            return None;
        }
        if rest.eq_ignore_ascii_case(&self.group) {
            return self.tier(head).map(|t| (t, None));
        }
        let (version, group) = rest.split_once('.')?;
        if !group.eq_ignore_ascii_case(&self.group) {
            return None;
        }
        let version = self
            .versions
            .iter()
            .find(|v| v.eq_ignore_ascii_case(version))?;
        self.tier(head).map(|t| (t, Some(version.as_str())))
    }
}

/// How strongly a name matched a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    FullName,
    ShortName,
}

/// What a name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<'c> {
    /// One type; `version` when the name named one (`plural.version.group`).
    Found {
        ty: &'c CatalogType,
        version: Option<&'c str>,
    },
    /// Several types, none preferred (sorted by type folder).
    Ambiguous(Vec<&'c CatalogType>),
    Unknown,
}

/// The types a run can name: the catalogue's built-in types plus what the run knows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypeCatalog {
    types: Vec<CatalogType>,
}

impl TypeCatalog {
    /// The built-in types of [`KNOWN_TYPES`], neither served nor stored yet.
    pub fn known() -> TypeCatalog {
        let types = KNOWN_TYPES
            .iter()
            .filter(|t| t.is_builtin())
            .map(|t| {
                let mut ty = CatalogType::new(t.group, t.plural, t.kind);
                ty.add_short_names(t.short_names.iter().copied());
                ty
            })
            .collect();
        TypeCatalog { types }
    }

    /// The built-in types, extended by every discovered resource (custom resources with the
    /// short names their CRDs declare) and marked as served.
    pub fn from_discovery(discovered: &[DiscoveredResource]) -> TypeCatalog {
        let mut catalog = TypeCatalog::known();
        // Subresources (`pods/log`) are no types of their own.
        for r in discovered.iter().filter(|r| !r.plural().contains('/')) {
            let ty = catalog.entry(r.group(), r.plural(), &r.api.kind);
            ty.served = true;
            ty.listable |= r.can_list();
            ty.add_version(&r.api.version);
            if !r.singular.is_empty() {
                ty.singular = r.singular.clone();
            }
            ty.add_short_names(r.short_names.iter().map(String::as_str));
        }
        catalog
    }

    /// The built-in types, extended by the types a backup contains: its `resourceTypes` and
    /// every object's type folder, kind and version.
    pub fn from_manifest(manifest: &Manifest) -> TypeCatalog {
        let mut catalog = TypeCatalog::known();
        for folder in &manifest.resource_types {
            catalog.stored_folder(folder, None).stored = true;
        }
        let mut last: Option<(&str, &str, &str)> = None;
        for e in &manifest.objects {
            // Consecutive entries mostly share a type: skip the repeated work.
            let current = (&*e.resource, &*e.api_version, &*e.kind);
            if last == Some(current) {
                continue;
            }
            last = Some(current);
            let (group, version) = match e.api_version.split_once('/') {
                Some((g, v)) => (g, v),
                None => ("", &*e.api_version),
            };
            let ty = catalog.stored_folder(&e.resource, Some((group, &e.kind)));
            ty.stored = true;
            ty.add_version(version);
        }
        catalog
    }

    /// Adds the names a CustomResourceDefinition declares (`spec.names`: kind, singular, short
    /// names) to its type, e.g. from a CRD stored in a backup. Anything that is not a CRD is
    /// ignored.
    pub fn add_crd(&mut self, crd: &Value) {
        let text = |path: &[&str]| {
            path.iter()
                .try_fold(crd, |v, key| v.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let (Some(group), Some(plural), Some(kind)) = (
            text(&["spec", "group"]),
            text(&["spec", "names", "plural"]),
            text(&["spec", "names", "kind"]),
        ) else {
            return;
        };
        let ty = self.entry(group, plural, kind);
        if let Some(singular) = text(&["spec", "names", "singular"]) {
            ty.singular = singular.to_string();
        }
        let short_names = crd
            .pointer("/spec/names/shortNames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        ty.add_short_names(short_names);
    }

    /// The type folders of the backup, sorted.
    pub fn stored_types(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .types
            .iter()
            .filter(|t| t.stored)
            .map(|t| t.type_dir.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The type `plural` of `group`, added (with `kind`) if it is not there yet.
    fn entry(&mut self, group: &str, plural: &str, kind: &str) -> &mut CatalogType {
        let at = match self.types.iter().position(|t| t.is(group, plural)) {
            Some(at) => at,
            None => {
                self.types.push(CatalogType::new(group, plural, kind));
                self.types.len() - 1
            }
        };
        let ty = &mut self.types[at];
        if ty.kind.is_empty() {
            ty.kind = kind.to_string();
            ty.singular = kind.to_ascii_lowercase();
        }
        ty
    }

    /// The type stored in `folder`; `object` is the group and kind of one of its objects,
    /// which names a built-in type the catalogue does not list.
    fn stored_folder(&mut self, folder: &str, object: Option<(&str, &str)>) -> &mut CatalogType {
        if let Some(at) = self
            .types
            .iter()
            .position(|t| t.type_dir.eq_ignore_ascii_case(folder))
        {
            let ty = &mut self.types[at];
            if let Some((_, kind)) = object.filter(|_| ty.kind.is_empty()) {
                ty.kind = kind.to_string();
                ty.singular = kind.to_ascii_lowercase();
            }
            return ty;
        }
        let (group, plural) = match folder.split_once('.') {
            Some((plural, group)) if is_custom_type(folder) => (group, plural),
            _ => (object.map_or("", |(group, _)| group), folder),
        };
        let kind = object.map_or("", |(_, kind)| kind);
        let mut ty = CatalogType::new(group, plural, kind);
        // The folder as stored is what the backup's entries name.
        ty.type_dir = folder.to_string();
        self.types.push(ty);
        let last = self.types.len() - 1;
        &mut self.types[last]
    }

    /// Resolves a user's type name among the types `eligible` admits (see the module docs).
    pub fn resolve(&self, name: &str, eligible: impl Fn(&CatalogType) -> bool) -> Resolution<'_> {
        let wanted = name.trim();
        if wanted.is_empty() {
            return Resolution::Unknown;
        }
        let matches: Vec<(Tier, &CatalogType, Option<&str>)> = self
            .types
            .iter()
            .filter(|t| eligible(t))
            .filter_map(|t| t.matches(wanted).map(|(tier, version)| (tier, t, version)))
            .collect();
        let Some(best) = matches.iter().map(|(tier, _, _)| *tier).min() else {
            return Resolution::Unknown;
        };
        let best: Vec<(&CatalogType, Option<&str>)> = matches
            .into_iter()
            .filter(|(tier, _, _)| *tier == best)
            .map(|(_, t, version)| (t, version))
            .collect();

        // One group: the core group, else the highest-priority built-in group, else the only
        // custom group.
        let builtin = best
            .iter()
            .filter_map(|(t, _)| builtin_rank(&t.group).map(|rank| (rank, t.group.as_str())))
            .min();
        let group = match builtin {
            Some((_, group)) => group.to_string(),
            None => {
                let groups: BTreeSet<String> = best
                    .iter()
                    .map(|(t, _)| t.group.to_ascii_lowercase())
                    .collect();
                match groups.into_iter().collect::<Vec<_>>().as_slice() {
                    [only] => only.clone(),
                    _ => return ambiguous(best),
                }
            }
        };
        let in_group: Vec<(&CatalogType, Option<&str>)> = best
            .into_iter()
            .filter(|(t, _)| t.group.eq_ignore_ascii_case(&group))
            .collect();
        match in_group.as_slice() {
            [(ty, version)] => Resolution::Found {
                ty,
                version: *version,
            },
            // Two types of one group matching the same bare name (e.g. a kind and someone
            // else's short name) cannot be told apart.
            _ => ambiguous(in_group),
        }
    }

    /// The closest name `eligible` admits, for "did you mean": edit distance ≤ 2 or a prefix
    /// of at least 3 characters. Suggests the type folder (the plural for built-in groups,
    /// `plural.group` for the rest), which resolves without ambiguity.
    pub fn suggest(&self, name: &str, eligible: impl Fn(&CatalogType) -> bool) -> Option<String> {
        let wanted = name.trim().to_ascii_lowercase();
        if wanted.is_empty() {
            return None;
        }
        let qualified = wanted.contains('.');
        let mut best: Option<(usize, usize, String)> = None; // (distance, group rank, suggestion)
        for t in self.types.iter().filter(|t| eligible(t)) {
            let suggestion = type_dir(&t.group, &t.plural).to_ascii_lowercase();
            let mut spellings: Vec<String> = [&t.plural, &t.singular, &t.kind]
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect();
            if qualified {
                if t.group.is_empty() {
                    continue;
                }
                spellings = spellings
                    .into_iter()
                    .map(|s| format!("{s}.{}", t.group.to_ascii_lowercase()))
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
                let rank = builtin_rank(&t.group).unwrap_or(usize::MAX);
                let candidate = (d, rank, suggestion.clone());
                if best.as_ref().is_none_or(|b| candidate < *b) {
                    best = Some(candidate);
                }
            }
        }
        best.map(|(_, _, s)| s).filter(|s| *s != wanted)
    }
}

fn ambiguous<'c>(matched: Vec<(&'c CatalogType, Option<&'c str>)>) -> Resolution<'c> {
    let mut types: Vec<&CatalogType> = matched.into_iter().map(|(t, _)| t).collect();
    types.sort_by(|a, b| a.type_dir.cmp(&b.type_dir).then(a.group.cmp(&b.group)));
    types.dedup_by(|a, b| a.is(&b.group, &b.plural));
    Resolution::Ambiguous(types)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::tests::res;
    use serde_json::json;

    fn found(r: Resolution<'_>) -> String {
        match r {
            Resolution::Found { ty, version } => match version {
                Some(v) => format!("{}@{v}", ty.qualified_name()),
                None => ty.qualified_name(),
            },
            other => format!("{other:?}"),
        }
    }

    fn ambiguous_names(r: Resolution<'_>) -> Vec<String> {
        match r {
            Resolution::Ambiguous(types) => types.iter().map(|t| t.type_dir.clone()).collect(),
            other => vec![format!("{other:?}")],
        }
    }

    fn discovered() -> TypeCatalog {
        TypeCatalog::from_discovery(&[
            res("", "v1", "ConfigMap", "configmaps", &["cm"], true),
            res("", "v1", "Event", "events", &["ev"], true),
            res("events.k8s.io", "v1", "Event", "events", &["ev"], true),
            res("apps", "v1", "Deployment", "deployments", &["deploy"], true),
            res("acme.io", "v1", "Widget", "widgets", &["w"], true),
            res("acme.io", "v1beta1", "Widget", "widgets", &["w"], true),
            res("other.io", "v1", "Widget", "widgets", &[], true),
            res("other.io", "v1", "W", "ws", &[], true),
        ])
    }

    #[test]
    fn every_spelling_resolves() {
        let c = discovered();
        for name in [
            "deployments",
            "Deployment",
            "deployment",
            "DEPLOY",
            " deploy ",
            "deployments.apps",
            "Deployment.APPS",
            "deploy.apps",
        ] {
            assert_eq!(
                found(c.resolve(name, |_| true)),
                "deployments.apps",
                "{name}"
            );
        }
        assert_eq!(
            found(c.resolve("deployments.v1.apps", |_| true)),
            "deployments.apps@v1"
        );
        assert_eq!(
            found(c.resolve("widgets.v1beta1.acme.io", |_| true)),
            "widgets.acme.io@v1beta1"
        );
        assert_eq!(
            c.resolve("widgets.v2.acme.io", |_| true),
            Resolution::Unknown
        );
        assert_eq!(c.resolve("configmaps.v1", |_| true), Resolution::Unknown);
        assert_eq!(c.resolve("", |_| true), Resolution::Unknown);
    }

    #[test]
    fn groups_rank_as_kube_apiserver_ranks_them() {
        let c = discovered();
        assert_eq!(found(c.resolve("events", |_| true)), "events");
        assert_eq!(found(c.resolve("ev", |_| true)), "events");
        assert_eq!(
            found(c.resolve("events.events.k8s.io", |_| true)),
            "events.events.k8s.io"
        );
        assert_eq!(
            ambiguous_names(c.resolve("widget", |_| true)),
            ["widgets.acme.io", "widgets.other.io"]
        );
        // Full names win over short names: `w` is the kind of `ws`.
        assert_eq!(found(c.resolve("w", |_| true)), "ws.other.io");
        // Only what the caller admits is considered.
        assert_eq!(
            found(c.resolve("widget", |t| t.group != "other.io")),
            "widgets.acme.io"
        );
    }

    #[test]
    fn known_types_are_there_before_discovery() {
        let c = TypeCatalog::known();
        let Resolution::Found { ty, .. } = c.resolve("sts", |_| true) else {
            panic!("statefulsets are known");
        };
        assert_eq!(
            (ty.group.as_str(), ty.plural.as_str()),
            ("apps", "statefulsets")
        );
        assert!(!ty.served && !ty.stored);
        assert_eq!(c.resolve("sts", |t| t.served), Resolution::Unknown);
    }

    #[test]
    fn crds_bring_their_names() {
        let mut c = discovered();
        assert_eq!(c.resolve("wdg", |_| true), Resolution::Unknown);
        c.add_crd(&json!({"apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.acme.io"},
            "spec": {"group": "acme.io", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                               "shortNames": ["WDG", ""]}}}));
        assert_eq!(found(c.resolve("wdg", |_| true)), "widgets.acme.io");
        // A CRD of a type the catalogue does not have yet adds it.
        c.add_crd(&json!({"spec": {"group": "cert-manager.io",
            "names": {"plural": "certificates", "kind": "Certificate", "shortNames": ["cert"]}}}));
        assert_eq!(
            found(c.resolve("cert", |_| true)),
            "certificates.cert-manager.io"
        );
        // Not a CRD: ignored.
        let before = c.clone();
        c.add_crd(&json!({"spec": {"names": {"plural": "x"}}}));
        c.add_crd(&json!("garbage"));
        assert_eq!(c, before);
    }

    #[test]
    fn suggestions_name_the_type_folder() {
        let c = discovered();
        let all = |_: &CatalogType| true;
        assert_eq!(c.suggest("deploymnts", all).as_deref(), Some("deployments"));
        assert_eq!(c.suggest("configm", all).as_deref(), Some("configmaps"));
        assert_eq!(
            c.suggest("widgets.acme.com", all).as_deref(),
            Some("widgets.acme.io")
        );
        assert_eq!(c.suggest("deployments", all), None, "already right");
        assert_eq!(c.suggest("frobnicators", all), None);
        assert_eq!(c.suggest("", all), None);
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("deplyoments", "deployments"), 1);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
