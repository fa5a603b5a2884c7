//! Who asked for a Backup or Restore: the identity the API server stamped on the object.
//!
//! The `backup.cnd.dk-requester-stamp` MutatingAdmissionPolicy (`config/admission/`) writes
//! `request.userInfo` of every create and update into the annotation
//! [`REQUESTER_ANNOTATION`](crate::api::REQUESTER_ANNOTATION) as JSON, overwriting whatever the
//! user sent. The value is still read as untrusted input: an object created before the policy
//! was installed, or written by the operator's own identity (which the policy skips), carries
//! whatever its author put there. So it is bounded and checked field by field here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::REQUESTER_ANNOTATION;

/// Longest annotation value read (the API server allows 256 KiB for all annotations together;
/// a real identity is a few hundred bytes).
pub const MAX_ANNOTATION_BYTES: usize = 16 * 1024;
/// Most groups accepted.
pub const MAX_GROUPS: usize = 256;
/// Most `extra` keys accepted, and most values per key.
pub const MAX_EXTRA_KEYS: usize = 32;
pub const MAX_EXTRA_VALUES: usize = 32;
/// Longest single string (username, uid, group, extra key or value).
pub const MAX_STRING_BYTES: usize = 1024;

/// The identity that created or last changed an object, as the API server authenticated it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requester {
    pub username: String,
    /// Empty for identities without one (e.g. client certificates).
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Whose rights a run uses against the cluster and for the storage it may reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunAs {
    /// Multi-tenant mode (the default): the identity stamped on the object. Every read of a
    /// Backup and every write of a Restore is made impersonating it; admin-owned storage
    /// locations are used only if it may `use` them.
    Requester(Requester),
    /// Single-tenant mode (`cluster-backup run --single-tenant`): the operator's own identity,
    /// for clusters without the requester-stamp policy where only administrators create
    /// Backups and Restores.
    Operator,
}

impl RunAs {
    /// The requester, unless the run acts as the operator.
    pub fn requester(&self) -> Option<&Requester> {
        match self {
            RunAs::Requester(requester) => Some(requester),
            RunAs::Operator => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequesterError {
    #[error(
        "annotation {REQUESTER_ANNOTATION} is missing: the requester-stamp admission policy is not \
         installed, or the object predates it (change the object to have it stamped)"
    )]
    Missing,
    #[error("annotation {REQUESTER_ANNOTATION} is {bytes} bytes, more than the {max} accepted")]
    TooLong { bytes: usize, max: usize },
    #[error("annotation {REQUESTER_ANNOTATION} is not a requester stamp: {reason}")]
    Malformed { reason: String },
    #[error("annotation {REQUESTER_ANNOTATION}: {what}")]
    Invalid { what: String },
}

impl Requester {
    /// The requester stamped in `annotations` (an object's `metadata.annotations`).
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> Result<Requester, RequesterError> {
        annotations
            .get(REQUESTER_ANNOTATION)
            .ok_or(RequesterError::Missing)
            .and_then(|value| Requester::parse(value))
    }

    /// Reads and checks one annotation value.
    pub fn parse(value: &str) -> Result<Requester, RequesterError> {
        if value.len() > MAX_ANNOTATION_BYTES {
            return Err(RequesterError::TooLong {
                bytes: value.len(),
                max: MAX_ANNOTATION_BYTES,
            });
        }
        let requester: Requester =
            serde_json::from_str(value).map_err(|err| RequesterError::Malformed {
                reason: err.to_string(),
            })?;
        requester.validate()?;
        Ok(requester)
    }

    /// The ServiceAccount `(namespace, name)` this requester is, if it is one.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        let rest = self.username.strip_prefix("system:serviceaccount:")?;
        let (namespace, name) = rest.split_once(':')?;
        (!namespace.is_empty() && !name.is_empty() && !name.contains(':'))
            .then_some((namespace, name))
    }

    fn validate(&self) -> Result<(), RequesterError> {
        let invalid = |what: String| Err(RequesterError::Invalid { what });
        if self.username.is_empty() {
            return invalid("username is empty".to_string());
        }
        check_string("username", &self.username)?;
        check_string("uid", &self.uid)?;
        if self.groups.len() > MAX_GROUPS {
            return invalid(format!(
                "{} groups, more than the {MAX_GROUPS} accepted",
                self.groups.len()
            ));
        }
        for group in &self.groups {
            if group.is_empty() {
                return invalid("a group is empty".to_string());
            }
            check_string("group", group)?;
        }
        if self.extra.len() > MAX_EXTRA_KEYS {
            return invalid(format!(
                "{} extra keys, more than the {MAX_EXTRA_KEYS} accepted",
                self.extra.len()
            ));
        }
        for (key, values) in &self.extra {
            if key.is_empty() {
                return invalid("an extra key is empty".to_string());
            }
            check_string("extra key", key)?;
            if values.len() > MAX_EXTRA_VALUES {
                return invalid(format!(
                    "extra `{key}` has {} values, more than the {MAX_EXTRA_VALUES} accepted",
                    values.len()
                ));
            }
            for value in values {
                check_string("extra value", value)?;
            }
        }
        Ok(())
    }
}

/// Bounded, and free of control characters (which an identity never needs and a log line or
/// an HTTP header made from it must not carry).
fn check_string(what: &str, value: &str) -> Result<(), RequesterError> {
    if value.len() > MAX_STRING_BYTES {
        return Err(RequesterError::Invalid {
            what: format!(
                "{what} is {} bytes, more than the {MAX_STRING_BYTES} accepted",
                value.len()
            ),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(RequesterError::Invalid {
            what: format!("{what} {value:?} contains a control character"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exactly what the policy wrote for a ServiceAccount on the test ground.
    const STAMPED: &str = r#"{"username":"system:serviceaccount:reqspike:alice","uid":"4e9385c7-d3ce-4d72-8d7b-b341bec82c11","groups":["system:serviceaccounts","system:serviceaccounts:reqspike","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["JTI=41290fc9-dc1c-41bc-994d-8a19e925e46d"]}}"#;

    #[test]
    fn reads_what_the_policy_writes() {
        let requester = Requester::parse(STAMPED).unwrap();
        assert_eq!(requester.username, "system:serviceaccount:reqspike:alice");
        assert_eq!(requester.uid, "4e9385c7-d3ce-4d72-8d7b-b341bec82c11");
        assert_eq!(requester.groups.len(), 3);
        assert_eq!(
            requester.extra["authentication.kubernetes.io/credential-id"],
            vec!["JTI=41290fc9-dc1c-41bc-994d-8a19e925e46d".to_string()]
        );
        assert_eq!(requester.service_account(), Some(("reqspike", "alice")));
    }

    #[test]
    fn reads_escaped_names_and_empty_lists() {
        // strings.quote in CEL escapes `"` and `\` as JSON does.
        let requester =
            Requester::parse(r#"{"username":"we\"ird\\né","uid":"","groups":[],"extra":{}}"#)
                .unwrap();
        assert_eq!(requester.username, "we\"ird\\né");
        assert_eq!(requester.service_account(), None);
    }

    #[test]
    fn from_annotations_says_when_missing() {
        let mut annotations = BTreeMap::new();
        assert_eq!(
            Requester::from_annotations(&annotations),
            Err(RequesterError::Missing)
        );
        annotations.insert(REQUESTER_ANNOTATION.to_string(), STAMPED.to_string());
        assert!(Requester::from_annotations(&annotations).is_ok());
    }

    #[test]
    fn refuses_what_the_policy_never_writes() {
        for (value, expected) in [
            (r#"admin"#, "not a requester stamp"),
            (
                r#"{"username":"admin","role":"root"}"#,
                "unknown field `role`",
            ),
            (r#"{"uid":"1"}"#, "missing field `username`"),
            (r#"{"username":""}"#, "username is empty"),
            (r#"{"username":"a","groups":[""]}"#, "a group is empty"),
            (r#"{"username":"a\u0007"}"#, "control character"),
            (r#"{"username":"a","groups":"g"}"#, "invalid type"),
        ] {
            let err = Requester::parse(value).unwrap_err().to_string();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }

    #[test]
    fn bounds_sizes() {
        let long = "x".repeat(MAX_ANNOTATION_BYTES + 1);
        assert!(matches!(
            Requester::parse(&long),
            Err(RequesterError::TooLong { .. })
        ));
        let groups: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        let value = serde_json::json!({"username": "a", "groups": groups}).to_string();
        let err = Requester::parse(&value).unwrap_err().to_string();
        assert!(err.contains("groups, more than"), "{err}");
        let value = serde_json::json!({"username": "u".repeat(MAX_STRING_BYTES + 1)}).to_string();
        let err = Requester::parse(&value).unwrap_err().to_string();
        assert!(err.contains("username is"), "{err}");
    }

    #[test]
    fn service_account_needs_namespace_and_name() {
        let of = |username: &str| Requester {
            username: username.to_string(),
            ..Requester::default()
        };
        assert_eq!(
            of("system:serviceaccount:ns:sa").service_account(),
            Some(("ns", "sa"))
        );
        assert_eq!(of("system:serviceaccount:ns").service_account(), None);
        assert_eq!(of("system:serviceaccount::sa").service_account(), None);
        assert_eq!(of("system:serviceaccount:ns:sa:x").service_account(), None);
        assert_eq!(of("admin").service_account(), None);
    }
}
