//! Every rule for turning a stored object into one the API server accepts on create.
//!
//! These rules live here, except which types are never restored at all: the type catalogue
//! marks those ([`crate::core::types::KNOWN_TYPES`], [`crate::core::types::Restore::Never`]),
//! and this module consults it. The table below lists both; user documentation must agree
//! with it. The engine runs, per object: [`check_stored_object`] →
//! selection ([`super::select`]) → [`clean_for_restore`] → [`super::mapping::apply_mapping`].
//!
//! # Objects that are not restored ([`CleanOutcome::Skip`], with the reason shown in status)
//!
//! | What | Why |
//! |---|---|
//! | any object with `metadata.deletionTimestamp` | it was being deleted when backed up; restoring it would undo a deletion the user asked for |
//! | core `Secret` of type `kubernetes.io/service-account-token` | the target cluster's token controller issues its own tokens; a restored token belongs to another cluster (the backup never stores them; foreign backups may) |
//! | core `ConfigMap` `kube-root-ca.crt` | the control plane publishes it in every namespace with *its own* CA; a restored copy would hand pods the source cluster's CA |
//! | core `Endpoints` with label `endpoints.kubernetes.io/managed-by` or annotation `endpoints.kubernetes.io/last-change-trigger-time` | maintained by the endpoints controller from the Service's selector; it rebuilds them with the new pod IPs (user-made Endpoints of selector-less Services carry neither and are restored) |
//! | `discovery.k8s.io` `EndpointSlice` with label `endpointslice.kubernetes.io/managed-by` (any value) | maintained by a controller (endpointslice or mirroring controller), which rebuilds them |
//! | core and `events.k8s.io` `Event` | the source cluster's history, not state |
//! | `coordination.k8s.io` `Lease` | leader-election and heartbeat state of the source cluster's processes; a restored holder would only delay the real one |
//! | core `Node`, `storage.k8s.io` `CSINode`, `VolumeAttachment` | node state: nodes register themselves |
//! | core `Pod` in phase `Succeeded` or `Failed` | finished: re-creating it would run it again |
//! | core `Pod` with annotation `kubernetes.io/config.mirror` | mirror of a static pod, owned by its node's kubelet |
//! | core `Pod` whose controller (`ownerReferences[controller=true]`) is a `Job` | the restored Job gets a new selector (see below), would not adopt it, and starts its own pods: restoring it would run the work twice |
//! | core `Pod` whose controller is a `DaemonSet` | it is pinned to a node of the source cluster; the DaemonSet creates one per node of the target |
//! | `batch` `Job` that finished (`status.completionTime`, or a `Complete`/`Failed` condition that is `True`) | status is not restored, so the Job would run again |
//! | `backup.cnd.dk` `Backup` | a second cluster running it would write to, and expire runs in, the same storage path as the original |
//! | `backup.cnd.dk` `Restore` | the copy would run the restore again |
//!
//! Pods of ReplicaSets and StatefulSets are restored before their controller (restore order,
//! [`super::order`]), which adopts them when it is restored and counts them instead of
//! starting more, so nothing runs twice.
//!
//! # Fields removed from every object
//!
//! * `metadata.uid`, `resourceVersion`, `creationTimestamp`, `deletionTimestamp`,
//!   `deletionGracePeriodSeconds`, `generation`, `managedFields`, `selfLink`: server-populated;
//!   the API server refuses a `resourceVersion` on create and assigns the rest. Dropping
//!   `managedFields` makes the restore's field manager the owner, as for any new object.
//! * `status`, for every kind: it is observed state the target cluster recomputes (and ignored
//!   on create by kinds with a status subresource anyway).
//!
//! Kept on purpose: `metadata.ownerReferences` — they are user and controller intent (what is
//! garbage-collected with what, which controller manages an object), not server-populated. Their
//! `uid` is the old owner's, though, and a reference to a UID that does not exist makes the
//! garbage collector delete the restored object at once; so the engine points every reference at
//! the owner's UID in the target cluster before creating the object ([`super::owners`]): the
//! UID of the owner as this restore created it, or of the owner that already exists there.
//! Nothing waits for its owner: a reference to an owner this restore creates later (a Pod's
//! ReplicaSet, a ReplicaSet's Deployment, a ConfigMap's custom resource) is left out on create
//! and put back with the new UID at the end of the restore, unless the owner's controller has
//! adopted the object by then (`resourceCounts["ownerReferencesRestored"]`). A reference whose
//! owner exists neither in the restore nor in the target cluster (or was not restored after
//! all) is **dropped**, and counted in the Restore's `resourceCounts["ownerReferencesDropped"]`
//! and its message. The skip rules above still read the references as stored (a Pod whose
//! controller is a Job is skipped, not re-owned).
//!
//! Removed from every object: the annotation `backup.cnd.dk/requester` (the API server stamps who
//! created a Backup or Restore; a stamp from a bucket is untrusted).
//!
//! Also kept: `metadata.labels`, `annotations` (including
//! `kubectl.kubernetes.io/last-applied-configuration`: it is what `kubectl apply` diffs
//! against; removing it would make the next apply unable to prune fields), `finalizers`
//! (controllers of the target cluster act on them) and `generateName` (ignored when `name` is
//! set).
//!
//! # Per kind
//!
//! * **Service** (core):
//!   * `spec.clusterIP` and `spec.clusterIPs` are removed (allocated from the target cluster's
//!     range; the old address may be taken or out of range) — unless the Service is headless
//!     (`clusterIP: None`), which must stay headless.
//!   * `spec.ports[*].nodePort` and `spec.healthCheckNodePort` are removed unless the user set
//!     them explicitly, i.e. they appear in the `last-applied-configuration` annotation
//!     (`kubectl apply`) or are owned by a field manager in `managedFields` (server-side apply,
//!     `kubectl create` from a file that had them). Allocated ports would collide with
//!     ports already allocated in the target (e.g. the original next to a namespace-mapped
//!     copy); explicit ones are what external load balancers point at. `nodePort` is removed
//!     whatever its origin when `type` is neither `NodePort` nor `LoadBalancer` (the API server
//!     refuses it there).
//!   * `ipFamilies`, `ipFamilyPolicy`, `loadBalancerIP`, `externalIPs` stay (user intent; a
//!     single-stack cluster refuses a dual-stack policy with a clear error).
//! * **PersistentVolumeClaim**: `spec.volumeName` and the annotations
//!   `pv.kubernetes.io/bind-completed`, `pv.kubernetes.io/bound-by-controller`,
//!   `volume.kubernetes.io/selected-node`, `volume.kubernetes.io/storage-provisioner`,
//!   `volume.beta.kubernetes.io/storage-provisioner` are removed: a restored claim binds
//!   afresh. If its PersistentVolume is restored too, that PV is pre-bound to the claim by
//!   name (`claimRef` below) and the PV controller binds the two again; otherwise the claim is
//!   provisioned from its StorageClass (a new, empty volume: no volume data is restored). The
//!   removed annotations are set by the PV controller and scheduler for the source cluster's
//!   nodes and provisioners.
//! * **PersistentVolume**: `spec.claimRef.uid` and `spec.claimRef.resourceVersion` are removed
//!   (the claim gets a new UID), `claimRef.name`/`namespace` are kept (the namespace is mapped,
//!   see [`super::mapping`]), and the annotations `pv.kubernetes.io/bind-completed` and
//!   `pv.kubernetes.io/bound-by-controller` are removed so the volume looks statically
//!   provisioned and pre-bound, which the PV controller binds.
//! * **ServiceAccount**: entries of `secrets` named `<serviceaccount>-token-<5 characters>`
//!   (the legacy auto-generated token Secrets, which are never restored) are removed; other
//!   entries and `imagePullSecrets` stay.
//! * **Job** (`batch`), unless `spec.manualSelector` is true: the `controller-uid` and
//!   `batch.kubernetes.io/controller-uid` entries of `spec.selector.matchLabels` and of
//!   `spec.template.metadata.labels` are removed (and the selector when nothing else is left).
//!   They hold the old Job's UID; the API server refuses them and generates new ones.
//! * **Pod** (core): `spec.nodeName` (the node belongs to the source cluster; the scheduler
//!   places the pod), `spec.priority` (the priority admission plugin computes it from
//!   `priorityClassName` and refuses a value that differs) and `spec.ephemeralContainers`
//!   (cannot be set on create) are removed.
//! * **Namespace**: `spec.finalizers` is removed (the API server sets its own).

use serde_json::Value;

use super::object::{
    annotation, api_group, controller_owner, get, get_object_mut, get_str, kind, label, remove,
    remove_map_keys,
};
use crate::api::REQUESTER_ANNOTATION;
use crate::core::manifest::ManifestEntry;
use crate::core::types::{KnownType, known_kind};

/// What to do with a stored object after cleaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanOutcome {
    /// Create the (now cleaned) object.
    Keep,
    /// Do not restore it; the reason is user-facing (status `skippedResources[].reason`).
    Skip(&'static str),
}

/// The `kubectl apply` annotation; kept, and read to tell explicit node ports from allocated
/// ones.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Removed from every object's `metadata` (`ownerReferences` are kept; see the module docs).
pub const STRIPPED_METADATA: [&str; 8] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
];

/// Removed from PersistentVolumeClaims' annotations.
pub const STRIPPED_PVC_ANNOTATIONS: [&str; 5] = [
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/selected-node",
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
];

/// Removed from PersistentVolumes' annotations.
pub const STRIPPED_PV_ANNOTATIONS: [&str; 2] = [
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
];

/// Job labels that carry the Job's UID.
const JOB_UID_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];

const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

// Skip reasons (user-facing).
const NOT_AN_OBJECT: &str = "not a Kubernetes object (no apiVersion and kind)";
const BEING_DELETED: &str = "it was being deleted when the backup was taken";
const SA_TOKEN: &str =
    "service-account token Secret: the target cluster's token controller issues its own tokens";
const ROOT_CA: &str =
    "published in every namespace by the control plane with the target cluster's own CA";
const MANAGED_ENDPOINTS: &str =
    "maintained by the endpoints controller from its Service, which rebuilds it";
const MANAGED_SLICE: &str = "maintained by a controller (endpointslice.kubernetes.io/managed-by), \
                             which rebuilds it";
const FINISHED_POD: &str = "finished pod: re-creating it would run it again";
const MIRROR_POD: &str = "mirror pod of a static pod: its node's kubelet manages it";
const JOB_POD: &str =
    "pod of a Job: the restored Job starts its own pods, so restoring it would run the work twice";
const DAEMON_POD: &str =
    "pod of a DaemonSet: pinned to a node of the source cluster; the DaemonSet creates its own";
const FINISHED_JOB: &str = "finished Job: its status is not restored, so it would run again";

/// Cleans `obj` in place for creation, or says why it is not restored. See the module docs for
/// every rule. Never panics, whatever the input; an input that is not an object with string
/// `apiVersion` and `kind` is skipped untouched (run [`check_stored_object`] first to report
/// it as a failure instead).
pub fn clean_for_restore(obj: &mut Value) -> CleanOutcome {
    let (Some(group), Some(kind_name)) = (api_group(obj), kind(obj)) else {
        return CleanOutcome::Skip(NOT_AN_OBJECT);
    };
    let (group, kind_name) = (group.to_string(), kind_name.to_string());
    if let Some(reason) = skip_reason(obj, &group, &kind_name) {
        return CleanOutcome::Skip(reason);
    }

    // Kind rules run first: some read metadata (managedFields, annotations) that the common
    // rules remove.
    match (group.as_str(), kind_name.as_str()) {
        ("", "Service") => clean_service(obj),
        ("", "PersistentVolumeClaim") => clean_pvc(obj),
        ("", "PersistentVolume") => clean_pv(obj),
        ("", "ServiceAccount") => clean_service_account(obj),
        ("", "Pod") => clean_pod(obj),
        ("", "Namespace") => {
            remove(obj, &["spec", "finalizers"]);
            drop_if_empty(obj, &["spec"]);
        }
        ("batch", "Job") => clean_job(obj),
        _ => {}
    }
    // Who asked for a Backup or Restore is stamped by the API server's admission policy; Backups
    // and Restores are never restored, and a stamp read from a bucket on any other object is
    // untrusted and meaningless: it never comes back.
    remove_map_keys(obj, &["metadata", "annotations"], &[REQUESTER_ANNOTATION]);

    if let Some(meta) = get_object_mut(obj, &["metadata"]) {
        for field in STRIPPED_METADATA {
            meta.remove(field);
        }
    }
    remove(obj, &["status"]);
    CleanOutcome::Keep
}

fn skip_reason(obj: &Value, group: &str, kind_name: &str) -> Option<&'static str> {
    let kind_reason = match (group, kind_name) {
        ("", "Secret") if get_str(obj, &["type"]) == Some(SERVICE_ACCOUNT_TOKEN_TYPE) => {
            Some(SA_TOKEN)
        }
        ("", "ConfigMap") if get_str(obj, &["metadata", "name"]) == Some(ROOT_CA_CONFIGMAP) => {
            Some(ROOT_CA)
        }
        ("", "Endpoints")
            if label(obj, "endpoints.kubernetes.io/managed-by").is_some()
                || annotation(obj, "endpoints.kubernetes.io/last-change-trigger-time")
                    .is_some() =>
        {
            Some(MANAGED_ENDPOINTS)
        }
        ("discovery.k8s.io", "EndpointSlice")
            if label(obj, "endpointslice.kubernetes.io/managed-by").is_some() =>
        {
            Some(MANAGED_SLICE)
        }
        ("", "Pod") => pod_skip_reason(obj),
        ("batch", "Job") if job_finished(obj) => Some(FINISHED_JOB),
        // Types never restored at all are marked in the type catalogue.
        _ => known_kind(group, kind_name).and_then(KnownType::never_restored),
    };
    kind_reason.or_else(|| {
        get(obj, &["metadata", "deletionTimestamp"])
            .filter(|v| !v.is_null())
            .map(|_| BEING_DELETED)
    })
}

fn pod_skip_reason(obj: &Value) -> Option<&'static str> {
    if matches!(
        get_str(obj, &["status", "phase"]),
        Some("Succeeded" | "Failed")
    ) {
        return Some(FINISHED_POD);
    }
    if annotation(obj, "kubernetes.io/config.mirror").is_some() {
        return Some(MIRROR_POD);
    }
    match controller_owner(obj) {
        Some(("batch", "Job", _)) => Some(JOB_POD),
        Some(("apps", "DaemonSet", _)) => Some(DAEMON_POD),
        _ => None,
    }
}

fn job_finished(obj: &Value) -> bool {
    let completed = get_str(obj, &["status", "completionTime"]).is_some_and(|t| !t.is_empty());
    let finished_condition = get(obj, &["status", "conditions"])
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                matches!(get_str(c, &["type"]), Some("Complete" | "Failed"))
                    && get_str(c, &["status"]) == Some("True")
            })
        });
    completed || finished_condition
}

fn drop_if_empty(obj: &mut Value, path: &[&str]) {
    if get(obj, path)
        .and_then(Value::as_object)
        .is_some_and(|m| m.is_empty())
    {
        remove(obj, path);
    }
}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

/// Ports whose `nodePort` the user chose, and whether `healthCheckNodePort` was chosen.
#[derive(Debug, Default)]
struct ExplicitNodePorts {
    /// Named ports (from last-applied-configuration).
    names: Vec<String>,
    /// `(port, protocol)` of ports (both sources).
    ports: Vec<(i64, String)>,
    health_check: bool,
}

impl ExplicitNodePorts {
    fn of(service: &Value) -> ExplicitNodePorts {
        let mut out = ExplicitNodePorts::default();
        out.read_last_applied(service);
        out.read_managed_fields(service);
        out
    }

    /// `kubectl apply` records exactly what the user wrote.
    fn read_last_applied(&mut self, service: &Value) {
        let Some(text) = annotation(service, LAST_APPLIED_ANNOTATION) else {
            return;
        };
        // Unparseable: nothing is known to be explicit.
        let Ok(applied) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if port_number(get(&applied, &["spec", "healthCheckNodePort"])).is_some_and(|p| p > 0) {
            self.health_check = true;
        }
        let ports = get(&applied, &["spec", "ports"]).and_then(Value::as_array);
        for port in ports.into_iter().flatten() {
            if port_number(port.get("nodePort")).is_none_or(|p| p <= 0) {
                continue;
            }
            if let Some(name) = port.get("name").and_then(Value::as_str)
                && !name.is_empty()
            {
                self.names.push(name.to_string());
            }
            if let Some(key) = port_key(port) {
                self.ports.push(key);
            }
        }
    }

    /// Server-side apply and create record ownership of the fields in the request; ports the
    /// API server allocated are owned by nobody.
    fn read_managed_fields(&mut self, service: &Value) {
        let entries = get(service, &["metadata", "managedFields"]).and_then(Value::as_array);
        for entry in entries.into_iter().flatten() {
            let Some(spec) = get(entry, &["fieldsV1", "f:spec"]) else {
                continue;
            };
            if spec.get("f:healthCheckNodePort").is_some() {
                self.health_check = true;
            }
            let ports = spec.get("f:ports").and_then(Value::as_object);
            for (key, fields) in ports.into_iter().flatten() {
                if fields.get("f:nodePort").is_none() {
                    continue;
                }
                // List-map key of service ports: `k:{"port":80,"protocol":"TCP"}`.
                let parsed = key
                    .strip_prefix("k:")
                    .and_then(|k| serde_json::from_str::<Value>(k).ok());
                if let Some(port) = parsed.as_ref().and_then(port_key) {
                    self.ports.push(port);
                }
            }
        }
    }

    fn keeps(&self, port: &Value) -> bool {
        let named = port
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty() && self.names.iter().any(|m| m == n));
        named || port_key(port).is_some_and(|k| self.ports.contains(&k))
    }
}

/// A port number given as a JSON number or a numeric string.
fn port_number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `(port, protocol)` with Kubernetes' default protocol TCP.
fn port_key(port: &Value) -> Option<(i64, String)> {
    let number = port_number(port.get("port"))?;
    let protocol = port
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP");
    Some((number, protocol.to_string()))
}

fn clean_service(obj: &mut Value) {
    let explicit = ExplicitNodePorts::of(obj);
    let Some(spec) = get_object_mut(obj, &["spec"]) else {
        return;
    };
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None")
        || spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .and_then(|ips| ips.first())
            .and_then(Value::as_str)
            == Some("None");
    if !headless {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    let node_ports_allowed = matches!(
        spec.get("type").and_then(Value::as_str),
        Some("NodePort" | "LoadBalancer")
    );
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            let keep = node_ports_allowed && explicit.keeps(port);
            if let (false, Some(port)) = (keep, port.as_object_mut()) {
                port.remove("nodePort");
            }
        }
    }
    if !explicit.health_check {
        spec.remove("healthCheckNodePort");
    }
}

// ---------------------------------------------------------------------------------------------
// Volumes, service accounts, jobs, pods
// ---------------------------------------------------------------------------------------------

fn clean_pvc(obj: &mut Value) {
    remove(obj, &["spec", "volumeName"]);
    remove_map_keys(obj, &["metadata", "annotations"], &STRIPPED_PVC_ANNOTATIONS);
}

fn clean_pv(obj: &mut Value) {
    remove(obj, &["spec", "claimRef", "uid"]);
    remove(obj, &["spec", "claimRef", "resourceVersion"]);
    remove_map_keys(obj, &["metadata", "annotations"], &STRIPPED_PV_ANNOTATIONS);
}

/// `<sa>-token-<5 lower-case alphanumerics>`: the token controller's generated names.
fn is_generated_token_name(service_account: &str, secret: &str) -> bool {
    secret
        .strip_prefix(service_account)
        .and_then(|rest| rest.strip_prefix("-token-"))
        .is_some_and(|suffix| {
            suffix.len() == 5
                && suffix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn clean_service_account(obj: &mut Value) {
    let Some(name) = get_str(obj, &["metadata", "name"]).map(str::to_string) else {
        return;
    };
    let Some(secrets) = obj.get_mut("secrets").and_then(Value::as_array_mut) else {
        return;
    };
    secrets.retain(|s| {
        !s.get("name")
            .and_then(Value::as_str)
            .is_some_and(|secret| is_generated_token_name(&name, secret))
    });
    if secrets.is_empty() {
        remove(obj, &["secrets"]);
    }
}

fn clean_job(obj: &mut Value) {
    if get(obj, &["spec", "manualSelector"]).and_then(Value::as_bool) == Some(true) {
        return;
    }
    remove_map_keys(obj, &["spec", "selector", "matchLabels"], &JOB_UID_LABELS);
    drop_if_empty(obj, &["spec", "selector"]);
    remove_map_keys(
        obj,
        &["spec", "template", "metadata", "labels"],
        &JOB_UID_LABELS,
    );
}

fn clean_pod(obj: &mut Value) {
    remove(obj, &["spec", "nodeName"]);
    remove(obj, &["spec", "priority"]);
    remove(obj, &["spec", "ephemeralContainers"]);
}

// ---------------------------------------------------------------------------------------------
// Stored object vs. manifest
// ---------------------------------------------------------------------------------------------

/// A stored object that does not match its manifest entry: an item error, never a restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredObjectError {
    #[error("stored object {key} is not a JSON object")]
    NotAnObject { key: String },
    #[error("stored object {key} has no {field}")]
    Missing { key: String, field: &'static str },
    #[error("stored object {key} has {field} {stored:?}, but the manifest records {expected:?}")]
    Mismatch {
        key: String,
        field: &'static str,
        stored: String,
        expected: String,
    },
}

/// Checks that a parsed stored object is the one its manifest entry describes: a JSON object
/// whose `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` equal the entry's. The
/// checksum proves the bytes are the ones stored; this proves the bytes say what the manifest
/// (and so the selection and the namespace mapping) assumed. Run it before
/// [`clean_for_restore`].
pub fn check_stored_object(obj: &Value, entry: &ManifestEntry) -> Result<(), StoredObjectError> {
    let key = || entry.key.clone();
    if !obj.is_object() {
        return Err(StoredObjectError::NotAnObject { key: key() });
    }
    let field = |path: &[&str], name: &'static str, expected: Option<&str>| match (
        get_str(obj, path),
        expected,
    ) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(StoredObjectError::Missing {
            key: key(),
            field: name,
        }),
        (Some(stored), expected) if Some(stored) != expected => Err(StoredObjectError::Mismatch {
            key: key(),
            field: name,
            stored: stored.to_string(),
            expected: expected.unwrap_or_default().to_string(),
        }),
        _ => Ok(()),
    };
    field(&["apiVersion"], "apiVersion", Some(&entry.api_version))?;
    field(&["kind"], "kind", Some(&entry.kind))?;
    field(&["metadata", "name"], "metadata.name", Some(&entry.name))?;
    field(
        &["metadata", "namespace"],
        "metadata.namespace",
        entry.namespace.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::manifest::Sha256Digest;
    use crate::core::types::{
        BACKUPS_NOT_RESTORED, EVENTS_NOT_RESTORED, LEASES_NOT_RESTORED, NODE_STATE_NOT_RESTORED,
        RESTORES_NOT_RESTORED,
    };
    use serde_json::json;
    use std::sync::Arc;

    fn clean(mut obj: Value) -> (CleanOutcome, Value) {
        let outcome = clean_for_restore(&mut obj);
        (outcome, obj)
    }

    fn kept(obj: Value) -> Value {
        let (outcome, obj) = clean(obj);
        assert_eq!(outcome, CleanOutcome::Keep, "{obj}");
        obj
    }

    fn skipped(obj: Value) -> &'static str {
        match clean(obj) {
            (CleanOutcome::Skip(reason), _) => reason,
            (CleanOutcome::Keep, obj) => panic!("expected a skip: {obj}"),
        }
    }

    /// Metadata as a real API server returns it.
    fn server_metadata(name: &str, ns: &str) -> Value {
        json!({
            "name": name,
            "namespace": ns,
            "uid": "0f0e0d0c-0000-4000-8000-000000000001",
            "resourceVersion": "12345",
            "creationTimestamp": "2025-01-21T15:30:00Z",
            "generation": 3,
            "selfLink": format!("/api/v1/namespaces/{ns}/configmaps/{name}"),
            "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsV1": {}}],
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9c8b",
                "uid": "0f0e0d0c-0000-4000-8000-000000000002", "controller": true
            }],
            "labels": {"app": "web"},
            "annotations": {
                LAST_APPLIED_ANNOTATION: "{\"kind\":\"ConfigMap\"}",
                "team": "shop"
            },
            "finalizers": ["example.com/cleanup"],
            "generateName": "web-"
        })
    }

    #[test]
    fn server_populated_metadata_and_status_are_removed_user_data_kept() {
        let obj = kept(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": server_metadata("app-config", "shop"),
            "data": {"k": "v"},
            "status": {"anything": true}
        }));
        let meta = obj["metadata"].as_object().unwrap();
        for field in STRIPPED_METADATA {
            assert!(!meta.contains_key(field), "{field} kept");
        }
        assert_eq!(obj["metadata"]["name"], "app-config");
        assert_eq!(obj["metadata"]["namespace"], "shop");
        assert_eq!(obj["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            "{\"kind\":\"ConfigMap\"}"
        );
        assert_eq!(obj["metadata"]["annotations"]["team"], "shop");
        assert_eq!(
            obj["metadata"]["finalizers"],
            json!(["example.com/cleanup"])
        );
        assert_eq!(obj["metadata"]["generateName"], "web-");
        assert_eq!(
            obj["metadata"]["ownerReferences"],
            server_metadata("app-config", "shop")["ownerReferences"]
        );
        assert_eq!(obj["data"], json!({"k": "v"}));
        assert!(obj.get("status").is_none());
    }

    #[test]
    fn custom_resources_get_the_common_rules() {
        let obj = kept(json!({
            "apiVersion": "acme.io/v1",
            "kind": "Widget",
            "metadata": server_metadata("w", "shop"),
            "spec": {"size": 3},
            "status": {"ready": true}
        }));
        assert!(obj["metadata"].get("uid").is_none());
        assert!(obj.get("status").is_none());
        assert_eq!(obj["spec"], json!({"size": 3}));
    }

    #[test]
    fn non_objects_are_skipped_not_panicked_on() {
        for v in [
            json!(null),
            json!([1, 2]),
            json!("x"),
            json!({}),
            json!({"kind": "ConfigMap"}),
            json!({"apiVersion": "v1", "kind": 7}),
        ] {
            assert_eq!(clean(v).0, CleanOutcome::Skip(NOT_AN_OBJECT));
        }
        // Odd shapes inside a valid object are tolerated.
        let obj = kept(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": "not a map",
            "spec": {"ports": "not a list", "clusterIP": 7},
            "status": 1
        }));
        assert_eq!(obj["metadata"], "not a map");
        assert!(obj.get("status").is_none());
    }

    #[test]
    fn objects_being_deleted_are_skipped() {
        let reason = skipped(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "deletionTimestamp": "2025-01-21T15:30:00Z"}
        }));
        assert_eq!(reason, BEING_DELETED);
        kept(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "deletionTimestamp": null}
        }));
    }

    // --- skips by kind ---

    #[test]
    fn service_account_token_secrets_are_skipped() {
        assert_eq!(
            skipped(json!({
                "apiVersion": "v1", "kind": "Secret",
                "type": "kubernetes.io/service-account-token",
                "metadata": {"name": "builder-token-abcde"}
            })),
            SA_TOKEN
        );
        let opaque = kept(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "api-token-x"}, "data": {"t": "eA=="}
        }));
        assert_eq!(opaque["data"]["t"], "eA==");
        // Same type string on another group's kind is no token Secret.
        kept(json!({
            "apiVersion": "acme.io/v1", "kind": "Secret",
            "type": "kubernetes.io/service-account-token", "metadata": {"name": "s"}
        }));
    }

    #[test]
    fn root_ca_configmap_is_skipped() {
        assert_eq!(
            skipped(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-root-ca.crt", "namespace": "shop"}
            })),
            ROOT_CA
        );
    }

    #[test]
    fn controller_managed_endpoints_are_skipped_user_endpoints_kept() {
        let labelled = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web", "labels": {
                "endpoints.kubernetes.io/managed-by": "endpoint-controller"}}
        });
        assert_eq!(skipped(labelled), MANAGED_ENDPOINTS);
        let annotated = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web", "annotations": {
                "endpoints.kubernetes.io/last-change-trigger-time": "2025-01-21T15:30:00Z"}}
        });
        assert_eq!(skipped(annotated), MANAGED_ENDPOINTS);
        let manual = kept(json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "external-db"},
            "subsets": [{"addresses": [{"ip": "10.0.0.5"}], "ports": [{"port": 5432}]}]
        }));
        assert_eq!(manual["subsets"][0]["addresses"][0]["ip"], "10.0.0.5");

        for manager in [
            "endpointslice-controller.k8s.io",
            "endpointslicemirroring-controller.k8s.io",
            "other.example.com",
        ] {
            assert_eq!(
                skipped(json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": "web-abcde", "labels": {
                        "endpointslice.kubernetes.io/managed-by": manager}}
                })),
                MANAGED_SLICE
            );
        }
        kept(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "manual"}, "addressType": "IPv4", "endpoints": []
        }));
    }

    #[test]
    fn events_leases_and_node_state_are_skipped() {
        for (api_version, kind, reason) in [
            ("v1", "Event", EVENTS_NOT_RESTORED),
            ("events.k8s.io/v1", "Event", EVENTS_NOT_RESTORED),
            ("coordination.k8s.io/v1", "Lease", LEASES_NOT_RESTORED),
            ("v1", "Node", NODE_STATE_NOT_RESTORED),
            ("storage.k8s.io/v1", "CSINode", NODE_STATE_NOT_RESTORED),
            (
                "storage.k8s.io/v1",
                "VolumeAttachment",
                NODE_STATE_NOT_RESTORED,
            ),
        ] {
            assert_eq!(
                skipped(
                    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
                ),
                reason,
                "{api_version} {kind}"
            );
        }
        // A custom kind that happens to be called Event is restored.
        kept(json!({"apiVersion": "acme.io/v1", "kind": "Event", "metadata": {"name": "x"}}));
    }

    #[test]
    fn the_operators_own_objects_are_skipped() {
        assert_eq!(
            skipped(json!({"apiVersion": "backup.cnd.dk/v1", "kind": "Backup",
                "metadata": {"name": "nightly", "namespace": "default"}})),
            BACKUPS_NOT_RESTORED
        );
        assert_eq!(
            skipped(json!({"apiVersion": "backup.cnd.dk/v1", "kind": "Restore",
                "metadata": {"name": "r", "namespace": "default"}})),
            RESTORES_NOT_RESTORED
        );
    }

    // --- Service ---

    fn service(spec: Value, metadata_extra: Value) -> Value {
        let mut metadata = json!({"name": "web", "namespace": "shop"});
        if let (Some(m), Some(extra)) = (metadata.as_object_mut(), metadata_extra.as_object()) {
            m.extend(extra.clone());
        }
        json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec,
               "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}})
    }

    #[test]
    fn service_cluster_ips_are_removed_but_headless_stays_headless() {
        let obj = kept(service(
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"],
                   "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                   "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                   "selector": {"app": "web"}}),
            json!({}),
        ));
        let spec = obj["spec"].as_object().unwrap();
        assert!(!spec.contains_key("clusterIP"));
        assert!(!spec.contains_key("clusterIPs"));
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ports"][0]["targetPort"], 8080);
        assert!(obj.get("status").is_none());

        let headless = kept(service(
            json!({"clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "db"}}),
            json!({}),
        ));
        assert_eq!(headless["spec"]["clusterIP"], "None");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let headless_ips_only = kept(service(json!({"clusterIPs": ["None"]}), json!({})));
        assert_eq!(headless_ips_only["spec"]["clusterIPs"], json!(["None"]));
    }

    #[test]
    fn allocated_node_ports_are_removed() {
        let obj = kept(service(
            json!({"type": "NodePort", "clusterIP": "10.96.0.12", "externalTrafficPolicy": "Cluster",
                   "ports": [{"name": "http", "port": 80, "nodePort": 31234, "protocol": "TCP"},
                             {"port": 443, "nodePort": 31235}]}),
            json!({"managedFields": [{"manager": "kubectl-expose", "operation": "Update",
                "fieldsV1": {"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {
                    "f:port": {}, "f:protocol": {}}}}}}]}),
        ));
        for port in obj["spec"]["ports"].as_array().unwrap() {
            assert!(port.get("nodePort").is_none(), "{port}");
        }
        assert_eq!(obj["spec"]["ports"][0]["name"], "http");
    }

    #[test]
    fn node_ports_from_kubectl_apply_are_kept() {
        let applied = json!({"apiVersion": "v1", "kind": "Service", "spec": {
            "type": "NodePort",
            "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                      {"port": 9090, "nodePort": "30090"},
                      {"name": "metrics", "port": 8081}]}});
        let obj = kept(service(
            json!({"type": "NodePort", "ports": [
                {"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"},
                {"port": 9090, "nodePort": 30090, "protocol": "TCP"},
                {"name": "metrics", "port": 8081, "nodePort": 31999, "protocol": "TCP"}]}),
            json!({"annotations": {LAST_APPLIED_ANNOTATION: applied.to_string()}}),
        ));
        let ports = &obj["spec"]["ports"];
        assert_eq!(ports[0]["nodePort"], 30080);
        assert_eq!(ports[1]["nodePort"], 30090);
        assert!(
            ports[2].get("nodePort").is_none(),
            "allocated: {}",
            ports[2]
        );
        // The annotation itself is kept.
        assert!(obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION].is_string());
    }

    #[test]
    fn node_ports_owned_in_managed_fields_are_kept() {
        let obj = kept(service(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                   "healthCheckNodePort": 32000,
                   "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                             {"port": 53, "nodePort": 30053, "protocol": "UDP"},
                             {"port": 53, "nodePort": 30054, "protocol": "TCP"}]}),
            json!({"managedFields": [
                {"manager": "argocd", "operation": "Apply", "fieldsV1": {"f:spec": {
                    "f:healthCheckNodePort": {},
                    "f:ports": {
                        "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:nodePort": {}},
                        "k:{\"port\":53,\"protocol\":\"UDP\"}": {"f:nodePort": {}},
                        "k:{\"port\":53,\"protocol\":\"TCP\"}": {"f:port": {}},
                        "not a key": {"f:nodePort": {}}
                    }}}},
                {"manager": "broken", "operation": "Update", "fieldsV1": "nope"}
            ]}),
        ));
        let ports = &obj["spec"]["ports"];
        assert_eq!(ports[0]["nodePort"], 30080);
        assert_eq!(ports[1]["nodePort"], 30053);
        assert!(ports[2].get("nodePort").is_none());
        assert_eq!(obj["spec"]["healthCheckNodePort"], 32000);
        assert!(obj["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn allocated_health_check_node_port_is_removed() {
        let obj = kept(service(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                   "healthCheckNodePort": 32000, "ports": [{"port": 80, "nodePort": 30080}]}),
            json!({}),
        ));
        assert!(obj["spec"].get("healthCheckNodePort").is_none());
        assert!(obj["spec"]["ports"][0].get("nodePort").is_none());
    }

    #[test]
    fn node_ports_are_removed_where_the_type_forbids_them() {
        let applied = json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}});
        let obj = kept(service(
            json!({"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30080}]}),
            json!({"annotations": {LAST_APPLIED_ANNOTATION: applied.to_string()}}),
        ));
        assert!(obj["spec"]["ports"][0].get("nodePort").is_none());
        let external = kept(service(
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
        ));
        assert_eq!(external["spec"]["externalName"], "db.example.com");
    }

    #[test]
    fn broken_last_applied_annotation_keeps_nothing_explicit() {
        let obj = kept(service(
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
            json!({"annotations": {LAST_APPLIED_ANNOTATION: "{not json"}}),
        ));
        assert!(obj["spec"]["ports"][0].get("nodePort").is_none());
        assert_eq!(
            obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            "{not json"
        );
    }

    // --- volumes ---

    #[test]
    fn claims_bind_afresh() {
        let obj = kept(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop", "annotations": {
                "pv.kubernetes.io/bind-completed": "yes",
                "pv.kubernetes.io/bound-by-controller": "yes",
                "volume.kubernetes.io/selected-node": "node-a",
                "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
                "volume.beta.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
                "team": "shop"
            }},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
                     "volumeName": "pvc-0f0e", "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound"}
        }));
        assert_eq!(obj["metadata"]["annotations"], json!({"team": "shop"}));
        assert!(obj["spec"].get("volumeName").is_none());
        assert_eq!(obj["spec"]["storageClassName"], "gp3");
        assert!(obj.get("status").is_none());

        let only_server_annotations = kept(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "d", "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
            "spec": {}
        }));
        assert!(
            only_server_annotations["metadata"]
                .get("annotations")
                .is_none()
        );
    }

    #[test]
    fn volumes_keep_their_claim_by_name() {
        let obj = kept(json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv-nfs", "annotations": {
                "pv.kubernetes.io/bound-by-controller": "yes",
                "pv.kubernetes.io/provisioned-by": "nfs.csi.k8s.io"}},
            "spec": {"capacity": {"storage": "1Gi"}, "persistentVolumeReclaimPolicy": "Retain",
                     "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                  "name": "data", "namespace": "shop",
                                  "uid": "0f0e", "resourceVersion": "99"}},
            "status": {"phase": "Bound"}
        }));
        assert_eq!(
            obj["spec"]["claimRef"],
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "name": "data", "namespace": "shop"})
        );
        assert_eq!(
            obj["metadata"]["annotations"],
            json!({"pv.kubernetes.io/provisioned-by": "nfs.csi.k8s.io"})
        );
    }

    // --- service accounts ---

    #[test]
    fn generated_token_secrets_leave_service_accounts() {
        let obj = kept(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "builder", "namespace": "ci"},
            "secrets": [{"name": "builder-token-x7k2p"}, {"name": "builder-creds"},
                        {"name": "builder-token-manual-one"}, {"name": "other-token-abcde"}],
            "imagePullSecrets": [{"name": "registry"}]
        }));
        assert_eq!(
            obj["secrets"],
            json!([{"name": "builder-creds"}, {"name": "builder-token-manual-one"},
                   {"name": "other-token-abcde"}])
        );
        assert_eq!(obj["imagePullSecrets"], json!([{"name": "registry"}]));

        let only_tokens = kept(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default"}, "secrets": [{"name": "default-token-abc12"}]
        }));
        assert!(only_tokens.get("secrets").is_none());
        assert!(is_generated_token_name("a", "a-token-0a1b2"));
        assert!(!is_generated_token_name("a", "a-token-ABCDE"));
        assert!(!is_generated_token_name("a", "a-token-abcd"));
        assert!(!is_generated_token_name("a", "ab-token-abcde"));
    }

    // --- jobs ---

    fn job(manual: Option<bool>, status: Value) -> Value {
        let mut spec = json!({
            "selector": {"matchLabels": {
                "batch.kubernetes.io/controller-uid": "0f0e", "controller-uid": "0f0e"}},
            "template": {"metadata": {"labels": {
                "batch.kubernetes.io/controller-uid": "0f0e", "controller-uid": "0f0e",
                "batch.kubernetes.io/job-name": "migrate", "job-name": "migrate", "app": "db"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "m"}]}}
        });
        if let Some(m) = manual {
            spec["manualSelector"] = json!(m);
        }
        json!({"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "migrate", "namespace": "shop"},
               "spec": spec, "status": status})
    }

    #[test]
    fn running_jobs_lose_their_generated_selector() {
        let obj = kept(job(None, json!({"active": 1})));
        assert!(obj["spec"].get("selector").is_none());
        assert_eq!(
            obj["spec"]["template"]["metadata"]["labels"],
            json!({"batch.kubernetes.io/job-name": "migrate", "job-name": "migrate", "app": "db"})
        );
        let obj = kept(job(Some(false), json!({})));
        assert!(obj["spec"].get("selector").is_none());

        // Other selector terms survive.
        let mut with_extra = job(None, json!({}));
        with_extra["spec"]["selector"]["matchLabels"]["app"] = json!("db");
        let obj = kept(with_extra);
        assert_eq!(
            obj["spec"]["selector"],
            json!({"matchLabels": {"app": "db"}})
        );
    }

    #[test]
    fn manual_selectors_belong_to_the_user() {
        let obj = kept(job(Some(true), json!({})));
        assert_eq!(
            obj["spec"]["selector"]["matchLabels"]["controller-uid"],
            "0f0e"
        );
        assert_eq!(
            obj["spec"]["template"]["metadata"]["labels"]["controller-uid"],
            "0f0e"
        );
    }

    #[test]
    fn finished_jobs_are_skipped() {
        assert_eq!(
            skipped(job(
                None,
                json!({"completionTime": "2025-01-21T15:30:00Z", "succeeded": 1})
            )),
            FINISHED_JOB
        );
        assert_eq!(
            skipped(job(
                None,
                json!({"conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
            )),
            FINISHED_JOB
        );
        kept(job(
            None,
            json!({"conditions": [{"type": "Suspended", "status": "True"},
                                  {"type": "Complete", "status": "False"}]}),
        ));
    }

    // --- pods ---

    fn pod(owner: Option<(&str, &str)>, phase: &str) -> Value {
        let mut meta = json!({"name": "web-1", "namespace": "shop"});
        if let Some((api_version, kind)) = owner {
            meta["ownerReferences"] = json!([{"apiVersion": api_version, "kind": kind,
                "name": "owner", "uid": "0f0e", "controller": true}]);
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
               "spec": {"nodeName": "node-a", "priority": 1000,
                        "priorityClassName": "high", "preemptionPolicy": "Never",
                        "containers": [{"name": "c", "image": "nginx"}],
                        "ephemeralContainers": [{"name": "debugger", "image": "busybox"}]},
               "status": {"phase": phase, "podIP": "10.0.0.1"}})
    }

    #[test]
    fn pods_are_rescheduled_and_reprioritised() {
        let obj = kept(pod(Some(("apps/v1", "ReplicaSet")), "Running"));
        let spec = obj["spec"].as_object().unwrap();
        assert!(!spec.contains_key("nodeName"));
        assert!(!spec.contains_key("priority"));
        assert!(!spec.contains_key("ephemeralContainers"));
        assert_eq!(spec["priorityClassName"], "high");
        assert_eq!(spec["preemptionPolicy"], "Never");
        // Pointed at the new owner by the engine, not removed here.
        assert_eq!(obj["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert!(obj.get("status").is_none());
        kept(pod(None, "Pending"));
        kept(pod(Some(("apps/v1", "StatefulSet")), "Running"));
    }

    #[test]
    fn pods_that_would_run_twice_or_belong_to_nodes_are_skipped() {
        assert_eq!(skipped(pod(None, "Succeeded")), FINISHED_POD);
        assert_eq!(
            skipped(pod(Some(("apps/v1", "ReplicaSet")), "Failed")),
            FINISHED_POD
        );
        assert_eq!(skipped(pod(Some(("batch/v1", "Job")), "Running")), JOB_POD);
        assert_eq!(
            skipped(pod(Some(("apps/v1", "DaemonSet")), "Running")),
            DAEMON_POD
        );
        let mut mirror = pod(None, "Running");
        mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
        assert_eq!(skipped(mirror), MIRROR_POD);
        // A non-controller owner reference to a Job does not count.
        let mut owned = pod(None, "Running");
        owned["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u"}]);
        kept(owned);
    }

    #[test]
    fn namespaces_lose_their_finalizers() {
        let obj = kept(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop",
                "pod-security.kubernetes.io/enforce": "restricted"}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}
        }));
        assert!(obj.get("spec").is_none());
        assert!(obj.get("status").is_none());
        assert_eq!(
            obj["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
    }

    #[test]
    fn cleaning_is_idempotent() {
        let original = service(
            json!({"type": "NodePort", "clusterIP": "10.0.0.1",
                   "ports": [{"port": 80, "nodePort": 30080}]}),
            server_metadata("web", "shop"),
        );
        let once = kept(original);
        let twice = kept(once.clone());
        assert_eq!(once, twice);
    }

    // --- stored object vs manifest ---

    fn entry(ns: Option<&str>) -> ManifestEntry {
        ManifestEntry {
            key: "namespaces/shop/configmaps/c.json".into(),
            api_version: Arc::from("v1"),
            kind: Arc::from("ConfigMap"),
            resource: Arc::from("configmaps"),
            namespace: ns.map(Arc::from),
            name: "c".into(),
            size: 0,
            sha256: Sha256Digest::default(),
            location: None,
        }
    }

    #[test]
    fn stored_objects_must_match_their_entry() {
        let ok = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "c", "namespace": "shop"}});
        assert_eq!(check_stored_object(&ok, &entry(Some("shop"))), Ok(()));

        let err = check_stored_object(&json!([1]), &entry(Some("shop"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stored object namespaces/shop/configmaps/c.json is not a JSON object"
        );
        let no_kind = json!({"apiVersion": "v1", "metadata": {"name": "c", "namespace": "shop"}});
        assert_eq!(
            check_stored_object(&no_kind, &entry(Some("shop")))
                .unwrap_err()
                .to_string(),
            "stored object namespaces/shop/configmaps/c.json has no kind"
        );
        let moved = json!({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "c", "namespace": "kube-system"}});
        assert_eq!(
            check_stored_object(&moved, &entry(Some("shop")))
                .unwrap_err()
                .to_string(),
            "stored object namespaces/shop/configmaps/c.json has metadata.namespace \
             \"kube-system\", but the manifest records \"shop\""
        );
        // A namespace where the manifest says cluster-scoped is a mismatch too.
        assert!(matches!(
            check_stored_object(&moved, &entry(None)),
            Err(StoredObjectError::Mismatch {
                field: "metadata.namespace",
                ..
            })
        ));
        let renamed = json!({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "other", "namespace": "shop"}});
        assert!(matches!(
            check_stored_object(&renamed, &entry(Some("shop"))),
            Err(StoredObjectError::Mismatch {
                field: "metadata.name",
                ..
            })
        ));
        let other_kind = json!({"apiVersion": "apps/v1", "kind": "ConfigMap",
                                "metadata": {"name": "c", "namespace": "shop"}});
        assert!(matches!(
            check_stored_object(&other_kind, &entry(Some("shop"))),
            Err(StoredObjectError::Mismatch {
                field: "apiVersion",
                ..
            })
        ));
    }

    #[test]
    fn a_stored_requester_stamp_never_comes_back() {
        let mut obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "team-a", "annotations": {
                REQUESTER_ANNOTATION: "{\"username\":\"system:admin\"}",
                "team": "a",
            }},
            "data": {},
        });
        assert_eq!(clean_for_restore(&mut obj), CleanOutcome::Keep);
        assert_eq!(obj["metadata"]["annotations"], json!({"team": "a"}));
    }
}
