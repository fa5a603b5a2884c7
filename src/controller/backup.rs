//! The Backup reconciler: decides whether a run is due (pure, unit-tested), runs the engine,
//! and reports everything in status and as Events.
//!
//! Phase model: `phase` says what the object is doing now (`Scheduled`, `Running`; one-shot
//! backups end in `Completed`/`PartiallyFailed`/`Failed`); `lastRun` says how the last run
//! ended, `history` keeps the last runs.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use super::conditions::set_condition;
use super::report;
use super::watch::{QuickBackoff, log_result};
use crate::api::{
    Backup, BackupPhase, BackupRun, BackupStatus, RUN_NOW_ANNOTATION, RunResult, from_time, to_time,
};
use crate::core::schedule::{Schedule, ScheduleError};
use crate::engine::backup::{self as engine, BackupOutcome, Progress, RunContext};
use crate::engine::retention;
use crate::storage::{self, Storage};

/// Finished runs kept in `status.history`.
pub const HISTORY_LIMIT: usize = 10;
/// How often a running backup writes its progress to status.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);
/// Back-off after a reconcile error (API server trouble); never a hot loop.
const ERROR_REQUEUE: Duration = Duration::from_secs(15);
/// A scheduled slot older than this when picked up counts as missed (operator was down).
const MISSED_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(90);

/// Why a run starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A one-shot Backup's only run.
    Initial,
    /// A schedule slot, on time.
    Schedule(DateTime<Utc>),
    /// A schedule slot missed while the operator was down; runs once.
    MissedSchedule(DateTime<Utc>),
    /// The `backup.cnd.dk/run-now` annotation got a new value.
    Manual(String),
    /// A run was interrupted (operator restarted mid-run); it is run again once.
    Retry,
}

impl Trigger {
    fn label(&self) -> &'static str {
        match self {
            Trigger::Initial => "initial",
            Trigger::Schedule(_) => "schedule",
            Trigger::MissedSchedule(_) => "missed-schedule",
            Trigger::Manual(_) => "manual",
            Trigger::Retry => "retry",
        }
    }
}

/// What the reconciler should do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The schedule cannot be parsed; nothing runs until the spec changes.
    InvalidSchedule(String),
    Run(Trigger),
    /// Scheduled: sleep until `next`.
    Wait {
        next: DateTime<Utc>,
    },
    /// One-shot and already ran.
    Done,
}

/// Pure: decides from the object alone. `created` is the object's creationTimestamp.
pub fn decide(backup: &Backup, now: DateTime<Utc>) -> Decision {
    let status = backup.status.clone().unwrap_or_default();
    if status.current_run.is_some() {
        return Decision::Run(Trigger::Retry);
    }
    // An invalid schedule wins over everything: nothing runs until the spec is fixed.
    let schedule = match parse_schedule(backup) {
        Ok(schedule) => schedule,
        Err(err) => return Decision::InvalidSchedule(err.to_string()),
    };
    if let Some(value) = backup.annotations().get(RUN_NOW_ANNOTATION)
        && status.last_manual_trigger.as_deref() != Some(value.as_str())
    {
        return Decision::Run(Trigger::Manual(value.clone()));
    }
    let Some(schedule) = schedule else {
        return if status.last_run.is_none() {
            Decision::Run(Trigger::Initial)
        } else {
            Decision::Done
        };
    };
    let created = backup
        .metadata
        .creation_timestamp
        .as_ref()
        .map(from_time)
        .unwrap_or(now);
    let since = status
        .last_schedule_time
        .as_ref()
        .map(from_time)
        .unwrap_or(created);
    match schedule.latest_due(since, now) {
        Ok(Some(slot)) if now - slot > MISSED_AFTER => Decision::Run(Trigger::MissedSchedule(slot)),
        Ok(Some(slot)) => Decision::Run(Trigger::Schedule(slot)),
        Ok(None) => match schedule.next_after(now) {
            Ok(next) => Decision::Wait { next },
            Err(err) => Decision::InvalidSchedule(err.to_string()),
        },
        Err(err) => Decision::InvalidSchedule(err.to_string()),
    }
}

fn parse_schedule(backup: &Backup) -> Result<Option<Schedule>, ScheduleError> {
    match backup.spec.schedule.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(expr) => Schedule::parse(expr, backup.spec.time_zone.as_deref()).map(Some),
    }
}

pub use super::report::Context;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cannot update status of {name}: {source}")]
    Status { name: String, source: kube::Error },
    #[error("cannot read {name}: {source}")]
    Read { name: String, source: kube::Error },
    #[error("cannot validate {name}: {source}")]
    Validate {
        name: String,
        source: engine::BackupError,
    },
    #[error("cannot reach the storage of {name}: {source}")]
    Storage {
        name: String,
        source: storage::StorageError,
    },
}

/// Reason of the `Ready` condition when the spec is invalid for the current generation.
const INVALID_SPEC: &str = "InvalidSpec";

fn invalid_for_generation(status: &BackupStatus, generation: Option<i64>) -> bool {
    status.phase == Some(BackupPhase::Failed)
        && status.observed_generation == generation
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.reason == INVALID_SPEC)
}

/// Runs the Backup controller until a shutdown signal. `namespace` limits it to one namespace.
pub async fn run(client: Client, namespace: Option<String>, concurrency: u16) {
    let api: Api<Backup> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let ctx = Arc::new(Context::new(client));
    Controller::new(api, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .trigger_backoff(QuickBackoff::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move { log_result("Backup", result) })
        .await;
}

fn error_policy(backup: Arc<Backup>, err: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(backup = %backup.name_any(), error = %err, "reconcile failed; retrying in 15 s");
    Action::requeue(ERROR_REQUEUE)
}

pub async fn reconcile(backup: Arc<Backup>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let now = Utc::now();
    let mut status = backup.status.clone().unwrap_or_default();
    let generation = backup.metadata.generation;
    match decide(&backup, now) {
        Decision::InvalidSchedule(message) => {
            let changed = status.message.as_deref() != Some(message.as_str())
                || status.phase != Some(BackupPhase::Failed);
            if changed {
                report_invalid(&ctx, &backup, status, "InvalidSchedule", message).await?;
            }
            Ok(Action::await_change())
        }
        Decision::Done => Ok(Action::await_change()),
        Decision::Wait { next } => {
            // A scheduled Backup is checked against the cluster when its spec changes, so an
            // unknown type or a bad selector shows up now, not at the first slot hours later.
            if invalid_for_generation(&status, generation) {
                return Ok(Action::await_change());
            }
            if status.observed_generation != generation {
                match engine::check_spec(&ctx.client, &backup.spec).await {
                    Ok(_) => {}
                    Err(err) if err.is_invalid_spec() => {
                        let message = format!("Invalid spec: {err}");
                        report_invalid(&ctx, &backup, status, INVALID_SPEC, message).await?;
                        return Ok(Action::await_change());
                    }
                    Err(source) => {
                        return Err(ReconcileError::Validate {
                            name: backup.name_any(),
                            source,
                        });
                    }
                }
            }
            let next_time = to_time(next);
            if status.phase != Some(BackupPhase::Scheduled)
                || status.next_backup_time.as_ref() != Some(&next_time)
                || status.observed_generation != generation
            {
                if status.phase.is_none() || status.phase == Some(BackupPhase::New) {
                    publish(
                        &ctx,
                        &backup,
                        EventType::Normal,
                        "Scheduled",
                        "Schedule",
                        &format!("next backup at {}", next.to_rfc3339()),
                    )
                    .await;
                }
                status.phase = Some(BackupPhase::Scheduled);
                status.next_backup_time = Some(next_time);
                status.observed_generation = generation;
                if status.last_run.is_none() {
                    status.message = Some(format!(
                        "Waiting for the first scheduled run at {}",
                        next.to_rfc3339()
                    ));
                    set_condition(
                        &mut status.conditions,
                        "Ready",
                        true,
                        "Scheduled",
                        "schedule is valid",
                        generation,
                    );
                }
                write_status(&ctx, &backup, &status).await?;
            }
            Ok(requeue_at(next, now))
        }
        Decision::Run(_) => {
            // The watch cache can still hold our own `Running` write after the run finished,
            // which reads as an interrupted run. Decide again from the API server's current
            // object so a run is never started twice.
            let api: Api<Backup> =
                Api::namespaced(ctx.client.clone(), &backup.namespace().unwrap_or_default());
            let Some(fresh) =
                api.get_opt(&backup.name_any())
                    .await
                    .map_err(|source| ReconcileError::Read {
                        name: backup.name_any(),
                        source,
                    })?
            else {
                return Ok(Action::await_change());
            };
            match decide(&fresh, Utc::now()) {
                Decision::Run(trigger) => {
                    let status = fresh.status.clone().unwrap_or_default();
                    execute(&fresh, &ctx, status, trigger).await
                }
                // Anything else: the fresh object changes the picture; its watch event is
                // queued and the next reconcile handles it.
                _ => Ok(Action::requeue(Duration::from_secs(1))),
            }
        }
    }
}

fn requeue_at(next: DateTime<Utc>, now: DateTime<Utc>) -> Action {
    let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
    // Wake slightly after the slot so `latest_due` sees it as due.
    Action::requeue(wait + Duration::from_millis(500))
}

async fn execute(
    backup: &Backup,
    ctx: &Context,
    mut status: BackupStatus,
    trigger: Trigger,
) -> Result<Action, ReconcileError> {
    let namespace = backup.namespace().unwrap_or_default();
    let name = backup.name_any();
    let generation = backup.metadata.generation;
    let schedule = parse_schedule(backup).ok().flatten();
    let run_context = |started| RunContext {
        backup_namespace: namespace.clone(),
        backup_name: name.clone(),
        uid: backup.uid(),
        started,
    };

    if let Some(mut interrupted) = status.current_run.take() {
        // The operator may have stopped after the manifest was written but before the status
        // said so: that run is complete and restorable, and running it again would run the
        // slot twice.
        let started = from_time(&interrupted.start_time);
        let run = run_context(started);
        if let Some((outcome, storage)) =
            find_finished_run(backup, ctx, &run, &interrupted.backup_path).await?
        {
            return finish(
                backup,
                ctx,
                status,
                interrupted,
                Ok(outcome),
                Some(&storage),
                true,
            )
            .await;
        }
        interrupted.result = Some(RunResult::Failed);
        interrupted.completion_time = Some(to_time(Utc::now()));
        interrupted.message =
            Some("interrupted: the operator stopped during the run; running it again".to_string());
        push_history(&mut status, interrupted);
    }

    let mut started = Utc::now();
    // Keys are unique to the second; never reuse a previous run's path.
    if status.last_run.as_ref().map(|r| r.backup_path.as_str())
        == Some(run_context(started).run_path().as_str())
    {
        tokio::time::sleep(Duration::from_secs(1)).await;
        started = Utc::now();
    }
    let run = run_context(started);
    let run_path = run.run_path();

    match &trigger {
        Trigger::Schedule(slot) | Trigger::MissedSchedule(slot) => {
            status.last_schedule_time = Some(to_time(*slot))
        }
        Trigger::Manual(value) => status.last_manual_trigger = Some(value.clone()),
        Trigger::Initial | Trigger::Retry => {}
    }
    status.phase = Some(BackupPhase::Running);
    status.message = Some(format!(
        "Backup in progress ({} run) to {run_path}",
        trigger.label()
    ));
    status.observed_generation = generation;
    status.next_backup_time = schedule
        .as_ref()
        .and_then(|s| s.next_after(started).ok())
        .map(to_time);
    status.current_run = Some(new_run(&run_path, &trigger, started));
    set_condition(
        &mut status.conditions,
        "Running",
        true,
        "BackupRunning",
        &run_path,
        generation,
    );
    // Written before any data: a restart now sees `currentRun` and retries instead of skipping.
    write_status(ctx, backup, &status).await?;
    tracing::info!(backup = %format!("{namespace}/{name}"), trigger = trigger.label(), %run_path, "backup run started");
    publish(
        ctx,
        backup,
        EventType::Normal,
        "BackupStarted",
        "Backup",
        &format!("{} run started, writing to {run_path}", trigger.label()),
    )
    .await;

    let (result, storage) = run_with_progress(backup, ctx, &mut status, &run).await;
    let record = status
        .current_run
        .take()
        .unwrap_or_else(|| new_run(&run_path, &trigger, started));
    finish(backup, ctx, status, record, result, storage.as_ref(), false).await
}

/// Records how a run ended (`record` is its `currentRun` entry): history, counts, phase,
/// conditions, retention (in `storage`, the run's own), the final status write and the Event.
/// `adopted`: the run finished before an operator restart and is only reported now.
async fn finish(
    backup: &Backup,
    ctx: &Context,
    mut status: BackupStatus,
    mut record: BackupRun,
    result: Result<BackupOutcome, RunError>,
    storage: Option<&Storage>,
    adopted: bool,
) -> Result<Action, ReconcileError> {
    let generation = backup.metadata.generation;
    let schedule = parse_schedule(backup).ok().flatten();
    let started = from_time(&record.start_time);
    let finished = match &result {
        Ok(outcome) => outcome.completed_at,
        Err(_) => Utc::now(),
    };
    record.completion_time = Some(to_time(finished));
    let seconds = (finished - started).num_milliseconds() as f64 / 1000.0;
    let note = if adopted {
        " (found complete after an operator restart)"
    } else {
        ""
    };
    let (event_type, reason, message, ready) = match &result {
        Ok(outcome) => {
            record.result = Some(outcome.result);
            record.objects = outcome.total_objects as i64;
            record.bytes = outcome.total_bytes as i64;
            record.failed = outcome.failed as i64;
            record.errors = outcome.errors.clone();
            status.backup_count += 1;
            status.backup_path = Some(outcome.run_path.clone());
            status.last_backup_time = Some(to_time(outcome.completed_at));
            status.resource_counts = outcome
                .counts
                .iter()
                .map(|(k, v)| (k.clone(), *v as i64))
                .collect();
            match outcome.result {
                RunResult::Completed => {
                    let msg = format!(
                        "Backup completed: {} objects ({} bytes) in {seconds:.1} s at {}{note}",
                        outcome.total_objects, outcome.total_bytes, outcome.run_path
                    );
                    (EventType::Normal, "BackupCompleted", msg, true)
                }
                _ => {
                    let first = outcome.errors.first().cloned().unwrap_or_default();
                    let msg = format!(
                        "Backup partially failed: {} objects stored at {}, {} item errors (first: {first}){note}",
                        outcome.total_objects, outcome.run_path, outcome.failed
                    );
                    (EventType::Warning, "BackupPartiallyFailed", msg, false)
                }
            }
        }
        Err(err) => {
            record.result = Some(RunResult::Failed);
            let msg = format!("Backup failed: {err}");
            record.errors = vec![err.to_string()];
            (EventType::Warning, "BackupFailed", msg, false)
        }
    };
    record.message = Some(message.clone());
    let result_kind = record.result.unwrap_or(RunResult::Failed);
    push_history(&mut status, record);
    status.message = Some(message.clone());
    status.phase = Some(match (&schedule, result_kind) {
        (Some(_), _) => BackupPhase::Scheduled,
        (None, RunResult::Completed) => BackupPhase::Completed,
        (None, RunResult::PartiallyFailed) => BackupPhase::PartiallyFailed,
        (None, RunResult::Failed) => BackupPhase::Failed,
    });
    let now = Utc::now();
    status.next_backup_time = schedule
        .as_ref()
        .and_then(|s| s.next_after(now).ok())
        .map(to_time);
    set_condition(
        &mut status.conditions,
        "Running",
        false,
        "Idle",
        "no run in progress",
        generation,
    );
    let ready_reason = match &result {
        Ok(outcome) => format!("{:?}", outcome.result),
        Err(err) => err.reason().to_string(),
    };
    set_condition(
        &mut status.conditions,
        "Ready",
        ready,
        &ready_reason,
        &message,
        generation,
    );
    // Expire old runs before reporting the run as finished, so whoever reads the final status
    // sees the bucket as retention left it.
    if let (Ok(_), Some(storage)) = (&result, storage) {
        apply_retention(backup, ctx, storage).await;
    }
    crate::engine::faults::crash_point("before-final-status");
    write_status(ctx, backup, &status).await?;
    tracing::info!(backup = %format!("{}/{}", backup.namespace().unwrap_or_default(), backup.name_any()), reason, %message, "backup run finished");
    publish(ctx, backup, event_type, reason, "Backup", &message).await;
    Ok(match status.next_backup_time.as_ref() {
        Some(next) => requeue_at(from_time(next), now),
        None => Action::await_change(),
    })
}

/// The outcome of an interrupted run whose manifest is in storage (see
/// [`engine::find_finished_run`]), with the storage it is in; `None` when it did not finish,
/// or when storage cannot be used as configured (the run is then retried, which reports the
/// lasting storage problem). Storage that is only unreachable now is an error: the run is
/// checked again later rather than run twice.
async fn find_finished_run(
    backup: &Backup,
    ctx: &Context,
    run: &RunContext,
    run_path: &str,
) -> Result<Option<(BackupOutcome, Storage)>, ReconcileError> {
    let found = async {
        let storage = open_storage(backup, ctx).await?;
        let outcome = engine::find_finished_run(&storage, run, run_path).await?;
        Ok::<_, storage::StorageError>(outcome.map(|outcome| (outcome, storage)))
    }
    .await;
    match found {
        Ok(found) => Ok(found),
        Err(source) if source.is_transient() => {
            let note = format!(
                "cannot tell yet whether the interrupted run {run_path} finished: {source}; checking again shortly"
            );
            publish(
                ctx,
                backup,
                EventType::Warning,
                "StorageUnavailable",
                "Backup",
                &note,
            )
            .await;
            Err(ReconcileError::Storage {
                name: backup.name_any(),
                source,
            })
        }
        Err(err) => {
            tracing::warn!(%run_path, error = %err, "cannot check whether the interrupted run finished; running it again");
            Ok(None)
        }
    }
}

/// The Backup's storage location with its credentials resolved; credential warnings go out as
/// Events.
async fn open_storage(backup: &Backup, ctx: &Context) -> Result<Storage, storage::StorageError> {
    let namespace = backup.namespace().unwrap_or_default();
    let resolved = crate::k8s::credentials::resolve_credentials(
        &ctx.client,
        &namespace,
        &backup.spec.storage_location,
    )
    .await?;
    for warning in &resolved.warnings {
        publish(
            ctx,
            backup,
            EventType::Warning,
            "CredentialsWarning",
            "Backup",
            warning,
        )
        .await;
    }
    Storage::new(&backup.spec.storage_location, resolved.credentials)
}

/// Runs the engine while writing progress to status every few seconds.
/// Returns the storage it opened, for retention.
async fn run_with_progress(
    backup: &Backup,
    ctx: &Context,
    status: &mut BackupStatus,
    run: &RunContext,
) -> (Result<BackupOutcome, RunError>, Option<Storage>) {
    // Every spec problem, together, before storage or credentials are touched.
    let checked = match engine::check_spec(&ctx.client, &backup.spec).await {
        Ok(checked) => checked,
        Err(err) => return (Err(err.into()), None),
    };
    let storage = match open_storage(backup, ctx).await {
        Ok(storage) => storage,
        Err(err) => return (Err(err.into()), None),
    };
    let result = run_engine(backup, ctx, status, run, &checked, &storage).await;
    (result, Some(storage))
}

async fn run_engine(
    backup: &Backup,
    ctx: &Context,
    status: &mut BackupStatus,
    run: &RunContext,
    checked: &engine::CheckedSpec,
    storage: &Storage,
) -> Result<BackupOutcome, RunError> {
    let (progress_tx, mut progress_rx) = watch::channel(Progress::default());
    let engine = engine::run_backup(
        &ctx.client,
        storage,
        &backup.spec,
        checked,
        run,
        &progress_tx,
    );
    tokio::pin!(engine);
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.tick().await;
    loop {
        tokio::select! {
            result = &mut engine => return result.map_err(RunError::from),
            _ = ticker.tick() => {
                if progress_rx.has_changed().unwrap_or(false) {
                    let progress = *progress_rx.borrow_and_update();
                    if let Some(current) = status.current_run.as_mut() {
                        current.objects = progress.objects as i64;
                        current.bytes = progress.bytes as i64;
                        current.failed = progress.failed as i64;
                    }
                    // Progress is best effort; the final status write is not.
                    if let Err(err) = write_status(ctx, backup, status).await {
                        tracing::debug!(error = %err, "progress update failed");
                    }
                }
            }
        }
    }
}

/// Everything that can stop a run before it produces a manifest.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Engine(#[from] engine::BackupError),
}

impl RunError {
    fn reason(&self) -> &'static str {
        match self {
            RunError::Storage(_) => "StorageError",
            RunError::Engine(err) => err.reason(),
        }
    }
}

/// The spec cannot work as written: `Failed`, no next run, `Ready=False` with `reason`, and a
/// Warning Event. Nothing runs until the spec changes.
async fn report_invalid(
    ctx: &Context,
    backup: &Backup,
    mut status: BackupStatus,
    reason: &str,
    message: String,
) -> Result<(), ReconcileError> {
    let generation = backup.metadata.generation;
    status.phase = Some(BackupPhase::Failed);
    status.next_backup_time = None;
    status.observed_generation = generation;
    set_condition(
        &mut status.conditions,
        "Ready",
        false,
        reason,
        &message,
        generation,
    );
    status.message = Some(message);
    write_status(ctx, backup, &status).await?;
    let note = status.message.as_deref().unwrap_or_default();
    publish(ctx, backup, EventType::Warning, reason, "Validate", note).await;
    Ok(())
}

/// A run that has just started: nothing stored yet, no result.
fn new_run(run_path: &str, trigger: &Trigger, started: DateTime<Utc>) -> BackupRun {
    BackupRun {
        backup_path: run_path.to_string(),
        trigger: trigger.label().to_string(),
        start_time: to_time(started),
        completion_time: None,
        result: None,
        objects: 0,
        bytes: 0,
        failed: 0,
        message: None,
        errors: Vec::new(),
    }
}

fn push_history(status: &mut BackupStatus, run: BackupRun) {
    status.last_run = Some(run.clone());
    status.history.insert(0, run);
    status.history.truncate(HISTORY_LIMIT);
}

async fn apply_retention(backup: &Backup, ctx: &Context, storage: &Storage) {
    let Some(policy) = backup.spec.retention.as_ref() else {
        return;
    };
    let namespace = backup.namespace().unwrap_or_default();
    let outcome =
        retention::apply(storage, &namespace, &backup.name_any(), policy, Utc::now()).await;
    match outcome {
        Ok(deleted) if !deleted.is_empty() => {
            let msg = format!(
                "retention deleted {} expired backups: {}",
                deleted.len(),
                deleted.join(", ")
            );
            publish(
                ctx,
                backup,
                EventType::Normal,
                "RetentionApplied",
                "Retention",
                &msg,
            )
            .await;
        }
        Ok(_) => {}
        Err(err) => {
            publish(
                ctx,
                backup,
                EventType::Warning,
                "RetentionFailed",
                "Retention",
                &err.to_string(),
            )
            .await;
        }
    }
}

async fn write_status(
    ctx: &Context,
    backup: &Backup,
    status: &BackupStatus,
) -> Result<(), ReconcileError> {
    report::apply_status(&ctx.client, backup, status)
        .await
        .map_err(|source| ReconcileError::Status {
            name: backup.name_any(),
            source,
        })
}

async fn publish(
    ctx: &Context,
    backup: &Backup,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    report::publish(&ctx.recorder, backup, type_, reason, action, note).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BackupSpec, StorageLocation};
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 21, h, m, s).unwrap()
    }

    fn backup(schedule: Option<&str>, status: Option<BackupStatus>) -> Backup {
        let mut backup = Backup::new(
            "b",
            BackupSpec {
                schedule: schedule.map(str::to_string),
                storage_location: StorageLocation::default(),
                ..BackupSpec::default()
            },
        );
        backup.metadata.creation_timestamp = Some(to_time(at(10, 0, 30)));
        backup.status = status;
        backup
    }

    fn finished_run() -> BackupRun {
        BackupRun {
            backup_path: "p".into(),
            trigger: "initial".into(),
            start_time: to_time(at(10, 0, 0)),
            completion_time: None,
            result: Some(RunResult::Completed),
            objects: 1,
            bytes: 1,
            failed: 0,
            message: None,
            errors: vec![],
        }
    }

    #[test]
    fn one_shot_runs_once() {
        assert_eq!(
            decide(&backup(None, None), at(10, 1, 0)),
            Decision::Run(Trigger::Initial)
        );
        let done = BackupStatus {
            last_run: Some(finished_run()),
            ..BackupStatus::default()
        };
        assert_eq!(
            decide(&backup(None, Some(done)), at(10, 1, 0)),
            Decision::Done
        );
    }

    #[test]
    fn new_scheduled_backup_waits_for_the_first_slot() {
        let decision = decide(&backup(Some("*/5 * * * *"), None), at(10, 1, 0));
        assert_eq!(decision, Decision::Wait { next: at(10, 5, 0) });
    }

    #[test]
    fn due_slot_runs_and_is_not_repeated() {
        let b = backup(Some("*/5 * * * *"), None);
        assert_eq!(
            decide(&b, at(10, 5, 1)),
            Decision::Run(Trigger::Schedule(at(10, 5, 0)))
        );
        let after = BackupStatus {
            last_schedule_time: Some(to_time(at(10, 5, 0))),
            last_run: Some(finished_run()),
            ..BackupStatus::default()
        };
        let b = backup(Some("*/5 * * * *"), Some(after));
        assert_eq!(
            decide(&b, at(10, 5, 20)),
            Decision::Wait {
                next: at(10, 10, 0)
            }
        );
    }

    #[test]
    fn slots_missed_while_down_run_once_as_the_newest() {
        let status = BackupStatus {
            last_schedule_time: Some(to_time(at(10, 5, 0))),
            ..BackupStatus::default()
        };
        let b = backup(Some("*/5 * * * *"), Some(status));
        // Operator was down from 10:06 to 11:02: eleven slots missed, one run.
        assert_eq!(
            decide(&b, at(11, 2, 0)),
            Decision::Run(Trigger::MissedSchedule(at(11, 0, 0)))
        );
    }

    #[test]
    fn interrupted_run_is_retried() {
        let status = BackupStatus {
            current_run: Some(BackupRun {
                result: None,
                ..finished_run()
            }),
            ..BackupStatus::default()
        };
        assert_eq!(
            decide(&backup(Some("@daily"), Some(status)), at(10, 1, 0)),
            Decision::Run(Trigger::Retry)
        );
    }

    #[test]
    fn run_now_annotation_runs_once_per_value() {
        let mut b = backup(Some("@daily"), None);
        b.metadata.annotations = Some(
            [(RUN_NOW_ANNOTATION.to_string(), "1".to_string())]
                .into_iter()
                .collect(),
        );
        assert_eq!(
            decide(&b, at(10, 1, 0)),
            Decision::Run(Trigger::Manual("1".into()))
        );
        b.status = Some(BackupStatus {
            last_manual_trigger: Some("1".into()),
            ..BackupStatus::default()
        });
        assert!(matches!(decide(&b, at(10, 1, 0)), Decision::Wait { .. }));
    }

    #[test]
    fn invalid_schedule_is_reported_not_run() {
        match decide(&backup(Some("61 * * * *"), None), at(10, 1, 0)) {
            Decision::InvalidSchedule(msg) => assert!(msg.contains("61"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_schedule_wins_over_run_now() {
        let mut b = backup(Some("61 * * * *"), None);
        b.metadata.annotations = Some(
            [(RUN_NOW_ANNOTATION.to_string(), "1".to_string())]
                .into_iter()
                .collect(),
        );
        assert!(matches!(
            decide(&b, at(10, 1, 0)),
            Decision::InvalidSchedule(_)
        ));
    }

    #[test]
    fn time_zone_is_honoured() {
        let mut b = backup(Some("0 2 * * *"), None);
        b.spec.time_zone = Some("Europe/Copenhagen".into());
        // 02:00 in Copenhagen (winter, UTC+1) is 01:00 UTC.
        assert_eq!(
            decide(&b, at(10, 1, 0)),
            Decision::Wait {
                next: Utc.with_ymd_and_hms(2025, 1, 22, 1, 0, 0).unwrap()
            }
        );
    }
}
