//! The restore engine: the I/O around the pure steps of this module's siblings (see
//! [`crate::core::restore`] for the per-object pipeline).
//!
//! One restore, in this order:
//!
//! 1. read and parse `<backupPath>/manifest.json` (no manifest: the run never finished, or the
//!    path is not a backup — refused);
//! 2. validate the target ([`NamespaceMap::new`]) and select the objects ([`select`]), in
//!    restore order (CRDs, namespaces, then the priority of [`crate::core::restore::order`]);
//!    when a `resourceTypes` entry names no type of the backup, the backup's stored CRDs are
//!    read first, so the short names they declare resolve (`cert` for cert-manager's
//!    Certificates). Target parts that select nothing (a type the backup lacks, a mapping of a
//!    namespace it does not have) become notes in the Restore's message. What the bucket could
//!    widen the restore with ([`crate::core::restore::guard`]: names unfit for a request path,
//!    cluster-scoped objects whose type is not named, `kube-*` namespaces not named, sensitive
//!    objects without `includeSensitiveResources`) is recorded as failed or skipped at once,
//!    in every mode, and never downloaded;
//! 3. `validateOnly`: download, verify, parse and check every selected object; no API call;
//! 4. otherwise: make sure every target namespace exists (`createNamespaces`), then per object
//!    download → verify → parse → check → decide → clean → map → create, recording each
//!    outcome in [`StatusLists`]. Before the first request about an object, its type and scope
//!    are checked against what discovery serves for its `apiVersion` and `kind`
//!    ([`check_served`]). One priority level at a time (all CRDs, then all
//!    namespaces, ...), up to `objects_in_flight` ([`RESTORE_CONCURRENCY`] by default) objects of a level at once (one with
//!    `conflictResolution: fail`, so it stops exactly at the conflict); a restored CRD is
//!    waited for (Established) before its level ends, so its custom resources find it served.
//!    Outcomes are recorded in restore order whatever order requests finish in.
//! 5. nothing waits for its owners: a reference (`ownerReferences`) to an owner restored later
//!    is removed on create and remembered (names only, see [`crate::core::restore::owners`]); after the last
//!    level each one is put back with its owner's new UID (a JSON Patch guarded by the
//!    object's resourceVersion), unless the owner's controller adopted the object meanwhile.
//!    Not in a dry run, which writes nothing to put back.
//!
//! Whatever the API server answers a create with, the engine looks the object up: an existing
//! object is a conflict (`conflictResolution`) even when the refusal is not a 409 (a Service
//! whose pinned nodePort is taken by that same Service gets a 422).
//!
//! An item error never stops the restore; only `conflictResolution: fail` does (the outcome's
//! `stopped` names the object). In a dry run every create and replace is sent with the API
//! server's `dryRun=All`, so admission and validation run for real; objects whose namespace or
//! CRD this restore would create first cannot be checked that way and are reported as they
//! would be created.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::api::{BackupInfo, ConflictResolution, RestoreSpec, to_time};
use crate::core::manifest::{Manifest, ManifestEntry};
use crate::core::restore::clean::{CleanOutcome, check_stored_object, clean_for_restore};
use crate::core::restore::guard::check_served;
use crate::core::restore::mapping::{MappingError, NamespaceMap, apply_mapping};
use crate::core::restore::order::{CRD_TYPE_DIR, NAMESPACE_TYPE_DIR, restore_priority};
use crate::core::restore::owners::{
    Decision, HeldReference, Lookup, OwnerIndex, OwnerKey, OwnerRef, Resolution, Rewritten, decide,
    group_of, owner_references, reattach_patch, reattachment, rewrite_owner_references,
};
use crate::core::restore::select::{
    ObjectDecision, RestoreSelection, SelectError, SelectedItem, needs_stored_crds, select,
};
use crate::core::restore::status::{Action, ObjectRef, StatusLists};
use crate::core::types::catalog::TypeCatalog;
use crate::engine::packed::PackReader;
use crate::k8s::discovery::{DiscoveryError, discover};
use crate::k8s::retry::with_retries;
use crate::storage::catalogue::{self, ManifestReadError};
use crate::storage::{Content, Storage};

/// Field manager of the objects a restore creates.
pub const RESTORE_FIELD_MANAGER: &str = "cluster-backup-restore";
/// Largest stored object the engine downloads. The API server refuses requests over 3 MiB
/// and etcd stores at most 1.5 MiB per object, so anything larger recorded in a manifest is
/// not a restorable object (storage contents are untrusted input).
pub const MAX_OBJECT_BYTES: u64 = 16 * 1024 * 1024;
/// Objects of one priority level restored at the same time, by default
/// (`--restore-objects-in-flight`).
pub const RESTORE_CONCURRENCY: usize = 16;
/// Longest wait for a restored CRD to become Established.
pub const CRD_ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts to put an object's owner references back while controllers change it at the same
/// time (each attempt reads it again).
pub const REATTACH_ATTEMPTS: u32 = 5;

const ALREADY_EXISTS: &str = "already exists";

/// What the engine is doing now (the controller turns it into the Restore's phase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    /// Reading the manifest, checking the target.
    #[default]
    Validating,
    /// Downloading and verifying objects without restoring them (`validateOnly`).
    Downloading,
    /// Creating objects.
    Restoring,
}

/// Progress reported while the engine runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RestoreProgress {
    pub stage: Stage,
    /// Known once the manifest is read.
    pub backup_info: Option<BackupInfo>,
    /// Objects handled so far.
    pub processed: u64,
    /// Objects selected.
    pub total: u64,
}

/// How a restore ended (item errors included; see `lists`).
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreOutcome {
    pub backup_info: BackupInfo,
    pub lists: StatusLists,
    /// `validateOnly`: objects downloaded, verified and parsed without a problem.
    pub verified: u64,
    /// Set when the restore stopped early (`conflictResolution: fail`); names the object.
    pub stopped: Option<String>,
    pub dry_run: bool,
    pub validate_only: bool,
}

/// A restore that could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// No manifest, or one that cannot be read: the backup is incomplete, unreachable or not
    /// one of ours.
    #[error(transparent)]
    Manifest(#[from] ManifestReadError),
    #[error("{source}")]
    InvalidTarget {
        #[from]
        source: MappingError,
    },
    #[error("{source}")]
    Select {
        #[from]
        source: SelectError,
    },
    #[error("{source}")]
    Discovery {
        #[from]
        source: DiscoveryError,
    },
    #[error("cannot check namespace {namespace}: {source}")]
    Namespace {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

impl RestoreError {
    /// Reason for conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            RestoreError::Manifest(ManifestReadError::Missing { .. }) => "BackupIncomplete",
            RestoreError::Manifest(ManifestReadError::Storage { .. }) => "StorageError",
            RestoreError::Manifest(ManifestReadError::Invalid { .. }) => "InvalidManifest",
            RestoreError::Manifest(ManifestReadError::Index { .. }) => "InvalidIndex",
            RestoreError::InvalidTarget { .. } | RestoreError::Select { .. } => "InvalidSpec",
            RestoreError::Discovery { .. } | RestoreError::Namespace { .. } => "ApiError",
        }
    }
}

/// Reads and parses the manifest of the backup at `backup_path`; for a packed run, with every
/// object's entry read from its index.
pub async fn read_manifest(storage: &Storage, backup_path: &str) -> Result<Manifest, RestoreError> {
    let mut manifest = catalogue::read_manifest(storage, backup_path).await?;
    crate::engine::packed::expand(storage, backup_path, &mut manifest)
        .await
        .map_err(|source| {
            let path = backup_path.to_string();
            // Missing, damaged or altered (a failed AEAD tag) index documents make the backup
            // unusable; an outage does not.
            let damaged = matches!(
                source.category(),
                crate::storage::ErrorCategory::Integrity | crate::storage::ErrorCategory::NotFound
            );
            RestoreError::Manifest(if damaged {
                ManifestReadError::Index { path, source }
            } else {
                ManifestReadError::Storage { path, source }
            })
        })?;
    Ok(manifest)
}

/// `status.backupInfo` from a manifest.
pub fn backup_info(manifest: &Manifest, backup_path: &str) -> BackupInfo {
    BackupInfo {
        backup_path: backup_path.to_string(),
        backup_time: Some(to_time(manifest.started_at)),
        total_resources: i64::try_from(manifest.total_objects).unwrap_or(i64::MAX),
        resource_types: manifest.resource_types.clone(),
        namespaces: manifest.namespaces.clone(),
    }
}

/// Runs one restore; see the module docs.
pub async fn run_restore(
    client: &Client,
    storage: &Storage,
    spec: &RestoreSpec,
    backup_path: &str,
    objects_in_flight: usize,
    progress: &watch::Sender<RestoreProgress>,
) -> Result<RestoreOutcome, RestoreError> {
    let path = backup_path.trim_end_matches('/');
    progress.send_modify(|p| p.stage = Stage::Validating);
    let manifest = read_manifest(storage, path).await?;
    let info = backup_info(&manifest, path);
    progress.send_modify(|p| p.backup_info = Some(info.clone()));

    let map = NamespaceMap::new(&spec.target, &manifest.namespaces)?;
    let mut catalog = TypeCatalog::from_manifest(&manifest);
    if needs_stored_crds(&catalog, &spec.target) {
        add_stored_crds(storage, path, &manifest, &mut catalog).await;
    }
    let selection = select(&manifest, &catalog, &spec.target, &spec.options, &map)?;
    let total = selection.items.len() as u64;

    let validate_only = spec.options.validate_only;
    let dry_run = spec.options.dry_run && !validate_only;
    let mut state = LoopState {
        lists: StatusLists::new().dry_run(dry_run),
        verified: 0,
        processed: 0,
        stopped: None,
        held: Vec::new(),
        served: Vec::new(),
    };
    for note in selection.notes() {
        tracing::info!(%note, "part of the restore target selects nothing");
        state.lists.note(note);
    }
    if !selection.guarded.is_empty() {
        tracing::info!(
            refused = selection.guarded.len(),
            "objects of the backup the restore does not take (see the status lists)"
        );
    }
    for guarded in &selection.guarded {
        state.lists.record(
            &guarded.item.object_ref(),
            guarded.action,
            Some(&guarded.message),
        );
    }
    let packs = manifest.packed.is_some().then(|| {
        PackReader::new(
            storage,
            path,
            &manifest.objects,
            selection.items.iter().map(|item| item.entry),
        )
    });
    let mut run = Run {
        client,
        storage,
        path,
        packs,
        map: &map,
        dry_run,
        validate_only,
        conflict: spec.target.conflict_resolution,
        resources: BTreeMap::new(),
        owner_types: BTreeMap::new(),
        missing_namespaces: BTreeMap::new(),
        pending: BTreeSet::new(),
        owners: Mutex::new(OwnerIndex::new(
            selection.items.iter().map(OwnerKey::of_item),
        )),
        looked_up: Mutex::new(BTreeMap::new()),
    };
    progress.send_modify(|p| {
        p.total = total;
        p.stage = if validate_only {
            Stage::Downloading
        } else {
            Stage::Restoring
        };
    });

    if !validate_only {
        for r in discover(client).await? {
            run.resources.insert(
                (r.api.api_version.clone(), r.api.kind.clone()),
                (r.api.plural.clone(), r.namespaced()),
            );
            // Owners are matched by group and kind; any served version has their UID.
            let type_key = (r.api.group.clone(), r.api.kind.clone());
            if r.preferred || !run.owner_types.contains_key(&type_key) {
                let namespaced = r.namespaced();
                run.owner_types.insert(type_key, (r.api, namespaced));
            }
        }
        run.prepare_namespaces(
            &selection.target_namespaces,
            &selection.items,
            spec,
            &mut state.lists,
        )
        .await?;
    }

    crate::engine::faults::pause_point("before-restore").await;
    // `fail` stops at the first conflict: nothing may be in flight beside it.
    let concurrency = if run.conflict == ConflictResolution::Fail {
        1
    } else {
        objects_in_flight.max(1)
    };
    // One priority level at a time, so a level starts only when everything it may depend on
    // (CRDs Established, namespaces, ...) is done.
    for level in selection
        .items
        .chunk_by(|a, b| restore_priority(&a.entry.resource) == restore_priority(&b.entry.resource))
    {
        run.drive(level, concurrency, &selection, &mut state, progress)
            .await;
        if run.dry_run {
            run.pending.extend(state.served.drain(..));
        }
        if state.stopped.is_some() {
            break;
        }
    }
    // Also after a `fail` stop: what was created gets the references its restored owners can
    // give it.
    let held = std::mem::take(&mut state.held);
    run.reattach_owners(held, &mut state.lists).await;

    Ok(RestoreOutcome {
        backup_info: info,
        lists: state.lists,
        verified: state.verified,
        stopped: state.stopped,
        dry_run,
        validate_only,
    })
}

/// What happened to one object; recorded in restore order by [`run_restore`].
#[derive(Debug)]
enum ItemResult {
    /// Left out by `labelSelector`; not recorded.
    NotSelected,
    /// `validateOnly`: downloaded, verified, parsed and checked.
    Verified,
    /// The message is a skip's reason or a failure's error.
    Record(Action, Option<String>),
    /// The API server created, replaced or already had the object; `uid` is its UID there
    /// (when it said); `owners`: the references removed from it (dropped, or held to put back
    /// later) when it was written.
    Applied {
        action: Action,
        message: Option<String>,
        uid: Option<String>,
        owners: Rewritten,
    },
    /// A CRD was created (in a dry run: would be); `served_type` is its `plural.group`.
    CrdCreated {
        served_type: String,
        uid: Option<String>,
        owners: Rewritten,
    },
    /// `conflictResolution: fail` met an existing object; the message names it.
    Stop(String),
}

/// An object created without some of its owner references, whose owners were restored later.
struct Held<'i, 'm> {
    item: &'i SelectedItem<'m>,
    /// The object's UID as created: the object to patch, not one made since with its name.
    uid: Option<String>,
    references: Vec<HeldReference>,
}

/// What the restore loop accumulates.
struct LoopState<'i, 'm> {
    lists: StatusLists,
    verified: u64,
    processed: u64,
    stopped: Option<String>,
    /// Objects whose references to owners restored later are to be put back at the end.
    held: Vec<Held<'i, 'm>>,
    /// `plural.group` of CRDs created since the last level ended.
    served: Vec<String>,
}

impl<'i, 'm> LoopState<'i, 'm> {
    /// Counts the references dropped from a written object and keeps those to put back.
    fn hold(&mut self, item: &'i SelectedItem<'m>, uid: &Option<String>, owners: Rewritten) {
        self.lists.owner_references_dropped(owners.dropped);
        if !owners.held.is_empty() {
            self.held.push(Held {
                item,
                uid: uid.clone(),
                references: owners.held,
            });
        }
    }
}

/// One running restore; read-only while objects are restored, except the owner index and
/// lookup cache (never locked across an await).
struct Run<'a> {
    client: &'a Client,
    storage: &'a Storage,
    path: &'a str,
    /// A packed run's objects (`None` for one file per object).
    packs: Option<PackReader>,
    map: &'a NamespaceMap,
    dry_run: bool,
    validate_only: bool,
    conflict: ConflictResolution,
    /// (apiVersion, kind) → plural and whether it is namespaced, from discovery.
    resources: BTreeMap<(String, String), (String, bool)>,
    /// (group, kind) → resource (preferred version) and whether it is namespaced, from
    /// discovery: how to look up owners that are not in the restore.
    owner_types: BTreeMap<(String, String), (ApiResource, bool)>,
    /// Target namespaces that do not exist and are not created, with the reason.
    missing_namespaces: BTreeMap<String, String>,
    /// Dry run: `namespace/<name>` of namespaces and `plural.group` of CRD-served types this
    /// restore would create first, so the API server cannot check objects in them.
    pending: BTreeSet<String>,
    /// The selected objects and the UIDs of those restored so far.
    owners: Mutex<OwnerIndex>,
    /// Owners looked up in the target cluster: their UID, `None` when they do not exist.
    looked_up: Mutex<BTreeMap<OwnerKey, Option<String>>>,
}

/// Downloads, verifies (size, sha256), parses and checks one stored object.
async fn load_object(
    storage: &Storage,
    path: &str,
    entry: &ManifestEntry,
    packs: Option<&PackReader>,
) -> Result<Value, String> {
    let bytes = read_stored(storage, path, entry, packs).await?;
    entry.verify(&bytes).map_err(|e| e.to_string())?;
    let obj: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("stored object {} is not valid JSON: {e}", entry.key))?;
    check_stored_object(&obj, entry).map_err(|e| e.to_string())?;
    Ok(obj)
}

/// Downloads one stored object of the run at `path` (opened and decompressed, at most the size
/// its entry says), not yet verified: the one read of stored objects that restores, `backups
/// verify`, `download` and `diff` share.
pub async fn read_stored(
    storage: &Storage,
    path: &str,
    entry: &ManifestEntry,
    packs: Option<&PackReader>,
) -> Result<bytes::Bytes, String> {
    if entry.size > MAX_OBJECT_BYTES {
        return Err(format!(
            "stored object {} is {} bytes, more than any Kubernetes object can be \
             ({MAX_OBJECT_BYTES} bytes); not downloaded",
            entry.key, entry.size
        ));
    }
    // A Secret must have been sealed when the location encrypts Secrets, whatever its scope.
    let content = Content::of(&entry.api_version, &entry.kind);
    match (&entry.location, packs) {
        (Some(located), Some(packs)) => packs.read(located, content).await.map(bytes::Bytes::from),
        (Some(located), None) => {
            crate::engine::packed::read_object(storage, path, located, content)
                .await
                .map(bytes::Bytes::from)
        }
        // Never more than the manifest says: a larger object is refused while it is read.
        (None, _) => {
            storage
                .get_bounded_as(&format!("{path}/{}", entry.key), content, entry.size)
                .await
        }
    }
    .map_err(|e| format!("cannot read stored object {}: {e}", entry.key))
}

/// Adds the names the backup's stored CRDs declare (short names of custom resources) to
/// `catalog`. A CRD that cannot be read only costs its names: the type names it would have
/// resolved are then reported as matching nothing.
async fn add_stored_crds(
    storage: &Storage,
    path: &str,
    manifest: &Manifest,
    catalog: &mut TypeCatalog,
) {
    // A plain queue, as in `reattach_owners`: `buffer_unordered` over borrowing futures trips
    // rustc's `Send` inference for the controller's future.
    let mut queue = manifest
        .objects
        .iter()
        .filter(|e| &*e.resource == CRD_TYPE_DIR);
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < RESTORE_CONCURRENCY {
            match queue.next() {
                Some(entry) => in_flight.push(load_object(storage, path, entry, None)),
                None => break,
            }
        }
        match in_flight.next().await {
            Some(Ok(crd)) => catalog.add_crd(&crd),
            Some(Err(error)) => tracing::warn!(%error, "cannot read a stored CRD's names"),
            None => break,
        }
    }
}

/// Why an object's namespace is missing when `createNamespaces` is off.
fn missing_namespace_message(ns: &str) -> String {
    format!(
        "namespace {ns} does not exist in the target cluster; set options.createNamespaces: \
         true to create it, or map the objects to an existing namespace"
    )
}

impl Run<'_> {
    /// Downloads, verifies, parses and checks one object.
    async fn load(&self, item: &SelectedItem<'_>) -> Result<Value, String> {
        load_object(self.storage, self.path, item.entry, self.packs.as_ref()).await
    }

    fn owners(&self) -> MutexGuard<'_, OwnerIndex> {
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Restores `level` with up to `concurrency` objects at once and records every outcome in
    /// order, whatever order requests finish in. Stops at a `fail` conflict.
    async fn drive<'i, 'm>(
        &self,
        level: &'i [SelectedItem<'m>],
        concurrency: usize,
        selection: &RestoreSelection<'_>,
        state: &mut LoopState<'i, 'm>,
        progress: &watch::Sender<RestoreProgress>,
    ) {
        let mut queue = level.iter();
        let mut in_flight = FuturesOrdered::new();
        loop {
            while in_flight.len() < concurrency {
                match queue.next() {
                    Some(item) => in_flight
                        .push_back(async move { (item, self.process(item, selection).await) }),
                    None => break,
                }
            }
            let Some((item, result)) = in_flight.next().await else {
                break;
            };
            let object_ref = item.object_ref();
            let uid = match result {
                ItemResult::NotSelected => None,
                ItemResult::Verified => {
                    state.verified += 1;
                    None
                }
                ItemResult::Record(action, message) => {
                    state.lists.record(&object_ref, action, message.as_deref());
                    None
                }
                ItemResult::Applied {
                    action,
                    message,
                    uid,
                    owners,
                } => {
                    state.lists.record(&object_ref, action, message.as_deref());
                    state.hold(item, &uid, owners);
                    uid
                }
                ItemResult::CrdCreated {
                    served_type,
                    uid,
                    owners,
                } => {
                    state.lists.created(&object_ref);
                    state.served.push(served_type);
                    state.hold(item, &uid, owners);
                    uid
                }
                ItemResult::Stop(message) => {
                    state.lists.failed(&object_ref, ALREADY_EXISTS);
                    state.stopped = Some(message);
                    None
                }
            };
            self.owners().finish(OwnerKey::of_item(item), uid);
            state.processed += 1;
            progress.send_modify(|p| p.processed = state.processed);
            crate::engine::faults::crash_at_count("restore", state.processed);
            if state.stopped.is_some() {
                break;
            }
        }
    }

    /// The whole pipeline for one object (see the module docs).
    async fn process(
        &self,
        item: &SelectedItem<'_>,
        selection: &RestoreSelection<'_>,
    ) -> ItemResult {
        let obj = match self.load(item).await {
            Ok(obj) => obj,
            Err(message) => return ItemResult::Record(Action::Failed, Some(message)),
        };
        match selection.decide_object(item.entry, &obj) {
            ObjectDecision::NotSelected => ItemResult::NotSelected,
            ObjectDecision::Skip(reason) => {
                ItemResult::Record(Action::Skipped, Some(reason.to_string()))
            }
            ObjectDecision::Restore if self.validate_only => ItemResult::Verified,
            ObjectDecision::Restore => self.restore_one(item, obj).await,
        }
    }

    /// Checks every target namespace; creates the missing ones when asked to.
    async fn prepare_namespaces(
        &mut self,
        targets: &BTreeSet<String>,
        items: &[SelectedItem<'_>],
        spec: &RestoreSpec,
        lists: &mut StatusLists,
    ) -> Result<(), RestoreError> {
        let restored_as_object: BTreeSet<&str> = items
            .iter()
            .filter(|i| &*i.entry.resource == NAMESPACE_TYPE_DIR)
            .map(|i| i.target_name())
            .collect();
        let api: Api<Namespace> = Api::all(self.client.clone());
        for ns in targets {
            let exists = match api.get_opt(ns).await {
                Ok(found) => found.is_some(),
                // The requester may not even read it: its objects fail with that reason.
                Err(kube::Error::Api(status)) if status.is_forbidden() => {
                    self.missing_namespaces.insert(
                        ns.clone(),
                        format!(
                            "cannot read namespace {ns}: {} ({})",
                            status.message, status.reason
                        ),
                    );
                    continue;
                }
                Err(source) => {
                    return Err(RestoreError::Namespace {
                        namespace: ns.clone(),
                        source,
                    });
                }
            };
            if exists {
                continue;
            }
            if restored_as_object.contains(ns.as_str()) {
                // The backup's own Namespace object is restored first (restore order).
                if self.dry_run {
                    self.pending.insert(format!("namespace/{ns}"));
                }
                continue;
            }
            if !spec.options.create_namespaces {
                self.missing_namespaces
                    .insert(ns.clone(), missing_namespace_message(ns));
                continue;
            }
            let object_ref = ObjectRef {
                api_version: "v1",
                kind: "Namespace",
                type_dir: NAMESPACE_TYPE_DIR,
                namespace: None,
                name: ns,
            };
            let namespace: Result<Namespace, _> = serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": { "name": ns },
            }));
            let created = match namespace {
                Ok(namespace) => api
                    .create(&self.post_params(), &namespace)
                    .await
                    .map_err(|e| api_message(&e)),
                Err(e) => Err(e.to_string()),
            };
            match created {
                Ok(_) => {
                    lists.created(&object_ref);
                    if self.dry_run {
                        self.pending.insert(format!("namespace/{ns}"));
                    }
                }
                Err(message) => {
                    let message = format!("cannot create namespace {ns}: {message}");
                    lists.failed(&object_ref, &message);
                    self.missing_namespaces.insert(ns.clone(), message);
                }
            }
        }
        Ok(())
    }

    fn post_params(&self) -> PostParams {
        PostParams {
            dry_run: self.dry_run,
            field_manager: Some(RESTORE_FIELD_MANAGER.to_string()),
        }
    }

    /// Cleans and maps one verified object, then applies it.
    async fn restore_one(&self, item: &SelectedItem<'_>, mut obj: Value) -> ItemResult {
        let entry = item.entry;
        // The requests go to the resource discovery names for this apiVersion and kind: it
        // must be the type and scope the selection and the guard judged.
        if let Some((plural, namespaced)) = self
            .resources
            .get(&(entry.api_version.to_string(), entry.kind.to_string()))
            && let Err(err) = check_served(entry, plural, *namespaced)
        {
            return ItemResult::Record(Action::Failed, Some(err.to_string()));
        }
        if let CleanOutcome::Skip(reason) = clean_for_restore(&mut obj) {
            return ItemResult::Record(Action::Skipped, Some(reason.to_string()));
        }
        apply_mapping(&mut obj, self.map);
        if let Some(ns) = item.target_namespace()
            && let Some(message) = self.missing_namespaces.get(ns)
        {
            return ItemResult::Record(Action::Failed, Some(message.clone()));
        }
        self.apply(item, obj).await
    }

    /// Points the owner references of a cleaned, mapped object at its owners in the target
    /// cluster, then creates it (or resolves the conflict with the existing one).
    async fn apply(&self, item: &SelectedItem<'_>, mut obj: Value) -> ItemResult {
        let failed = |message: String| ItemResult::Record(Action::Failed, Some(message));
        let namespace = item.target_namespace();
        let owners = match self.resolve_owners(&mut obj, namespace).await {
            Ok(owners) => owners,
            Err(message) => return failed(message),
        };
        let applied = |action: Action, message: Option<String>, uid: Option<String>| {
            // Only an object that is written loses references (and gets them back).
            let written = matches!(action, Action::Created | Action::Overwritten);
            let owners = if written {
                owners.clone()
            } else {
                Rewritten::default()
            };
            ItemResult::Applied {
                action,
                message,
                uid,
                owners,
            }
        };

        let entry = item.entry;
        let is_crd = &*entry.resource == CRD_TYPE_DIR;
        // Dry run: the namespace or CRD is not really created, so the API server cannot check
        // objects that depend on it; report them as they would be created.
        if self.dry_run
            && (namespace.is_some_and(|ns| self.pending.contains(&format!("namespace/{ns}")))
                || self.pending.contains(&*entry.resource))
        {
            return applied(Action::Created, None, None);
        }

        let api = self.api_for(item);
        let object: DynamicObject = match serde_json::from_value(obj) {
            Ok(o) => o,
            Err(e) => return failed(format!("not a Kubernetes object: {e}")),
        };
        let name = item.target_name();
        let params = self.post_params();
        let error = match api.create(&params, &object).await {
            Ok(created) if is_crd => {
                return ItemResult::CrdCreated {
                    served_type: self.after_crd(&object, name).await,
                    uid: created.metadata.uid,
                    owners,
                };
            }
            Ok(created) => return applied(Action::Created, None, created.metadata.uid),
            Err(error) => error,
        };

        // An existing object is not always answered with 409: e.g. a Service whose pinned
        // nodePort is allocated (to that very Service) gets 422 first. So whatever the refusal,
        // an object that exists is a conflict.
        let already_exists = matches!(
            &error,
            kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists"
        );
        let existing = api.get_opt(name).await.ok().flatten();
        if existing.is_none() && !already_exists {
            return match error {
                kube::Error::Api(status)
                    if status.code == 404 && status.reason == "NotFound" && namespace.is_none() =>
                {
                    failed(format!(
                        "the API server does not serve {} {}: {}",
                        entry.api_version, entry.kind, status.message
                    ))
                }
                err => failed(api_message(&err)),
            };
        }
        let (live_uid, live_version) = match existing {
            Some(e) => (e.metadata.uid, e.metadata.resource_version),
            None => (None, None),
        };
        match self.conflict {
            ConflictResolution::Skip => {
                applied(Action::Skipped, Some(ALREADY_EXISTS.to_string()), live_uid)
            }
            ConflictResolution::Fail => ItemResult::Stop(format!(
                "{} {} already exists and conflictResolution is fail",
                entry.kind,
                describe(namespace, name)
            )),
            ConflictResolution::Overwrite => {
                match overwrite(&api, name, object, live_version, &params).await {
                    Ok(uid) => applied(Action::Overwritten, None, uid),
                    Err(message) => {
                        failed(format!("already exists and cannot be replaced: {message}"))
                    }
                }
            }
        }
    }

    /// The API of `item`'s type, in its target namespace.
    fn api_for(&self, item: &SelectedItem<'_>) -> Api<DynamicObject> {
        let entry = item.entry;
        let (group, version) = match entry.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", &*entry.api_version),
        };
        let plural = self
            .resources
            .get(&(entry.api_version.to_string(), entry.kind.to_string()))
            .map(|(plural, _)| plural.clone())
            // Types of CRDs restored in this run are not in discovery yet; the folder name is
            // `plural.group`.
            .unwrap_or_else(|| {
                entry
                    .resource
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            });
        let resource = ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            api_version: entry.api_version.to_string(),
            kind: entry.kind.to_string(),
            plural,
        };
        match item.target_namespace() {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Decides on every owner reference of `obj` (see [`crate::core::restore::owners`]) and rewrites them.
    /// `Err` when an owner could not be looked up and is not restored later: the object is
    /// not created with a reference that may be wrong.
    async fn resolve_owners(
        &self,
        obj: &mut Value,
        namespace: Option<&str>,
    ) -> Result<Rewritten, String> {
        let refs = owner_references(obj);
        if refs.is_empty() {
            return Ok(Rewritten::default());
        }
        let resolutions: Vec<Resolution> = {
            let owners = self.owners();
            refs.iter()
                .map(|r| owners.resolve(r.as_ref(), namespace))
                .collect()
        };
        let mut decisions = Vec::with_capacity(refs.len());
        for (owner, resolution) in refs.iter().zip(resolutions) {
            decisions.push(match (owner, resolution) {
                (_, Resolution::Uid(uid)) => Decision::Keep(uid),
                (Some(owner), Resolution::Lookup(place)) => {
                    let lookup = self.lookup_owner(owner, namespace).await;
                    decide(place, lookup, self.dry_run).map_err(|error| {
                        format!(
                            "cannot tell whether its owner {} {} exists in the target cluster: \
                             {error}",
                            owner.kind, owner.name
                        )
                    })?
                }
                (None, _) | (_, Resolution::Invalid) => Decision::Drop { counted: true },
            });
        }
        let rewritten = rewrite_owner_references(obj, &decisions);
        if rewritten.dropped > 0 {
            tracing::info!(
                kind = obj["kind"].as_str().unwrap_or_default(),
                name = obj["metadata"]["name"].as_str().unwrap_or_default(),
                namespace = namespace.unwrap_or_default(),
                dropped = rewritten.dropped,
                "owner references dropped: the owners exist neither in the backup nor in the \
                 target cluster"
            );
        }
        Ok(rewritten)
    }

    /// Whether an owner exists in the target cluster, and its UID. Passing API errors are
    /// retried; only a definite answer is remembered.
    async fn lookup_owner(&self, owner: &OwnerRef, namespace: Option<&str>) -> Lookup {
        let group = group_of(&owner.api_version);
        // A type the target does not serve has no objects (a CRD restored in this run is not
        // in discovery: its objects are in the selection and get their UIDs from the restore).
        let Some((resource, namespaced)) = self
            .owner_types
            .get(&(group.to_string(), owner.kind.clone()))
        else {
            return Lookup::Absent;
        };
        // A cluster-scoped object cannot have a namespaced owner.
        let owner_ns = match (namespaced, namespace) {
            (false, _) => None,
            (true, Some(ns)) => Some(ns),
            (true, None) => return Lookup::Absent,
        };
        let key = OwnerKey {
            group: group.to_string(),
            kind: owner.kind.clone(),
            namespace: owner_ns.map(str::to_string),
            name: owner.name.clone(),
        };
        if let Some(found) = self.lookup_cache().get(&key) {
            return found.clone().map_or(Lookup::Absent, Lookup::Found);
        }
        let api: Api<DynamicObject> = match owner_ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        };
        match with_retries("look up an owner", || api.get_opt(&owner.name)).await {
            Ok(found) => {
                let uid = found.and_then(|o| o.metadata.uid);
                self.lookup_cache().insert(key, uid.clone());
                uid.map_or(Lookup::Absent, Lookup::Found)
            }
            Err(err) => {
                tracing::warn!(
                    owner = %owner.name, kind = %owner.kind, error = %err,
                    "cannot look up an owner"
                );
                Lookup::Unknown(api_message(&err))
            }
        }
    }

    /// Puts back the references removed because their owners were restored later (see the
    /// module docs), a few objects at a time, and counts them: restored, or dropped when the
    /// owner was not restored or the object cannot be patched.
    async fn reattach_owners(&self, held: Vec<Held<'_, '_>>, lists: &mut StatusLists) {
        // A plain queue: `buffer_unordered` over borrowing futures trips rustc's `Send`
        // inference for the controller's future.
        let mut queue = held.into_iter();
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < RESTORE_CONCURRENCY {
                match queue.next() {
                    Some(held) => in_flight.push(self.reattach(held)),
                    None => break,
                }
            }
            let Some((restored, dropped)) = in_flight.next().await else {
                break;
            };
            lists.owner_references_restored(restored);
            lists.owner_references_dropped(dropped);
        }
    }

    /// Puts back one object's held references; returns how many are in place (put back, or
    /// there already because a controller adopted the object) and how many were dropped.
    async fn reattach(&self, held: Held<'_, '_>) -> (u64, u64) {
        let namespace = held.item.target_namespace();
        let name = held.item.target_name();
        let references: Vec<(HeldReference, Option<String>)> = {
            let owners = self.owners();
            held.references
                .into_iter()
                .map(|r| {
                    let uid = owners.uid(&r.owner, namespace).map(str::to_string);
                    (r, uid)
                })
                .collect()
        };
        let total = references.len() as u64;
        let lost = references.iter().filter(|(_, uid)| uid.is_none()).count() as u64;
        if lost > 0 {
            tracing::info!(
                kind = %held.item.entry.kind, name, namespace = namespace.unwrap_or_default(),
                lost, "owner references dropped: their owners were not restored"
            );
        }
        if lost == total {
            return (0, lost);
        }
        let api = self.api_for(held.item);
        let give_up = |message: &str| {
            tracing::warn!(
                kind = %held.item.entry.kind, name, namespace = namespace.unwrap_or_default(),
                "{message}; its owner references are dropped"
            );
        };
        let (mut last_error, mut present) = (String::new(), 0);
        for _ in 0..REATTACH_ATTEMPTS {
            let live = match with_retries("read a restored object", || api.get_opt(name)).await {
                Ok(Some(live)) => live,
                // Deleted since (e.g. by its controller): nothing to own.
                Ok(None) => return (0, 0),
                Err(err) => {
                    give_up(&format!(
                        "cannot read the restored object: {}",
                        api_message(&err)
                    ));
                    return (0, total);
                }
            };
            if held.uid.is_some() && live.metadata.uid != held.uid {
                // Deleted and made again under the same name: not the object restored.
                return (0, 0);
            }
            let live = match serde_json::to_value(&live) {
                Ok(live) => live,
                Err(err) => {
                    give_up(&format!("cannot read the restored object: {err}"));
                    return (0, total);
                }
            };
            let plan = reattachment(&live, &references);
            present = plan.present;
            if plan.add.is_empty() {
                return (plan.present, plan.lost);
            }
            let patch = match reattach_patch(&live, &plan.add).map(serde_json::from_value) {
                Some(Ok(patch)) => Patch::<()>::Json(patch),
                Some(Err(err)) => {
                    give_up(&format!("cannot build the patch: {err}"));
                    return (plan.present, total - plan.present);
                }
                None => {
                    give_up("the restored object has no resourceVersion");
                    return (plan.present, total - plan.present);
                }
            };
            let params = PatchParams {
                field_manager: Some(RESTORE_FIELD_MANAGER.to_string()),
                ..PatchParams::default()
            };
            match with_retries("put owner references back", || {
                api.patch(name, &params, &patch)
            })
            .await
            {
                Ok(_) => return (total - plan.lost, plan.lost),
                // Changed since it was read (the `test` failed, or a conflict): read it again.
                Err(kube::Error::Api(status)) if matches!(status.code, 409 | 422) => {
                    last_error = status.message.clone();
                }
                Err(err) => {
                    give_up(&format!(
                        "cannot patch the restored object: {}",
                        api_message(&err)
                    ));
                    return (plan.present, total - plan.present);
                }
            }
        }
        give_up(&format!(
            "the restored object kept changing ({REATTACH_ATTEMPTS} attempts): {last_error}"
        ));
        (present, total - present)
    }

    fn lookup_cache(&self) -> MutexGuard<'_, BTreeMap<OwnerKey, Option<String>>> {
        self.looked_up
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// After a CRD is created: wait until it is Established, so its custom resources (a later
    /// priority level) find it served. Returns the type it serves (`plural.group`).
    async fn after_crd(&self, object: &DynamicObject, name: &str) -> String {
        let group = object.data["spec"]["group"].as_str().unwrap_or_default();
        let plural = object.data["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default();
        let served_type = format!("{plural}.{group}");
        if self.dry_run {
            return served_type;
        }
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let established = tokio::time::timeout(
            CRD_ESTABLISHED_TIMEOUT,
            await_condition(crds, name, conditions::is_crd_established()),
        )
        .await;
        if !matches!(established, Ok(Ok(_))) {
            tracing::warn!(
                crd = name,
                "restored CRD did not become Established in time"
            );
        }
        served_type
    }
}

/// Replaces an existing object with `object`, keeping the live resourceVersion (`live_version`,
/// read again when unknown). Returns the object's UID.
async fn overwrite(
    api: &Api<DynamicObject>,
    name: &str,
    mut object: DynamicObject,
    live_version: Option<String>,
    params: &PostParams,
) -> Result<Option<String>, String> {
    let live_version = match live_version {
        Some(version) => Some(version),
        None => {
            api.get(name)
                .await
                .map_err(|e| api_message(&e))?
                .metadata
                .resource_version
        }
    };
    object.metadata.resource_version = live_version;
    api.replace(name, params, &object)
        .await
        .map(|replaced| replaced.metadata.uid)
        .map_err(|e| api_message(&e))
}

fn describe(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// The API server's reason and message, e.g. `Invalid: Service "x" is invalid: ...`.
fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if !status.reason.is_empty() => {
            format!("{}: {}", status.reason, status.message)
        }
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
