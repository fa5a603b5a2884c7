// kube-derive repeats `printcolumn(type_ = ...)`; clippy reads that as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StorageLocation;

/// How many entries each per-object list in `Restore.status` keeps. Counts stay exact.
pub const RESTORE_STATUS_LIST_LIMIT: usize = 50;

/// Bring a stored backup back, into the same cluster or another one.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "backup.cnd.dk",
    version = "v1",
    kind = "Restore",
    namespaced,
    status = "RestoreStatus",
    shortname = "rst",
    category = "cluster-backup",
    doc = "A Restore re-creates the objects of a stored backup.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Backup",
        type_ = "string",
        json_path = ".status.backupInfo.backupPath"
    ),
    printcolumn(name = "Started", type_ = "date", json_path = ".status.startTime"),
    printcolumn(
        name = "Completed",
        type_ = "date",
        json_path = ".status.completionTime"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// Which stored backup to restore.
    pub source: RestoreSource,
    /// Where and what to restore.
    #[serde(default)]
    pub target: RestoreTarget,
    #[serde(default)]
    pub options: RestoreOptions,
}

/// Either `storageLocation` + `backupPath` (works in a cluster that never had the Backup), or
/// `backupName` (the newest complete run of that Backup in the Restore's namespace).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_location: Option<StorageLocation>,
    /// Storage key prefix of the backup (a Backup's `status.backupPath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_path: Option<String>,
    /// A Backup in this namespace; its newest complete run is restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreTarget {
    /// Target namespaces (after mapping). Empty: every namespace of the backup under its own
    /// name. One entry and no mapping for a source namespace: that namespace goes there.
    /// System namespaces (`kube-*`) are restored, as source or target, only when named here or
    /// in `namespaceMapping`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Types to restore (plural, singular, kind, short name or `plural.group`). Empty: every
    /// namespaced type. Cluster-scoped objects are restored only when their type is named here
    /// (naming a custom resource type also names its CRD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_types: Vec<String>,
    /// What to do with objects that already exist.
    #[serde(default)]
    pub conflict_resolution: ConflictResolution,
    /// Only stored objects whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// Source namespace → target namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_mapping: BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConflictResolution {
    /// Leave the existing object alone (default).
    #[default]
    Skip,
    /// Replace the existing object with the stored one.
    Overwrite,
    /// Stop the restore, naming the conflicting object.
    Fail,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOptions {
    /// Report what would be created, overwritten or skipped; write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Verify the backup (manifest, checksums, parseable objects) and report; write nothing.
    #[serde(default)]
    pub validate_only: bool,
    /// Create target namespaces that do not exist.
    #[serde(default)]
    pub create_namespaces: bool,
    /// Leave cluster-scoped objects out (Namespace objects of the restored namespaces stay).
    /// Without it, cluster-scoped objects are restored only when `target.resourceTypes` names
    /// their type.
    #[serde(default)]
    pub skip_cluster_resources: bool,
    /// Also restore sensitive objects, which are otherwise skipped even when
    /// `target.resourceTypes` names their type: admission webhooks and policies
    /// (`admissionregistration.k8s.io`), APIServices, RBAC objects named `system:*` and the
    /// built-in ClusterRoles and ClusterRoleBindings `cluster-admin`, `admin`, `edit` and
    /// `view`, bindings whose roleRef is `cluster-admin` or a `system:*` role, ClusterRoles
    /// labelled `rbac.authorization.k8s.io/aggregate-to-*`, and CRDs with a conversion webhook.
    #[serde(default)]
    pub include_sensitive_resources: bool,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RestorePhase {
    New,
    Validating,
    Downloading,
    Restoring,
    Completed,
    PartiallyFailed,
    Failed,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RestorePhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Exact counts, keyed `<action>/<type>` (e.g. `created/deployments`, `created/widgets.example.com`) and totals
    /// (`created`, `overwritten`, `skipped`, `failed`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_counts: BTreeMap<String, i64>,
    /// The first restored objects (see `resourceCounts` for exact totals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored_resources: Vec<RestoredResource>,
    /// The first failed objects, with the API server's reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_resources: Vec<RestoredResource>,
    /// The first skipped objects, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_resources: Vec<RestoredResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_info: Option<BackupInfo>,
    /// Objects handled of those selected, while the restore runs (what `--wait` shows); the
    /// last values stay when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<RestoreProgressStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Which attempt the run is: 1, then one more for each time the restore runs again from
    /// the start after the operator stopped mid-run (bounded by the operator's
    /// `--run-retries`). Absent: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Whose rights the restore wrote with: the user the API server recorded as the last to
    /// create or change the spec (annotation `backup.cnd.dk/requester`). Absent when the
    /// operator runs in single-tenant mode (its own rights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// `status.progress` of a running Restore.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreProgressStatus {
    /// Objects verified (while downloading) or restored (while restoring) so far.
    pub processed: i64,
    /// Objects selected; 0 until the manifest is read.
    pub total: i64,
}

/// One object in a Restore's status lists.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoredResource {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `created`, `overwritten`, `skipped`, or what a dry run would do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the restored backup contains (from its manifest).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupInfo {
    pub backup_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_time: Option<Time>,
    #[serde(default)]
    pub total_resources: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}
