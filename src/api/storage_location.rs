// kube-derive repeats `printcolumn(type_ = ...)`; clippy reads that as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where backups are stored. Shared by `Backup.spec.storageLocation` and
/// `Restore.spec.source.storageLocation`.
///
/// Two forms: `name` alone, naming a ClusterStorageLocation an administrator set up; or the
/// inline form, `provider` and `bucket` with the fields below. Credentials of the inline form
/// come from `credentialsSecret` (preferred) or the inline `accessKey`/`secretKey` (accepted,
/// but the operator emits a warning Event).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
// Only as much as the schema needs to keep refusing an inline location without provider or
// bucket; `name` together with inline fields is reported with the other spec problems.
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.name) || (has(self.provider) && has(self.bucket))",
    "message": "set name (a ClusterStorageLocation), or provider and bucket"
}]))]
pub struct StorageLocation {
    /// Name of a ClusterStorageLocation to use instead of an inline location. It must allow
    /// this namespace, and (in a multi-tenant operator) the requester needs the `use` verb on
    /// it. Set nothing else with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Storage provider: `minio` or `s3` (any S3-compatible server), or `filesystem`
    /// (a local directory such as a mounted PersistentVolumeClaim; `bucket` is then a path).
    /// A multi-tenant operator offers `filesystem`, and `s3` with its own cloud identity, only
    /// through a ClusterStorageLocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<StorageProvider>,

    /// Bucket name (for `filesystem`: the directory that holds the backups).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bucket: String,

    /// Endpoint URL of an S3-compatible server. `http://` means plain HTTP, `https://` means
    /// TLS. Without a scheme, `https://` is assumed. Empty: AWS S3 for `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,

    /// Access key inline in the spec (prefer `credentialsSecret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,

    /// Secret key inline in the spec (prefer `credentialsSecret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,

    /// Name of a Secret in the same namespace holding the keys. Accepted key names:
    /// `accessKey`/`secretKey`, `access-key`/`secret-key`, `access_key`/`secret_key`,
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `MINIO_ROOT_USER`/`MINIO_ROOT_PASSWORD`,
    /// `MINIO_ACCESS_KEY`/`MINIO_SECRET_KEY`, and optionally `sessionToken`/`AWS_SESSION_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,

    /// Region used for request signing. Default `us-east-1` (what MinIO expects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// Optional key prefix inside the bucket, so several tools or clusters can share one bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,

    /// PEM certificates to trust for an `https://` endpoint besides the system's (a private
    /// CA, as MinIO inside a cluster usually has): key `key` (default `ca.crt`) of a ConfigMap
    /// or Secret in the namespace of the Backup or Restore, read with its requester's rights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundleRef>,

    /// Do not verify the certificate of the `https://` endpoint. Anyone on the network path can
    /// then read and change what is stored; every run sends a warning Event. Prefer `caBundle`.
    #[serde(
        default,
        rename = "insecureSkipTLSVerify",
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_tls_verify: Option<bool>,

    /// Client-side encryption of everything stored (objects, manifests, indexes) with keys
    /// from a Secret in the namespace of the Backup or Restore, read with its requester's
    /// rights. Without it nothing is encrypted, and encrypted backups cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionSpec>,
}

/// Client-side encryption: XChaCha20-Poly1305 with keys from a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionSpec {
    /// The Secret holding the keys: entries `<id>.key` of 32 bytes each (raw, or as 64 hex
    /// digits, e.g. from `openssl rand -hex 32`), and `active`, the id of the key new backups
    /// use (optional with one key). Keys stay listed as long as backups written with them are
    /// kept; rotating is adding a key and pointing `active` at it.
    pub key_secret: String,
    /// What is encrypted. `All` (the default): every object, manifest and index, so the
    /// bucket reveals nothing but key names and sizes, and any change to a stored byte is
    /// detected. `Secrets`: only Secret objects; manifests, indexes and other objects stay
    /// readable with plain tools, and only Secrets are protected from being read or altered.
    /// Reading takes the scope of the location: a location scoped `All` refuses what was
    /// stored in plain, so restore a `Secrets` backup through a location scoped `Secrets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<EncryptionScope>,
}

/// What an encrypting location encrypts.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum EncryptionScope {
    /// Every object, manifest and index.
    #[default]
    All,
    /// Only Secret objects (core `v1` Secrets).
    Secrets,
}

impl EncryptionSpec {
    pub fn scope(&self) -> EncryptionScope {
        self.scope.unwrap_or_default()
    }
}

impl StorageLocation {
    /// The ClusterStorageLocation this names, if it names one.
    pub fn cluster_location(&self) -> Option<&str> {
        self.name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
    }
}

/// Storage back ends. `minio` and `s3` are the same S3 protocol with path-style requests.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageProvider {
    #[default]
    Minio,
    S3,
    Filesystem,
}

impl std::fmt::Display for StorageProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StorageProvider::Minio => "minio",
            StorageProvider::S3 => "s3",
            StorageProvider::Filesystem => "filesystem",
        })
    }
}

/// The verb a requester needs on a ClusterStorageLocation to name it
/// (`kubectl create clusterrole … --verb=use --resource=clusterstoragelocations.backup.cnd.dk`).
pub const USE_VERB: &str = "use";

/// Storage an administrator sets up once for many namespaces: the bucket, the operator's keys
/// for it (or its own cloud identity), and who may use it. Backups and Restores name it in
/// `storageLocation.name`.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "backup.cnd.dk",
    version = "v1",
    kind = "ClusterStorageLocation",
    status = "ClusterStorageLocationStatus",
    shortname = "csl",
    category = "cluster-backup",
    doc = "A ClusterStorageLocation is admin-owned backup storage that Backups and Restores of allowed namespaces name in storageLocation.name.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider"),
    printcolumn(name = "Bucket", type_ = "string", json_path = ".spec.bucket"),
    printcolumn(
        name = "Last Checked",
        type_ = "date",
        json_path = ".status.lastChecked"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStorageLocationSpec {
    /// `minio` or `s3` (any S3-compatible server), or `filesystem` (a directory of the
    /// operator's pod, e.g. a mounted PersistentVolumeClaim; `bucket` is then its path).
    pub provider: StorageProvider,

    /// Bucket name (for `filesystem`: the directory).
    pub bucket: String,

    /// Endpoint URL of an S3-compatible server: `http://` plain HTTP, `https://` TLS, no scheme
    /// `https://`. Empty: AWS S3 for `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,

    /// Region used for request signing. Default `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// Key prefix inside the bucket. Every Backup's runs are stored under
    /// `<prefix>/backups/<namespace>/<name>/`, so namespaces sharing a location never overwrite
    /// each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,

    /// The Secret holding the keys, always read from the operator's own namespace (never from
    /// the namespace of a Backup or Restore, so tenants never see it). Without it, provider
    /// `s3` uses the operator's ambient cloud identity (`AWS_*` variables, web identity,
    /// instance role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<CredentialsSecretRef>,

    /// PEM certificates to trust for an `https://` endpoint besides the system's, from a
    /// ConfigMap or Secret in the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundleRef>,

    /// Do not verify the certificate of the `https://` endpoint. Anyone on the network path can
    /// then read and change what is stored; every run using the location sends a warning
    /// Event. Prefer `caBundle`.
    #[serde(
        default,
        rename = "insecureSkipTLSVerify",
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_tls_verify: Option<bool>,

    /// Client-side encryption of everything stored, with keys from a Secret in the operator's
    /// namespace (tenants never see it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionSpec>,

    /// Namespaces whose Backups and Restores may use this location; `"*"` allows every
    /// namespace. Empty (and no `namespaceSelector`): none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_namespaces: Vec<String>,

    /// Namespaces whose labels match may use this location too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

/// A credentials Secret in the operator's namespace. Its keys are named as for
/// `storageLocation.credentialsSecret`: `accessKey`/`secretKey`, `access-key`/`secret-key`,
/// `access_key`/`secret_key`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
/// `MINIO_ROOT_USER`/`MINIO_ROOT_PASSWORD`, `MINIO_ACCESS_KEY`/`MINIO_SECRET_KEY`, and optionally
/// `sessionToken`/`AWS_SESSION_TOKEN`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    pub name: String,
}

/// Key `key` of a ConfigMap (`configMap`) or a Secret (`secret`) holding one or more PEM
/// certificates (in the operator's namespace for a ClusterStorageLocation, in the object's own
/// namespace for an inline location). Set exactly one of the two.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaBundleRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Default `ca.crt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Key of a CA bundle when `caBundle.key` is not set (what cert-manager and
/// `kube-root-ca.crt` use).
pub const DEFAULT_CA_BUNDLE_KEY: &str = "ca.crt";

impl CaBundleRef {
    pub fn key(&self) -> &str {
        self.key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .unwrap_or(DEFAULT_CA_BUNDLE_KEY)
    }
}

/// Whether the operator reached the location at its last check.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum LocationPhase {
    Available,
    Unavailable,
}

impl std::fmt::Display for LocationPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LocationPhase::Available => "Available",
            LocationPhase::Unavailable => "Unavailable",
        })
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStorageLocationStatus {
    /// `Available` when the last check reached the bucket with the location's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<LocationPhase>,

    /// What the last check found, or what to fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// When the location was last checked (every few minutes, and when its spec changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked: Option<Time>,

    /// `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Available`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
