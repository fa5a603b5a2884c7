//! The backup engine: list what the plan selects, page by page, and stream every object to
//! storage with bounded concurrency; write `manifest.json` last as the commit marker.
//!
//! Memory is bounded by one list page (500 objects) plus the upload window; the manifest keeps
//! one compact entry per object (key, type, name, size, sha256).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
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
use crate::core::plan::{self, NamespaceSelection, TypePlan};
use crate::core::selector;
use crate::core::types::{CRD_GROUP, CRD_PLURAL, DiscoveredResource, NAMESPACE_PLURAL};
use crate::engine::faults;
use crate::engine::packed::PackedWriter;
use crate::k8s::discovery::{DiscoveryError, discover};
use crate::k8s::retry::{self, with_retries};
use crate::storage::catalogue::{self, ManifestReadError};
use crate::storage::{StatsSnapshot, Storage, StorageError};

/// Objects per list request (Velero uses 500 too).
pub const LIST_PAGE_SIZE: u32 = 500;
/// Concurrent uploads; 16–32 is the sweet spot for S3 servers on the same host.
pub const UPLOAD_CONCURRENCY: usize = 32;
/// Expired continue tokens one listing may go past before the run gives up on it.
const MAX_EXPIRED_CONTINUES: u32 = 5;
/// Item errors kept in status (the manifest keeps all of them).
pub const STATUS_ERROR_LIMIT: usize = 10;

/// Identity of one run.
#[derive(Clone, Debug)]
pub struct RunContext {
    pub backup_namespace: String,
    pub backup_name: String,
    pub uid: Option<String>,
    pub started: DateTime<Utc>,
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

/// One object ready to upload.
struct Upload {
    key: String,
    bytes: Bytes,
    entry: ManifestEntry,
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
    let producer = async {
        let mut errors = Vec::new();
        let mut queue: std::collections::VecDeque<ListJob> = jobs.into();
        while let Some(job) = queue.pop_front() {
            // CRDs are listed only to carry the definitions of backed-up custom resources; the
            // user's label selector is meant for their objects, not for that lookup.
            let labels = if is_crd(&job.resource) {
                None
            } else {
                label_query.as_deref()
            };
            match list_job(client, &job, labels, types, &run_path, packed, &tx).await {
                Ok(()) => {}
                Err(ListOutcome::Receiver) => break,
                // May not list the type across the cluster: list it namespace by namespace,
                // so what the run's identity may read in some namespaces is still backed up.
                Err(ListOutcome::ForbiddenClusterWide) => {
                    if let ListScope::AllNamespaces(wanted) = &job.scope {
                        for ns in wanted {
                            let scope = ListScope::Namespace(ns.clone());
                            queue.push_back(ListJob::new(&job.resource, scope));
                        }
                    }
                }
                Err(ListOutcome::Api(err)) => errors.push(err),
                Err(ListOutcome::Unavailable(err)) => return Err(err),
            }
        }
        drop(tx);
        Ok::<_, BackupError>(errors)
    };

    let consumer = async {
        let mut stored = Stored::default();
        if packed {
            let writer = PackedWriter::start(
                storage,
                &run.backup_namespace,
                &run.backup_name,
                run.uid.as_deref(),
                run.started,
            )
            .await
            .map_err(storage_err)?;
            // Packing (compression, the index, uploads) runs as a task of its own, beside the
            // listing and serialising; it is aborted with the run.
            let packing = AbortOnDropHandle::new(tokio::spawn(pack(writer, rx, progress.clone())));
            return match packing.await {
                Ok(stored) => stored.map_err(storage_err),
                Err(err) => Err(BackupError::Internal {
                    message: format!("the packing task failed: {err}"),
                }),
            };
        }
        let mut rx = rx;
        let uploads = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
        let mut results = uploads
            .map(|upload| async move {
                storage
                    .put(&upload.key, upload.bytes)
                    .await
                    .map(|()| upload.entry)
            })
            .buffer_unordered(UPLOAD_CONCURRENCY);
        while let Some(entry) = results.try_next().await.map_err(storage_err)? {
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
        spec: manifest::redact_spec(spec),
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
    };
    Ok((manifest, result, reused))
}

/// Stores every object the listing sends into packs (`format: packed`).
async fn pack(
    mut writer: PackedWriter,
    mut rx: mpsc::Receiver<Upload>,
    progress: watch::Sender<Progress>,
) -> Result<Stored, StorageError> {
    let mut stored = Stored::default();
    while let Some(upload) = rx.recv().await {
        let size = upload.entry.size;
        stored.count(&upload.entry);
        writer.add(upload.entry, &upload.bytes).await?;
        progress.send_modify(|p| {
            p.objects += 1;
            p.bytes += size;
        });
        faults::crash_at_count("upload", stored.objects);
    }
    stored.packed = Some(writer.finish().await?);
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
    /// The uploader stopped (storage failed); stop listing.
    Receiver,
    /// A lasting refusal (403, 404 of the type, ...): an item error, the run goes on.
    Api(ItemError),
    /// Passing errors outlasted the retries: the run fails.
    Unavailable(BackupError),
    /// The run's identity may not list this type across all namespaces (it may still in some).
    ForbiddenClusterWide,
}

async fn list_job(
    client: &Client,
    job: &ListJob,
    labels: Option<&str>,
    types: &TypePlan,
    run_path: &str,
    compact: bool,
    tx: &mpsc::Sender<Upload>,
) -> Result<(), ListOutcome> {
    let api: Api<DynamicObject> = match &job.scope {
        ListScope::Namespace(ns) => Api::namespaced_with(client.clone(), ns, &job.api),
        ListScope::Cluster | ListScope::AllNamespaces(_) | ListScope::NamespaceObjects(_) => {
            Api::all_with(client.clone(), &job.api)
        }
    };
    let mut params = ListParams::default().limit(LIST_PAGE_SIZE);
    if let Some(labels) = labels {
        params = params.labels(labels);
    }
    let scope_namespace = match &job.scope {
        ListScope::Namespace(ns) => Some(ns.clone()),
        _ => None,
    };
    let mut expired = 0;
    loop {
        let page = match with_retries("list", || api.list(&params)).await {
            Ok(page) => page,
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
                    None => {
                        return Err(ListOutcome::Unavailable(BackupError::ListUnavailable {
                            what: list_what(job),
                            attempts: expired,
                            message: format!(
                                "the list expired mid-way {expired} times (or the API server gave no token to go on): {}",
                                kube_error_message(&kube::Error::Api(status))
                            ),
                        }));
                    }
                }
            }
            Err(err) if retry::is_transient(&err) => {
                return Err(ListOutcome::Unavailable(BackupError::ListUnavailable {
                    what: list_what(job),
                    attempts: retry::API_ATTEMPTS,
                    message: kube_error_message(&err),
                }));
            }
            Err(err) => {
                if is_forbidden(&err) && matches!(job.scope, ListScope::AllNamespaces(_)) {
                    return Err(ListOutcome::ForbiddenClusterWide);
                }
                return Err(ListOutcome::Api(ItemError {
                    resource: job.type_dir.to_string(),
                    namespace: scope_namespace,
                    name: None,
                    message: format!("cannot list: {}", kube_error_message(&err)),
                }));
            }
        };
        let next = page
            .metadata
            .continue_
            .clone()
            .filter(|token| !token.is_empty());
        for mut object in page.items {
            let namespace = object.namespace();
            if let ListScope::AllNamespaces(wanted) = &job.scope
                && !namespace.as_ref().is_some_and(|ns| wanted.contains(ns))
            {
                continue;
            }
            let name = object.name_any();
            if namespace.is_none() && !types.wants_cluster_object(&job.resource, &name) {
                continue;
            }
            if let ListScope::NamespaceObjects(wanted) = &job.scope
                && !wanted.contains(&name)
            {
                continue;
            }
            if plan::skip_object(&job.resource, &name, &object.data).is_some() {
                continue;
            }
            // List items arrive without apiVersion/kind; a stored object must be complete.
            object.types = Some(TypeMeta {
                api_version: job.api.api_version.clone(),
                kind: job.api.kind.clone(),
            });
            // Packed runs store compact JSON (smaller, faster); browsable files stay pretty.
            let serialized = if compact {
                serde_json::to_vec(&object)
            } else {
                serde_json::to_vec_pretty(&object)
            };
            let upload = match serialized {
                Ok(bytes) => {
                    let relative =
                        layout::relative_object_key(namespace.as_deref(), &job.type_dir, &name);
                    let entry = ManifestEntry {
                        key: relative,
                        api_version: job.api_version.clone(),
                        kind: job.kind.clone(),
                        resource: job.type_dir.clone(),
                        namespace: namespace.map(Arc::from),
                        name,
                        size: bytes.len() as u64,
                        sha256: Sha256Digest::of(&bytes),
                        location: None,
                    };
                    Upload {
                        key: format!("{run_path}/{}", entry.key),
                        bytes: Bytes::from(bytes),
                        entry,
                    }
                }
                Err(err) => {
                    return Err(ListOutcome::Api(ItemError {
                        resource: job.type_dir.to_string(),
                        namespace,
                        name: Some(name),
                        message: format!("cannot serialize: {err}"),
                    }));
                }
            };
            tx.send(upload).await.map_err(|_| ListOutcome::Receiver)?;
        }
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
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
