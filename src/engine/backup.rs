//! The backup engine: list what the plan selects, page by page, and stream every object to
//! storage with bounded concurrency; write `manifest.json` last as the commit marker.
//!
//! Lists are fetched raw, up to `lists_in_flight` at once (each at most [`PAGES_AHEAD`] pages
//! ahead), and stored in order, one list at a time, so each namespace/type arrives in one
//! piece. A packed run references an object listed with the same bytes as in the previous run
//! (its listed [`Fingerprint`]) without decoding it.
//!
//! Memory is bounded by the pages in flight (500 objects each) plus the upload window; the
//! `objects` format's manifest keeps one compact entry per object (key, type, name, size,
//! sha256).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube::api::{ApiResource, DynamicObject, ListParams, TypeMeta};
use kube::{Api, Client, ResourceExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::retention;
use crate::api::BackupFormat;
use crate::api::{BackupSpec, RunResult};
use crate::core::layout;
use crate::core::manifest::{
    self, BackupRef, ClusterInfo, ItemError, Manifest, ManifestEntry, ManifestError, Sha256Digest,
};
use crate::core::packed::{Fingerprint, SegmentKey};
use crate::core::plan::{self, NamespaceSelection, TypePlan};
use crate::core::selector;
use crate::core::types::{CRD_GROUP, CRD_PLURAL, DiscoveredResource, NAMESPACE_PLURAL};
use crate::engine::faults;
use crate::engine::packed::{KeyObjects, PackedWriter, PreviousObjects};
use crate::k8s::discovery::{DiscoveryError, discover};
use crate::k8s::retry::{self, with_retries};
use crate::storage::catalogue::{self, ManifestReadError};
use crate::storage::{Content, StatsSnapshot, Storage, StorageError};

/// Objects per list request (Velero uses 500 too).
pub const LIST_PAGE_SIZE: u32 = 500;
/// Concurrent uploads; 16–32 is the sweet spot for S3 servers on the same host.
pub const UPLOAD_CONCURRENCY: usize = 32;
/// Expired continue tokens one listing may go past before the run gives up on it.
const MAX_EXPIRED_CONTINUES: u32 = 5;
/// Item errors kept in status (the manifest keeps all of them).
pub const STATUS_ERROR_LIMIT: usize = 10;

/// Identity of one run, and how much it may ask of the API server at once.
#[derive(Clone, Debug)]
pub struct RunContext {
    pub backup_namespace: String,
    pub backup_name: String,
    pub uid: Option<String>,
    pub started: DateTime<Utc>,
    /// Lists in flight (`--backup-lists-in-flight`, [`LISTS_IN_FLIGHT`] by default).
    pub lists_in_flight: usize,
}

impl RunContext {
    pub fn run_path(&self) -> String {
        layout::run_path(&self.backup_namespace, &self.backup_name, self.started)
    }
}

/// Live counters of a running backup (for `status.currentRun`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub objects: u64,
    pub bytes: u64,
    pub failed: u64,
}

/// A finished, restorable backup (its manifest is written).
#[derive(Clone, Debug)]
pub struct BackupOutcome {
    pub run_path: String,
    pub result: RunResult,
    pub completed_at: DateTime<Utc>,
    pub counts: BTreeMap<String, u64>,
    pub total_objects: u64,
    pub total_bytes: u64,
    pub failed: u64,
    /// The first item errors, formatted for status.
    pub errors: Vec<String>,
    pub namespaces: Vec<String>,
    /// `format: packed`: objects referenced from earlier runs instead of stored again.
    pub reused_objects: Option<u64>,
    /// What the run sent to storage (`None` for a run adopted after a restart).
    pub storage: Option<StatsSnapshot>,
}

/// Why a run produced no restorable backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("cannot list namespaces: {source}")]
    ListNamespaces { source: kube::Error },
    /// Listing kept failing for a passing reason (API server restarting, overloaded): the run
    /// fails rather than store a backup that silently lacks these objects.
    #[error("cannot list {what} ({attempts} attempts): {message}")]
    ListUnavailable {
        what: String,
        attempts: u32,
        message: String,
    },
    #[error("cannot read the API server version: {source}")]
    ServerVersion { source: kube::Error },
    /// The storage error names the location itself.
    #[error(transparent)]
    Storage(Box<StorageError>),
    #[error("cannot serialize the manifest: {source}")]
    Manifest { source: ManifestError },
    /// The manifest would be larger than restores read: the run fails rather than complete
    /// a backup no restore could use.
    #[error(
        "the manifest of this run would be larger than restores read ({reason}): use `format: packed`, whose manifest stays small, or raise --max-manifest-bytes together with the operator's memory limit"
    )]
    ManifestTooLarge { reason: String },
    /// Several problems of the spec at once ([`check_spec`]).
    #[error("{}", problems.join("; "))]
    InvalidSpec { problems: Vec<String> },
    #[error("internal error: {message}")]
    Internal { message: String },
    /// Stopped from outside before the manifest was written (see [`run_backup`]).
    #[error("the run was cancelled before its manifest was written")]
    Cancelled,
}

impl BackupError {
    /// Short CamelCase reason for conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            BackupError::InvalidSpec { .. } => "InvalidSpec",
            BackupError::Discovery(_)
            | BackupError::ListNamespaces { .. }
            | BackupError::ListUnavailable { .. }
            | BackupError::ServerVersion { .. } => "KubernetesApiError",
            BackupError::Storage(_) => "StorageError",
            BackupError::Manifest { .. } | BackupError::Internal { .. } => "InternalError",
            BackupError::ManifestTooLarge { .. } => "ManifestTooLarge",
            BackupError::Cancelled => "Interrupted",
        }
    }

    /// An error in the Backup spec: retrying without a spec change cannot help.
    pub fn is_invalid_spec(&self) -> bool {
        matches!(self, BackupError::InvalidSpec { .. })
    }
}

/// What to list: one resource type, in one namespace, across all namespaces, or cluster-wide.
struct ListJob {
    resource: DiscoveredResource,
    api: ApiResource,
    scope: ListScope,
    type_dir: Arc<str>,
    api_version: Arc<str>,
    kind: Arc<str>,
}

impl ListJob {
    fn new(resource: &DiscoveredResource, scope: ListScope) -> ListJob {
        let api = resource.api.clone();
        ListJob {
            type_dir: Arc::from(layout::type_dir(resource)),
            api_version: Arc::from(api.api_version.as_str()),
            kind: Arc::from(api.kind.as_str()),
            resource: resource.clone(),
            api,
            scope,
        }
    }
}

enum ListScope {
    Cluster,
    Namespace(String),
    /// One cluster-wide list, keeping objects of these namespaces (fewer requests than one
    /// list per namespace when backing up "everything").
    AllNamespaces(BTreeSet<String>),
    /// The Namespace objects of these namespaces.
    NamespaceObjects(BTreeSet<String>),
}

/// One object ready to store.
struct Upload {
    entry: ManifestEntry,
    payload: Payload,
    /// `format: packed`: the fingerprint of the object as listed.
    listed: Option<Fingerprint>,
}

enum Payload {
    /// The bytes to store.
    Stored(Bytes),
    /// Only the object as listed: an earlier run stored it (its listed fingerprint matched), so
    /// it is serialized only if that data turns out to be gone.
    Listed(Bytes),
}

/// What [`check_spec`] found the spec to mean: the types to list and the label query.
#[derive(Clone, Debug)]
pub struct CheckedSpec {
    pub types: TypePlan,
    pub label_query: Option<String>,
}

/// Every problem of the spec, reported together before a run touches storage: what needs
/// nothing but the spec (label selector, retention ttl, the storage location's bucket, prefix,
/// region, endpoint and inline keys), then the resource types against the cluster's discovery.
/// Discovery failing for a passing reason is an error of its own (not a spec problem), unless
/// the spec already has problems to report.
pub async fn check_spec(client: &Client, spec: &BackupSpec) -> Result<CheckedSpec, BackupError> {
    let mut problems = Vec::new();
    let label_query = match &spec.source.label_selector {
        Some(sel) => selector::label_selector_to_query(sel).unwrap_or_else(|err| {
            problems.push(err.to_string());
            None
        }),
        None => None,
    };
    if let Some(ttl) = spec.retention.as_ref().and_then(|r| r.ttl.as_deref())
        && let Err(err) = retention::parse_ttl(ttl)
    {
        problems.push(err.to_string());
    }
    problems.extend(
        crate::storage::location_problems(&spec.storage_location)
            .iter()
            .map(|err| format!("storageLocation: {err}")),
    );
    let types = match discover(client).await.map_err(BackupError::Discovery) {
        Ok(discovered) => plan::plan_types(&spec.source, &discovered)
            .map_err(|err| problems.push(err.to_string()))
            .ok(),
        Err(err) if problems.is_empty() => return Err(err),
        Err(err) => {
            tracing::debug!(error = %err, "discovery failed; reporting the spec's own problems");
            None
        }
    };
    match types {
        Some(types) if problems.is_empty() => Ok(CheckedSpec { types, label_query }),
        _ => Err(BackupError::InvalidSpec { problems }),
    }
}

/// Runs one backup to completion. Item errors (a type that cannot be listed, a namespace that
/// does not exist) make the result `PartiallyFailed`; a storage failure fails the whole run and
/// leaves no manifest, so the partial data is never presented as restorable.
/// `checked` is what [`check_spec`] returned for this spec.
///
/// When `stop` is cancelled (the operator shuts down) before the manifest upload starts, the
/// run ends at once with [`BackupError::Cancelled`] and writes no manifest: a cancelled run
/// never looks complete. Once started, the manifest upload (one small object) is finished,
/// and the run is complete.
pub async fn run_backup(
    client: &Client,
    storage: &Storage,
    spec: &BackupSpec,
    checked: &CheckedSpec,
    run: &RunContext,
    progress: &watch::Sender<Progress>,
    stop: &CancellationToken,
) -> Result<BackupOutcome, BackupError> {
    let before = storage.stats();
    let stored = tokio::select! {
        biased;
        () = stop.cancelled() => return Err(BackupError::Cancelled),
        stored = store_objects(client, storage, spec, checked, run, progress) => stored?,
    };
    if stop.is_cancelled() {
        return Err(BackupError::Cancelled);
    }
    let (manifest, result, reused) = stored;
    let bytes = manifest
        .to_bytes()
        .map_err(|source| BackupError::Manifest { source })?;
    // What a restore would refuse to read is not written: the run fails, saying why.
    if let Some(reason) = manifest.exceeded_limit() {
        return Err(BackupError::ManifestTooLarge { reason });
    }
    catalogue::check_manifest_limits(&bytes)
        .map_err(|reason| BackupError::ManifestTooLarge { reason })?;
    // The manifest goes last: only a run that got this far is complete.
    storage
        .put(
            &layout::manifest_key(&manifest.backup_path),
            Bytes::from(bytes),
        )
        .await
        .map_err(|source| BackupError::Storage(Box::new(source)))?;
    faults::crash_point("after-manifest");

    let mut outcome = BackupOutcome::from_manifest(manifest, result);
    outcome.reused_objects = reused;
    outcome.storage = Some(storage.stats().since(&before));
    Ok(outcome)
}

/// Everything of a run but the commit: lists and stores every object, and returns the manifest
/// that makes the run complete once stored.
async fn store_objects(
    client: &Client,
    storage: &Storage,
    spec: &BackupSpec,
    checked: &CheckedSpec,
    run: &RunContext,
    progress: &watch::Sender<Progress>,
) -> Result<(Manifest, RunResult, Option<u64>), BackupError> {
    let CheckedSpec { types, label_query } = checked;
    let packed = spec.format == Some(BackupFormat::Packed);
    if !types.unavailable_defaults.is_empty() {
        tracing::warn!(
            types = %types.unavailable_defaults.join(", "),
            "default resource types this cluster does not serve are not backed up"
        );
    }

    let selection = plan::namespace_selection(&spec.source);
    let (existing, refused) = visible_namespaces(client, &selection).await?;
    let resolved = plan::resolve_namespaces(&selection, &existing);
    let mut item_errors: Vec<ItemError> = resolved
        .missing
        .iter()
        .filter(|ns| !refused.iter().any(|e| e.name.as_ref() == Some(*ns)))
        .map(|ns| ItemError {
            resource: "namespaces".to_string(),
            namespace: None,
            name: Some(ns.clone()),
            message: format!("namespace \"{ns}\" does not exist"),
        })
        .collect();
    item_errors.extend(refused);

    let storage_err = |source| BackupError::Storage(Box::new(source));
    storage.ensure_bucket().await.map_err(storage_err)?;
    let server_version = with_retries("server version", || client.apiserver_version())
        .await
        .map_err(|source| BackupError::ServerVersion { source })?;

    let run_path = run.run_path();
    let mut jobs = Vec::new();
    for resource in &types.namespaced {
        match &selection {
            NamespaceSelection::AllExcept(_) => {
                let wanted = resolved.to_back_up.iter().cloned().collect();
                jobs.push(ListJob::new(resource, ListScope::AllNamespaces(wanted)));
            }
            NamespaceSelection::Explicit(_) => {
                for ns in &resolved.to_back_up {
                    jobs.push(ListJob::new(resource, ListScope::Namespace(ns.clone())));
                }
            }
        }
    }
    for resource in &types.cluster {
        // Namespace objects (their labels carry e.g. Pod Security levels) are stored for the
        // namespaces this backup covers, not for every namespace of the cluster.
        let scope = if is_namespace_type(resource) {
            ListScope::NamespaceObjects(resolved.to_back_up.iter().cloned().collect())
        } else {
            ListScope::Cluster
        };
        jobs.push(ListJob::new(resource, scope));
    }

    faults::crash_point("before-upload");
    faults::pause_point("before-list").await;
    let (tx, rx) = mpsc::channel::<Upload>(UPLOAD_CONCURRENCY * 4);
    // Packed runs look listed objects up in the previous run, which the writer reads first.
    let writer = if packed {
        let writer = PackedWriter::start(
            storage,
            &run.backup_namespace,
            &run.backup_name,
            run.uid.as_deref(),
            run.started,
        )
        .await
        .map_err(storage_err)?;
        Some(writer)
    } else {
        None
    };
    let previous = writer
        .as_ref()
        .and_then(PackedWriter::previous_objects_for_listing);
    let producer = async {
        let mut errors = Vec::new();
        let mut items = ItemReader {
            types,
            packed,
            previous: previous.clone(),
            current: None,
        };
        let mut queue: VecDeque<Arc<ListJob>> = jobs.into_iter().map(Arc::new).collect();
        let mut running: VecDeque<RunningList> = VecDeque::new();
        'jobs: loop {
            // The next list is fetched while this one is stored: the API server serializes one
            // while the run stores the other. Lists stay in order, so each namespace/type
            // arrives in one piece.
            while running.len() < run.lists_in_flight.max(1)
                && let Some(job) = queue.pop_front()
            {
                // CRDs are listed only to carry the definitions of backed-up custom resources;
                // the user's label selector is meant for their objects, not for that lookup.
                let labels = if is_crd(&job.resource) {
                    None
                } else {
                    label_query.clone()
                };
                running.push_back(RunningList::start(
                    client.clone(),
                    job,
                    labels,
                    previous.clone(),
                ));
            }
            let Some(mut list) = running.pop_front() else {
                break;
            };
            loop {
                let Some(message) = list.pages.recv().await else {
                    // Never taken as the end of the list: objects would be missing silently.
                    return Err(BackupError::Internal {
                        message: format!(
                            "the list of {} ended without finishing",
                            list_what(&list.job)
                        ),
                    });
                };
                match message {
                    PageMessage::Done => break,
                    PageMessage::Page(page) => {
                        for item in page {
                            match items.upload_for(&list.job, item).await {
                                Ok(Some(upload)) => {
                                    if tx.send(upload).await.is_err() {
                                        // The storing side stopped (storage failed).
                                        break 'jobs;
                                    }
                                }
                                Ok(None) => {}
                                Err(err) => errors.push(err),
                            }
                        }
                    }
                    // May not list the type across the cluster: list it namespace by namespace,
                    // so what the run's identity may read in some namespaces is still backed up.
                    PageMessage::Failed(ListOutcome::ForbiddenClusterWide) => {
                        if let ListScope::AllNamespaces(wanted) = &list.job.scope {
                            for ns in wanted {
                                let scope = ListScope::Namespace(ns.clone());
                                queue.push_back(Arc::new(ListJob::new(&list.job.resource, scope)));
                            }
                        }
                        break;
                    }
                    PageMessage::Failed(ListOutcome::Api(err)) => {
                        errors.push(err);
                        break;
                    }
                    PageMessage::Failed(ListOutcome::Unavailable(err)) => return Err(err),
                }
            }
        }
        drop(tx);
        Ok::<_, BackupError>(errors)
    };

    let consumer = async {
        let mut stored = Stored::default();
        if let Some(writer) = writer {
            // Packing (compression, the index, uploads) runs as a task of its own, beside the
            // listing and serialising; it is aborted with the run.
            let packing = AbortOnDropHandle::new(tokio::spawn(pack(writer, rx, progress.clone())));
            return match packing.await {
                Ok(stored) => stored,
                Err(err) => Err(BackupError::Internal {
                    message: format!("the packing task failed: {err}"),
                }),
            };
        }
        let mut rx = rx;
        let uploads = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
        let run_path = &run_path;
        let mut results = uploads
            .map(|upload| async move {
                let bytes = match upload.payload {
                    Payload::Stored(bytes) => bytes,
                    // Only packed runs reuse listed objects.
                    Payload::Listed(_) => {
                        return Err(BackupError::Internal {
                            message: format!("{} came without its bytes", upload.entry.key),
                        });
                    }
                };
                let content = Content::of(&upload.entry.api_version, &upload.entry.kind);
                storage
                    .put_as(&format!("{run_path}/{}", upload.entry.key), content, bytes)
                    .await
                    .map(|()| upload.entry)
                    .map_err(storage_err)
            })
            .buffer_unordered(UPLOAD_CONCURRENCY);
        while let Some(entry) = results.try_next().await? {
            progress.send_modify(|p| {
                p.objects += 1;
                p.bytes += entry.size;
            });
            stored.count(&entry);
            stored.entries.push(entry);
            faults::crash_at_count("upload", stored.objects);
        }
        Ok::<_, BackupError>(stored)
    };

    let (list_errors, mut stored) = tokio::try_join!(producer, consumer)?;
    item_errors.extend(list_errors);
    progress.send_modify(|p| p.failed = item_errors.len() as u64);

    stored.entries.sort_by(|a, b| a.key.cmp(&b.key));
    let result = if item_errors.is_empty() {
        RunResult::Completed
    } else {
        RunResult::PartiallyFailed
    };
    let completed_at = Utc::now();
    let mut resource_types: Vec<String> = types.all().map(layout::type_dir).collect();
    resource_types.dedup();
    let (packed_index, reused) = match stored.packed {
        Some(outcome) => (Some(outcome.index), Some(outcome.reused)),
        None => (None, None),
    };
    let manifest = Manifest {
        format_version: if packed_index.is_some() {
            manifest::PACKED_FORMAT_VERSION
        } else {
            manifest::OBJECTS_FORMAT_VERSION
        },
        tool: format!("cluster-backup-operator {}", env!("CARGO_PKG_VERSION")),
        backup: BackupRef {
            namespace: run.backup_namespace.clone(),
            name: run.backup_name.clone(),
            uid: run.uid.clone(),
        },
        spec: manifest::RecordedSpec::new(&manifest::redact_spec(spec)),
        cluster: ClusterInfo {
            server_version: server_version.git_version.clone(),
            platform: Some(server_version.platform.clone()),
        },
        backup_path: run_path.clone(),
        started_at: run.started,
        completed_at,
        result: match result {
            RunResult::Completed => manifest::RESULT_COMPLETED,
            _ => manifest::RESULT_PARTIALLY_FAILED,
        }
        .to_string(),
        namespaces: resolved.to_back_up.clone(),
        resource_types,
        counts: stored.counts,
        total_objects: stored.objects,
        total_bytes: stored.bytes,
        packed: packed_index,
        objects: stored.entries,
        errors: item_errors,
        encryption: storage.encryption_record(),
    };
    Ok((manifest, result, reused))
}

/// Stores every object the listing sends into packs (`format: packed`).
async fn pack(
    mut writer: PackedWriter,
    mut rx: mpsc::Receiver<Upload>,
    progress: watch::Sender<Progress>,
) -> Result<Stored, BackupError> {
    let storage_err = |source| BackupError::Storage(Box::new(source));
    let mut stored = Stored::default();
    while let Some(upload) = rx.recv().await {
        let Upload {
            mut entry,
            payload,
            listed,
        } = upload;
        let bytes = match payload {
            Payload::Stored(bytes) => Some(bytes),
            Payload::Listed(listed_bytes) => {
                if writer.reuses(&entry).await.map_err(storage_err)? {
                    None
                } else {
                    // The earlier run's copy is gone (a missing pack): store it again.
                    let bytes = stored_bytes(&entry.api_version, &entry.kind, &listed_bytes, true)
                        .map_err(|err| BackupError::Internal {
                            message: format!("cannot serialize {}: {err}", entry.key),
                        })?;
                    entry.size = bytes.len() as u64;
                    entry.sha256 = Sha256Digest::of(&bytes);
                    Some(Bytes::from(bytes))
                }
            }
        };
        let size = entry.size;
        stored.count(&entry);
        writer
            .add(entry, bytes.as_deref(), listed)
            .await
            .map_err(storage_err)?;
        progress.send_modify(|p| {
            p.objects += 1;
            p.bytes += size;
        });
        faults::crash_at_count("upload", stored.objects);
    }
    stored.packed = Some(writer.finish().await.map_err(storage_err)?);
    Ok(stored)
}

/// What the uploads stored, counted as they finish.
#[derive(Default)]
struct Stored {
    /// `format: objects`: every entry, for the manifest.
    entries: Vec<ManifestEntry>,
    counts: BTreeMap<String, u64>,
    objects: u64,
    bytes: u64,
    packed: Option<crate::engine::packed::PackedOutcome>,
}

impl Stored {
    fn count(&mut self, entry: &ManifestEntry) {
        *self
            .counts
            .entry(layout::count_key(
                entry.namespace.as_deref(),
                &entry.resource,
            ))
            .or_default() += 1;
        self.objects += 1;
        self.bytes += entry.size;
    }
}

impl BackupOutcome {
    fn from_manifest(manifest: Manifest, result: RunResult) -> BackupOutcome {
        BackupOutcome {
            result,
            completed_at: manifest.completed_at,
            total_objects: manifest.total_objects,
            total_bytes: manifest.total_bytes,
            failed: manifest.errors.len() as u64,
            errors: manifest
                .errors
                .iter()
                .take(STATUS_ERROR_LIMIT)
                .map(ToString::to_string)
                .collect(),
            run_path: manifest.backup_path,
            counts: manifest.counts,
            namespaces: manifest.namespaces,
            reused_objects: None,
            storage: None,
        }
    }
}

/// The outcome of a run that wrote its manifest but was not reported (the operator stopped
/// between the manifest upload and the status write): `None` when `run_path` holds no
/// manifest of this Backup, so the run really did not finish. The bucket is untrusted: a
/// manifest only counts if it names this run's path and Backup.
pub async fn find_finished_run(
    storage: &Storage,
    run: &RunContext,
    run_path: &str,
) -> Result<Option<BackupOutcome>, StorageError> {
    let manifest = match catalogue::read_manifest(storage, run_path).await {
        Ok(manifest) => manifest,
        Err(ManifestReadError::Missing { .. }) => return Ok(None),
        Err(ManifestReadError::Storage { source, .. }) => return Err(source),
        Err(ManifestReadError::Index { source, .. }) => return Err(source),
        Err(ManifestReadError::Invalid { source, .. }) => {
            tracing::warn!(run_path, error = %source, "interrupted run left an unreadable manifest; running again");
            return Ok(None);
        }
    };
    let ours = manifest.backup_path == run_path
        && manifest.backup.namespace == run.backup_namespace
        && manifest.backup.name == run.backup_name
        && (manifest.backup.uid.is_none() || manifest.backup.uid == run.uid);
    let result = match manifest.result.as_str() {
        manifest::RESULT_COMPLETED => RunResult::Completed,
        manifest::RESULT_PARTIALLY_FAILED => RunResult::PartiallyFailed,
        _ => return Ok(None),
    };
    Ok(ours.then(|| BackupOutcome::from_manifest(manifest, result)))
}

enum ListOutcome {
    /// A lasting refusal (403, 404 of the type, ...): an item error, the run goes on.
    Api(ItemError),
    /// Passing errors outlasted the retries: the run fails.
    Unavailable(BackupError),
    /// The run's identity may not list this type across all namespaces (it may still in some).
    ForbiddenClusterWide,
}

/// Lists one run has in flight by default: the one being stored and the next two, fetched
/// ahead so the API server serializes them meanwhile (`--backup-lists-in-flight`).
pub const LISTS_IN_FLIGHT: usize = 3;
/// Pages one list fetches ahead of the run storing them.
const PAGES_AHEAD: usize = 2;

/// What a running list hands on: pages of objects as listed, then that it is complete or why
/// it stopped. A list whose channel closes without either did not finish (its task ended).
enum PageMessage {
    Page(Vec<Bytes>),
    Done,
    Failed(ListOutcome),
}

/// A list being fetched by a task of its own (aborted when dropped).
struct RunningList {
    job: Arc<ListJob>,
    pages: mpsc::Receiver<PageMessage>,
    _task: AbortOnDropHandle<()>,
}

impl RunningList {
    /// Starts fetching `job`. A list of one namespace also reads the previous run's objects of
    /// its namespace/type meanwhile, so they are there when its first page is.
    fn start(
        client: Client,
        job: Arc<ListJob>,
        labels: Option<String>,
        previous: Option<Arc<PreviousObjects>>,
    ) -> RunningList {
        let (tx, pages) = mpsc::channel(PAGES_AHEAD);
        let read_ahead = match (&job.scope, previous) {
            (ListScope::Namespace(ns), Some(previous)) => Some((
                previous,
                SegmentKey {
                    namespace: Some(ns.clone()),
                    resource: job.type_dir.to_string(),
                },
            )),
            _ => None,
        };
        let task = tokio::spawn(fetch_list(client, job.clone(), labels, read_ahead, tx));
        RunningList {
            job,
            pages,
            _task: AbortOnDropHandle::new(task),
        }
    }
}

/// Fetches every page of one list, in order, into `pages`.
async fn fetch_list(
    client: Client,
    job: Arc<ListJob>,
    labels: Option<String>,
    read_ahead: Option<(Arc<PreviousObjects>, SegmentKey)>,
    pages: mpsc::Sender<PageMessage>,
) {
    let namespace = match &job.scope {
        ListScope::Namespace(ns) => Some(ns.as_str()),
        _ => None,
    };
    let request = kube::core::Request::new(<DynamicObject as kube::Resource>::url_path(
        &job.api, namespace,
    ));
    let mut params = ListParams::default().limit(LIST_PAGE_SIZE);
    if let Some(labels) = &labels {
        params = params.labels(labels);
    }
    let mut read_ahead = read_ahead;
    let mut expired = 0;
    loop {
        let fetch = with_retries("list", || fetch_page(&client, &request, &params));
        let page = match read_ahead.take() {
            Some((previous, key)) => tokio::join!(fetch, previous.lookup(&key)).0,
            None => fetch.await,
        };
        let failed = match page {
            Ok(page) => {
                if pages.send(PageMessage::Page(page.items)).await.is_err() {
                    return;
                }
                match page.continue_token {
                    Some(token) => {
                        params = params.continue_token(&token);
                        continue;
                    }
                    None => {
                        let _ = pages.send(PageMessage::Done).await;
                        return;
                    }
                }
            }
            // The continue token outlived etcd's compaction window (a long, slow listing).
            // The API server hands out a token for the rest of the list from a newer
            // snapshot, which is what it recommends; objects already sent are not repeated.
            Err(kube::Error::Api(status))
                if status.code == 410 && params.continue_token.is_some() =>
            {
                expired += 1;
                match status
                    .metadata
                    .as_ref()
                    .and_then(|m| m.continue_.clone())
                    .filter(|t| !t.is_empty() && expired <= MAX_EXPIRED_CONTINUES)
                {
                    Some(token) => {
                        tracing::info!(resource = %job.type_dir, "list continue token expired; continuing from a newer snapshot");
                        params = params.continue_token(&token);
                        continue;
                    }
                    None => ListOutcome::Unavailable(BackupError::ListUnavailable {
                        what: list_what(&job),
                        attempts: expired,
                        message: format!(
                            "the list expired mid-way {expired} times (or the API server gave no token to go on): {}",
                            kube_error_message(&kube::Error::Api(status))
                        ),
                    }),
                }
            }
            Err(err) if retry::is_transient(&err) => {
                ListOutcome::Unavailable(BackupError::ListUnavailable {
                    what: list_what(&job),
                    attempts: retry::API_ATTEMPTS,
                    message: kube_error_message(&err),
                })
            }
            Err(err) if is_forbidden(&err) && matches!(job.scope, ListScope::AllNamespaces(_)) => {
                ListOutcome::ForbiddenClusterWide
            }
            Err(err) => ListOutcome::Api(ItemError {
                resource: job.type_dir.to_string(),
                namespace: namespace.map(str::to_string),
                name: None,
                message: format!("cannot list: {}", kube_error_message(&err)),
            }),
        };
        // The receiver may be gone (the run stopped); nothing is left to tell then.
        let _ = pages.send(PageMessage::Failed(failed)).await;
        return;
    }
}

/// One page of a list: its objects exactly as listed (slices of the response body).
struct ListedPage {
    items: Vec<Bytes>,
    continue_token: Option<String>,
}

async fn fetch_page(
    client: &Client,
    request: &kube::core::Request,
    params: &ListParams,
) -> Result<ListedPage, kube::Error> {
    let request = request.list(params).map_err(kube::Error::BuildRequest)?;
    let body = client.request_text(request).await?;
    split_page(body).map_err(kube::Error::SerdeError)
}

/// Splits a list response into its items without decoding them.
fn split_page(body: String) -> Result<ListedPage, serde_json::Error> {
    // `null` for either is an empty list (some API servers and aggregated APIs send it).
    #[derive(serde::Deserialize)]
    struct Listed<'a> {
        #[serde(default)]
        metadata: Option<ListMeta>,
        #[serde(borrow, default)]
        items: Option<Vec<&'a serde_json::value::RawValue>>,
    }
    let listed: Listed<'_> = serde_json::from_str(&body)?;
    let base = body.as_ptr() as usize;
    // Borrowed raw values are slices of `body`: their offsets locate them in the shared bytes.
    let ranges: Vec<std::ops::Range<usize>> = listed
        .items
        .unwrap_or_default()
        .iter()
        .map(|raw| {
            let start = (raw.get().as_ptr() as usize).saturating_sub(base);
            start..start + raw.get().len()
        })
        .collect();
    let continue_token = listed
        .metadata
        .and_then(|m| m.continue_)
        .filter(|t| !t.is_empty());
    let bytes = Bytes::from(body.into_bytes());
    let items = ranges
        .into_iter()
        .map(|range| {
            bytes
                .get(range.clone())
                .map(|_| bytes.slice(range))
                .ok_or_else(|| {
                    <serde_json::Error as serde::de::Error>::custom(
                        "a list item outside the response",
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(ListedPage {
        items,
        continue_token,
    })
}

/// The names of a listed object, read without decoding the rest.
#[derive(serde::Deserialize)]
struct ListedHead {
    metadata: ListedNames,
}

#[derive(serde::Deserialize)]
struct ListedNames {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// Turns listed objects into uploads: filters them, and either references the previous run's
/// copy (same listed fingerprint, nothing decoded) or serializes them.
struct ItemReader<'a> {
    types: &'a TypePlan,
    packed: bool,
    previous: Option<Arc<PreviousObjects>>,
    /// The previous run's objects of the namespace/type being read.
    current: Option<(SegmentKey, Option<KeyObjects>)>,
}

impl ItemReader<'_> {
    async fn upload_for(
        &mut self,
        job: &ListJob,
        item: Bytes,
    ) -> Result<Option<Upload>, ItemError> {
        let item_error =
            |namespace: Option<String>, name: Option<String>, message: String| ItemError {
                resource: job.type_dir.to_string(),
                namespace,
                name,
                message,
            };
        let head: ListedHead = serde_json::from_slice(&item).map_err(|err| {
            let namespace = match &job.scope {
                ListScope::Namespace(ns) => Some(ns.clone()),
                _ => None,
            };
            item_error(
                namespace,
                None,
                format!("cannot read a listed object: {err}"),
            )
        })?;
        let ListedNames { name, namespace } = head.metadata;
        if let ListScope::AllNamespaces(wanted) = &job.scope
            && !namespace.as_ref().is_some_and(|ns| wanted.contains(ns))
        {
            return Ok(None);
        }
        if namespace.is_none() && !self.types.wants_cluster_object(&job.resource, &name) {
            return Ok(None);
        }
        if let ListScope::NamespaceObjects(wanted) = &job.scope
            && !wanted.contains(&name)
        {
            return Ok(None);
        }
        let relative = layout::relative_object_key(namespace.as_deref(), &job.type_dir, &name);
        let entry = |size: u64, sha256: Sha256Digest, namespace: Option<String>, name: String| {
            ManifestEntry {
                key: relative.clone(),
                api_version: job.api_version.clone(),
                kind: job.kind.clone(),
                resource: job.type_dir.clone(),
                namespace: namespace.map(Arc::from),
                name,
                size,
                sha256,
                location: None,
            }
        };
        let listed = self
            .packed
            .then(|| Fingerprint::of_listed(&job.api_version, &job.kind, &item));
        if let Some(fingerprint) = listed
            && let Some(previous) = self.previous_of(namespace.as_deref(), &job.type_dir).await
            && let Some(prev) = previous
                .get(&name)
                .filter(|p| p.listed == Some(fingerprint))
        {
            let entry = entry(prev.size, prev.sha256, namespace, name);
            return Ok(Some(Upload {
                entry,
                payload: Payload::Listed(item),
                listed,
            }));
        }
        let object: DynamicObject = serde_json::from_slice(&item).map_err(|err| {
            item_error(
                namespace.clone(),
                Some(name.clone()),
                format!("cannot read the listed object: {err}"),
            )
        })?;
        if plan::skip_object(&job.resource, &name, &object.data).is_some() {
            return Ok(None);
        }
        // Packed runs store compact JSON (smaller, faster); browsable files stay pretty.
        let bytes =
            serialize_object(object, &job.api_version, &job.kind, self.packed).map_err(|err| {
                item_error(
                    namespace.clone(),
                    Some(name.clone()),
                    format!("cannot serialize: {err}"),
                )
            })?;
        let entry = entry(
            bytes.len() as u64,
            Sha256Digest::of(&bytes),
            namespace,
            name,
        );
        Ok(Some(Upload {
            entry,
            payload: Payload::Stored(Bytes::from(bytes)),
            listed,
        }))
    }

    /// The previous run's objects of one namespace/type (read once per key change).
    async fn previous_of(&mut self, namespace: Option<&str>, resource: &str) -> Option<KeyObjects> {
        let previous = self.previous.as_ref()?;
        let same = self.current.as_ref().is_some_and(|(key, _)| {
            key.namespace.as_deref() == namespace && key.resource == resource
        });
        if !same {
            let key = SegmentKey {
                namespace: namespace.map(str::to_string),
                resource: resource.to_string(),
            };
            let objects = previous.lookup(&key).await;
            self.current = Some((key, objects));
        }
        self.current
            .as_ref()
            .and_then(|(_, objects)| objects.clone())
    }
}

/// The bytes stored for a listed object: complete (list items arrive without apiVersion and
/// kind), compact for packed runs, pretty for browsable files.
fn serialize_object(
    mut object: DynamicObject,
    api_version: &str,
    kind: &str,
    compact: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    object.types = Some(TypeMeta {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    });
    if compact {
        serde_json::to_vec(&object)
    } else {
        serde_json::to_vec_pretty(&object)
    }
}

/// [`serialize_object`] of an object as listed.
fn stored_bytes(
    api_version: &str,
    kind: &str,
    listed: &[u8],
    compact: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    let object: DynamicObject = serde_json::from_slice(listed)?;
    serialize_object(object, api_version, kind, compact)
}

/// `<type>` or `<type> in <namespace>`, for errors.
fn list_what(job: &ListJob) -> String {
    match &job.scope {
        ListScope::Namespace(ns) => format!("{} in namespace {ns}", job.type_dir),
        ListScope::Cluster | ListScope::AllNamespaces(_) | ListScope::NamespaceObjects(_) => {
            job.type_dir.to_string()
        }
    }
}

/// The namespaces the run may back up, and item errors for the ones its identity may not see.
/// When it may not list namespaces (a namespace admin may not), `"*"` covers none (an item
/// error says why) and each named namespace is read on its own: a namespace admin may read its
/// own namespace.
async fn visible_namespaces(
    client: &Client,
    selection: &NamespaceSelection,
) -> Result<(Vec<String>, Vec<ItemError>), BackupError> {
    let source = match list_namespace_names(client).await {
        Ok(names) => return Ok((names, Vec::new())),
        Err(BackupError::ListNamespaces { source }) if is_forbidden(&source) => source,
        Err(err) => return Err(err),
    };
    let refused = |name: Option<&String>, message: String| ItemError {
        resource: "namespaces".to_string(),
        namespace: None,
        name: name.cloned(),
        message,
    };
    let names = match selection {
        NamespaceSelection::AllExcept(_) => {
            let message = format!(
                "cannot list namespaces, so \"*\" covers none: {}",
                kube_error_message(&source)
            );
            return Ok((Vec::new(), vec![refused(None, message)]));
        }
        NamespaceSelection::Explicit(names) => names,
    };
    let api: Api<Namespace> = Api::all(client.clone());
    let mut visible = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match with_retries("read namespace", || api.get_metadata_opt(name)).await {
            Ok(Some(_)) => visible.push(name.clone()),
            Ok(None) => {}
            Err(err) if is_forbidden(&err) => {
                let message = format!("cannot read namespace: {}", kube_error_message(&err));
                errors.push(refused(Some(name), message));
            }
            Err(source) => return Err(BackupError::ListNamespaces { source }),
        }
    }
    Ok((visible, errors))
}

fn is_forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.is_forbidden())
}

async fn list_namespace_names(client: &Client) -> Result<Vec<String>, BackupError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(LIST_PAGE_SIZE);
    loop {
        let page = with_retries("list namespaces", || api.list_metadata(&params))
            .await
            .map_err(|source| BackupError::ListNamespaces { source })?;
        names.extend(page.items.iter().map(|ns| ns.name_any()));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(names),
        }
    }
}

fn is_namespace_type(resource: &DiscoveredResource) -> bool {
    resource.is("", NAMESPACE_PLURAL)
}

fn is_crd(resource: &DiscoveredResource) -> bool {
    resource.is(CRD_GROUP, CRD_PLURAL)
}

/// The API server's own message (e.g. `secrets is forbidden: User ... cannot list ...`).
pub fn kube_error_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.reason),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::tests::res;
    use crate::engine::packed::tests::{TEST_NAME, TEST_NS, commit, started, storage};

    fn page(items: &[&str], token: &str) -> String {
        format!(
            r#"{{"kind":"ConfigMapList","apiVersion":"v1","metadata":{{"resourceVersion":"7","continue":"{token}"}},"items":[{}]}}"#,
            items.join(",")
        )
    }

    const A: &str = r#"{"metadata":{"name":"a","namespace":"x","resourceVersion":"5"},"data":{"k":"v \"quoted\" ]}"}}"#;
    const B: &str = r#"{"metadata":{"name":"b","namespace":"x"},"data":{}}"#;

    #[test]
    fn a_page_splits_into_its_items_exactly_as_listed() {
        let split = split_page(page(&[A, B], "next")).unwrap();
        let items: Vec<&[u8]> = split.items.iter().map(|b| b.as_ref()).collect();
        assert_eq!(items, vec![A.as_bytes(), B.as_bytes()]);
        assert_eq!(split.continue_token.as_deref(), Some("next"));

        let last = split_page(page(&[], "")).unwrap();
        assert!(last.items.is_empty());
        assert_eq!(last.continue_token, None);

        assert!(split_page("{\"items\":[{\"metadata\":".to_string()).is_err());
        assert!(split_page("<html>proxy error</html>".to_string()).is_err());
    }

    /// The bytes stored for a listed object are those of the decoded object with its type set,
    /// whichever path produced them.
    #[test]
    fn stored_bytes_are_the_complete_object() {
        let bytes = stored_bytes("v1", "ConfigMap", A.as_bytes(), true).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["apiVersion"], "v1");
        assert_eq!(value["kind"], "ConfigMap");
        assert_eq!(value["data"]["k"], "v \"quoted\" ]}");
        assert_eq!(value["metadata"]["resourceVersion"], "5");
        let pretty = stored_bytes("v1", "ConfigMap", A.as_bytes(), false).unwrap();
        assert_ne!(bytes, pretty);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&pretty).unwrap(),
            value
        );
    }

    fn configmaps_in_x() -> ListJob {
        let resource = res("", "v1", "ConfigMap", "configmaps", &["cm"], true);
        ListJob::new(&resource, ListScope::Namespace("x".into()))
    }

    /// A packed run of the test Backup started at `hour`, and its listing's reader.
    async fn packed_run<'a>(
        storage: &Storage,
        hour: u32,
        types: &'a TypePlan,
    ) -> (PackedWriter, ItemReader<'a>) {
        let writer = PackedWriter::start(storage, TEST_NS, TEST_NAME, None, started(hour))
            .await
            .unwrap();
        let reader = ItemReader {
            types,
            packed: true,
            previous: writer.previous_objects_for_listing(),
            current: None,
        };
        (writer, reader)
    }

    /// A first packed run (hour 1) of `items` listed by `job`, committed.
    async fn first_run(storage: &Storage, job: &ListJob, items: &[&str]) {
        let types = TypePlan::default();
        let (mut first, mut reader) = packed_run(storage, 1, &types).await;
        for item in items {
            // Skipped objects (kube-root-ca.crt) are not stored.
            let Some(upload) = reader
                .upload_for(job, Bytes::from(item.to_string()))
                .await
                .unwrap()
            else {
                continue;
            };
            let Payload::Stored(bytes) = upload.payload else {
                panic!("a first run stores everything");
            };
            first
                .add(upload.entry, Some(&bytes), upload.listed)
                .await
                .unwrap();
        }
        let outcome = first.finish().await.unwrap();
        commit(storage, 1, &outcome, items.len() as u64).await;
    }

    /// A packed run references an object listed with the same bytes as in the previous run
    /// without decoding it; a changed object is serialized, and skipped objects stay skipped.
    #[tokio::test]
    async fn an_object_listed_as_before_is_referenced_without_decoding() {
        let storage = storage();
        let job = configmaps_in_x();
        let types = TypePlan::default();
        let root_ca = r#"{"metadata":{"name":"kube-root-ca.crt","namespace":"x"},"data":{}}"#;
        let changed_a = A.replace("\"5\"", "\"6\"");
        first_run(&storage, &job, &[A, B, root_ca]).await;

        let (_second, mut reader) = packed_run(&storage, 2, &types).await;
        let same = reader
            .upload_for(&job, Bytes::from(B))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(same.payload, Payload::Listed(_)));
        let expected = stored_bytes("v1", "ConfigMap", B.as_bytes(), true).unwrap();
        assert_eq!(same.entry.sha256, Sha256Digest::of(&expected));
        assert_eq!(same.entry.size, expected.len() as u64);
        assert_eq!(same.entry.key, "namespaces/x/configmaps/b.json");

        let changed = reader
            .upload_for(&job, Bytes::from(changed_a))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(changed.payload, Payload::Stored(_)));
        assert!(
            reader
                .upload_for(&job, Bytes::from(root_ca))
                .await
                .unwrap()
                .is_none()
        );
        let Err(broken) = reader
            .upload_for(&job, Bytes::from("{\"metadata\":{}}"))
            .await
        else {
            panic!("an object without a name is an error");
        };
        assert!(
            broken.message.contains("cannot read a listed object"),
            "{broken}"
        );
    }

    /// An object listed as before whose pack is gone is stored again from its listed bytes by
    /// the packing task: the run restores it, with the size and sha256 of what it stored.
    #[tokio::test]
    async fn a_listed_object_whose_pack_is_gone_is_stored_from_its_listed_bytes() {
        let storage = storage();
        let job = configmaps_in_x();
        let types = TypePlan::default();
        first_run(&storage, &job, &[A]).await;
        let data = crate::core::packed::data_dir(TEST_NS, TEST_NAME);
        let packs: Vec<_> = storage
            .list(&crate::core::packed::packs_dir(&data))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(packs.len(), 1);
        storage.delete(&packs[0].key).await.unwrap();

        let (second, mut reader) = packed_run(&storage, 2, &types).await;
        let upload = reader
            .upload_for(&job, Bytes::from(A))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(upload.payload, Payload::Listed(_)));
        let (tx, rx) = mpsc::channel(4);
        tx.send(upload).await.unwrap();
        drop(tx);
        let (progress, _) = watch::channel(Progress::default());
        let stored = pack(second, rx, progress).await.unwrap();
        let outcome = stored.packed.unwrap();
        assert_eq!(outcome.reused, 0);
        let path = commit(&storage, 2, &outcome, 1).await;

        let mut manifest = catalogue::read_manifest(&storage, &path).await.unwrap();
        crate::engine::packed::expand(&storage, &path, &mut manifest)
            .await
            .unwrap();
        let entry = &manifest.objects[0];
        let bytes = crate::engine::packed::read_object(
            &storage,
            &path,
            entry.location.as_ref().unwrap(),
            Content::Other,
        )
        .await
        .unwrap();
        entry.verify(&bytes).unwrap();
        assert_eq!(
            bytes,
            stored_bytes("v1", "ConfigMap", A.as_bytes(), true).unwrap()
        );
    }

    #[test]
    fn null_items_and_metadata_are_an_empty_list() {
        for body in [
            r#"{"kind":"List","metadata":null,"items":null}"#,
            r#"{"kind":"List"}"#,
        ] {
            let page = split_page(body.to_string()).unwrap();
            assert!(
                page.items.is_empty() && page.continue_token.is_none(),
                "{body}"
            );
        }
    }
}
