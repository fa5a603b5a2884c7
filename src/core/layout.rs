//! Object keys of a backup in the bucket.
//!
//! ```text
//! backups/<backup-namespace>/<backup-name>/<timestamp>/          ← the run path
//!     namespaces/<namespace>/<type>/<name>.json
//!     cluster/<type>/<name>.json
//!     manifest.json                                              ← written last
//! ```
//!
//! The Backup's namespace and name make runs unique per Backup, so two Backups never write to
//! the same place. `<timestamp>` is UTC `YYYY-MM-DDTHH-MM-SSZ`. `<type>` is
//! [`type_dir`]. The storage location's `prefix` is added by the storage layer, not here.
//!
//! # Escaping
//!
//! `object_store::path::Path::from(&str)` percent-encodes, per segment, ASCII control
//! characters and `\ { ^ } % ` ] " > [ ~ < # | * ?`, every non-ASCII byte, and whole segments
//! `.`/`..`. A key containing any of them would be stored under a different name than the one
//! the manifest records. Kubernetes names of most kinds are DNS subdomains (`[a-z0-9.-]`) and
//! are never touched, and neither is `:` (RBAC names such as `system:aggregate-to-admin`);
//! but "path segment" names (RBAC, among others) may contain almost anything except `/` and
//! `%`. So every segment is escaped here: bytes other than ASCII letters, digits and
//! `- . _ : @ + = ,` become `!XX` (upper-case hex of the UTF-8 byte; `!` itself is `!21`).
//! The result is a fixed point of `Path::from`, and [`parse_object_key`] reverses it.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::types::DiscoveredResource;

/// Top-level folder of all backups.
pub const BACKUPS_DIR: &str = "backups";
/// Namespaced objects live under `<run>/namespaces/`.
pub const NAMESPACES_DIR: &str = "namespaces";
/// Cluster-scoped objects live under `<run>/cluster/` (also the `resourceCounts` prefix).
pub const CLUSTER_DIR: &str = "cluster";
/// The commit marker of a run; see [`crate::core::manifest`].
pub const MANIFEST_FILE: &str = "manifest.json";
const OBJECT_SUFFIX: &str = ".json";
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H-%M-%SZ";
/// Run folders without a zone suffix (`2025-01-21T15-30-00`), accepted when reading.
const LEGACY_TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H-%M-%S";
const ESCAPE: u8 = b'!';

/// The folder of one resource type ([`crate::core::types::type_dir`]): the plural for
/// built-in groups (`deployments`), `plural.group` for everything else.
pub fn type_dir(res: &DiscoveredResource) -> String {
    res.type_dir()
}

/// `backups/<backup-namespace>/<backup-name>`: the parent of every run of one Backup
/// (list it to find runs for retention or restore).
pub fn backup_prefix(backup_ns: &str, backup_name: &str) -> String {
    format!(
        "{BACKUPS_DIR}/{}/{}",
        escape_segment(backup_ns),
        escape_segment(backup_name)
    )
}

/// `backups/<backup-namespace>/<backup-name>/<YYYY-MM-DDTHH-MM-SSZ>`.
pub fn run_path(backup_ns: &str, backup_name: &str, started: DateTime<Utc>) -> String {
    format!(
        "{}/{}",
        backup_prefix(backup_ns, backup_name),
        run_timestamp(started)
    )
}

/// The Backup (namespace, name) a run path (`backups/<ns>/<name>/<time>`, [`run_path`]) belongs
/// to; `None` for any other shape (untrusted input: a Restore's `backupPath`).
pub fn run_path_backup(path: &str) -> Option<(String, String)> {
    let mut parts = path.split('/');
    let (top, ns, name, time) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if top != BACKUPS_DIR || parts.next().is_some() || parse_run_timestamp(time).is_none() {
        return None;
    }
    let ns = unescape_segment(ns)?;
    let name = unescape_segment(name)?;
    let valid = crate::core::names::is_dns1123_label(&ns)
        && crate::core::names::is_dns1123_subdomain(&name);
    valid.then_some((ns, name))
}

/// The run folder name for a start time (second resolution, UTC).
pub fn run_timestamp(started: DateTime<Utc>) -> String {
    started.format(TIMESTAMP_FORMAT).to_string()
}

/// The start time encoded in a run folder: its name (`2025-01-21T15-30-00Z`) or a path
/// ending in it. Also reads a zone-less `2025-01-21T15-30-00` as UTC.
pub fn parse_run_timestamp(dir: &str) -> Option<DateTime<Utc>> {
    let last = dir.trim_end_matches('/').rsplit('/').next()?;
    NaiveDateTime::parse_from_str(last, TIMESTAMP_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(last, LEGACY_TIMESTAMP_FORMAT))
        .ok()
        .map(|t| t.and_utc())
}

/// Key of a stored object relative to the run path — what the manifest records:
/// `namespaces/<ns>/<type>/<name>.json` or `cluster/<type>/<name>.json`.
pub fn relative_object_key(namespace: Option<&str>, type_dir: &str, name: &str) -> String {
    let type_dir = escape_segment(type_dir);
    let name = escape_segment(name);
    match namespace {
        Some(ns) => format!(
            "{NAMESPACES_DIR}/{}/{type_dir}/{name}{OBJECT_SUFFIX}",
            escape_segment(ns)
        ),
        None => format!("{CLUSTER_DIR}/{type_dir}/{name}{OBJECT_SUFFIX}"),
    }
}

/// Full key of a stored object: `<run>/` + [`relative_object_key`].
pub fn object_key(run: &str, namespace: Option<&str>, type_dir: &str, name: &str) -> String {
    join(run, &relative_object_key(namespace, type_dir, name))
}

/// `<run>/manifest.json`.
pub fn manifest_key(run: &str) -> String {
    join(run, MANIFEST_FILE)
}

/// The `status.resourceCounts` / manifest `counts` key: `<ns>/<type>` or `cluster/<type>`
/// (not escaped, it is no storage key).
pub fn count_key(namespace: Option<&str>, type_dir: &str) -> String {
    format!("{}/{type_dir}", namespace.unwrap_or(CLUSTER_DIR))
}

/// The parts of an object key, unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKeyParts {
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub type_dir: String,
    pub name: String,
}

/// Splits a key written by [`object_key`] for `run` (or, with `run` empty, a key relative to
/// the run as the manifest records it). `None` for anything else, e.g. the manifest itself or
/// a key of another run.
pub fn parse_object_key(run: &str, key: &str) -> Option<ObjectKeyParts> {
    let run = run.trim_end_matches('/');
    let rel = if run.is_empty() {
        key
    } else {
        key.strip_prefix(run)?.strip_prefix('/')?
    };
    let segments: Vec<&str> = rel.split('/').collect();
    let (namespace, type_dir, file) = match segments.as_slice() {
        [NAMESPACES_DIR, ns, t, file] => (Some(unescape_segment(ns)?), *t, *file),
        [CLUSTER_DIR, t, file] => (None, *t, *file),
        _ => return None,
    };
    let name = file.strip_suffix(OBJECT_SUFFIX)?;
    Some(ObjectKeyParts {
        namespace,
        type_dir: unescape_segment(type_dir)?,
        name: unescape_segment(name).filter(|n| !n.is_empty())?,
    })
}

fn join(run: &str, rel: &str) -> String {
    let run = run.trim_end_matches('/');
    if run.is_empty() {
        rel.to_string()
    } else {
        format!("{run}/{rel}")
    }
}

fn is_kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'@' | b'+' | b'=' | b',')
}

/// Makes one key segment safe (see the module docs). Identity for DNS names and `a:b`.
pub fn escape_segment(s: &str) -> String {
    // `.` and `..` would be path traversal; object_store refuses them as segments.
    if s == "." || s == ".." {
        return "!2E".repeat(s.len());
    }
    if s.bytes().all(is_kept) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if is_kept(b) {
            out.push(char::from(b));
        } else {
            out.push(char::from(ESCAPE));
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// Reverses [`escape_segment`]; `None` for a malformed escape or invalid UTF-8.
pub fn unescape_segment(s: &str) -> Option<String> {
    if !s.as_bytes().contains(&ESCAPE) {
        return Some(s.to_string());
    }
    let mut bytes = Vec::with_capacity(s.len());
    let mut it = s.bytes();
    while let Some(b) = it.next() {
        if b == ESCAPE {
            let hi = char::from(it.next()?).to_digit(16)?;
            let lo = char::from(it.next()?).to_digit(16)?;
            bytes.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_paths_name_their_backup_and_nothing_else_does() {
        let at = Utc.with_ymd_and_hms(2025, 1, 21, 10, 30, 0).unwrap();
        assert_eq!(
            run_path_backup(&run_path("team-a", "nightly", at)),
            Some(("team-a".into(), "nightly".into()))
        );
        for path in [
            "backups/team-a/nightly",
            "backups/team-a/nightly/2025-01-21T10-30-00Z/extra",
            "backups/team-a/../team-b/2025-01-21T10-30-00Z",
            "backups/Team-A/nightly/2025-01-21T10-30-00Z",
            "other/team-a/nightly/2025-01-21T10-30-00Z",
            "backups/team-a/nightly/yesterday",
            "/backups/team-a/nightly/2025-01-21T10-30-00Z",
            "",
        ] {
            assert_eq!(run_path_backup(path), None, "{path}");
        }
    }
    use crate::core::types::tests::res;
    use chrono::TimeZone;
    use object_store::path::Path;

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 21, 15, 30, 0).unwrap()
    }

    #[test]
    fn run_path_is_unique_per_backup() {
        assert_eq!(
            run_path("default", "cluster-backup", t()),
            "backups/default/cluster-backup/2025-01-21T15-30-00Z"
        );
        assert_ne!(
            run_path("team-a", "nightly", t()),
            run_path("team-b", "nightly", t())
        );
        assert_eq!(backup_prefix("default", "x"), "backups/default/x");
    }

    #[test]
    fn timestamps_round_trip() {
        let run = run_path("default", "b", t());
        assert_eq!(parse_run_timestamp(&run), Some(t()));
        assert_eq!(parse_run_timestamp(&format!("{run}/")), Some(t()));
        assert_eq!(parse_run_timestamp("2025-01-21T15-30-00Z"), Some(t()));
        assert_eq!(parse_run_timestamp("2025-01-21T15-30-00"), Some(t()));
        assert_eq!(parse_run_timestamp("2025-01-XX"), None);
        assert_eq!(parse_run_timestamp("manifest.json"), None);
        assert_eq!(parse_run_timestamp(""), None);
        // Sub-second precision is dropped: one run per second per Backup.
        let ms = t() + chrono::Duration::milliseconds(999);
        assert_eq!(run_timestamp(ms), "2025-01-21T15-30-00Z");
    }

    #[test]
    fn timestamps_sort_chronologically_as_strings() {
        let a = run_timestamp(Utc.with_ymd_and_hms(2025, 1, 9, 23, 59, 59).unwrap());
        let b = run_timestamp(Utc.with_ymd_and_hms(2025, 1, 10, 0, 0, 0).unwrap());
        assert!(a < b);
    }

    #[test]
    fn keys_follow_the_layout() {
        let run = "backups/default/cluster-backup/2025-01-21T15-30-00Z";
        assert_eq!(
            object_key(run, Some("production"), "deployments", "app1"),
            format!("{run}/namespaces/production/deployments/app1.json")
        );
        assert_eq!(
            object_key(run, None, "clusterroles", "admin-role"),
            format!("{run}/cluster/clusterroles/admin-role.json")
        );
        assert_eq!(manifest_key(run), format!("{run}/manifest.json"));
        assert_eq!(
            manifest_key(&format!("{run}/")),
            format!("{run}/manifest.json")
        );
        assert_eq!(
            relative_object_key(Some("p"), "configmaps", "c"),
            "namespaces/p/configmaps/c.json"
        );
        assert_eq!(object_key("", None, "x", "y"), "cluster/x/y.json");
    }

    #[test]
    fn count_keys_match_resource_counts() {
        assert_eq!(
            count_key(Some("default"), "deployments"),
            "default/deployments"
        );
        assert_eq!(count_key(None, "clusterroles"), "cluster/clusterroles");
    }

    #[test]
    fn type_dirs() {
        let deploy = res("apps", "v1", "Deployment", "deployments", &[], true);
        let cm = res("", "v1", "ConfigMap", "configmaps", &[], true);
        let cert = res(
            "cert-manager.io",
            "v1",
            "Certificate",
            "certificates",
            &[],
            true,
        );
        let snap = res(
            "snapshot.storage.k8s.io",
            "v1",
            "VolumeSnapshot",
            "volumesnapshots",
            &[],
            true,
        );
        assert_eq!(type_dir(&deploy), "deployments");
        assert_eq!(type_dir(&cm), "configmaps");
        assert_eq!(type_dir(&cert), "certificates.cert-manager.io");
        assert_eq!(type_dir(&snap), "volumesnapshots.snapshot.storage.k8s.io");
    }

    /// Names Kubernetes accepts for path-segment-validated kinds such as ClusterRoles.
    const AWKWARD_NAMES: [&str; 14] = [
        "system:aggregate-to-admin",
        "system:controller:ttl-after-finished-controller",
        "my.config.v2",
        "a..b",
        "user@example.com",
        "with space",
        "percent%41",
        "bang!21",
        "tilde~[x]{y}^|`\"<>#*?\\",
        "ünïcødé-名前",
        "tab\there",
        "...",
        "-",
        "name.json",
    ];

    #[test]
    fn keys_are_stored_verbatim_by_object_store() {
        let run = run_path("default", "b", t());
        for name in AWKWARD_NAMES {
            for ns in [Some("prod"), None] {
                let key = object_key(&run, ns, "clusterroles", name);
                assert_eq!(Path::from(key.as_str()).as_ref(), key, "{name:?}");
                assert_eq!(Path::parse(&key).map(String::from).ok(), Some(key.clone()));
            }
        }
    }

    #[test]
    fn keys_round_trip_every_name() {
        let run = run_path("default", "b", t());
        for name in AWKWARD_NAMES {
            for ns in [Some("prod"), None] {
                let key = object_key(&run, ns, "widgets.acme.io", name);
                let parts = parse_object_key(&run, &key).unwrap();
                assert_eq!(
                    parts,
                    ObjectKeyParts {
                        namespace: ns.map(String::from),
                        type_dir: "widgets.acme.io".into(),
                        name: name.into(),
                    },
                    "{key}"
                );
                let rel = relative_object_key(ns, "widgets.acme.io", name);
                assert_eq!(parse_object_key("", &rel), Some(parts));
            }
        }
    }

    #[test]
    fn plain_names_are_not_escaped() {
        for name in [
            "system:aggregate-to-admin",
            "my.config.v2",
            "app-1",
            "user@x.io",
        ] {
            assert_eq!(escape_segment(name), name);
        }
        assert_eq!(escape_segment("a b"), "a!20b");
        assert_eq!(escape_segment("!"), "!21");
        assert_eq!(escape_segment("."), "!2E");
        assert_eq!(escape_segment(".."), "!2E!2E");
        assert_eq!(unescape_segment("!2E!2E").as_deref(), Some(".."));
    }

    #[test]
    fn foreign_keys_are_not_parsed() {
        let run = run_path("default", "b", t());
        for key in [
            manifest_key(&run),
            format!("{run}/namespaces/prod/deployments/app.yaml"),
            format!("{run}/namespaces/prod/app.json"),
            format!("{run}/cluster/x/y/z.json"),
            format!("{run}/cluster/x/.json"),
            format!("{run}/cluster/x/bad!zz.json"),
            format!("{run}/cluster/x/bad!F.json"),
            format!("{run}/cluster/x/bad!FF.json"),
            format!("{run}-other/cluster/x/y.json"),
            object_key(&run_path("default", "other", t()), None, "x", "y"),
        ] {
            assert_eq!(parse_object_key(&run, &key), None, "{key}");
        }
    }
}
