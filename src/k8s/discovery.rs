//! API discovery: every listable resource type the API server serves, as plain values for
//! `plan::plan_types` (so any type works, custom resources included).

use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;

use crate::core::plan::DiscoveredResource;

/// Discovery failed as a whole (a single unavailable aggregated API is only logged).
#[derive(Debug, thiserror::Error)]
#[error("API discovery failed: {source}")]
pub struct DiscoveryError {
    #[source]
    pub source: kube::Error,
}

/// Lists the core group and every API group (all served versions; the preferred one marked).
pub async fn discover(client: &Client) -> Result<Vec<DiscoveredResource>, DiscoveryError> {
    let mut found = Vec::new();
    let core = client
        .list_core_api_versions()
        .await
        .map_err(|source| DiscoveryError { source })?;
    for (index, version) in core.versions.iter().enumerate() {
        let list = client
            .list_core_api_resources(version)
            .await
            .map_err(|source| DiscoveryError { source })?;
        push_resources(&mut found, "", version, index == 0, &list);
    }

    let groups = client
        .list_api_groups()
        .await
        .map_err(|source| DiscoveryError { source })?;
    let mut wanted = Vec::new();
    for group in &groups.groups {
        let preferred = group
            .preferred_version
            .as_ref()
            .map(|v| v.group_version.clone());
        for version in &group.versions {
            let is_preferred = preferred.as_deref() == Some(version.group_version.as_str());
            wanted.push((
                group.name.clone(),
                version.version.clone(),
                version.group_version.clone(),
                is_preferred,
            ));
        }
    }
    let lists = join_all(wanted.iter().map(|(_, _, group_version, _)| {
        let client = client.clone();
        let group_version = group_version.clone();
        async move { client.list_api_group_resources(&group_version).await }
    }))
    .await;
    for ((group, version, group_version, preferred), list) in wanted.into_iter().zip(lists) {
        match list {
            Ok(list) => push_resources(&mut found, &group, &version, preferred, &list),
            // An aggregated API whose backend is down must not stop a backup of everything else.
            Err(err) => {
                tracing::warn!(%group_version, error = %err, "skipping unavailable API group version")
            }
        }
    }
    Ok(found)
}

fn push_resources(
    found: &mut Vec<DiscoveredResource>,
    group: &str,
    version: &str,
    preferred: bool,
    list: &APIResourceList,
) {
    for resource in &list.resources {
        if resource.name.contains('/') {
            continue; // subresources such as pods/log
        }
        found.push(DiscoveredResource {
            group: group.to_string(),
            version: version.to_string(),
            kind: resource.kind.clone(),
            plural: resource.name.clone(),
            // Older servers leave singularName empty for built-in types; kubectl falls back to the kind.
            singular: if resource.singular_name.is_empty() {
                resource.kind.to_lowercase()
            } else {
                resource.singular_name.clone()
            },
            short_names: resource.short_names.clone().unwrap_or_default(),
            namespaced: resource.namespaced,
            verbs: resource.verbs.clone(),
            preferred,
        });
    }
}
