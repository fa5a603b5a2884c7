//! API discovery: every resource type the API server serves, as plain values for the type
//! catalogue ([`crate::core::types::catalog`]), custom resources and their short names included.
//!
//! One aggregated discovery document per root (`/api` and `/apis`: two requests, each retried
//! while the API server is unavailable, [`with_retries`]) through kube's client
//! ([`Client::list_api_groups_aggregated`]) and its discovery types. Not
//! `kube::discovery::Discovery`: its [`ApiResource`] has no short names or singular names,
//! which resolving `resourceTypes` as `kubectl` does needs, and its legacy mode fails as a
//! whole when one API group cannot be listed. Here a group version the aggregated document
//! marks `Stale` (an aggregated API whose backend is down, such as `metrics.k8s.io` without
//! metrics-server) is reported in the log and skipped: it must not stop a backup of everything
//! else.

use kube::Client;
use kube::core::discovery::v2::{APIGroupDiscovery, APIGroupDiscoveryList, APIVersionDiscovery};
use kube::discovery::{ApiResource, Scope};

use crate::core::types::DiscoveredResource;
use crate::k8s::retry::with_retries;

/// Discovery failed as a whole (a single unavailable aggregated API is only logged).
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("API discovery failed: {source}")]
    Request {
        #[source]
        source: kube::Error,
    },
    /// The API server answered `/api` without an aggregated discovery document.
    #[error(
        "API discovery failed: the API server does not serve aggregated discovery \
         (apidiscovery.k8s.io v2 or v2beta1, Kubernetes 1.27 or newer)"
    )]
    NotAggregated,
}

/// Every resource of every served group version (the preferred version of each group marked).
pub async fn discover(client: &Client) -> Result<Vec<DiscoveredResource>, DiscoveryError> {
    let core = with_retries("discovery of /api", || {
        client.list_core_api_versions_aggregated()
    })
    .await
    .map_err(|source| DiscoveryError::Request { source })?;
    let groups = with_retries("discovery of /apis", || client.list_api_groups_aggregated())
        .await
        .map_err(|source| DiscoveryError::Request { source })?;
    let found = resources(&core, &groups)?;
    for group_version in &found.stale {
        tracing::warn!(%group_version, "skipping unavailable API group version");
    }
    Ok(found.resources)
}

/// What the two aggregated documents hold.
#[derive(Debug, Default, PartialEq)]
struct Found {
    resources: Vec<DiscoveredResource>,
    /// `group/version` of the group versions whose discovery is stale.
    stale: Vec<String>,
}

fn resources(
    core: &APIGroupDiscoveryList,
    groups: &APIGroupDiscoveryList,
) -> Result<Found, DiscoveryError> {
    // An API server without aggregated discovery answers with its plain version list, which
    // reads as an empty document.
    if core.items.is_empty() {
        return Err(DiscoveryError::NotAggregated);
    }
    let mut found = Found::default();
    for group in core.items.iter().chain(&groups.items) {
        add_group(&mut found, group);
    }
    Ok(found)
}

fn add_group(found: &mut Found, group: &APIGroupDiscovery) {
    let name = group
        .metadata
        .as_ref()
        .and_then(|m| m.name.as_deref())
        .unwrap_or_default();
    // Versions are listed in preference order: the first is the preferred one.
    for (index, version) in group.versions.iter().enumerate() {
        let Some(v) = version.version.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        let api_version = if name.is_empty() {
            v.to_string()
        } else {
            format!("{name}/{v}")
        };
        if version.freshness.as_deref() == Some("Stale") {
            found.stale.push(api_version);
            continue;
        }
        add_version(found, name, v, &api_version, index == 0, version);
    }
}

fn add_version(
    found: &mut Found,
    group: &str,
    version: &str,
    api_version: &str,
    preferred: bool,
    discovery: &APIVersionDiscovery,
) {
    for resource in &discovery.resources {
        let plural = resource.resource.clone().unwrap_or_default();
        let kind = resource
            .response_kind
            .as_ref()
            .and_then(|k| k.kind.clone())
            .unwrap_or_default();
        if plural.is_empty() || kind.is_empty() {
            continue;
        }
        let singular = resource
            .singular_resource
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| kind.to_lowercase());
        let scope = match resource.scope.as_deref() {
            Some("Namespaced") => Scope::Namespaced,
            _ => Scope::Cluster,
        };
        found.resources.push(DiscoveredResource {
            api: ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                api_version: api_version.to_string(),
                kind,
                plural,
            },
            scope,
            singular,
            short_names: resource.short_names.clone(),
            verbs: resource.verbs.clone(),
            preferred,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(json: serde_json::Value) -> APIGroupDiscoveryList {
        serde_json::from_value(json).unwrap()
    }

    fn core() -> APIGroupDiscoveryList {
        list(
            serde_json::json!({"kind": "APIGroupDiscoveryList", "items": [{
                "metadata": {"creationTimestamp": null},
                "versions": [{"version": "v1", "freshness": "Current", "resources": [
                    {"resource": "configmaps", "responseKind": {"group": "", "version": "v1",
                     "kind": "ConfigMap"}, "scope": "Namespaced", "singularResource": "configmap",
                     "shortNames": ["cm"], "verbs": ["create", "get", "list"]},
                    {"resource": "nodes", "responseKind": {"kind": "Node"}, "scope": "Cluster",
                     "verbs": ["get", "list"]},
                    {"resource": "broken"}
                ]}]
            }]}),
        )
    }

    #[test]
    fn aggregated_documents_become_resources() {
        let groups = list(serde_json::json!({"items": [
            {"metadata": {"name": "autoscaling"}, "versions": [
                {"version": "v2", "resources": [{"resource": "horizontalpodautoscalers",
                  "responseKind": {"kind": "HorizontalPodAutoscaler"}, "scope": "Namespaced",
                  "singularResource": "horizontalpodautoscaler", "shortNames": ["hpa"],
                  "verbs": ["list"]}]},
                {"version": "v1", "resources": [{"resource": "horizontalpodautoscalers",
                  "responseKind": {"kind": "HorizontalPodAutoscaler"}, "scope": "Namespaced",
                  "verbs": ["list"]}]}]},
            {"metadata": {"name": "metrics.k8s.io"}, "versions": [
                {"version": "v1beta1", "freshness": "Stale", "resources": []}]}
        ]}));
        let found = resources(&core(), &groups).unwrap();
        assert_eq!(found.stale, ["metrics.k8s.io/v1beta1"]);
        let names: Vec<(String, bool, bool)> = found
            .resources
            .iter()
            .map(|r| {
                (
                    r.api.api_version.clone() + " " + &r.api.plural,
                    r.namespaced(),
                    r.preferred,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("v1 configmaps".to_string(), true, true),
                ("v1 nodes".to_string(), false, true),
                (
                    "autoscaling/v2 horizontalpodautoscalers".to_string(),
                    true,
                    true
                ),
                (
                    "autoscaling/v1 horizontalpodautoscalers".to_string(),
                    true,
                    false
                ),
            ]
        );
        let cm = &found.resources[0];
        assert_eq!(cm.api.kind, "ConfigMap");
        assert_eq!(cm.short_names, ["cm"]);
        assert!(cm.can_list());
        assert_eq!(
            found.resources[1].singular, "node",
            "falls back to the kind"
        );
    }

    #[test]
    fn a_server_without_aggregated_discovery_is_named() {
        let plain = list(serde_json::json!({"kind": "APIVersions", "versions": ["v1"]}));
        assert!(matches!(
            resources(&plain, &plain),
            Err(DiscoveryError::NotAggregated)
        ));
    }
}
