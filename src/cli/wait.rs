//! `--wait`: follows a Backup's run or a Restore until it ends, with a progress bar on a
//! terminal (objects, bytes, rate, ETA from the status' progress) and plain lines otherwise.
//! Ctrl-C stops the waiting only; the operator's run goes on, and the CLI says so.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use kube::Api;

use super::output;
use kube::ResourceExt as _;

use crate::api::{Backup, BackupPhase, BackupRun, RUN_NOW_ANNOTATION, Restore, RestorePhase};

/// How often the object is read again.
const POLL: Duration = Duration::from_millis(500);
/// Without a terminal, a progress line at most this often (and on every phase change).
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// What the waiting shows: a bar on a terminal, lines on stderr otherwise.
enum Display {
    Bar(ProgressBar),
    Plain {
        last: Option<String>,
        printed: std::time::Instant,
    },
}

impl Display {
    fn new() -> Display {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            Display::Bar(bar)
        } else {
            Display::Plain {
                last: None,
                printed: std::time::Instant::now(),
            }
        }
    }

    /// `done`/`total` objects (total unknown: 0), `bytes`, and a phase word.
    fn update(&mut self, phase: &str, done: u64, total: u64, bytes: Option<u64>) {
        let size = bytes
            .map(|b| format!(", {}", output::bytes(b)))
            .unwrap_or_default();
        match self {
            Display::Bar(bar) => {
                if total > 0 {
                    if bar.length() != Some(total) {
                        bar.set_length(total);
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{spinner} {msg:12} [{bar:30}] {pos}/{len} objects{prefix} ({per_sec}, ETA {eta})",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                    }
                } else if bar.length().is_some() {
                    bar.unset_length();
                }
                if total == 0 {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {msg:12} {pos} objects{prefix} ({per_sec})",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                }
                bar.set_message(phase.to_string());
                bar.set_prefix(size);
                bar.set_position(done);
            }
            Display::Plain { last, printed } => {
                let line = if total > 0 {
                    format!("{phase}: {done}/{total} objects{size}")
                } else {
                    format!("{phase}: {done} objects{size}")
                };
                let phase_changed = last
                    .as_deref()
                    .map(|l| !l.starts_with(&format!("{phase}:")))
                    != Some(false);
                if phase_changed
                    || (last.as_deref() != Some(line.as_str()) && printed.elapsed() >= PLAIN_EVERY)
                {
                    eprintln!("{line}");
                    *printed = std::time::Instant::now();
                    *last = Some(line);
                }
            }
        }
    }

    /// The bar (a handle to it), to clear it from outside the loop that updates it.
    fn bar(&self) -> Option<ProgressBar> {
        match self {
            Display::Bar(bar) => Some(bar.clone()),
            Display::Plain { .. } => None,
        }
    }
}

/// Waits for `ctrl_c` or `done`; `None` when interrupted (after saying the run goes on).
async fn until_done_or_interrupted<T>(
    bar: Option<ProgressBar>,
    what: &str,
    done: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    let finish = || {
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
    };
    tokio::select! {
        result = done => {
            finish();
            result.map(Some)
        }
        _ = tokio::signal::ctrl_c() => {
            finish();
            eprintln!("Stopped waiting. {what} goes on in the cluster; follow it with `cluster-backup {} get`.",
                if what.starts_with("The restore") { "restore" } else { "backup" });
            Ok(None)
        }
    }
}

/// Reasons of a Backup's `Ready` condition that mean no run will start until the spec changes.
const INVALID: [&str; 2] = ["InvalidSpec", "InvalidSchedule"];

/// Reads consecutive failures tolerated while waiting (an API server restarting, a token
/// refreshed): 20 reads, about 10 s.
const READ_FAILURES: u32 = 20;

/// How a waited Backup run ended.
pub struct BackupWaited {
    pub backup: Backup,
    /// The run waited for (`None`: the spec is invalid and no run started).
    pub run: Option<BackupRun>,
}

/// Whether the Backup will not run as it is: the spec of its current generation is invalid.
/// A run-now request still runs despite `InvalidSpec` (the operator checks that spec again when
/// it runs: a missing type may have been installed since), so for `run_now` only an invalid
/// schedule counts.
fn invalid_now(backup: &Backup, run_now: bool) -> bool {
    let reasons: &[&str] = if run_now { &INVALID[1..] } else { &INVALID };
    let status = backup.status.as_ref();
    status.and_then(|s| s.phase) == Some(BackupPhase::Failed)
        && status.and_then(|s| s.observed_generation) == backup.metadata.generation
        && status.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready" && c.status == "False" && reasons.contains(&c.reason.as_str())
            })
        })
}
/// Reads `name`, tolerating a few failed reads in a row.
async fn read<K>(api: &Api<K>, name: &str, failures: &mut u32) -> anyhow::Result<Option<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(object) => {
            *failures = 0;
            Ok(Some(object))
        }
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            Err(anyhow::anyhow!("{name} was deleted while waiting for it"))
        }
        Err(err) if *failures < READ_FAILURES => {
            *failures += 1;
            tracing::debug!(error = %err, "read failed while waiting; trying again");
            Ok(None)
        }
        Err(err) => Err(anyhow::anyhow!(
            "cannot read {name} ({err}); how the run ends is unknown: see `cluster-backup backup get {name}` or `restore get {name}`"
        )),
    }
}

/// What one read of a waited Backup says.
#[derive(Debug, PartialEq)]
enum Step {
    /// The run waited for ended (`None`: no run will start, the spec is invalid).
    Done(Option<Box<BackupRun>>),
    /// The run waited for is running: objects and bytes so far.
    Running { objects: u64, bytes: u64 },
    /// Not started yet; the Backup's phase.
    Waiting(String),
    /// Another run-now value replaced ours before the operator took it.
    Superseded(String),
    /// The run followed is recorded nowhere any more (the Backup was deleted and created
    /// again under the same name).
    Lost(String),
}

const MANUAL: &str = "manual";
const RETRY: &str = "retry";

/// Decides from one read of the Backup. `trigger`: the run-now value set (else the first run
/// is waited for); `followed`: the backup path of the run being followed, once seen running.
/// The path tells it from runs that start after it (a schedule slot that fell due meanwhile,
/// a second run-now request); an attempt interrupted by an operator restart is followed into
/// its retry.
fn backup_step(backup: &Backup, trigger: Option<&str>, followed: &mut Option<String>) -> Step {
    let status = backup.status.clone().unwrap_or_default();
    let runs = || status.last_run.iter().chain(status.history.iter());
    let current = status.current_run.as_ref();

    if let Some(path) = followed.clone() {
        if let Some(run) = current.filter(|run| run.backup_path == path) {
            return Step::Running {
                objects: u64::try_from(run.objects).unwrap_or(0),
                bytes: u64::try_from(run.bytes).unwrap_or(0),
            };
        }
        let Some(ended) = runs().find(|r| r.backup_path == path) else {
            return Step::Lost(path);
        };
        // Interrupted by a restart and run again under a new path: follow the retry.
        if let Some(retry) = current.filter(|run| run.trigger == RETRY)
            && status.last_run.as_ref().map(|r| r.backup_path.as_str()) == Some(path.as_str())
        {
            *followed = Some(retry.backup_path.clone());
            return Step::Running {
                objects: u64::try_from(retry.objects).unwrap_or(0),
                bytes: u64::try_from(retry.bytes).unwrap_or(0),
            };
        }
        return Step::Done(Some(Box::new(ended.clone())));
    }

    let annotation = backup.annotations().get(RUN_NOW_ANNOTATION).cloned();
    let recorded = match trigger {
        Some(value) => status.last_manual_trigger.as_deref() == Some(value),
        None => true,
    };
    if let Some(value) = trigger
        && !recorded
        && annotation.as_deref() != Some(value)
    {
        return Step::Superseded(annotation.unwrap_or_else(|| "removed".into()));
    }
    // Ours: any run for a first run; a manual run, or the retry of one, for run-now.
    let ours = |run: &BackupRun| match trigger {
        None => true,
        Some(_) => {
            run.trigger == MANUAL
                || (run.trigger == RETRY
                    && status
                        .last_run
                        .as_ref()
                        .is_some_and(|r| r.trigger == MANUAL))
        }
    };
    if recorded {
        match current {
            Some(run) if ours(run) => {
                *followed = Some(run.backup_path.clone());
                return Step::Running {
                    objects: u64::try_from(run.objects).unwrap_or(0),
                    bytes: u64::try_from(run.bytes).unwrap_or(0),
                };
            }
            // Ours ended already (run-now is taken only when no run is going, and recorded
            // with its run): the newest manual run.
            _ => {
                if let Some(run) = runs().find(|r| trigger.is_none() || r.trigger == MANUAL) {
                    return Step::Done(Some(Box::new(run.clone())));
                }
            }
        }
    }
    if invalid_now(backup, trigger.is_some()) {
        return Step::Done(None);
    }
    Step::Waiting(output::shown(status.phase, "New"))
}

/// Waits until one run of the Backup ends, and says which ([`backup_step`]). `None`:
/// interrupted with Ctrl-C.
pub async fn backup(
    api: &Api<Backup>,
    name: &str,
    trigger: Option<&str>,
) -> anyhow::Result<Option<BackupWaited>> {
    let mut display = Display::new();
    let bar = display.bar();
    let follow = async move {
        // What the previous run stored: the expected total, for an ETA.
        let mut expected = None;
        let mut followed = None;
        let mut failures = 0;
        loop {
            let Some(backup) = read(api, name, &mut failures).await? else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            let previous = backup
                .status
                .as_ref()
                .and_then(|s| s.last_run.as_ref())
                .map(|r| u64::try_from(r.objects).unwrap_or(0));
            match backup_step(&backup, trigger, &mut followed) {
                Step::Done(run) => {
                    return Ok(BackupWaited {
                        backup,
                        run: run.map(|run| *run),
                    });
                }
                Step::Lost(path) => {
                    return Err(anyhow::anyhow!(
                        "the run at {path} is no longer recorded (was {name} deleted and created again?); see `cluster-backup backup get {name}`"
                    ));
                }
                Step::Superseded(value) => {
                    return Err(anyhow::anyhow!(
                        "another run-now request ({value}) replaced this one before it ran; follow it with `cluster-backup backup get {name}`"
                    ));
                }
                Step::Running { objects, bytes } => {
                    display.update("Running", objects, expected.unwrap_or(0), Some(bytes));
                }
                Step::Waiting(phase) => {
                    expected = previous;
                    display.update(&phase, 0, 0, None);
                }
            }
            tokio::time::sleep(POLL).await;
        }
    };
    until_done_or_interrupted(bar, "The backup", follow).await
}

/// Waits until the Restore ends. `None`: interrupted with Ctrl-C.
pub async fn restore(api: &Api<Restore>, name: &str) -> anyhow::Result<Option<Restore>> {
    let mut display = Display::new();
    let bar = display.bar();
    let follow = async move {
        let mut failures = 0;
        loop {
            let Some(restore) = read(api, name, &mut failures).await? else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            let status = restore.status.clone().unwrap_or_default();
            match status.phase {
                Some(
                    RestorePhase::Completed | RestorePhase::PartiallyFailed | RestorePhase::Failed,
                ) => {
                    return Ok(restore);
                }
                phase => {
                    let progress = status.progress.clone().unwrap_or_default();
                    display.update(
                        &output::shown(phase, "New"),
                        u64::try_from(progress.processed).unwrap_or(0),
                        u64::try_from(progress.total).unwrap_or(0),
                        None,
                    );
                }
            }
            tokio::time::sleep(POLL).await;
        }
    };
    until_done_or_interrupted(bar, "The restore", follow).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(path: &str, trigger: &str, done: bool) -> serde_json::Value {
        let mut run = json!({
            "backupPath": path, "trigger": trigger, "startTime": "2026-11-30T00:00:00Z",
            "objects": 3, "bytes": 10, "failed": 0,
        });
        if done {
            run["completionTime"] = json!("2026-11-30T00:00:01Z");
            run["result"] = json!("Completed");
        }
        run
    }

    fn backup(annotation: Option<&str>, status: serde_json::Value) -> Backup {
        let mut doc = json!({
            "apiVersion": "backup.cnd.dk/v1", "kind": "Backup",
            "metadata": { "name": "b", "namespace": "n", "generation": 1 },
            "spec": { "source": {}, "storageLocation": { "bucket": "x" } },
            "status": status,
        });
        if let Some(value) = annotation {
            doc["metadata"]["annotations"] = json!({ RUN_NOW_ANNOTATION: value });
        }
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn a_manual_run_is_told_from_a_scheduled_run_that_follows_it() {
        let mut followed = None;
        // Not taken yet.
        let waiting = backup(
            Some("t1"),
            json!({ "phase": "Scheduled", "lastRun": run("p0", "schedule", true) }),
        );
        assert_eq!(
            backup_step(&waiting, Some("t1"), &mut followed),
            Step::Waiting("Scheduled".into())
        );
        // Ours runs.
        let running = backup(
            Some("t1"),
            json!({
                "phase": "Running", "lastManualTrigger": "t1",
                "currentRun": run("p1", "manual", false), "lastRun": run("p0", "schedule", true),
            }),
        );
        assert!(matches!(
            backup_step(&running, Some("t1"), &mut followed),
            Step::Running { objects: 3, .. }
        ));
        assert_eq!(followed.as_deref(), Some("p1"));
        // A schedule slot started right after ours: ours is found in lastRun by its path.
        let next = backup(
            Some("t1"),
            json!({
                "phase": "Running", "lastManualTrigger": "t1",
                "currentRun": run("p2", "schedule", false), "lastRun": run("p1", "manual", true),
            }),
        );
        match backup_step(&next, Some("t1"), &mut followed) {
            Step::Done(Some(run)) => assert_eq!(run.backup_path, "p1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_run_over_between_two_reads_is_found_at_once_even_while_a_scheduled_one_runs() {
        let mut followed = None;
        let over = backup(
            Some("t1"),
            json!({
                "phase": "Running", "lastManualTrigger": "t1",
                "currentRun": run("p2", "schedule", false),
                "lastRun": run("p1", "manual", true),
            }),
        );
        match backup_step(&over, Some("t1"), &mut followed) {
            Step::Done(Some(run)) => assert_eq!(run.backup_path, "p1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_second_run_now_does_not_hide_the_end_of_the_first() {
        let mut followed = Some("p1".to_string());
        // t2 was set while t1 ran, and its run started right after t1's ended.
        let next = backup(
            Some("t2"),
            json!({
                "phase": "Running", "lastManualTrigger": "t2",
                "currentRun": run("p2", "manual", false), "lastRun": run("p1", "manual", true),
            }),
        );
        match backup_step(&next, Some("t1"), &mut followed) {
            Step::Done(Some(run)) => assert_eq!(run.backup_path, "p1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_attempt_interrupted_by_a_restart_is_followed_into_its_retry() {
        let mut followed = Some("p1".to_string());
        let mut interrupted = run("p1", "manual", true);
        interrupted["result"] = json!("Failed");
        let retried = backup(
            Some("t1"),
            json!({
                "phase": "Running", "lastManualTrigger": "t1",
                "currentRun": run("p1b", "retry", false), "lastRun": interrupted,
            }),
        );
        assert!(matches!(
            backup_step(&retried, Some("t1"), &mut followed),
            Step::Running { .. }
        ));
        assert_eq!(followed.as_deref(), Some("p1b"));
        let done = backup(
            Some("t1"),
            json!({
                "phase": "Scheduled", "lastManualTrigger": "t1",
                "lastRun": run("p1b", "retry", true), "history": [run("p1b", "retry", true)],
            }),
        );
        match backup_step(&done, Some("t1"), &mut followed) {
            Step::Done(Some(run)) => assert_eq!(run.backup_path, "p1b"),
            other => panic!("{other:?}"),
        }
        // A Backup created again under the same name does not hold the run any more.
        let recreated = backup(None, json!({ "phase": "New" }));
        assert_eq!(
            backup_step(&recreated, Some("t1"), &mut followed),
            Step::Lost("p1b".into())
        );
    }

    #[test]
    fn a_replaced_request_and_an_invalid_spec_end_the_wait() {
        let mut followed = None;
        let replaced = backup(
            Some("t2"),
            json!({ "phase": "Scheduled", "lastManualTrigger": "t0" }),
        );
        assert_eq!(
            backup_step(&replaced, Some("t1"), &mut followed),
            Step::Superseded("t2".into())
        );
        let invalid = backup(
            Some("t1"),
            json!({
                "phase": "Failed", "observedGeneration": 1,
                "conditions": [{ "type": "Ready", "status": "False", "reason": "InvalidSchedule",
                                 "message": "bad cron", "lastTransitionTime": "2026-11-30T00:00:00Z" }],
            }),
        );
        assert_eq!(
            backup_step(&invalid, Some("t1"), &mut followed),
            Step::Done(None)
        );
        assert_eq!(backup_step(&invalid, None, &mut None), Step::Done(None));
        // An invalid spec (a type not installed yet) ends a first-run wait, not a run-now one:
        // the operator runs the request and checks the spec again.
        let mut spec = invalid.clone();
        if let Some(status) = spec.status.as_mut() {
            status.conditions[0].reason = "InvalidSpec".into();
        }
        assert_eq!(backup_step(&spec, None, &mut None), Step::Done(None));
        assert!(matches!(
            backup_step(&spec, Some("t1"), &mut None),
            Step::Waiting(_)
        ));
    }
}
