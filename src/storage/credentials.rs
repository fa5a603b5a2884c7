//! Where the S3 keys come from: inline in the spec, a Secret, or the operator's environment.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

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

/// Outcome of [`resolve_credentials`].
#[derive(Clone, Debug)]
pub struct ResolvedCredentials {
    /// `None` means: let object_store find credentials in the environment (or none are needed).
    pub credentials: Option<Credentials>,
    pub source: CredentialSource,
    /// Problems the user should see as warning Events, e.g. inline keys in the spec.
    pub warnings: Vec<String>,
}

/// Picks the keys out of a Secret's `data`. Accepted names are [`SECRET_KEY_PAIRS`] (first
/// complete pair wins) and optionally a token from [`SECRET_SESSION_TOKEN_KEYS`]. Surrounding
/// whitespace is trimmed because Secrets made with `echo ... | base64` end in a newline.
/// Errors name the Secret and key names, never values.
pub fn credentials_from_secret_data(
    secret_name: &str,
    data: &BTreeMap<String, ByteString>,
) -> Result<Credentials, StorageError> {
    let invalid = |reason: String| StorageError::SecretKeys {
        secret: secret_name.to_string(),
        reason,
    };
    let value = |key: &str| -> Result<Option<String>, StorageError> {
        match data.get(key) {
            None => Ok(None),
            Some(bytes) => {
                let text = std::str::from_utf8(&bytes.0)
                    .map_err(|_| invalid(format!("key {key:?} is not valid UTF-8")))?;
                let text = text.trim();
                check_value(text).map_err(|problem| invalid(format!("key {key:?} {problem}")))?;
                Ok(Some(text.to_string()))
            }
        }
    };

    let mut chosen = None;
    for (access, secret) in SECRET_KEY_PAIRS {
        if data.contains_key(access) && data.contains_key(secret) {
            chosen = Some((access, secret));
            break;
        }
    }
    let Some((access, secret)) = chosen else {
        // Half a pair is the most likely typo; say which half is missing.
        let half = SECRET_KEY_PAIRS.iter().find_map(|(a, s)| {
            match (data.contains_key(*a), data.contains_key(*s)) {
                (true, false) => Some(format!("it has {a:?} but no {s:?}")),
                (false, true) => Some(format!("it has {s:?} but no {a:?}")),
                _ => None,
            }
        });
        let present: Vec<&str> = data.keys().map(String::as_str).collect();
        let reason =
            half.unwrap_or_else(|| format!("it has no accepted key pair (its keys: {present:?})"));
        return Err(invalid(format!(
            "{reason}; accepted key pairs: {}",
            accepted_pairs()
        )));
    };

    let access_key_id = value(access)?.unwrap_or_default();
    let secret_access_key = value(secret)?.unwrap_or_default();
    let mut session_token = None;
    for key in SECRET_SESSION_TOKEN_KEYS {
        if let Some(token) = value(key)? {
            session_token = Some(token);
            break;
        }
    }
    Ok(Credentials {
        access_key_id,
        secret_access_key,
        session_token,
    })
}

/// Resolves the keys for `location`:
/// - `credentialsSecret` set: read that Secret in `namespace` (it wins over inline keys, with a
///   warning when both are set);
/// - inline `accessKey` and `secretKey`: used, with a warning recommending a Secret;
/// - nothing set, provider `s3`: `None`, so object_store reads the environment / instance role;
/// - nothing set, provider `minio`: an error (there are no default keys to fall back on);
/// - provider `filesystem`: `None`.
pub async fn resolve_credentials(
    client: &kube::Client,
    namespace: &str,
    location: &StorageLocation,
) -> Result<ResolvedCredentials, StorageError> {
    match plan(location)? {
        Plan::Ready(resolved) => Ok(resolved),
        Plan::ReadSecret { name, warnings } => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let secret = api
                .get(&name)
                .await
                .map_err(|source| secret_read_error(&name, namespace, source))?;
            let data = secret.data.unwrap_or_default();
            let credentials = credentials_from_secret_data(&name, &data)?;
            Ok(ResolvedCredentials {
                credentials: Some(credentials),
                source: CredentialSource::Secret { name },
                warnings,
            })
        }
    }
}

/// What [`resolve_credentials`] has to do; everything except the Secret read is decided here.
#[derive(Debug)]
pub(crate) enum Plan {
    Ready(ResolvedCredentials),
    ReadSecret { name: String, warnings: Vec<String> },
}

pub(crate) fn plan(location: &StorageLocation) -> Result<Plan, StorageError> {
    if location.provider == StorageProvider::Filesystem {
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
            provider: location.provider,
            reason: "accessKey is set but secretKey is not; set both, or use credentialsSecret"
                .to_string(),
        }),
        (None, Some(_)) => Err(StorageError::MissingCredentials {
            provider: location.provider,
            reason: "secretKey is set but accessKey is not; set both, or use credentialsSecret"
                .to_string(),
        }),
        (None, None) if location.provider == StorageProvider::S3 => {
            Ok(Plan::Ready(ResolvedCredentials {
                credentials: None,
                source: CredentialSource::Environment,
                warnings: Vec::new(),
            }))
        }
        (None, None) => Err(StorageError::MissingCredentials {
            provider: location.provider,
            reason: format!(
                "set credentialsSecret to a Secret with one of the key pairs {}, or set accessKey and secretKey",
                accepted_pairs()
            ),
        }),
    }
}

/// Maps a failed Secret read to a message that says what to fix.
pub(crate) fn secret_read_error(name: &str, namespace: &str, source: kube::Error) -> StorageError {
    let (name, namespace) = (name.to_string(), namespace.to_string());
    match &source {
        kube::Error::Api(status) if status.is_not_found() => StorageError::SecretNotFound {
            name,
            namespace,
            source,
        },
        kube::Error::Api(status) if status.is_forbidden() => StorageError::SecretForbidden {
            name,
            namespace,
            source,
        },
        _ => StorageError::SecretRead {
            name,
            namespace,
            source,
        },
    }
}

/// Control characters would make the signer build an invalid HTTP header (object_store panics
/// on that), so they are refused up front. The value itself is never echoed.
pub(crate) fn check_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        Err("is empty")
    } else if value.chars().any(|c| c.is_control()) {
        Err("contains a control character")
    } else {
        Ok(())
    }
}

fn accepted_pairs() -> String {
    SECRET_KEY_PAIRS
        .iter()
        .map(|(a, s)| format!("{a}/{s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn every_accepted_pair_is_read() {
        for (access, secret) in SECRET_KEY_PAIRS {
            let creds = credentials_from_secret_data(
                "s3-creds",
                &data(&[(access, "AKID"), (secret, "SECRET")]),
            )
            .unwrap();
            assert_eq!(creds.access_key_id, "AKID", "{access}");
            assert_eq!(creds.secret_access_key, "SECRET", "{secret}");
            assert_eq!(creds.session_token, None);
        }
    }

    #[test]
    fn first_complete_pair_wins() {
        let creds = credentials_from_secret_data(
            "s",
            &data(&[
                ("MINIO_ROOT_USER", "minio"),
                ("MINIO_ROOT_PASSWORD", "minio-secret"),
                ("accessKey", "first"),
                ("secretKey", "first-secret"),
                // half a pair earlier in the list does not count
                ("access-key", "half"),
            ]),
        )
        .unwrap();
        assert_eq!(creds.access_key_id, "first");
        assert_eq!(creds.secret_access_key, "first-secret");
    }

    #[test]
    fn session_token_is_optional() {
        for key in SECRET_SESSION_TOKEN_KEYS {
            let creds = credentials_from_secret_data(
                "s",
                &data(&[("accessKey", "a"), ("secretKey", "b"), (key, "tok\n")]),
            )
            .unwrap();
            assert_eq!(creds.session_token.as_deref(), Some("tok"));
        }
    }

    #[test]
    fn trailing_newlines_are_trimmed() {
        let creds = credentials_from_secret_data(
            "s",
            &data(&[
                ("AWS_ACCESS_KEY_ID", "AKID\n"),
                ("AWS_SECRET_ACCESS_KEY", "SECRET\r\n"),
            ]),
        )
        .unwrap();
        assert_eq!(creds.access_key_id, "AKID");
        assert_eq!(creds.secret_access_key, "SECRET");
    }

    #[test]
    fn missing_half_is_named_without_values() {
        let err = credentials_from_secret_data("s3-creds", &data(&[("accessKey", "AKID-VALUE")]))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"s3-creds\""), "{msg}");
        assert!(msg.contains("\"accessKey\" but no \"secretKey\""), "{msg}");
        assert!(!msg.contains("AKID-VALUE"), "{msg}");
        assert_eq!(err.category(), super::super::ErrorCategory::Config);
    }

    #[test]
    fn no_pair_lists_accepted_names_and_present_keys() {
        let err = credentials_from_secret_data("creds", &data(&[("user", "u"), ("password", "p")]))
            .unwrap_err();
        let msg = err.to_string();
        for (a, s) in SECRET_KEY_PAIRS {
            assert!(msg.contains(&format!("{a}/{s}")), "{msg}");
        }
        assert!(msg.contains("\"password\", \"user\""), "{msg}");
    }

    #[test]
    fn empty_or_control_characters_are_refused_without_echo() {
        let err =
            credentials_from_secret_data("s", &data(&[("accessKey", "a"), ("secretKey", " \n")]))
                .unwrap_err();
        assert!(err.to_string().contains("\"secretKey\" is empty"), "{err}");
        let err = credentials_from_secret_data(
            "s",
            &data(&[("accessKey", "a"), ("secretKey", "se\ncret")]),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("control character"), "{msg}");
        assert!(!msg.contains("se\ncret"), "{msg}");
    }

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
            provider,
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

    #[test]
    fn secret_errors_say_what_to_fix() {
        let status = |code: u16, reason: &str| {
            kube::Error::Api(
                kube::core::Status::failure("boom", reason)
                    .with_code(code)
                    .boxed(),
            )
        };
        let err = secret_read_error("creds", "team-a", status(404, "NotFound"));
        assert_eq!(
            err.to_string(),
            "credentials Secret \"creds\" not found in namespace \"team-a\""
        );
        let err = secret_read_error("creds", "team-a", status(403, "Forbidden"));
        assert!(err.to_string().contains("RBAC"), "{err}");
        assert_eq!(err.category(), super::super::ErrorCategory::Auth);
        let err = secret_read_error("creds", "team-a", status(500, "InternalError"));
        assert!(err.is_transient());
    }
}
