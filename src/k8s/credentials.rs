//! Reading a storage location's credentials Secret: the one piece of credential resolution that
//! needs the Kubernetes API (everything else is decided by [`crate::storage::credentials::plan`]).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::api::StorageLocation;
use crate::storage::credentials::{
    CredentialSource, Credentials, Plan, ResolvedCredentials, SECRET_KEY_PAIRS,
    SECRET_SESSION_TOKEN_KEYS, accepted_pairs, check_value, plan,
};
use crate::storage::{BoxError, StorageError};

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
    resolve_credentials_as(client, namespace, location, OPERATOR).await
}

/// Who reads a Secret when nobody else is named: the operator's own identity.
pub(crate) const OPERATOR: &str = "the operator";

/// [`resolve_credentials`] with `client` acting as `reader` (`the operator`, or `user
/// "alice"`), who is named when the Secret may not be read.
pub async fn resolve_credentials_as(
    client: &kube::Client,
    namespace: &str,
    location: &StorageLocation,
    reader: &str,
) -> Result<ResolvedCredentials, StorageError> {
    match plan(location)? {
        Plan::Ready(resolved) => Ok(resolved),
        Plan::ReadSecret { name, warnings } => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let secret = api
                .get(&name)
                .await
                .map_err(|source| secret_read_error(&name, namespace, reader, source))?;
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

/// Maps a failed Secret read to a message that says what to fix.
pub(crate) fn secret_read_error(
    name: &str,
    namespace: &str,
    reader: &str,
    source: kube::Error,
) -> StorageError {
    let (name, namespace) = (name.to_string(), namespace.to_string());
    let kind = match &source {
        kube::Error::Api(status) if status.is_not_found() => 404,
        kube::Error::Api(status) if status.is_forbidden() => 403,
        _ => 0,
    };
    let source: BoxError = Box::new(source);
    match kind {
        404 => StorageError::SecretNotFound {
            name,
            namespace,
            source,
        },
        403 => StorageError::SecretForbidden {
            name,
            namespace,
            reader: reader.to_string(),
            source,
        },
        _ => StorageError::SecretRead {
            name,
            namespace,
            source,
        },
    }
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
        assert_eq!(err.category(), crate::storage::ErrorCategory::Config);
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
    fn secret_errors_say_what_to_fix() {
        let status = |code: u16, reason: &str| {
            kube::Error::Api(
                kube::core::Status::failure("boom", reason)
                    .with_code(code)
                    .boxed(),
            )
        };
        let err = secret_read_error("creds", "team-a", OPERATOR, status(404, "NotFound"));
        assert_eq!(
            err.to_string(),
            "credentials Secret \"creds\" not found in namespace \"team-a\""
        );
        let err = secret_read_error("creds", "team-a", OPERATOR, status(403, "Forbidden"));
        assert!(err.to_string().contains("RBAC"), "{err}");
        assert_eq!(err.category(), crate::storage::ErrorCategory::Auth);
        let err = secret_read_error("creds", "team-a", OPERATOR, status(500, "InternalError"));
        assert!(err.is_transient());
    }
}
