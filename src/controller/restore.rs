//! The Restore reconciler: a one-shot run of the restore engine, reported in status and as
//! Events.
//!
//! Phases: `New` → `Validating` (manifest, target) → `Downloading` (`validateOnly` only) →
//! `Restoring` → `Completed` | `PartiallyFailed` | `Failed`. A finished Restore never runs again;
//! a Restore found mid-run (the operator restarted) runs again from the start, which is safe
//! because existing objects are handled by `conflictResolution`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use super::conditions::set_condition;
use super::report;
use super::watch::{QuickBackoff, log_result};
use crate::api::{Backup, Restore, RestorePhase, RestoreStatus, StorageLocation, to_time};
use crate::core::restore::status::Action as ItemAction;
use crate::engine::restore::{self as engine, RestoreOutcome, RestoreProgress, Stage};
use crate::engine::restore_spec::{Source, SpecError, validate_spec};
use crate::storage::{self, Storage};

/// How often a running restore writes its progress to status.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);
/// Back-off after a reconcile error (API server trouble); never a hot loop.
const ERROR_REQUEUE: Duration = Duration::from_secs(15);
/// Condition and Event reason of a spec that cannot work.
const INVALID_SPEC: &str = "InvalidSpec";

pub use super::report::Context;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cannot update status of {name}: {source}")]
    Status {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot read {name}: {source}")]
    Read {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Why a restore could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
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
}

impl SourceError {
    fn reason(&self) -> &'static str {
        match self {
            SourceError::BackupNotFound { .. } => "BackupNotFound",
            SourceError::BackupRead { .. } => "ApiError",
            SourceError::NoCompleteBackup { .. } => "BackupIncomplete",
            SourceError::Storage(_) => "StorageError",
            SourceError::Engine(err) => err.reason(),
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

/// Runs the Restore controller until a shutdown signal. `namespace` limits it to one namespace.
pub async fn run(client: Client, namespace: Option<String>) {
    let api: Api<Restore> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let ctx = Arc::new(Context::new(client));
    Controller::new(api, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(2))
        .trigger_backoff(QuickBackoff::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move { log_result("Restore", result) })
        .await;
}

fn error_policy(restore: Arc<Restore>, err: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(restore = %restore.name_any(), error = %err, "reconcile failed; retrying in 15 s");
    Action::requeue(ERROR_REQUEUE)
}

pub async fn reconcile(restore: Arc<Restore>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if is_finished(restore.status.as_ref().and_then(|s| s.phase)) {
        return Ok(Action::await_change());
    }
    // The watch cache can still hold our own earlier status write (e.g. `Restoring`) after the
    // run finished; decide from the API server's current object so a restore never runs twice.
    let api: Api<Restore> =
        Api::namespaced(ctx.client.clone(), &restore.namespace().unwrap_or_default());
    let Some(fresh) =
        api.get_opt(&restore.name_any())
            .await
            .map_err(|source| ReconcileError::Read {
                name: restore.name_any(),
                source,
            })?
    else {
        return Ok(Action::await_change());
    };
    let status = fresh.status.clone().unwrap_or_default();
    if is_finished(status.phase) {
        return Ok(Action::await_change());
    }
    execute(&fresh, &ctx, status).await?;
    Ok(Action::await_change())
}

async fn execute(
    restore: &Restore,
    ctx: &Context,
    mut status: RestoreStatus,
) -> Result<(), ReconcileError> {
    // Before any storage or cluster access, so one message lists every problem instead of
    // the first step that trips over one.
    let source = match validate_spec(&restore.spec) {
        Ok(source) => source,
        Err(err) => return report_invalid_spec(ctx, restore, status, &err).await,
    };
    let generation = restore.metadata.generation;
    let started = Utc::now();
    status = RestoreStatus {
        phase: Some(RestorePhase::Validating),
        message: Some("Reading the backup's manifest".to_string()),
        start_time: Some(to_time(started)),
        observed_generation: generation,
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
    tracing::info!(restore = %format!("{}/{}", restore.namespace().unwrap_or_default(), restore.name_any()), "restore started");
    publish(
        ctx,
        restore,
        EventType::Normal,
        "RestoreStarted",
        &format!("restore started ({})", describe_source(source)),
    )
    .await;

    let result = run_with_progress(restore, source, ctx, &mut status).await;

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
    status.phase = Some(phase);
    status.message = Some(message.clone());
    set_condition(
        &mut status.conditions,
        "Running",
        false,
        "Finished",
        "no restore in progress",
        generation,
    );
    let ready_reason = match &result {
        Ok(_) => format!("{phase:?}"),
        Err(err) => err.reason().to_string(),
    };
    set_condition(
        &mut status.conditions,
        "Ready",
        phase == RestorePhase::Completed,
        &ready_reason,
        &message,
        generation,
    );
    write_status(ctx, restore, &status).await?;
    publish(ctx, restore, event_type, reason, &message).await;
    tracing::info!(restore = %format!("{}/{}", restore.namespace().unwrap_or_default(), restore.name_any()), reason, %message, "restore finished");
    Ok(())
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
        phase: Some(RestorePhase::Failed),
        message: Some(message.clone()),
        start_time: Some(now.clone()),
        completion_time: Some(now),
        observed_generation: generation,
        conditions: status.conditions,
        ..RestoreStatus::default()
    };
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
        false,
        INVALID_SPEC,
        &message,
        generation,
    );
    write_status(ctx, restore, &status).await?;
    publish(ctx, restore, EventType::Warning, INVALID_SPEC, &message).await;
    Ok(())
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
    ctx: &Context,
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
            let api: Api<Backup> = Api::namespaced(ctx.client.clone(), &namespace);
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

/// Resolves the source and runs the engine while writing phase changes and progress.
async fn run_with_progress(
    restore: &Restore,
    source: Source<'_>,
    ctx: &Context,
    status: &mut RestoreStatus,
) -> Result<RestoreOutcome, SourceError> {
    let namespace = restore.namespace().unwrap_or_default();
    let (location, path) = resolve_source(restore, source, ctx).await?;
    let resolved =
        crate::k8s::credentials::resolve_credentials(&ctx.client, &namespace, &location).await?;
    for warning in &resolved.warnings {
        publish(
            ctx,
            restore,
            EventType::Warning,
            "CredentialsWarning",
            warning,
        )
        .await;
    }
    let storage = Storage::new(&location, resolved.credentials)?;
    let (progress_tx, mut progress_rx) = watch::channel(RestoreProgress::default());
    let engine = engine::run_restore(&ctx.client, &storage, &restore.spec, &path, &progress_tx);
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
    if let Some(info) = &progress.backup_info {
        status.backup_info = Some(info.clone());
    }
}

async fn write_status(
    ctx: &Context,
    restore: &Restore,
    status: &RestoreStatus,
) -> Result<(), ReconcileError> {
    report::apply_status(&ctx.client, restore, status)
        .await
        .map_err(|source| ReconcileError::Status {
            name: restore.name_any(),
            source,
        })
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
