//! Who may use which storage, decided without I/O: the two forms of `storageLocation` (a named
//! ClusterStorageLocation, or inline), what an inline location may not do when runs use the
//! requester's rights, which namespaces a ClusterStorageLocation allows, and the inline
//! location a ClusterStorageLocation stands for. `crate::k8s::locations` does the reads.

use super::StorageError;
use crate::api::{ClusterStorageLocationSpec, StorageLocation, StorageProvider};
use crate::core::names::{
    is_dns1123_label as is_namespace_name, is_dns1123_subdomain as is_object_name,
};
use crate::core::requester::RunAs;

/// What `storageLocation` points at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target<'a> {
    /// Inline: provider, bucket and the rest in the object itself.
    Inline(&'a StorageLocation),
    /// `name`: a ClusterStorageLocation.
    Named(&'a str),
}

/// Which form `location` has; a name with inline fields beside it is refused.
pub fn target(location: &StorageLocation) -> Result<Target<'_>, StorageError> {
    if location.name.is_none() {
        return Ok(Target::Inline(location));
    }
    match named_location_problems(location).into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(Target::Named(
            location.cluster_location().unwrap_or_default(),
        )),
    }
}

/// The inline fields set in `location`, by their YAML names.
fn inline_fields(location: &StorageLocation) -> Vec<&'static str> {
    let set = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    let mut fields = Vec::new();
    if location.provider.is_some() {
        fields.push("provider");
    }
    if !location.bucket.trim().is_empty() {
        fields.push("bucket");
    }
    for (name, value) in [
        ("endpoint", &location.endpoint),
        ("region", &location.region),
        ("prefix", &location.prefix),
        ("credentialsSecret", &location.credentials_secret),
        ("accessKey", &location.access_key),
        ("secretKey", &location.secret_key),
    ] {
        if set(value) {
            fields.push(name);
        }
    }
    if location.ca_bundle.is_some() {
        fields.push("caBundle");
    }
    if location.insecure_skip_tls_verify == Some(true) {
        fields.push("insecureSkipTLSVerify");
    }
    if location.encryption.is_some() {
        fields.push("encryption");
    }
    fields
}

/// Problems of a location with `name`: the name must be one a ClusterStorageLocation can have,
/// and nothing inline may be set beside it (which of the two would win is not obvious).
pub fn named_location_problems(location: &StorageLocation) -> Vec<StorageError> {
    let mut problems = Vec::new();
    let invalid = |reason: String| StorageError::InvalidLocation { reason };
    match location.cluster_location() {
        None => problems.push(invalid(
            "name is empty: name a ClusterStorageLocation, or leave name out and set provider and bucket".to_string(),
        )),
        Some(name) if !is_object_name(name) => problems.push(invalid(format!(
            "name {name:?} cannot name a ClusterStorageLocation (lowercase letters, digits, '-' and '.', at most 253 characters)"
        ))),
        Some(_) => {}
    }
    let fields = inline_fields(location);
    if !fields.is_empty() {
        problems.push(invalid(format!(
            "name (a ClusterStorageLocation) and inline {} are both set: keep name alone, or remove it and describe the location inline",
            fields.join(", ")
        )));
    }
    problems
}

/// What an inline location may not do when the run uses the requester's rights: the
/// operator's own disk (`filesystem`) and the operator's own cloud identity (no keys at all)
/// belong to the operator, so only an administrator hands them out, through a
/// ClusterStorageLocation. Keys the requester brings (a Secret of its namespace, or inline
/// keys) are its own, and fine.
pub fn check_inline(location: &StorageLocation, run_as: &RunAs) -> Result<(), StorageError> {
    if run_as.requester().is_none() {
        return Ok(());
    }
    let has = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    match location.provider {
        Some(StorageProvider::Filesystem) => Err(StorageError::InlineNotAllowed {
            reason: "an inline storage location cannot use provider filesystem: that is the operator's own disk, which only an administrator can offer, as a ClusterStorageLocation; name one in storageLocation.name".to_string(),
        }),
        Some(provider @ (StorageProvider::S3 | StorageProvider::Minio))
            if !has(&location.credentials_secret)
                && !has(&location.access_key)
                && !has(&location.secret_key) =>
        {
            Err(StorageError::InlineNotAllowed {
                reason: format!(
                    "an inline {provider} storage location must bring its own credentials: set credentialsSecret to a Secret in this namespace (or accessKey and secretKey); the operator's own cloud identity is only available through a ClusterStorageLocation an administrator sets up (name it in storageLocation.name)"
                ),
            })
        }
        _ => Ok(()),
    }
}

/// The inline location a ClusterStorageLocation stands for: its bucket, endpoint and so on,
/// with its credentials Secret (a name in the operator's namespace) as `credentialsSecret`.
pub fn effective_location(spec: &ClusterStorageLocationSpec) -> StorageLocation {
    StorageLocation {
        name: None,
        provider: Some(spec.provider),
        bucket: spec.bucket.clone(),
        endpoint: spec.endpoint.clone(),
        access_key: None,
        secret_key: None,
        credentials_secret: spec.credentials_secret.as_ref().map(|s| s.name.clone()),
        region: spec.region.clone(),
        prefix: spec.prefix.clone(),
        // Read from the operator's namespace by the operator (`crate::k8s::locations`).
        ca_bundle: spec.ca_bundle.clone(),
        insecure_skip_tls_verify: spec.insecure_skip_tls_verify,
        // Read from the operator's namespace by the operator, like the CA bundle.
        encryption: spec.encryption.clone(),
    }
}

/// Whether `allowedNamespaces` lists `namespace` (or `"*"`). `namespaceSelector` is matched
/// against the namespace's labels by the caller.
pub fn namespace_listed(spec: &ClusterStorageLocationSpec, namespace: &str) -> bool {
    spec.allowed_namespaces
        .iter()
        .map(|n| n.trim())
        .any(|n| n == "*" || n == namespace)
}

/// Everything wrong with a ClusterStorageLocation's spec that shows without a request: its
/// location (as [`super::location_problems`] sees it), `allowedNamespaces` entries that are
/// no namespace name, and a `namespaceSelector` Kubernetes would refuse.
pub fn cluster_location_problems(spec: &ClusterStorageLocationSpec) -> Vec<String> {
    let mut problems: Vec<String> = super::location_problems(&effective_location(spec))
        .iter()
        .map(ToString::to_string)
        .collect();
    for (i, namespace) in spec.allowed_namespaces.iter().enumerate() {
        let namespace = namespace.trim();
        if namespace != "*" && !is_namespace_name(namespace) {
            problems.push(format!(
                "allowedNamespaces[{i}]: {namespace:?} is not a namespace name (or \"*\" for all)"
            ));
        }
    }
    if let Some(Err(err)) = spec
        .namespace_selector
        .as_ref()
        .map(crate::core::selector::parse)
    {
        problems.extend(
            err.problems
                .iter()
                .map(|p| format!("namespaceSelector.{p}")),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CaBundleRef, CredentialsSecretRef};
    use crate::core::requester::Requester;

    fn named(name: &str) -> StorageLocation {
        StorageLocation {
            name: Some(name.to_string()),
            ..StorageLocation::default()
        }
    }

    fn inline(provider: StorageProvider) -> StorageLocation {
        StorageLocation {
            provider: Some(provider),
            bucket: "b".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            ..StorageLocation::default()
        }
    }

    fn tenant() -> RunAs {
        RunAs::Requester(Requester {
            username: "alice".into(),
            ..Requester::default()
        })
    }

    #[test]
    fn a_name_alone_is_a_named_target() {
        assert_eq!(target(&named("team-a")).unwrap(), Target::Named("team-a"));
        let location = inline(StorageProvider::Minio);
        assert_eq!(target(&location).unwrap(), Target::Inline(&location));
    }

    #[test]
    fn a_name_with_inline_fields_is_refused_naming_them() {
        let location = StorageLocation {
            name: Some("team-a".into()),
            ..inline(StorageProvider::Minio)
        };
        let err = target(&location).unwrap_err().to_string();
        assert!(err.contains("inline provider, bucket, endpoint"), "{err}");
        let problems = named_location_problems(&StorageLocation {
            name: Some("Team_A".into()),
            access_key: Some("k".into()),
            ..StorageLocation::default()
        });
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].to_string().contains("cannot name"));
        assert!(problems[1].to_string().contains("accessKey"));
        assert!(
            named_location_problems(&named(" "))[0]
                .to_string()
                .contains("name is empty")
        );
    }

    #[test]
    fn a_requester_cannot_use_the_operators_disk_or_identity_inline() {
        let fs = inline(StorageProvider::Filesystem);
        let err = check_inline(&fs, &tenant()).unwrap_err().to_string();
        assert!(
            err.contains("filesystem") && err.contains("ClusterStorageLocation"),
            "{err}"
        );
        for provider in [StorageProvider::S3, StorageProvider::Minio] {
            let err = check_inline(&inline(provider), &tenant())
                .unwrap_err()
                .to_string();
            assert!(err.contains("own credentials"), "{err}");
            assert!(err.contains("ClusterStorageLocation"), "{err}");
        }
        // The operator itself (single-tenant) may.
        assert!(check_inline(&fs, &RunAs::Operator).is_ok());
        assert!(check_inline(&inline(StorageProvider::S3), &RunAs::Operator).is_ok());
    }

    #[test]
    fn a_requester_may_bring_its_own_keys() {
        let with_secret = StorageLocation {
            credentials_secret: Some("creds".into()),
            ..inline(StorageProvider::S3)
        };
        assert!(check_inline(&with_secret, &tenant()).is_ok());
        let with_keys = StorageLocation {
            access_key: Some("a".into()),
            secret_key: Some("s".into()),
            ..inline(StorageProvider::Minio)
        };
        assert!(check_inline(&with_keys, &tenant()).is_ok());
    }

    fn spec() -> ClusterStorageLocationSpec {
        ClusterStorageLocationSpec {
            provider: StorageProvider::Minio,
            bucket: "shared".into(),
            endpoint: Some("http://minio.minio.svc:9000".into()),
            region: None,
            prefix: Some("team-a".into()),
            credentials_secret: Some(CredentialsSecretRef {
                name: "s3-keys".into(),
            }),
            ca_bundle: None,
            insecure_skip_tls_verify: None,
            encryption: None,
            allowed_namespaces: vec!["team-a".into()],
            namespace_selector: None,
        }
    }

    #[test]
    fn effective_location_carries_the_secret_name() {
        let location = effective_location(&spec());
        assert_eq!(location.provider, Some(StorageProvider::Minio));
        assert_eq!(location.bucket, "shared");
        assert_eq!(location.credentials_secret.as_deref(), Some("s3-keys"));
        assert_eq!(location.name, None);
        assert!(super::super::location_problems(&location).is_empty());
    }

    #[test]
    fn allowed_namespaces_list_or_star() {
        let mut spec = spec();
        assert!(namespace_listed(&spec, "team-a"));
        assert!(!namespace_listed(&spec, "team-b"));
        spec.allowed_namespaces = vec![];
        assert!(!namespace_listed(&spec, "team-a"));
        spec.allowed_namespaces = vec!["*".into()];
        assert!(namespace_listed(&spec, "anything"));
    }

    #[test]
    fn cluster_location_problems_are_all_listed() {
        assert!(cluster_location_problems(&spec()).is_empty());
        let bad = ClusterStorageLocationSpec {
            bucket: "a b".into(),
            endpoint: None,
            allowed_namespaces: vec!["Team_A".into(), "*".into()],
            ca_bundle: Some(CaBundleRef {
                config_map: Some("a".into()),
                secret: Some("b".into()),
                key: None,
            }),
            ..spec()
        };
        let problems = cluster_location_problems(&bad);
        assert_eq!(problems.len(), 4, "{problems:?}");
        for part in [
            "bucket name",
            "needs an endpoint",
            "allowedNamespaces[0]",
            "caBundle",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(part)),
                "{part}: {problems:?}"
            );
        }
    }
}
