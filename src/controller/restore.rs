//! The Restore controller: a one-shot run of the restore engine, reported in status and as
//! Events. `reconcile` only hands unfinished Restores to the run pool ([`super::runs`]); the
//! run, a job of its own, checks the spec, waits for a free slot, and writes phases, progress,
//! the result and the Events.
//!
//! Phases: `New` (also while waiting for a free run slot) → `Validating` (manifest, target) →
//! `Downloading` (`validateOnly` only) → `Restoring` → `Completed` | `PartiallyFailed` |
//! `Failed`. A finished Restore never runs again. A Restore found mid-run (the operator
//! stopped during it: killed, or shut down, which says so in `message`) runs again from the
//! start, which is safe because existing objects are handled by `conflictResolution`; at most
//! `run_retries` times, then it ends `Failed` saying how often it was interrupted.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use tokio::sync::watch;

use super::conditions::set_condition;
use super::lifecycle::{self, JobEnd, write_status};
use super::metrics::{self, Finished};
use super::report;
use super::runs::{FollowUp, RunKey, Ticket};
use crate::api::{Backup, Restore, RestorePhase, RestoreStatus, StorageLocation, to_time};
use crate::core::restore::status::Action as ItemAction;
use crate::engine::restore::{self as engine, RestoreOutcome, RestoreProgress, Stage};
use crate::engine::restore_spec::{Source, SpecError, validate_spec};
use crate::storage;

/// How often a running restore writes its progress to status.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);
/// Condition and Event reason of a spec that cannot work.
const INVALID_SPEC: &str = "InvalidSpec";

pub use super::report::Context;

pub use super::lifecycle::ReconcileError;

/// Why a restore could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Acting(#[from] lifecycle::ActingError),
    #[error("Backup {name} not found in namespace {namespace}")]
    BackupNotFound { namespace: String, name: String },
    #[error("cannot read Backup {name}: {source}")]
    BackupRead {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("Backup {name} has no complete backup yet")]
    NoCompleteBackup { name: String },
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Engine(#[from] engine::RestoreError),
    /// Given up: the operator stopped during every attempt.
    #[error(
        "the restore was interrupted {} (the operator stopped during it) and is not run again: \
         interrupted restores are retried {retries} {}",
        lifecycle::times(*interruptions),
        if *retries == 1 { "time" } else { "times" }
    )]
    Interrupted { interruptions: u32, retries: u32 },
}

impl SourceError {
    /// The category of the storage error that ended the restore, if one did.
    fn storage_category(&self) -> Option<storage::ErrorCategory> {
        match self {
            SourceError::Storage(err) => Some(err.category()),
            SourceError::Engine(engine::RestoreError::Manifest(
                storage::catalogue::ManifestReadError::Storage { source, .. },
            )) => Some(source.category()),
            _ => None,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            SourceError::Acting(err) => err.reason(),
            SourceError::BackupNotFound { .. } => "BackupNotFound",
            SourceError::BackupRead { .. } => "ApiError",
            SourceError::NoCompleteBackup { .. } => "BackupIncomplete",
            SourceError::Storage(_) => "StorageError",
            SourceError::Engine(err) => err.reason(),
            SourceError::Interrupted { .. } => "Interrupted",
        }
    }
}

/// Whether a phase is final (a Restore runs once).
pub fn is_finished(phase: Option<RestorePhase>) -> bool {
    matches!(
        phase,
        Some(RestorePhase::Completed | RestorePhase::PartiallyFailed | RestorePhase::Failed)
    )
}

/// What a Restore's job does, from its status alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Finished: a Restore runs once.
    Done,
    /// Never started (or waiting for a slot): the first attempt.
    Start,
    /// The operator stopped during the previous attempt; this is attempt `attempt`.
    Retry { attempt: u32 },
    /// Interrupted more often than restores are retried: it ends `Failed`.
    GiveUp { interruptions: u32 },
}

/// Pure: decides from the status alone. A Restore in a running phase has no job (its job
/// would be registered, and nothing is decided then), so the operator stopped during it.
pub fn decide(status: Option<&RestoreStatus>, run_retries: u32) -> Decision {
    match status.and_then(|s| s.phase) {
        None | Some(RestorePhase::New) => Decision::Start,
        Some(RestorePhase::Completed | RestorePhase::PartiallyFailed | RestorePhase::Failed) => {
            Decision::Done
        }
        Some(RestorePhase::Validating | RestorePhase::Downloading | RestorePhase::Restoring) => {
            let interruptions = status.and_then(|s| s.attempt).unwrap_or(1).max(1);
            if interruptions <= run_retries {
                Decision::Retry {
                    attempt: interruptions + 1,
                }
            } else {
                Decision::GiveUp { interruptions }
            }
        }
    }
}

pub async fn reconcile(restore: Arc<Restore>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if is_finished(restore.status.as_ref().and_then(|s| s.phase)) {
        return Ok(Action::await_change());
    }
    let Some(key) = RunKey::of(restore.as_ref()) else {
        return Ok(Action::await_change());
    };
    // Its job writes the status while it lives, and has the object reconciled when it ends.
    if !ctx.runs.is_registered(&key) {
        let job_ctx = ctx.clone();
        let job_key = key.clone();
        ctx.runs
            .submit(key, move |ticket| job(job_ctx, job_key, ticket));
    }
    Ok(Action::await_change())
}

/// One Restore's job in the run pool: everything from the decision on the API server's object
/// to the final status write.
async fn job(ctx: Arc<Context>, key: RunKey, ticket: Ticket) -> FollowUp {
    let ended = run_job(&ctx, &key, &ticket).await;
    lifecycle::follow_up(&ctx, &key, ended)
}

async fn run_job(ctx: &Context, key: &RunKey, ticket: &Ticket) -> Result<JobEnd, ReconcileError> {
    let mut holds_slot = false;
    loop {
        // The controller's cache can still hold this operator's own earlier status write
        // (e.g. `Restoring`) after the run finished; decide from the API server's object so a
        // restore never runs twice.
        let Some(restore) = lifecycle::fetch_for_job::<Restore>(&ctx.client, key, ticket).await?
        else {
            return Ok(JobEnd::Nothing);
        };
        let status = restore.status.clone().unwrap_or_default();
        let attempt = match decide(restore.status.as_ref(), ctx.run_retries) {
            Decision::Done => return Ok(JobEnd::Nothing),
            Decision::Start => 1,
            Decision::Retry { attempt } => attempt,
            Decision::GiveUp { interruptions } => {
                give_up(ctx, &restore, status, interruptions).await?;
                return Ok(JobEnd::Acted);
            }
        };
        // Before any storage or cluster access, and without a slot, so one message lists every
        // problem at once instead of the first step that trips over one.
        let source = match validate_spec(&restore.spec) {
            Ok(source) => source,
            Err(err) => {
                report_invalid_spec(ctx, &restore, status, &err).await?;
                return Ok(JobEnd::Acted);
            }
        };
        if !holds_slot && let Err(busy) = ticket.try_start() {
            lifecycle::report_waiting(ctx, &restore, status, &ticket.describe(busy)).await?;
            if ticket.start().await.is_err() {
                return Ok(JobEnd::Nothing);
            }
            holds_slot = true;
            // The object may have changed (or gone) during the wait.
            continue;
        }
        execute(&restore, ctx, status, source, attempt, ticket).await?;
        return Ok(JobEnd::Acted);
    }
}

/// Interrupted `interruptions` times and not run again: `Failed`, saying so.
async fn give_up(
    ctx: &Context,
    restore: &Restore,
    mut status: RestoreStatus,
    interruptions: u32,
) -> Result<(), ReconcileError> {
    let err = SourceError::Interrupted {
        interruptions,
        retries: ctx.run_retries,
    };
    let message = format!("Restore failed: {err}");
    let generation = restore.metadata.generation;
    status.completion_time = Some(to_time(Utc::now()));
    set_final(
        &mut status,
        RestorePhase::Failed,
        err.reason(),
        &message,
        generation,
    );
    write_status(ctx, restore, &status).await?;
    publish(ctx, restore, EventType::Warning, "RestoreFailed", &message).await;
    tracing::info!(restore = %lifecycle::display_name(restore), interruptions, "restore given up after interruptions");
    let (namespace, name) = (restore.namespace().unwrap_or_default(), restore.name_any());
    ctx.metrics.run_finished(Finished {
        kind: metrics::RESTORE,
        namespace: &namespace,
        name: &name,
        result: "Failed",
        seconds: None,
        objects: 0,
        bytes: None,
        items_failed: 0,
    });
    Ok(())
}

/// Runs one restore (attempt `attempt`), holding a slot: phases and progress as it goes, then
/// the result; or, when the operator shuts down mid-run, the interruption.
async fn execute(
    restore: &Restore,
    ctx: &Context,
    mut status: RestoreStatus,
    source: Source<'_>,
    attempt: u32,
    ticket: &Ticket,
) -> Result<(), ReconcileError> {
    let generation = restore.metadata.generation;
    let started = Utc::now();
    // Who the restore acts for, read before anything runs; without one it fails at once.
    let acting = lifecycle::acting(ctx, restore).await;
    status = RestoreStatus {
        requester: acting
            .as_ref()
            .ok()
            .and_then(lifecycle::Acting::requester_name),
        phase: Some(RestorePhase::Validating),
        message: Some("Reading the backup's manifest".to_string()),
        start_time: Some(to_time(started)),
        observed_generation: generation,
        attempt: Some(attempt),
        conditions: status.conditions,
        ..RestoreStatus::default()
    };
    set_condition(
        &mut status.conditions,
        "Running",
        true,
        "RestoreRunning",
        "restore in progress",
        generation,
    );
    write_status(ctx, restore, &status).await?;
    let (namespace, name) = (restore.namespace().unwrap_or_default(), restore.name_any());
    tracing::info!(restore = %lifecycle::display_name(restore), trigger = metrics::RESTORE_TRIGGER, attempt, source = %describe_source(source), "restore started");
    ctx.metrics.run_started(
        metrics::RESTORE,
        &namespace,
        &name,
        metrics::RESTORE_TRIGGER,
    );
    let retry_note = if attempt > 1 {
        format!(
            "; attempt {attempt}: the operator stopped during the previous {}",
            if attempt > 2 { "ones" } else { "one" }
        )
    } else {
        String::new()
    };
    publish(
        ctx,
        restore,
        EventType::Normal,
        "RestoreStarted",
        &format!("restore started ({}){retry_note}", describe_source(source)),
    )
    .await;

    // Dropped half-way when the operator shuts down, as a kill would: what was created stays,
    // and the next attempt skips or overwrites it (`conflictResolution`).
    let result = match acting {
        Ok(acting) => {
            ticket
                .unless_cancelled(run_with_progress(
                    restore,
                    source,
                    ctx,
                    &acting,
                    &mut status,
                ))
                .await
        }
        Err(err) => Some(Err(SourceError::from(err))),
    };
    let Some(result) = result else {
        return record_interrupted(ctx, restore, status).await;
    };

    let finished = Utc::now();
    let seconds = (finished - started).num_milliseconds() as f64 / 1000.0;
    status.completion_time = Some(to_time(finished));
    let (phase, event_type, reason, message) = match &result {
        Ok(outcome) => {
            outcome.lists.write_to(&mut status);
            status.backup_info = Some(outcome.backup_info.clone());
            finish_message(outcome, seconds)
        }
        Err(err) => (
            RestorePhase::Failed,
            EventType::Warning,
            "RestoreFailed",
            format!("Restore failed: {err}"),
        ),
    };
    let ready_reason = match &result {
        Ok(_) => format!("{phase:?}"),
        Err(err) => err.reason().to_string(),
    };
    set_final(&mut status, phase, &ready_reason, &message, generation);
    write_status(ctx, restore, &status).await?;
    publish(ctx, restore, event_type, reason, &message).await;
    let (objects, failed) = match &result {
        Ok(outcome) if outcome.validate_only => (
            i64::try_from(outcome.verified).unwrap_or(i64::MAX),
            outcome.lists.total(ItemAction::Failed),
        ),
        Ok(outcome) => (
            outcome.lists.total(ItemAction::Created) + outcome.lists.total(ItemAction::Overwritten),
            outcome.lists.total(ItemAction::Failed),
        ),
        Err(_) => (0, 0),
    };
    let result_label = match phase {
        RestorePhase::Completed => "Completed",
        RestorePhase::PartiallyFailed => "PartiallyFailed",
        _ => "Failed",
    };
    let path = status
        .backup_info
        .as_ref()
        .map(|info| info.backup_path.clone())
        .unwrap_or_default();
    tracing::info!(
        restore = %lifecycle::display_name(restore),
        trigger = metrics::RESTORE_TRIGGER,
        result = result_label,
        objects,
        failed,
        duration_seconds = seconds,
        %path,
        reason,
        %message,
        "restore finished"
    );
    ctx.metrics.run_finished(Finished {
        kind: metrics::RESTORE,
        namespace: &namespace,
        name: &name,
        result: result_label,
        seconds: Some(seconds),
        objects,
        bytes: None,
        items_failed: u64::try_from(failed).unwrap_or(0),
    });
    if let Some(category) = result
        .as_ref()
        .err()
        .and_then(SourceError::storage_category)
    {
        ctx.metrics.storage_error(category);
    }
    Ok(())
}

/// The operator shuts down mid-run: the Restore keeps its phase (so the next operator start
/// counts the interruption and runs it again or gives up) and says what happened.
async fn record_interrupted(
    ctx: &Context,
    restore: &Restore,
    status: RestoreStatus,
) -> Result<(), ReconcileError> {
    let message = format!(
        "Restore interrupted: the operator stopped during the run; the next operator start \
         runs it again from the start (or gives up after {} retries)",
        ctx.run_retries
    );
    lifecycle::report_interrupted(ctx, restore, status, message).await
}

/// A spec that cannot work: Failed at once, every problem in one message and one Warning Event.
async fn report_invalid_spec(
    ctx: &Context,
    restore: &Restore,
    status: RestoreStatus,
    err: &SpecError,
) -> Result<(), ReconcileError> {
    let generation = restore.metadata.generation;
    let now = to_time(Utc::now());
    let message = format!("Restore failed: {err}");
    let mut status = RestoreStatus {
        start_time: Some(now.clone()),
        completion_time: Some(now),
        observed_generation: generation,
        conditions: status.conditions,
        ..RestoreStatus::default()
    };
    set_final(
        &mut status,
        RestorePhase::Failed,
        INVALID_SPEC,
        &message,
        generation,
    );
    write_status(ctx, restore, &status).await?;
    publish(ctx, restore, EventType::Warning, INVALID_SPEC, &message).await;
    Ok(())
}

/// How a restore ended, in status: its final `phase` and `message`, `Running=False`, and
/// `Ready` (true only when `Completed`) with `reason`.
fn set_final(
    status: &mut RestoreStatus,
    phase: RestorePhase,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    status.phase = Some(phase);
    status.message = Some(message.to_string());
    set_condition(
        &mut status.conditions,
        "Running",
        false,
        "Finished",
        "no restore in progress",
        generation,
    );
    set_condition(
        &mut status.conditions,
        "Ready",
        phase == RestorePhase::Completed,
        reason,
        message,
        generation,
    );
}

/// Final phase, Event and message of a restore that ran.
fn finish_message(
    outcome: &RestoreOutcome,
    seconds: f64,
) -> (RestorePhase, EventType, &'static str, String) {
    let lists = &outcome.lists;
    let failures = lists.total(ItemAction::Failed);
    let first_failure = lists
        .failed_resources()
        .first()
        .map(|f| {
            let at = match &f.namespace {
                Some(ns) => format!("{} {ns}/{}", f.kind, f.name),
                None => format!("{} {}", f.kind, f.name),
            };
            format!(" (first: {at}: {})", f.error.clone().unwrap_or_default())
        })
        .unwrap_or_default();
    if let Some(stopped) = &outcome.stopped {
        return (
            RestorePhase::Failed,
            EventType::Warning,
            "RestoreFailed",
            format!("Restore stopped: {stopped}; {}", lists.summary()),
        );
    }
    let what = if outcome.validate_only {
        format!(
            "Validation of {} finished: {} objects verified, {failures} failed",
            outcome.backup_info.backup_path, outcome.verified
        )
    } else if outcome.dry_run {
        format!(
            "Dry run of {} finished (nothing was written): {}",
            outcome.backup_info.backup_path,
            lists.summary()
        )
    } else {
        format!(
            "Restore of {} finished: {}",
            outcome.backup_info.backup_path,
            lists.summary()
        )
    };
    if failures > 0 {
        (
            RestorePhase::PartiallyFailed,
            EventType::Warning,
            "RestorePartiallyFailed",
            format!("{what} in {seconds:.1} s{first_failure}"),
        )
    } else {
        (
            RestorePhase::Completed,
            EventType::Normal,
            "RestoreCompleted",
            format!("{what} in {seconds:.1} s"),
        )
    }
}

fn describe_source(source: Source<'_>) -> String {
    match source {
        Source::Backup { name, .. } => format!("newest complete run of Backup {name}"),
        Source::Path { backup_path, .. } => format!("backup {backup_path}"),
    }
}

/// Where the backup is: the location and the run path.
async fn resolve_source(
    restore: &Restore,
    source: Source<'_>,
    acting: &lifecycle::Acting,
) -> Result<(StorageLocation, String), SourceError> {
    let namespace = restore.namespace().unwrap_or_default();
    match source {
        Source::Path {
            storage_location,
            backup_path,
        } => Ok((storage_location.clone(), backup_path.to_string())),
        Source::Backup {
            name,
            storage_location,
            backup_path,
        } => {
            // Read with the restore's rights: a Backup the requester may not read is no source.
            let api: Api<Backup> = Api::namespaced(acting.client.clone(), &namespace);
            let backup = api
                .get_opt(name)
                .await
                .map_err(|source| SourceError::BackupRead {
                    name: name.to_string(),
                    source,
                })?
                .ok_or_else(|| SourceError::BackupNotFound {
                    namespace: namespace.clone(),
                    name: name.to_string(),
                })?;
            let path = backup
                .status
                .and_then(|s| s.backup_path)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| SourceError::NoCompleteBackup {
                    name: name.to_string(),
                })?;
            let location = storage_location
                .cloned()
                .unwrap_or(backup.spec.storage_location);
            Ok((location, backup_path.map_or(path, str::to_string)))
        }
    }
}

/// A ClusterStorageLocation is shared: the runs it holds for another namespace's Backups are
/// restored only by whoever may read that namespace's Backups (a bucket of one's own, inline,
/// needs no such check: its keys already reach everything in it).
async fn may_restore_run(
    ctx: &Context,
    restore: &Restore,
    requester: &crate::core::requester::Requester,
    location: &str,
    path: &str,
) -> Result<(), storage::StorageError> {
    match crate::core::layout::run_path_backup(path) {
        None => Err(storage::StorageError::NotARunPath {
            path: path.to_string(),
            location: location.to_string(),
        }),
        Some((namespace, _)) if Some(&namespace) == restore.namespace().as_ref() => Ok(()),
        Some((namespace, _)) => {
            crate::k8s::locations::may_read_backups(&ctx.client, requester, location, &namespace)
                .await
        }
    }
}

/// Resolves the source and runs the engine while writing phase changes and progress.
async fn run_with_progress(
    restore: &Restore,
    source: Source<'_>,
    ctx: &Context,
    acting: &lifecycle::Acting,
    status: &mut RestoreStatus,
) -> Result<RestoreOutcome, SourceError> {
    let (location, path) = resolve_source(restore, source, acting).await?;
    if let (Some(shared), Some(requester)) = (location.name.as_deref(), acting.run_as.requester()) {
        may_restore_run(ctx, restore, requester, shared, &path).await?;
    }
    let opened = super::locations::open_storage_for(ctx, acting, restore, &location).await?;
    for warning in &opened.warnings {
        publish(
            ctx,
            restore,
            EventType::Warning,
            warning.reason,
            &warning.message,
        )
        .await;
    }
    let storage = opened.storage;
    let (progress_tx, mut progress_rx) = watch::channel(RestoreProgress::default());
    let engine = engine::run_restore(
        &acting.client,
        &storage,
        &restore.spec,
        &path,
        ctx.restore_objects_in_flight,
        &progress_tx,
    );
    tokio::pin!(engine);
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.tick().await;
    let mut stage = Stage::Validating;
    loop {
        tokio::select! {
            result = &mut engine => {
                if let Some(info) = progress_rx.borrow().backup_info.clone() {
                    status.backup_info = Some(info);
                }
                return result.map_err(SourceError::from);
            }
            _ = ticker.tick() => {
                if progress_rx.has_changed().unwrap_or(false) {
                    let progress = progress_rx.borrow_and_update().clone();
                    stage = progress.stage;
                    apply_progress(status, &progress);
                    // Progress is best effort; the final status write is not.
                    if let Err(err) = write_status(ctx, restore, status).await {
                        tracing::debug!(error = %err, "progress update failed");
                    }
                }
            }
            changed = progress_rx.changed() => {
                if changed.is_err() {
                    continue;
                }
                let progress = progress_rx.borrow_and_update().clone();
                // Phase transitions are written at once, counts every few seconds.
                if progress.stage != stage {
                    stage = progress.stage;
                    apply_progress(status, &progress);
                    if let Err(err) = write_status(ctx, restore, status).await {
                        tracing::debug!(error = %err, "phase update failed");
                    }
                }
            }
        }
    }
}

fn apply_progress(status: &mut RestoreStatus, progress: &RestoreProgress) {
    let (phase, doing) = match progress.stage {
        Stage::Validating => (RestorePhase::Validating, "Reading the backup's manifest"),
        Stage::Downloading => (RestorePhase::Downloading, "Verifying stored objects"),
        Stage::Restoring => (RestorePhase::Restoring, "Restoring objects"),
    };
    status.phase = Some(phase);
    status.message = Some(if progress.total > 0 {
        format!("{doing}: {} of {}", progress.processed, progress.total)
    } else {
        doing.to_string()
    });
    status.progress = Some(crate::api::RestoreProgressStatus {
        processed: i64::try_from(progress.processed).unwrap_or(i64::MAX),
        total: i64::try_from(progress.total).unwrap_or(i64::MAX),
    });
    if let Some(info) = &progress.backup_info {
        status.backup_info = Some(info.clone());
    }
}

async fn publish(ctx: &Context, restore: &Restore, type_: EventType, reason: &str, note: &str) {
    report::publish(&ctx.recorder, restore, type_, reason, "Restore", note).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BackupInfo;
    use crate::core::restore::status::{ObjectRef, StatusLists};

    fn outcome(lists: StatusLists) -> RestoreOutcome {
        RestoreOutcome {
            backup_info: BackupInfo {
                backup_path: "backups/ns/b/2025-01-21T10-30-00Z".to_string(),
                ..BackupInfo::default()
            },
            lists,
            verified: 0,
            stopped: None,
            dry_run: false,
            validate_only: false,
        }
    }

    fn cm(name: &str) -> ObjectRef<'_> {
        ObjectRef {
            api_version: "v1",
            kind: "ConfigMap",
            type_dir: "configmaps",
            namespace: Some("shop"),
            name,
        }
    }

    #[test]
    fn no_failures_is_completed() {
        let mut lists = StatusLists::new();
        lists.created(&cm("a"));
        lists.skipped(&cm("b"), "already exists");
        let (phase, type_, reason, message) = finish_message(&outcome(lists), 1.0);
        assert_eq!(phase, RestorePhase::Completed);
        assert_eq!(type_, EventType::Normal);
        assert_eq!(reason, "RestoreCompleted");
        assert!(message.contains("1 created, 0 overwritten, 1 skipped, 0 failed"));
    }

    #[test]
    fn item_failures_are_partially_failed_naming_the_first() {
        let mut lists = StatusLists::new();
        lists.created(&cm("a"));
        lists.failed(&cm("bad"), "checksum mismatch");
        let (phase, _, reason, message) = finish_message(&outcome(lists), 1.0);
        assert_eq!(phase, RestorePhase::PartiallyFailed);
        assert_eq!(reason, "RestorePartiallyFailed");
        assert!(
            message.contains("ConfigMap shop/bad: checksum mismatch"),
            "{message}"
        );
    }

    #[test]
    fn a_stopped_restore_is_failed_with_the_reason() {
        let mut o = outcome(StatusLists::new());
        o.stopped = Some("ConfigMap shop/a already exists and conflictResolution is fail".into());
        let (phase, type_, reason, message) = finish_message(&o, 1.0);
        assert_eq!(phase, RestorePhase::Failed);
        assert_eq!(type_, EventType::Warning);
        assert_eq!(reason, "RestoreFailed");
        assert!(
            message.contains("ConfigMap shop/a already exists"),
            "{message}"
        );
    }

    #[test]
    fn dry_run_and_validation_say_so() {
        let mut o = outcome(StatusLists::new());
        o.dry_run = true;
        assert!(finish_message(&o, 1.0).3.contains("nothing was written"));
        let mut o = outcome(StatusLists::new());
        o.validate_only = true;
        o.verified = 12;
        assert!(finish_message(&o, 1.0).3.contains("12 objects verified"));
    }

    #[test]
    fn progress_sets_phase_and_message() {
        let mut status = RestoreStatus::default();
        let progress = RestoreProgress {
            stage: Stage::Restoring,
            backup_info: None,
            processed: 3,
            total: 10,
        };
        apply_progress(&mut status, &progress);
        assert_eq!(status.phase, Some(RestorePhase::Restoring));
        assert_eq!(
            status.message.as_deref(),
            Some("Restoring objects: 3 of 10")
        );
        apply_progress(
            &mut status,
            &RestoreProgress {
                stage: Stage::Downloading,
                ..progress
            },
        );
        assert_eq!(status.phase, Some(RestorePhase::Downloading));
    }

    fn status(phase: Option<RestorePhase>, attempt: Option<u32>) -> RestoreStatus {
        RestoreStatus {
            phase,
            attempt,
            ..RestoreStatus::default()
        }
    }

    #[test]
    fn new_and_waiting_restores_start() {
        assert_eq!(decide(None, 1), Decision::Start);
        assert_eq!(decide(Some(&status(None, None)), 1), Decision::Start);
        assert_eq!(
            decide(Some(&status(Some(RestorePhase::New), None)), 0),
            Decision::Start
        );
        for phase in [
            RestorePhase::Completed,
            RestorePhase::PartiallyFailed,
            RestorePhase::Failed,
        ] {
            assert_eq!(
                decide(Some(&status(Some(phase), Some(3))), 1),
                Decision::Done
            );
        }
    }

    #[test]
    fn interrupted_restores_are_retried_a_bounded_number_of_times() {
        for phase in [
            RestorePhase::Validating,
            RestorePhase::Downloading,
            RestorePhase::Restoring,
        ] {
            // Written before the attempt counter existed: a first attempt.
            assert_eq!(
                decide(Some(&status(Some(phase), None)), 1),
                Decision::Retry { attempt: 2 }
            );
            assert_eq!(
                decide(Some(&status(Some(phase), Some(2))), 1),
                Decision::GiveUp { interruptions: 2 }
            );
            assert_eq!(
                decide(Some(&status(Some(phase), Some(2))), 2),
                Decision::Retry { attempt: 3 }
            );
            assert_eq!(
                decide(Some(&status(Some(phase), Some(1))), 0),
                Decision::GiveUp { interruptions: 1 }
            );
        }
    }

    #[test]
    fn given_up_restores_say_how_often_they_were_interrupted() {
        let err = SourceError::Interrupted {
            interruptions: 2,
            retries: 1,
        };
        assert_eq!(err.reason(), "Interrupted");
        assert!(err.to_string().contains("interrupted 2 times"), "{err}");
    }

    #[test]
    fn finished_phases_never_run_again() {
        assert!(is_finished(Some(RestorePhase::Completed)));
        assert!(is_finished(Some(RestorePhase::PartiallyFailed)));
        assert!(is_finished(Some(RestorePhase::Failed)));
        assert!(!is_finished(Some(RestorePhase::Restoring)));
        assert!(!is_finished(Some(RestorePhase::New)));
        assert!(!is_finished(None));
    }
}
