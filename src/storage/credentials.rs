//! Where the S3 keys come from: inline in the spec, a Secret, or the operator's environment.

use super::StorageError;
use crate::api::{StorageLocation, StorageProvider};

/// Key-name pairs accepted in a credentials Secret, in the order they are tried. The first pair
/// whose both keys are present wins.
pub const SECRET_KEY_PAIRS: [(&str, &str); 6] = [
    ("accessKey", "secretKey"),
    ("access-key", "secret-key"),
    ("access_key", "secret_key"),
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"),
    ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"),
];

/// Optional session-token keys in a credentials Secret, in the order they are tried.
pub const SECRET_SESSION_TOKEN_KEYS: [&str; 2] = ["sessionToken", "AWS_SESSION_TOKEN"];

/// S3 keys. `Debug` shows the access key id only; the secret and the token never leave this
/// struct except towards the request signer.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where resolved credentials came from, for log lines and Events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// `accessKey`/`secretKey` in the spec.
    Inline,
    /// The Secret named by `credentialsSecret`.
    Secret { name: String },
    /// Nothing configured: the operator's environment (`AWS_*` variables, web identity, instance
    /// metadata). Only for provider `s3`.
    Environment,
    /// Provider `filesystem` needs no credentials.
    NotNeeded,
}

/// Credentials for a location, with where they came from (resolved by
/// `crate::k8s::credentials::resolve_credentials`).
#[derive(Clone, Debug)]
pub struct ResolvedCredentials {
    /// `None` means: let object_store find credentials in the environment (or none are needed).
    pub credentials: Option<Credentials>,
    pub source: CredentialSource,
    /// Problems the user should see as warning Events, e.g. inline keys in the spec.
    pub warnings: Vec<String>,
}

/// What resolving the credentials of a location takes; everything except reading the Secret is
/// decided here, without I/O.
#[derive(Debug)]
pub enum Plan {
    Ready(ResolvedCredentials),
    ReadSecret { name: String, warnings: Vec<String> },
}

pub fn plan(location: &StorageLocation) -> Result<Plan, StorageError> {
    let provider = super::provider_of(location)?;
    if provider == StorageProvider::Filesystem {
        return Ok(Plan::Ready(ResolvedCredentials {
            credentials: None,
            source: CredentialSource::NotNeeded,
            warnings: Vec::new(),
        }));
    }
    let non_empty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let access = non_empty(&location.access_key);
    let secret = non_empty(&location.secret_key);
    let secret_name = non_empty(&location.credentials_secret);

    if let Some(name) = secret_name {
        let mut warnings = Vec::new();
        if access.is_some() || secret.is_some() {
            warnings.push(format!(
                "both credentialsSecret and inline accessKey/secretKey are set; using Secret {name:?} and ignoring the inline keys"
            ));
        }
        return Ok(Plan::ReadSecret { name, warnings });
    }
    match (access, secret) {
        (Some(access_key_id), Some(secret_access_key)) => {
            for (field, value) in [
                ("accessKey", &access_key_id),
                ("secretKey", &secret_access_key),
            ] {
                check_value(value).map_err(|problem| StorageError::InvalidLocation {
                    reason: format!("inline {field} {problem}"),
                })?;
            }
            Ok(Plan::Ready(ResolvedCredentials {
                credentials: Some(Credentials {
                    access_key_id,
                    secret_access_key,
                    session_token: None,
                }),
                source: CredentialSource::Inline,
                warnings: vec![
                    "storage keys are inline in the spec (accessKey/secretKey), readable by anyone who can read this object; put them in a Secret and set credentialsSecret".to_string(),
                ],
            }))
        }
        (Some(_), None) => Err(StorageError::MissingCredentials {
            provider,
            reason: "accessKey is set but secretKey is not; set both, or use credentialsSecret"
                .to_string(),
        }),
        (None, Some(_)) => Err(StorageError::MissingCredentials {
            provider,
            reason: "secretKey is set but accessKey is not; set both, or use credentialsSecret"
                .to_string(),
        }),
        (None, None) if provider == StorageProvider::S3 => Ok(Plan::Ready(ResolvedCredentials {
            credentials: None,
            source: CredentialSource::Environment,
            warnings: Vec::new(),
        })),
        (None, None) => Err(StorageError::MissingCredentials {
            provider,
            reason: format!(
                "set credentialsSecret to a Secret with one of the key pairs {}, or set accessKey and secretKey",
                accepted_pairs()
            ),
        }),
    }
}

/// Control characters would make the signer build an invalid HTTP header (object_store panics
/// on that), so they are refused up front. The value itself is never echoed.
pub fn check_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        Err("is empty")
    } else if value.chars().any(|c| c.is_control()) {
        Err("contains a control character")
    } else {
        Ok(())
    }
}

pub fn accepted_pairs() -> String {
    SECRET_KEY_PAIRS
        .iter()
        .map(|(a, s)| format!("{a}/{s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secret_and_token() {
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("token-value".into()),
        };
        let debug = format!("{creds:?}");
        assert!(debug.contains("AKID"));
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(!debug.contains("token-value"), "{debug}");
    }

    fn location(provider: StorageProvider) -> StorageLocation {
        StorageLocation {
            provider: Some(provider),
            bucket: "b".into(),
            ..StorageLocation::default()
        }
    }

    #[test]
    fn plan_prefers_secret_and_warns_about_inline_keys() {
        let loc = StorageLocation {
            access_key: Some("a".into()),
            secret_key: Some("b".into()),
            credentials_secret: Some("creds".into()),
            ..location(StorageProvider::Minio)
        };
        match plan(&loc).unwrap() {
            Plan::ReadSecret { name, warnings } => {
                assert_eq!(name, "creds");
                assert_eq!(warnings.len(), 1);
                assert!(warnings[0].contains("ignoring the inline keys"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn plan_inline_keys_with_warning() {
        let loc = StorageLocation {
            access_key: Some("a".into()),
            secret_key: Some("b\n".into()),
            ..location(StorageProvider::Minio)
        };
        let Plan::Ready(resolved) = plan(&loc).unwrap() else {
            panic!()
        };
        assert_eq!(resolved.source, CredentialSource::Inline);
        assert_eq!(resolved.credentials.unwrap().secret_access_key, "b");
        assert_eq!(resolved.warnings.len(), 1);
    }

    #[test]
    fn plan_half_inline_is_an_error() {
        let loc = StorageLocation {
            access_key: Some("a".into()),
            ..location(StorageProvider::S3)
        };
        let err = plan(&loc).unwrap_err();
        assert!(err.to_string().contains("secretKey is not"), "{err}");
    }

    #[test]
    fn plan_nothing_set() {
        let Plan::Ready(resolved) = plan(&location(StorageProvider::S3)).unwrap() else {
            panic!()
        };
        assert_eq!(resolved.source, CredentialSource::Environment);
        assert!(resolved.credentials.is_none());

        let err = plan(&location(StorageProvider::Minio)).unwrap_err();
        assert!(err.to_string().contains("credentialsSecret"), "{err}");

        let Plan::Ready(resolved) = plan(&location(StorageProvider::Filesystem)).unwrap() else {
            panic!()
        };
        assert_eq!(resolved.source, CredentialSource::NotNeeded);
    }
}
