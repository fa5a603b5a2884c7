//! Storage errors, and how a failed object_store request is read into one.
//!
//! object_store 0.14 gives a typed variant only for some HTTP statuses (`NotFound` 404,
//! `PermissionDenied` 403, `Unauthenticated` 401, ...) and wraps everything else, including every
//! failed LIST, in `Error::Generic` whose source is a private `RetryError`. So the diagnosis walks
//! the source chain: an [`HttpError`] means no HTTP response came back (transport failure); the
//! status line and the S3 `<Code>`/`<Message>` are read from the chain's text. That reading is
//! pinned by `tests/storage_error_responses.rs`, which drives the real S3 client against canned
//! responses, so an object_store upgrade that changes the text fails CI.

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};

use crate::api::StorageProvider;

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Coarse kind of failure, for Events, conditions and metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The location or its credentials are wrong as written; retrying will not help.
    Config,
    /// The storage server (or the API server, for the Secret) refused the identity or permission.
    Auth,
    /// The storage server could not be reached or did not answer in time.
    Unreachable,
    /// The object asked for does not exist.
    NotFound,
    /// Stored bytes are damaged, altered, or not what the location expects (not encrypted, a
    /// wrong key, a failed AEAD tag): untrusted content refused, not an outage.
    Integrity,
    Other,
}

impl ErrorCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Config => "Config",
            ErrorCategory::Auth => "Auth",
            ErrorCategory::Unreachable => "Unreachable",
            ErrorCategory::NotFound => "NotFound",
            ErrorCategory::Integrity => "Integrity",
            ErrorCategory::Other => "Other",
        }
    }
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong between a `StorageLocation` and its objects. Messages never
/// contain secret keys or session tokens.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },

    #[error("invalid storage location: {reason}")]
    InvalidLocation { reason: String },

    #[error("no usable credentials for {provider} storage: {reason}")]
    MissingCredentials {
        provider: StorageProvider,
        reason: String,
    },

    #[error("credentials Secret {secret:?} cannot be used: {reason}")]
    SecretKeys { secret: String, reason: String },

    #[error("credentials Secret {name:?} not found in namespace {namespace:?}")]
    SecretNotFound {
        name: String,
        namespace: String,
        /// The API server's answer.
        #[source]
        source: BoxError,
    },

    #[error(
        "{reader} is not allowed to read credentials Secret {name:?} in namespace {namespace:?}: check its RBAC (it needs `get` on secrets in that namespace)"
    )]
    SecretForbidden {
        name: String,
        namespace: String,
        /// Whose read was refused: `the operator`, or `user "alice"`.
        reader: String,
        /// The API server's answer.
        #[source]
        source: BoxError,
    },

    #[error("cannot read credentials Secret {name:?} in namespace {namespace:?}: {source}")]
    SecretRead {
        name: String,
        namespace: String,
        /// The API server's answer.
        #[source]
        source: BoxError,
    },

    #[error("cannot set up {what}: {source}")]
    Setup {
        what: String,
        #[source]
        source: BoxError,
    },

    #[error(
        "no S3 credentials: the location sets none and none were found in the operator's environment (AWS_* variables, web identity token, container or instance metadata): {reason}"
    )]
    EnvironmentCredentials {
        reason: String,
        #[source]
        source: BoxError,
    },

    #[error("cannot reach S3 endpoint {endpoint}: {reason}")]
    Unreachable {
        endpoint: String,
        reason: String,
        #[source]
        source: BoxError,
    },

    #[error(
        "S3 endpoint {endpoint} rejected the credentials ({detail}); check the access key and secret key"
    )]
    CredentialsRejected {
        endpoint: String,
        /// S3 error code, e.g. `SignatureDoesNotMatch` or `InvalidAccessKeyId`.
        code: String,
        /// The code, and the server's message when it sent one.
        detail: String,
        #[source]
        source: BoxError,
    },

    #[error("access denied to {target} ({detail}); the credentials lack permission for it")]
    AccessDenied {
        target: String,
        detail: String,
        #[source]
        source: BoxError,
    },

    #[error("bucket {bucket:?} does not exist ({location})")]
    BucketNotFound {
        bucket: String,
        location: String,
        #[source]
        source: BoxError,
    },

    #[error("object {key:?} not found in {location}")]
    NotFound {
        key: String,
        location: String,
        #[source]
        source: BoxError,
    },

    #[error("bucket {bucket:?} does not exist and could not be created: {reason}")]
    CreateBucket {
        bucket: String,
        reason: String,
        category: ErrorCategory,
        transient: bool,
        #[source]
        source: BoxError,
    },

    #[error("S3 refused to {operation} {target}: {detail}")]
    Rejected {
        operation: &'static str,
        target: String,
        status: u16,
        detail: String,
        #[source]
        source: BoxError,
    },

    #[error("cannot {operation} {target}: {source}")]
    Failed {
        operation: &'static str,
        target: String,
        #[source]
        source: BoxError,
    },

    /// An inline location asks for what only an admin-owned location may offer.
    #[error("{reason}")]
    InlineNotAllowed { reason: String },

    #[error(
        "ClusterStorageLocation {name:?} not found: name an existing one, or ask an administrator to create it"
    )]
    ClusterLocationNotFound {
        name: String,
        /// The API server's answer.
        #[source]
        source: BoxError,
    },

    #[error("cannot read ClusterStorageLocation {name:?}: {source}")]
    ClusterLocationRead {
        name: String,
        transient: bool,
        #[source]
        source: BoxError,
    },

    #[error(
        "ClusterStorageLocation {location:?} does not allow namespace {namespace:?}: an administrator adds it to spec.allowedNamespaces (or labels the namespace to match spec.namespaceSelector)"
    )]
    NamespaceNotAllowed { location: String, namespace: String },

    #[error(
        "user {user:?} may not use ClusterStorageLocation {location:?} in namespace {namespace:?}{reason}: grant the `use` verb on clusterstoragelocations in API group backup.cnd.dk (resourceNames: [{location}]) with a ClusterRole, bound to the user or one of its groups by a RoleBinding in that namespace (or a ClusterRoleBinding for every namespace)"
    )]
    UseDenied {
        user: String,
        location: String,
        namespace: String,
        /// ` (the authorizer's reason)`, or empty.
        reason: String,
    },

    #[error(
        "user {user:?} may not restore runs of namespace {namespace:?}'s Backups from the shared ClusterStorageLocation {location:?}{reason}: they are restored only by whoever may `get` Backups in that namespace"
    )]
    ForeignRun {
        user: String,
        location: String,
        namespace: String,
        /// ` (the authorizer's reason)`, or empty.
        reason: String,
    },

    #[error(
        "the backup path {path:?} is not a run of a Backup (`backups/<namespace>/<backup>/<time>`): from the shared ClusterStorageLocation {location:?}, only runs of Backups are restored, by whoever may read that namespace's Backups"
    )]
    NotARunPath { path: String, location: String },

    #[error(
        "cannot check whether user {user:?} may use ClusterStorageLocation {location:?}: {reason}"
    )]
    AccessReview {
        user: String,
        location: String,
        reason: String,
        transient: bool,
        #[source]
        source: BoxError,
    },

    /// A problem of an admin-owned location, for the administrator to fix.
    #[error("ClusterStorageLocation {name:?}: {source}")]
    ClusterLocation {
        name: String,
        #[source]
        source: Box<StorageError>,
    },

    /// Stored content that is not what it should be (too large, too short, not decodable):
    /// the bucket is untrusted input.
    #[error("stored object {key} is unusable: {reason}")]
    Corrupt { key: String, reason: String },

    #[error("CA bundle {what}: {reason}")]
    CaBundle {
        /// e.g. `key "ca.crt" of ConfigMap "storage-ca" in namespace "cluster-backup-system"`.
        what: String,
        reason: String,
        transient: bool,
    },

    /// An encrypted item that cannot be opened (or an item that should have been encrypted).
    #[error("stored object {key} {source}")]
    Sealed {
        key: String,
        #[source]
        source: super::sealed::SealError,
    },

    /// The encryption key Secret cannot be read or holds no usable key.
    #[error("encryption key Secret {what}: {reason}")]
    KeySecret {
        /// e.g. `"backup-keys" in namespace "team-a"`.
        what: String,
        reason: String,
        transient: bool,
    },
}

impl StorageError {
    pub fn category(&self) -> ErrorCategory {
        use StorageError::*;
        match self {
            InvalidEndpoint { .. }
            | InvalidLocation { .. }
            | MissingCredentials { .. }
            | SecretKeys { .. }
            | SecretNotFound { .. }
            | Setup { .. }
            | EnvironmentCredentials { .. }
            | BucketNotFound { .. }
            | InlineNotAllowed { .. }
            | ClusterLocationNotFound { .. }
            | NotARunPath { .. }
            | KeySecret { .. }
            | CaBundle { .. } => ErrorCategory::Config,
            Sealed { source, .. } => match source {
                super::sealed::SealError::NoKeyring { .. }
                | super::sealed::SealError::UnknownKey { .. } => ErrorCategory::Config,
                super::sealed::SealError::Rejected { .. }
                | super::sealed::SealError::NotEncrypted
                | super::sealed::SealError::SecretNotEncrypted
                | super::sealed::SealError::Header(_) => ErrorCategory::Integrity,
                super::sealed::SealError::Seal(_) => ErrorCategory::Other,
            },
            SecretForbidden { .. }
            | CredentialsRejected { .. }
            | AccessDenied { .. }
            | NamespaceNotAllowed { .. }
            | UseDenied { .. }
            | ForeignRun { .. } => ErrorCategory::Auth,
            Unreachable { .. } => ErrorCategory::Unreachable,
            NotFound { .. } => ErrorCategory::NotFound,
            CreateBucket { category, .. } => *category,
            ClusterLocation { source, .. } => source.category(),
            SecretRead { .. }
            | Rejected { .. }
            | Failed { .. }
            | ClusterLocationRead { .. }
            | AccessReview { .. } => ErrorCategory::Other,
            Corrupt { .. } => ErrorCategory::Integrity,
        }
    }

    /// Worth retrying later without anyone changing anything: the server was unreachable,
    /// overloaded (5xx, 429, SlowDown), or the API server failed to return the Secret.
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Unreachable { .. } | StorageError::SecretRead { .. } => true,
            StorageError::Rejected { status, .. } => is_transient_status(*status),
            StorageError::CreateBucket { transient, .. }
            | StorageError::ClusterLocationRead { transient, .. }
            | StorageError::AccessReview { transient, .. }
            | StorageError::KeySecret { transient, .. }
            | StorageError::CaBundle { transient, .. } => *transient,
            StorageError::ClusterLocation { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}

fn is_transient_status(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// S3 error codes that mean "these keys are wrong", as opposed to "not allowed".
const CREDENTIAL_CODES: [&str; 8] = [
    "InvalidAccessKeyId",
    // s3s-fs answers an unknown access key with this AWS code.
    "NotSignedUp",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
    "MissingSecurityHeader",
];

/// Where object_store asks for instance / container / pod-identity credentials.
const METADATA_HOSTS: [&str; 3] = ["169.254.169.254", "169.254.170.2", "169.254.170.23"];

/// A non-2xx answer to a request this module signs itself (bucket check and creation).
#[derive(Debug, thiserror::Error)]
#[error("{method} {url} returned HTTP {status}: {body}")]
pub(crate) struct S3ErrorResponse {
    pub method: &'static str,
    pub url: String,
    pub status: u16,
    pub body: String,
}

/// What a failed request tells us.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    /// No HTTP response: why (e.g. "connection refused").
    pub transport: Option<String>,
    pub status: Option<u16>,
    /// S3 error code from the response body, e.g. `SignatureDoesNotMatch`.
    pub code: Option<String>,
    pub message: Option<String>,
    /// The failed request went to a metadata endpoint: object_store was looking for
    /// credentials in the environment, not talking to S3.
    pub credential_lookup: bool,
}

pub(crate) fn diagnose(err: &(dyn StdError + 'static)) -> Diagnosis {
    let mut diagnosis = Diagnosis::default();
    let mut text = String::new();
    let mut transport_kind = None;
    let mut refused = false;
    let mut root = err.to_string();
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            transport_kind.get_or_insert(http.kind());
        }
        if let Some(response) = e.downcast_ref::<S3ErrorResponse>() {
            diagnosis.status.get_or_insert(response.status);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        if let Some(status) = e
            .downcast_ref::<object_store::Error>()
            .and_then(status_of_variant)
        {
            diagnosis.status.get_or_insert(status);
        }
        let display = e.to_string();
        text.push_str(&display);
        text.push('\n');
        root = display;
        current = e.source();
    }

    if diagnosis.status.is_none() {
        diagnosis.status = status_from_text(&text);
    }
    diagnosis.credential_lookup = METADATA_HOSTS.iter().any(|host| text.contains(host));
    diagnosis.code = xml_element(&text, "Code");
    diagnosis.message = xml_element(&text, "Message");

    // A body that failed to decode came with a response; everything else under an HttpError
    // means the request never got one.
    if let Some(kind) = transport_kind.filter(|k| *k != HttpErrorKind::Decode)
        && diagnosis.status.is_none()
    {
        let reason = if refused {
            "connection refused".to_string()
        } else if kind == HttpErrorKind::Timeout {
            format!(
                "timed out (connect timeout {} s, request timeout {} s)",
                super::CONNECT_TIMEOUT.as_secs(),
                super::REQUEST_TIMEOUT.as_secs()
            )
        } else if text.contains("dns error") {
            format!("DNS lookup failed ({root})")
        } else {
            root
        };
        diagnosis.transport = Some(reason);
    }
    diagnosis
}

fn status_of_variant(err: &object_store::Error) -> Option<u16> {
    match err {
        object_store::Error::NotFound { .. } => Some(404),
        object_store::Error::PermissionDenied { .. } => Some(403),
        object_store::Error::Unauthenticated { .. } => Some(401),
        object_store::Error::AlreadyExists { .. } => Some(409),
        object_store::Error::Precondition { .. } => Some(412),
        _ => None,
    }
}

/// object_store's `RetryError` prints "Server returned non-2xx status code: 403 Forbidden: ...".
fn status_from_text(text: &str) -> Option<u16> {
    let after = text.split("status code: ").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|s| (100..600).contains(s))
}

/// The text of the first `<name>...</name>` element, XML entities decoded.
pub(crate) fn xml_element(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&close)?;
    let value = text[start..start + len]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// The operation a request belonged to, for messages.
pub(crate) struct OpContext<'a> {
    /// Verb for messages: "write", "read", "list", "delete", "check".
    pub operation: &'static str,
    /// Object key or directory relative to the location prefix, for messages.
    pub key: Option<&'a str>,
    /// The operation is about one object, so a 404 means that object is missing (and not the
    /// bucket).
    pub is_object: bool,
    /// `Storage::describe()`.
    pub location: &'a str,
    /// S3 endpoint URL (None for the filesystem and in-memory stores).
    pub endpoint: Option<&'a str>,
    pub bucket: &'a str,
    /// The endpoint had no scheme and `https://` was assumed.
    pub scheme_implied: bool,
}

impl OpContext<'_> {
    fn target(&self) -> String {
        match self.key.filter(|k| !k.trim_matches('/').is_empty()) {
            Some(key) => format!("{key:?} in {}", self.location),
            None => self.location.to_string(),
        }
    }
}

/// Turns a failed request (object_store or our own signed requests) into a [`StorageError`].
pub(crate) fn classify(source: BoxError, ctx: &OpContext<'_>) -> StorageError {
    let d = diagnose(&*source);
    if d.credential_lookup {
        let reason = d.transport.clone().unwrap_or_else(|| match d.status {
            Some(status) => format!("the metadata endpoint answered HTTP {status}"),
            None => "the lookup failed".to_string(),
        });
        return StorageError::EnvironmentCredentials { reason, source };
    }
    if let (Some(reason), Some(endpoint)) = (&d.transport, ctx.endpoint) {
        let mut reason = reason.clone();
        let lower = reason.to_ascii_lowercase();
        if ctx.scheme_implied
            && ["tls", "ssl", "certificate", "corrupt message", "handshake"]
                .iter()
                .any(|w| lower.contains(w))
        {
            reason.push_str(
                "; the endpoint has no scheme so https:// was assumed: write http://... if the server speaks plain HTTP",
            );
        } else if lower.contains("unknownissuer") {
            reason.push_str(
                "; the server's certificate is not trusted: if a private CA signed it, set caBundle to that CA's certificate",
            );
        }
        return StorageError::Unreachable {
            endpoint: endpoint.to_string(),
            reason,
            source,
        };
    }
    let detail = match (&d.code, &d.message, d.status) {
        (Some(code), Some(message), _) => format!("{code}: {message}"),
        (Some(code), None, _) => code.clone(),
        (None, Some(message), Some(status)) => format!("HTTP {status}: {message}"),
        (None, _, Some(status)) => format!("HTTP {status}"),
        (None, _, None) => String::new(),
    };
    let endpoint = ctx.endpoint.unwrap_or(ctx.location).to_string();
    match (d.code.as_deref(), d.status) {
        (Some(code), _) if CREDENTIAL_CODES.contains(&code) => StorageError::CredentialsRejected {
            endpoint,
            code: code.to_string(),
            detail,
            source,
        },
        (_, Some(401)) => StorageError::CredentialsRejected {
            endpoint,
            code: d.code.clone().unwrap_or_else(|| "Unauthorized".to_string()),
            detail,
            source,
        },
        (Some("AccessDenied" | "AllAccessDisabled"), _) | (_, Some(403)) => {
            StorageError::AccessDenied {
                target: ctx.target(),
                detail,
                source,
            }
        }
        (Some("NoSuchBucket"), _) => StorageError::BucketNotFound {
            bucket: ctx.bucket.to_string(),
            location: ctx.location.to_string(),
            source,
        },
        (Some("NoSuchKey") | None, Some(404)) if ctx.is_object => StorageError::NotFound {
            key: ctx.key.unwrap_or_default().to_string(),
            location: ctx.location.to_string(),
            source,
        },
        (None, Some(404)) => StorageError::BucketNotFound {
            bucket: ctx.bucket.to_string(),
            location: ctx.location.to_string(),
            source,
        },
        (_, Some(status)) => StorageError::Rejected {
            operation: ctx.operation,
            target: ctx.target(),
            status,
            detail: match d.code {
                Some(_) => format!("{detail} (HTTP {status})"),
                None => detail,
            },
            source,
        },
        _ => {
            // The filesystem and in-memory stores report a missing object without any status.
            if let (true, Some(key), Some(object_store::Error::NotFound { .. })) = (
                ctx.is_object,
                ctx.key,
                source.downcast_ref::<object_store::Error>(),
            ) {
                return StorageError::NotFound {
                    key: key.to_string(),
                    location: ctx.location.to_string(),
                    source,
                };
            }
            StorageError::Failed {
                operation: ctx.operation,
                target: ctx.target(),
                source,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> OpContext<'static> {
        OpContext {
            operation: "read",
            key: Some("a/b.json"),
            is_object: true,
            location: "s3://bkt/p at http://127.0.0.1:9",
            endpoint: Some("http://127.0.0.1:9"),
            bucket: "bkt",
            scheme_implied: false,
        }
    }

    fn response(status: u16, body: &str) -> BoxError {
        Box::new(S3ErrorResponse {
            method: "GET",
            url: "http://127.0.0.1:9/bkt".into(),
            status,
            body: body.into(),
        })
    }

    fn s3_body(code: &str, message: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        )
    }

    #[test]
    fn codes_map_to_categories() {
        let cases = [
            (403, "SignatureDoesNotMatch", ErrorCategory::Auth),
            (403, "InvalidAccessKeyId", ErrorCategory::Auth),
            (403, "AccessDenied", ErrorCategory::Auth),
            (404, "NoSuchBucket", ErrorCategory::Config),
            (404, "NoSuchKey", ErrorCategory::NotFound),
            (400, "InvalidBucketName", ErrorCategory::Other),
            (503, "SlowDown", ErrorCategory::Other),
        ];
        for (status, code, category) in cases {
            let err = classify(response(status, &s3_body(code, "msg &amp; more")), &ctx());
            assert_eq!(err.category(), category, "{code}: {err}");
            let msg = err.to_string();
            if code != "NoSuchKey" && code != "NoSuchBucket" {
                assert!(msg.contains(code), "{msg}");
            }
        }
        let slow = classify(response(503, &s3_body("SlowDown", "m")), &ctx());
        assert!(slow.is_transient());
        let rejected = classify(response(400, &s3_body("InvalidBucketName", "bad")), &ctx());
        assert_eq!(
            rejected.to_string(),
            "S3 refused to read \"a/b.json\" in s3://bkt/p at http://127.0.0.1:9: InvalidBucketName: bad (HTTP 400)"
        );
        assert!(!rejected.is_transient());
    }

    #[test]
    fn bodiless_statuses() {
        assert_eq!(
            classify(response(403, ""), &ctx()).category(),
            ErrorCategory::Auth
        );
        assert_eq!(
            classify(response(401, ""), &ctx()).category(),
            ErrorCategory::Auth
        );
        assert_eq!(
            classify(response(404, ""), &ctx()).category(),
            ErrorCategory::NotFound
        );
    }

    #[test]
    fn status_is_read_from_retry_error_text() {
        let text = "Generic S3 error: Error performing list request: Error performing GET http://x/b?list-type=2 in 1ms - Server returned non-2xx status code: 404 Not Found: <Error><Code>NoSuchBucket</Code></Error>";
        assert_eq!(status_from_text(text), Some(404));
        assert_eq!(xml_element(text, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(xml_element(text, "Message"), None);
    }

    #[test]
    fn in_memory_not_found_is_not_found() {
        let source = object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        let err = classify(Box::new(source), &ctx());
        assert_eq!(err.category(), ErrorCategory::NotFound);
    }

    #[test]
    fn failed_instance_metadata_lookup_is_not_blamed_on_s3() {
        let text = "Generic S3 error: Error performing GET http://169.254.169.254/latest/api/token in 1s - HTTP error: error sending request";
        let err = classify(text.into(), &ctx());
        assert!(
            matches!(err, StorageError::EnvironmentCredentials { .. }),
            "{err}"
        );
        assert_eq!(err.category(), ErrorCategory::Config);
    }

    #[test]
    fn transport_errors_are_unreachable_and_transient() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let http = HttpError::new(HttpErrorKind::Connect, io);
        let source = object_store::Error::Generic {
            store: "S3",
            source: Box::new(http),
        };
        let err = classify(Box::new(source), &ctx());
        assert_eq!(err.category(), ErrorCategory::Unreachable);
        assert!(err.is_transient());
        assert_eq!(
            err.to_string(),
            "cannot reach S3 endpoint http://127.0.0.1:9: connection refused"
        );
    }
}
