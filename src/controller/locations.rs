//! Admin-owned storage: opening the storage of a Backup's or Restore's run with the rights the
//! run uses ([`open_storage_for`]), and the availability controller, which checks every
//! ClusterStorageLocation when its spec changes and every few minutes, writes `Available` or
//! `Unavailable` to its status, and sends an Event when that flips.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use super::Settings;
use super::conditions::set_condition;
use super::crds::FIELD_MANAGER;
use super::lifecycle::Acting;
use super::report::{self, Context};
use super::runs::Shutdown;
use super::watch::{QuickBackoff, log_result};
use crate::api::{
    ClusterStorageLocation, ClusterStorageLocationStatus, LocationPhase, StorageLocation,
    from_time, to_time,
};
use crate::k8s::locations::{self, Access, Opened};
use crate::storage::{Probe, StorageError};

/// How often an available location is checked again.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How often an unavailable location is checked again, so a fix shows soon.
pub const RECHECK_UNAVAILABLE: Duration = Duration::from_secs(60);
/// Longest a check may take; storage that has not answered by then is unavailable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The storage `location` of `object` (a Backup or Restore in its namespace), opened with the
/// rights its run uses (`acting`): in multi-tenant mode the requester stamped on the object, in
/// single-tenant mode the operator's own.
pub async fn open_storage_for<K: Resource>(
    ctx: &Context,
    acting: &Acting,
    object: &K,
    location: &StorageLocation,
) -> Result<Opened, StorageError> {
    let access = Access {
        operator: &ctx.client,
        requester: &acting.client,
        run_as: &acting.run_as,
        operator_namespace: &ctx.operator_namespace,
    };
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    locations::open_storage(&access, &namespace, location).await
}

/// What the availability controller shares between reconciles.
struct Checker {
    client: Client,
    recorder: Recorder,
    operator_namespace: String,
    metrics: Arc<super::metrics::Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("cannot update status of ClusterStorageLocation {name}: {source}")]
    Status {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Runs the availability controller until `shutdown`.
pub async fn run_controller(
    client: Client,
    settings: &Settings,
    shutdown: &Shutdown,
    telemetry: &super::Telemetry,
) {
    let api: Api<ClusterStorageLocation> = Api::all(client.clone());
    let reporter = Reporter {
        controller: FIELD_MANAGER.to_string(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let checker = Arc::new(Checker {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        operator_namespace: settings.operator_namespace.clone(),
        metrics: telemetry.metrics.clone(),
    });
    let stopping = shutdown.clone();
    let controller = Controller::new(api, watcher::Config::default());
    let watched = telemetry.watch_store(super::metrics::LOCATION, controller.store());
    let controller = controller
        .trigger_backoff(QuickBackoff::default())
        .graceful_shutdown_on(async move { stopping.requested().await })
        .run(reconcile, error_policy, checker)
        .for_each(|result| {
            log_result("ClusterStorageLocation", result);
            futures::future::ready(())
        });
    // The store watcher only reads; it ends with the controller.
    tokio::select! {
        () = controller => {}
        () = watched => {}
    }
    tracing::info!(kind = "ClusterStorageLocation", "controller stopped");
}

fn error_policy(
    location: Arc<ClusterStorageLocation>,
    err: &LocationError,
    checker: Arc<Checker>,
) -> Action {
    checker.metrics.reconcile_error(super::metrics::LOCATION);
    tracing::warn!(name = %location.name_any(), error = %err, "location check failed; retrying in 15 s");
    Action::requeue(super::lifecycle::ERROR_REQUEUE)
}

async fn reconcile(
    location: Arc<ClusterStorageLocation>,
    checker: Arc<Checker>,
) -> Result<Action, LocationError> {
    let now = Utc::now();
    let previous = location.status.clone().unwrap_or_default();
    let generation = location.metadata.generation;
    // Our own status write comes back as a watch event; it needs no second check.
    if let Some(wait) = next_check_in(&previous, generation, now) {
        // After an operator restart the gauge starts from the last check's result.
        if let Some(phase) = previous.phase {
            checker
                .metrics
                .set_location_available(&location.name_any(), phase == LocationPhase::Available);
        }
        return Ok(Action::requeue(wait));
    }
    let checked = check(&checker.client, &checker.operator_namespace, &location).await;
    let (status, flipped) = checked_status(previous, generation, now, &checked);
    write_status(&checker.client, &location, &status).await?;
    let phase = status.phase.unwrap_or(LocationPhase::Unavailable);
    checker
        .metrics
        .set_location_available(&location.name_any(), phase == LocationPhase::Available);
    let message = status.message.clone().unwrap_or_default();
    tracing::info!(name = %location.name_any(), %phase, %message, "storage location checked");
    if flipped {
        let (type_, reason) = match phase {
            LocationPhase::Available => (EventType::Normal, "StorageAvailable"),
            LocationPhase::Unavailable => (EventType::Warning, "StorageUnavailable"),
        };
        report::publish(
            &checker.recorder,
            location.as_ref(),
            type_,
            reason,
            "Check",
            &message,
        )
        .await;
    }
    Ok(Action::requeue(interval(phase)))
}

/// Opens `location` with its credentials and probes it (creating nothing), within
/// [`PROBE_TIMEOUT`]. What it found, in words, or why it is unavailable.
pub async fn check(
    client: &Client,
    operator_namespace: &str,
    location: &ClusterStorageLocation,
) -> Result<String, StorageError> {
    let storage = locations::open_cluster_location(client, operator_namespace, location).await?;
    let probe = tokio::time::timeout(PROBE_TIMEOUT, storage.probe())
        .await
        .map_err(|_| StorageError::Unreachable {
            endpoint: storage.describe(),
            reason: format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
            source: "probe timed out".into(),
        })??;
    Ok(match probe {
        Probe::Ready => format!("{} is reachable", storage.describe()),
        Probe::BucketMissing => format!(
            "{} is reachable; the bucket does not exist yet and is created by the first backup",
            storage.describe()
        ),
    })
}

/// How long until the next check, when the status already describes this generation and its
/// last check is recent; `None`: check now.
pub fn next_check_in(
    status: &ClusterStorageLocationStatus,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let (Some(phase), Some(checked)) = (status.phase, status.last_checked.as_ref()) else {
        return None;
    };
    if status.observed_generation != generation {
        return None;
    }
    let since = (now - from_time(checked))
        .to_std()
        .unwrap_or(Duration::ZERO);
    interval(phase).checked_sub(since).filter(|d| !d.is_zero())
}

fn interval(phase: LocationPhase) -> Duration {
    match phase {
        LocationPhase::Available => CHECK_INTERVAL,
        LocationPhase::Unavailable => RECHECK_UNAVAILABLE,
    }
}

/// The status after a check, and whether the phase changed (an Event then says so).
pub fn checked_status(
    mut status: ClusterStorageLocationStatus,
    generation: Option<i64>,
    now: DateTime<Utc>,
    checked: &Result<String, StorageError>,
) -> (ClusterStorageLocationStatus, bool) {
    let (phase, reason, message) = match checked {
        Ok(message) => (LocationPhase::Available, "Reachable", message.clone()),
        Err(err) => (
            LocationPhase::Unavailable,
            err.category().as_str(),
            err.to_string(),
        ),
    };
    let flipped = status.phase != Some(phase);
    set_condition(
        &mut status.conditions,
        "Available",
        phase == LocationPhase::Available,
        reason,
        &message,
        generation,
    );
    status.phase = Some(phase);
    status.message = Some(message);
    status.last_checked = Some(to_time(now));
    status.observed_generation = generation;
    (status, flipped)
}

async fn write_status(
    client: &Client,
    location: &ClusterStorageLocation,
    status: &ClusterStorageLocationStatus,
) -> Result<(), LocationError> {
    let api: Api<ClusterStorageLocation> = Api::all(client.clone());
    let patch = serde_json::json!({
        "apiVersion": ClusterStorageLocation::api_version(&()),
        "kind": ClusterStorageLocation::kind(&()),
        "status": status,
    });
    api.patch_status(
        &location.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| LocationError::Status {
        name: location.name_any(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn unreachable() -> Result<String, StorageError> {
        Err(StorageError::Unreachable {
            endpoint: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
            source: "refused".into(),
        })
    }

    #[test]
    fn a_new_or_changed_location_is_checked_at_once() {
        let fresh = ClusterStorageLocationStatus::default();
        assert_eq!(next_check_in(&fresh, Some(1), at(0)), None);
        let (status, flipped) = checked_status(fresh, Some(1), at(0), &Ok("ok".into()));
        assert!(flipped);
        assert_eq!(next_check_in(&status, Some(2), at(1)), None);
    }

    #[test]
    fn a_recent_check_waits_for_its_interval() {
        let (available, _) = checked_status(
            ClusterStorageLocationStatus::default(),
            Some(1),
            at(0),
            &Ok("ok".into()),
        );
        assert_eq!(
            next_check_in(&available, Some(1), at(60)),
            Some(CHECK_INTERVAL - Duration::from_secs(60))
        );
        assert_eq!(next_check_in(&available, Some(1), at(300)), None);
        let (unavailable, flipped) = checked_status(available, Some(1), at(0), &unreachable());
        assert!(flipped);
        assert_eq!(
            next_check_in(&unavailable, Some(1), at(10)),
            Some(Duration::from_secs(50))
        );
    }

    #[test]
    fn status_says_what_was_found() {
        let (status, _) = checked_status(
            ClusterStorageLocationStatus::default(),
            Some(3),
            at(0),
            &unreachable(),
        );
        assert_eq!(status.phase, Some(LocationPhase::Unavailable));
        assert!(
            status
                .message
                .as_deref()
                .unwrap()
                .contains("connection refused")
        );
        assert_eq!(status.observed_generation, Some(3));
        let condition = &status.conditions[0];
        assert_eq!(
            (condition.type_.as_str(), condition.status.as_str()),
            ("Available", "False")
        );
        assert_eq!(condition.reason, "Unreachable");
        // The same phase again is no flip.
        let (_, flipped) = checked_status(status, Some(3), at(60), &unreachable());
        assert!(!flipped);
    }
}
