//! One test's scene: a test ground, a namespace where its Backups and Restores live, a bucket,
//! the in-process operators watching only that namespace, and the steps tests take with them.
//! Everything is removed (best effort) when the scene drops.
//!
//! ```ignore
//! let scene = Scene::backups("bk-single").await;          // + the Backup operator
//! let source = scene.new_namespace("p").await;
//! scene.create(configmap(&source.name, "cfg", json!({}))).await;
//! scene.create_backup(&scene.one_shot("once", &source.name)).await;
//! let backup = scene.wait_finished("once").await;
//! let run = scene.verify_run(&backup).await;               // what storage holds
//! ```

use std::time::Duration;

use cluster_backup::api::{
    Backup, BackupPhase, BackupStatus, RUN_NOW_ANNOTATION, Restore, RestorePhase, RestoreStatus,
    RunResult,
};
use cluster_backup::core::layout;
use cluster_backup::core::manifest::Manifest;
use cluster_backup::storage::Storage;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::stored::{keys, ns_key};
use super::{
    OperatorHandle, RUN_TIMEOUT, TestBucket, TestEnv, TestNamespace, assert_loopback, create_all,
    create_json, create_namespace, poll_until, short_unique_name, start_operator,
    start_restore_operator, unique_name, wait_for_backup, wait_for_restore,
};

/// Which operators a scene runs from the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operators {
    /// None: the test starts them itself (e.g. after presetting a status).
    None,
    Backup,
    BackupAndRestore,
}

pub struct Scene {
    // First, so the operators stop before the namespace and bucket go.
    operators: Vec<OperatorHandle>,
    pub env: TestEnv,
    pub client: Client,
    /// Where the Backups and Restores live; the in-process operators watch only this namespace.
    pub ns: TestNamespace,
    pub backups: Api<Backup>,
    pub restores: Api<Restore>,
    pub bucket: TestBucket,
}

/// A scene on another ground, sharing a bucket, or with other operators
/// ([`Scene::builder`]).
pub struct SceneBuilder {
    prefix: String,
    ground: Option<String>,
    bucket: Option<String>,
    operators: Operators,
}

impl SceneBuilder {
    /// The named test ground (e.g. `second`) instead of the default one.
    pub fn ground(mut self, name: &str) -> Self {
        self.ground = Some(name.to_string());
        self
    }

    /// Use this bucket (e.g. another scene's) instead of a fresh one.
    pub fn bucket(mut self, name: &str) -> Self {
        self.bucket = Some(name.to_string());
        self
    }

    pub fn operators(mut self, operators: Operators) -> Self {
        self.operators = operators;
        self
    }

    /// Connects, installs the CRDs, creates the namespace and starts the operators.
    pub async fn start(self) -> Scene {
        let env = match &self.ground {
            Some(name) => TestEnv::load_named(name),
            None => TestEnv::load(),
        };
        let client = env.client().await;
        // The CRDs and the requester-stamp policy: objects the tests write are stamped with
        // the test's identity, which the operator (multi-tenant by default) acts as.
        cluster_backup::controller::install::install(&client, Duration::from_secs(60))
            .await
            .expect("CRDs and the requester-stamp policy install");
        // Short names: the test ground's S3 server limits bucket + key length
        // (see `short_unique_name`).
        let ns = short_unique_name("t");
        create_namespace(&client, &ns).await;
        let ns = TestNamespace::adopt_on(&env, &client, &ns);
        let bucket =
            TestBucket::named(&env, &self.bucket.unwrap_or_else(|| short_unique_name("b")));
        eprintln!(
            "{}: [{}] Backups/Restores in namespace {}, bucket {}",
            self.prefix, env.name, ns.name, bucket.name
        );
        let mut scene = Scene {
            operators: Vec::new(),
            backups: Api::namespaced(client.clone(), &ns.name),
            restores: Api::namespaced(client.clone(), &ns.name),
            env,
            client,
            ns,
            bucket,
        };
        if self.operators != Operators::None {
            let operator = scene.start_backup_operator();
            scene.operators.push(operator);
        }
        if self.operators == Operators::BackupAndRestore {
            let operator = scene.start_restore_operator();
            scene.operators.push(operator);
        }
        scene
    }
}

// ---------------------------------------------------------------------------------------------
// Setting the scene
// ---------------------------------------------------------------------------------------------

impl Scene {
    /// The default ground, a fresh namespace and bucket, and the Backup operator. `prefix`
    /// names the test in the log.
    pub async fn backups(prefix: &str) -> Scene {
        Scene::builder(prefix).start().await
    }

    /// [`Scene::backups`] with the Restore operator too.
    pub async fn restores(prefix: &str) -> Scene {
        Scene::builder(prefix)
            .operators(Operators::BackupAndRestore)
            .start()
            .await
    }

    /// [`Scene::backups`] without any operator: the test starts them when it wants.
    pub async fn bare(prefix: &str) -> Scene {
        Scene::builder(prefix)
            .operators(Operators::None)
            .start()
            .await
    }

    pub fn builder(prefix: &str) -> SceneBuilder {
        SceneBuilder {
            prefix: prefix.to_string(),
            ground: None,
            bucket: None,
            operators: Operators::Backup,
        }
    }

    /// A scene on the second test ground (`second`, an independent control plane) with both
    /// operators, sharing this scene's bucket: where cross-cluster restores land.
    pub async fn second_cluster(&self, prefix: &str) -> Scene {
        Scene::builder(prefix)
            .ground("second")
            .bucket(&self.bucket.name)
            .operators(Operators::BackupAndRestore)
            .start()
            .await
    }

    /// Starts (another) Backup operator on this scene's namespace; it stops when the handle
    /// drops.
    pub fn start_backup_operator(&self) -> OperatorHandle {
        start_operator(&self.client, &self.ns.name)
    }

    /// Starts a Backup operator that talks to the API server as `client` (e.g. impersonating
    /// the operator's ServiceAccount).
    pub fn start_backup_operator_as(&self, client: &Client) -> OperatorHandle {
        start_operator(client, &self.ns.name)
    }

    /// Starts a Restore operator that talks to the API server as `client`.
    pub fn start_restore_operator_as(&self, client: &Client) -> OperatorHandle {
        start_restore_operator(client, &self.ns.name)
    }

    pub fn start_restore_operator(&self) -> OperatorHandle {
        start_restore_operator(&self.client, &self.ns.name)
    }

    /// The namespace of the Backups and Restores.
    pub fn namespace(&self) -> &str {
        &self.ns.name
    }

    /// A fresh namespace (short unique name starting with `prefix`), deleted when the test
    /// ends: something to back up, or to restore into.
    pub async fn new_namespace(&self, prefix: &str) -> TestNamespace {
        let name = short_unique_name(prefix);
        create_namespace(&self.client, &name).await;
        self.adopt_namespace(&name)
    }

    /// Takes charge of namespace `name` that something else creates (e.g. a restore): it is
    /// deleted when the test ends.
    pub fn adopt_namespace(&self, name: &str) -> TestNamespace {
        TestNamespace::adopt_on(&self.env, &self.client, name)
    }

    /// A fresh namespace holding one ConfigMap `configmap`: the smallest thing to back up.
    pub async fn namespace_with_configmap(&self, prefix: &str, configmap: &str) -> TestNamespace {
        let ns = self.new_namespace(prefix).await;
        self.create(super::objects::configmap(&ns.name, configmap, json!({})))
            .await;
        ns
    }

    /// A fresh namespace holding the "shop" application
    /// ([`shop_app`](super::objects::shop_app)), backed up once with `types`: the namespace and
    /// the run's `backupPath`. The Backup is named after the namespace prefix.
    pub async fn backed_up_shop(&self, prefix: &str, types: &[&str]) -> (TestNamespace, String) {
        let shop = self.new_namespace(prefix).await;
        self.create_all(super::objects::shop_app(&shop.name)).await;
        let path = self.back_up(prefix, &[&shop.name], types).await;
        (shop, path)
    }

    /// Creates one object given as JSON.
    pub async fn create(&self, object: Value) {
        create_json(&self.client, object).await;
    }

    /// Creates every object, in order.
    pub async fn create_all(&self, objects: impl IntoIterator<Item = Value>) {
        create_all(&self.client, objects).await;
    }

    /// The test's bucket, read with the real keys (independent of what a Backup says).
    pub fn storage(&self) -> Storage {
        self.bucket.storage()
    }

    /// `storageLocation` for this test's bucket with inline keys.
    pub fn location(&self) -> Value {
        serde_json::to_value(self.env.storage_location(&self.bucket.name)).unwrap()
    }

    /// The manifest of the run at `path`.
    pub async fn manifest(&self, path: &str) -> Manifest {
        let key = format!("{path}/{}", layout::MANIFEST_FILE);
        let bytes = self
            .storage()
            .get(&key)
            .await
            .unwrap_or_else(|e| panic!("read {key}: {e}"));
        Manifest::from_bytes(&bytes).unwrap_or_else(|e| panic!("{key}: {e}"))
    }
}

impl Scene {
    /// Writes the status of `kind` (`Backup`, `Restore`) `name` as a previous operator would
    /// have left it (for tests that start the operator afterwards).
    pub async fn preset_status(&self, kind: &str, name: &str, status: impl serde::Serialize) {
        let patch = json!({ "apiVersion": "backup.cnd.dk/v1", "kind": kind, "status": status });
        let params = PatchParams::apply(cluster_backup::controller::crds::FIELD_MANAGER).force();
        let written = match kind {
            "Backup" => self
                .backups
                .patch_status(name, &params, &Patch::Apply(&patch))
                .await
                .map(drop),
            "Restore" => self
                .restores
                .patch_status(name, &params, &Patch::Apply(&patch))
                .await
                .map(drop),
            other => panic!("preset_status: no status for kind {other}"),
        };
        written.unwrap_or_else(|e| panic!("preset status of {kind} {name}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Backups
// ---------------------------------------------------------------------------------------------

impl Scene {
    /// A one-shot Backup of `types` in `namespaces` to this test's bucket.
    pub fn backup_json(&self, name: &str, namespaces: &[&str], types: &[&str]) -> Value {
        json!({
            "apiVersion": "backup.cnd.dk/v1",
            "kind": "Backup",
            "metadata": { "name": name, "namespace": self.namespace() },
            "spec": {
                "source": { "namespaces": namespaces, "resourceTypes": types },
                "storageLocation": self.location(),
            }
        })
    }

    /// A one-shot Backup of the ConfigMaps in `source`.
    pub fn one_shot(&self, name: &str, source: &str) -> Value {
        self.backup_json(name, &[source], &["configmaps"])
    }

    /// A Backup of the ConfigMaps in `source` on `schedule` (cron or `@daily`…).
    pub fn scheduled(&self, name: &str, source: &str, schedule: &str) -> Value {
        let mut doc = self.one_shot(name, source);
        doc["spec"]["schedule"] = json!(schedule);
        doc
    }

    pub async fn create_backup(&self, doc: &Value) {
        assert_eq!(doc["metadata"]["namespace"], self.namespace());
        create_json(&self.client, doc.clone()).await;
    }

    /// Backs up `types` in `namespaces` once, waits until the run Completed, and returns its
    /// `status.backupPath`.
    pub async fn back_up(&self, name: &str, namespaces: &[&str], types: &[&str]) -> String {
        self.create_backup(&self.backup_json(name, namespaces, types))
            .await;
        let done = self
            .wait_backup(name, |s| {
                s.last_run.as_ref().and_then(|r| r.result).is_some()
            })
            .await;
        let status = done.status.unwrap();
        assert_eq!(
            status.last_run.as_ref().and_then(|r| r.result),
            Some(RunResult::Completed),
            "backup {name} completes: {:?}",
            status.message
        );
        status.backup_path.expect("backupPath")
    }

    /// Sets annotations on Backup `name` (merged with the ones it has).
    pub async fn annotate(&self, name: &str, annotations: &[(&str, &str)]) {
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

    /// Triggers Backup `name` with `backup.cnd.dk/run-now: <value>`.
    pub async fn run_now(&self, name: &str, value: &str) {
        self.annotate(name, &[(RUN_NOW_ANNOTATION, value)]).await;
    }

    pub async fn backup_status(&self, name: &str) -> BackupStatus {
        self.backups
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get backup {name}: {e}"))
            .status
            .unwrap_or_default()
    }

    /// Waits (up to [`RUN_TIMEOUT`]) until Backup `name`'s status satisfies `done`.
    pub async fn wait_backup(&self, name: &str, done: impl Fn(&BackupStatus) -> bool) -> Backup {
        wait_for_backup(&self.backups, name, RUN_TIMEOUT, done).await
    }

    /// Waits for a one-shot Backup to finish (Completed, PartiallyFailed or Failed).
    pub async fn wait_finished(&self, name: &str) -> Backup {
        self.wait_backup(name, |s| {
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

    /// Creates a scheduled Backup, checks it waits as `Scheduled` with a `nextBackupTime`,
    /// triggers one run with the run-now annotation and waits until it is back to `Scheduled`.
    pub async fn run_scheduled(&self, doc: &Value) -> Backup {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        assert!(
            doc["spec"]["schedule"].is_string(),
            "{name} is not scheduled"
        );
        self.create_backup(doc).await;
        self.wait_backup(&name, |s| {
            s.phase == Some(BackupPhase::Scheduled) && s.next_backup_time.is_some()
        })
        .await;
        let trigger = unique_name("now");
        self.run_now(&name, &trigger).await;
        let backup = self
            .wait_backup(&name, |s| {
                s.last_manual_trigger.as_deref() == Some(trigger.as_str())
                    && s.last_run.is_some()
                    && s.current_run.is_none()
                    && s.phase == Some(BackupPhase::Scheduled)
            })
            .await;
        let status = backup.status.as_ref().unwrap();
        assert!(status.backup_count >= 1, "{status:#?}");
        let next = status.next_backup_time.as_ref().expect("nextBackupTime");
        // The next slot is after the run ended (compared with that, not with the clock now: a
        // `*/5` slot may pass between the status write and this check).
        let ended = status
            .last_run
            .as_ref()
            .and_then(|run| run.completion_time.as_ref())
            .expect("lastRun.completionTime");
        assert!(
            cluster_backup::api::from_time(next) > cluster_backup::api::from_time(ended),
            "nextBackupTime is not after the run: {status:#?}"
        );
        backup
    }

    /// Runs a one-shot Backup that must fail; checks phase, lastRun, that no manifest was
    /// left, and that the status message and the `BackupFailed` Event contain every needle.
    pub async fn expect_failed_run(&self, doc: &Value, needles: &[&str]) -> Backup {
        let name = doc["metadata"]["name"].as_str().unwrap();
        self.create_backup(doc).await;
        let backup = self.wait_finished(name).await;
        assert_phase(&backup, BackupPhase::Failed);
        let status = backup.status.as_ref().unwrap();
        let last = status.last_run.as_ref().unwrap();
        assert_eq!(last.result, Some(RunResult::Failed));
        assert_eq!(status.backup_count, 0);
        assert!(status.backup_path.is_none(), "{status:#?}");
        assert!(
            !self.has_manifest(&last.backup_path).await,
            "a failed run left a manifest"
        );
        let msg = message(&backup);
        eprintln!("{name}: {msg}");
        let note = self.warning_event("Backup", name, "BackupFailed").await;
        for needle in needles {
            assert!(
                msg.contains(needle),
                "status message lacks {needle:?}: {msg}"
            );
            assert!(note.contains(needle), "event lacks {needle:?}: {note}");
        }
        backup
    }

    /// A one-shot Backup of ConfigMaps still completes: the operator survived the bad case.
    pub async fn good_backup_still_completes(&self, name: &str) {
        let source = self.namespace_with_configmap("g", "still-works").await;
        self.create_backup(&self.one_shot(name, &source.name)).await;
        let backup = self.wait_finished(name).await;
        assert_phase(&backup, BackupPhase::Completed);
        let run = self.verify_run(&backup).await;
        assert_eq!(
            run.keys(),
            keys([ns_key(&source.name, "configmaps", "still-works")])
        );
    }
}

/// `status.phase` of a Backup that has one.
pub fn phase(backup: &Backup) -> BackupPhase {
    backup
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .expect("status.phase")
}

/// Asserts a Backup's `status.phase`, showing the whole status when it differs.
pub fn assert_phase(backup: &Backup, expected: BackupPhase) {
    assert_eq!(phase(backup), expected, "{:#?}", backup.status);
}

/// Asserts how a Backup's last run ended (`status.lastRun.result`), showing the whole status
/// when it differs.
pub fn assert_last_run(backup: &Backup, expected: RunResult) {
    let status = backup.status.as_ref().expect("status");
    assert_eq!(
        status.last_run.as_ref().expect("status.lastRun").result,
        Some(expected),
        "{status:#?}"
    );
}

/// `status.message` of a Backup (empty without one).
pub fn message(backup: &Backup) -> String {
    backup
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Restores
// ---------------------------------------------------------------------------------------------

impl Scene {
    /// `spec.source` by this test's storage location and a backup path.
    pub fn by_path(&self, path: &str) -> Value {
        json!({ "storageLocation": self.location(), "backupPath": path })
    }

    /// Creates a Restore with `spec` (checked against the Restore type first).
    pub async fn create_restore(&self, name: &str, spec: Value) {
        let restore: Restore = serde_json::from_value(json!({
            "apiVersion": "backup.cnd.dk/v1",
            "kind": "Restore",
            "metadata": { "name": name, "namespace": self.namespace() },
            "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("Restore {name} spec: {e}"));
        self.restores
            .create(&PostParams::default(), &restore)
            .await
            .unwrap_or_else(|e| panic!("create Restore {name}: {e}"));
    }

    /// Waits (up to [`RUN_TIMEOUT`]) until Restore `name` is finished; its status.
    pub async fn wait_restore(&self, name: &str) -> RestoreStatus {
        let done = wait_for_restore(&self.restores, name, RUN_TIMEOUT).await;
        let status = done.status.unwrap();
        eprintln!(
            "restore {name}: {:?} {:?} counts {:?} failed {:?}",
            status.phase, status.message, status.resource_counts, status.failed_resources
        );
        status
    }

    /// Creates a Restore with `spec` and waits until it finishes.
    pub async fn restore(&self, name: &str, spec: Value) -> RestoreStatus {
        self.create_restore(name, spec).await;
        self.wait_restore(name).await
    }

    /// [`Scene::restore`], also returning every phase the Restore's status went through (from a
    /// watch started before the Restore exists, so no write is missed).
    pub async fn restore_with_phases(
        &self,
        name: &str,
        spec: Value,
    ) -> (RestoreStatus, Vec<RestorePhase>) {
        use futures::StreamExt;
        use kube::api::{WatchEvent, WatchParams};
        let list = self.restores.list(&ListParams::default()).await.unwrap();
        let version = list.metadata.resource_version.unwrap_or_default();
        let stream = self
            .restores
            .watch(
                &WatchParams::default().fields(&format!("metadata.name={name}")),
                &version,
            )
            .await
            .unwrap();
        let collector = tokio::spawn(async move {
            let mut phases: Vec<RestorePhase> = Vec::new();
            let mut stream = std::pin::pin!(stream);
            while let Some(Ok(event)) = stream.next().await {
                if let WatchEvent::Added(r) | WatchEvent::Modified(r) = event
                    && let Some(phase) = r.status.and_then(|s| s.phase)
                {
                    if phases.last() != Some(&phase) {
                        phases.push(phase);
                    }
                    if cluster_backup::controller::restore::is_finished(Some(phase)) {
                        break;
                    }
                }
            }
            phases
        });
        let status = self.restore(name, spec).await;
        let phases = tokio::time::timeout(Duration::from_secs(30), collector)
            .await
            .expect("watch saw the final phase")
            .unwrap();
        (status, phases)
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

impl Scene {
    /// Every Event about the `kind` (`Backup`, `Restore`) object `name` in the scene's
    /// namespace.
    pub async fn events(&self, kind: &str, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), self.namespace());
        api.list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some(kind)
            })
            .collect()
    }

    /// Waits for a Warning Event `reason` about `kind` `name` and returns its note.
    pub async fn warning_event(&self, kind: &str, name: &str, reason: &str) -> String {
        let what = format!("a Warning event {reason} for {kind} {name}");
        poll_until(&what, Duration::from_secs(30), || async {
            let events = self.events(kind, name).await;
            if let Some(event) = events.iter().find(|e| {
                e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some("Warning")
            }) {
                return Ok(event.note.clone().unwrap_or_default());
            }
            let seen: Vec<_> = events
                .iter()
                .map(|e| (e.type_.clone(), e.reason.clone(), e.note.clone()))
                .collect();
            Err(format!("events: {seen:#?}"))
        })
        .await
    }

    /// Waits until `kind` `name` has Events with every reason of `reasons`; returns all
    /// reasons.
    pub async fn event_reasons(&self, kind: &str, name: &str, reasons: &[&str]) -> Vec<String> {
        let what = format!("{kind} {name}: Events {reasons:?}");
        poll_until(&what, Duration::from_secs(30), || async {
            let found: Vec<String> = self
                .events(kind, name)
                .await
                .into_iter()
                .map(|e| e.reason.unwrap_or_default())
                .collect();
            if reasons.iter().all(|r| found.iter().any(|f| f == r)) {
                return Ok(found);
            }
            Err(format!("found {found:?}"))
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// The design document's samples, made local
// ---------------------------------------------------------------------------------------------

impl Scene {
    /// The document `name` of `config/samples/<file>`, endpoints made local and
    /// metadata.namespace set to this scene's.
    pub fn sample(&self, file: &str, name: &str) -> Value {
        let mut doc = self
            .env
            .sample_documents(file)
            .into_iter()
            .find(|d| d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{file} has no document named {name}"));
        doc["metadata"]["namespace"] = json!(self.namespace());
        doc
    }

    /// Points a sample's storage location at this test's bucket (its endpoint is already the
    /// local S3 server), with the real keys where it has inline ones.
    fn localize_location(&self, location: &mut Value) {
        assert_loopback(
            location["endpoint"]
                .as_str()
                .expect("sample has an endpoint"),
        );
        location["bucket"] = json!(self.bucket.name);
        if location.get("accessKey").is_some() {
            location["accessKey"] = json!(self.env.s3_access_key);
            location["secretKey"] = json!(self.env.s3_secret_key);
        }
    }

    /// An example Backup from `config/samples/<file>`, made local: endpoint → local S3 server,
    /// metadata.namespace → this test's namespace, bucket → this test's bucket, inline keys →
    /// the real ones, and every namespace NAME the example backs up renamed as `renames` says
    /// (each rename must hit, so a changed sample cannot silently pass).
    pub fn backup_sample(&self, file: &str, name: &str, renames: &[(&str, &str)]) -> Value {
        let mut doc = self.sample(file, name);
        self.localize_location(&mut doc["spec"]["storageLocation"]);
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

    /// An example Restore from `config/samples/<file>`, made local like
    /// [`Scene::backup_sample`], with backupPath → `path` and every namespace NAME in
    /// `spec.target` renamed as `renames` says (each one it names must have a rename).
    pub fn restore_sample(
        &self,
        file: &str,
        name: &str,
        path: &str,
        renames: &[(&str, &str)],
    ) -> Value {
        let mut doc = self.sample(file, name);
        self.localize_location(&mut doc["spec"]["source"]["storageLocation"]);
        doc["spec"]["source"]["backupPath"] = json!(path);
        let rename = |ns: &str| -> String {
            renames
                .iter()
                .find(|(from, _)| *from == ns)
                .map(|(_, to)| to.to_string())
                .unwrap_or_else(|| panic!("{name}: no rename for namespace {ns}"))
        };
        let target = &mut doc["spec"]["target"];
        // `get_mut`, not indexing: indexing a missing key would insert `null`.
        if let Some(list) = target.get_mut("namespaces").and_then(Value::as_array_mut) {
            for ns in list {
                *ns = json!(rename(ns.as_str().unwrap()));
            }
        }
        if let Some(map) = target
            .get("namespaceMapping")
            .and_then(Value::as_object)
            .cloned()
        {
            target["namespaceMapping"] = map
                .iter()
                .map(|(k, v)| (rename(k), json!(rename(v.as_str().unwrap()))))
                .collect::<serde_json::Map<String, Value>>()
                .into();
        }
        doc
    }
}
