//! The packed format's I/O (see [`crate::core::packed`] for the layout and the rules): writing
//! a run's packs and index against the previous run, reading an index back for a restore,
//! reading one object, and the garbage collection retention runs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use crate::core::layout;
use crate::core::manifest::{Manifest, ManifestEntry, Sha256Digest};
use crate::core::packed::{
    self, DeltaDoc, DeltaRef, Fingerprint, IndexMode, IndexState, Located, OpenSegment,
    PackedIndex, Part, Seen, SegmentChange, SegmentDoc, SegmentKey, SegmentRef,
};
use crate::storage::catalogue;
use crate::storage::{Content, Storage, StorageError};

/// Changes of the previous run's deltas a run holds in memory at most; with more, it stores
/// everything and writes a new base (a delta that large is rare: a quarter of the objects
/// changed since the base triggers a base anyway).
const MAX_PREVIOUS_CHANGES: u64 = 200_000;
/// Objects an index may list (untrusted input: a manifest can name any number of documents).
const MAX_INDEX_OBJECTS: u64 = 20_000_000;

/// Pack and index uploads in flight at once (each holds up to one pack in memory).
const UPLOADS_IN_FLIGHT: usize = 4;
/// Room in a pack's buffer beyond its target size, for the frame that fills it.
const PACK_SLACK: usize = 256 << 10;
/// Largest stored object read back (decompressed); see the restore engine's limit.
pub const MAX_OBJECT_BYTES: u64 = 16 * 1024 * 1024;

/// What a packed run needs from its previous run.
struct Previous {
    index: PackedIndex,
    objects: Arc<PreviousObjects>,
}

/// The previous run's objects, read one key at a time, shared by the listing (which looks up
/// listed fingerprints, see [`PreviousObjects::lookup`]) and the writer: a key the listing read
/// is handed on to the writer instead of being read twice.
pub struct PreviousObjects {
    storage: Storage,
    data_dir: String,
    /// Base segment documents per key.
    segments: HashMap<SegmentKey, Vec<Sha256Digest>>,
    /// Changes of the deltas per key, oldest first.
    changes: HashMap<SegmentKey, Vec<SegmentChange>>,
    /// Keys read (or being read) ahead of the writer, oldest first, at most [`KEYS_AHEAD`].
    ahead: Mutex<VecDeque<(SegmentKey, Arc<KeyCell>)>>,
}

/// The previous objects of one key, by name.
pub type KeyObjects = Arc<HashMap<String, Located>>;

/// The previous objects of one key, once read (`None`: they could not be read).
type KeyCell = OnceCell<Option<KeyObjects>>;

/// Keys the listing may read ahead of the writer (it is ahead by the upload channel, a few
/// keys at most; more only when keys are tiny).
const KEYS_AHEAD: usize = 16;

/// Why the previous objects of a key cannot be used: the error, and the document at fault.
struct KeyReadError {
    error: StorageError,
    document: Option<Sha256Digest>,
}

impl PreviousObjects {
    /// The previous objects of `key` for the listing, read once and kept for the writer; `None`
    /// when they cannot be read (the writer then finds out why, and stores the key again).
    pub async fn lookup(&self, key: &SegmentKey) -> Option<KeyObjects> {
        let cell = {
            let mut ahead = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
            match ahead.iter().find(|(k, _)| k == key) {
                Some((_, cell)) => cell.clone(),
                None => {
                    let cell = Arc::new(KeyCell::new());
                    ahead.push_back((key.clone(), cell.clone()));
                    if ahead.len() > KEYS_AHEAD {
                        ahead.pop_front();
                    }
                    cell
                }
            }
        };
        cell.get_or_init(|| async { self.read(key).await.ok().map(Arc::new) })
            .await
            .clone()
    }

    /// The previous objects of `key` for the writer: what the listing read, or read now.
    async fn take(&self, key: &SegmentKey) -> Result<HashMap<String, Located>, KeyReadError> {
        let cell = {
            let mut ahead = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
            ahead
                .iter()
                .position(|(k, _)| k == key)
                .and_then(|i| ahead.remove(i))
                .map(|(_, cell)| cell)
        };
        if let Some(cell) = cell {
            let read = cell
                .get_or_init(|| async { self.read(key).await.ok().map(Arc::new) })
                .await
                .clone();
            drop(cell);
            if let Some(objects) = read {
                // The listing may still hold the map (it is reading this key): then a copy.
                return Ok(Arc::try_unwrap(objects).unwrap_or_else(|shared| (*shared).clone()));
            }
        }
        self.read(key).await
    }

    async fn read(&self, key: &SegmentKey) -> Result<HashMap<String, Located>, KeyReadError> {
        let mut state = IndexState::default();
        for id in self.segments.get(key).into_iter().flatten() {
            let applied = read_document::<SegmentDoc>(&self.storage, &self.data_dir, id)
                .await
                .and_then(|doc| {
                    state
                        .apply_segment(*id, doc)
                        .map_err(|e| StorageError::Corrupt {
                            key: packed::index_key(&self.data_dir, id),
                            reason: e.to_string(),
                        })
                });
            if let Err(error) = applied {
                return Err(KeyReadError {
                    error,
                    document: Some(*id),
                });
            }
        }
        if let Some(changes) = self.changes.get(key) {
            let doc = DeltaDoc {
                changes: changes.clone(),
            };
            state
                .apply_delta(Sha256Digest::default(), doc)
                .map_err(|e| KeyReadError {
                    error: StorageError::Corrupt {
                        key: self.data_dir.clone(),
                        reason: e.to_string(),
                    },
                    document: None,
                })?;
        }
        Ok(state
            .keys
            .remove(key)
            .map(|k| k.objects.into_iter().collect())
            .unwrap_or_default())
    }
}

/// How an upload is stored on an encrypting location.
#[derive(Clone, Copy)]
enum Sealing {
    /// Sealed as a whole (index documents).
    Whole,
    /// As it is (packs: each object in them is sealed on its own).
    AsIs,
}

/// What an object's frame is bound to when sealed: its pack (by its key, so the Backup's data
/// folder too) and offset. Whole items are bound to their key, which never starts so.
fn frame_context(pack_key: &str, offset: u64) -> String {
    format!("frame:{pack_key}@{offset}")
}

/// What a packed run stored.
#[derive(Debug)]
pub struct PackedOutcome {
    pub index: PackedIndex,
    /// Objects referenced from earlier runs.
    pub reused: u64,
}

/// Writes one packed run: objects go in, in list order; [`PackedWriter::finish`] gives the
/// index for the manifest once every pack and index document is stored.
pub struct PackedWriter {
    storage: Storage,
    data_dir: String,
    started: DateTime<Utc>,
    mode: IndexMode,
    previous: Option<Previous>,
    open: Option<OpenSegment>,
    /// Keys opened by this run (a key seen again was not listed in one piece).
    opened: HashSet<SegmentKey>,
    pack: Vec<u8>,
    pack_name: Arc<str>,
    pack_seq: u32,
    compressor: zstd::bulk::Compressor<'static>,
    uploads: JoinSet<Result<(), StorageError>>,
    segments: Vec<SegmentRef>,
    delta: DeltaDoc,
    deltas: Vec<DeltaRef>,
    /// Packs of earlier runs checked to exist (`false`: missing or too short).
    checked_packs: HashMap<Arc<str>, Option<u64>>,
    /// Segment documents of the previous run that could not be read: never taken as stored.
    unreadable: HashSet<Sha256Digest>,
    reused: u64,
}

impl PackedWriter {
    /// Starts a run of the Backup `backup_ns/backup_name` started at `started`; reads the
    /// newest complete earlier packed run of the same Backup, if any, to write incrementally.
    pub async fn start(
        storage: &Storage,
        backup_ns: &str,
        backup_name: &str,
        uid: Option<&str>,
        started: DateTime<Utc>,
    ) -> Result<PackedWriter, StorageError> {
        let data_dir = packed::data_dir(backup_ns, backup_name);
        let previous = match previous_index(storage, backup_ns, backup_name, uid, started).await? {
            Some((index, objects)) => {
                let mode = IndexMode::for_previous(Some((&index, objects)));
                Some((load_previous(storage, &data_dir, index).await, mode))
            }
            None => None,
        };
        let (previous, mode) = match previous {
            Some((Ok(previous), mode)) => (Some(previous), mode),
            Some((Err(err), _)) => {
                tracing::warn!(error = %err, "cannot read the previous run's index; this run stores everything");
                (None, IndexMode::Full)
            }
            None => (None, IndexMode::Full),
        };
        let compressor =
            zstd::bulk::Compressor::new(packed::ZSTD_LEVEL).map_err(|e| StorageError::Corrupt {
                key: data_dir.clone(),
                reason: format!("cannot start zstd: {e}"),
            })?;
        tracing::debug!(
            mode = ?mode,
            incremental = previous.is_some(),
            "packed run starts"
        );
        Ok(PackedWriter {
            storage: storage.clone(),
            data_dir,
            started,
            mode,
            previous,
            open: None,
            opened: HashSet::new(),
            pack: Vec::with_capacity(packed::PACK_TARGET_BYTES + PACK_SLACK),
            pack_name: Arc::from(packed::pack_name(started, 0)),
            pack_seq: 0,
            compressor,
            uploads: JoinSet::new(),
            segments: Vec::new(),
            delta: DeltaDoc::default(),
            deltas: Vec::new(),
            checked_packs: HashMap::new(),
            unreadable: HashSet::new(),
            reused: 0,
        })
    }

    /// The previous run's objects, for the listing to look up fingerprints in (`None` without
    /// a previous run).
    pub fn previous_objects_for_listing(&self) -> Option<Arc<PreviousObjects>> {
        self.previous.as_ref().map(|p| p.objects.clone())
    }

    /// Whether [`PackedWriter::add`] will reference `entry` from an earlier run (so it needs no
    /// bytes): the previous run has the same sha256 and size under its name, in a pack that is
    /// still there.
    pub async fn reuses(&mut self, entry: &ManifestEntry) -> Result<bool, StorageError> {
        self.open_key(entry).await?;
        let previous = self
            .open
            .as_ref()
            .and_then(|open| open.unchanged(&entry.name, &entry.sha256, entry.size))
            .cloned();
        match previous {
            Some(prev) => self.pack_present(&prev).await,
            None => Ok(false),
        }
    }

    /// Stores one object (`bytes`, which `entry` describes), or references it when an earlier
    /// run stored the same bytes; `bytes` may be `None` only when [`PackedWriter::reuses`] said
    /// so. `listed` is the object's fingerprint as listed. Returns whether it was referenced.
    pub async fn add(
        &mut self,
        entry: ManifestEntry,
        bytes: Option<&[u8]>,
        listed: Option<Fingerprint>,
    ) -> Result<bool, StorageError> {
        self.open_key(&entry).await?;
        let seen = match self.open.as_mut() {
            Some(open) => open.seen(&entry.name, &entry.sha256, entry.size),
            None => Seen::Store,
        };
        let unchanged = match seen {
            Seen::Unchanged(prev) => Some(prev),
            Seen::Store => None,
        };
        let reused = match unchanged {
            Some(prev) if self.pack_present(&prev).await? => Some(prev),
            _ => None,
        };
        let referenced = reused.is_some();
        let (located, same_entry) = match (reused, bytes) {
            (Some(prev), _) => {
                self.reused += 1;
                let same = prev.listed == listed;
                (Located { listed, ..prev }, same)
            }
            (None, Some(bytes)) => {
                let content = Content::of(&entry.api_version, &entry.kind);
                (
                    self.append(bytes, content, entry.sha256, listed).await?,
                    false,
                )
            }
            (None, None) => {
                return Err(self.internal(&format!(
                    "no bytes to store for {} (it was taken as unchanged)",
                    entry.key
                )));
            }
        };
        if let Some(open) = self.open.as_mut() {
            open.record(entry.name, located, same_entry);
        }
        self.write_full_part().await?;
        Ok(referenced)
    }

    /// Opens the key of `entry` (closing the one open before) with the previous run's objects.
    async fn open_key(&mut self, entry: &ManifestEntry) -> Result<(), StorageError> {
        let key = SegmentKey {
            namespace: entry.namespace.as_deref().map(str::to_string),
            resource: entry.resource.to_string(),
        };
        if self.open.as_ref().is_some_and(|open| open.key == key) {
            return Ok(());
        }
        self.close_open().await?;
        let previous = self.previous_objects(&key).await;
        let reopened = !self.opened.insert(key.clone());
        let open = |objects| {
            OpenSegment::new(
                key,
                entry.api_version.clone(),
                entry.kind.clone(),
                self.mode,
                objects,
                reopened,
            )
        };
        self.open = Some(match previous {
            Ok(objects) => open(objects),
            // A damaged or missing document of the previous run must not stop every later
            // backup: this key is stored again, as a whole.
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the previous run's index of one namespace/type; storing it again");
                open(HashMap::new()).replacing()
            }
        });
        Ok(())
    }

    /// Stores everything still open and returns the run's index.
    pub async fn finish(mut self) -> Result<PackedOutcome, StorageError> {
        self.close_open().await?;
        if self.mode == IndexMode::Delta
            && let Some(previous) = &self.previous
        {
            let mut keys: Vec<&SegmentKey> = previous
                .objects
                .segments
                .keys()
                .chain(previous.objects.changes.keys())
                .filter(|k| !self.opened.contains(*k) && previous.may_have_objects(k))
                .collect();
            keys.sort();
            keys.dedup();
            let dropped: Vec<SegmentChange> = keys.into_iter().map(packed::dropped).collect();
            self.delta.changes.extend(dropped);
        }
        self.flush_delta().await?;
        self.flush_pack().await?;
        while let Some(done) = self.uploads.join_next().await {
            done.map_err(|e| self.internal(&format!("upload task failed: {e}")))??;
        }
        let index = match (self.mode, self.previous) {
            (IndexMode::Delta, Some(previous)) => {
                // The base keeps only documents this run may need: those of keys it backed up
                // and could read. A key not backed up is dropped by this run's delta, and an
                // unreadable one is replaced whole, so a damaged document is never needed to
                // restore this run.
                let mut index = previous.index;
                index.segments.retain(|segment| {
                    self.opened.contains(&segment.key()) && !self.unreadable.contains(&segment.id)
                });
                index.deltas.extend(self.deltas);
                index
            }
            _ => PackedIndex {
                segments: self.segments,
                deltas: Vec::new(),
            },
        };
        Ok(PackedOutcome {
            index,
            reused: self.reused,
        })
    }

    /// The previous run's objects of one key (empty without a previous run).
    async fn previous_objects(
        &mut self,
        key: &SegmentKey,
    ) -> Result<HashMap<String, Located>, StorageError> {
        let Some(previous) = &self.previous else {
            return Ok(HashMap::new());
        };
        previous.objects.take(key).await.map_err(|err| {
            if let Some(id) = err.document {
                self.unreadable.insert(id);
            }
            err.error
        })
    }

    /// Whether the pack an unchanged object is in is still there and long enough (checked once
    /// per pack and run): a run never references data it cannot find.
    async fn pack_present(&mut self, located: &Located) -> Result<bool, StorageError> {
        let size = match self.checked_packs.get(&located.pack) {
            Some(size) => *size,
            None => {
                let key = packed::pack_key(&self.data_dir, &located.pack);
                let size = self.storage.head(&key).await?;
                if size.is_none() {
                    tracing::warn!(pack = %located.pack, "a pack of an earlier run is missing; its objects are stored again");
                }
                self.checked_packs.insert(located.pack.clone(), size);
                size
            }
        };
        Ok(size.is_some_and(|size| located.offset.saturating_add(located.length) <= size))
    }

    /// Compresses an object into the open pack; uploads the pack once it is full.
    async fn append(
        &mut self,
        bytes: &[u8],
        content: Content,
        sha256: Sha256Digest,
        listed: Option<Fingerprint>,
    ) -> Result<Located, StorageError> {
        let compressed = self
            .compressor
            .compress(bytes)
            .map_err(|e| self.internal(&format!("zstd: {e}")))?;
        let offset = self.pack.len() as u64;
        // An encrypting location seals each object on its own, bound to its pack and offset.
        let pack_key = packed::pack_key(&self.data_dir, &self.pack_name);
        let frame = self.storage.seal(
            &pack_key,
            frame_context(&pack_key, offset).as_bytes(),
            content,
            Bytes::from(compressed),
        )?;
        let located = Located {
            sha256,
            size: bytes.len() as u64,
            pack: self.pack_name.clone(),
            offset,
            length: frame.len() as u64,
            listed,
        };
        self.pack.extend_from_slice(&frame);
        if self.pack.len() >= packed::PACK_TARGET_BYTES {
            self.flush_pack().await?;
        }
        Ok(located)
    }

    async fn flush_pack(&mut self) -> Result<(), StorageError> {
        if self.pack.is_empty() {
            return Ok(());
        }
        // Sized for a full pack, so the buffer never doubles past it.
        let next = Vec::with_capacity(packed::PACK_TARGET_BYTES + PACK_SLACK);
        let bytes = Bytes::from(std::mem::replace(&mut self.pack, next));
        let key = packed::pack_key(&self.data_dir, &self.pack_name);
        self.pack_seq += 1;
        self.pack_name = Arc::from(packed::pack_name(self.started, self.pack_seq));
        // Its objects are sealed one by one already.
        self.upload(key, bytes, Sealing::AsIs).await
    }

    async fn upload(
        &mut self,
        key: String,
        bytes: Bytes,
        sealing: Sealing,
    ) -> Result<(), StorageError> {
        while self.uploads.len() >= UPLOADS_IN_FLIGHT {
            if let Some(done) = self.uploads.join_next().await {
                done.map_err(|e| self.internal(&format!("upload task failed: {e}")))??;
            }
        }
        let storage = self.storage.clone();
        self.uploads.spawn(async move {
            match sealing {
                Sealing::Whole => storage.put(&key, bytes).await,
                Sealing::AsIs => storage.put_raw(&key, bytes).await,
            }
        });
        Ok(())
    }

    async fn close_open(&mut self) -> Result<(), StorageError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        for part in open.close() {
            self.write_part(part).await?;
        }
        Ok(())
    }

    /// Writes a full part of the open key now, so no key is held whole.
    async fn write_full_part(&mut self) -> Result<(), StorageError> {
        if let Some(part) = self.open.as_mut().and_then(OpenSegment::take_part) {
            self.write_part(part).await?;
        }
        Ok(())
    }

    async fn write_part(&mut self, part: Part) -> Result<(), StorageError> {
        match part {
            Part::Segment(doc) => {
                let (id, compressed) = encode_document(&doc)?;
                // A segment of the previous base with the same content is there already (it
                // was read back for this run), unless it could not be read.
                let stored = self.previous.as_ref().is_some_and(|p| {
                    p.index.segments.iter().any(|s| s.id == id) && !self.unreadable.contains(&id)
                });
                if !stored {
                    self.upload(
                        packed::index_key(&self.data_dir, &id),
                        compressed,
                        Sealing::Whole,
                    )
                    .await?;
                }
                self.segments.push(SegmentRef {
                    namespace: doc.namespace,
                    resource: doc.resource,
                    id,
                    objects: doc.objects.len() as u64,
                });
            }
            Part::Change(change) => {
                self.delta.changes.push(change);
                if packed::delta_changes(&self.delta) >= packed::DELTA_PART_ENTRIES as u64 {
                    self.flush_delta().await?;
                }
            }
        }
        Ok(())
    }

    async fn flush_delta(&mut self) -> Result<(), StorageError> {
        if self.delta.changes.is_empty() {
            return Ok(());
        }
        let delta = std::mem::take(&mut self.delta);
        let changes = packed::delta_changes(&delta);
        let (id, compressed) = encode_document(&delta)?;
        self.upload(
            packed::index_key(&self.data_dir, &id),
            compressed,
            Sealing::Whole,
        )
        .await?;
        self.deltas.push(DeltaRef { id, changes });
        Ok(())
    }

    fn internal(&self, reason: &str) -> StorageError {
        StorageError::Corrupt {
            key: self.data_dir.clone(),
            reason: reason.to_string(),
        }
    }
}

/// The index of the newest complete packed run of this Backup started before `before`, with
/// its object count. A run whose manifest cannot be read or names another Backup is passed
/// over (the next run then stores everything).
async fn previous_index(
    storage: &Storage,
    backup_ns: &str,
    backup_name: &str,
    uid: Option<&str>,
    before: DateTime<Utc>,
) -> Result<Option<(PackedIndex, u64)>, StorageError> {
    let mut runs = crate::engine::retention::list_runs(storage, backup_ns, backup_name).await?;
    runs.retain(|r| r.complete && r.started < before);
    runs.sort_by_key(|r| std::cmp::Reverse(r.started));
    let Some(run) = runs.first() else {
        return Ok(None);
    };
    // After a key rotation, or a change of what is encrypted, the first run stores everything
    // anew: building on a run sealed with another key would keep every later run needing that
    // key, and on a run of another scope would reference objects sealed (or not) otherwise.
    let wanted = storage.encryption_record();
    let sealed_with = match wanted {
        Some(_) => storage
            .get_bounded_raw(
                &layout::manifest_key(&run.dir),
                catalogue::max_manifest_bytes(),
            )
            .await
            .ok()
            .and_then(|bytes| crate::storage::sealed::key_id_of(&bytes).ok()),
        None => None,
    };
    match catalogue::read_manifest(storage, &run.dir).await {
        // A sealed manifest is a run that sealed everything (runs before the manifest recorded
        // it say so only by being sealed).
        Ok(manifest)
            if manifest.encryption.clone().or_else(|| {
                sealed_with.map(|key_id| crate::core::manifest::EncryptionRecord {
                    key_id,
                    scope: crate::api::EncryptionScope::All,
                })
            }) != wanted =>
        {
            tracing::info!(run = %run.dir, "the previous run was encrypted otherwise (another key or scope); this run stores everything");
            Ok(None)
        }
        // Runs of another Backup object of the same name (deleted and created again, or another
        // cluster writing to the same bucket) are not built upon.
        Ok(manifest)
            if manifest.backup.namespace == backup_ns
                && manifest.backup.name == backup_name
                && (manifest.backup.uid.is_none()
                    || uid.is_none()
                    || manifest.backup.uid.as_deref() == uid) =>
        {
            let index = manifest.packed.filter(|index| {
                let bounded = index.delta_entries() <= MAX_PREVIOUS_CHANGES;
                if !bounded {
                    tracing::warn!("the previous run's deltas are too large to hold; this run stores everything");
                }
                bounded
            });
            Ok(index.map(|index| (index, manifest.total_objects)))
        }
        Ok(_) => Ok(None),
        Err(err) => {
            tracing::warn!(run = %run.dir, error = %err, "cannot read the previous run; this run stores everything");
            Ok(None)
        }
    }
}

impl Previous {
    /// Whether the previous run may have objects of `key` (when unsure, yes: dropping a key
    /// that is gone already costs one entry in a delta).
    fn may_have_objects(&self, key: &SegmentKey) -> bool {
        let mut present = self
            .index
            .segments
            .iter()
            .any(|s| s.key() == *key && s.objects > 0);
        for change in self.objects.changes.get(key).into_iter().flatten() {
            if change.dropped {
                present = false;
            }
            if !change.put.is_empty() {
                present = true;
            }
        }
        present
    }
}

async fn load_previous(
    storage: &Storage,
    data_dir: &str,
    index: PackedIndex,
) -> Result<Previous, StorageError> {
    let mut segments: HashMap<SegmentKey, Vec<Sha256Digest>> = HashMap::new();
    for segment in &index.segments {
        segments.entry(segment.key()).or_default().push(segment.id);
    }
    let mut changes: HashMap<SegmentKey, Vec<SegmentChange>> = HashMap::new();
    let mut held = 0u64;
    for delta in &index.deltas {
        let doc: DeltaDoc = read_document(storage, data_dir, &delta.id).await?;
        // What the manifest claims is untrusted; what was read counts.
        held += packed::delta_changes(&doc);
        if held > MAX_PREVIOUS_CHANGES {
            return Err(StorageError::Corrupt {
                key: packed::index_key(data_dir, &delta.id),
                reason: format!("the deltas hold more than {MAX_PREVIOUS_CHANGES} changes"),
            });
        }
        for change in doc.changes {
            let key = SegmentKey {
                namespace: change.namespace.clone(),
                resource: change.resource.clone(),
            };
            changes.entry(key).or_default().push(change);
        }
    }
    Ok(Previous {
        index,
        objects: Arc::new(PreviousObjects {
            storage: storage.clone(),
            data_dir: data_dir.to_string(),
            segments,
            changes,
            ahead: Mutex::new(VecDeque::new()),
        }),
    })
}

/// Compact JSON, named by its sha256, compressed.
fn encode_document<T: Serialize>(doc: &T) -> Result<(Sha256Digest, Bytes), StorageError> {
    let json = serde_json::to_vec(doc).map_err(|e| StorageError::Corrupt {
        key: "index document".to_string(),
        reason: format!("cannot serialize: {e}"),
    })?;
    if json.len() as u64 > packed::MAX_INDEX_DOC_BYTES {
        return Err(StorageError::Corrupt {
            key: "index document".to_string(),
            reason: format!(
                "{} bytes, more than a reader accepts ({})",
                json.len(),
                packed::MAX_INDEX_DOC_BYTES
            ),
        });
    }
    let id = Sha256Digest::of(&json);
    let compressed =
        zstd::bulk::compress(&json, packed::ZSTD_LEVEL).map_err(|e| StorageError::Corrupt {
            key: id.to_string(),
            reason: format!("zstd: {e}"),
        })?;
    Ok((id, Bytes::from(compressed)))
}

/// Reads an index document: bounded, decompressed with a bound, checked against its name.
async fn read_document<T: DeserializeOwned>(
    storage: &Storage,
    data_dir: &str,
    id: &Sha256Digest,
) -> Result<T, StorageError> {
    let key = packed::index_key(data_dir, id);
    let corrupt = |reason: String| StorageError::Corrupt {
        key: key.clone(),
        reason,
    };
    let compressed = storage
        .get_bounded(&key, packed::MAX_INDEX_DOC_BYTES)
        .await?;
    let json = decompress_bounded(&compressed, packed::MAX_INDEX_DOC_BYTES).map_err(corrupt)?;
    if Sha256Digest::of(&json) != *id {
        return Err(corrupt(
            "its content does not match its name (sha256)".to_string(),
        ));
    }
    // Counted before parsing: what parsing a crafted document would cost is bounded too.
    crate::core::json_limits::count_values(&json, packed::MAX_INDEX_DOC_VALUES)
        .map_err(|e| corrupt(format!("not a usable index document: it {e}")))?;
    serde_json::from_slice(&json).map_err(|e| corrupt(format!("not an index document: {e}")))
}

/// Decompresses a zstd stream, refusing more than `limit` bytes of output.
fn decompress_bounded(compressed: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::new(compressed).map_err(|e| format!("zstd: {e}"))?;
    let mut out = Vec::new();
    decoder
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not zstd data: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("decompresses to more than {limit} bytes"));
    }
    Ok(out)
}

/// The data folder of the run at `run_path` (`backups/<ns>/<name>/<time>` →
/// `backups/<ns>/<name>/data`).
pub fn data_dir_of_run(run_path: &str) -> String {
    let parent = run_path
        .trim_end_matches('/')
        .rsplit_once('/')
        .map_or("", |(parent, _)| parent);
    if parent.is_empty() {
        packed::DATA_DIR.to_string()
    } else {
        format!("{parent}/{}", packed::DATA_DIR)
    }
}

/// Fills `manifest.objects` of a packed run from its index (a restore needs every entry).
/// An index that does not add up to the manifest's object count is refused.
pub async fn expand(
    storage: &Storage,
    run_path: &str,
    manifest: &mut Manifest,
) -> Result<(), StorageError> {
    let Some(index) = &manifest.packed else {
        return Ok(());
    };
    let data_dir = data_dir_of_run(run_path);
    let state = read_state(storage, &data_dir, index).await?;
    if state.objects() != manifest.total_objects {
        return Err(StorageError::Corrupt {
            key: layout::manifest_key(run_path),
            reason: format!(
                "its index lists {} objects, the manifest {}",
                state.objects(),
                manifest.total_objects
            ),
        });
    }
    let mut objects = Vec::with_capacity(state.objects() as usize);
    for (key, key_state) in state.keys {
        let namespace: Option<Arc<str>> = key.namespace.as_deref().map(Arc::from);
        let resource: Arc<str> = Arc::from(key.resource.as_str());
        for (name, located) in key_state.objects {
            objects.push(ManifestEntry {
                key: layout::relative_object_key(key.namespace.as_deref(), &key.resource, &name),
                api_version: key_state.api_version.clone(),
                kind: key_state.kind.clone(),
                resource: resource.clone(),
                namespace: namespace.clone(),
                name,
                size: located.size,
                sha256: located.sha256,
                location: Some(Box::new(located)),
            });
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    manifest.objects = objects;
    Ok(())
}

/// A run's objects: its base and deltas read and applied.
async fn read_state(
    storage: &Storage,
    data_dir: &str,
    index: &PackedIndex,
) -> Result<IndexState, StorageError> {
    let mut state = IndexState::default();
    let mut read = 0u64;
    let check_read = |read: u64| {
        if read > MAX_INDEX_OBJECTS {
            Err(StorageError::Corrupt {
                key: data_dir.to_string(),
                reason: format!("the index lists more than {MAX_INDEX_OBJECTS} objects; not read"),
            })
        } else {
            Ok(())
        }
    };
    let corrupt = |id: &Sha256Digest, e: packed::IndexError| StorageError::Corrupt {
        key: packed::index_key(data_dir, id),
        reason: e.to_string(),
    };
    for segment in &index.segments {
        let doc: SegmentDoc = read_document(storage, data_dir, &segment.id).await?;
        if doc.namespace != segment.namespace || doc.resource != segment.resource {
            return Err(StorageError::Corrupt {
                key: packed::index_key(data_dir, &segment.id),
                reason: "its key differs from the one the manifest names".to_string(),
            });
        }
        read += doc.objects.len() as u64;
        check_read(read)?;
        state
            .apply_segment(segment.id, doc)
            .map_err(|e| corrupt(&segment.id, e))?;
    }
    for delta in &index.deltas {
        let doc: DeltaDoc = read_document(storage, data_dir, &delta.id).await?;
        read += packed::delta_changes(&doc);
        check_read(read)?;
        state
            .apply_delta(delta.id, doc)
            .map_err(|e| corrupt(&delta.id, e))?;
    }
    Ok(state)
}

/// Reads one object of a packed run: one ranged GET of its frame, decompressed to at most its
/// recorded size. The caller verifies size and sha256 against the entry, whose `content` says
/// whether it must have been sealed.
pub async fn read_object(
    storage: &Storage,
    run_path: &str,
    located: &Located,
    content: Content,
) -> Result<Vec<u8>, StorageError> {
    read_frame(storage, &data_dir_of_run(run_path), located, content).await
}

async fn read_frame(
    storage: &Storage,
    data_dir: &str,
    located: &Located,
    content: Content,
) -> Result<Vec<u8>, StorageError> {
    let key = packed::pack_key(data_dir, &located.pack);
    if located.size > MAX_OBJECT_BYTES || located.length > MAX_OBJECT_BYTES {
        return Err(StorageError::Corrupt {
            key,
            reason: format!(
                "an object of {} bytes ({} stored) is larger than any Kubernetes object; not read",
                located.size, located.length
            ),
        });
    }
    let frame = storage
        .get_range(&key, located.offset, located.length)
        .await?;
    open_frame(storage, &key, frame, located, content)
}

/// One object's frame, opened (an encrypting location's) and decompressed to at most its
/// recorded size.
fn open_frame(
    storage: &Storage,
    key: &str,
    frame: Bytes,
    located: &Located,
    content: Content,
) -> Result<Vec<u8>, StorageError> {
    let context = frame_context(key, located.offset);
    let frame = storage.open(key, context.as_bytes(), content, frame)?;
    let size = usize::try_from(located.size.min(MAX_OBJECT_BYTES)).unwrap_or(0);
    zstd::bulk::decompress(&frame, size).map_err(|e| StorageError::Corrupt {
        key: key.to_string(),
        reason: format!(
            "object at {} is not a zstd frame of at most {} bytes: {e}",
            located.offset, located.size
        ),
    })
}

/// Packs a restore holds in memory at once (each at most [`packed::PACK_TARGET_BYTES`] plus
/// one object).
const PACKS_IN_MEMORY: usize = 3;

type PackDownload =
    futures::future::Shared<futures::future::BoxFuture<'static, Result<Bytes, Arc<StorageError>>>>;

/// The newest whole-pack downloads, oldest first, and every pack downloaded whole so far.
type Downloads = (
    std::collections::VecDeque<(Arc<str>, PackDownload)>,
    HashSet<Arc<str>>,
);

/// Reads the objects of a packed run for a restore: a pack the restore takes most of is
/// downloaded once, whole, and objects are cut from it (one GET instead of thousands, which
/// is most of an S3 server's work in a restore); objects of other packs are read with ranged
/// GETs. Concurrent readers of one pack share its download.
pub struct PackReader {
    storage: Storage,
    data_dir: String,
    whole: HashSet<Arc<str>>,
    cache: std::sync::Mutex<Downloads>,
}

impl PackReader {
    /// `all` is every object of the run (to size its packs), `selected` what the restore takes.
    pub fn new<'e>(
        storage: &Storage,
        run_path: &str,
        all: impl IntoIterator<Item = &'e ManifestEntry>,
        selected: impl IntoIterator<Item = &'e ManifestEntry>,
    ) -> PackReader {
        let mut size: HashMap<Arc<str>, u64> = HashMap::new();
        for located in all.into_iter().filter_map(|e| e.location.as_deref()) {
            let end = located.offset.saturating_add(located.length);
            let known = size.entry(located.pack.clone()).or_default();
            *known = (*known).max(end);
        }
        let mut wanted: HashMap<Arc<str>, u64> = HashMap::new();
        for located in selected.into_iter().filter_map(|e| e.location.as_deref()) {
            let bytes = wanted.entry(located.pack.clone()).or_default();
            *bytes = bytes.saturating_add(located.length);
        }
        let whole = wanted
            .into_iter()
            .filter(|(pack, bytes)| {
                let size = size.get(pack).copied().unwrap_or(u64::MAX);
                size <= packed::PACK_TARGET_BYTES as u64 + MAX_OBJECT_BYTES
                    && bytes.saturating_mul(2) >= size
            })
            .map(|(pack, _)| pack)
            .collect();
        PackReader {
            storage: storage.clone(),
            data_dir: data_dir_of_run(run_path),
            whole,
            cache: std::sync::Mutex::new(Default::default()),
        }
    }

    /// One object's bytes, decompressed to at most its recorded size (not yet verified).
    pub async fn read(&self, located: &Located, content: Content) -> Result<Vec<u8>, StorageError> {
        let key = packed::pack_key(&self.data_dir, &located.pack);
        let Some(download) = self.download(&located.pack, &key) else {
            return read_frame(&self.storage, &self.data_dir, located, content).await;
        };
        let pack = match download.await {
            Ok(pack) => pack,
            Err(err) => {
                // One failed download must not fail every object of the pack: this object
                // (and the ones after it) are read on their own.
                tracing::warn!(pack = %located.pack, error = %err, "cannot download a pack whole; reading its objects one by one");
                return read_frame(&self.storage, &self.data_dir, located, content).await;
            }
        };
        let frame = usize::try_from(located.offset)
            .ok()
            .zip(usize::try_from(located.offset.saturating_add(located.length)).ok())
            .filter(|(start, end)| start <= end && *end <= pack.len())
            .map(|(start, end)| pack.slice(start..end))
            .ok_or_else(|| StorageError::Corrupt {
                key: key.clone(),
                reason: format!(
                    "{} bytes long, shorter than the object at {}+{} the index names",
                    pack.len(),
                    located.offset,
                    located.length
                ),
            })?;
        open_frame(&self.storage, &key, frame, located, content)
    }

    /// The download of a pack read whole, shared by concurrent readers; `None`: read the
    /// object with a ranged GET (the pack is not worth reading whole, was read whole once
    /// already and evicted since, or its download failed).
    fn download(&self, pack: &Arc<str>, key: &str) -> Option<PackDownload> {
        if !self.whole.contains(pack) {
            return None;
        }
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, download)) = cache.0.iter().find(|(name, _)| name == pack) {
            let failed = download.peek().is_some_and(Result::is_err);
            return (!failed).then(|| download.clone());
        }
        // Each pack is downloaded whole at most once: a restore order that comes back to an
        // evicted pack reads from it with ranged GETs instead of downloading it again.
        if !cache.1.insert(pack.clone()) {
            return None;
        }
        let storage = self.storage.clone();
        let key = key.to_string();
        let limit = packed::PACK_TARGET_BYTES as u64 + MAX_OBJECT_BYTES;
        let download: PackDownload = futures::FutureExt::shared(Box::pin(async move {
            storage.get_bounded_raw(&key, limit).await.map_err(Arc::new)
        })
            as futures::future::BoxFuture<'static, _>);
        cache.0.push_back((pack.clone(), download.clone()));
        while cache.0.len() > PACKS_IN_MEMORY {
            cache.0.pop_front();
        }
        Some(download)
    }
}

/// Deletes the packs and index documents no kept run needs: everything under the Backup's
/// data folder that no complete run references and that was written before the newest
/// complete run started (so nothing a running run wrote is touched). Any manifest or index
/// document that cannot be read stops the collection: deleting on partial knowledge could
/// delete data a kept run needs. Returns how many objects were deleted.
pub async fn collect_garbage(
    storage: &Storage,
    backup_ns: &str,
    backup_name: &str,
) -> Result<u64, StorageError> {
    let data_dir = packed::data_dir(backup_ns, backup_name);
    let stored: Vec<_> = storage.list(&data_dir).try_collect().await?;
    if stored.is_empty() {
        return Ok(0);
    }
    let runs = crate::engine::retention::list_runs(storage, backup_ns, backup_name).await?;
    let Some(newest) = runs.iter().filter(|r| r.complete).map(|r| r.started).max() else {
        return Ok(0);
    };
    let mut documents = HashSet::new();
    let mut packs: HashSet<Arc<str>> = HashSet::new();
    for run in runs.iter().filter(|r| r.complete) {
        let manifest = catalogue::read_manifest(storage, &run.dir)
            .await
            .map_err(|e| StorageError::Corrupt {
                key: layout::manifest_key(&run.dir),
                reason: format!("garbage collection stopped: {e}"),
            })?;
        let Some(index) = manifest.packed else {
            continue;
        };
        // Each document read once and on its own: a delta read without its base still names
        // every pack it puts.
        for segment in &index.segments {
            if documents.insert(segment.id) {
                let doc: SegmentDoc = read_document(storage, &data_dir, &segment.id).await?;
                packs.extend(doc.packs.iter().map(|p| Arc::from(p.as_str())));
            }
        }
        for delta in &index.deltas {
            if documents.insert(delta.id) {
                let doc: DeltaDoc = read_document(storage, &data_dir, &delta.id).await?;
                for change in doc.changes {
                    packs.extend(change.packs.iter().map(|p| Arc::from(p.as_str())));
                }
            }
        }
    }
    let doomed: Vec<String> = stored
        .into_iter()
        .filter(|object| object.last_modified < newest)
        .filter(|object| {
            if let Some(pack) = packed::pack_of_key(&object.key) {
                !packs.contains(pack)
            } else if let Some(id) = packed::index_of_key(&object.key) {
                !documents.contains(&id)
            } else {
                false
            }
        })
        .map(|object| object.key)
        .collect();
    for key in &doomed {
        storage.delete(key).await?;
    }
    Ok(doomed.len() as u64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::manifest::{BackupRef, ClusterInfo};
    use chrono::TimeZone;
    use object_store::memory::InMemory;

    const NS: &str = "team-a";
    const NAME: &str = "nightly";

    pub(crate) fn storage() -> Storage {
        Storage::from_store(Arc::new(InMemory::new()), None, "memory".into()).unwrap()
    }

    fn entry(ns: &str, name: &str, bytes: &[u8]) -> ManifestEntry {
        ManifestEntry {
            key: layout::relative_object_key(Some(ns), "configmaps", name),
            api_version: Arc::from("v1"),
            kind: Arc::from("ConfigMap"),
            resource: Arc::from("configmaps"),
            namespace: Some(Arc::from(ns)),
            name: name.to_string(),
            size: bytes.len() as u64,
            sha256: Sha256Digest::of(bytes),
            location: None,
        }
    }

    pub(crate) fn started(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, hour, 0, 0).unwrap()
    }

    /// One packed run of `objects` (namespace, name, content), committed with a manifest
    /// like the backup engine's. Returns the run path and what it stored.
    async fn run(
        storage: &Storage,
        hour: u32,
        objects: &[(&str, &str, &str)],
    ) -> (String, PackedOutcome) {
        let mut writer = PackedWriter::start(storage, NS, NAME, None, started(hour))
            .await
            .unwrap();
        for (ns, name, content) in objects {
            writer
                .add(
                    entry(ns, name, content.as_bytes()),
                    Some(content.as_bytes()),
                    None,
                )
                .await
                .unwrap();
        }
        let outcome = writer.finish().await.unwrap();
        let path = commit(storage, hour, &outcome, objects.len() as u64).await;
        (path, outcome)
    }

    /// Writes the manifest of a packed run of the Backup `NS/NAME` started at `hour`.
    pub(crate) async fn commit(
        storage: &Storage,
        hour: u32,
        outcome: &PackedOutcome,
        objects: u64,
    ) -> String {
        let path = layout::run_path(NS, NAME, started(hour));
        let manifest = Manifest {
            format_version: crate::core::manifest::PACKED_FORMAT_VERSION,
            tool: "test".into(),
            backup: BackupRef {
                namespace: NS.into(),
                name: NAME.into(),
                uid: None,
            },
            spec: crate::core::manifest::RecordedSpec::new(&serde_json::Value::Null),
            cluster: ClusterInfo {
                server_version: "v1.36.0".into(),
                platform: None,
            },
            backup_path: path.clone(),
            started_at: started(hour),
            completed_at: started(hour),
            result: "Completed".into(),
            namespaces: Vec::new(),
            resource_types: Vec::new(),
            counts: Default::default(),
            total_objects: objects,
            total_bytes: 0,
            packed: Some(outcome.index.clone()),
            objects: Vec::new(),
            errors: Vec::new(),
            encryption: storage.encryption_record(),
        };
        storage
            .put(
                &layout::manifest_key(&path),
                Bytes::from(manifest.to_bytes().unwrap()),
            )
            .await
            .unwrap();
        path
    }

    pub(crate) const TEST_NS: &str = NS;
    pub(crate) const TEST_NAME: &str = NAME;

    /// A run that lists an object again with the fingerprint it had references it without its
    /// bytes and writes no change; the same content under a new fingerprint (another operator
    /// version) is referenced too, and its entry is put again with the new fingerprint.
    #[tokio::test]
    async fn listed_fingerprints_are_kept_and_reused() {
        let storage = storage();
        let content = "{\"a\":1}";
        let fp1 = Fingerprint::of_listed("v1", "ConfigMap", b"listed-1");
        let fp2 = Fingerprint::of_listed("v1", "ConfigMap", b"listed-2");
        let key = SegmentKey {
            namespace: Some("a".into()),
            resource: "configmaps".into(),
        };
        let mut outcomes = Vec::new();
        for (hour, fp) in [(1, fp1), (2, fp1), (3, fp2), (4, fp2)] {
            let mut writer = PackedWriter::start(&storage, NS, NAME, None, started(hour))
                .await
                .unwrap();
            let e = entry("a", "x", content.as_bytes());
            let known = match writer.previous_objects_for_listing() {
                Some(previous) => previous
                    .lookup(&key)
                    .await
                    .and_then(|m| m.get("x").and_then(|l| l.listed)),
                None => None,
            };
            let bytes = if known == Some(fp) {
                assert!(writer.reuses(&e).await.unwrap());
                None
            } else {
                Some(content.as_bytes())
            };
            let referenced = writer.add(e, bytes, Some(fp)).await.unwrap();
            assert_eq!(referenced, hour > 1, "run {hour}");
            let outcome = writer.finish().await.unwrap();
            commit(&storage, hour, &outcome, 1).await;
            outcomes.push((known, outcome));
        }
        // Run 2 knew the fingerprint and wrote no change; run 3 had a new one and put the entry
        // again (the data stayed where it was); run 4 knew the new one.
        assert_eq!(outcomes[1].0, Some(fp1));
        assert_eq!(outcomes[1].1.index.delta_entries(), 0);
        assert_eq!(outcomes[2].0, Some(fp1));
        assert_eq!(outcomes[2].1.index.delta_entries(), 1);
        assert_eq!(outcomes[3].0, Some(fp2));
        let last = layout::run_path(NS, NAME, started(4));
        assert_eq!(
            restored(&storage, &last).await,
            vec![("a/x".to_string(), content.to_string())]
        );
    }

    /// On an encrypting location every pack object and index document is sealed (no plaintext
    /// in the bucket), runs restore and build on each other as before, and a location without
    /// the key cannot read them: the error names the key.
    #[tokio::test]
    async fn an_encrypting_location_seals_every_object_and_document() {
        let plain = storage();
        let data: std::collections::BTreeMap<String, Vec<u8>> =
            [("k1.key".to_string(), vec![3u8; 32])].into();
        let keyring = crate::storage::sealed::Keyring::from_secret_data("test", &data).unwrap();
        let sealed = plain.with_keyring(Arc::new(keyring));
        let objects = [
            ("a", "x", "{\"password\":\"hunter2\"}"),
            ("a", "y", "{\"n\":1}"),
        ];
        let (first, _) = run(&sealed, 1, &objects).await;
        let (second, outcome) = run(&sealed, 2, &objects).await;
        assert_eq!(outcome.reused, 2);
        for path in [&first, &second] {
            let mut read = restored(&sealed, path).await;
            read.sort();
            assert_eq!(read.len(), 2);
            assert!(read[0].1.contains("hunter2"));
        }
        let stored: Vec<_> = plain.list("").try_collect().await.unwrap();
        assert!(stored.len() >= 4, "{stored:?}");
        for object in &stored {
            let bytes = plain.get_bounded_raw(&object.key, u64::MAX).await.unwrap();
            assert!(
                !bytes.windows(7).any(|w| w == b"hunter2"),
                "{} holds plaintext",
                object.key
            );
            if !object.key.contains("/packs/") {
                assert!(crate::storage::sealed::is_sealed(&bytes), "{}", object.key);
            }
        }
        let err = catalogue::read_manifest(&plain, &first).await.unwrap_err();
        assert!(err.to_string().contains("key \"k1\""), "{err}");
    }

    /// An altered index document of an encrypted run fails its tag: the restore says the index
    /// is unusable (`InvalidIndex`), not that storage failed.
    #[tokio::test]
    async fn an_altered_sealed_index_document_is_an_invalid_index() {
        let plain = storage();
        let data = [("k1.key".to_string(), vec![5u8; 32])].into();
        let sealed = plain.with_keyring(Arc::new(
            crate::storage::sealed::Keyring::from_secret_data("test", &data).unwrap(),
        ));
        let (path, _) = run(&sealed, 1, &[("a", "x", "{}")]).await;
        let listed: Vec<_> = plain
            .list(&packed::data_dir(NS, NAME))
            .try_collect()
            .await
            .unwrap();
        let document = listed
            .iter()
            .find(|o| !o.key.contains("/packs/"))
            .expect("an index document");
        let mut bytes = plain
            .get_bounded_raw(&document.key, u64::MAX)
            .await
            .unwrap()
            .to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        plain
            .put_raw(&document.key, Bytes::from(bytes))
            .await
            .unwrap();
        let err = crate::engine::restore::read_manifest(&sealed, &path)
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "InvalidIndex", "{err}");
        assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    }

    /// After a key rotation the first run stores everything with the new key (it does not build
    /// on a run sealed with the old one), so it restores with the new key alone.
    #[tokio::test]
    async fn after_a_key_rotation_a_run_needs_only_the_new_key() {
        let plain = storage();
        let keys = |entries: &[(&str, &[u8])]| {
            let data: std::collections::BTreeMap<String, Vec<u8>> = entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect();
            Arc::new(crate::storage::sealed::Keyring::from_secret_data("test", &data).unwrap())
        };
        let old = plain.with_keyring(keys(&[("k1.key", &[1u8; 32])]));
        let rotated = plain.with_keyring(keys(&[
            ("k1.key", &[1u8; 32]),
            ("k2.key", &[2u8; 32]),
            ("active", b"k2"),
        ]));
        let new_only = plain.with_keyring(keys(&[("k2.key", &[2u8; 32])]));
        let objects = [("a", "x", "{\"n\":1}"), ("a", "y", "{\"n\":2}")];
        run(&old, 1, &objects).await;
        let (second, outcome) = run(&rotated, 2, &objects).await;
        assert_eq!(outcome.reused, 0);
        let (third, outcome) = run(&rotated, 3, &objects).await;
        assert_eq!(outcome.reused, 2);
        for path in [&second, &third] {
            assert_eq!(restored(&new_only, path).await.len(), 2);
        }
    }

    /// A change of scope is a change of key: the first run after it stores everything, so a
    /// run of scope `All` never references frames left plain by a run of scope `Secrets`.
    #[tokio::test]
    async fn a_change_of_scope_stores_everything_once() {
        let plain = storage();
        let data = [("k1.key".to_string(), vec![1u8; 32])].into();
        let all = plain.with_keyring(Arc::new(
            crate::storage::sealed::Keyring::from_secret_data("test", &data).unwrap(),
        ));
        let secrets = all.with_scope(crate::api::EncryptionScope::Secrets);
        let objects = [("a", "x", "{\"n\":1}"), ("a", "y", "{\"n\":2}")];
        run(&secrets, 1, &objects).await;
        let (_, outcome) = run(&secrets, 2, &objects).await;
        assert_eq!(outcome.reused, 2);
        let (_, outcome) = run(&all, 3, &objects).await;
        assert_eq!(outcome.reused, 0);
        let (fourth, outcome) = run(&all, 4, &objects).await;
        assert_eq!(outcome.reused, 2);
        assert_eq!(restored(&all, &fourth).await.len(), 2);
    }

    /// An object listed as before whose pack is gone is not taken as reusable.
    #[tokio::test]
    async fn a_missing_pack_is_not_reused_on_a_fingerprint_match() {
        let storage = storage();
        let (_, first) = run(&storage, 1, &[("a", "x", "{}")]).await;
        let data = packed::data_dir(NS, NAME);
        let packs: Vec<_> = storage
            .list(&packed::packs_dir(&data))
            .try_collect()
            .await
            .unwrap();
        for pack in packs {
            storage.delete(&pack.key).await.unwrap();
        }
        let mut writer = PackedWriter::start(&storage, NS, NAME, None, started(2))
            .await
            .unwrap();
        assert!(!writer.reuses(&entry("a", "x", b"{}")).await.unwrap());
        assert!(first.index.segments.len() == 1);
    }

    /// Every object of a run, read back and verified.
    async fn restored(storage: &Storage, path: &str) -> Vec<(String, String)> {
        let mut manifest = catalogue::read_manifest(storage, path).await.unwrap();
        expand(storage, path, &mut manifest).await.unwrap();
        let mut out = Vec::new();
        for entry in &manifest.objects {
            let bytes = read_object(
                storage,
                path,
                entry.location.as_ref().unwrap(),
                Content::Other,
            )
            .await
            .unwrap();
            entry.verify(&bytes).unwrap();
            out.push((
                format!("{}/{}", entry.namespace.as_deref().unwrap(), entry.name),
                String::from_utf8(bytes).unwrap(),
            ));
        }
        out
    }

    fn owned(objects: &[(&str, &str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = objects
            .iter()
            .map(|(ns, n, c)| (format!("{ns}/{n}"), c.to_string()))
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn runs_are_incremental_and_each_restores_on_its_own() {
        let storage = storage();
        let first = [
            ("a", "x", "{\"x\":1}"),
            ("a", "y", "{\"y\":1}"),
            ("b", "z", "{\"z\":1}"),
        ];
        let (path1, out1) = run(&storage, 1, &first).await;
        assert_eq!(out1.reused, 0);
        assert!(out1.index.deltas.is_empty());
        assert_eq!(restored(&storage, &path1).await, owned(&first));

        // y changed, z gone with its namespace, w new.
        let second = [
            ("a", "w", "{\"w\":1}"),
            ("a", "x", "{\"x\":1}"),
            ("a", "y", "{\"y\":2}"),
        ];
        let (path2, out2) = run(&storage, 2, &second).await;
        assert_eq!(out2.reused, 1);
        assert_eq!(out2.index.deltas.len(), 1, "a delta, not a new base");
        assert_eq!(restored(&storage, &path2).await, owned(&second));
        assert_eq!(restored(&storage, &path1).await, owned(&first));

        // Unchanged: nothing but the manifest is uploaded.
        let before = storage.stats();
        let (path3, out3) = run(&storage, 3, &second).await;
        let cost = storage.stats().since(&before);
        assert_eq!(out3.reused, 3);
        assert_eq!(cost.uploads, 1, "only the manifest: {cost:?}");
        assert_eq!(restored(&storage, &path3).await, owned(&second));

        // Retention deletes the first two runs: the third still restores, garbage goes.
        storage
            .put(
                "backups/team-a/nightly/data/packs/stray.pack",
                Bytes::from_static(b"x"),
            )
            .await
            .unwrap();
        storage.delete_dir(&path1).await.unwrap();
        storage.delete_dir(&path2).await.unwrap();
        let deleted = collect_garbage(&storage, NS, NAME).await.unwrap();
        assert!(deleted >= 1, "the stray pack is garbage");
        assert_eq!(restored(&storage, &path3).await, owned(&second));
        assert_eq!(
            storage
                .head("backups/team-a/nightly/data/packs/stray.pack")
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_missing_pack_is_stored_again_not_referenced() {
        let storage = storage();
        let objects = [("a", "x", "{\"x\":1}")];
        let (_, out1) = run(&storage, 1, &objects).await;
        let pack = out1.index.segments[0].id;
        let doc: SegmentDoc = read_document(&storage, &packed::data_dir(NS, NAME), &pack)
            .await
            .unwrap();
        storage
            .delete(&packed::pack_key(
                &packed::data_dir(NS, NAME),
                &doc.packs[0],
            ))
            .await
            .unwrap();
        let (path2, out2) = run(&storage, 2, &objects).await;
        assert_eq!(out2.reused, 0);
        assert_eq!(restored(&storage, &path2).await, owned(&objects));
    }

    #[tokio::test]
    async fn an_unreadable_previous_index_does_not_stop_later_runs() {
        let storage = storage();
        let first = [("a", "x", "{\"x\":1}"), ("a", "gone", "{\"g\":1}")];
        let (_, out1) = run(&storage, 1, &first).await;
        // Run 2 is a delta on run 1; then run 1's segment document is damaged.
        let second = [("a", "x", "{\"x\":1}"), ("a", "gone", "{\"g\":1}")];
        let (_, out2) = run(&storage, 2, &second).await;
        assert_eq!(out2.index.segments, out1.index.segments);
        let id = out1.index.segments[0].id;
        storage
            .put(
                &packed::index_key(&packed::data_dir(NS, NAME), &id),
                Bytes::from_static(b"damaged"),
            )
            .await
            .unwrap();
        // Run 3 cannot read the previous objects of the key: it stores them again, and the
        // object deleted since does not come back.
        let third = [("a", "x", "{\"x\":1}")];
        let (path3, out3) = run(&storage, 3, &third).await;
        assert_eq!(out3.reused, 0);
        // Run 3 does not reference the damaged document: it restores, without "gone".
        assert!(!out3.index.segments.iter().any(|s| s.id == id));
        assert_eq!(restored(&storage, &path3).await, owned(&third));
    }

    #[tokio::test]
    async fn damaged_data_is_a_clear_error() {
        let storage = storage();
        let objects = [("a", "x", "{\"x\":1}")];
        let (path, out) = run(&storage, 1, &objects).await;
        let data = packed::data_dir(NS, NAME);
        // An index document whose content does not match its name.
        let id = out.index.segments[0].id;
        storage
            .put(
                &packed::index_key(&data, &id),
                Bytes::from(zstd::bulk::compress(b"{}", 3).unwrap()),
            )
            .await
            .unwrap();
        let mut manifest = catalogue::read_manifest(&storage, &path).await.unwrap();
        let err = expand(&storage, &path, &mut manifest).await.unwrap_err();
        assert!(err.to_string().contains("does not match its name"), "{err}");

        // A frame that is garbage, or decompresses to more than recorded.
        let located = Located {
            sha256: Sha256Digest::default(),
            size: 4,
            pack: Arc::from("bad"),
            offset: 0,
            length: 8,
            listed: None,
        };
        storage
            .put(
                &packed::pack_key(&data, "bad"),
                Bytes::from_static(b"garbage!"),
            )
            .await
            .unwrap();
        let err = read_object(&storage, &path, &located, Content::Other)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a zstd frame"), "{err}");
        let big = zstd::bulk::compress(&[b'a'; 100], 3).unwrap();
        let located = Located {
            length: big.len() as u64,
            listed: None,
            ..located
        };
        storage
            .put(&packed::pack_key(&data, "bad"), Bytes::from(big))
            .await
            .unwrap();
        assert!(
            read_object(&storage, &path, &located, Content::Other)
                .await
                .is_err()
        );
        // A range beyond the pack's end.
        let located = Located {
            offset: 1000,
            ..located
        };
        assert!(
            read_object(&storage, &path, &located, Content::Other)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_restore_reads_a_pack_it_takes_most_of_once() {
        let storage = storage();
        let objects: Vec<(String, String)> = (0..50)
            .map(|i| {
                (
                    format!("o{i:02}"),
                    format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(i)),
                )
            })
            .collect();
        let refs: Vec<(&str, &str, &str)> = objects
            .iter()
            .map(|(n, c)| ("a", n.as_str(), c.as_str()))
            .collect();
        let (path, _) = run(&storage, 1, &refs).await;
        let mut manifest = catalogue::read_manifest(&storage, &path).await.unwrap();
        expand(&storage, &path, &mut manifest).await.unwrap();

        // All of it: one GET for the pack.
        let reader = PackReader::new(&storage, &path, &manifest.objects, &manifest.objects);
        let before = storage.stats();
        for entry in &manifest.objects {
            let bytes = reader
                .read(entry.location.as_ref().unwrap(), Content::Other)
                .await
                .unwrap();
            entry.verify(&bytes).unwrap();
        }
        assert_eq!(storage.stats().since(&before).requests, 1);

        // One object of fifty: a ranged GET, not the pack.
        let one = &manifest.objects[7];
        let reader = PackReader::new(&storage, &path, &manifest.objects, [one]);
        let before = storage.stats();
        let bytes = reader
            .read(one.location.as_ref().unwrap(), Content::Other)
            .await
            .unwrap();
        one.verify(&bytes).unwrap();
        let cost = storage.stats().since(&before);
        assert_eq!(
            (cost.requests, cost.downloaded_bytes),
            (1, one.location.as_ref().unwrap().length)
        );

        // A pack cut short: a clear error naming it, not garbage.
        let located = manifest.objects[49].location.clone().unwrap();
        let key = packed::pack_key(&packed::data_dir(NS, NAME), &located.pack);
        let whole = storage.get(&key).await.unwrap();
        storage
            .put(&key, whole.slice(..whole.len() / 2))
            .await
            .unwrap();
        let reader = PackReader::new(&storage, &path, &manifest.objects, &manifest.objects);
        let err = reader
            .read(&located, Content::Other)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("shorter than the object"), "{err}");
    }
}
