//! Opening the storage a Backup or Restore names: an inline location with the requester's own
//! keys, or a ClusterStorageLocation with the operator's, once the requester may `use` it and
//! its namespace is allowed. What may be done is decided in [`crate::storage::access`]; the
//! reads (the ClusterStorageLocation, Secrets, the CA bundle, the SubjectAccessReview) are here.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::PostParams;
use kube::core::SelectorExt;
use kube::{Api, Client};

use std::collections::BTreeMap;
use std::sync::Arc;

use super::credentials::{OPERATOR, resolve_credentials_as};
use super::retry;
use crate::api::{CaBundleRef, ClusterStorageLocation, GROUP, StorageLocation, USE_VERB};
use crate::core::requester::{Requester, RunAs};
use crate::storage::access::{self, Target};
use crate::storage::sealed::Keyring;
use crate::storage::{Storage, StorageError};

/// The plural the `use` verb is granted on.
pub const CLUSTER_STORAGE_LOCATIONS: &str = "clusterstoragelocations";

/// Whose rights a run's storage is opened with, and the clients acting for them.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    /// The operator's own identity: ClusterStorageLocations, their Secrets and CA bundles in
    /// the operator's namespace, namespaces, SubjectAccessReviews.
    pub operator: &'a Client,
    /// Acting as the requester (the operator itself when `run_as` is `Operator`): the
    /// credentials Secret of an inline location, so a tenant can only use Secrets it may read.
    pub requester: &'a Client,
    pub run_as: &'a RunAs,
    /// Where the Secrets and ConfigMaps of ClusterStorageLocations live.
    pub operator_namespace: &'a str,
}

/// Storage ready for a run, and what the user should hear about it (warning Events).
#[derive(Debug)]
pub struct Opened {
    pub storage: Storage,
    pub warnings: Vec<StorageWarning>,
}

/// A warning Event about the storage a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageWarning {
    /// [`CREDENTIALS_WARNING`] or [`INSECURE_TRANSPORT`].
    pub reason: &'static str,
    pub message: String,
}

/// Keys written inline in the spec, or a Secret missing an optional key.
pub const CREDENTIALS_WARNING: &str = "CredentialsWarning";
/// Plain HTTP to another machine, or a certificate nobody checks.
pub const INSECURE_TRANSPORT: &str = "InsecureTransport";

fn transport_warnings(location: &StorageLocation) -> impl Iterator<Item = StorageWarning> {
    crate::storage::transport_warnings(location)
        .into_iter()
        .map(|message| StorageWarning {
            reason: INSECURE_TRANSPORT,
            message,
        })
}

/// Opens `location` for an object in `namespace`:
/// - inline: refused in multi-tenant mode when it needs what only an administrator can offer
///   ([`access::check_inline`]); its `credentialsSecret` is read from `namespace` by the
///   requester; inline keys are used with a warning;
/// - `name`: the requester must be allowed the `use` verb on that ClusterStorageLocation (a
///   SubjectAccessReview, in multi-tenant mode only), which must exist and allow `namespace`;
///   then it is opened with its own credentials ([`open_cluster_location`]).
pub async fn open_storage(
    access: &Access<'_>,
    namespace: &str,
    location: &StorageLocation,
) -> Result<Opened, StorageError> {
    match access::target(location)? {
        Target::Inline(location) => {
            access::check_inline(location, access.run_as)?;
            let reader = match access.run_as.requester() {
                Some(requester) => format!("user {:?}", requester.username),
                None => OPERATOR.to_string(),
            };
            let resolved =
                resolve_credentials_as(access.requester, namespace, location, &reader).await?;
            // The requester's own CA bundle, read with its rights like its credentials.
            let ca_bundle = match &location.ca_bundle {
                Some(reference) => {
                    Some(read_ca_bundle(access.requester, namespace, reference, &reader).await?)
                }
                None => None,
            };
            let storage =
                Storage::new_with_ca_bundle(location, resolved.credentials, ca_bundle.as_deref())?;
            // The requester's own keys, read with its rights.
            let storage = match &location.encryption {
                Some(encryption) => storage
                    .with_keyring(Arc::new(
                        read_keyring(access.requester, namespace, &encryption.key_secret, &reader)
                            .await?,
                    ))
                    .with_scope(encryption.scope()),
                None => storage,
            };
            let mut warnings: Vec<StorageWarning> = resolved
                .warnings
                .into_iter()
                .map(|message| StorageWarning {
                    reason: CREDENTIALS_WARNING,
                    message,
                })
                .collect();
            warnings.extend(transport_warnings(location));
            Ok(Opened { storage, warnings })
        }
        Target::Named(name) => {
            // Asked first, so a requester without the right learns nothing about the location.
            if let Some(requester) = access.run_as.requester() {
                may_use(access.operator, requester, name, namespace).await?;
            }
            let location = get_cluster_location(access.operator, name).await?;
            check_namespace(access.operator, &location, name, namespace).await?;
            let storage =
                open_cluster_location(access.operator, access.operator_namespace, &location)
                    .await
                    .map_err(|source| StorageError::ClusterLocation {
                        name: name.to_string(),
                        source: Box::new(source),
                    })?;
            Ok(Opened {
                storage,
                warnings: transport_warnings(&access::effective_location(&location.spec)).collect(),
            })
        }
    }
}

/// Whether `requester` may `use` ClusterStorageLocation `name` for an object in `namespace`,
/// as the API server's authorizer (RBAC, or whatever the cluster runs) answers a
/// SubjectAccessReview made by the operator. The review names `namespace` (as PodSecurityPolicy's
/// `use` did), so a RoleBinding there grants the location to that namespace's objects and a
/// ClusterRoleBinding grants it everywhere.
pub async fn may_use(
    operator: &Client,
    requester: &Requester,
    name: &str,
    namespace: &str,
) -> Result<(), StorageError> {
    let attributes = ResourceAttributes {
        group: Some(GROUP.to_string()),
        resource: Some(CLUSTER_STORAGE_LOCATIONS.to_string()),
        verb: Some(USE_VERB.to_string()),
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()).filter(|ns| !ns.is_empty()),
        ..ResourceAttributes::default()
    };
    review(operator, requester, name, attributes, |reason| {
        StorageError::UseDenied {
            user: requester.username.clone(),
            location: name.to_string(),
            namespace: namespace.to_string(),
            reason,
        }
    })
    .await
}

/// Whether `requester` may read the Backups of `namespace`: the runs a shared
/// ClusterStorageLocation holds for that namespace's Backups are theirs to restore only then.
pub async fn may_read_backups(
    operator: &Client,
    requester: &Requester,
    location: &str,
    namespace: &str,
) -> Result<(), StorageError> {
    let attributes = ResourceAttributes {
        group: Some(GROUP.to_string()),
        resource: Some("backups".to_string()),
        verb: Some("get".to_string()),
        namespace: Some(namespace.to_string()),
        ..ResourceAttributes::default()
    };
    review(operator, requester, location, attributes, |reason| {
        StorageError::ForeignRun {
            user: requester.username.clone(),
            location: location.to_string(),
            namespace: namespace.to_string(),
            reason,
        }
    })
    .await
}

/// Asks the API server's authorizer, with a SubjectAccessReview the operator creates, whether
/// `requester` may do what `attributes` say (about `location`): `denied` makes the refusal from
/// the authorizer's reason (` (reason)`, or empty).
async fn review(
    operator: &Client,
    requester: &Requester,
    location: &str,
    attributes: ResourceAttributes,
    denied: impl FnOnce(String) -> StorageError,
) -> Result<(), StorageError> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(requester.username.clone()),
            uid: Some(requester.uid.clone()).filter(|uid| !uid.is_empty()),
            groups: Some(requester.groups.clone()).filter(|groups| !groups.is_empty()),
            extra: Some(requester.extra.clone()).filter(|extra| !extra.is_empty()),
            resource_attributes: Some(attributes),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(operator.clone());
    let status = match api.create(&PostParams::default(), &review).await {
        Ok(answer) => answer.status.unwrap_or_default(),
        Err(source) => {
            let (reason, transient) = review_failure(&source);
            return Err(StorageError::AccessReview {
                user: requester.username.clone(),
                location: location.to_string(),
                reason,
                transient,
                source: Box::new(source),
            });
        }
    };
    if status.allowed {
        return Ok(());
    }
    Err(denied(
        status
            .reason
            .filter(|r| !r.is_empty())
            .or(status.evaluation_error.filter(|e| !e.is_empty()))
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
    ))
}

/// What to tell when the review itself failed, and whether trying again may help.
fn review_failure(source: &kube::Error) -> (String, bool) {
    match source {
        kube::Error::Api(status) if status.is_forbidden() => (
            "the operator may not create SubjectAccessReviews: check its RBAC (it needs `create` on subjectaccessreviews.authorization.k8s.io)".to_string(),
            false,
        ),
        other => (other.to_string(), retry::is_transient(other)),
    }
}

async fn get_cluster_location(
    operator: &Client,
    name: &str,
) -> Result<ClusterStorageLocation, StorageError> {
    let api: Api<ClusterStorageLocation> = Api::all(operator.clone());
    api.get(name).await.map_err(|source| match &source {
        kube::Error::Api(status) if status.is_not_found() => {
            StorageError::ClusterLocationNotFound {
                name: name.to_string(),
                source: Box::new(source),
            }
        }
        other => StorageError::ClusterLocationRead {
            name: name.to_string(),
            transient: retry::is_transient(other),
            source: Box::new(source),
        },
    })
}

/// `namespace` is listed in `allowedNamespaces` (or `"*"`), or its labels match
/// `namespaceSelector`.
async fn check_namespace(
    operator: &Client,
    location: &ClusterStorageLocation,
    name: &str,
    namespace: &str,
) -> Result<(), StorageError> {
    if access::namespace_listed(&location.spec, namespace) {
        return Ok(());
    }
    let not_allowed = || StorageError::NamespaceNotAllowed {
        location: name.to_string(),
        namespace: namespace.to_string(),
    };
    let Some(selector) = &location.spec.namespace_selector else {
        return Err(not_allowed());
    };
    // An invalid selector allows nothing; the availability check reports it.
    let Ok(selector) = crate::core::selector::parse(selector) else {
        return Err(not_allowed());
    };
    let api: Api<Namespace> = Api::all(operator.clone());
    let found = api
        .get(namespace)
        .await
        .map_err(|source| StorageError::Failed {
            operation: "read",
            target: format!("namespace {namespace:?}"),
            source: Box::new(source),
        })?;
    let labels = found.metadata.labels.unwrap_or_default();
    if selector.matches(&labels) {
        Ok(())
    } else {
        Err(not_allowed())
    }
}

/// Opens a ClusterStorageLocation with its own credentials: its Secret in the operator's
/// namespace, or, with none, the operator's ambient identity (provider `s3`); and its CA
/// bundle. Who may use it is not checked here.
pub async fn open_cluster_location(
    operator: &Client,
    operator_namespace: &str,
    location: &ClusterStorageLocation,
) -> Result<Storage, StorageError> {
    let problems = access::cluster_location_problems(&location.spec);
    if !problems.is_empty() {
        return Err(StorageError::InvalidLocation {
            reason: format!("its spec is invalid: {}", problems.join("; ")),
        });
    }
    let effective = access::effective_location(&location.spec);
    let resolved =
        resolve_credentials_as(operator, operator_namespace, &effective, OPERATOR).await?;
    let ca_bundle = match &location.spec.ca_bundle {
        Some(reference) => {
            Some(read_ca_bundle(operator, operator_namespace, reference, OPERATOR).await?)
        }
        None => None,
    };
    let storage =
        Storage::new_with_ca_bundle(&effective, resolved.credentials, ca_bundle.as_deref())?;
    Ok(match &location.spec.encryption {
        Some(encryption) => storage
            .with_keyring(Arc::new(
                read_keyring(
                    operator,
                    operator_namespace,
                    &encryption.key_secret,
                    OPERATOR,
                )
                .await?,
            ))
            .with_scope(encryption.scope()),
        None => storage,
    })
}

/// The encryption keys in Secret `name` of `namespace`, read by `client` (`reader` names it in
/// errors). Key material never appears in an error.
async fn read_keyring(
    client: &Client,
    namespace: &str,
    name: &str,
    reader: &str,
) -> Result<Keyring, StorageError> {
    let name = name.trim();
    let what = format!("{name:?} in namespace {namespace:?}");
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api.get(name).await.map_err(|source| {
        let (reason, transient) = match &source {
            kube::Error::Api(status) if status.is_not_found() => {
                ("not found".to_string(), false)
            }
            kube::Error::Api(status) if status.is_forbidden() => (
                format!(
                    "{reader} may not read it: check its RBAC (it needs `get` on secrets in that namespace)"
                ),
                false,
            ),
            other => (other.to_string(), retry::is_transient(other)),
        };
        StorageError::KeySecret {
            what: what.clone(),
            reason,
            transient,
        }
    })?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let keyring = Keyring::from_secret_data(&format!("Secret \"{namespace}/{name}\""), &data)
        .map_err(|reason| StorageError::KeySecret {
            what,
            reason,
            transient: false,
        });
    data.values_mut().for_each(zeroize::Zeroize::zeroize);
    keyring
}

/// The PEM text at `reference` (a ConfigMap's `data` or `binaryData`, or a Secret's `data`),
/// read by `client` (`reader` names it in errors: `the operator`, or `user "alice"`).
async fn read_ca_bundle(
    client: &Client,
    namespace: &str,
    reference: &CaBundleRef,
    reader: &str,
) -> Result<Vec<u8>, StorageError> {
    let key = reference.key();
    let (kind, name) = match (&reference.config_map, &reference.secret) {
        (Some(name), _) => ("ConfigMap", name.as_str()),
        (None, Some(name)) => ("Secret", name.as_str()),
        (None, None) => ("ConfigMap", ""),
    };
    let what = format!("key {key:?} of {kind} {name:?} in namespace {namespace:?}");
    let failed = |source: kube::Error| {
        let (reason, transient) = match &source {
            kube::Error::Api(status) if status.is_not_found() => {
                (format!("{kind} not found"), false)
            }
            kube::Error::Api(status) if status.is_forbidden() => (
                format!(
                    "{reader} may not read it: check its RBAC (it needs `get` on {}s in that namespace)",
                    kind.to_lowercase()
                ),
                false,
            ),
            other => (other.to_string(), retry::is_transient(other)),
        };
        StorageError::CaBundle {
            what: what.clone(),
            reason,
            transient,
        }
    };
    let found = if kind == "ConfigMap" {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let map = api.get(name).await.map_err(failed)?;
        map.data
            .and_then(|mut data| data.remove(key))
            .map(String::into_bytes)
            .or_else(|| {
                map.binary_data
                    .and_then(|mut data| data.remove(key))
                    .map(|b| b.0)
            })
    } else {
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let secret = api.get(name).await.map_err(failed)?;
        secret
            .data
            .and_then(|mut data| data.remove(key))
            .map(|b| b.0)
    };
    found.ok_or_else(|| StorageError::CaBundle {
        what: what.clone(),
        reason: "the key is missing (set caBundle.key to the key that holds the PEM)".to_string(),
        transient: false,
    })
}
