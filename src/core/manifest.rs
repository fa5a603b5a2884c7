//! `manifest.json`: the commit marker of a backup run, shared by the backup and restore engines.
//!
//! The backup writes it last, after every object; a run without one died midway and is never
//! offered for restore. It records what was stored (every object's key, GVK, size and sha256),
//! so a restore can verify each object before applying it.
//!
//! Memory: the backup keeps one [`ManifestEntry`] per object until the end of the run
//! (10k–100k objects). The strings repeated across entries (`apiVersion`, `kind`, `resource`,
//! `namespace`) are `Arc<str>` so the engine shares one allocation per type and namespace, and
//! the checksum is 32 raw bytes; the JSON form is unchanged by this.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::api::BackupSpec;
use crate::core::json_limits;
use crate::core::packed::{Located, PackedIndex};

/// The newest manifest format this build reads. Additive, optional fields keep the version;
/// anything an older reader would misread bumps it.
pub const MANIFEST_FORMAT_VERSION: u32 = PACKED_FORMAT_VERSION;
/// Format of a one-file-per-object run (`spec.format: objects`): older builds read it.
pub const OBJECTS_FORMAT_VERSION: u32 = 1;
/// Format of a packed run (`spec.format: packed`): `objects` is empty and `packed` lists the
/// index; a build that reads only version 1 must refuse it rather than restore nothing.
pub const PACKED_FORMAT_VERSION: u32 = 2;

/// `tool` of manifests written by this build, e.g. `cluster-backup-operator 0.1.0`.
pub const TOOL: &str = concat!("cluster-backup-operator ", env!("CARGO_PKG_VERSION"));

/// `result` of a run where every object was stored.
pub const RESULT_COMPLETED: &str = "Completed";
/// `result` of a restorable run where some objects could not be stored (see `errors`).
pub const RESULT_PARTIALLY_FAILED: &str = "PartiallyFailed";

/// A manifest that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "backup manifest has format version {found}, but {TOOL} reads only versions up to \
         {MANIFEST_FORMAT_VERSION}; upgrade the operator to restore this backup"
    )]
    UnsupportedVersion { found: u32 },
    #[error("backup manifest has invalid format version {found}")]
    InvalidVersion { found: u32 },
    /// More than this process reads (bytes, or JSON values: what parsing would cost).
    #[error("backup manifest is too large to read: {reason}")]
    TooLarge { reason: String },
    #[error("backup manifest is not valid: {source}")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid sha256 {value:?}: expected 64 hexadecimal characters")]
    InvalidDigest {
        value: String,
        #[source]
        source: hex::FromHexError,
    },
    #[error(
        "stored object {key} does not match the manifest: {actual_size} bytes with sha256 \
         {actual_sha256}, expected {expected_size} bytes with sha256 {expected_sha256}"
    )]
    ChecksumMismatch {
        key: String,
        expected_size: u64,
        expected_sha256: Sha256Digest,
        actual_size: u64,
        actual_sha256: Sha256Digest,
    },
}

/// Most namespaces a manifest lists. A manifest is untrusted input, and a list of short strings
/// costs about 14 times its bytes once parsed, so its lists and maps are bounded by count (the
/// objects by the manifest's size: an entry costs about twice its bytes).
pub const MAX_NAMESPACES: usize = 100_000;
/// Most type folders a manifest lists.
pub const MAX_RESOURCE_TYPES: usize = 100_000;
/// Most `counts` entries (namespace and type pairs with objects) a manifest holds.
pub const MAX_COUNTS: usize = 100_000;
/// Most item errors a manifest holds.
pub const MAX_ITEM_ERRORS: usize = 100_000;

/// The commit marker of one backup run (`<run>/manifest.json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format_version: u32,
    /// What wrote it, e.g. `cluster-backup-operator 0.1.0` ([`TOOL`]).
    pub tool: String,
    pub backup: BackupRef,
    /// The Backup's spec at the time of the run, credentials removed ([`redact_spec`]).
    pub spec: RecordedSpec,
    pub cluster: ClusterInfo,
    /// The run path all `objects[].key` are relative to.
    pub backup_path: String,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    /// [`RESULT_COMPLETED`] or [`RESULT_PARTIALLY_FAILED`]; failed runs write no manifest.
    pub result: String,
    /// Namespaces the run covered, sorted.
    #[serde(deserialize_with = "json_limits::vec_at_most::<_, _, MAX_NAMESPACES>")]
    pub namespaces: Vec<String>,
    /// Type folders (`type_dir`) the run covered.
    #[serde(deserialize_with = "json_limits::vec_at_most::<_, _, MAX_RESOURCE_TYPES>")]
    pub resource_types: Vec<String>,
    /// Objects per `<namespace>/<type>` and `cluster/<type>` (as `status.resourceCounts`).
    #[serde(deserialize_with = "json_limits::map_at_most::<_, _, MAX_COUNTS>")]
    pub counts: BTreeMap<String, u64>,
    pub total_objects: u64,
    pub total_bytes: u64,
    /// The index of a packed run ([`crate::core::packed`]); its objects are listed there, not in
    /// `objects` (filled in memory by the reader that needs them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed: Option<PackedIndex>,
    #[serde(default)]
    pub objects: Vec<ManifestEntry>,
    /// Items that could not be read or stored (why the result is PartiallyFailed).
    #[serde(
        default,
        deserialize_with = "json_limits::vec_at_most::<_, _, MAX_ITEM_ERRORS>"
    )]
    pub errors: Vec<ItemError>,
    /// How the run was encrypted, when it was: the key new items were sealed with and what
    /// was sealed. A later run builds on this one only when both are its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionRecord>,
}

/// [`Manifest::encryption`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionRecord {
    pub key_id: String,
    pub scope: crate::api::EncryptionScope,
}

/// The Backup object that produced the run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackupRef {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// The cluster the objects came from.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// `gitVersion` of the API server, e.g. `v1.36.0`.
    pub server_version: String,
    /// `platform` of the API server, e.g. `linux/amd64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// One stored object.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    /// Key relative to the run path (`namespaces/<ns>/<type>/<name>.json`).
    pub key: String,
    #[serde(with = "shared_str")]
    pub api_version: Arc<str>,
    #[serde(with = "shared_str")]
    pub kind: Arc<str>,
    /// The type folder (`type_dir`), e.g. `deployments` or `certificates.cert-manager.io`.
    #[serde(with = "shared_str")]
    pub resource: Arc<str>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "shared_str::option"
    )]
    pub namespace: Option<Arc<str>>,
    pub name: String,
    /// Bytes stored.
    pub size: u64,
    /// Of the stored bytes; hex in JSON.
    pub sha256: Sha256Digest,
    /// Packed runs: where the object is (never in the JSON; read from the run's index).
    #[serde(skip)]
    pub location: Option<Box<Located>>,
}

impl ManifestEntry {
    /// Checks stored bytes against the recorded size and checksum.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), ManifestError> {
        let actual_sha256 = Sha256Digest::of(bytes);
        let actual_size = bytes.len() as u64;
        if actual_size == self.size && actual_sha256 == self.sha256 {
            Ok(())
        } else {
            Err(ManifestError::ChecksumMismatch {
                key: self.key.clone(),
                expected_size: self.size,
                expected_sha256: self.sha256,
                actual_size,
                actual_sha256,
            })
        }
    }
}

/// An object (or a whole list) that could not be backed up.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ItemError {
    /// Type folder (`type_dir`) of the item.
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `None` when a whole list failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub message: String,
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource)?;
        if let Some(ns) = &self.namespace {
            write!(f, " {ns}")?;
            if self.name.is_some() {
                f.write_str("/")?;
            }
        } else if self.name.is_some() {
            f.write_str(" ")?;
        }
        if let Some(name) = &self.name {
            f.write_str(name)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Manifest {
    /// Pretty JSON. Field order is the declaration order and maps are sorted, so equal
    /// manifests give equal bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        serde_json::to_vec_pretty(self).map_err(|source| ManifestError::Json { source })
    }

    /// Reads a manifest, refusing one written in a newer format than this build understands
    /// (even when it happens to parse: its meaning may have changed).
    /// What a reader of this manifest would refuse ([`MAX_NAMESPACES`], ...), so a backup never
    /// writes a manifest no restore reads; `None` when it is within every bound.
    pub fn exceeded_limit(&self) -> Option<String> {
        [
            ("namespaces", self.namespaces.len(), MAX_NAMESPACES),
            (
                "resource types",
                self.resource_types.len(),
                MAX_RESOURCE_TYPES,
            ),
            ("counts", self.counts.len(), MAX_COUNTS),
            ("item errors", self.errors.len(), MAX_ITEM_ERRORS),
        ]
        .into_iter()
        .find(|(_, len, max)| len > max)
        .map(|(what, len, max)| format!("{len} {what}, more than the {max} read"))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        match serde_json::from_slice::<Manifest>(bytes) {
            Ok(m) => {
                check_version(m.format_version)?;
                Ok(m)
            }
            Err(source) => {
                // A newer format may not parse as this one; say so rather than which field
                // is missing.
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Probe {
                    format_version: u32,
                }
                if let Ok(p) = serde_json::from_slice::<Probe>(bytes) {
                    check_version(p.format_version)?;
                }
                Err(ManifestError::Json { source })
            }
        }
    }
}

fn check_version(found: u32) -> Result<(), ManifestError> {
    match found {
        0 => Err(ManifestError::InvalidVersion { found }),
        v if v > MANIFEST_FORMAT_VERSION => Err(ManifestError::UnsupportedVersion { found }),
        _ => Ok(()),
    }
}

/// The Backup spec as recorded in a manifest: inline `storageLocation.accessKey` and
/// `secretKey` are removed; the `credentialsSecret` name (no secret itself) is kept.
/// [`Manifest::spec`]: kept as the raw JSON it was read as. Nothing interprets it, and raw text
/// costs its bytes in memory where parsed values of a crafted manifest would cost many times
/// more.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(transparent)]
pub struct RecordedSpec(Box<serde_json::value::RawValue>);

impl RecordedSpec {
    pub fn new(value: &serde_json::Value) -> RecordedSpec {
        RecordedSpec(
            serde_json::value::to_raw_value(value)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        )
    }

    /// The spec, parsed.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl PartialEq for RecordedSpec {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

pub fn redact_spec(spec: &BackupSpec) -> serde_json::Value {
    let mut spec = spec.clone();
    spec.storage_location.access_key = None;
    spec.storage_location.secret_key = None;
    // Serializing plain structs with string-keyed maps cannot fail; should it ever, record
    // nothing rather than risk recording credentials.
    serde_json::to_value(&spec).unwrap_or_default()
}

/// A SHA-256 digest; lower-case hex in JSON and `Display`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl FromStr for Sha256Digest {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|source| ManifestError::InvalidDigest {
            value: s.to_string(),
            source,
        })?;
        Ok(Sha256Digest(out))
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde for `Arc<str>` without serde's `rc` feature: a plain JSON string.
mod shared_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        Ok(Arc::from(String::deserialize(d)?))
    }

    pub mod option {
        use std::sync::Arc;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_some(&**v),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
            Ok(Option::<String>::deserialize(d)?.map(Arc::from))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BackupSource, StorageLocation, StorageProvider};
    use chrono::TimeZone;

    fn entry(ns: Option<&str>, name: &str, bytes: &[u8]) -> ManifestEntry {
        let ns: Option<Arc<str>> = ns.map(Arc::from);
        ManifestEntry {
            key: match &ns {
                Some(ns) => format!("namespaces/{ns}/configmaps/{name}.json"),
                None => format!("cluster/clusterroles/{name}.json"),
            },
            api_version: Arc::from("v1"),
            kind: Arc::from("ConfigMap"),
            resource: Arc::from("configmaps"),
            namespace: ns,
            name: name.into(),
            size: bytes.len() as u64,
            sha256: Sha256Digest::of(bytes),
            location: None,
        }
    }

    fn spec() -> BackupSpec {
        BackupSpec {
            source: BackupSource {
                namespaces: vec!["prod".into()],
                ..Default::default()
            },
            schedule: Some("0 2 * * *".into()),
            storage_location: StorageLocation {
                provider: Some(StorageProvider::Minio),
                bucket: "k8s-backups".into(),
                endpoint: Some("http://minio:9000".into()),
                access_key: Some("minioadmin".into()),
                secret_key: Some("minio-secret-123".into()),
                credentials_secret: Some("minio-creds".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn manifest() -> Manifest {
        let started = Utc.with_ymd_and_hms(2025, 1, 21, 15, 30, 0).unwrap();
        Manifest {
            format_version: OBJECTS_FORMAT_VERSION,
            tool: TOOL.into(),
            backup: BackupRef {
                namespace: "default".into(),
                name: "cluster-backup".into(),
                uid: Some("0b7e7c1e-0000-4000-8000-000000000001".into()),
            },
            spec: RecordedSpec::new(&redact_spec(&spec())),
            cluster: ClusterInfo {
                server_version: "v1.36.0".into(),
                platform: Some("linux/amd64".into()),
            },
            backup_path: "backups/default/cluster-backup/2025-01-21T15-30-00Z".into(),
            started_at: started,
            completed_at: started + chrono::Duration::seconds(3),
            result: RESULT_PARTIALLY_FAILED.into(),
            namespaces: vec!["prod".into()],
            resource_types: vec!["configmaps".into(), "clusterroles".into()],
            counts: [
                ("prod/configmaps".to_string(), 1),
                ("cluster/clusterroles".to_string(), 1),
            ]
            .into(),
            total_objects: 2,
            total_bytes: 5,
            packed: None,
            objects: vec![
                entry(Some("prod"), "app-config", b"{}"),
                entry(None, "system:aggregate-to-admin", b"{ }"),
            ],
            errors: vec![ItemError {
                resource: "secrets".into(),
                namespace: Some("prod".into()),
                name: Some("big".into()),
                message: "upload failed: timeout".into(),
            }],
            encryption: None,
        }
    }

    #[test]
    fn what_a_reader_refuses_is_refused_by_the_writer_first() {
        let mut m = manifest();
        assert_eq!(m.exceeded_limit(), None);
        m.namespaces = vec!["a".to_string(); MAX_NAMESPACES + 1];
        let why = m.exceeded_limit().unwrap();
        assert!(why.contains("100001 namespaces"), "{why}");
        let err = Manifest::from_bytes(&m.to_bytes().unwrap()).unwrap_err();
        assert!(err.to_string().contains("more than 100000 items"), "{err}");
        m.namespaces.pop();
        assert_eq!(m.exceeded_limit(), None);
        assert_eq!(Manifest::from_bytes(&m.to_bytes().unwrap()).unwrap(), m);
    }

    #[test]
    fn round_trip() {
        let m = manifest();
        let bytes = m.to_bytes().unwrap();
        assert_eq!(Manifest::from_bytes(&bytes).unwrap(), m);
        // Deterministic.
        assert_eq!(m.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn json_shape_is_camel_case_and_hex() {
        let v: serde_json::Value = serde_json::from_slice(&manifest().to_bytes().unwrap()).unwrap();
        assert_eq!(v["formatVersion"], 1);
        assert_eq!(v["startedAt"], "2025-01-21T15:30:00Z");
        assert_eq!(v["backup"]["name"], "cluster-backup");
        assert_eq!(v["cluster"]["serverVersion"], "v1.36.0");
        assert_eq!(v["counts"]["prod/configmaps"], 1);
        let o = &v["objects"][0];
        assert_eq!(o["apiVersion"], "v1");
        assert_eq!(o["namespace"], "prod");
        assert_eq!(o["sha256"], Sha256Digest::of(b"{}").to_string());
        assert!(
            v["objects"][1].get("namespace").is_none(),
            "cluster objects omit namespace"
        );
        assert_eq!(v["errors"][0]["message"], "upload failed: timeout");
        let text = String::from_utf8(manifest().to_bytes().unwrap()).unwrap();
        assert!(
            text.starts_with("{\n  \"formatVersion\": 1,\n  \"tool\": \"cluster-backup-operator ")
        );
    }

    #[test]
    fn newer_format_is_refused() {
        let mut v = serde_json::to_value(manifest()).unwrap();
        v["formatVersion"] = 3.into();
        let err = Manifest::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(
            err,
            ManifestError::UnsupportedVersion { found: 3 }
        ));
        assert!(err.to_string().contains("format version 3"), "{err}");
        assert!(err.to_string().contains("upgrade the operator"), "{err}");

        // A newer format that does not even parse as v1 still gets the version message.
        let v2 = br#"{"formatVersion": 7, "entirely": "different"}"#;
        assert!(matches!(
            Manifest::from_bytes(v2),
            Err(ManifestError::UnsupportedVersion { found: 7 })
        ));
        v["formatVersion"] = 0.into();
        assert!(matches!(
            Manifest::from_bytes(&serde_json::to_vec(&v).unwrap()),
            Err(ManifestError::InvalidVersion { found: 0 })
        ));
    }

    #[test]
    fn broken_manifests_are_json_errors() {
        assert!(matches!(
            Manifest::from_bytes(b"{\"formatVersion\": 1"),
            Err(ManifestError::Json { .. })
        ));
        assert!(matches!(
            Manifest::from_bytes(b"{\"formatVersion\": 1}"),
            Err(ManifestError::Json { .. })
        ));
        let mut v = serde_json::to_value(manifest()).unwrap();
        v["objects"][0]["sha256"] = "abc".into();
        let err = Manifest::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.to_string().contains("sha256"), "{err}");
    }

    #[test]
    fn unknown_fields_of_the_same_version_are_ignored() {
        let mut v = serde_json::to_value(manifest()).unwrap();
        v["addedLater"] = "x".into();
        v["objects"][0]["labels"] = serde_json::json!({});
        assert_eq!(
            Manifest::from_bytes(&serde_json::to_vec(&v).unwrap()).unwrap(),
            manifest()
        );
    }

    #[test]
    fn redaction_removes_inline_keys_only() {
        let v = redact_spec(&spec());
        let loc = &v["storageLocation"];
        assert!(loc.get("accessKey").is_none());
        assert!(loc.get("secretKey").is_none());
        assert_eq!(loc["credentialsSecret"], "minio-creds");
        assert_eq!(loc["bucket"], "k8s-backups");
        assert_eq!(loc["endpoint"], "http://minio:9000");
        assert_eq!(v["schedule"], "0 2 * * *");
        assert_eq!(v["source"]["namespaces"][0], "prod");
        let text = String::from_utf8(manifest().to_bytes().unwrap()).unwrap();
        assert!(!text.contains("minio-secret-123"));
        assert!(!text.contains("minioadmin"));
    }

    #[test]
    fn checksum_of_known_bytes() {
        assert_eq!(
            Sha256Digest::of(b"").to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            Sha256Digest::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let d: Sha256Digest = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
            .parse()
            .unwrap();
        assert_eq!(d, Sha256Digest::of(b"abc"));
        assert!("ba78".parse::<Sha256Digest>().is_err());
    }

    #[test]
    fn entries_verify_stored_bytes() {
        let e = entry(Some("prod"), "c", b"{\"a\":1}");
        assert!(e.verify(b"{\"a\":1}").is_ok());
        let err = e.verify(b"{\"a\":2}").unwrap_err();
        assert!(
            err.to_string()
                .contains("namespaces/prod/configmaps/c.json"),
            "{err}"
        );
        assert!(e.verify(b"").is_err());
    }

    #[test]
    fn item_errors_display() {
        let e = |ns: Option<&str>, name: Option<&str>| ItemError {
            resource: "secrets".into(),
            namespace: ns.map(String::from),
            name: name.map(String::from),
            message: "forbidden".into(),
        };
        assert_eq!(
            e(Some("prod"), Some("s")).to_string(),
            "secrets prod/s: forbidden"
        );
        assert_eq!(e(Some("prod"), None).to_string(), "secrets prod: forbidden");
        assert_eq!(e(None, Some("x")).to_string(), "secrets x: forbidden");
        assert_eq!(e(None, None).to_string(), "secrets: forbidden");
    }

    #[test]
    fn entries_are_compact() {
        // The per-object cost the backup holds until the manifest is written: keep it small.
        assert!(
            std::mem::size_of::<ManifestEntry>() <= 160,
            "{}",
            std::mem::size_of::<ManifestEntry>()
        );
    }
}
