use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where backups are stored. Shared by `Backup.spec.storageLocation` and
/// `Restore.spec.source.storageLocation`.
///
/// Credentials come from `credentialsSecret` (preferred) or the inline `accessKey`/`secretKey`
/// (accepted, but the operator emits a warning Event).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageLocation {
    /// Storage provider: `minio` or `s3` (any S3-compatible server), or `filesystem`
    /// (a local directory such as a mounted PersistentVolumeClaim; `bucket` is then a path).
    pub provider: StorageProvider,

    /// Bucket name (for `filesystem`: the directory that holds the backups).
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
