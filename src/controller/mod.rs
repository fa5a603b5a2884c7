//! The operator: reconcile loops that decide, the run pool that executes runs, and what they
//! share.

pub mod admission;
pub mod backup;
pub mod conditions;
pub mod crds;
pub mod install;
pub mod leader;
pub mod lifecycle;
pub mod locations;
pub mod report;
pub mod restore;
pub mod runs;
pub mod watch;

use std::time::Duration;

use kube::Client;

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
    pub run_retries: u32,
    pub shutdown_timeout: Duration,
    pub tenancy: Tenancy,
    /// Where the Secrets and ConfigMaps of admin-owned storage locations live (the operator's
    /// own namespace).
    pub operator_namespace: String,
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
            run_retries: DEFAULT_RUN_RETRIES,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            tenancy: Tenancy::default(),
            operator_namespace: DEFAULT_OPERATOR_NAMESPACE.to_string(),
            leader_election: None,
        }
    }
}

/// Says at start-up when multi-tenant runs cannot work: without the requester-stamp policy
/// every Backup and Restore written from now on is refused as unstamped.
async fn report_policy_state(client: &Client) {
    use admission::PolicyState;
    let policy = admission::REQUESTER_POLICY_NAME;
    match admission::policy_state(client).await {
        PolicyState::Installed => {
            tracing::info!(%policy, "requester-stamp policy installed; runs act as their requester");
        }
        PolicyState::Missing => tracing::error!(
            %policy,
            "requester-stamp policy is not installed: Backups and Restores have no trustworthy \
             requester and will not run; run `cluster-backup install` (or apply config/admission), \
             or start the operator with --single-tenant if only administrators create them"
        ),
        PolicyState::Outdated => tracing::warn!(
            %policy,
            "the installed requester-stamp policy differs from this operator version's; run \
             `cluster-backup install` to update it"
        ),
        PolicyState::Unknown(error) => tracing::warn!(
            %policy,
            %error,
            "cannot check the requester-stamp policy; runs still refuse unstamped objects"
        ),
    }
}

/// Runs the Backup and Restore controllers and the ClusterStorageLocation checks (or one of
/// them) until SIGTERM or SIGINT; then cancels the runs in flight and returns once they have
/// recorded that, or when the shutdown timeout is up. Dropping the future aborts runs in flight
/// (as a killed operator would leave them). With leader election the controllers run only
/// while this process leads; `Err` when it lost the lead (the process should exit).
pub async fn run(client: Client, settings: Settings) -> Result<(), leader::LeaderError> {
    let (state, _) = leader::state_channel(settings.leader_election.is_some());
    run_reporting(client, settings, &state).await
}

/// [`run`], publishing whether this process leads on `state` (for readiness).
pub async fn run_reporting(
    client: Client,
    settings: Settings,
    state: &tokio::sync::watch::Sender<leader::LeaderState>,
) -> Result<(), leader::LeaderError> {
    let shutdown = Shutdown::new(settings.shutdown_timeout);
    let controllers = run_controllers(client.clone(), &settings, &shutdown);
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
        result = elected => result,
        () = shutdown.on_signal() => Ok(()),
    }
}

/// The controllers [`Settings`] asks for, until they stopped after a shutdown request.
async fn run_controllers(client: Client, settings: &Settings, shutdown: &Shutdown) {
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
            locations::run_controller(client.clone(), settings, shutdown).await;
        }
    };
    futures::future::join3(backups, restores, locations).await;
}
