//! The operator: reconcile loops that decide, the run pool that executes runs, and what they
//! share.

pub mod admission;
pub mod backup;
pub mod conditions;
pub mod crds;
pub mod health;
pub mod install;
pub mod leader;
pub mod lifecycle;
pub mod locations;
pub mod metrics;
pub mod report;
pub mod restore;
pub mod runs;
pub mod watch;

use std::net::SocketAddr;
use std::time::Duration;

use kube::Client;

pub use health::StartError;
pub use metrics::Telemetry;
use runs::Shutdown;

/// Backups running at the same time, unless told otherwise.
pub const DEFAULT_BACKUP_CONCURRENCY: usize = 2;
/// Restores running at the same time, unless told otherwise.
pub const DEFAULT_RESTORE_CONCURRENCY: usize = 2;
/// How often a run the operator was interrupted in (stopped or killed mid-run) is run again
/// before it ends `Failed`.
pub const DEFAULT_RUN_RETRIES: u32 = 1;
/// How long runs in flight get, after SIGTERM or SIGINT, to stop and record that they were
/// interrupted: well inside the 30 s Kubernetes gives a pod before it kills it.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// Which controllers [`run`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controllers {
    /// Every controller: Backups, Restores, and the availability of ClusterStorageLocations.
    Both,
    /// Only the Backup controller.
    Backups,
    /// Only the Restore controller.
    Restores,
    /// Only the ClusterStorageLocation availability checks.
    Locations,
}

/// Whose rights runs use (see `core::requester::RunAs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tenancy {
    /// Runs impersonate the requester stamped on each object; unstamped objects do not run.
    #[default]
    Multi,
    /// Runs use the operator's own identity (`--single-tenant`).
    Single,
}

/// The namespace the operator runs in when nothing says otherwise (`config/`).
pub const DEFAULT_OPERATOR_NAMESPACE: &str = "cluster-backup-system";

/// How `cluster-backup run` runs the operator.
#[derive(Clone, Debug)]
pub struct Settings {
    pub controllers: Controllers,
    /// Watch only this namespace (default: all).
    pub namespace: Option<String>,
    pub backup_concurrency: usize,
    pub restore_concurrency: usize,
    /// Objects one restore creates at the same time (per priority level).
    pub restore_objects_in_flight: usize,
    /// Lists one backup has in flight.
    pub backup_lists_in_flight: usize,
    pub run_retries: u32,
    pub shutdown_timeout: Duration,
    pub tenancy: Tenancy,
    /// Where the Secrets and ConfigMaps of admin-owned storage locations live (the operator's
    /// own namespace).
    pub operator_namespace: String,
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None` (the default, so
    /// operators started in tests never collide on a port): not at all.
    pub metrics_bind_address: Option<SocketAddr>,
    /// Run the controllers only while holding this Lease (`--leader-elect`); `None`: always.
    pub leader_election: Option<leader::LeaderElection>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            controllers: Controllers::Both,
            namespace: None,
            backup_concurrency: DEFAULT_BACKUP_CONCURRENCY,
            restore_concurrency: DEFAULT_RESTORE_CONCURRENCY,
            restore_objects_in_flight: crate::engine::restore::RESTORE_CONCURRENCY,
            backup_lists_in_flight: crate::engine::backup::LISTS_IN_FLIGHT,
            run_retries: DEFAULT_RUN_RETRIES,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            tenancy: Tenancy::default(),
            operator_namespace: DEFAULT_OPERATOR_NAMESPACE.to_string(),
            metrics_bind_address: None,
            leader_election: None,
        }
    }
}

/// Says at start-up when multi-tenant runs cannot work: while the requester-stamp policy is
/// not in force, no run starts (each says why in its status).
async fn report_policy_state(client: &Client) {
    let policy = admission::REQUESTER_POLICY_NAME;
    match admission::check_policy(client).await {
        None => {
            tracing::info!(%policy, "requester-stamp policy in force; runs act as their requester")
        }
        Some(problem) => tracing::error!(
            %policy,
            %problem,
            "no Backup or Restore runs until the requester-stamp policy is in force: run \
             `cluster-backup install` (or apply config/admission), or start the operator with \
             --single-tenant if only administrators create them"
        ),
    }
}

/// Runs the Backup and Restore controllers and the ClusterStorageLocation checks (or one of
/// them) until SIGTERM or SIGINT; then cancels the runs in flight and returns once they have
/// recorded that, or when the shutdown timeout is up. Dropping the future aborts runs in flight
/// (as a killed operator would leave them). With leader election the controllers run only
/// while this process leads.
///
/// Fails at once, before any controller starts, when the admin port cannot be bound or the
/// CRDs are not served or may not be listed ([`health::check_access`]); fails when the process
/// lost the lead (it should exit: Kubernetes restarts it as a standby).
pub async fn run(client: Client, settings: Settings) -> Result<(), OperatorError> {
    let (state, _) = leader::state_channel(settings.leader_election.is_some());
    run_reporting(client, settings, &state).await
}

/// Why [`run`] returned early.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Leader(#[from] leader::LeaderError),
}

/// [`run`], publishing whether this process leads on `state` (readiness follows it).
pub async fn run_reporting(
    client: Client,
    settings: Settings,
    state: &tokio::sync::watch::Sender<leader::LeaderState>,
) -> Result<(), OperatorError> {
    let telemetry = Telemetry::default();
    let listener = match settings.metrics_bind_address {
        Some(address) => Some(metrics::bind(address).await?),
        None => None,
    };
    health::check_access(&client, &settings, &telemetry.health).await?;
    let server = async {
        match listener {
            Some(listener) => {
                metrics::serve(
                    listener,
                    telemetry.metrics.clone(),
                    telemetry.health.clone(),
                )
                .await
            }
            None => std::future::pending().await,
        }
    };
    let readiness = async {
        let mut leading = state.subscribe();
        loop {
            let now = match *leading.borrow_and_update() {
                leader::LeaderState::Leader => health::LeaderState::Leader,
                leader::LeaderState::Standby => health::LeaderState::Standby,
                leader::LeaderState::NotElecting => health::LeaderState::NotElecting,
            };
            telemetry.health.set_leader_state(now);
            if leading.changed().await.is_err() {
                return std::future::pending::<()>().await;
            }
        }
    };
    let shutdown = Shutdown::new(settings.shutdown_timeout);
    let controllers = run_controllers(client.clone(), &settings, &shutdown, &telemetry);
    let elected = async {
        match settings.leader_election.clone() {
            None => {
                state.send_replace(leader::LeaderState::NotElecting);
                controllers.await;
                Ok(())
            }
            Some(election) => {
                leader::lead(client, election, state, shutdown.requested(), controllers).await
            }
        }
    };
    tokio::select! {
        result = elected => result.map_err(OperatorError::from),
        () = shutdown.on_signal() => Ok(()),
        () = server => Ok(()),
        () = readiness => Ok(()),
    }
}

/// The controllers [`Settings`] asks for, until they stopped after a shutdown request.
async fn run_controllers(
    client: Client,
    settings: &Settings,
    shutdown: &Shutdown,
    telemetry: &Telemetry,
) {
    if settings.tenancy == Tenancy::Multi {
        report_policy_state(&client).await;
    }
    let backups = async {
        if matches!(
            settings.controllers,
            Controllers::Both | Controllers::Backups
        ) {
            lifecycle::run_controller::<crate::api::Backup, _, _>(
                "backup",
                client.clone(),
                settings,
                settings.backup_concurrency,
                shutdown,
                telemetry,
                backup::reconcile,
            )
            .await;
        }
    };
    let restores = async {
        if matches!(
            settings.controllers,
            Controllers::Both | Controllers::Restores
        ) {
            lifecycle::run_controller::<crate::api::Restore, _, _>(
                "restore",
                client.clone(),
                settings,
                settings.restore_concurrency,
                shutdown,
                telemetry,
                restore::reconcile,
            )
            .await;
        }
    };
    let locations = async {
        if matches!(
            settings.controllers,
            Controllers::Both | Controllers::Locations
        ) {
            locations::run_controller(client.clone(), settings, shutdown, telemetry).await;
        }
    };
    futures::future::join3(backups, restores, locations).await;
}
