//! The Backup controller end to end, against the REAL kube-apiserver and S3 server of
//! `scripts/testenv.sh`: every example of the design document (from `config/samples/`), custom
//! resources, manual triggers, and every kind of bad input.
//!
//! Each test has its own namespace for the Backup (watched by an in-process operator limited to
//! it), its own source namespaces and its own bucket. `"*"` backups also see other tests'
//! namespaces, so they assert exact keys for this test's namespaces only, plus global
//! invariants (every stored object is in the manifest with the right checksum, counts match).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cluster_backup::api::{Backup, BackupPhase, BackupStatus, RUN_NOW_ANNOTATION, RunResult};
use cluster_backup::controller::crds::install_crds;
use cluster_backup::core::layout;
use cluster_backup::core::manifest::Manifest;
use cluster_backup::storage::Storage;
use common::{
    OperatorHandle, TestEnv, TestNamespace, assert_loopback, create_json, repo_root,
    short_unique_name, start_operator, unique_name, wait_for_backup,
};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use serde_json::{Value, json};

/// Longest wait for one run (discovery + listing + uploads take a few seconds here).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const COMPREHENSIVE: &str = "backup_v1_comprehensive_examples_v2.yaml";

// ---------------------------------------------------------------------------------------------
// Scene: namespace + operator + bucket of one test
// ---------------------------------------------------------------------------------------------

struct Scene {
    env: TestEnv,
    client: Client,
    /// Where the Backups live; the in-process operator watches only this namespace.
    ns: TestNamespace,
    backups: Api<Backup>,
    bucket: String,
    _operator: OperatorHandle,
}

impl Scene {
    /// `prefix` names the test in the log; the bucket and namespace get short unique names
    /// (see `short_unique_name`: the test ground's S3 server limits bucket + key length).
    async fn new(prefix: &str) -> Scene {
        Scene::with_bucket(prefix, short_unique_name("b")).await
    }

    async fn with_bucket(prefix: &str, bucket: String) -> Scene {
        let env = TestEnv::load();
        let client = env.client().await;
        install_crds(&client, Duration::from_secs(60))
            .await
            .expect("CRDs install and become Established");
        let ns = TestNamespace::named(&client, &short_unique_name("t")).await;
        eprintln!(
            "{prefix}: Backups in namespace {}, bucket {bucket}",
            ns.name
        );
        let operator = start_operator(&client, &ns.name);
        Scene {
            backups: Api::namespaced(client.clone(), &ns.name),
            env,
            client,
            ns,
            bucket,
            _operator: operator,
        }
    }

    fn namespace(&self) -> &str {
        &self.ns.name
    }

    /// A namespace to back up (short unique name starting with `prefix`).
    async fn source(&self, prefix: &str) -> TestNamespace {
        TestNamespace::named(&self.client, &short_unique_name(prefix)).await
    }

    /// The test's bucket, read with the real keys (independent of what the Backup says).
    fn storage(&self) -> Storage {
        self.env.storage(&self.bucket)
    }

    /// `spec.storageLocation` for this test's bucket with inline keys.
    fn location(&self) -> Value {
        serde_json::to_value(self.env.storage_location(&self.bucket)).unwrap()
    }

    /// A one-shot Backup of the ConfigMaps in `source`.
    fn one_shot(&self, name: &str, source: &str) -> Value {
        json!({
            "apiVersion": "backup.cnd.dk/v1",
            "kind": "Backup",
            "metadata": { "name": name, "namespace": self.namespace() },
            "spec": {
                "source": { "namespaces": [source], "resourceTypes": ["configmaps"] },
                "storageLocation": self.location(),
            }
        })
    }

    /// An example Backup from `config/samples/<file>`, made local: endpoint → local S3 server,
    /// metadata.namespace → this test's namespace, bucket → this test's bucket, inline keys →
    /// the real ones, and every namespace NAME the example backs up renamed as `renames` says
    /// (each rename must hit, so a changed sample cannot silently pass).
    fn sample(&self, file: &str, name: &str, renames: &[(&str, &str)]) -> Value {
        let path = repo_root().join("config/samples").join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let text = self.env.localize_yaml(&text);
        let mut doc = yaml_serde::Deserializer::from_str(&text)
            .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("valid YAML"))
            .find(|d| d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{file} has no document named {name}"));
        doc["metadata"]["namespace"] = json!(self.namespace());

        let location = &mut doc["spec"]["storageLocation"];
        assert_loopback(
            location["endpoint"]
                .as_str()
                .expect("sample has an endpoint"),
        );
        location["bucket"] = json!(self.bucket);
        if location.get("accessKey").is_some() {
            location["accessKey"] = json!(self.env.s3_access_key);
            location["secretKey"] = json!(self.env.s3_secret_key);
        }

        let source = &mut doc["spec"]["source"];
        for (from, to) in renames {
            let mut renamed = false;
            if source["namespace"] == *from {
                source["namespace"] = json!(to);
                renamed = true;
            }
            for field in ["namespaces", "excludeNamespaces"] {
                for item in source[field].as_array_mut().into_iter().flatten() {
                    if item.as_str() == Some(*from) {
                        *item = json!(to);
                        renamed = true;
                    }
                }
            }
            assert!(renamed, "{file}/{name} does not name namespace {from}");
        }
        doc
    }

    async fn create_backup(&self, doc: &Value) {
        assert_eq!(doc["metadata"]["namespace"], self.namespace());
        create_json(&self.client, doc.clone()).await;
    }

    /// Sets `backup.cnd.dk/run-now` (plus any extra annotations).
    async fn annotate(&self, name: &str, annotations: &[(&str, &str)]) {
        let map: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        self.backups
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "annotations": map } })),
            )
            .await
            .unwrap_or_else(|e| panic!("annotate backup {name}: {e}"));
    }

    async fn run_now(&self, name: &str, value: &str) {
        self.annotate(name, &[(RUN_NOW_ANNOTATION, value)]).await;
    }

    async fn wait(&self, name: &str, done: impl Fn(&BackupStatus) -> bool) -> Backup {
        wait_for_backup(&self.backups, name, RUN_TIMEOUT, done).await
    }

    /// Waits for a one-shot Backup to finish and returns it.
    async fn wait_finished(&self, name: &str) -> Backup {
        self.wait(name, |s| {
            s.last_run.is_some()
                && s.current_run.is_none()
                && matches!(
                    s.phase,
                    Some(
                        BackupPhase::Completed | BackupPhase::PartiallyFailed | BackupPhase::Failed
                    )
                )
        })
        .await
    }

    /// Creates a scheduled example, checks it waits as `Scheduled` with a `nextBackupTime`,
    /// triggers one run with the run-now annotation and waits until it is back to `Scheduled`.
    async fn run_scheduled(&self, doc: &Value) -> Backup {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        assert!(
            doc["spec"]["schedule"].is_string(),
            "{name} is not scheduled"
        );
        self.create_backup(doc).await;
        self.wait(&name, |s| {
            s.phase == Some(BackupPhase::Scheduled) && s.next_backup_time.is_some()
        })
        .await;
        let trigger = unique_name("now");
        self.run_now(&name, &trigger).await;
        let backup = self
            .wait(&name, |s| {
                s.last_manual_trigger.as_deref() == Some(trigger.as_str())
                    && s.last_run.is_some()
                    && s.current_run.is_none()
                    && s.phase == Some(BackupPhase::Scheduled)
            })
            .await;
        let status = backup.status.as_ref().unwrap();
        assert!(status.backup_count >= 1, "{status:#?}");
        let next = status.next_backup_time.as_ref().expect("nextBackupTime");
        assert!(
            cluster_backup::api::from_time(next) > chrono::Utc::now(),
            "nextBackupTime is in the past: {status:#?}"
        );
        backup
    }

    /// A one-shot Backup of ConfigMaps still completes: the operator survived the bad case.
    async fn good_backup_still_completes(&self, name: &str) {
        let source = self.source("g").await;
        create_json(
            &self.client,
            configmap(&source.name, "still-works", json!({})),
        )
        .await;
        self.create_backup(&self.one_shot(name, &source.name)).await;
        let backup = self.wait_finished(name).await;
        assert_eq!(
            phase(&backup),
            BackupPhase::Completed,
            "{:#?}",
            backup.status
        );
        let run = verify_run(self, &backup).await;
        assert_eq!(
            run.keys(),
            keys([ns_key(&source.name, "configmaps", "still-works")])
        );
    }
}

fn phase(backup: &Backup) -> BackupPhase {
    backup
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .expect("status.phase")
}

fn message(backup: &Backup) -> String {
    backup
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// What a run stored
// ---------------------------------------------------------------------------------------------

/// `namespaces/<ns>/<type>/<name>.json`, relative to the run path.
fn ns_key(ns: &str, type_dir: &str, name: &str) -> String {
    format!("namespaces/{ns}/{type_dir}/{name}.json")
}

/// `cluster/<type>/<name>.json`, relative to the run path.
fn cluster_key(type_dir: &str, name: &str) -> String {
    format!("cluster/{type_dir}/{name}.json")
}

fn keys<S: Into<String>>(items: impl IntoIterator<Item = S>) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
}

/// One verified run: its manifest and every stored object, keyed relative to the run path.
struct StoredRun {
    path: String,
    manifest: Manifest,
    objects: BTreeMap<String, Value>,
}

impl StoredRun {
    /// Every object key of the run (without `manifest.json`).
    fn keys(&self) -> BTreeSet<String> {
        self.objects.keys().cloned().collect()
    }

    /// Object keys under `namespaces/<ns>/`.
    fn keys_in(&self, ns: &str) -> BTreeSet<String> {
        let prefix = format!("namespaces/{ns}/");
        self.objects
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect()
    }

    /// Object keys under `cluster/`.
    fn cluster_keys(&self) -> BTreeSet<String> {
        self.objects
            .keys()
            .filter(|k| k.starts_with("cluster/"))
            .cloned()
            .collect()
    }

    /// The second path segment of every key: the namespaces (`namespaces/<ns>/…`) or the
    /// cluster types (`cluster/<type>/…`).
    fn second_segments(&self, top: &str) -> BTreeSet<String> {
        self.objects
            .keys()
            .filter_map(|k| k.strip_prefix(top)?.strip_prefix('/')?.split('/').next())
            .map(str::to_string)
            .collect()
    }

    fn object(&self, key: &str) -> &Value {
        self.objects
            .get(key)
            .unwrap_or_else(|| panic!("{key} not stored in {}", self.path))
    }
}

/// Checks the newest restorable run of `backup` in storage and returns what it holds:
/// - `backupPath` is `backups/<ns>/<name>/<YYYY-MM-DDTHH-MM-SSZ>` and is `lastRun`'s path;
/// - `manifest.json` exists and lists exactly the stored objects, once each;
/// - every stored object matches its manifest entry (size, sha256), is JSON with `apiVersion`,
///   `kind` and the metadata.name/namespace its key and entry say;
/// - `status.resourceCounts`, the manifest counts and `lastRun.objects` equal what is stored;
/// - the manifest does not contain the storage secret key.
async fn verify_run(scene: &Scene, backup: &Backup) -> StoredRun {
    let name = backup.metadata.name.as_deref().unwrap();
    let status = backup.status.as_ref().expect("status");
    let path = status.backup_path.clone().expect("status.backupPath");
    let last = status.last_run.as_ref().expect("status.lastRun");
    assert_eq!(last.backup_path, path, "lastRun is not the newest backup");
    assert_ne!(last.result, Some(RunResult::Failed), "{status:#?}");

    let parent = format!("backups/{}/{name}/", scene.namespace());
    let stamp = path
        .strip_prefix(&parent)
        .unwrap_or_else(|| panic!("backupPath {path} is not under {parent}"));
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H-%M-%SZ")
        .unwrap_or_else(|e| panic!("run folder {stamp} is no timestamp: {e}"));

    let storage = scene.storage();
    let listed: BTreeMap<String, u64> = storage
        .list(&path)
        .map_ok(|o| (o.key, o.size))
        .try_collect::<Vec<_>>()
        .await
        .unwrap_or_else(|e| panic!("list {path}: {e}"))
        .into_iter()
        .map(|(key, size)| {
            let rel = key
                .strip_prefix(&format!("{path}/"))
                .unwrap_or_else(|| panic!("listed key {key} outside {path}"))
                .to_string();
            (rel, size)
        })
        .collect();
    assert!(
        listed.contains_key(layout::MANIFEST_FILE),
        "no manifest.json under {path}: {listed:?}"
    );
    let manifest_bytes = storage
        .get(&format!("{path}/{}", layout::MANIFEST_FILE))
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&manifest_bytes).contains(&scene.env.s3_secret_key),
        "the manifest contains the storage secret key"
    );
    let manifest = Manifest::from_bytes(&manifest_bytes).expect("valid manifest");
    assert_eq!(manifest.backup_path, path);
    assert_eq!(manifest.backup.namespace, scene.namespace());
    assert_eq!(manifest.backup.name, name);

    let stored: BTreeSet<String> = listed
        .keys()
        .filter(|k| *k != layout::MANIFEST_FILE)
        .cloned()
        .collect();
    let in_manifest: BTreeSet<String> = manifest.objects.iter().map(|e| e.key.clone()).collect();
    assert_eq!(
        in_manifest.len(),
        manifest.objects.len(),
        "duplicate manifest entries"
    );
    assert_eq!(
        stored, in_manifest,
        "stored objects differ from the manifest"
    );
    assert_eq!(manifest.total_objects, stored.len() as u64);

    let fetched: Vec<(usize, bytes::Bytes)> = futures::stream::iter(0..manifest.objects.len())
        .map(|i| {
            let storage = storage.clone();
            let key = format!("{path}/{}", manifest.objects[i].key);
            async move {
                let bytes = storage
                    .get(&key)
                    .await
                    .unwrap_or_else(|e| panic!("read {key}: {e}"));
                (i, bytes)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut objects = BTreeMap::new();
    for (i, bytes) in fetched {
        let entry = &manifest.objects[i];
        assert_eq!(listed[&entry.key], bytes.len() as u64, "{}", entry.key);
        entry
            .verify(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", entry.key));
        let object: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", entry.key));
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        assert!(
            !api_version.is_empty() && !kind.is_empty(),
            "{} lacks apiVersion/kind",
            entry.key
        );
        assert_eq!(api_version, &*entry.api_version, "{}", entry.key);
        assert_eq!(kind, &*entry.kind, "{}", entry.key);
        assert_eq!(object["metadata"]["name"], entry.name, "{}", entry.key);
        assert_eq!(
            object["metadata"]["namespace"].as_str(),
            entry.namespace.as_deref(),
            "{}",
            entry.key
        );
        let parts = layout::parse_object_key("", &entry.key)
            .unwrap_or_else(|| panic!("{} is not an object key", entry.key));
        assert_eq!(parts.name, entry.name, "{}", entry.key);
        assert_eq!(parts.namespace.as_deref(), entry.namespace.as_deref());
        assert_eq!(parts.type_dir, &*entry.resource, "{}", entry.key);
        objects.insert(entry.key.clone(), object);
    }

    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for key in &stored {
        let segments: Vec<&str> = key.split('/').collect();
        let count_key = match segments.as_slice() {
            ["namespaces", ns, type_dir, _] => format!("{ns}/{type_dir}"),
            ["cluster", type_dir, _] => format!("cluster/{type_dir}"),
            _ => panic!("unexpected key shape {key}"),
        };
        *counts.entry(count_key).or_default() += 1;
    }
    assert_eq!(
        status.resource_counts, counts,
        "status.resourceCounts differ from the stored objects"
    );
    let manifest_counts: BTreeMap<String, i64> = manifest
        .counts
        .iter()
        .map(|(k, v)| (k.clone(), *v as i64))
        .collect();
    assert_eq!(manifest_counts, counts, "manifest counts");
    assert_eq!(last.objects, stored.len() as i64, "lastRun.objects");
    assert_eq!(last.failed, manifest.errors.len() as i64, "lastRun.failed");

    StoredRun {
        path,
        manifest,
        objects,
    }
}

/// Whether a manifest exists for `path` (a failed run must not leave one).
async fn has_manifest(scene: &Scene, path: &str) -> bool {
    scene
        .storage()
        .get(&format!("{path}/{}", layout::MANIFEST_FILE))
        .await
        .is_ok()
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// Every Event about Backup `name` in the test namespace.
async fn events_for(scene: &Scene, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(scene.client.clone(), scene.namespace());
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("Backup")
        })
        .collect()
}

/// Waits for a Warning Event `reason` about Backup `name` and returns its note.
async fn warning_event(scene: &Scene, name: &str, reason: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = events_for(scene, name).await;
        if let Some(event) = events
            .iter()
            .find(|e| e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some("Warning"))
        {
            return event.note.clone().unwrap_or_default();
        }
        if Instant::now() > deadline {
            let seen: Vec<_> = events
                .iter()
                .map(|e| (e.type_.clone(), e.reason.clone(), e.note.clone()))
                .collect();
            panic!("no Warning event {reason} for backup {name}; events: {seen:#?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Objects to back up
// ---------------------------------------------------------------------------------------------

fn meta(ns: &str, name: &str, labels: Value) -> Value {
    json!({ "name": name, "namespace": ns, "labels": labels })
}

fn deployment(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(ns, name, labels),
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] }
            }
        }
    })
}

fn service(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service", "metadata": meta(ns, name, labels),
        "spec": {
            "selector": { "app": name },
            "ports": [{ "port": 80, "protocol": "TCP", "targetPort": 80 }]
        }
    })
}

fn configmap(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(ns, name, labels),
        "data": { "key": "value" }
    })
}

fn secret(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": meta(ns, name, labels),
        "type": "Opaque", "stringData": { "password": "secret123" }
    })
}

fn service_account_token(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": name, "namespace": ns,
            "annotations": { "kubernetes.io/service-account.name": "builder" }
        },
        "type": "kubernetes.io/service-account-token"
    })
}

fn pvc(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(ns, name, json!({})),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": "1Gi" } }
        }
    })
}

fn ingress(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": meta(ns, name, json!({})),
        "spec": { "defaultBackend": { "service": { "name": name, "port": { "number": 80 } } } }
    })
}

async fn create_all(client: &Client, objects: impl IntoIterator<Item = Value>) {
    for object in objects {
        create_json(client, object).await;
    }
}

/// Deletes a cluster-scoped object (best effort; names are unique per test).
async fn delete_cluster_object(client: &Client, api_version: &str, kind: &str, name: &str) {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let _ = api.delete(name, &DeleteParams::default()).await;
}

// =============================================================================================
// The design document's examples
// =============================================================================================

/// `single-namespace-backup`: the legacy `namespace` field and four resource types. Objects of
/// other types in that namespace, and other namespaces, are not stored.
#[tokio::test]
async fn single_namespace_example_stores_exactly_the_listed_types() {
    let scene = Scene::new("bk-single").await;
    let production = scene.source("p").await;
    let other = scene.source("o").await;
    let ns = production.name.as_str();
    create_all(
        &scene.client,
        [
            deployment(ns, "web", json!({ "app": "web" })),
            service(ns, "web", json!({})),
            configmap(ns, "web-config", json!({})),
            secret(ns, "web-secret", json!({})),
            pvc(ns, "data"), // not a listed type
            configmap(&other.name, "not-mine", json!({})),
        ],
    )
    .await;

    let doc = scene.sample(
        COMPREHENSIVE,
        "single-namespace-backup",
        &[("production", ns)],
    );
    let backup = scene.run_scheduled(&doc).await;
    let status = backup.status.as_ref().unwrap();
    assert_eq!(
        status.last_run.as_ref().unwrap().result,
        Some(RunResult::Completed),
        "{status:#?}"
    );

    let run = verify_run(&scene, &backup).await;
    assert_eq!(
        run.keys(),
        keys([
            ns_key(ns, "configmaps", "web-config"),
            ns_key(ns, "deployments", "web"),
            ns_key(ns, "secrets", "web-secret"),
            ns_key(ns, "services", "web"),
        ])
    );
    assert_eq!(run.manifest.namespaces, vec![ns.to_string()]);
    let secret = run.object(&ns_key(ns, "secrets", "web-secret"));
    assert_eq!(
        secret["data"]["password"], "c2VjcmV0MTIz",
        "secret data is stored"
    );
    let deployment = run.object(&ns_key(ns, "deployments", "web"));
    assert_eq!(deployment["apiVersion"], "apps/v1");
    assert_eq!(deployment["kind"], "Deployment");
}

/// `production-backup`: three namespaces, a label selector evaluated by the API server. Only
/// objects carrying BOTH labels are stored.
#[tokio::test]
async fn production_example_stores_only_labelled_objects_of_its_three_namespaces() {
    let scene = Scene::new("bk-prod").await;
    let production = scene.source("p").await;
    let data = scene.source("pd").await;
    let monitoring = scene.source("pm").await;
    let both = json!({ "environment": "production", "backup": "enabled" });
    let only_env = json!({ "environment": "production" });
    let mut expected = BTreeSet::new();
    for ns in [&production.name, &data.name, &monitoring.name] {
        create_all(
            &scene.client,
            [
                deployment(ns, "api", both.clone()),
                service(ns, "api", both.clone()),
                configmap(ns, "api-config", both.clone()),
                secret(ns, "api-secret", both.clone()),
                configmap(ns, "unlabelled", json!({})),
                secret(ns, "half-labelled", only_env.clone()),
                deployment(
                    ns,
                    "staging",
                    json!({ "environment": "staging", "backup": "enabled" }),
                ),
            ],
        )
        .await;
        expected.extend([
            ns_key(ns, "deployments", "api"),
            ns_key(ns, "services", "api"),
            ns_key(ns, "configmaps", "api-config"),
            ns_key(ns, "secrets", "api-secret"),
        ]);
    }

    let doc = scene.sample(
        COMPREHENSIVE,
        "production-backup",
        &[
            ("production", &production.name),
            ("prod-data", &data.name),
            ("prod-monitoring", &monitoring.name),
        ],
    );
    let backup = scene.run_scheduled(&doc).await;
    let status = backup.status.as_ref().unwrap();
    assert_eq!(
        status.last_run.as_ref().unwrap().result,
        Some(RunResult::Completed),
        "{status:#?}"
    );
    let run = verify_run(&scene, &backup).await;
    assert_eq!(run.keys(), expected);
    let mut namespaces = vec![
        production.name.clone(),
        data.name.clone(),
        monitoring.name.clone(),
    ];
    namespaces.sort();
    assert_eq!(run.manifest.namespaces, namespaces);
    for object in run.objects.values() {
        assert_eq!(object["metadata"]["labels"]["backup"], "enabled");
        assert_eq!(object["metadata"]["labels"]["environment"], "production");
    }
}

/// `config-backup`: `"*"` with ConfigMaps and Secrets only, minus excluded namespaces.
/// Service-account token Secrets are skipped by TYPE; a user Secret named `api-token-x` is
/// stored (the design document's name rule would have dropped it).
#[tokio::test]
async fn config_example_stores_configmaps_and_secrets_of_every_namespace_but_excluded() {
    let scene = Scene::new("bk-config").await;
    let apps = scene.source("a").await;
    let excluded = scene.source("x").await;
    let ns = apps.name.as_str();
    create_all(
        &scene.client,
        [
            configmap(ns, "app-config", json!({})),
            secret(ns, "api-token-x", json!({})),
            secret(ns, "plain-secret", json!({})),
            service_account_token(ns, "builder-token-abcde"),
            deployment(ns, "web", json!({})), // not a listed type
            configmap(&excluded.name, "hidden", json!({})),
            secret(&excluded.name, "hidden", json!({})),
        ],
    )
    .await;

    let mut doc = scene.sample(COMPREHENSIVE, "config-backup", &[]);
    doc["spec"]["source"]["excludeNamespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!(excluded.name));
    let backup = scene.run_scheduled(&doc).await;
    let run = verify_run(&scene, &backup).await;

    assert_eq!(
        run.keys_in(ns),
        keys([
            ns_key(ns, "configmaps", "app-config"),
            ns_key(ns, "secrets", "api-token-x"),
            ns_key(ns, "secrets", "plain-secret"),
        ])
    );
    let covered = run.second_segments("namespaces");
    for gone in [
        excluded.name.as_str(),
        "kube-system",
        "kube-public",
        "monitoring",
    ] {
        assert!(!covered.contains(gone), "{gone} was backed up");
        assert!(
            !run.manifest.namespaces.iter().any(|n| n == gone),
            "{gone} in manifest"
        );
    }
    assert!(run.manifest.namespaces.iter().any(|n| n == ns));
    assert!(run.cluster_keys().is_empty(), "{:?}", run.cluster_keys());
    for (key, object) in &run.objects {
        let type_dir = key.split('/').nth(2).unwrap();
        assert!(
            type_dir == "configmaps" || type_dir == "secrets",
            "{key} is neither a ConfigMap nor a Secret"
        );
        assert_ne!(
            object["type"], "kubernetes.io/service-account-token",
            "{key} is a service-account token"
        );
    }
}

/// `full-cluster-backup` and `full-cluster-test`: `"*"` with the default types plus the
/// default cluster types. RBAC names with ':' round-trip.
async fn full_cluster_example(sample_file: &str, sample_name: &str) {
    let scene = Scene::new("bk-full").await;
    let apps = scene.source("a").await;
    let excluded = scene.source("x").await;
    let ns = apps.name.as_str();
    create_all(
        &scene.client,
        [
            deployment(ns, "web", json!({})),
            service(ns, "web", json!({})),
            configmap(ns, "web-config", json!({})),
            secret(ns, "web-secret", json!({})),
            pvc(ns, "data"),
            ingress(ns, "web"),
            configmap(&excluded.name, "hidden", json!({})),
        ],
    )
    .await;
    let role = format!("cluster-backup-test:{}", unique_name("role"));
    let storage_class = unique_name("cbt-sc");
    let volume = unique_name("cbt-pv");
    create_all(
        &scene.client,
        [
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": { "name": role },
                "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"] }]
            }),
            json!({
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": { "name": storage_class },
                "provisioner": "example.com/none", "reclaimPolicy": "Retain"
            }),
            json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": { "name": volume },
                "spec": {
                    "capacity": { "storage": "1Gi" },
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": storage_class,
                    "hostPath": { "path": "/tmp/cluster-backup-test" }
                }
            }),
        ],
    )
    .await;

    let mut doc = scene.sample(sample_file, sample_name, &[]);
    doc["spec"]["source"]["excludeNamespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!(excluded.name));
    let backup = scene.run_scheduled(&doc).await;
    let run = verify_run(&scene, &backup).await;

    assert_eq!(
        run.keys_in(ns),
        keys([
            ns_key(ns, "configmaps", "web-config"),
            ns_key(ns, "deployments", "web"),
            ns_key(ns, "ingresses", "web"),
            ns_key(ns, "persistentvolumeclaims", "data"),
            ns_key(ns, "secrets", "web-secret"),
            ns_key(ns, "services", "web"),
        ])
    );
    let covered = run.second_segments("namespaces");
    for gone in [excluded.name.as_str(), "kube-system", "kube-public"] {
        assert!(!covered.contains(gone), "{gone} was backed up");
    }

    assert_eq!(
        run.second_segments("cluster"),
        keys([
            "clusterrolebindings",
            "clusterroles",
            "persistentvolumes",
            "storageclasses"
        ])
    );
    for (type_dir, name, kind) in [
        ("clusterroles", "system:aggregate-to-admin", "ClusterRole"),
        ("clusterroles", "cluster-admin", "ClusterRole"),
        ("clusterroles", role.as_str(), "ClusterRole"),
        ("clusterrolebindings", "cluster-admin", "ClusterRoleBinding"),
        (
            "clusterrolebindings",
            "system:basic-user",
            "ClusterRoleBinding",
        ),
        ("storageclasses", storage_class.as_str(), "StorageClass"),
        ("persistentvolumes", volume.as_str(), "PersistentVolume"),
    ] {
        // ':' is kept in keys as is; the stored name is the object's real name.
        let object = run.object(&cluster_key(type_dir, name));
        assert_eq!(object["metadata"]["name"], name);
        assert_eq!(object["kind"], kind);
        assert!(object["metadata"].get("namespace").is_none());
    }
    let status = backup.status.as_ref().unwrap();
    assert_eq!(status.resource_counts[&format!("{ns}/deployments")], 1);
    assert!(
        status.resource_counts["cluster/clusterroles"] > 50,
        "{status:#?}"
    );

    delete_cluster_object(&scene.client, "v1", "PersistentVolume", &volume).await;
    delete_cluster_object(
        &scene.client,
        "storage.k8s.io/v1",
        "StorageClass",
        &storage_class,
    )
    .await;
    delete_cluster_object(
        &scene.client,
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        &role,
    )
    .await;
}

#[tokio::test]
async fn full_cluster_backup_example_stores_namespaces_and_cluster_resources() {
    full_cluster_example(COMPREHENSIVE, "full-cluster-backup").await;
}

#[tokio::test]
async fn full_cluster_test_example_stores_namespaces_and_cluster_resources() {
    full_cluster_example("backup_v1_full_cluster_test.yaml", "full-cluster-test").await;
}

/// The walkthrough's namespace: deployment nginx, configmap test-config, secret test-secret,
/// service nginx (as `kubectl create`/`expose` make them).
async fn walkthrough_namespace(scene: &Scene) -> TestNamespace {
    let source = scene.source("tb").await;
    let ns = source.name.as_str();
    create_all(
        &scene.client,
        [
            deployment(ns, "nginx", json!({ "app": "nginx" })),
            configmap(ns, "test-config", json!({})),
            secret(ns, "test-secret", json!({})),
            service(ns, "nginx", json!({ "app": "nginx" })),
        ],
    )
    .await;
    source
}

fn walkthrough_keys(ns: &str) -> BTreeSet<String> {
    keys([
        ns_key(ns, "configmaps", "test-config"),
        ns_key(ns, "deployments", "nginx"),
        ns_key(ns, "secrets", "test-secret"),
        ns_key(ns, "services", "nginx"),
    ])
}

/// `test-backup` ("Manual Testing Steps"): default resource types, inline keys.
#[tokio::test]
async fn test_backup_walkthrough_stores_its_four_objects() {
    let scene = Scene::new("bk-walk").await;
    let source = walkthrough_namespace(&scene).await;
    let doc = scene.sample(
        "backup_v1_test_backup.yaml",
        "test-backup",
        &[("test-backup", &source.name)],
    );
    let backup = scene.run_scheduled(&doc).await;
    let run = verify_run(&scene, &backup).await;
    assert_eq!(run.keys(), walkthrough_keys(&source.name));
    // Inline keys are accepted, with a warning Event that does not repeat them.
    let note = warning_event(&scene, "test-backup", "CredentialsWarning").await;
    assert!(note.contains("inline"), "{note}");
    assert!(!note.contains(&scene.env.s3_secret_key));
}

/// `test-namespace-backup` ("Testing Procedures"): credentials from the Secret
/// `minio-credentials` in the Backup's namespace.
#[tokio::test]
async fn test_namespace_backup_walkthrough_reads_credentials_from_its_secret() {
    let scene = Scene::new("bk-walk-secret").await;
    let source = walkthrough_namespace(&scene).await;
    create_json(
        &scene.client,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "minio-credentials", "namespace": scene.namespace() },
            "stringData": {
                "accessKey": scene.env.s3_access_key,
                "secretKey": scene.env.s3_secret_key,
            }
        }),
    )
    .await;
    let doc = scene.sample(
        "backup_v1_test_namespace_backup.yaml",
        "test-namespace-backup",
        &[("test-backup", &source.name)],
    );
    assert_eq!(
        doc["spec"]["storageLocation"]["credentialsSecret"],
        "minio-credentials"
    );
    let backup = scene.run_scheduled(&doc).await;
    let run = verify_run(&scene, &backup).await;
    assert_eq!(run.keys(), walkthrough_keys(&source.name));
    assert_eq!(
        run.manifest.spec["storageLocation"]["credentialsSecret"],
        "minio-credentials"
    );
}

// =============================================================================================
// Custom resources
// =============================================================================================

const WIDGET_CRD: &str = "widgets.example.com";

/// Installs `widgets.example.com` (shared by the tests, never deleted) and waits until the
/// API server serves it.
async fn install_widget_crd(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": WIDGET_CRD },
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList" },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } }
                }}
            }]
        }
    });
    api.patch(
        WIDGET_CRD,
        &PatchParams::apply("backup-controller-test").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply the Widget CRD");
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(api, WIDGET_CRD, conditions::is_crd_established()),
    )
    .await
    .expect("Widget CRD established in time")
    .expect("watch the Widget CRD");
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let deadline = Instant::now() + Duration::from_secs(60);
    while kube::discovery::pinned_kind(client, &gvk).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "Widget never appeared in discovery"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Custom resources are resolved through discovery under every spelling (plural, singular,
/// kind, plural.group), stored under `<plural>.<group>`, and their CRD goes with them even
/// without `includeClusterResources`.
#[tokio::test]
async fn custom_resources_are_stored_with_their_crd() {
    let scene = Scene::new("bk-cr").await;
    install_widget_crd(&scene.client).await;
    let source = scene.source("w").await;
    let ns = source.name.as_str();
    for (name, size) in [("w-one", 1), ("w-two", 2)] {
        create_json(
            &scene.client,
            json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": { "name": name, "namespace": ns },
                "spec": { "size": size }
            }),
        )
        .await;
    }
    create_json(&scene.client, configmap(ns, "not-a-widget", json!({}))).await;

    let spellings = [
        ("cr-plural", "widgets"),
        ("cr-singular", "widget"),
        ("cr-kind", "Widget"),
        ("cr-qualified", "widgets.example.com"),
    ];
    for (name, spelling) in spellings {
        let mut doc = scene.one_shot(name, ns);
        doc["spec"]["source"]["resourceTypes"] = json!([spelling]);
        doc["spec"]["source"]["includeClusterResources"] = json!(false);
        scene.create_backup(&doc).await;
    }
    let crd_key = cluster_key("customresourcedefinitions", WIDGET_CRD);
    for (name, spelling) in spellings {
        let backup = scene.wait_finished(name).await;
        assert_eq!(
            phase(&backup),
            BackupPhase::Completed,
            "resourceTypes [{spelling:?}]: {:#?}",
            backup.status
        );
        let run = verify_run(&scene, &backup).await;
        assert_eq!(
            run.keys(),
            keys([
                crd_key.clone(),
                ns_key(ns, "widgets.example.com", "w-one"),
                ns_key(ns, "widgets.example.com", "w-two"),
            ]),
            "resourceTypes [{spelling:?}]"
        );
        let widget = run.object(&ns_key(ns, "widgets.example.com", "w-two"));
        assert_eq!(widget["apiVersion"], "example.com/v1");
        assert_eq!(widget["kind"], "Widget");
        assert_eq!(widget["spec"]["size"], 2);
        let crd = run.object(&crd_key);
        assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(crd["kind"], "CustomResourceDefinition");
        assert_eq!(crd["metadata"]["name"], WIDGET_CRD);
        assert_eq!(crd["spec"]["names"]["kind"], "Widget");
    }
}

// =============================================================================================
// Triggers and paths
// =============================================================================================

/// A scheduled Backup runs once per new value of the run-now annotation: the same value again
/// (even with the object otherwise changed) does not run; a new value runs again to a new path.
#[tokio::test]
async fn run_now_annotation_runs_exactly_once_per_new_value() {
    let scene = Scene::new("bk-trigger").await;
    let source = scene.source("s").await;
    create_json(&scene.client, configmap(&source.name, "cfg", json!({}))).await;
    let mut doc = scene.one_shot("nightly", &source.name);
    doc["spec"]["schedule"] = json!("@yearly");
    scene.create_backup(&doc).await;
    let waiting = scene
        .wait("nightly", |s| s.phase == Some(BackupPhase::Scheduled))
        .await;
    let status = waiting.status.as_ref().unwrap();
    assert!(status.next_backup_time.is_some());
    assert_eq!(status.backup_count, 0);
    assert!(status.last_run.is_none() && status.history.is_empty());

    scene.run_now("nightly", "first").await;
    let after_first = scene
        .wait("nightly", |s| {
            s.backup_count == 1
                && s.current_run.is_none()
                && s.phase == Some(BackupPhase::Scheduled)
        })
        .await;
    let first = verify_run(&scene, &after_first).await;
    let status = after_first.status.as_ref().unwrap();
    assert_eq!(status.last_run.as_ref().unwrap().trigger, "manual");
    assert_eq!(status.last_manual_trigger.as_deref(), Some("first"));

    // Same value, plus an unrelated change so the operator certainly reconciles.
    scene
        .annotate(
            "nightly",
            &[(RUN_NOW_ANNOTATION, "first"), ("touched", "yes")],
        )
        .await;
    let quiet_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < quiet_until {
        let current = scene.backups.get("nightly").await.unwrap();
        let status = current.status.unwrap();
        assert_eq!(status.backup_count, 1, "ran again for the same value");
        assert!(status.current_run.is_none(), "ran again for the same value");
        assert_eq!(status.history.len(), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    scene.run_now("nightly", "second").await;
    let after_second = scene
        .wait("nightly", |s| {
            s.backup_count == 2
                && s.current_run.is_none()
                && s.phase == Some(BackupPhase::Scheduled)
        })
        .await;
    let second = verify_run(&scene, &after_second).await;
    assert_ne!(first.path, second.path);
    let status = after_second.status.as_ref().unwrap();
    let history: Vec<&str> = status
        .history
        .iter()
        .map(|r| r.backup_path.as_str())
        .collect();
    assert_eq!(history, vec![second.path.as_str(), first.path.as_str()]);
    assert_eq!(status.last_manual_trigger.as_deref(), Some("second"));
    // The first run is untouched by the second.
    assert!(has_manifest(&scene, &first.path).await);
    assert_eq!(first.keys(), second.keys());
}

/// Backups sharing one bucket never share a path: two Backups of one namespace and a Backup
/// with the same name in another namespace, all started at once.
#[tokio::test]
async fn backups_sharing_a_bucket_never_share_a_path() {
    let first = Scene::new("bk-share-a").await;
    let second = Scene::with_bucket("bk-share-b", first.bucket.clone()).await;
    let source = first.source("s").await;
    create_json(&first.client, configmap(&source.name, "cfg", json!({}))).await;

    first
        .create_backup(&first.one_shot("alpha", &source.name))
        .await;
    first
        .create_backup(&first.one_shot("beta", &source.name))
        .await;
    second
        .create_backup(&second.one_shot("alpha", &source.name))
        .await;

    let mut paths = Vec::new();
    let mut all_keys = BTreeSet::new();
    for (scene, name) in [(&first, "alpha"), (&first, "beta"), (&second, "alpha")] {
        let backup = scene.wait_finished(name).await;
        assert_eq!(
            phase(&backup),
            BackupPhase::Completed,
            "{:#?}",
            backup.status
        );
        let run = verify_run(scene, &backup).await;
        assert_eq!(
            run.keys(),
            keys([ns_key(&source.name, "configmaps", "cfg")])
        );
        all_keys.extend(run.objects.keys().map(|k| format!("{}/{k}", run.path)));
        all_keys.insert(format!("{}/{}", run.path, layout::MANIFEST_FILE));
        paths.push(run.path);
    }
    for (i, a) in paths.iter().enumerate() {
        for b in &paths[i + 1..] {
            assert!(
                !a.starts_with(&format!("{b}/")) && !b.starts_with(&format!("{a}/")) && a != b,
                "{a} and {b} overlap"
            );
        }
    }
    // Nothing else in the bucket: every key belongs to exactly one of the three runs.
    let bucket_keys: BTreeSet<String> = first
        .storage()
        .list("")
        .map_ok(|o| o.key)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(bucket_keys, all_keys);
}

// =============================================================================================
// Bad input: a specific message, an Event, and the operator keeps working
// =============================================================================================

#[tokio::test]
async fn invalid_cron_schedule_is_reported_and_never_runs() {
    let scene = Scene::new("bk-bad-cron").await;
    let source = scene.source("s").await;
    let mut doc = scene.one_shot("bad-cron", &source.name);
    doc["spec"]["schedule"] = json!("61 * * * *");
    scene.create_backup(&doc).await;
    let backup = scene
        .wait("bad-cron", |s| s.phase == Some(BackupPhase::Failed))
        .await;
    let msg = message(&backup);
    assert!(msg.contains("invalid schedule \"61 * * * *\""), "{msg}");
    let status = backup.status.as_ref().unwrap();
    assert!(status.next_backup_time.is_none(), "{status:#?}");
    assert!(
        status.last_run.is_none() && status.backup_count == 0,
        "{status:#?}"
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, "InvalidSchedule");
    let note = warning_event(&scene, "bad-cron", "InvalidSchedule").await;
    assert!(note.contains("61 * * * *"), "{note}");

    scene.good_backup_still_completes("good").await;
}

/// Runs a one-shot Backup that must fail, checks phase, lastRun, message and Event.
async fn expect_failed_run(scene: &Scene, doc: &Value, needles: &[&str]) -> Backup {
    let name = doc["metadata"]["name"].as_str().unwrap();
    scene.create_backup(doc).await;
    let backup = scene.wait_finished(name).await;
    assert_eq!(phase(&backup), BackupPhase::Failed, "{:#?}", backup.status);
    let status = backup.status.as_ref().unwrap();
    let last = status.last_run.as_ref().unwrap();
    assert_eq!(last.result, Some(RunResult::Failed));
    assert_eq!(status.backup_count, 0);
    assert!(status.backup_path.is_none(), "{status:#?}");
    assert!(
        !has_manifest(scene, &last.backup_path).await,
        "a failed run left a manifest"
    );
    let msg = message(&backup);
    eprintln!("{name}: {msg}");
    let note = warning_event(scene, name, "BackupFailed").await;
    for needle in needles {
        assert!(
            msg.contains(needle),
            "status message lacks {needle:?}: {msg}"
        );
        assert!(note.contains(needle), "event lacks {needle:?}: {note}");
    }
    backup
}

#[tokio::test]
async fn invalid_label_selector_is_reported() {
    let scene = Scene::new("bk-bad-sel").await;
    let source = scene.source("s").await;
    let mut doc = scene.one_shot("bad-selector", &source.name);
    doc["spec"]["source"]["labelSelector"] = json!({
        "matchExpressions": [{ "key": "app", "operator": "Equals", "values": ["web"] }]
    });
    expect_failed_run(
        &scene,
        &doc,
        &["invalid labelSelector", "operator \"Equals\""],
    )
    .await;
    scene.good_backup_still_completes("good").await;
}

/// Several spec problems at once, with storage that cannot be reached and credentials that do
/// not exist: every spec problem is reported together, before storage or credentials are
/// touched (so neither the missing Secret nor the dead endpoint is what the user reads).
#[tokio::test]
async fn every_spec_problem_is_reported_together_before_storage() {
    let scene = Scene::new("bk-bad-all").await;
    let source = scene.source("s").await;
    let mut doc = scene.one_shot("bad-all", &source.name);
    doc["spec"]["source"]["resourceTypes"] = json!(["deploymnts"]);
    doc["spec"]["source"]["labelSelector"] = json!({
        "matchExpressions": [{ "key": "app", "operator": "Equals", "values": ["web"] }]
    });
    doc["spec"]["retention"] = json!({ "ttl": "soon" });
    doc["spec"]["storageLocation"] = json!({
        "provider": "minio", "bucket": "b", "endpoint": "http://127.0.0.1:1",
        "prefix": "team/../other", "credentialsSecret": "no-such-secret",
    });
    let backup = expect_failed_run(
        &scene,
        &doc,
        &[
            "\"deploymnts\"",
            "invalid labelSelector",
            "invalid retention.ttl \"soon\"",
            "storageLocation: ",
            "\"team/../other\"",
        ],
    )
    .await;
    let msg = message(&backup);
    assert!(!msg.contains("no-such-secret"), "{msg}");
    assert!(!msg.contains("127.0.0.1:1"), "{msg}");
    let ready = backup
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready.reason, "InvalidSpec");
}

#[tokio::test]
async fn unknown_resource_type_is_named_with_a_suggestion() {
    let scene = Scene::new("bk-bad-type").await;
    let source = scene.source("s").await;
    let mut doc = scene.one_shot("bad-type", &source.name);
    doc["spec"]["source"]["resourceTypes"] = json!(["deploymnts"]);
    expect_failed_run(
        &scene,
        &doc,
        &["\"deploymnts\"", "did you mean \"deployments\""],
    )
    .await;
    scene.good_backup_still_completes("good").await;
}

/// `production-backup` made one-shot, with one of its three namespaces missing: the others are
/// stored (restorable), the result is PartiallyFailed and names the missing namespace.
#[tokio::test]
async fn missing_namespace_is_named_and_the_rest_is_stored() {
    let scene = Scene::new("bk-bad-ns").await;
    let production = scene.source("p").await;
    let data = scene.source("pd").await;
    let missing = unique_name("prod-monitoring-missing");
    let labels = json!({ "environment": "production", "backup": "enabled" });
    for ns in [&production.name, &data.name] {
        create_json(&scene.client, configmap(ns, "cfg", labels.clone())).await;
    }
    let mut doc = scene.sample(
        COMPREHENSIVE,
        "production-backup",
        &[
            ("production", &production.name),
            ("prod-data", &data.name),
            ("prod-monitoring", &missing),
        ],
    );
    doc["spec"].as_object_mut().unwrap().remove("schedule");
    scene.create_backup(&doc).await;

    let backup = scene.wait_finished("production-backup").await;
    assert_eq!(
        phase(&backup),
        BackupPhase::PartiallyFailed,
        "{:#?}",
        backup.status
    );
    let status = backup.status.as_ref().unwrap();
    let last = status.last_run.as_ref().unwrap();
    assert_eq!(last.result, Some(RunResult::PartiallyFailed));
    assert_eq!(last.failed, 1);
    assert!(
        last.errors
            .iter()
            .any(|e| e.contains(&missing) && e.contains("does not exist")),
        "{:?}",
        last.errors
    );
    let msg = message(&backup);
    assert!(
        msg.contains(&missing) && msg.contains("does not exist"),
        "{msg}"
    );
    let note = warning_event(&scene, "production-backup", "BackupPartiallyFailed").await;
    assert!(note.contains(&missing), "{note}");

    let run = verify_run(&scene, &backup).await;
    assert_eq!(
        run.keys(),
        keys([
            ns_key(&production.name, "configmaps", "cfg"),
            ns_key(&data.name, "configmaps", "cfg"),
        ])
    );
    assert_eq!(run.manifest.result, "PartiallyFailed");
    assert!(
        run.manifest
            .errors
            .iter()
            .any(|e| e.name.as_deref() == Some(missing.as_str())),
        "{:?}",
        run.manifest.errors
    );

    scene.good_backup_still_completes("good").await;
}

#[tokio::test]
async fn bucket_that_cannot_be_created_says_why() {
    let scene = Scene::new("bk-bad-bucket").await;
    let source = scene.source("s").await;
    let mut doc = scene.one_shot("bad-bucket", &source.name);
    doc["spec"]["storageLocation"]["bucket"] = json!("Bad_Bucket");
    let backup = expect_failed_run(
        &scene,
        &doc,
        &["bucket \"Bad_Bucket\" does not exist and could not be created: "],
    )
    .await;
    let msg = message(&backup);
    let reason = msg
        .split("could not be created: ")
        .nth(1)
        .unwrap_or_default()
        .trim();
    assert!(!reason.is_empty(), "no reason given: {msg}");
    scene.good_backup_still_completes("good").await;
}

#[tokio::test]
async fn wrong_credentials_are_reported_without_the_secret() {
    let scene = Scene::new("bk-bad-creds").await;
    let source = scene.source("s").await;
    let wrong_secret = format!("wrong-secret-{}", unique_name("k"));
    let mut doc = scene.one_shot("bad-creds", &source.name);
    doc["spec"]["storageLocation"]["secretKey"] = json!(wrong_secret);
    let backup = expect_failed_run(&scene, &doc, &["rejected the credentials"]).await;

    let status_text = serde_json::to_string(&backup.status).unwrap();
    let events_text = format!("{:?}", events_for(&scene, "bad-creds").await);
    for secret in [&wrong_secret, &scene.env.s3_secret_key] {
        assert!(!status_text.contains(secret.as_str()), "secret in status");
        assert!(!events_text.contains(secret.as_str()), "secret in events");
    }
    scene.good_backup_still_completes("good").await;
}

#[tokio::test]
async fn unreachable_endpoint_fails_quickly_with_connection_refused() {
    let scene = Scene::new("bk-bad-endpoint").await;
    let source = scene.source("s").await;
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut doc = scene.one_shot("unreachable", &source.name);
    doc["spec"]["storageLocation"]["endpoint"] = json!(endpoint);
    let started = Instant::now();
    expect_failed_run(
        &scene,
        &doc,
        &[
            format!("cannot reach S3 endpoint {endpoint}").as_str(),
            "connection refused",
        ],
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "took {took:?}");
    eprintln!("unreachable endpoint reported after {took:?}");
    scene.good_backup_still_completes("good").await;
}

#[tokio::test]
async fn missing_credentials_secret_is_named() {
    let scene = Scene::new("bk-bad-secret").await;
    let source = scene.source("s").await;
    let secret_name = unique_name("no-such-credentials");
    let mut doc = scene.one_shot("no-secret", &source.name);
    let location = doc["spec"]["storageLocation"].as_object_mut().unwrap();
    location.remove("accessKey");
    location.remove("secretKey");
    location.insert("credentialsSecret".into(), json!(secret_name));
    expect_failed_run(
        &scene,
        &doc,
        &[format!("credentials Secret \"{secret_name}\" not found").as_str()],
    )
    .await;
    scene.good_backup_still_completes("good").await;
}
