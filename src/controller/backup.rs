//! The Backup controller. `reconcile` decides whether a run is due (pure, unit-tested: see
//! [`decide`]) and hands due runs to the run pool ([`super::runs`]); the run, a job of its own,
//! writes progress, the final result and the Events.
//!
//! Phase model: `phase` says what the object is doing now (`Scheduled`, `Running`; one-shot
//! backups end in `Completed`/`PartiallyFailed`/`Failed`); `lastRun` says how the last run
//! ended, `history` keeps the last runs. A run waiting for a free slot says so in `message`.
//!
//! A run the operator stopped during (killed, or shut down: then `currentRun` ends `Failed`
//! with a message saying so) is found at the next start in `currentRun`. If it had written its
//! manifest it is adopted as it finished; otherwise it is run again, at most `run_retries`
//! times, and then ends `Failed` saying how often it was interrupted.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::conditions::set_condition;
use super::lifecycle::{self, JobEnd, write_status};
use super::metrics::{self, Finished};
use super::report;
use super::runs::{FollowUp, RunKey, Ticket};
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
/// A scheduled slot older than this when picked up counts as missed (operator was down).
const MISSED_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(90);
/// `currentRun.message` of a run the operator stopped during.
const STOPPED_DURING_RUN: &str = "interrupted: the operator stopped during the run";

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
    /// A run was interrupted (the operator stopped mid-run); this is attempt `attempt` (2 for
    /// the first retry).
    Retry { attempt: u32 },
}

impl Trigger {
    fn label(&self) -> &'static str {
        match self {
            Trigger::Initial => "initial",
            Trigger::Schedule(_) => "schedule",
            Trigger::MissedSchedule(_) => "missed-schedule",
            Trigger::Manual(_) => "manual",
            Trigger::Retry { .. } => "retry",
        }
    }

    fn attempt(&self) -> u32 {
        match self {
            Trigger::Retry { attempt } => *attempt,
            _ => 1,
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
    /// The run in `currentRun` was interrupted more often than runs are retried: unless it
    /// finished after all (its manifest is stored), it ends `Failed`.
    GiveUp {
        interruptions: u32,
    },
}

/// Pure: decides from the object alone. `run_retries`: how often an interrupted run is run
/// again. A `currentRun` means a run was interrupted, since a run that is really going on has
/// a job in the pool, and nothing is decided for such an object.
pub fn decide(backup: &Backup, now: DateTime<Utc>, run_retries: u32) -> Decision {
    let status = backup.status.clone().unwrap_or_default();
    if let Some(interrupted) = &status.current_run {
        // Each attempt that is found in `currentRun` was interrupted once.
        let interruptions = interrupted.attempt.unwrap_or(1).max(1);
        return if interruptions <= run_retries {
            Decision::Run(Trigger::Retry {
                attempt: interruptions + 1,
            })
        } else {
            Decision::GiveUp { interruptions }
        };
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

pub use super::lifecycle::ReconcileError;

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

pub async fn reconcile(backup: Arc<Backup>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let Some(key) = RunKey::of(backup.as_ref()) else {
        return Ok(Action::await_change());
    };
    // Its job writes the status while it lives, and has the object reconciled when it ends.
    if ctx.runs.is_registered(&key) {
        return Ok(Action::await_change());
    }
    let now = Utc::now();
    observe(&ctx, &backup, now);
    let status = backup.status.clone().unwrap_or_default();
    let generation = backup.metadata.generation;
    match decide(&backup, now, ctx.run_retries) {
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
            if invalid_for_generation(&status, generation) {
                return Ok(Action::await_change());
            }
            if status.observed_generation != generation {
                // A scheduled Backup is checked against the cluster when its spec changes, so
                // an unknown type or a bad selector shows up now, not at the first slot hours
                // later. The check talks to the API server (and retries), so it is a job of
                // its own that needs no run slot; the job has the object reconciled again.
                let job_ctx = ctx.clone();
                let job_key = key.clone();
                ctx.runs
                    .submit(key, move |ticket| check_job(job_ctx, job_key, ticket));
                return Ok(Action::await_change());
            }
            report_scheduled(&ctx, &backup, status, next).await?;
            Ok(requeue_at(next, now))
        }
        Decision::Run(_) | Decision::GiveUp { .. } => {
            let job_ctx = ctx.clone();
            let job_key = key.clone();
            ctx.runs
                .submit(key, move |ticket| job(job_ctx, job_key, ticket));
            Ok(Action::await_change())
        }
    }
}

/// The Backup's metrics that come from its object: the newest restorable run as its status
/// has it (so an operator restart does not make every Backup look never-succeeded), and how
/// long its schedule may leave it without a new run.
fn observe(ctx: &Context, backup: &Backup, now: DateTime<Utc>) {
    let (namespace, name) = (backup.namespace().unwrap_or_default(), backup.name_any());
    if let Some(time) = backup
        .status
        .as_ref()
        .and_then(|s| s.last_backup_time.as_ref())
    {
        ctx.metrics
            .backup_succeeded(&namespace, &name, metrics::unix_seconds(from_time(time)));
    }
    let interval = parse_schedule(backup)
        .ok()
        .flatten()
        .and_then(|s| s.longest_gap(now, metrics::SCHEDULE_SLOTS).ok().flatten())
        .map(|gap| gap.num_seconds());
    ctx.metrics
        .set_schedule_interval(&namespace, &name, interval);
}

fn requeue_at(next: DateTime<Utc>, now: DateTime<Utc>) -> Action {
    let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
    // Wake slightly after the slot so `latest_due` sees it as due.
    Action::requeue(wait + Duration::from_millis(500))
}

/// Writes `Scheduled` with the next slot when the status does not say so yet (a Normal Event
/// the first time).
async fn report_scheduled(
    ctx: &Context,
    backup: &Backup,
    mut status: BackupStatus,
    next: DateTime<Utc>,
) -> Result<(), ReconcileError> {
    let generation = backup.metadata.generation;
    let next_time = to_time(next);
    if status.phase == Some(BackupPhase::Scheduled)
        && status.next_backup_time.as_ref() == Some(&next_time)
        && status.observed_generation == generation
    {
        return Ok(());
    }
    if status.phase.is_none() || status.phase == Some(BackupPhase::New) {
        publish(
            ctx,
            backup,
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
    write_status(ctx, backup, &status).await
}

/// A scheduled Backup whose spec changed: checked against the cluster, then reported invalid
/// or scheduled. Runs in the pool without a slot, so the check's API calls (and their retries
/// while the API server is away) never hold up a reconcile.
async fn check_job(ctx: Arc<Context>, key: RunKey, ticket: Ticket) -> FollowUp {
    let ended = ticket.unless_cancelled(check_spec_of(&ctx, &key)).await;
    lifecycle::follow_up(&ctx, &key, ended.unwrap_or(Ok(JobEnd::Nothing)))
}

async fn check_spec_of(ctx: &Context, key: &RunKey) -> Result<JobEnd, ReconcileError> {
    let Some(backup) = lifecycle::fetch::<Backup>(&ctx.client, key).await? else {
        return Ok(JobEnd::Nothing);
    };
    let status = backup.status.clone().unwrap_or_default();
    let Decision::Wait { next } = decide(&backup, Utc::now(), ctx.run_retries) else {
        // Something else is due now; the follow-up reconcile handles it.
        return Ok(JobEnd::Acted);
    };
    match engine::check_spec(&ctx.client, &backup.spec).await {
        Ok(_) => report_scheduled(ctx, &backup, status, next).await?,
        Err(err) if err.is_invalid_spec() => {
            let message = format!("Invalid spec: {err}");
            report_invalid(ctx, &backup, status, INVALID_SPEC, message).await?;
        }
        Err(source) => {
            return Err(ReconcileError::Validate {
                name: backup.name_any(),
                source: Box::new(source),
            });
        }
    }
    Ok(JobEnd::Acted)
}

/// One Backup's job in the run pool: everything from the decision on the API server's object
/// to the final status write.
async fn job(ctx: Arc<Context>, key: RunKey, ticket: Ticket) -> FollowUp {
    let ended = run_job(&ctx, &key, &ticket).await;
    lifecycle::follow_up(&ctx, &key, ended)
}

async fn run_job(ctx: &Context, key: &RunKey, ticket: &Ticket) -> Result<JobEnd, ReconcileError> {
    // Set once the job waited for a slot: what it was going to run then.
    let mut waited_for: Option<Trigger> = None;
    loop {
        // Decide again from the API server's object: the controller's cache can still hold
        // this operator's own earlier writes (a `Running` status with `currentRun` reads as an
        // interrupted run, an old `lastManualTrigger` as a new request), and a run must never
        // start twice.
        let Some(backup) = lifecycle::fetch_for_job::<Backup>(&ctx.client, key, ticket).await?
        else {
            return Ok(JobEnd::Nothing);
        };
        let status = backup.status.clone().unwrap_or_default();
        let decision = decide(&backup, Utc::now(), ctx.run_retries);
        if matches!(
            decision,
            Decision::Run(Trigger::Retry { .. }) | Decision::GiveUp { .. }
        ) {
            // Needs no slot: one read from storage.
            let Some(adopted) = ticket
                .unless_cancelled(adopt_finished(&backup, ctx, &status))
                .await
            else {
                return Ok(JobEnd::Nothing);
            };
            if adopted? {
                return Ok(JobEnd::Acted);
            }
        }
        let trigger = match (decision, &waited_for) {
            // A slot that came due before a long wait for a run slot was not missed while the
            // operator was down.
            (Decision::Run(Trigger::MissedSchedule(slot)), Some(Trigger::Schedule(due)))
                if slot == *due =>
            {
                Trigger::Schedule(slot)
            }
            (Decision::Run(trigger), _) => trigger,
            (Decision::GiveUp { interruptions }, _) => {
                give_up(&backup, ctx, status, interruptions).await?;
                return Ok(JobEnd::Acted);
            }
            (Decision::InvalidSchedule(_) | Decision::Wait { .. } | Decision::Done, _) => {
                return Ok(JobEnd::Nothing);
            }
        };
        if waited_for.is_none()
            && let Err(busy) = ticket.try_start()
        {
            // A spec that cannot work is reported now, not once a slot is free; it needs no
            // slot. Any other outcome of the check is for the run to meet.
            let checked = ticket
                .unless_cancelled(engine::check_spec(&ctx.client, &backup.spec))
                .await;
            if let Some(Err(err)) = checked
                && err.is_invalid_spec()
            {
                execute(&backup, ctx, status, trigger, ticket, Some(err)).await?;
                return Ok(JobEnd::Acted);
            }
            lifecycle::report_waiting(ctx, &backup, status, &ticket.describe(busy)).await?;
            if ticket.start().await.is_err() {
                return Ok(JobEnd::Nothing);
            }
            waited_for = Some(trigger);
            // The object may have changed (or gone) during the wait.
            continue;
        }
        execute(&backup, ctx, status, trigger, ticket, None).await?;
        return Ok(JobEnd::Acted);
    }
}

fn run_context(backup: &Backup, ctx: &Context, started: DateTime<Utc>) -> RunContext {
    RunContext {
        backup_namespace: backup.namespace().unwrap_or_default(),
        backup_name: backup.name_any(),
        uid: backup.uid(),
        started,
        lists_in_flight: ctx.backup_lists_in_flight,
    }
}

/// The run in `currentRun` was interrupted, but may have written its manifest first (the
/// operator stopped between the manifest and the status write): then it is complete and
/// restorable, is reported as it finished, and running it again would run the slot twice.
/// True when it was adopted.
async fn adopt_finished(
    backup: &Backup,
    ctx: &Context,
    status: &BackupStatus,
) -> Result<bool, ReconcileError> {
    let mut status = status.clone();
    let Some(interrupted) = status.current_run.take() else {
        return Ok(false);
    };
    let run = run_context(backup, ctx, from_time(&interrupted.start_time));
    match find_finished_run(backup, ctx, &run, &interrupted.backup_path).await? {
        Some((outcome, storage)) => {
            finish(
                backup,
                ctx,
                status,
                interrupted,
                Ok(outcome),
                Some(&storage),
                true,
            )
            .await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The run in `currentRun` was interrupted `interruptions` times and is not run again: it ends
/// `Failed`, saying so.
async fn give_up(
    backup: &Backup,
    ctx: &Context,
    mut status: BackupStatus,
    interruptions: u32,
) -> Result<(), ReconcileError> {
    let Some(record) = status.current_run.take() else {
        return Ok(());
    };
    let err = RunError::Interrupted {
        interruptions,
        retries: ctx.run_retries,
    };
    finish(backup, ctx, status, record, Err(err), None, false).await
}

/// Runs one backup, holding a slot (or none, when `spec_problem` already says it fails):
/// `Running` and `currentRun` written before any data, the engine with progress, then the
/// result; or, when the operator shuts down mid-run, the interruption.
async fn execute(
    backup: &Backup,
    ctx: &Context,
    mut status: BackupStatus,
    trigger: Trigger,
    ticket: &Ticket,
    spec_problem: Option<engine::BackupError>,
) -> Result<(), ReconcileError> {
    let namespace = backup.namespace().unwrap_or_default();
    let name = backup.name_any();
    let generation = backup.metadata.generation;
    let schedule = parse_schedule(backup).ok().flatten();

    if let Some(mut interrupted) = status.current_run.take() {
        // Not adopted (no manifest): it failed, and this run replaces it.
        interrupted.result = Some(RunResult::Failed);
        if interrupted.completion_time.is_none() {
            interrupted.completion_time = Some(to_time(Utc::now()));
        }
        interrupted.message = Some(format!("{STOPPED_DURING_RUN}; running it again"));
        push_history(&mut status, interrupted);
    }

    let mut started = Utc::now();
    // Keys are unique to the second; never reuse a previous run's path.
    if status.last_run.as_ref().map(|r| r.backup_path.as_str())
        == Some(run_context(backup, ctx, started).run_path().as_str())
    {
        tokio::time::sleep(Duration::from_secs(1)).await;
        started = Utc::now();
    }
    let run = run_context(backup, ctx, started);
    let run_path = run.run_path();

    match &trigger {
        Trigger::Schedule(slot) | Trigger::MissedSchedule(slot) => {
            status.last_schedule_time = Some(to_time(*slot))
        }
        Trigger::Manual(value) => status.last_manual_trigger = Some(value.clone()),
        Trigger::Initial | Trigger::Retry { .. } => {}
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
    // Who the run acts for, read before anything runs; without one it fails at once.
    let acting = lifecycle::acting(ctx, backup).await;
    let requester = acting
        .as_ref()
        .ok()
        .and_then(lifecycle::Acting::requester_name);
    status.current_run = Some(new_run(&run_path, &trigger, started, requester.clone()));
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
    tracing::info!(backup = %format!("{namespace}/{name}"), trigger = trigger.label(), attempt = trigger.attempt(), %run_path, "backup run started");
    ctx.metrics
        .run_started(metrics::BACKUP, &namespace, &name, trigger.label());
    publish(
        ctx,
        backup,
        EventType::Normal,
        "BackupStarted",
        "Backup",
        &format!("{} run started, writing to {run_path}", trigger.label()),
    )
    .await;

    let (result, storage) = match (acting, spec_problem) {
        (Err(err), _) => (Err(RunError::from(err)), None),
        (Ok(_), Some(err)) => (Err(RunError::from(err)), None),
        (Ok(acting), None) => {
            run_with_progress(
                backup,
                ctx,
                &acting,
                &mut status,
                &run,
                ticket.cancel_token(),
            )
            .await
        }
    };
    let record = status
        .current_run
        .take()
        .unwrap_or_else(|| new_run(&run_path, &trigger, started, requester));
    if matches!(result, Err(RunError::Cancelled)) {
        return record_interrupted(backup, ctx, status, record).await;
    }
    // Retention can wait for the next run when the operator is stopping.
    let storage = storage.as_ref().filter(|_| !ticket.is_cancelled());
    finish(backup, ctx, status, record, result, storage, false).await
}

/// The operator shuts down mid-run: the run stopped before its manifest (so it is not
/// restorable and never looks complete). `currentRun` stays, marked `Failed` with the reason,
/// so the next operator start counts the interruption and runs it again or gives up.
async fn record_interrupted(
    backup: &Backup,
    ctx: &Context,
    mut status: BackupStatus,
    mut record: BackupRun,
) -> Result<(), ReconcileError> {
    record.result = Some(RunResult::Failed);
    record.completion_time = Some(to_time(Utc::now()));
    record.message = Some(STOPPED_DURING_RUN.to_string());
    let message = format!(
        "Backup interrupted: the operator stopped during the run; {} has no manifest and is \
         not restorable; the next operator start runs it again (or gives up after {} retries)",
        record.backup_path, ctx.run_retries
    );
    status.current_run = Some(record);
    lifecycle::report_interrupted(ctx, backup, status, message).await
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
) -> Result<(), ReconcileError> {
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
            record.reused_objects = outcome.reused_objects.map(saturating_i64);
            if let Some(stats) = outcome.storage {
                record.upload_requests = Some(saturating_i64(stats.uploads));
                record.uploaded_bytes = Some(saturating_i64(stats.uploaded_bytes));
                record.storage_requests = Some(saturating_i64(stats.requests));
            }
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
                    let reused = match outcome.reused_objects {
                        Some(reused) => format!(", {reused} unchanged since the previous run"),
                        None => String::new(),
                    };
                    let msg = format!(
                        "Backup completed: {} objects ({} bytes{reused}) in {seconds:.1} s at {}{note}",
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
    let (trigger, path, objects, bytes, failed) = (
        record.trigger.clone(),
        record.backup_path.clone(),
        record.objects,
        record.bytes,
        record.failed,
    );
    push_history(&mut status, record);
    status.message = Some(message.clone());
    status.phase = Some(match (&schedule, result_kind) {
        (Some(_), _) => BackupPhase::Scheduled,
        (None, RunResult::Completed) => BackupPhase::Completed,
        (None, RunResult::PartiallyFailed) => BackupPhase::PartiallyFailed,
        (None, RunResult::Failed) => BackupPhase::Failed,
    });
    status.next_backup_time = schedule
        .as_ref()
        .and_then(|s| s.next_after(Utc::now()).ok())
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
    tracing::info!(
        backup = %lifecycle::display_name(backup),
        %trigger,
        result = result_label(result_kind),
        objects,
        bytes,
        failed,
        duration_seconds = seconds,
        %path,
        adopted,
        reason,
        %message,
        "backup run finished"
    );
    let (namespace, name) = (backup.namespace().unwrap_or_default(), backup.name_any());
    let given_up = matches!(result, Err(RunError::Interrupted { .. }));
    ctx.metrics.run_finished(Finished {
        kind: metrics::BACKUP,
        namespace: &namespace,
        name: &name,
        result: result_label(result_kind),
        seconds: (!given_up).then_some(seconds),
        objects,
        bytes: Some(bytes),
        items_failed: u64::try_from(failed).unwrap_or(0),
    });
    match &result {
        // Completed and PartiallyFailed runs both wrote their manifest: restorable.
        Ok(outcome) => ctx.metrics.backup_succeeded(
            &namespace,
            &name,
            metrics::unix_seconds(outcome.completed_at),
        ),
        Err(err) => {
            if let Some(category) = err.storage_category() {
                ctx.metrics.storage_error(category);
            }
        }
    }
    publish(ctx, backup, event_type, reason, "Backup", &message).await;
    Ok(())
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
    let acting = match lifecycle::acting(ctx, backup).await {
        Ok(acting) => acting,
        Err(err) => {
            // The run again reports this.
            tracing::warn!(%run_path, error = %err, "cannot check whether the interrupted run finished");
            return Ok(None);
        }
    };
    let found = async {
        let storage = open_storage(backup, ctx, &acting).await?;
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

/// The Backup's storage location (inline, or a ClusterStorageLocation) opened with the rights
/// its run uses; credential warnings go out as Events.
async fn open_storage(
    backup: &Backup,
    ctx: &Context,
    acting: &lifecycle::Acting,
) -> Result<Storage, storage::StorageError> {
    let opened =
        super::locations::open_storage_for(ctx, acting, backup, &backup.spec.storage_location)
            .await?;
    for warning in &opened.warnings {
        publish(
            ctx,
            backup,
            EventType::Warning,
            warning.reason,
            "Backup",
            &warning.message,
        )
        .await;
    }
    Ok(opened.storage)
}

/// Runs the engine while writing progress to status every few seconds; stops with
/// [`RunError::Cancelled`] when `stop` is cancelled before the manifest is written.
/// Returns the storage it opened, for retention.
async fn run_with_progress(
    backup: &Backup,
    ctx: &Context,
    acting: &lifecycle::Acting,
    status: &mut BackupStatus,
    run: &RunContext,
    stop: &CancellationToken,
) -> (Result<BackupOutcome, RunError>, Option<Storage>) {
    let cancelled = || (Err(RunError::Cancelled), None);
    // Every spec problem, together, before storage or credentials are touched.
    let checked = tokio::select! {
        biased;
        () = stop.cancelled() => return cancelled(),
        checked = engine::check_spec(&acting.client, &backup.spec) => match checked {
            Ok(checked) => checked,
            Err(err) => return (Err(err.into()), None),
        },
    };
    let storage = tokio::select! {
        biased;
        () = stop.cancelled() => return cancelled(),
        storage = open_storage(backup, ctx, acting) => match storage {
            Ok(storage) => storage,
            Err(err) => return (Err(err.into()), None),
        },
    };
    let result = run_engine(backup, ctx, acting, status, run, &checked, &storage, stop).await;
    (result, Some(storage))
}

#[allow(clippy::too_many_arguments)]
async fn run_engine(
    backup: &Backup,
    ctx: &Context,
    acting: &lifecycle::Acting,
    status: &mut BackupStatus,
    run: &RunContext,
    checked: &engine::CheckedSpec,
    storage: &Storage,
    stop: &CancellationToken,
) -> Result<BackupOutcome, RunError> {
    let (progress_tx, mut progress_rx) = watch::channel(Progress::default());
    let engine = engine::run_backup(
        &acting.client,
        storage,
        &backup.spec,
        checked,
        run,
        &progress_tx,
        stop,
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
    Acting(#[from] lifecycle::ActingError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Engine(engine::BackupError),
    /// The operator is shutting down; the run stopped before its manifest.
    #[error("the operator stopped during the run")]
    Cancelled,
    /// Given up: the operator stopped during every attempt.
    #[error(
        "the run was interrupted {} (the operator stopped during it) and is not run again: \
         interrupted runs are retried {retries} {}",
        lifecycle::times(*interruptions),
        if *retries == 1 { "time" } else { "times" }
    )]
    Interrupted { interruptions: u32, retries: u32 },
}

impl From<engine::BackupError> for RunError {
    fn from(err: engine::BackupError) -> Self {
        match err {
            engine::BackupError::Cancelled => RunError::Cancelled,
            err => RunError::Engine(err),
        }
    }
}

/// `Completed`, `PartiallyFailed` or `Failed`, for logs and metrics.
pub fn result_label(result: RunResult) -> &'static str {
    match result {
        RunResult::Completed => "Completed",
        RunResult::PartiallyFailed => "PartiallyFailed",
        RunResult::Failed => "Failed",
    }
}

impl RunError {
    /// The category of the storage error that ended the run, if one did.
    fn storage_category(&self) -> Option<storage::ErrorCategory> {
        match self {
            RunError::Storage(err) => Some(err.category()),
            RunError::Engine(engine::BackupError::Storage(err)) => Some(err.category()),
            _ => None,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            RunError::Acting(err) => err.reason(),
            RunError::Storage(_) => "StorageError",
            RunError::Engine(err) => err.reason(),
            RunError::Cancelled | RunError::Interrupted { .. } => "Interrupted",
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
fn new_run(
    run_path: &str,
    trigger: &Trigger,
    started: DateTime<Utc>,
    requester: Option<String>,
) -> BackupRun {
    BackupRun {
        backup_path: run_path.to_string(),
        trigger: trigger.label().to_string(),
        attempt: Some(trigger.attempt()),
        requester,
        start_time: to_time(started),
        completion_time: None,
        result: None,
        objects: 0,
        bytes: 0,
        failed: 0,
        message: None,
        errors: Vec::new(),
        reused_objects: None,
        upload_requests: None,
        uploaded_bytes: None,
        storage_requests: None,
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
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
            attempt: None,
            requester: None,
            start_time: to_time(at(10, 0, 0)),
            completion_time: None,
            result: Some(RunResult::Completed),
            objects: 1,
            bytes: 1,
            failed: 0,
            message: None,
            errors: vec![],
            reused_objects: None,
            upload_requests: None,
            uploaded_bytes: None,
            storage_requests: None,
        }
    }

    #[test]
    fn one_shot_runs_once() {
        assert_eq!(
            decide(&backup(None, None), at(10, 1, 0), 1),
            Decision::Run(Trigger::Initial)
        );
        let done = BackupStatus {
            last_run: Some(finished_run()),
            ..BackupStatus::default()
        };
        assert_eq!(
            decide(&backup(None, Some(done)), at(10, 1, 0), 1),
            Decision::Done
        );
    }

    #[test]
    fn new_scheduled_backup_waits_for_the_first_slot() {
        let decision = decide(&backup(Some("*/5 * * * *"), None), at(10, 1, 0), 1);
        assert_eq!(decision, Decision::Wait { next: at(10, 5, 0) });
    }

    #[test]
    fn due_slot_runs_and_is_not_repeated() {
        let b = backup(Some("*/5 * * * *"), None);
        assert_eq!(
            decide(&b, at(10, 5, 1), 1),
            Decision::Run(Trigger::Schedule(at(10, 5, 0)))
        );
        let after = BackupStatus {
            last_schedule_time: Some(to_time(at(10, 5, 0))),
            last_run: Some(finished_run()),
            ..BackupStatus::default()
        };
        let b = backup(Some("*/5 * * * *"), Some(after));
        assert_eq!(
            decide(&b, at(10, 5, 20), 1),
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
            decide(&b, at(11, 2, 0), 1),
            Decision::Run(Trigger::MissedSchedule(at(11, 0, 0)))
        );
    }

    fn interrupted(attempt: Option<u32>, result: Option<RunResult>) -> BackupStatus {
        BackupStatus {
            current_run: Some(BackupRun {
                result,
                attempt,
                ..finished_run()
            }),
            ..BackupStatus::default()
        }
    }

    #[test]
    fn interrupted_run_is_retried() {
        // Killed (no result) or stopped on purpose (Failed): one interruption either way.
        for result in [None, Some(RunResult::Failed)] {
            let b = backup(Some("@daily"), Some(interrupted(Some(1), result)));
            assert_eq!(
                decide(&b, at(10, 1, 0), 1),
                Decision::Run(Trigger::Retry { attempt: 2 })
            );
        }
        // Written before the attempt counter existed: a first attempt.
        let old = backup(None, Some(interrupted(None, None)));
        assert_eq!(
            decide(&old, at(10, 1, 0), 1),
            Decision::Run(Trigger::Retry { attempt: 2 })
        );
    }

    #[test]
    fn interrupted_runs_are_retried_a_bounded_number_of_times() {
        let b = backup(None, Some(interrupted(Some(2), None)));
        assert_eq!(
            decide(&b, at(10, 1, 0), 1),
            Decision::GiveUp { interruptions: 2 }
        );
        assert_eq!(
            decide(&b, at(10, 1, 0), 2),
            Decision::Run(Trigger::Retry { attempt: 3 })
        );
        let b = backup(Some("@daily"), Some(interrupted(Some(1), None)));
        assert_eq!(
            decide(&b, at(10, 1, 0), 0),
            Decision::GiveUp { interruptions: 1 }
        );
        // An invalid schedule does not hide an interrupted run: it is still settled.
        let b = backup(Some("61 * * * *"), Some(interrupted(Some(1), None)));
        assert_eq!(
            decide(&b, at(10, 1, 0), 1),
            Decision::Run(Trigger::Retry { attempt: 2 })
        );
    }

    #[test]
    fn runs_say_which_attempt_they_are() {
        assert_eq!(
            new_run("p", &Trigger::Initial, at(10, 0, 0), None).attempt,
            Some(1)
        );
        let retry = new_run("p", &Trigger::Retry { attempt: 2 }, at(10, 0, 0), None);
        assert_eq!((retry.trigger.as_str(), retry.attempt), ("retry", Some(2)));
    }

    #[test]
    fn given_up_runs_say_how_often_they_were_interrupted() {
        let err = RunError::Interrupted {
            interruptions: 2,
            retries: 1,
        };
        assert_eq!(err.reason(), "Interrupted");
        let message = err.to_string();
        assert!(message.contains("interrupted 2 times"), "{message}");
        assert!(message.contains("retried 1 time"), "{message}");
        let once = RunError::Interrupted {
            interruptions: 1,
            retries: 0,
        };
        assert!(once.to_string().contains("interrupted 1 time "), "{once}");
        assert_eq!(
            RunError::from(engine::BackupError::Cancelled).reason(),
            "Interrupted"
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
            decide(&b, at(10, 1, 0), 1),
            Decision::Run(Trigger::Manual("1".into()))
        );
        b.status = Some(BackupStatus {
            last_manual_trigger: Some("1".into()),
            ..BackupStatus::default()
        });
        assert!(matches!(decide(&b, at(10, 1, 0), 1), Decision::Wait { .. }));
    }

    #[test]
    fn invalid_schedule_is_reported_not_run() {
        match decide(&backup(Some("61 * * * *"), None), at(10, 1, 0), 1) {
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
            decide(&b, at(10, 1, 0), 1),
            Decision::InvalidSchedule(_)
        ));
    }

    #[test]
    fn time_zone_is_honoured() {
        let mut b = backup(Some("0 2 * * *"), None);
        b.spec.time_zone = Some("Europe/Copenhagen".into());
        // 02:00 in Copenhagen (winter, UTC+1) is 01:00 UTC.
        assert_eq!(
            decide(&b, at(10, 1, 0), 1),
            Decision::Wait {
                next: Utc.with_ymd_and_hms(2025, 1, 22, 1, 0, 0).unwrap()
            }
        );
    }
}
