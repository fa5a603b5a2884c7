//! Every problem of a Restore's spec that shows without storage or the cluster, found before
//! either is touched and reported together ([`validate_spec`]).
//!
//! The checks are the ones the later steps would make, reused rather than repeated:
//!
//! * `source`: `backupName`, or `storageLocation` and `backupPath`; a `backupName` that is not
//!   a valid object name; everything [`crate::storage::location_problems`] finds in
//!   `storageLocation` (bucket, prefix, region, endpoint, inline keys);
//! * `target`: namespace names and the mapping ([`NamespaceMap::new`]), `labelSelector`
//!   ([`selector::parse`]), `resourceTypes` entries that can name no type at all (empty, or
//!   characters no type name has; whether a name matches a type of the backup needs its
//!   manifest and is checked then).
//!
//! A valid spec's `source` comes back as a [`Source`], so later steps cannot meet an incomplete
//! one.
//!
//! `conflictResolution` needs no check here: the CRD's enum and the typed spec refuse anything
//! but `skip`, `overwrite` and `fail`.

use crate::api::{RestoreSpec, StorageLocation};
use crate::core::restore::mapping::NamespaceMap;
use crate::core::selector;
use crate::storage::location_problems;

/// The longest object name Kubernetes accepts (a DNS-1123 subdomain).
const MAX_OBJECT_NAME_LEN: usize = 253;

/// A Restore spec with problems; every one is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid spec: {}{}", .problems.join("; "), format_notes(.notes))]
pub struct SpecError {
    /// Each names the field, e.g. `target.namespaceMapping["shop"]: "Bad_NS" is not a valid
    /// namespace name`.
    pub problems: Vec<String>,
    /// Rules stated once after the problems (e.g. what a namespace name may be).
    pub notes: Vec<&'static str>,
}

fn format_notes(notes: &[&str]) -> String {
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    }
}

/// Where the backup of a valid spec is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source<'a> {
    /// The newest complete run of this Backup (in the Restore's namespace); `storage_location`
    /// and `backup_path`, when given, are used instead of the Backup's.
    Backup {
        name: &'a str,
        storage_location: Option<&'a StorageLocation>,
        backup_path: Option<&'a str>,
    },
    /// A run at `backup_path` in `storage_location`.
    Path {
        storage_location: &'a StorageLocation,
        backup_path: &'a str,
    },
}

/// Checks everything about `spec` that needs neither storage nor the cluster (see the module
/// docs); returns where the backup is.
pub fn validate_spec(spec: &RestoreSpec) -> Result<Source<'_>, SpecError> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();

    let source = &spec.source;
    let backup_path = source
        .backup_path
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let found = match source.backup_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) if !is_valid_object_name(name) => Err(format!(
            "source.backupName: {name:?} is not a valid object name (lowercase letters, digits, \
             '-' and '.', at most {MAX_OBJECT_NAME_LEN} characters)"
        )),
        Some(name) => Ok(Source::Backup {
            name,
            storage_location: source.storage_location.as_ref(),
            backup_path,
        }),
        None => match (&source.storage_location, backup_path) {
            (Some(storage_location), Some(backup_path)) => Ok(Source::Path {
                storage_location,
                backup_path,
            }),
            _ => Err("source: needs either backupName, or storageLocation and backupPath".into()),
        },
    };
    if let Err(problem) = &found {
        problems.push(problem.clone());
    }
    if let Some(location) = &source.storage_location {
        problems.extend(
            location_problems(location)
                .into_iter()
                .map(|p| format!("source.storageLocation: {p}")),
        );
    }

    let target = &spec.target;
    if let Err(err) = NamespaceMap::new(target, &[] as &[&str]) {
        problems.extend(err.problems.iter().map(|p| format!("target.{p}")));
        notes.extend(err.name_rule());
    }
    if let Some(Err(err)) = target.label_selector.as_ref().map(selector::parse) {
        problems.extend(
            err.problems
                .iter()
                .map(|p| format!("target.labelSelector.{p}")),
        );
    }
    for (i, name) in target.resource_types.iter().enumerate() {
        if !could_name_a_type(name) {
            problems.push(format!(
                "target.resourceTypes[{i}]: {name:?} cannot name a type (use a plural, kind, \
                 short name or plural.group, e.g. \"deployments\" or \"widgets.example.com\")"
            ));
        }
    }

    match found {
        Ok(source) if problems.is_empty() => Ok(source),
        _ => Err(SpecError { problems, notes }),
    }
}

/// A DNS-1123 subdomain: what `metadata.name` of a Backup may be.
fn is_valid_object_name(name: &str) -> bool {
    name.len() <= MAX_OBJECT_NAME_LEN && crate::core::names::is_dns1123_subdomain(name)
}

/// Type names (plurals, kinds, short names, `plural.version.group`) are letters, digits, '.'
/// and '-'; matching is case-insensitive.
fn could_name_a_type(name: &str) -> bool {
    let name = name.trim();
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RestoreSource, RestoreTarget, StorageLocation, StorageProvider};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    fn location(endpoint: &str) -> StorageLocation {
        StorageLocation {
            provider: Some(StorageProvider::Minio),
            bucket: "backups".into(),
            endpoint: Some(endpoint.into()),
            access_key: Some("ak".into()),
            secret_key: Some("sk".into()),
            ..StorageLocation::default()
        }
    }

    fn by_path() -> RestoreSource {
        RestoreSource {
            storage_location: Some(location("http://127.0.0.1:1")),
            backup_path: Some("backups/ns/b/2025-01-21T10-30-00Z".into()),
            backup_name: None,
        }
    }

    fn spec(source: RestoreSource, target: RestoreTarget) -> RestoreSpec {
        RestoreSpec {
            source,
            target,
            ..RestoreSpec::default()
        }
    }

    #[test]
    fn a_good_spec_passes() {
        let good = spec(by_path(), RestoreTarget::default());
        assert_eq!(
            validate_spec(&good),
            Ok(Source::Path {
                storage_location: good.source.storage_location.as_ref().unwrap(),
                backup_path: "backups/ns/b/2025-01-21T10-30-00Z",
            })
        );
        let by_name = RestoreSource {
            backup_name: Some("nightly.v2".into()),
            ..RestoreSource::default()
        };
        let target = RestoreTarget {
            namespaces: vec!["shop-copy".into()],
            namespace_mapping: [("shop".to_string(), "shop-copy".to_string())].into(),
            resource_types: vec!["Deployments".into(), "widgets.v1.example.com".into()],
            ..RestoreTarget::default()
        };
        assert_eq!(
            validate_spec(&spec(by_name, target)),
            Ok(Source::Backup {
                name: "nightly.v2",
                storage_location: None,
                backup_path: None,
            })
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let target = RestoreTarget {
            namespace_mapping: [("shop".to_string(), "Bad_NS".to_string())].into(),
            resource_types: vec!["configmaps".into(), " ".into(), "deployments/scale".into()],
            label_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "app".into(),
                    operator: "Equals".into(),
                    values: None,
                }]),
                ..LabelSelector::default()
            }),
            ..RestoreTarget::default()
        };
        let mut source = by_path();
        if let Some(location) = source.storage_location.as_mut() {
            location.prefix = Some("../up".into());
        }
        let err = validate_spec(&spec(source, target)).unwrap_err();
        assert_eq!(err.problems.len(), 5, "{err}");
        let message = err.to_string();
        for part in [
            "source.storageLocation: invalid storage location: prefix \"../up\"",
            "target.namespaceMapping[\"shop\"]: \"Bad_NS\" is not a valid namespace name",
            "target.labelSelector.matchExpressions[0]: operator \"Equals\"",
            "target.resourceTypes[1]: \" \" cannot name a type",
            "target.resourceTypes[2]: \"deployments/scale\" cannot name a type",
            "(a namespace name is at most 63 characters",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
        assert!(message.starts_with("invalid spec: "), "{message}");
    }

    #[test]
    fn the_source_must_say_where_the_backup_is() {
        let incomplete = [
            RestoreSource::default(),
            RestoreSource {
                backup_name: Some(String::new()),
                backup_path: Some("p".into()),
                ..RestoreSource::default()
            },
            RestoreSource {
                backup_path: Some("  ".into()),
                ..by_path()
            },
        ];
        for source in incomplete {
            let err = validate_spec(&spec(source.clone(), RestoreTarget::default())).unwrap_err();
            assert_eq!(
                err.problems,
                ["source: needs either backupName, or storageLocation and backupPath"],
                "{source:?}"
            );
        }
        let bad_name = RestoreSource {
            backup_name: Some("Nightly_Backup".into()),
            ..RestoreSource::default()
        };
        let err = validate_spec(&spec(bad_name, RestoreTarget::default())).unwrap_err();
        assert!(
            err.problems[0].starts_with("source.backupName: \"Nightly_Backup\""),
            "{err}"
        );
        // A backupName with a storageLocation override: the location is checked too.
        let with_location = RestoreSource {
            backup_name: Some("nightly".into()),
            storage_location: Some(location("ftp://x")),
            backup_path: None,
        };
        let err = validate_spec(&spec(with_location, RestoreTarget::default())).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(err.problems[0].contains("unsupported scheme"), "{err}");
        // A backupPath beside a backupName overrides the Backup's; a blank one does not.
        for (path, expected) in [(" backups/x ", Some("backups/x")), (" ", None)] {
            let source = RestoreSource {
                backup_name: Some("nightly".into()),
                backup_path: Some(path.into()),
                ..RestoreSource::default()
            };
            let spec = spec(source, RestoreTarget::default());
            assert_eq!(
                validate_spec(&spec),
                Ok(Source::Backup {
                    name: "nightly",
                    storage_location: None,
                    backup_path: expected,
                })
            );
        }
    }

    #[test]
    fn object_and_type_names() {
        for ok in ["a", "nightly", "nightly.v2", "a-b.c-d", &"a".repeat(253)] {
            assert!(is_valid_object_name(ok), "{ok}");
        }
        for bad in ["", "A", "a_b", "-a", "a-", "a..b", ".a", &"a".repeat(254)] {
            assert!(!is_valid_object_name(bad), "{bad}");
        }
        for ok in [
            "cm",
            "ConfigMap",
            "widgets.example.com",
            "plural.v1beta1.group-x.io",
        ] {
            assert!(could_name_a_type(ok), "{ok}");
        }
        for bad in ["", "  ", "deployments/scale", "config maps", "*"] {
            assert!(!could_name_a_type(bad), "{bad}");
        }
    }
}
