//! The packed format (`spec.format: packed`), pure parts: keys, index documents, and how a
//! run's index is built from the previous run's.
//!
//! ```text
//! backups/<backup-namespace>/<backup-name>/
//!     <timestamp>/manifest.json                 ← the run; written last, lists its index
//!     data/packs/<timestamp>-<seq>.pack         ← objects: one zstd frame of compact JSON each
//!     data/index/<sha256>.json.zst              ← index documents, named by content
//! ```
//!
//! A pack is a concatenation of zstd frames, one per object, so any single object is one
//! ranged GET (`offset`, `length`) and one bounded decompression. Packs and index documents
//! live beside the runs of their Backup and are shared by its runs; a Backup never references
//! another Backup's data (so retention, tenancy and restores stay per Backup).
//!
//! **Index.** A run's manifest lists its index: a *base* (one or more *segment* documents per
//! `(namespace, type)`, each the full list of that key's objects with their pack, offset,
//! length, size and sha256) and the *deltas* written since the base (each lists, per key, the
//! objects put and the names removed, or the whole key dropped). A run's objects are the base
//! with its deltas applied in order ([`IndexState`]). Every run restores on its own: its
//! manifest names every document it needs.
//!
//! **Incremental.** A run reads the previous run's index one key at a time ([`OpenSegment`]):
//! an object whose sha256 is unchanged keeps its old location, only new or changed objects go
//! into this run's packs. A run writes a delta (changes only: an unchanged cluster uploads the
//! manifest and nothing else) until [`MAX_DELTAS`] deltas or a quarter of the objects in them
//! make it write a full base again ([`IndexMode::for_previous`]); segments whose content did
//! not change are not uploaded again (same content, same name).
//!
//! **Listed fingerprints.** Each entry also records a [`Fingerprint`] of the object exactly as the
//! API server listed it. The stored bytes are a function of those listed bytes, so a later run
//! that lists the same bytes again references the entry without decoding, serializing or
//! hashing the object: an unchanged re-run costs little more than the listing itself.
//!
//! Memory: the previous state of one key at a time, the previous run's deltas (bounded by the
//! compaction rule), one open pack and the changes of this run in parts of
//! [`DELTA_PART_ENTRIES`]. Nothing grows with the total object count.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use super::layout;
use super::manifest::Sha256Digest;

/// Folder of the data shared by a Backup's packed runs (beside its run folders).
pub const DATA_DIR: &str = "data";
const PACKS_DIR: &str = "packs";
const INDEX_DIR: &str = "index";
const PACK_SUFFIX: &str = ".pack";
const INDEX_SUFFIX: &str = ".json.zst";
/// A pack is closed and uploaded once it holds this many (compressed) bytes: large enough that
/// a 100k-object backup is a few dozen PUTs, small enough that the open pack and the uploads
/// in flight stay a small part of the operator's memory.
pub const PACK_TARGET_BYTES: usize = 4 << 20;
/// Objects per segment document (a key with more is split into parts).
pub const SEGMENT_PART_ENTRIES: usize = 10_000;
/// Changes per delta document (a run with more writes several).
pub const DELTA_PART_ENTRIES: usize = 10_000;
/// Deltas after which a run writes a full base again.
pub const MAX_DELTAS: usize = 16;
/// Largest index document read back, decompressed (untrusted input).
pub const MAX_INDEX_DOC_BYTES: u64 = 64 << 20;
/// Most JSON values an index document read back may hold (about 70 MiB once parsed, at most);
/// a document holds about [`SEGMENT_PART_ENTRIES`] objects or [`DELTA_PART_ENTRIES`] changes
/// of about ten values each.
pub const MAX_INDEX_DOC_VALUES: u64 = 1 << 20;
/// zstd level for objects and index documents (zstd's default: fast, about 3× on JSON).
pub const ZSTD_LEVEL: i32 = 3;
/// Longest pack name accepted from a bucket.
const MAX_PACK_NAME: usize = 64;

/// `spec.format` of a run, as recorded in its manifest.
pub const FORMAT_PACKED: &str = "packed";

/// `backups/<ns>/<name>/data`.
pub fn data_dir(backup_ns: &str, backup_name: &str) -> String {
    format!(
        "{}/{DATA_DIR}",
        layout::backup_prefix(backup_ns, backup_name)
    )
}

/// `<data>/packs/`, the folder retention lists.
pub fn packs_dir(data_dir: &str) -> String {
    format!("{data_dir}/{PACKS_DIR}")
}

/// `<data>/index/`, the folder retention lists.
pub fn index_dir(data_dir: &str) -> String {
    format!("{data_dir}/{INDEX_DIR}")
}

/// Key of a pack.
pub fn pack_key(data_dir: &str, pack: &str) -> String {
    format!("{data_dir}/{PACKS_DIR}/{pack}{PACK_SUFFIX}")
}

/// Key of an index document.
pub fn index_key(data_dir: &str, id: &Sha256Digest) -> String {
    format!("{data_dir}/{INDEX_DIR}/{id}{INDEX_SUFFIX}")
}

/// The pack name of a key under `<data>/packs/` ([`pack_key`]), `None` for anything else.
pub fn pack_of_key(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?.strip_suffix(PACK_SUFFIX)?;
    is_pack_name(name).then_some(name)
}

/// The index document id of a key under `<data>/index/` ([`index_key`]).
pub fn index_of_key(key: &str) -> Option<Sha256Digest> {
    key.rsplit('/')
        .next()?
        .strip_suffix(INDEX_SUFFIX)?
        .parse()
        .ok()
}

/// Name of the `seq`-th pack of the run started at `started`: unique per run, sorts by time.
pub fn pack_name(started: DateTime<Utc>, seq: u32) -> String {
    format!("{}-{seq:05}", layout::run_timestamp(started))
}

/// A pack name from a bucket is only used when it cannot leave the packs folder.
pub fn is_pack_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PACK_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The index of a packed run, in its manifest.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PackedIndex {
    /// The base: segment documents, together every object of the run that wrote them.
    pub segments: Vec<SegmentRef>,
    /// Delta documents written since the base, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deltas: Vec<DeltaRef>,
}

impl PackedIndex {
    /// Changes recorded in the deltas.
    pub fn delta_entries(&self) -> u64 {
        self.deltas.iter().map(|d| d.changes).sum()
    }
}

/// One segment document of the base.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The type folder, as in the manifest's entries.
    pub resource: String,
    pub id: Sha256Digest,
    pub objects: u64,
}

impl SegmentRef {
    pub fn key(&self) -> SegmentKey {
        SegmentKey {
            namespace: self.namespace.clone(),
            resource: self.resource.clone(),
        }
    }
}

/// One delta document.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeltaRef {
    pub id: Sha256Digest,
    /// Objects put, names removed and keys dropped.
    pub changes: u64,
}

/// A `(namespace, type)` of the index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentKey {
    pub namespace: Option<String>,
    pub resource: String,
}

/// Where one object is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub sha256: Sha256Digest,
    /// Bytes of the object (decompressed).
    pub size: u64,
    pub pack: Arc<str>,
    /// Of its zstd frame in the pack.
    pub offset: u64,
    pub length: u64,
    /// Of the object as listed (`None` in indexes written before fingerprints).
    pub listed: Option<Fingerprint>,
}

/// The first 128 bits of a SHA-256 over the listed bytes of an object, its apiVersion and kind,
/// and this operator's version and [`LISTED_FORMAT`] (which decide how listed bytes become
/// stored bytes). Equal
/// fingerprints mean equal stored bytes: a run reuses an entry on a fingerprint match alone.
/// 128 bits keep an index small; finding a second object with a given fingerprint is a 2^128
/// search.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fingerprint(pub [u8; 16]);

/// How listed bytes become stored bytes (decoded as a `DynamicObject`, apiVersion and kind set,
/// compact JSON): part of every fingerprint. Change it whenever that changes (another
/// serializer, a dependency that decodes or encodes objects differently), so no run reuses
/// bytes stored the old way.
const LISTED_FORMAT: &str = "listed-to-stored v1";

impl Fingerprint {
    pub fn of_listed(api_version: &str, kind: &str, listed: &[u8]) -> Fingerprint {
        let mut hasher = Sha256::new();
        for part in [
            LISTED_FORMAT.as_bytes(),
            concat!("cluster-backup-operator ", env!("CARGO_PKG_VERSION")).as_bytes(),
            api_version.as_bytes(),
            kind.as_bytes(),
        ] {
            // Length-prefixed, so no two (apiVersion, kind, bytes) hash the same input.
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        hasher.update(listed);
        let digest: [u8; 32] = hasher.finalize().into();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        Fingerprint(out)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut out = [0u8; 16];
        hex::decode_to_slice(s.as_bytes(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(Fingerprint(out))
    }
}

/// An object in an index document; `pack` indexes the document's `packs`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    pub name: String,
    pub size: u64,
    pub sha256: Sha256Digest,
    pub pack: u32,
    pub offset: u64,
    pub length: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed: Option<Fingerprint>,
}

/// A segment document: objects of one key.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SegmentDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub resource: String,
    pub api_version: String,
    pub kind: String,
    pub packs: Vec<String>,
    pub objects: Vec<IndexEntry>,
}

/// A delta document: what changed since the previous run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeltaDoc {
    pub changes: Vec<SegmentChange>,
}

/// Changes of one key. Applied in this order: `dropped`, `removed`, `put`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SegmentChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub resource: String,
    pub api_version: String,
    pub kind: String,
    /// The whole key is gone (not backed up by this run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dropped: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub put: Vec<IndexEntry>,
}

impl SegmentChange {
    fn count(&self) -> u64 {
        (self.put.len() + self.removed.len() + usize::from(self.dropped)) as u64
    }
}

/// An index document that cannot be used (the bucket is untrusted).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("index document {id}: {problem}")]
    Invalid { id: Sha256Digest, problem: String },
}

/// The objects of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyState {
    pub api_version: Arc<str>,
    pub kind: Arc<str>,
    pub objects: BTreeMap<String, Located>,
}

/// A run's objects: its base with its deltas applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexState {
    pub keys: BTreeMap<SegmentKey, KeyState>,
}

impl IndexState {
    /// Adds a segment document of the base (several of one key add up).
    pub fn apply_segment(&mut self, id: Sha256Digest, doc: SegmentDoc) -> Result<(), IndexError> {
        let packs = check_packs(id, &doc.packs)?;
        let key = SegmentKey {
            namespace: doc.namespace,
            resource: doc.resource,
        };
        let state = self.keys.entry(key).or_default();
        state.api_version = Arc::from(doc.api_version);
        state.kind = Arc::from(doc.kind);
        for entry in doc.objects {
            let located = locate(id, &packs, &entry)?;
            state.objects.insert(entry.name, located);
        }
        Ok(())
    }

    /// Applies a delta document.
    pub fn apply_delta(&mut self, id: Sha256Digest, doc: DeltaDoc) -> Result<(), IndexError> {
        for change in doc.changes {
            let key = SegmentKey {
                namespace: change.namespace,
                resource: change.resource,
            };
            if change.dropped {
                self.keys.remove(&key);
            }
            let packs = check_packs(id, &change.packs)?;
            let state = self.keys.entry(key.clone()).or_default();
            for name in &change.removed {
                state.objects.remove(name);
            }
            if !change.put.is_empty() {
                state.api_version = Arc::from(change.api_version);
                state.kind = Arc::from(change.kind);
            }
            for entry in change.put {
                let located = locate(id, &packs, &entry)?;
                state.objects.insert(entry.name, located);
            }
            if state.objects.is_empty() {
                self.keys.remove(&key);
            }
        }
        Ok(())
    }

    pub fn objects(&self) -> u64 {
        self.keys.values().map(|k| k.objects.len() as u64).sum()
    }
}

fn check_packs(id: Sha256Digest, packs: &[String]) -> Result<Vec<Arc<str>>, IndexError> {
    packs
        .iter()
        .map(|p| {
            if is_pack_name(p) {
                Ok(Arc::from(p.as_str()))
            } else {
                Err(IndexError::Invalid {
                    id,
                    problem: format!("invalid pack name {p:?}"),
                })
            }
        })
        .collect()
}

fn locate(id: Sha256Digest, packs: &[Arc<str>], entry: &IndexEntry) -> Result<Located, IndexError> {
    let pack = packs
        .get(entry.pack as usize)
        .ok_or_else(|| IndexError::Invalid {
            id,
            problem: format!(
                "object {:?} names pack #{} of {}",
                entry.name,
                entry.pack,
                packs.len()
            ),
        })?;
    if entry.offset.checked_add(entry.length).is_none() || entry.length == 0 {
        return Err(IndexError::Invalid {
            id,
            problem: format!(
                "object {:?} has an invalid range {}+{}",
                entry.name, entry.offset, entry.length
            ),
        });
    }
    Ok(Located {
        sha256: entry.sha256,
        size: entry.size,
        pack: pack.clone(),
        offset: entry.offset,
        length: entry.length,
        listed: entry.listed,
    })
}

/// Whether a run writes a full base or a delta on top of the previous run's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMode {
    Full,
    Delta,
}

impl IndexMode {
    /// A full base when there is no previous packed run, after [`MAX_DELTAS`] deltas, or once
    /// the deltas hold changes for more than a quarter of the objects (reading them would cost
    /// more than a base).
    pub fn for_previous(previous: Option<(&PackedIndex, u64)>) -> IndexMode {
        match previous {
            Some((index, objects))
                if index.deltas.len() < MAX_DELTAS
                    && index.delta_entries().saturating_mul(4) <= objects.max(1000) =>
            {
                IndexMode::Delta
            }
            _ => IndexMode::Full,
        }
    }
}

/// What a run does with one object it listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Stored by an earlier run with the same content: reference it.
    Unchanged(Located),
    /// New or changed: store it.
    Store,
}

/// The key being written by a run, against the previous run's objects of that key.
#[derive(Debug)]
pub struct OpenSegment {
    pub key: SegmentKey,
    pub api_version: Arc<str>,
    pub kind: Arc<str>,
    mode: IndexMode,
    /// Previous objects not seen yet by this run.
    previous: HashMap<String, Located>,
    /// The key was written before in this run (its list was not grouped by namespace): every
    /// object is put again and nothing is removed, so the earlier part stays valid.
    reopened: bool,
    /// Delta mode, the previous objects of this key could not be read: the key is dropped
    /// first (in the first part written) and every object put again.
    replace: bool,
    /// Whether a part of this key was written already.
    emitted: bool,
    /// This run's objects (full mode) or its new and changed ones (delta mode), not yet in a
    /// part.
    written: Vec<(String, Located)>,
}

/// One document's worth of a key: a segment document (full mode) or a change (delta mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Segment(SegmentDoc),
    Change(SegmentChange),
}

impl OpenSegment {
    pub fn new(
        key: SegmentKey,
        api_version: Arc<str>,
        kind: Arc<str>,
        mode: IndexMode,
        previous: HashMap<String, Located>,
        reopened: bool,
    ) -> OpenSegment {
        OpenSegment {
            key,
            api_version,
            kind,
            mode,
            previous,
            reopened,
            replace: false,
            emitted: false,
            written: Vec::new(),
        }
    }

    /// The previous objects of this key are unknown (their index document cannot be read):
    /// nothing is reused, and in delta mode the key is replaced as a whole, so no object the
    /// previous run had and this one does not can survive.
    pub fn replacing(mut self) -> OpenSegment {
        self.previous.clear();
        self.replace = !self.reopened;
        self
    }

    /// The previous run's entry of an object if it had the same content (without taking it).
    pub fn unchanged(&self, name: &str, sha256: &Sha256Digest, size: u64) -> Option<&Located> {
        self.previous
            .get(name)
            .filter(|prev| prev.sha256 == *sha256 && prev.size == size)
    }

    /// Looks an object up in the previous run: unchanged objects are referenced, not stored.
    pub fn seen(&mut self, name: &str, sha256: &Sha256Digest, size: u64) -> Seen {
        match self.previous.remove(name) {
            Some(prev) if prev.sha256 == *sha256 && prev.size == size => Seen::Unchanged(prev),
            _ => Seen::Store,
        }
    }

    /// Records where an object of this run is. `unchanged`: its entry is the previous run's
    /// as it was ([`Seen::Unchanged`] with the same listed fingerprint), so a delta leaves it out;
    /// a reused object whose fingerprint changed (an index written before fingerprints, another
    /// operator version) is put again with the new one.
    pub fn record(&mut self, name: String, located: Located, unchanged: bool) {
        let keep = match self.mode {
            IndexMode::Full => true,
            IndexMode::Delta => !unchanged || self.reopened || self.replace,
        };
        if keep {
            self.written.push((name, located));
        }
    }

    /// A full part to write now, so a key of any size is held in parts of
    /// [`SEGMENT_PART_ENTRIES`] / [`DELTA_PART_ENTRIES`] (full parts follow list order, so an
    /// unchanged key gives the same documents again).
    pub fn take_part(&mut self) -> Option<Part> {
        let limit = self.limit();
        if self.written.len() < limit {
            return None;
        }
        let rest = self.written.split_off(limit);
        let part = std::mem::replace(&mut self.written, rest);
        Some(self.part(part, Vec::new()))
    }

    /// Every part still to write, once all objects of the key were seen (in delta mode, with
    /// the names the previous run had and this one does not).
    pub fn close(mut self) -> Vec<Part> {
        let limit = self.limit();
        let mut removed: Vec<String> = if self.mode == IndexMode::Delta && !self.reopened {
            std::mem::take(&mut self.previous).into_keys().collect()
        } else {
            Vec::new()
        };
        removed.sort();
        let written = std::mem::take(&mut self.written);
        let mut parts = Vec::new();
        for chunk in removed.chunks(limit) {
            parts.push(self.part(Vec::new(), chunk.to_vec()));
        }
        for chunk in written.chunks(limit) {
            parts.push(self.part(chunk.to_vec(), Vec::new()));
        }
        if parts.is_empty() && self.mode == IndexMode::Delta && self.replace && !self.emitted {
            // Nothing of the key is left: the drop alone.
            parts.push(self.part(Vec::new(), Vec::new()));
        }
        parts
    }

    fn limit(&self) -> usize {
        match self.mode {
            IndexMode::Full => SEGMENT_PART_ENTRIES,
            IndexMode::Delta => DELTA_PART_ENTRIES,
        }
    }

    fn part(&mut self, mut objects: Vec<(String, Located)>, removed: Vec<String>) -> Part {
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        let (packs, entries) = index_entries(&objects);
        let first = !self.emitted;
        self.emitted = true;
        match self.mode {
            IndexMode::Full => Part::Segment(SegmentDoc {
                namespace: self.key.namespace.clone(),
                resource: self.key.resource.clone(),
                api_version: self.api_version.to_string(),
                kind: self.kind.to_string(),
                packs,
                objects: entries,
            }),
            IndexMode::Delta => Part::Change(SegmentChange {
                namespace: self.key.namespace.clone(),
                resource: self.key.resource.clone(),
                api_version: self.api_version.to_string(),
                kind: self.kind.to_string(),
                dropped: self.replace && first,
                removed,
                packs,
                put: entries,
            }),
        }
    }
}

/// A change dropping a whole key (delta mode: the previous run had it, this one did not).
/// Its type is not needed to drop a key (nothing is put), so it is left empty.
pub fn dropped(key: &SegmentKey) -> SegmentChange {
    SegmentChange {
        namespace: key.namespace.clone(),
        resource: key.resource.clone(),
        api_version: String::new(),
        kind: String::new(),
        dropped: true,
        removed: Vec::new(),
        packs: Vec::new(),
        put: Vec::new(),
    }
}

/// Changes of a delta document.
pub fn delta_changes(doc: &DeltaDoc) -> u64 {
    doc.changes.iter().map(SegmentChange::count).sum()
}

/// The pack table and entries of some objects.
fn index_entries(objects: &[(String, Located)]) -> (Vec<String>, Vec<IndexEntry>) {
    let mut packs: Vec<String> = Vec::new();
    let mut numbers: HashMap<&str, u32> = HashMap::new();
    let mut entries = Vec::with_capacity(objects.len());
    for (name, located) in objects {
        let number = *numbers.entry(&located.pack).or_insert_with(|| {
            packs.push(located.pack.to_string());
            (packs.len() - 1) as u32
        });
        entries.push(IndexEntry {
            name: name.clone(),
            size: located.size,
            sha256: located.sha256,
            pack: number,
            offset: located.offset,
            length: located.length,
            listed: located.listed,
        });
    }
    (packs, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(pack: &str, offset: u64, content: &str) -> Located {
        Located {
            sha256: Sha256Digest::of(content.as_bytes()),
            size: content.len() as u64,
            pack: Arc::from(pack),
            offset,
            length: 10,
            listed: None,
        }
    }

    fn key(ns: &str) -> SegmentKey {
        SegmentKey {
            namespace: Some(ns.to_string()),
            resource: "configmaps".to_string(),
        }
    }

    fn open(mode: IndexMode, previous: &[(&str, Located)], reopened: bool) -> OpenSegment {
        OpenSegment::new(
            key("a"),
            Arc::from("v1"),
            Arc::from("ConfigMap"),
            mode,
            previous
                .iter()
                .map(|(n, l)| (n.to_string(), l.clone()))
                .collect(),
            reopened,
        )
    }

    /// Writes one object the way the engine does.
    fn write(seg: &mut OpenSegment, name: &str, content: &str, new_pack: &str) -> bool {
        let sha = Sha256Digest::of(content.as_bytes());
        match seg.seen(name, &sha, content.len() as u64) {
            Seen::Unchanged(prev) => {
                seg.record(name.to_string(), prev, true);
                true
            }
            Seen::Store => {
                seg.record(name.to_string(), loc(new_pack, 0, content), false);
                false
            }
        }
    }

    fn only_change(parts: Vec<Part>) -> SegmentChange {
        let mut changes: Vec<SegmentChange> = parts
            .into_iter()
            .map(|part| match part {
                Part::Change(change) => change,
                Part::Segment(_) => panic!("delta mode writes changes"),
            })
            .collect();
        // Removals and puts come in separate parts; merge them for the assertions.
        let mut change = changes.remove(0);
        for more in changes {
            change.removed.extend(more.removed);
            assert!(more.packs.is_empty() || change.put.is_empty());
            if change.put.is_empty() {
                change.packs = more.packs;
                change.put = more.put;
            }
        }
        change
    }

    fn base_state(docs: Vec<SegmentDoc>) -> IndexState {
        let mut state = IndexState::default();
        for doc in docs {
            state.apply_segment(Sha256Digest::default(), doc).unwrap();
        }
        state
    }

    #[test]
    fn keys_and_names_round_trip_and_refuse_escapes() {
        let id = Sha256Digest::of(b"x");
        let data = data_dir("team-a", "nightly");
        assert_eq!(data, "backups/team-a/nightly/data");
        assert_eq!(index_of_key(&index_key(&data, &id)), Some(id));
        let name = pack_name(chrono::DateTime::UNIX_EPOCH, 7);
        assert_eq!(name, "1970-01-01T00-00-00Z-00007");
        assert_eq!(pack_of_key(&pack_key(&data, &name)), Some(name.as_str()));
        for bad in ["", "../x", "a/b", "a b", &"x".repeat(65)] {
            assert!(!is_pack_name(bad), "{bad}");
        }
        assert_eq!(pack_of_key("backups/a/b/data/packs/..%2F.pack"), None);
    }

    #[test]
    fn full_mode_reuses_unchanged_objects_and_lists_every_object() {
        let previous = [("one", loc("p1", 0, "1")), ("two", loc("p1", 10, "2"))];
        let mut seg = open(IndexMode::Full, &previous, false);
        assert!(write(&mut seg, "two", "2", "p2"));
        assert!(!write(&mut seg, "one", "1 changed", "p2"));
        assert!(!write(&mut seg, "three", "3", "p2"));
        let docs = seg
            .close()
            .into_iter()
            .map(|part| match part {
                Part::Segment(doc) => doc,
                Part::Change(_) => panic!("full mode writes segments"),
            })
            .collect();
        let state = base_state(docs);
        let objects = &state.keys[&key("a")].objects;
        let names: Vec<_> = objects.keys().cloned().collect();
        assert_eq!(names, ["one", "three", "two"]);
        assert_eq!(
            &*objects["two"].pack, "p1",
            "unchanged object keeps its place"
        );
        assert_eq!(&*objects["one"].pack, "p2");
    }

    #[test]
    fn delta_mode_records_only_changes_and_removals() {
        let previous = [
            ("gone", loc("p1", 0, "g")),
            ("same", loc("p1", 10, "s")),
            ("edit", loc("p1", 20, "e")),
        ];
        let mut seg = open(IndexMode::Delta, &previous, false);
        write(&mut seg, "same", "s", "p2");
        write(&mut seg, "edit", "e2", "p2");
        write(&mut seg, "new", "n", "p2");
        let change = only_change(seg.close());
        assert_eq!(change.removed, ["gone"]);
        let put: Vec<_> = change.put.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(put, ["edit", "new"]);
        assert_eq!(change.packs, ["p2"]);

        // The previous state with the delta applied is exactly this run.
        let mut state = base_state(vec![SegmentDoc {
            namespace: Some("a".into()),
            resource: "configmaps".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            packs: vec!["p1".into()],
            objects: previous
                .iter()
                .map(|(n, l)| IndexEntry {
                    name: n.to_string(),
                    size: l.size,
                    sha256: l.sha256,
                    pack: 0,
                    offset: l.offset,
                    length: l.length,
                    listed: None,
                })
                .collect(),
        }]);
        state
            .apply_delta(
                Sha256Digest::default(),
                DeltaDoc {
                    changes: vec![change],
                },
            )
            .unwrap();
        let objects = &state.keys[&key("a")].objects;
        assert_eq!(
            objects.keys().cloned().collect::<Vec<_>>(),
            ["edit", "new", "same"]
        );
        assert_eq!(objects["edit"].sha256, Sha256Digest::of(b"e2"));
        assert_eq!(&*objects["same"].pack, "p1");
    }

    #[test]
    fn unchanged_key_in_delta_mode_writes_nothing() {
        let previous = [("same", loc("p1", 0, "s"))];
        let mut seg = open(IndexMode::Delta, &previous, false);
        write(&mut seg, "same", "s", "p2");
        assert_eq!(seg.close(), Vec::new());
    }

    #[test]
    fn a_reopened_key_puts_everything_again_and_removes_nothing() {
        // First pass saw only "a"; the key came back later with "b" (list not grouped).
        let previous = [("a", loc("p1", 0, "a")), ("b", loc("p1", 10, "b"))];
        let mut first = open(IndexMode::Delta, &previous, false);
        write(&mut first, "a", "a", "p2");
        let first = only_change(first.close());
        assert_eq!(first.removed, ["b"]);
        let mut second = open(IndexMode::Delta, &previous, true);
        write(&mut second, "b", "b", "p2");
        let second = only_change(second.close());
        assert!(second.removed.is_empty());
        assert_eq!(second.put[0].name, "b");
        // On the previous state, the two changes of the run leave both objects.
        let mut state = IndexState::default();
        let mut previous_state = KeyState {
            api_version: Arc::from("v1"),
            kind: Arc::from("ConfigMap"),
            objects: BTreeMap::new(),
        };
        for (name, located) in &previous {
            previous_state
                .objects
                .insert(name.to_string(), located.clone());
        }
        state.keys.insert(key("a"), previous_state);
        state
            .apply_delta(
                Sha256Digest::default(),
                DeltaDoc {
                    changes: vec![first, second],
                },
            )
            .unwrap();
        assert_eq!(
            state.keys[&key("a")]
                .objects
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn a_large_change_is_written_in_bounded_parts() {
        let n = DELTA_PART_ENTRIES * 2 + 5;
        let previous: Vec<(String, Located)> = (0..n)
            .map(|i| (format!("o{i:06}"), loc("p1", i as u64, "old")))
            .collect();
        let mut seg = OpenSegment::new(
            key("a"),
            Arc::from("v1"),
            Arc::from("ConfigMap"),
            IndexMode::Delta,
            previous.iter().cloned().collect(),
            false,
        );
        let mut parts = Vec::new();
        for (name, _) in &previous {
            write(&mut seg, name, "new", "p2");
            parts.extend(seg.take_part());
        }
        parts.extend(seg.close());
        assert_eq!(parts.len(), 3);
        let mut state = IndexState::default();
        for part in parts {
            let Part::Change(change) = part else { panic!() };
            assert!(change.count() <= DELTA_PART_ENTRIES as u64);
            state
                .apply_delta(
                    Sha256Digest::default(),
                    DeltaDoc {
                        changes: vec![change],
                    },
                )
                .unwrap();
        }
        assert_eq!(state.objects(), n as u64);
        assert!(
            state.keys[&key("a")]
                .objects
                .values()
                .all(|l| &*l.pack == "p2")
        );
    }

    #[test]
    fn an_unreadable_previous_key_is_replaced_whole() {
        // The previous run had "gone" and "kept"; its document cannot be read now.
        let mut state = IndexState::default();
        let mut objects = BTreeMap::new();
        objects.insert("gone".to_string(), loc("p1", 0, "g"));
        objects.insert("kept".to_string(), loc("p1", 10, "k"));
        state.keys.insert(
            key("a"),
            KeyState {
                api_version: Arc::from("v1"),
                kind: Arc::from("ConfigMap"),
                objects,
            },
        );
        let mut seg = open(IndexMode::Delta, &[], false).replacing();
        write(&mut seg, "kept", "k", "p2");
        let parts = seg.close();
        let Part::Change(change) = &parts[0] else {
            panic!()
        };
        assert!(change.dropped, "the first part drops the key");
        for part in parts {
            let Part::Change(change) = part else { panic!() };
            state
                .apply_delta(
                    Sha256Digest::default(),
                    DeltaDoc {
                        changes: vec![change],
                    },
                )
                .unwrap();
        }
        let names: Vec<_> = state.keys[&key("a")].objects.keys().cloned().collect();
        assert_eq!(
            names,
            ["kept"],
            "nothing of the previous run survives unseen"
        );
    }

    #[test]
    fn dropped_keys_disappear() {
        let mut state = base_state(vec![SegmentDoc {
            namespace: Some("a".into()),
            resource: "configmaps".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            packs: vec!["p1".into()],
            objects: vec![IndexEntry {
                name: "x".into(),
                size: 1,
                sha256: Sha256Digest::of(b"x"),
                pack: 0,
                offset: 0,
                length: 5,
                listed: None,
            }],
        }]);
        let change = dropped(&key("a"));
        state
            .apply_delta(
                Sha256Digest::default(),
                DeltaDoc {
                    changes: vec![change],
                },
            )
            .unwrap();
        assert!(state.keys.is_empty());
    }

    #[test]
    fn crafted_documents_are_refused() {
        let doc = |packs: Vec<String>, pack: u32, length: u64| SegmentDoc {
            namespace: None,
            resource: "namespaces".into(),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            packs,
            objects: vec![IndexEntry {
                name: "x".into(),
                size: 1,
                sha256: Sha256Digest::default(),
                pack,
                offset: u64::MAX,
                length,
                listed: None,
            }],
        };
        let mut state = IndexState::default();
        let id = Sha256Digest::default();
        assert!(
            state
                .apply_segment(id, doc(vec!["../../x".into()], 0, 1))
                .is_err()
        );
        assert!(
            state
                .apply_segment(id, doc(vec!["p".into()], 1, 1))
                .is_err()
        );
        assert!(
            state
                .apply_segment(id, doc(vec!["p".into()], 0, 2))
                .is_err()
        );
    }

    #[test]
    fn mode_compacts_after_many_or_large_deltas() {
        let delta = |changes| DeltaRef {
            id: Sha256Digest::default(),
            changes,
        };
        assert_eq!(IndexMode::for_previous(None), IndexMode::Full);
        let small = PackedIndex {
            segments: Vec::new(),
            deltas: vec![delta(100)],
        };
        assert_eq!(
            IndexMode::for_previous(Some((&small, 100_000))),
            IndexMode::Delta
        );
        let large = PackedIndex {
            segments: Vec::new(),
            deltas: vec![delta(30_000)],
        };
        assert_eq!(
            IndexMode::for_previous(Some((&large, 100_000))),
            IndexMode::Full
        );
        let many = PackedIndex {
            segments: Vec::new(),
            deltas: (0..MAX_DELTAS).map(|_| delta(1)).collect(),
        };
        assert_eq!(
            IndexMode::for_previous(Some((&many, 100_000))),
            IndexMode::Full
        );
    }
}
