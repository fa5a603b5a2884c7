//! Object storage for the backup and restore engines: an object_store built from a
//! `StorageLocation` and its credentials, keys relative to the location's prefix, and errors
//! that say what to fix.
//!
//! Network behaviour is tuned so that a storage outage fails a run within seconds instead of
//! object_store's default of ten retries over three minutes: connect timeout
//! [`CONNECT_TIMEOUT`], per-request timeout [`REQUEST_TIMEOUT`], [`MAX_RETRIES`] retries within
//! [`RETRY_TIMEOUT`].

pub mod access;
mod bucket;
pub mod catalogue;
mod counting;
pub mod credentials;
mod endpoint;
mod error;
mod paths;
pub mod sealed;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    BackoffConfig, Certificate, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

pub use counting::StatsSnapshot;
pub use credentials::{
    CredentialSource, Credentials, ResolvedCredentials, SECRET_KEY_PAIRS, SECRET_SESSION_TOKEN_KEYS,
};
pub use error::{BoxError, ErrorCategory, StorageError};

use crate::api::{EncryptionScope, StorageLocation, StorageProvider};
use bucket::BucketAdmin;
use error::OpContext;

/// TCP (and TLS) connect timeout for S3 requests.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout for one S3 request (backups store many small objects).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries of a failed request (connection errors, 5xx, 429) before giving up.
pub const MAX_RETRIES: usize = 2;
/// No retry starts later than this after the first attempt.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(15);

const DEFAULT_REGION: &str = "us-east-1";

/// What [`Storage::probe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The bucket (or directory) answered.
    Ready,
    /// The server answered, but the bucket (or directory) does not exist yet; the first backup
    /// creates it.
    BucketMissing,
}

/// One object found by [`Storage::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Key relative to the location's prefix; pass it to [`Storage::get`].
    pub key: String,
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// A storage location ready for use. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
    /// `encryption`: what [`Storage::put`] writes is sealed, what [`Storage::get_bounded`]
    /// reads must be sealed (all of it, or only Secrets: `scope`).
    keyring: Option<Arc<sealed::Keyring>>,
    scope: EncryptionScope,
}

/// What an item holds, for an encrypting location of scope [`EncryptionScope::Secrets`]:
/// only Secret objects are sealed there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// A stored Secret object.
    Secret,
    /// Any other object, a manifest, an index document.
    Other,
}

impl Content {
    /// The content of a stored object of this `apiVersion` and `kind`.
    pub fn of(api_version: &str, kind: &str) -> Content {
        if api_version == "v1" && kind == "Secret" {
            Content::Secret
        } else {
            Content::Other
        }
    }
}

struct Inner {
    /// Counted ([`counting::CountingStore`]).
    store: Arc<dyn ObjectStore>,
    stats: Arc<counting::StorageStats>,
    prefix: Vec<String>,
    prefix_path: Path,
    bucket: String,
    description: String,
    backend: Backend,
}

enum Backend {
    S3 {
        endpoint: String,
        scheme_implied: bool,
        admin: BucketAdmin,
    },
    Filesystem {
        root: std::path::PathBuf,
    },
    /// Wrapped by [`Storage::from_store`] (tests, in-memory).
    Custom,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("location", &self.inner.description)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Builds the store for `location`. No request is made; call [`Storage::ensure_bucket`] to
    /// check the connection.
    ///
    /// - `minio`/`s3`: path-style requests; `endpoint` `http://` → plain HTTP, `https://` → TLS,
    ///   no scheme → `https://`, anything else refused; region default `us-east-1`. `minio`
    ///   needs an endpoint and credentials; `s3` without an endpoint means AWS, and with
    ///   `credentials` `None` the `AWS_*` environment / instance role is used.
    /// - `filesystem`: the directory `bucket` (created if missing).
    ///
    /// `location` must be an inline one: a `name` (a ClusterStorageLocation) is resolved into
    /// one first (`crate::k8s::locations`).
    pub fn new(
        location: &StorageLocation,
        credentials: Option<Credentials>,
    ) -> Result<Storage, StorageError> {
        Self::new_with_ca_bundle(location, credentials, None)
    }

    /// [`Storage::new`] that also trusts the PEM certificates in `ca_bundle` (besides the
    /// system's) for an `https://` endpoint.
    pub fn new_with_ca_bundle(
        location: &StorageLocation,
        credentials: Option<Credentials>,
        ca_bundle: Option<&[u8]>,
    ) -> Result<Storage, StorageError> {
        let provider = provider_of(location)?;
        let bucket = location.bucket.trim();
        check_bucket(provider, bucket)?;
        let prefix = paths::prefix_segments(location.prefix.as_deref())?;
        match provider {
            StorageProvider::Filesystem => Self::filesystem(bucket, prefix),
            StorageProvider::Minio | StorageProvider::S3 => {
                let tls = Tls {
                    roots: match ca_bundle {
                        Some(pem) => root_certificates(pem)?,
                        None => Vec::new(),
                    },
                    skip_verify: location.insecure_skip_tls_verify == Some(true),
                };
                Self::s3(location, provider, bucket, prefix, credentials, tls)
            }
        }
    }

    fn s3(
        location: &StorageLocation,
        provider: StorageProvider,
        bucket: &str,
        prefix: Vec<String>,
        credentials: Option<Credentials>,
        tls: Tls,
    ) -> Result<Storage, StorageError> {
        let mut builder = match credentials {
            Some(creds) => {
                for (what, value) in [
                    ("access key", Some(&creds.access_key_id)),
                    ("secret key", Some(&creds.secret_access_key)),
                    ("session token", creds.session_token.as_ref()),
                ] {
                    if let Some(value) = value {
                        credentials::check_value(value).map_err(|problem| {
                            StorageError::MissingCredentials {
                                provider,
                                reason: format!("the {what} {problem}"),
                            }
                        })?;
                    }
                }
                let builder = AmazonS3Builder::new()
                    .with_access_key_id(creds.access_key_id)
                    .with_secret_access_key(creds.secret_access_key);
                match creds.session_token {
                    Some(token) => builder.with_token(token),
                    None => builder,
                }
            }
            None if provider == StorageProvider::Minio => {
                return Err(StorageError::MissingCredentials {
                    provider,
                    reason: "set credentialsSecret, or accessKey and secretKey".to_string(),
                });
            }
            None => AmazonS3Builder::from_env(),
        };

        let region = non_empty(location.region.as_deref())
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Region))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        check_region(&region)?;
        let env_endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
        let endpoint = match (non_empty(location.endpoint.as_deref()), env_endpoint) {
            (Some(raw), _) => Some(endpoint::parse_endpoint(&raw)?),
            (None, _) if provider == StorageProvider::Minio => {
                return Err(minio_needs_endpoint());
            }
            (None, Some(raw)) => Some(endpoint::parse_endpoint(&raw)?),
            (None, None) => None,
        };
        let (endpoint_url, allow_http, scheme_implied) = match endpoint {
            Some(e) => (e.url, e.allow_http, e.scheme_implied),
            None => (format!("https://s3.{region}.amazonaws.com"), false, false),
        };
        let description = describe_s3(bucket, &prefix, &endpoint_url);

        let options = tls.roots.into_iter().fold(
            ClientOptions::new()
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_timeout(REQUEST_TIMEOUT)
                .with_allow_http(allow_http)
                .with_allow_invalid_certificates(tls.skip_verify),
            ClientOptions::with_root_certificate,
        );
        builder = builder
            .with_bucket_name(bucket)
            .with_region(&region)
            // Both keys, because AWS_ENDPOINT_URL_S3 from the environment would win otherwise.
            .with_config(AmazonS3ConfigKey::S3Endpoint, &endpoint_url)
            .with_endpoint(&endpoint_url)
            .with_virtual_hosted_style_request(false)
            .with_client_options(options.clone())
            .with_retry(retry_config());
        let setup = |source: object_store::Error| StorageError::Setup {
            what: description.clone(),
            source: Box::new(source),
        };
        let store = builder.build().map_err(setup)?;
        let admin = BucketAdmin::new(
            &options,
            endpoint_url.clone(),
            bucket.to_string(),
            region,
            Arc::clone(store.credentials()),
        )
        .map_err(setup)?;
        Ok(Storage::assemble(
            Arc::new(store),
            prefix,
            bucket,
            description,
            Backend::S3 {
                endpoint: endpoint_url,
                scheme_implied,
                admin,
            },
        ))
    }

    fn filesystem(dir: &str, prefix: Vec<String>) -> Result<Storage, StorageError> {
        let setup = |source: BoxError| StorageError::Setup {
            what: format!("filesystem storage in directory {dir:?}"),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| setup(Box::new(e)))?;
        let root = std::fs::canonicalize(dir).map_err(|e| setup(Box::new(e)))?;
        // Automatic cleanup removes directories emptied by deletes, so retention leaves no
        // empty run directories behind for list_dirs to find.
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| setup(Box::new(e)))?
            .with_automatic_cleanup(true);
        let mut description = format!("file://{}", root.display());
        for segment in &prefix {
            description.push('/');
            description.push_str(segment);
        }
        Ok(Storage::assemble(
            Arc::new(store),
            prefix,
            dir,
            description,
            Backend::Filesystem { root },
        ))
    }

    /// Wraps any store (e.g. `object_store::memory::InMemory` in tests) with a key prefix.
    /// [`Storage::ensure_bucket`] does nothing for it.
    pub fn from_store(
        store: Arc<dyn ObjectStore>,
        prefix: Option<&str>,
        description: String,
    ) -> Result<Storage, StorageError> {
        let prefix = paths::prefix_segments(prefix)?;
        Ok(Storage::assemble(
            store,
            prefix,
            "",
            description,
            Backend::Custom,
        ))
    }

    fn assemble(
        store: Arc<dyn ObjectStore>,
        prefix: Vec<String>,
        bucket: &str,
        description: String,
        backend: Backend,
    ) -> Storage {
        let prefix_path = paths::full_path(&prefix, "");
        let stats = Arc::new(counting::StorageStats::default());
        let store = Arc::new(counting::CountingStore::new(store, Arc::clone(&stats)));
        Storage {
            inner: Arc::new(Inner {
                store,
                stats,
                prefix,
                prefix_path,
                bucket: bucket.to_string(),
                description,
                backend,
            }),
            keyring: None,
            scope: EncryptionScope::All,
        }
    }

    /// This storage, encrypting what it writes with `keyring`'s active key and opening what it
    /// reads with any of its keys ([`sealed`]).
    pub fn with_keyring(&self, keyring: Arc<sealed::Keyring>) -> Storage {
        Storage {
            inner: Arc::clone(&self.inner),
            keyring: Some(keyring),
            scope: self.scope,
        }
    }

    /// This storage, encrypting (and requiring encrypted) only what `scope` names.
    pub fn with_scope(&self, scope: EncryptionScope) -> Storage {
        Storage {
            inner: Arc::clone(&self.inner),
            keyring: self.keyring.clone(),
            scope,
        }
    }

    /// The id of the key new items are sealed with, when the location encrypts.
    pub fn active_key_id(&self) -> Option<&str> {
        self.keyring.as_deref().map(sealed::Keyring::active)
    }

    /// What an encrypting location encrypts (meaningless without encryption).
    pub fn encryption_scope(&self) -> EncryptionScope {
        self.scope
    }

    /// How runs written now are encrypted, as their manifest records it.
    pub fn encryption_record(&self) -> Option<crate::core::manifest::EncryptionRecord> {
        self.active_key_id()
            .map(|key_id| crate::core::manifest::EncryptionRecord {
                key_id: key_id.to_string(),
                scope: self.scope,
            })
    }

    /// Whether an item of `content` is sealed here.
    fn seals(&self, content: Content) -> bool {
        self.keyring.is_some() && (self.scope == EncryptionScope::All || content == Content::Secret)
    }

    /// Seals `plain` (of `content`) placed at `context` when the location encrypts it; as it
    /// is otherwise.
    pub fn seal(
        &self,
        key: &str,
        context: &[u8],
        content: Content,
        plain: Bytes,
    ) -> Result<Bytes, StorageError> {
        match &self.keyring {
            Some(keyring) if self.seals(content) => keyring
                .seal(context, &plain)
                .map(Bytes::from)
                .map_err(|source| StorageError::Sealed {
                    key: key.to_string(),
                    source,
                }),
            _ => Ok(plain),
        }
    }

    /// Opens what [`Storage::seal`] made of an item (of `content`) at `context`. Without
    /// encryption a sealed item is an error naming its key; with it, an item that should have
    /// been sealed and is not is one. A sealed item always opens (whatever the scope it was
    /// written with) when its key is held.
    pub fn open(
        &self,
        key: &str,
        context: &[u8],
        content: Content,
        stored: Bytes,
    ) -> Result<Bytes, StorageError> {
        let failed = |source| StorageError::Sealed {
            key: key.to_string(),
            source,
        };
        match &self.keyring {
            Some(keyring) if sealed::is_sealed(&stored) || self.seals(content) => keyring
                .open(context, &stored)
                .map(Bytes::from)
                .map_err(|err| match err {
                    sealed::SealError::NotEncrypted if content == Content::Secret => {
                        sealed::SealError::SecretNotEncrypted
                    }
                    err => err,
                })
                .map_err(failed),
            Some(_) => Ok(stored),
            None if sealed::is_sealed(&stored) => Err(failed(match sealed::key_id_of(&stored) {
                Ok(key_id) => sealed::SealError::NoKeyring { key_id },
                Err(err) => err,
            })),
            None => Ok(stored),
        }
    }

    /// `s3://bucket/prefix at http://127.0.0.1:9000` or `file:///backups/prefix`; for messages.
    /// Never contains credentials.
    pub fn describe(&self) -> String {
        self.inner.description.clone()
    }

    /// Full object_store path of `key` (relative to the location's prefix). Empty segments are
    /// dropped; characters S3 advises against are percent-encoded by object_store.
    pub fn path(&self, key: &str) -> Path {
        paths::full_path(&self.inner.prefix, key)
    }

    /// The underlying store, for engines that issue many concurrent requests themselves. Use
    /// [`Storage::path`] for its paths and [`Storage::error`] for its errors.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.inner.store)
    }

    /// Makes sure the bucket exists: lists at most one key under the prefix, and if S3 answers
    /// 404 creates the bucket (`PUT /<bucket>`, with a LocationConstraint outside us-east-1).
    /// For `filesystem`, (re)creates the directory.
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        match &self.inner.backend {
            Backend::S3 { admin, .. } => {
                let mut prefix = self.inner.prefix_path.as_ref().to_string();
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                let exists = admin.exists(&prefix).await.map_err(|e| {
                    let err = error::classify(e, &self.context("list", None, false));
                    // Some servers (s3s-fs) refuse an invalid name on the listing already.
                    match &err {
                        StorageError::Rejected { detail, .. }
                            if detail.starts_with("InvalidBucketName") =>
                        {
                            create_bucket_error(&self.inner.bucket, err)
                        }
                        _ => err,
                    }
                })?;
                if exists {
                    return Ok(());
                }
                tracing::info!(location = %self.inner.description, "bucket does not exist, creating it");
                admin.create().await.map_err(|e| {
                    let inner = error::classify(e, &self.context("create bucket", None, false));
                    create_bucket_error(&self.inner.bucket, inner)
                })
            }
            Backend::Filesystem { root } => {
                tokio::fs::create_dir_all(root)
                    .await
                    .map_err(|e| StorageError::Setup {
                        what: self.inner.description.clone(),
                        source: Box::new(e),
                    })
            }
            Backend::Custom => Ok(()),
        }
    }

    /// Whether the location answers, creating nothing: S3 lists at most one key under the
    /// prefix (the permission backups need anyway); `filesystem` looks at the directory.
    pub async fn probe(&self) -> Result<Probe, StorageError> {
        match &self.inner.backend {
            Backend::S3 { admin, .. } => {
                let mut prefix = self.inner.prefix_path.as_ref().to_string();
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                let exists = admin
                    .exists(&prefix)
                    .await
                    .map_err(|e| error::classify(e, &self.context("list", None, false)))?;
                Ok(if exists {
                    Probe::Ready
                } else {
                    Probe::BucketMissing
                })
            }
            Backend::Filesystem { root } => match tokio::fs::metadata(root).await {
                Ok(meta) if meta.is_dir() => Ok(Probe::Ready),
                Ok(_) => Err(StorageError::Setup {
                    what: self.inner.description.clone(),
                    source: "it is not a directory".into(),
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Probe::BucketMissing),
                Err(e) => Err(StorageError::Setup {
                    what: self.inner.description.clone(),
                    source: Box::new(e),
                }),
            },
            Backend::Custom => Ok(Probe::Ready),
        }
    }

    /// Writes an object (sealed when the location encrypts; its key is authenticated with it).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.put_as(key, Content::Other, bytes).await
    }

    /// [`Storage::put`] of an item holding `content`.
    pub async fn put_as(
        &self,
        key: &str,
        content: Content,
        bytes: Bytes,
    ) -> Result<(), StorageError> {
        let bytes = self.seal(key, key.as_bytes(), content, bytes)?;
        self.put_raw(key, bytes).await
    }

    /// Writes bytes as they are (packs, whose objects are sealed one by one).
    pub async fn put_raw(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.inner
            .store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.error("write", Some(key), e))
    }

    /// Requests and bytes sent through this storage since it was opened.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Reads `length` bytes at `offset` of an object (one ranged GET), as stored (packs: each
    /// object is opened by the caller). Fewer bytes than asked (the object is shorter) is an
    /// error, never a short read passed on.
    pub async fn get_range(
        &self,
        key: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, StorageError> {
        let read_error = |e| self.error_with(self.context("read", Some(key), true), e);
        let end = offset
            .checked_add(length)
            .ok_or_else(|| StorageError::Corrupt {
                key: key.to_string(),
                reason: format!("invalid range {offset}+{length}"),
            })?;
        let bytes = self
            .inner
            .store
            .get_range(&self.path(key), offset..end)
            .await
            .map_err(read_error)?;
        if bytes.len() as u64 != length {
            return Err(StorageError::Corrupt {
                key: key.to_string(),
                reason: format!("asked for {length} bytes at {offset}, got {}", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// The size of an object, `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<u64>, StorageError> {
        match self.inner.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("head", Some(key), e)),
        }
    }

    /// Reads a whole object of at most `limit` bytes (opened when the location encrypts): a
    /// larger one is refused after `limit` bytes were read, whatever size it claims (untrusted
    /// content).
    pub async fn get_bounded(&self, key: &str, limit: u64) -> Result<Bytes, StorageError> {
        self.get_bounded_as(key, Content::Other, limit).await
    }

    /// [`Storage::get_bounded`] of an item holding `content`.
    pub async fn get_bounded_as(
        &self,
        key: &str,
        content: Content,
        limit: u64,
    ) -> Result<Bytes, StorageError> {
        let stored_limit = match &self.keyring {
            Some(_) => limit.saturating_add(sealed::MAX_OVERHEAD),
            None => limit,
        };
        let stored = self.get_bounded_raw(key, stored_limit).await?;
        let plain = self.open(key, key.as_bytes(), content, stored)?;
        if plain.len() as u64 > limit {
            return Err(StorageError::Corrupt {
                key: key.to_string(),
                reason: format!("larger than {limit} bytes; not read"),
            });
        }
        Ok(plain)
    }

    /// [`Storage::get_bounded`] of the bytes as stored (packs).
    pub async fn get_bounded_raw(&self, key: &str, limit: u64) -> Result<Bytes, StorageError> {
        let read_error = |e| self.error_with(self.context("read", Some(key), true), e);
        let result = self
            .inner
            .store
            .get(&self.path(key))
            .await
            .map_err(read_error)?;
        let too_large = || StorageError::Corrupt {
            key: key.to_string(),
            reason: format!("larger than {limit} bytes; not read"),
        };
        if result.meta.size > limit {
            return Err(too_large());
        }
        // The claimed size only sizes the buffer; the bytes actually read are what is bounded.
        let capacity = usize::try_from(result.meta.size.min(limit)).unwrap_or(0);
        let mut stream = result.into_stream();
        let mut buffer = bytes::BytesMut::with_capacity(capacity);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(read_error)?;
            if (buffer.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.freeze())
    }

    /// Deletes one object; one that is gone already is no error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.inner.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", Some(key), e)),
        }
    }

    /// Reads a whole object. A missing object is [`ErrorCategory::NotFound`].
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        self.get_bounded(key, u64::MAX).await
    }

    /// Every object under `dir` (recursively; `""` = the whole prefix), as keys relative to the
    /// location's prefix. Streamed page by page, in no particular order.
    pub fn list(&self, dir: &str) -> BoxStream<'static, Result<StoredObject, StorageError>> {
        let this = self.clone();
        let dir = dir.to_string();
        let dir_path = self.path(&dir);
        let prefix = (!dir_path.as_ref().is_empty()).then_some(dir_path);
        self.inner
            .store
            .list(prefix.as_ref())
            .map(move |item| match item {
                Ok(meta) => Ok(StoredObject {
                    key: paths::relative_key(&this.inner.prefix_path, &meta.location)
                        .unwrap_or_else(|| meta.location.to_string()),
                    size: meta.size,
                    last_modified: meta.last_modified,
                }),
                Err(e) => Err(this.error_with(this.context("list", Some(&dir), false), e)),
            })
            .boxed()
    }

    /// The immediate "sub-directories" of `dir` (e.g. the runs of one backup), sorted, as keys
    /// relative to the location's prefix like every other key here: `list_dirs("nightly")` gives
    /// `["nightly/2024-01-01T00-00-00Z", ...]`, ready for [`Storage::delete_dir`] or `get`.
    pub async fn list_dirs(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let dir_path = self.path(dir);
        let prefix = (!dir_path.as_ref().is_empty()).then_some(&dir_path);
        let listing = self
            .inner
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.error_with(self.context("list", Some(dir), false), e))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| paths::relative_key(&self.inner.prefix_path, p))
            .filter(|key| !key.is_empty())
            .collect();
        names.sort();
        // Some S3 servers (SeaweedFS) keep reporting a prefix for a while after its last object
        // was deleted; real S3 does not. A "directory" is only one while it holds an object.
        let mut non_empty = Vec::with_capacity(names.len());
        for name in names {
            if self.list(&name).next().await.transpose()?.is_some() {
                non_empty.push(name);
            }
        }
        Ok(non_empty)
    }

    /// Deletes every object under `dir` and returns how many were deleted. Deletes are batched
    /// and bounded by object_store (S3: DeleteObjects of up to 1000 keys). Refuses an empty
    /// `dir`, which would mean the whole location.
    pub async fn delete_dir(&self, dir: &str) -> Result<u64, StorageError> {
        if dir.split('/').all(str::is_empty) {
            return Err(StorageError::InvalidLocation {
                reason: format!(
                    "refusing to delete everything in {}: delete_dir needs a directory (delete_all deletes the whole location)",
                    self.inner.description
                ),
            });
        }
        self.delete_under(dir).await
    }

    /// Deletes every object under the location's prefix — the whole bucket when there is no
    /// prefix. Separate from [`Storage::delete_dir`] so that an empty directory computed by
    /// mistake can never wipe a location.
    pub async fn delete_all(&self) -> Result<u64, StorageError> {
        self.delete_under("").await
    }

    async fn delete_under(&self, dir: &str) -> Result<u64, StorageError> {
        let dir_path = self.path(dir);
        let prefix = (!dir_path.as_ref().is_empty()).then_some(&dir_path);
        let store = &self.inner.store;
        let locations = store.list(prefix).map_ok(|meta| meta.location).boxed();
        let mut results = store.delete_stream(locations);
        let mut deleted = 0u64;
        while let Some(result) = results.next().await {
            match result {
                Ok(_) => deleted += 1,
                // Gone already (a concurrent delete): that is what we wanted.
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(self.error_with(self.context("delete", Some(dir), false), e));
                }
            }
        }
        Ok(deleted)
    }

    /// Converts an error from [`Storage::store`] into a [`StorageError`] about `key`.
    pub fn error(
        &self,
        operation: &'static str,
        key: Option<&str>,
        err: object_store::Error,
    ) -> StorageError {
        self.error_with(self.context(operation, key, key.is_some()), err)
    }

    fn error_with(&self, ctx: OpContext<'_>, err: object_store::Error) -> StorageError {
        error::classify(Box::new(err), &ctx)
    }

    fn context<'a>(
        &'a self,
        operation: &'static str,
        key: Option<&'a str>,
        is_object: bool,
    ) -> OpContext<'a> {
        let (endpoint, scheme_implied) = match &self.inner.backend {
            Backend::S3 {
                endpoint,
                scheme_implied,
                ..
            } => (Some(endpoint.as_str()), *scheme_implied),
            _ => (None, false),
        };
        OpContext {
            operation,
            key,
            is_object,
            location: &self.inner.description,
            endpoint,
            bucket: &self.inner.bucket,
            scheme_implied,
        }
    }
}

fn create_bucket_error(bucket: &str, inner: StorageError) -> StorageError {
    let mut reason = match &inner {
        StorageError::Rejected { detail, .. } | StorageError::AccessDenied { detail, .. } => {
            detail.clone()
        }
        StorageError::CredentialsRejected { detail, .. } => {
            format!("{detail} (the credentials were rejected)")
        }
        other => other.to_string(),
    };
    if reason.contains("InvalidBucketName") {
        reason.push_str(
            "; bucket names must be 3-63 characters of lowercase letters, digits, '.' and '-'",
        );
    }
    StorageError::CreateBucket {
        bucket: bucket.to_string(),
        reason,
        category: match inner.category() {
            ErrorCategory::Other | ErrorCategory::NotFound => ErrorCategory::Config,
            category => category,
        },
        transient: inner.is_transient(),
        source: Box::new(inner),
    }
}

fn describe_s3(bucket: &str, prefix: &[String], endpoint: &str) -> String {
    let mut out = format!("s3://{bucket}");
    for segment in prefix {
        out.push('/');
        out.push_str(segment);
    }
    out.push_str(" at ");
    out.push_str(endpoint);
    out
}

fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: MAX_RETRIES,
        retry_timeout: RETRY_TIMEOUT,
    }
}

/// Everything wrong with `location` that shows without a request, a Secret or the environment:
/// the checks of [`Storage::new`] and of credential resolution, all of them (the first stops
/// `Storage::new`). Nothing is created, not even a `filesystem` directory.
///
/// A location naming a ClusterStorageLocation is checked for its form only: a valid name and
/// nothing inline beside it (the ClusterStorageLocation itself is checked where it is read).
pub fn location_problems(location: &StorageLocation) -> Vec<StorageError> {
    if location.name.is_some() {
        return access::named_location_problems(location);
    }
    let mut problems = Vec::new();
    let mut check = |result: Result<(), StorageError>| {
        if let Err(err) = result {
            problems.push(err);
        }
    };
    let provider = match provider_of(location) {
        Ok(provider) => provider,
        Err(missing) => {
            check(Err(missing));
            // Without a provider only what any provider needs is checked.
            check(check_bucket(
                StorageProvider::Filesystem,
                location.bucket.trim(),
            ));
            check(paths::prefix_segments(location.prefix.as_deref()).map(|_| ()));
            return problems;
        }
    };
    check(check_bucket(provider, location.bucket.trim()));
    check(paths::prefix_segments(location.prefix.as_deref()).map(|_| ()));
    if provider != StorageProvider::Filesystem {
        if let Some(region) = non_empty(location.region.as_deref()) {
            check(check_region(&region));
        }
        match non_empty(location.endpoint.as_deref()) {
            Some(raw) => check(endpoint::parse_endpoint(&raw).map(|_| ())),
            None if provider == StorageProvider::Minio => check(Err(minio_needs_endpoint())),
            None => {}
        }
    }
    check(credentials::plan(location).map(|_| ()));
    problems.extend(tls_problems(location));
    if let Some(encryption) = &location.encryption
        && !crate::core::names::is_dns1123_subdomain(encryption.key_secret.trim())
    {
        problems.push(StorageError::InvalidLocation {
            reason: format!(
                "encryption.keySecret {:?} is not a Secret name",
                encryption.key_secret
            ),
        });
    }
    problems
}

/// `caBundle` names one source; `caBundle` and `insecureSkipTLSVerify` together contradict each
/// other. (Both are about an `https://` endpoint's certificate; an `http://` or `filesystem`
/// location does not use them, and ClusterStorageLocations set up so before keep working.)
fn tls_problems(location: &StorageLocation) -> Vec<StorageError> {
    let insecure = location.insecure_skip_tls_verify == Some(true);
    let ca_bundle = location.ca_bundle.as_ref();
    let mut problems = Vec::new();
    let mut problem = |reason: &str| {
        problems.push(StorageError::InvalidLocation {
            reason: reason.to_string(),
        });
    };
    if let Some(ca) = ca_bundle {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
        if set(&ca.config_map) == set(&ca.secret) {
            problem("caBundle: set exactly one of configMap and secret");
        }
    }
    if ca_bundle.is_some() && insecure {
        problem(
            "set caBundle or insecureSkipTLSVerify, not both (with insecureSkipTLSVerify no certificate is checked at all)",
        );
    }
    problems
}

/// What a user should hear about how a location's data travels (sent as warning Events by
/// every run that uses it): a certificate nobody checks, or plain HTTP to another machine,
/// which carries every stored Secret and the signed requests in the clear.
pub fn transport_warnings(location: &StorageLocation) -> Vec<String> {
    if matches!(location.provider, None | Some(StorageProvider::Filesystem)) {
        return Vec::new();
    }
    let insecure = location.insecure_skip_tls_verify == Some(true);
    let Some(endpoint) =
        non_empty(location.endpoint.as_deref()).and_then(|raw| endpoint::parse_endpoint(&raw).ok())
    else {
        return match insecure {
            true => vec![
                "insecureSkipTLSVerify is set: the certificate of the AWS S3 endpoint is not verified, so anyone on the network path can read and change the backups; remove it".to_string(),
            ],
            false => Vec::new(),
        };
    };
    let mut warnings = Vec::new();
    if endpoint.allow_http && !endpoint.is_loopback() {
        warnings.push(format!(
            "the storage endpoint {} is plain http://: backups, including every Secret, and the signed requests travel unencrypted to {}; use https:// (with caBundle for a private CA)",
            endpoint.url, endpoint.host
        ));
    }
    if insecure && !endpoint.allow_http {
        warnings.push(format!(
            "insecureSkipTLSVerify is set: the certificate of {} is not verified, so anyone on the network path can read and change the backups; set caBundle instead",
            endpoint.url
        ));
    }
    warnings
}

/// The provider of an inline location. A location naming a ClusterStorageLocation has none
/// of its own: it is resolved into an inline one before it is opened.
pub(crate) fn provider_of(location: &StorageLocation) -> Result<StorageProvider, StorageError> {
    if let Some(name) = location.cluster_location() {
        return Err(StorageError::InvalidLocation {
            reason: format!(
                "it names ClusterStorageLocation {name:?}, which must be resolved before it is opened"
            ),
        });
    }
    location.provider.ok_or_else(|| StorageError::InvalidLocation {
        reason: "provider is missing: set provider (minio, s3 or filesystem) and bucket, or name a ClusterStorageLocation in name".to_string(),
    })
}

/// How an `https://` endpoint's certificate is checked.
struct Tls {
    /// Trusted besides the system's roots (`caBundle`).
    roots: Vec<Certificate>,
    /// `insecureSkipTLSVerify`.
    skip_verify: bool,
}

/// The certificates of a PEM bundle; at least one.
fn root_certificates(pem: &[u8]) -> Result<Vec<Certificate>, StorageError> {
    let invalid = |reason: String| StorageError::CaBundle {
        what: "for the storage endpoint".to_string(),
        reason,
        transient: false,
    };
    let certificates = Certificate::from_pem_bundle(pem)
        .map_err(|err| invalid(format!("not valid PEM: {err}")))?;
    if certificates.is_empty() {
        return Err(invalid(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    Ok(certificates)
}

/// A bucket name (for `filesystem`: a directory) that cannot work.
fn check_bucket(provider: StorageProvider, bucket: &str) -> Result<(), StorageError> {
    if bucket.is_empty() {
        return Err(StorageError::InvalidLocation {
            reason: "bucket is empty".to_string(),
        });
    }
    if provider == StorageProvider::Filesystem {
        return Ok(());
    }
    match bucket
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '%'))
    {
        Some(bad) => Err(StorageError::InvalidLocation {
            reason: format!(
                "bucket name {bucket:?} contains {bad:?}; S3 bucket names use lowercase letters, digits, '.' and '-' (key prefixes go in `prefix`)"
            ),
        }),
        None => Ok(()),
    }
}

/// A region that cannot be signed for.
fn check_region(region: &str) -> Result<(), StorageError> {
    match region
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        Some(bad) => Err(StorageError::InvalidLocation {
            reason: format!("region {region:?} contains {bad:?}"),
        }),
        None => Ok(()),
    }
}

fn minio_needs_endpoint() -> StorageError {
    StorageError::InvalidLocation {
        reason: "provider minio needs an endpoint, e.g. http://minio.minio.svc:9000".to_string(),
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CaBundleRef;
    use object_store::memory::InMemory;

    fn memory(prefix: Option<&str>) -> Storage {
        Storage::from_store(Arc::new(InMemory::new()), prefix, "memory://test".into()).unwrap()
    }

    async fn keys(storage: &Storage, dir: &str) -> Vec<(String, u64)> {
        let mut out: Vec<_> = storage
            .list(dir)
            .map_ok(|o| (o.key, o.size))
            .try_collect()
            .await
            .unwrap();
        out.sort();
        out
    }

    fn keyring() -> Arc<sealed::Keyring> {
        let data = [("k1.key".to_string(), vec![7u8; 32])].into();
        Arc::new(sealed::Keyring::from_secret_data("test", &data).unwrap())
    }

    #[tokio::test]
    async fn scope_secrets_seals_only_secrets_and_requires_them_sealed() {
        let plain = memory(None);
        let all = plain.with_keyring(keyring());
        let secrets = all.with_scope(EncryptionScope::Secrets);
        secrets
            .put_as("s.json", Content::Secret, Bytes::from_static(b"secret"))
            .await
            .unwrap();
        secrets
            .put_as("c.json", Content::Other, Bytes::from_static(b"config"))
            .await
            .unwrap();
        let raw = |key: &'static str| {
            let plain = plain.clone();
            async move { plain.get_bounded_raw(key, 1 << 20).await.unwrap() }
        };
        assert!(sealed::is_sealed(&raw("s.json").await));
        assert_eq!(&raw("c.json").await[..], b"config");

        // Read back through the same scope; a location encrypting everything refuses the plain
        // item; a Secret stored plain is refused whatever the scope.
        let read = |storage: &Storage, key: &'static str, content| {
            let storage = storage.clone();
            async move { storage.get_bounded_as(key, content, 1 << 20).await }
        };
        assert_eq!(
            &read(&secrets, "s.json", Content::Secret).await.unwrap()[..],
            b"secret"
        );
        assert_eq!(
            &read(&secrets, "c.json", Content::Other).await.unwrap()[..],
            b"config"
        );
        assert!(matches!(
            read(&all, "c.json", Content::Other).await,
            Err(StorageError::Sealed {
                source: sealed::SealError::NotEncrypted,
                ..
            })
        ));
        assert!(matches!(
            read(&secrets, "c.json", Content::Secret).await,
            Err(StorageError::Sealed {
                source: sealed::SealError::SecretNotEncrypted,
                ..
            })
        ));
        // An item sealed under scope All still opens through a location scoped Secrets.
        all.put("m.json", Bytes::from_static(b"manifest"))
            .await
            .unwrap();
        assert_eq!(
            &read(&secrets, "m.json", Content::Other).await.unwrap()[..],
            b"manifest"
        );
        // Without encryption nothing sealed opens.
        assert!(read(&plain, "s.json", Content::Secret).await.is_err());
    }

    #[tokio::test]
    async fn put_get_list_delete_round_trip() {
        let storage = memory(Some("/clusters/prod/"));
        storage.ensure_bucket().await.unwrap();
        for key in [
            "b1/2024-01-01T00-00-00Z/ns/a.json",
            "b1/2024-01-01T00-00-00Z/ns/b.json",
            "b1/2024-01-02T00-00-00Z/ns/a.json",
            "b2/2024-01-01T00-00-00Z/x.json",
        ] {
            storage
                .put(key, Bytes::from(key.to_string()))
                .await
                .unwrap();
        }
        // stored under the prefix
        let raw: Vec<_> = storage
            .store()
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert!(
            raw.iter().all(|p| p.starts_with("clusters/prod/")),
            "{raw:?}"
        );

        let got = storage
            .get("b1/2024-01-01T00-00-00Z/ns/a.json")
            .await
            .unwrap();
        assert_eq!(&got[..], b"b1/2024-01-01T00-00-00Z/ns/a.json");

        assert_eq!(
            keys(&storage, "b1").await,
            [
                ("b1/2024-01-01T00-00-00Z/ns/a.json".to_string(), 33),
                ("b1/2024-01-01T00-00-00Z/ns/b.json".to_string(), 33),
                ("b1/2024-01-02T00-00-00Z/ns/a.json".to_string(), 33),
            ]
        );
        assert_eq!(keys(&storage, "").await.len(), 4);
        assert_eq!(
            storage.list_dirs("b1").await.unwrap(),
            ["b1/2024-01-01T00-00-00Z", "b1/2024-01-02T00-00-00Z"]
        );
        assert_eq!(storage.list_dirs("").await.unwrap(), ["b1", "b2"]);
        assert!(storage.list_dirs("nothing-here").await.unwrap().is_empty());

        assert_eq!(
            storage.delete_dir("b1/2024-01-01T00-00-00Z").await.unwrap(),
            2
        );
        assert_eq!(
            storage.list_dirs("/b1/").await.unwrap(),
            ["b1/2024-01-02T00-00-00Z"]
        );
        assert_eq!(
            storage.delete_dir("b1/2024-01-01T00-00-00Z").await.unwrap(),
            0
        );
        assert_eq!(keys(&storage, "").await.len(), 2);
        assert_eq!(storage.delete_all().await.unwrap(), 2);
        assert!(keys(&storage, "").await.is_empty());
    }

    #[tokio::test]
    async fn missing_object_is_not_found() {
        let storage = memory(None);
        let err = storage.get("nope.json").await.unwrap_err();
        assert_eq!(err.category(), ErrorCategory::NotFound);
        assert_eq!(
            err.to_string(),
            "object \"nope.json\" not found in memory://test"
        );
        assert!(matches!(err, StorageError::NotFound { ref key, .. } if key == "nope.json"));
    }

    #[tokio::test]
    async fn delete_dir_refuses_the_whole_location_delete_all_does_it() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mine = Storage::from_store(Arc::clone(&store), Some("mine"), "m".into()).unwrap();
        let other = Storage::from_store(store, Some("other"), "o".into()).unwrap();
        mine.put("a/b", Bytes::from_static(b"x")).await.unwrap();
        mine.put("c", Bytes::from_static(b"x")).await.unwrap();
        other.put("keep", Bytes::from_static(b"x")).await.unwrap();
        for dir in ["", "/", "//"] {
            let err = mine.delete_dir(dir).await.unwrap_err();
            assert_eq!(err.category(), ErrorCategory::Config);
        }
        assert_eq!(keys(&mine, "").await.len(), 2);
        // Only what is under the prefix goes.
        assert_eq!(mine.delete_all().await.unwrap(), 2);
        assert!(keys(&mine, "").await.is_empty());
        assert_eq!(keys(&other, "").await, [("keep".to_string(), 1)]);
    }

    #[test]
    fn path_joins_normalised_prefix() {
        let storage = memory(Some("a/b/"));
        assert_eq!(storage.path("x/y.json").as_ref(), "a/b/x/y.json");
        assert_eq!(
            memory(Some("/a/b")).path("/x//y.json").as_ref(),
            "a/b/x/y.json"
        );
        assert_eq!(memory(None).path("x").as_ref(), "x");
    }

    fn s3_location(endpoint: Option<&str>) -> StorageLocation {
        StorageLocation {
            provider: Some(StorageProvider::Minio),
            bucket: "backups".into(),
            endpoint: endpoint.map(str::to_string),
            prefix: Some("/team-a/".into()),
            ..StorageLocation::default()
        }
    }

    fn creds() -> Option<Credentials> {
        Some(Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "SECRET".into(),
            session_token: None,
        })
    }

    #[test]
    fn new_validates_endpoints() {
        let ok = Storage::new(&s3_location(Some("http://127.0.0.1:9000")), creds()).unwrap();
        assert_eq!(
            ok.describe(),
            "s3://backups/team-a at http://127.0.0.1:9000"
        );
        let implied = Storage::new(&s3_location(Some("minio.local:9000")), creds()).unwrap();
        assert_eq!(
            implied.describe(),
            "s3://backups/team-a at https://minio.local:9000"
        );

        for bad in [
            "ftp://127.0.0.1",
            "http://127.0.0.1:9000/backups",
            "http://",
        ] {
            let err = Storage::new(&s3_location(Some(bad)), creds()).unwrap_err();
            assert_eq!(err.category(), ErrorCategory::Config, "{bad}: {err}");
        }
        let err = Storage::new(&s3_location(None), creds()).unwrap_err();
        assert!(err.to_string().contains("needs an endpoint"), "{err}");
    }

    #[test]
    fn new_refuses_minio_without_credentials_and_odd_buckets() {
        let err = Storage::new(&s3_location(Some("http://127.0.0.1:9000")), None).unwrap_err();
        assert_eq!(err.category(), ErrorCategory::Config);
        let location = StorageLocation {
            bucket: "a/b".into(),
            ..s3_location(Some("http://127.0.0.1:9000"))
        };
        assert!(
            Storage::new(&location, creds())
                .unwrap_err()
                .to_string()
                .contains("prefix")
        );
    }

    #[test]
    fn tls_settings_that_contradict_each_other_are_refused() {
        let keys = |location: StorageLocation| StorageLocation {
            access_key: Some("ak".into()),
            secret_key: Some("sk".into()),
            ..location
        };
        let ca = |config_map: Option<&str>, secret: Option<&str>| CaBundleRef {
            config_map: config_map.map(str::to_string),
            secret: secret.map(str::to_string),
            key: None,
        };
        let problems = |location: &StorageLocation| -> Vec<String> {
            location_problems(location)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let https = keys(s3_location(Some("https://minio.example:9000")));
        for fine in [
            StorageLocation {
                ca_bundle: Some(ca(Some("storage-ca"), None)),
                ..https.clone()
            },
            StorageLocation {
                insecure_skip_tls_verify: Some(true),
                ..https.clone()
            },
            StorageLocation {
                insecure_skip_tls_verify: Some(false),
                ..keys(s3_location(Some("http://127.0.0.1:9000")))
            },
            // Not used without TLS (a ClusterStorageLocation set up so keeps working).
            StorageLocation {
                ca_bundle: Some(ca(Some("storage-ca"), None)),
                ..keys(s3_location(Some("http://127.0.0.1:9000")))
            },
        ] {
            assert!(
                problems(&fine).is_empty(),
                "{fine:?}: {:?}",
                problems(&fine)
            );
        }
        for (bad, part) in [
            (
                StorageLocation {
                    ca_bundle: Some(ca(Some("a"), Some("b"))),
                    ..https.clone()
                },
                "exactly one of configMap and secret",
            ),
            (
                StorageLocation {
                    ca_bundle: Some(ca(Some("a"), None)),
                    insecure_skip_tls_verify: Some(true),
                    ..https.clone()
                },
                "not both",
            ),
        ] {
            let found = problems(&bad);
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(found[0].contains(part), "{part}: {found:?}");
        }
        // The client is built with the setting (no request is made).
        let insecure = StorageLocation {
            insecure_skip_tls_verify: Some(true),
            ..https
        };
        assert!(Storage::new(&insecure, creds()).is_ok());
    }

    #[test]
    fn transport_warnings_name_plain_http_to_another_host_and_unchecked_certificates() {
        let at = |endpoint: &str| s3_location(Some(endpoint));
        for quiet in [
            "http://127.0.0.1:9000",
            "http://127.1.2.3:9000",
            "http://localhost:9000",
            "http://[::1]:9000",
            "https://minio.example:9000",
        ] {
            assert!(transport_warnings(&at(quiet)).is_empty(), "{quiet}");
        }
        // The design document's sample endpoint: a Docker bridge address, another machine.
        let plain = transport_warnings(&at("http://172.17.0.3:9000"));
        assert_eq!(plain.len(), 1, "{plain:?}");
        assert!(plain[0].contains("plain http://") && plain[0].contains("172.17.0.3"));
        let unchecked = transport_warnings(&StorageLocation {
            insecure_skip_tls_verify: Some(true),
            ..at("https://minio.example:9000")
        });
        assert_eq!(unchecked.len(), 1, "{unchecked:?}");
        assert!(unchecked[0].contains("not verified"), "{unchecked:?}");
        let filesystem = StorageLocation {
            provider: Some(StorageProvider::Filesystem),
            ..at("http://172.17.0.3:9000")
        };
        assert!(transport_warnings(&filesystem).is_empty());
        // AWS S3 (no endpoint) without certificate checks.
        let aws = transport_warnings(&StorageLocation {
            provider: Some(StorageProvider::S3),
            insecure_skip_tls_verify: Some(true),
            ..s3_location(None)
        });
        assert_eq!(aws.len(), 1, "{aws:?}");
        assert!(aws[0].contains("AWS S3 endpoint"), "{aws:?}");
    }

    #[test]
    fn location_problems_are_all_listed_without_any_request() {
        let good = StorageLocation {
            access_key: Some("ak".into()),
            secret_key: Some("sk".into()),
            ..s3_location(Some("http://127.0.0.1:1"))
        };
        assert!(location_problems(&good).is_empty());
        let bad = StorageLocation {
            bucket: "a b".into(),
            prefix: Some("x/../y".into()),
            region: Some("eu west".into()),
            endpoint: Some("ftp://host".into()),
            access_key: Some("ak".into()),
            secret_key: None,
            ..s3_location(None)
        };
        let problems: Vec<String> = location_problems(&bad)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 5, "{problems:?}");
        for part in ["bucket name", "prefix", "region", "ftp", "secretKey is not"] {
            assert!(
                problems.iter().any(|p| p.contains(part)),
                "{part}: {problems:?}"
            );
        }
        let no_endpoint = StorageLocation {
            bucket: String::new(),
            ..s3_location(None)
        };
        let problems = location_problems(&no_endpoint);
        assert_eq!(problems.len(), 3, "{problems:?}");
        // A filesystem directory is not created by the check.
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-created");
        let fs = StorageLocation {
            provider: Some(StorageProvider::Filesystem),
            bucket: missing.display().to_string(),
            ..StorageLocation::default()
        };
        assert!(location_problems(&fs).is_empty());
        assert!(!missing.exists());
    }

    /// A self-signed CA made for these tests (`openssl req -x509 -newkey ec ...`); the
    /// integration tests use the same file.
    const TEST_CA: &str = include_str!("../../tests/fixtures/test-ca.pem");

    #[test]
    fn ca_bundles_are_trusted_or_refused_with_the_reason() {
        let location = s3_location(Some("https://minio.local:9000"));
        let bundle = format!("{TEST_CA}{TEST_CA}");
        assert!(Storage::new_with_ca_bundle(&location, creds(), Some(bundle.as_bytes())).is_ok());
        for bad in [
            "",
            "not a certificate",
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
        ] {
            let err =
                Storage::new_with_ca_bundle(&location, creds(), Some(bad.as_bytes())).unwrap_err();
            assert_eq!(err.category(), ErrorCategory::Config, "{bad:?}: {err}");
            assert!(err.to_string().starts_with("CA bundle"), "{err}");
        }
    }

    #[test]
    fn named_locations_are_checked_for_their_form_and_never_opened() {
        let named = StorageLocation {
            name: Some("team-a".into()),
            ..StorageLocation::default()
        };
        assert!(location_problems(&named).is_empty());
        let err = Storage::new(&named, None).unwrap_err();
        assert!(err.to_string().contains("must be resolved"), "{err}");
        let both = StorageLocation {
            name: Some("team-a".into()),
            ..s3_location(Some("http://127.0.0.1:9000"))
        };
        let problems = location_problems(&both);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].to_string().contains("both set"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn an_inline_location_needs_a_provider() {
        let location = StorageLocation {
            provider: None,
            bucket: String::new(),
            ..s3_location(None)
        };
        let problems: Vec<String> = location_problems(&location)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("provider is missing"), "{problems:?}");
        assert!(problems[1].contains("bucket is empty"), "{problems:?}");
        assert!(Storage::new(&location, creds()).is_err());
    }

    #[test]
    fn aws_default_endpoint_uses_region() {
        let location = StorageLocation {
            provider: Some(StorageProvider::S3),
            region: Some("eu-west-1".into()),
            ..s3_location(None)
        };
        let storage = Storage::new(&location, creds()).unwrap();
        assert_eq!(
            storage.describe(),
            "s3://backups/team-a at https://s3.eu-west-1.amazonaws.com"
        );
    }

    #[tokio::test]
    async fn filesystem_round_trip_and_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("not-yet-there");
        let location = StorageLocation {
            provider: Some(StorageProvider::Filesystem),
            bucket: root.display().to_string(),
            prefix: Some("p".into()),
            ..StorageLocation::default()
        };
        let storage = Storage::new(&location, None).unwrap();
        storage.ensure_bucket().await.unwrap();
        storage
            .put("run-1/a.json", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        storage
            .put("run-2/a.json", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert!(root.join("p/run-1/a.json").exists());
        assert_eq!(storage.list_dirs("").await.unwrap(), ["run-1", "run-2"]);
        assert_eq!(storage.delete_dir("run-1").await.unwrap(), 1);
        assert_eq!(storage.list_dirs("").await.unwrap(), ["run-2"]);
        let err = storage.get("run-1/a.json").await.unwrap_err();
        assert_eq!(err.category(), ErrorCategory::NotFound, "{err}");
    }
}
