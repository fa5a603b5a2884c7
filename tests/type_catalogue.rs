//! The type catalogue (`src/core/types`) against the REAL kube-apiserver's discovery, so a
//! Kubernetes release that adds, renames, re-scopes or drops a built-in type fails here
//! instead of silently diverging from what the catalogue says about it:
//!
//! * every built-in entry is served, with the same kind, scope, singular and short names;
//! * every served built-in type is in the catalogue or listed below as deliberately absent;
//! * every served group that is neither a CRD's nor an aggregated API's is a built-in group,
//!   and the built-in groups come in the API server's priority order;
//! * every name of every served built-in type resolves, through the one resolver, to that type.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cluster_backup::controller::crds::install_crds;
use cluster_backup::core::types::catalog::{Resolution, TypeCatalog};
use cluster_backup::core::types::{
    BUILTIN_GROUPS, DiscoveredResource, KNOWN_TYPES, builtin_rank, is_builtin_group,
};
use cluster_backup::k8s::discovery::discover;
use common::TestEnv;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Api;
use kube::api::ListParams;

/// Built-in types the catalogue leaves out on purpose, with the reason.
const DELIBERATELY_ABSENT: [(&str, &str, &str); 8] = [
    ("", "bindings", "create-only: binds a pod to a node"),
    (
        "",
        "componentstatuses",
        "computed by the API server on each read; cannot be created",
    ),
    (
        "authentication.k8s.io",
        "selfsubjectreviews",
        "create-only review",
    ),
    (
        "authentication.k8s.io",
        "tokenreviews",
        "create-only review",
    ),
    (
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        "create-only review",
    ),
    (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "create-only review",
    ),
    (
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "create-only review",
    ),
    (
        "authorization.k8s.io",
        "subjectaccessreviews",
        "create-only review",
    ),
];

struct Served {
    /// Preferred version of every served built-in type, by (group, plural).
    builtin: BTreeMap<(String, String), DiscoveredResource>,
    /// Everything discovery returned.
    all: Vec<DiscoveredResource>,
    /// Served groups, in the API server's priority order.
    groups: Vec<String>,
    /// Groups that are neither built-in nor served by a CRD or an aggregated API.
    unexplained_groups: BTreeSet<String>,
}

async fn served() -> Served {
    let env = TestEnv::load();
    let client = env.client().await;
    // At least one custom group is served, so telling CRDs apart is exercised.
    install_crds(&client, Duration::from_secs(60))
        .await
        .expect("CRDs install and become Established");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd_types: BTreeSet<(String, String)> = crds
        .list(&ListParams::default())
        .await
        .expect("list CRDs")
        .items
        .into_iter()
        .map(|crd| (crd.spec.group, crd.spec.names.plural))
        .collect();
    let api_services: Api<APIService> = Api::all(client.clone());
    let aggregated_groups: BTreeSet<String> = api_services
        .list(&ListParams::default())
        .await
        .expect("list APIServices")
        .items
        .into_iter()
        .filter_map(|s| s.spec)
        .filter(|spec| spec.service.is_some())
        .filter_map(|spec| spec.group)
        .collect();

    let all = discover(&client).await.expect("discovery");
    let groups: Vec<String> = std::iter::once(String::new())
        .chain(
            client
                .list_api_groups_aggregated()
                .await
                .expect("aggregated discovery of /apis")
                .items
                .into_iter()
                .filter_map(|g| g.metadata.and_then(|m| m.name)),
        )
        .collect();

    let mut builtin = BTreeMap::new();
    let mut unexplained_groups = BTreeSet::new();
    for r in all.iter().filter(|r| r.preferred) {
        let key = (r.group().to_string(), r.plural().to_string());
        if crd_types.contains(&key) || aggregated_groups.contains(r.group()) {
            assert!(
                !is_builtin_group(r.group()),
                "{} is served by a CRD or an aggregated API but counts as built-in",
                r.qualified_name()
            );
            continue;
        }
        if !is_builtin_group(r.group()) {
            unexplained_groups.insert(r.group().to_string());
        }
        builtin.insert(key, r.clone());
    }
    Served {
        builtin,
        all,
        groups,
        unexplained_groups,
    }
}

fn names(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_ascii_lowercase()).collect()
}

#[tokio::test]
async fn the_catalogue_matches_the_api_servers_discovery() {
    let served = served().await;
    let mut problems = Vec::new();

    assert!(
        served.unexplained_groups.is_empty(),
        "groups served by kube-apiserver itself that BUILTIN_GROUPS lacks: {:?}",
        served.unexplained_groups
    );

    // Every built-in entry is served, and as the catalogue says.
    for known in KNOWN_TYPES.iter().filter(|t| t.is_builtin()) {
        let key = (known.group.to_string(), known.plural.to_string());
        let Some(r) = served.builtin.get(&key) else {
            problems.push(format!(
                "{}: in the catalogue, not served",
                known.type_dir()
            ));
            continue;
        };
        let at = r.qualified_name();
        if r.api.kind != known.kind {
            problems.push(format!(
                "{at}: kind {} served, {} catalogued",
                r.api.kind, known.kind
            ));
        }
        if r.scope != known.scope {
            problems.push(format!(
                "{at}: scope {:?} served, {:?} catalogued",
                r.scope, known.scope
            ));
        }
        if r.singular != known.kind.to_ascii_lowercase() {
            problems.push(format!(
                "{at}: singular {} served, the catalogue assumes the lower-case kind",
                r.singular
            ));
        }
        let served_short: Vec<&str> = r.short_names.iter().map(String::as_str).collect();
        if names(&served_short) != names(known.short_names) {
            problems.push(format!(
                "{at}: short names {served_short:?} served, {:?} catalogued",
                known.short_names
            ));
        }
    }

    // Custom entries the ground serves (this operator's own) are as the catalogue says too.
    for known in KNOWN_TYPES.iter().filter(|t| !t.is_builtin()) {
        let served_as = served
            .all
            .iter()
            .find(|r| r.preferred && r.is(known.group, known.plural));
        if let Some(r) = served_as
            && (r.api.kind != known.kind || r.scope != known.scope)
        {
            problems.push(format!(
                "{}: {} {:?} served, {} {:?} catalogued",
                known.type_dir(),
                r.api.kind,
                r.scope,
                known.kind,
                known.scope
            ));
        }
    }

    // Every served built-in type is in the catalogue, or absent on purpose.
    for ((group, plural), r) in &served.builtin {
        let known = KNOWN_TYPES
            .iter()
            .any(|t| t.group == group && t.plural == plural);
        let absent = DELIBERATELY_ABSENT
            .iter()
            .any(|(g, p, _)| g == group && p == plural);
        if !known && !absent {
            problems.push(format!(
                "{}: served (kind {}, verbs {:?}), neither in the catalogue nor deliberately \
                 absent",
                r.qualified_name(),
                r.api.kind,
                r.verbs
            ));
        }
        if known && absent {
            problems.push(format!(
                "{}: catalogued and listed as absent",
                r.qualified_name()
            ));
        }
    }
    // The deliberately absent types still exist and are still what the reason says.
    for (group, plural, reason) in DELIBERATELY_ABSENT {
        match served.builtin.get(&(group.to_string(), plural.to_string())) {
            None => problems.push(format!(
                "{plural} ({group}): listed as deliberately absent, no longer served"
            )),
            Some(r) if reason.starts_with("create-only") && r.can_list() => problems.push(format!(
                "{}: listed as create-only, can be listed",
                r.qualified_name()
            )),
            Some(_) => {}
        }
    }

    assert!(
        problems.is_empty(),
        "the type catalogue (src/core/types) disagrees with kube-apiserver:\n  {}",
        problems.join("\n  ")
    );
}

#[tokio::test]
async fn builtin_groups_are_in_the_api_servers_priority_order() {
    let served = served().await;
    let ranks: Vec<(usize, &str)> = served
        .groups
        .iter()
        .filter_map(|g| builtin_rank(g).map(|rank| (rank, g.as_str())))
        .collect();
    assert!(
        ranks.is_sorted_by_key(|(rank, _)| *rank),
        "kube-apiserver serves its groups in this order: {:?}\nBUILTIN_GROUPS: {BUILTIN_GROUPS:?}",
        ranks.iter().map(|(_, g)| g).collect::<Vec<_>>()
    );
    assert_eq!(ranks.first(), Some(&(0, "")), "the core group comes first");
}

#[tokio::test]
async fn every_name_of_a_builtin_type_resolves_to_it() {
    let served = served().await;
    let catalog = TypeCatalog::from_discovery(&served.all);
    let mut problems = Vec::new();
    for r in served.builtin.values() {
        let mut spellings = vec![
            r.plural().to_string(),
            r.singular.clone(),
            r.api.kind.clone(),
            r.qualified_name(),
            format!("{}.{}.{}", r.plural(), r.api.version, r.group()),
        ];
        spellings.extend(r.short_names.iter().cloned());
        for name in spellings {
            // `v1` alone is no group: the core group has no `plural.version` spelling.
            if r.group().is_empty() && name.contains('.') {
                continue;
            }
            match catalog.resolve(&name, |t| t.served) {
                // A bare name two built-in groups serve means the higher-ranked group's type
                // (`events` is the core group's); it is stored in the same folder.
                Resolution::Found { ty, .. } if ty.plural == r.plural() => {
                    if ty.group != r.group() && name.contains('.') {
                        problems.push(format!("{name:?} resolves to {}", ty.qualified_name()));
                    }
                }
                other => problems.push(format!("{name:?} of {}: {other:?}", r.qualified_name())),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Served custom types extend the catalogue with their CRD's short names.
    assert!(matches!(
        catalog.resolve("bk", |t| t.served),
        Resolution::Found { ty, .. } if ty.type_dir == "backups.backup.cnd.dk"
    ));
}
