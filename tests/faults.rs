//! Fault injection against real processes on 127.0.0.1: the operator runs as its own process
//! (`cluster-backup run`) and is killed (`kill -9`, or an abort at an exact crash point, see
//! `cluster_backup::engine::faults`), the S3 server is stopped mid-run, and the API server is killed
//! and restarted with the same flags, port, certificates and etcd. After every fault the
//! stored backups and the Backup/Restore status are checked from the outside:
//!
//! * corrupt-but-complete: a run with a manifest whose objects are missing, differ from the
//!   manifest's sha256, or are fewer than the source holds — or a Completed status without
//!   such a manifest;
//! * duplicate: more than one complete run for one trigger of a Backup;
//! * stuck: a Backup or Restore that does not reach a final phase in time;
//! * pick-up: seconds from the API server answering again to a new Backup getting a status.
//!
//! A run the operator is killed during is run again at most `--run-retries` times (default 1).
//! A run interrupted more often than that ends `Failed` saying it was interrupted N times and
//! is not run again: that is the bound working, so it counts as correct (`given up at the
//! retry bound`), never as stuck or corrupt, provided it left no manifest and its status
//! claims no backup.
//!
//! The API server goes away before a run, during a run, and exactly while a run lists (held
//! there by a pause point), which must be retried into a complete backup.
//!
//! It needs its own control plane, `faults` (`scripts/testenv.sh up faults`; `scripts/test.sh`
//! starts it), because it kills that API server. Sizes come from the environment:
//! `FAULTS_OBJECTS` (default 600), `FAULTS_RANDOM_KILLS` (default 3), `FAULTS_SEED`;
//! `FAULTS_REPORT=<file>` writes the figures as JSON (`scripts/faults.sh` turns them into
//! FAULTS.md). Targets: 0 corrupt-but-complete, 0 duplicates, 0 stuck (asserted), pick-up
//! ≤ 5 s (a speed target: measured and reported, never asserted).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use common::process::OperatorProcess;
use std::time::{Duration, Instant};

use cluster_backup::api::{Backup, BackupPhase, Restore, RunResult};
use cluster_backup::core::layout;
use cluster_backup::core::manifest::Manifest;
use cluster_backup::engine::faults::{CRASH_ENV, PAUSE_ENV};
use cluster_backup::storage::Storage;
use common::{TestEnv, TestNamespace, repo_root, short_unique_name, wait_for_restore};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const GROUND: &str = "faults";
/// A Backup or Restore that has not finished after this long is stuck.
const FINISH_TIMEOUT: Duration = Duration::from_secs(120);
/// Target: a new Backup is picked up within this long after the API server is back.
const PICKUP_TARGET: Duration = Duration::from_secs(5);

/// Figures of one suite run.
#[derive(Default, Debug, serde::Serialize)]
struct Figures {
    objects_per_backup: usize,
    seed: u64,
    backup_runs_checked: usize,
    restores_checked: usize,
    operator_kills: usize,
    api_server_kills: usize,
    s3_outages: usize,
    corrupt_but_complete: usize,
    duplicates: usize,
    stuck: usize,
    adopted_after_crash: usize,
    given_up_at_retry_bound: usize,
    pickup_seconds: Vec<f64>,
    problems: Vec<String>,
}

/// `cluster-backup run` as its own process, watching one namespace.
struct Operator(OperatorProcess);

impl Operator {
    fn start(env: &TestEnv, namespace: &str, crash_at: Option<&str>, log: &str) -> Operator {
        Self::start_with(env, namespace, crash_at, None, log)
    }

    fn start_with(
        env: &TestEnv,
        namespace: &str,
        crash_at: Option<&str>,
        pause_at: Option<&str>,
        log: &str,
    ) -> Operator {
        let faults: Vec<(&str, &str)> = [(CRASH_ENV, crash_at), (PAUSE_ENV, pause_at)]
            .into_iter()
            .filter_map(|(var, point)| point.map(|p| (var, p)))
            .collect();
        Operator(OperatorProcess::start(
            env,
            namespace,
            &[],
            &faults,
            "faults-logs",
            log,
        ))
    }

    /// `kill -9`.
    fn kill(mut self) {
        self.0.kill();
    }

    /// Waits for the process to end by itself (a crash point); false on timeout (then killed).
    async fn wait_exit(mut self, timeout: Duration) -> bool {
        let exited = self.0.wait_exit(timeout).await.is_some();
        self.kill();
        exited
    }
}

fn testenv(args: &[&str]) {
    let status = Command::new(repo_root().join("scripts/testenv.sh"))
        .args(args)
        .status()
        .expect("run scripts/testenv.sh");
    assert!(status.success(), "scripts/testenv.sh {args:?} failed");
}

/// A small deterministic generator (the seed is printed, so a run can be repeated).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Suite {
    env: TestEnv,
    client: Client,
    control: TestNamespace,
    source: TestNamespace,
    bucket: String,
    storage: Storage,
    objects: usize,
    figures: Figures,
    counter: usize,
}

impl Suite {
    fn backups(&self) -> Api<Backup> {
        Api::namespaced(self.client.clone(), &self.control.name)
    }

    fn next_name(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{}", self.counter)
    }

    async fn create_backup(&self, name: &str) {
        let backup: Backup = serde_json::from_value(json!({
            "apiVersion": "backup.cnd.dk/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": self.control.name},
            "spec": {
                "source": {"namespaces": [self.source.name], "resourceTypes": ["configmaps"]},
                "storageLocation": self.env.storage_location(&self.bucket),
            }
        }))
        .unwrap();
        self.backups()
            .create(&PostParams::default(), &backup)
            .await
            .unwrap();
    }

    /// Waits for a one-shot Backup to reach a final phase; `None` (and counted) if stuck.
    async fn wait_final(&mut self, name: &str) -> Option<Backup> {
        let deadline = Instant::now() + FINISH_TIMEOUT;
        loop {
            if let Ok(backup) = self.backups().get(name).await {
                let phase = backup.status.as_ref().and_then(|s| s.phase);
                if matches!(
                    phase,
                    Some(
                        BackupPhase::Completed | BackupPhase::PartiallyFailed | BackupPhase::Failed
                    )
                ) {
                    return Some(backup);
                }
            }
            if Instant::now() > deadline {
                self.problem(format!(
                    "stuck: Backup {name} not finished in {FINISH_TIMEOUT:?}"
                ));
                self.figures.stuck += 1;
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn problem(&mut self, message: String) {
        eprintln!("FAULTS PROBLEM: {message}");
        self.figures.problems.push(message);
    }

    /// Checks one finished Backup against the bucket. `expect_complete`: the fault allows
    /// the run to end Completed (a storage outage may end it Failed instead).
    async fn check_backup(&mut self, name: &str, backup: &Backup, expect_complete: bool) {
        self.figures.backup_runs_checked += 1;
        let status = backup.status.clone().unwrap_or_default();
        let prefix = layout::backup_prefix(&self.control.name, name);
        let runs = self.storage.list_dirs(&prefix).await.unwrap();
        let mut complete = Vec::new();
        for run in &runs {
            // No manifest: an interrupted run, never presented as restorable.
            if let Ok(bytes) = self.storage.get(&layout::manifest_key(run)).await {
                match Manifest::from_bytes(&bytes) {
                    Ok(manifest) => complete.push((run.clone(), manifest)),
                    Err(err) => {
                        self.figures.corrupt_but_complete += 1;
                        self.problem(format!("{run}: unreadable manifest: {err}"));
                    }
                }
            }
        }
        // One trigger, at most one complete run.
        if complete.len() > 1 {
            self.figures.duplicates += complete.len() - 1;
            let paths: Vec<&String> = complete.iter().map(|(p, _)| p).collect();
            self.problem(format!(
                "{name}: {} complete runs: {paths:?}",
                complete.len()
            ));
        }
        for (run, manifest) in &complete {
            if let Err(message) = self.verify_run(run, manifest).await {
                self.figures.corrupt_but_complete += 1;
                self.problem(format!("{run}: {message}"));
            }
        }
        let completed = status.phase == Some(BackupPhase::Completed);
        match (completed, complete.first()) {
            (true, Some((run, _))) if status.backup_path.as_deref() == Some(run.as_str()) => {}
            (true, found) => {
                self.figures.corrupt_but_complete += 1;
                self.problem(format!(
                    "{name}: Completed with backupPath {:?}, but the bucket's complete run is {:?}",
                    status.backup_path,
                    found.map(|(p, _)| p)
                ));
            }
            (false, Some((run, _))) => {
                self.problem(format!(
                    "{name}: phase {:?} although {run} is complete",
                    status.phase
                ));
            }
            (false, None) if given_up_at_retry_bound(status.message.as_deref()) => {
                self.figures.given_up_at_retry_bound += 1;
                if status.backup_count != 0 || status.backup_path.is_some() {
                    self.figures.corrupt_but_complete += 1;
                    self.problem(format!(
                        "{name}: given up, yet its status names a backup: {:?}",
                        status.backup_path
                    ));
                }
            }
            (false, None) if expect_complete => {
                self.problem(format!(
                    "{name}: ended {:?}: {:?}",
                    status.phase, status.message
                ));
            }
            (false, None) => {}
        }
        if status.phase == Some(BackupPhase::PartiallyFailed) {
            self.figures.corrupt_but_complete += 1;
            self.problem(format!(
                "{name}: PartiallyFailed (a fault became item errors): {:?}",
                status.last_run.as_ref().map(|r| &r.errors)
            ));
        }
        if status
            .last_run
            .as_ref()
            .and_then(|r| r.message.as_deref())
            .is_some_and(|m| m.contains("found complete after an operator restart"))
        {
            self.figures.adopted_after_crash += 1;
        }
    }

    /// Every object of the manifest is in the bucket with its recorded sha256, and the run
    /// holds every object of the source namespace.
    async fn verify_run(&self, run: &str, manifest: &Manifest) -> Result<(), String> {
        if manifest.result != "Completed" {
            return Err(format!("manifest result {}", manifest.result));
        }
        if manifest.objects.len() != self.objects || manifest.total_objects as usize != self.objects
        {
            return Err(format!(
                "{} objects in the manifest, the source has {}",
                manifest.objects.len(),
                self.objects
            ));
        }
        let storage = &self.storage;
        futures::stream::iter(manifest.objects.iter())
            .map(|entry| async move {
                let bytes = storage
                    .get(&format!("{run}/{}", entry.key))
                    .await
                    .map_err(|e| format!("{}: {e}", entry.key))?;
                entry.verify(&bytes).map_err(|e| e.to_string())
            })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    /// One Backup, the operator killed at `crash_at`, then started again normally.
    async fn crash_point(&mut self, crash_at: &str) {
        let name = self.next_name("point");
        let crashing = Operator::start(&self.env, &self.control.name, Some(crash_at), &name);
        self.create_backup(&name).await;
        let crashed = crashing.wait_exit(FINISH_TIMEOUT).await;
        if !crashed {
            self.problem(format!(
                "{name}: the operator never reached crash point {crash_at}"
            ));
        }
        self.figures.operator_kills += 1;
        let operator = Operator::start(&self.env, &self.control.name, None, &name);
        if let Some(backup) = self.wait_final(&name).await {
            self.check_backup(&name, &backup, true).await;
            let status = backup.status.unwrap_or_default();
            let adopted = matches!(crash_at, "after-manifest" | "before-final-status");
            let runs = status.history.len();
            println!(
                "crash at {crash_at:<20} → {:?}, {runs} run(s) in history: {:?}",
                status.phase,
                status
                    .history
                    .iter()
                    .map(|r| (r.trigger.clone(), r.result))
                    .collect::<Vec<_>>()
            );
            if adopted && (runs != 1 || status.backup_count != 1) {
                self.figures.duplicates += 1;
                self.problem(format!(
                    "{name}: crash at {crash_at} ran the backup again ({runs} runs, backupCount {})",
                    status.backup_count
                ));
            }
        }
        operator.kill();
    }

    /// One Backup, the operator `kill -9`ed after a random delay, then started again.
    async fn random_kill(&mut self, rng: &mut Rng, window: Duration) {
        let name = self.next_name("random");
        let operator = Operator::start(&self.env, &self.control.name, None, &name);
        self.create_backup(&name).await;
        let delay = Duration::from_millis(rng.below(window.as_millis() as u64));
        tokio::time::sleep(delay).await;
        operator.kill();
        self.figures.operator_kills += 1;
        let operator = Operator::start(&self.env, &self.control.name, None, &name);
        if let Some(backup) = self.wait_final(&name).await {
            self.check_backup(&name, &backup, true).await;
        }
        operator.kill();
    }

    /// The S3 server stops while a backup runs; the run fails cleanly or completes, and the
    /// next run (run-now) completes.
    async fn s3_outage(&mut self) {
        let name = self.next_name("s3down");
        let operator = Operator::start(&self.env, &self.control.name, None, &name);
        self.create_backup(&name).await;
        self.wait_running(&name).await;
        testenv(&["s3-stop"]);
        self.figures.s3_outages += 1;
        let first = self.wait_final(&name).await;
        testenv(&["s3-start"]);
        if let Some(backup) = first {
            let status = backup.status.clone().unwrap_or_default();
            println!(
                "S3 outage mid-run → {:?}: {:?}",
                status.phase, status.message
            );
            if status.phase == Some(BackupPhase::Completed) {
                self.check_backup(&name, &backup, true).await;
            }
            // Run again now that storage is back: it must complete.
            let patch =
                json!({"metadata": {"annotations": {"backup.cnd.dk/run-now": "after-outage"}}});
            self.backups()
                .patch(
                    &name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(&patch),
                )
                .await
                .unwrap();
            let deadline = Instant::now() + FINISH_TIMEOUT;
            loop {
                let backup = self.backups().get(&name).await.unwrap();
                let status = backup.status.clone().unwrap_or_default();
                if status.last_manual_trigger.as_deref() == Some("after-outage")
                    && status.current_run.is_none()
                {
                    let ok = status.last_run.as_ref().and_then(|r| r.result)
                        == Some(RunResult::Completed);
                    if !ok {
                        self.problem(format!(
                            "{name}: run after the S3 outage ended {:?}",
                            status.last_run
                        ));
                    }
                    break;
                }
                if Instant::now() > deadline {
                    self.figures.stuck += 1;
                    self.problem(format!("{name}: run after the S3 outage did not finish"));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        operator.kill();
    }

    /// The API server is killed (SIGKILL) and started again after `down`, with the same flags,
    /// port, certificates and etcd; returns once it answers.
    async fn api_server_outage(&mut self, down: Duration) {
        testenv(&["apiserver-stop", GROUND]);
        self.figures.api_server_kills += 1;
        tokio::time::sleep(down).await;
        testenv(&["apiserver-start", GROUND]);
    }

    async fn wait_running(&mut self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(b) = self.backups().get(name).await
                && b.status.as_ref().is_some_and(|s| s.current_run.is_some())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.problem(format!("{name}: never started running"));
    }

    /// The API server is killed and restarted while the operator idles; a Backup created once
    /// it answers again should be picked up within [`PICKUP_TARGET`] (measured, not asserted).
    async fn api_restart_before_run(&mut self) {
        let name = self.next_name("apiback");
        let operator = Operator::start(&self.env, &self.control.name, None, &name);
        // Let the operator's watches settle before pulling the server away.
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.api_server_outage(Duration::from_secs(3)).await;
        let back = Instant::now();
        self.create_backup(&name).await;
        let deadline = back + FINISH_TIMEOUT;
        loop {
            if let Ok(b) = self.backups().get(&name).await
                && b.status.is_some()
            {
                break;
            }
            if Instant::now() > deadline {
                self.figures.stuck += 1;
                self.problem(format!(
                    "{name}: never picked up after the API server restart"
                ));
                operator.kill();
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pickup = back.elapsed();
        println!(
            "API server restarted → new Backup picked up after {:.2} s",
            pickup.as_secs_f64()
        );
        // A speed target: reported (and judged in FAULTS.md), never asserted — a loaded
        // machine must not fail the suite. Not picking it up at all is `stuck`.
        self.figures.pickup_seconds.push(pickup.as_secs_f64());
        if pickup > PICKUP_TARGET {
            println!("pick-up took longer than the {PICKUP_TARGET:?} target");
        }
        if let Some(backup) = self.wait_final(&name).await {
            self.check_backup(&name, &backup, true).await;
        }
        operator.kill();
    }

    /// The API server is killed while a backup lists and uploads, and restarted 3 s later.
    async fn api_restart_during_run(&mut self) {
        let name = self.next_name("apimid");
        let operator = Operator::start(&self.env, &self.control.name, None, &name);
        self.create_backup(&name).await;
        self.wait_running(&name).await;
        self.api_server_outage(Duration::from_secs(3)).await;
        if let Some(backup) = self.wait_final(&name).await {
            let status = backup.status.clone().unwrap_or_default();
            println!(
                "API server killed mid-run → {:?}: {:?}",
                status.phase, status.message
            );
            self.check_backup(&name, &backup, false).await;
        }
        operator.kill();
    }

    /// The API server is down exactly when a backup starts listing (the run is held at its
    /// `before-list` pause point while the server is killed) and back 3 s later: the lists are
    /// retried, and the run completes with every object — not PartiallyFailed, not run twice.
    async fn api_down_while_listing(&mut self) {
        let name = self.next_name("apilist");
        let operator = Operator::start_with(
            &self.env,
            &self.control.name,
            None,
            Some("before-list:3"),
            &name,
        );
        self.create_backup(&name).await;
        self.wait_running(&name).await;
        // The run wakes up after 3 s and lists against a dead server for a while.
        self.api_server_outage(Duration::from_secs(5)).await;
        if let Some(backup) = self.wait_final(&name).await {
            let status = backup.status.clone().unwrap_or_default();
            println!(
                "API server down while listing → {:?}: {:?}",
                status.phase, status.message
            );
            self.check_backup(&name, &backup, true).await;
            if status.history.len() != 1 {
                self.figures.duplicates += status.history.len().saturating_sub(1);
                self.problem(format!(
                    "{name}: {} runs for one trigger",
                    status.history.len()
                ));
            }
        }
        operator.kill();
    }

    /// A restore of the newest complete backup into a new namespace, the operator killed
    /// half-way, started again: every object ends up restored, exactly as backed up.
    async fn interrupted_restore(&mut self, backup_name: &str) {
        let name = self.next_name("restore");
        let target = short_unique_name("frt");
        let _cleanup = TestNamespace::adopt(&self.client, &target);
        let crash_at = format!("restore:{}", self.objects / 2);
        let crashing = Operator::start(&self.env, &self.control.name, Some(&crash_at), &name);
        let restore: Restore = serde_json::from_value(json!({
            "apiVersion": "backup.cnd.dk/v1", "kind": "Restore",
            "metadata": {"name": name, "namespace": self.control.name},
            "spec": {
                "source": {"backupName": backup_name},
                "target": {"namespaceMapping": {(self.source.name.clone()): target}},
                "options": {"createNamespaces": true},
            }
        }))
        .unwrap();
        let restores: Api<Restore> = Api::namespaced(self.client.clone(), &self.control.name);
        restores
            .create(&PostParams::default(), &restore)
            .await
            .unwrap();
        let crashed = crashing.wait_exit(FINISH_TIMEOUT).await;
        if !crashed {
            self.problem(format!("{name}: the operator never reached {crash_at}"));
        }
        self.figures.operator_kills += 1;
        let operator = Operator::start(&self.env, &self.control.name, None, &name);
        let done = wait_for_restore(&restores, &name, FINISH_TIMEOUT).await;
        operator.kill();
        self.figures.restores_checked += 1;
        let status = done.status.unwrap_or_default();
        println!(
            "restore interrupted at {crash_at} → {:?}: {:?}",
            status.phase, status.message
        );
        if status.phase == Some(cluster_backup::api::RestorePhase::Failed)
            && given_up_at_retry_bound(status.message.as_deref())
        {
            // Interrupted more often than retried: what it created is partial, as it says.
            self.figures.given_up_at_retry_bound += 1;
            return;
        }
        let source = self.configmaps(&self.source.name).await;
        let restored = self.configmaps(&target).await;
        if restored != source {
            let missing = source.keys().filter(|k| !restored.contains_key(*k)).count();
            self.figures.corrupt_but_complete += 1;
            self.problem(format!(
                "{name}: restored namespace differs from the source ({missing} of {} missing or data differs)",
                source.len()
            ));
        }
        if status.phase != Some(cluster_backup::api::RestorePhase::Completed) {
            self.problem(format!(
                "{name}: ended {:?}: {:?}",
                status.phase, status.message
            ));
        }
    }

    /// name → data of the user's ConfigMaps of a namespace.
    async fn configmaps(&self, namespace: &str) -> BTreeMap<String, serde_json::Value> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let mut out = BTreeMap::new();
        for cm in api.list(&ListParams::default()).await.unwrap() {
            let name = cm.metadata.name.clone().unwrap_or_default();
            if name == "kube-root-ca.crt" {
                continue;
            }
            out.insert(name, json!(cm.data));
        }
        out
    }
}

/// Whether a Backup's or Restore's status message says it ended at the retry bound: it was
/// interrupted more often than the operator retries interrupted runs.
fn given_up_at_retry_bound(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.contains(" was interrupted ") && m.contains("is not run again"))
}

/// Creates `count` ConfigMaps of ~1 KiB in `namespace`, 16 at a time.
async fn seed(client: &Client, namespace: &str, count: usize) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("cm-{i:05}"), "namespace": namespace},
                    "data": {"index": i.to_string(), "payload": "x".repeat(1000)},
                }))
                .unwrap();
                api.create(&PostParams::default(), &cm).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_never_lose_duplicate_or_stall_a_backup() {
    let env = TestEnv::load_named(GROUND);
    let client = env.client().await;
    cluster_backup::controller::install::install(&client, Duration::from_secs(60))
        .await
        .unwrap();
    let objects = env_number("FAULTS_OBJECTS", 600) as usize;
    let random_kills = env_number("FAULTS_RANDOM_KILLS", 3);
    let seed_value = env_number(
        "FAULTS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1,
    );
    let mut rng = Rng(seed_value);
    let control = TestNamespace::new(&client, "faults").await;
    let source = TestNamespace::new(&client, "faults-src").await;
    let bucket = short_unique_name("faults");
    let storage = env.storage(&bucket);
    let started = Instant::now();
    seed(&client, &source.name, objects).await;
    println!(
        "fault suite: {objects} ConfigMaps seeded in {:.1} s (seed {seed_value}, {random_kills} random kills)",
        started.elapsed().as_secs_f64()
    );
    // kube-root-ca.crt, which the controller manager adds to every namespace, is not backed up.
    let expected = objects;
    let mut suite = Suite {
        figures: Figures {
            objects_per_backup: expected,
            seed: seed_value,
            ..Figures::default()
        },
        env,
        client,
        control,
        source,
        bucket,
        storage,
        objects: expected,
        counter: 0,
    };

    // Targeted crash points.
    let half = format!("upload:{}", objects / 2);
    for point in [
        "before-upload",
        half.as_str(),
        "after-manifest",
        "before-final-status",
    ] {
        suite.crash_point(point).await;
    }
    // Random kills inside the time a backup takes (measured on a clean run).
    let name = suite.next_name("clean");
    let operator = Operator::start(&suite.env, &suite.control.name, None, &name);
    let t0 = Instant::now();
    suite.create_backup(&name).await;
    let clean = suite.wait_final(&name).await;
    let window = t0.elapsed() + Duration::from_millis(500);
    operator.kill();
    if let Some(backup) = &clean {
        suite.check_backup(&name, backup, true).await;
    }
    println!(
        "a clean backup takes {:.2} s; random kills fall inside that",
        window.as_secs_f64()
    );
    for _ in 0..random_kills {
        suite.random_kill(&mut rng, window).await;
    }
    suite.interrupted_restore(&name).await;
    suite.s3_outage().await;
    suite.api_restart_before_run().await;
    suite.api_restart_during_run().await;
    suite.api_down_while_listing().await;

    let figures = &suite.figures;
    println!(
        "\n=== fault suite figures ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    println!("objects per backup        {}", figures.objects_per_backup);
    println!("backup runs checked       {}", figures.backup_runs_checked);
    println!("restores checked          {}", figures.restores_checked);
    println!("operator kills            {}", figures.operator_kills);
    println!("API server kills          {}", figures.api_server_kills);
    println!("S3 outages                {}", figures.s3_outages);
    println!("adopted after a crash     {}", figures.adopted_after_crash);
    println!(
        "given up at retry bound   {}",
        figures.given_up_at_retry_bound
    );
    println!("corrupt-but-complete      {}", figures.corrupt_but_complete);
    println!("duplicate runs            {}", figures.duplicates);
    println!("stuck                     {}", figures.stuck);
    println!("pick-up after API restart {:?} s", figures.pickup_seconds);
    if let Ok(path) = std::env::var("FAULTS_REPORT") {
        std::fs::write(
            PathBuf::from(path),
            serde_json::to_string_pretty(figures).unwrap(),
        )
        .unwrap();
    }
    assert!(
        figures.problems.is_empty(),
        "fault suite found problems:\n{}",
        figures.problems.join("\n")
    );
}
