// kube-derive repeats `printcolumn(type_ = ...)`; clippy reads that as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StorageLocation;

/// Annotation that asks for an immediate run of a Backup. Any new value triggers one run;
/// the handled value is recorded in `status.lastManualTrigger` so it runs exactly once.
pub const RUN_NOW_ANNOTATION: &str = "backup.cnd.dk/run-now";

/// Annotation the API server writes on every create and update of a Backup or Restore: the
/// identity that made the request, as JSON (`config/admission/`; read by
/// `core::requester::Requester`). Whatever value a user sends is overwritten.
pub const REQUESTER_ANNOTATION: &str = "backup.cnd.dk/requester";

/// What to back up, when, and where.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "backup.cnd.dk",
    version = "v1",
    kind = "Backup",
    namespaced,
    status = "BackupStatus",
    shortname = "bk",
    category = "cluster-backup",
    doc = "A Backup copies Kubernetes objects to object storage, once or on a cron schedule.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(
        name = "Last Backup",
        type_ = "date",
        json_path = ".status.lastBackupTime"
    ),
    printcolumn(
        name = "Next Backup",
        type_ = "string",
        json_path = ".status.nextBackupTime"
    ),
    printcolumn(name = "Count", type_ = "integer", json_path = ".status.backupCount"),
    printcolumn(
        name = "Last Result",
        type_ = "string",
        json_path = ".status.lastRun.result",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// What to back up.
    #[serde(default)]
    pub source: BackupSource,

    /// Cron schedule: 5 fields (minute hour day-of-month month day-of-week) or a descriptor
    /// (`@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`).
    /// Empty: a one-shot backup that runs once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,

    /// IANA time zone for `schedule` (like CronJob's `timeZone`), e.g. `Europe/Copenhagen`.
    /// Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,

    /// Where to store the backup.
    pub storage_location: StorageLocation,

    /// How long stored backups are kept. Without it, every run is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionPolicy>,

    /// How runs are stored. `objects` (the default): one JSON file per object, browsable in
    /// the bucket. `packed`: objects in compressed packs with an index, and incremental: a run
    /// uploads only what changed since the previous run of this Backup (each run still
    /// restores on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<BackupFormat>,
}

/// Selection of the objects to back up.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSource {
    /// Namespaces to back up. `["*"]` means every namespace minus `excludeNamespaces`.
    /// Empty (and no `namespace`): every namespace except kube-system, kube-public,
    /// kube-node-lease and `excludeNamespaces`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,

    /// Single namespace (deprecated, use `namespaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// Only objects whose labels match (evaluated by the API server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,

    /// Resource types to back up: plural (`deployments`), singular, kind (`Deployment`),
    /// short name (`deploy`), `plural.group` (`certificates.cert-manager.io`), including custom
    /// resources. Empty: deployments, services, configmaps, secrets, persistentvolumeclaims,
    /// ingresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_types: Vec<String>,

    /// Also back up cluster-scoped objects: clusterroles, clusterrolebindings,
    /// persistentvolumes, storageclasses, plus the CustomResourceDefinitions of backed-up
    /// custom resources.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_cluster_resources: bool,

    /// Namespaces never backed up (applies to `"*"` and to the default selection).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_namespaces: Vec<String>,
}

/// Expiry of stored backups. Both limits apply when both are set.
/// How runs are stored (`spec.format`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupFormat {
    /// One JSON file per object (`namespaces/<ns>/<type>/<name>.json`).
    #[default]
    Objects,
    /// Compressed packs and an index shared by the Backup's runs; incremental.
    Packed,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicy {
    /// Keep only the newest N complete backups of this Backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub keep_last: Option<u32>,

    /// Delete complete backups older than this, e.g. `720h`, `30d`, `1w`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// What the Backup object is doing now. How the last run ended is in `status.lastRun`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BackupPhase {
    /// Seen, not yet processed.
    New,
    /// Waiting for `nextBackupTime`.
    Scheduled,
    /// A run is in progress.
    Running,
    /// One-shot backup finished with every object stored.
    Completed,
    /// One-shot backup finished and is restorable, but some objects could not be stored.
    PartiallyFailed,
    /// One-shot backup failed, or the spec is invalid.
    Failed,
}

/// How a run ended.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RunResult {
    Completed,
    PartiallyFailed,
    Failed,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// What the Backup is doing now (see `lastRun` for how the last run ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,

    /// Human-readable state or the reason of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// When the newest restorable backup (Completed or PartiallyFailed) finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_time: Option<Time>,

    /// When the next scheduled run is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_backup_time: Option<Time>,

    /// Number of restorable backups this Backup has produced.
    #[serde(default)]
    pub backup_count: i64,

    /// Objects stored by the newest restorable backup, keyed `<namespace>/<type>` and
    /// `cluster/<type>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_counts: BTreeMap<String, i64>,

    /// Storage key prefix of the newest restorable backup (use it in a Restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_path: Option<String>,

    /// The run in progress, if any. Also the run the operator stopped during (with result
    /// `Failed` when it stopped on purpose), until the next operator start retries or ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_run: Option<BackupRun>,

    /// How the last finished run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<BackupRun>,

    /// The last finished runs, newest first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<BackupRun>,

    /// The schedule slot the last run was started for; a restarted operator never runs the
    /// same slot twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,

    /// The last handled value of the `backup.cnd.dk/run-now` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_manual_trigger: Option<String>,

    /// `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One run of a Backup.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupRun {
    /// Storage key prefix of this run.
    pub backup_path: String,
    /// Why it ran: `initial`, `schedule`, `missed-schedule`, `manual`, `retry`.
    pub trigger: String,
    /// Which attempt at its trigger this run is: 1, then one more for each retry after the
    /// operator stopped mid-run (bounded by the operator's `--run-retries`). Absent: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Whose rights the run read the cluster with: the user the API server recorded as the
    /// last to create or change the spec or trigger (annotation `backup.cnd.dk/requester`).
    /// Absent when the operator runs in single-tenant mode (its own rights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    pub start_time: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// How it ended; absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<RunResult>,
    /// Objects stored so far (while running) or in total.
    #[serde(default)]
    pub objects: i64,
    /// Bytes stored.
    #[serde(default)]
    pub bytes: i64,
    /// Objects that could not be read or stored.
    #[serde(default)]
    pub failed: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The first item errors (the full list is in the backup's manifest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Objects referenced from earlier runs instead of uploaded again (`format: packed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_objects: Option<i64>,
    /// Write requests (PUTs) the run sent to the bucket, its manifest included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_requests: Option<i64>,
    /// Bytes the run wrote to the bucket (after compression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_bytes: Option<i64>,
    /// Every request the run sent to the bucket: reads, lists and writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_requests: Option<i64>,
}
