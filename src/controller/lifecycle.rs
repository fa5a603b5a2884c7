//! What the Backup and Restore controllers do the same way around their runs: start a
//! controller with its run pool, read the API server's current object for a job, turn how a
//! job ended into its follow-up, and say that a run waits for a free slot.

use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryFuture};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::Tenancy;
use super::conditions::set_condition;
use super::report::{self, Context};
use super::runs::{self, FollowUp, RunKey, RunPool, Shutdown, Ticket};
use super::watch::{QuickBackoff, log_result};
use crate::api::{BackupPhase, BackupStatus, RestorePhase, RestoreStatus};
use crate::core::requester::{Requester, RequesterError, RunAs};
use crate::engine::backup::BackupError;
use crate::k8s::impersonate::{ImpersonationError, impersonating};
use crate::storage::StorageError;

/// Why a reconcile or a job could not do its part; it is tried again after [`ERROR_REQUEUE`].
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
    #[error("cannot validate {name}: {source}")]
    Validate {
        name: String,
        #[source]
        source: Box<BackupError>,
    },
    #[error("cannot reach the storage of {name}: {source}")]
    Storage {
        name: String,
        #[source]
        source: StorageError,
    },
}

/// Whose rights a run uses, and the client that carries them: every read of a Backup and every
/// write of a Restore goes through it; status and Events use the operator's own client.
pub struct Acting {
    pub run_as: RunAs,
    pub client: Client,
}

impl Acting {
    /// The requester's user name for status, or `None` in single-tenant mode.
    pub fn requester_name(&self) -> Option<String> {
        self.run_as.requester().map(|r| r.username.clone())
    }
}

/// Why a run cannot start: nobody it could act for.
#[derive(Debug, thiserror::Error)]
pub enum ActingError {
    #[error(
        "{source}. In multi-tenant mode a Backup or Restore runs only with the rights of the \
         identity the API server recorded (`cluster-backup install` installs the policy that \
         records it); an administrator who runs the operator with --single-tenant turns this off"
    )]
    NoRequester {
        #[from]
        source: RequesterError,
    },
    #[error(
        "{source}: in multi-tenant mode no run starts while it is not in force, since anyone who \
         may write a Backup or Restore could then write any requester (`cluster-backup install` \
         installs it)"
    )]
    PolicyNotInForce {
        #[from]
        source: super::admission::PolicyProblem,
    },
    #[error(transparent)]
    Impersonation(#[from] ImpersonationError),
}

impl ActingError {
    pub fn reason(&self) -> &'static str {
        match self {
            ActingError::NoRequester { .. } => "NoRequester",
            ActingError::PolicyNotInForce { .. } => "RequesterPolicyMissing",
            ActingError::Impersonation(_) => "ImpersonationFailed",
        }
    }
}

/// Who `object`'s run acts as: in multi-tenant mode the stamped requester (a client
/// impersonating it), as long as the policy that makes stamps trustworthy is in force; in
/// single-tenant mode the operator.
pub async fn acting<K: Resource>(ctx: &Context, object: &K) -> Result<Acting, ActingError> {
    let run_as = run_as(ctx.tenancy, object.meta().annotations.as_ref())?;
    if run_as.requester().is_some() {
        ctx.policy.ensure().await?;
    }
    let client = match run_as.requester() {
        Some(requester) => impersonating(&ctx.client, requester)?,
        None => ctx.client.clone(),
    };
    Ok(Acting { run_as, client })
}

/// Whose rights a run of an object with `annotations` uses.
fn run_as(
    tenancy: Tenancy,
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<RunAs, RequesterError> {
    match tenancy {
        Tenancy::Single => Ok(RunAs::Operator),
        Tenancy::Multi => {
            let none = BTreeMap::new();
            Requester::from_annotations(annotations.unwrap_or(&none)).map(RunAs::Requester)
        }
    }
}

/// A namespaced custom resource a controller here watches (a Backup or a Restore).
pub trait Watched:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// What the steps shared by both controllers write in a Backup's or a Restore's status.
pub trait RunStatus: Serialize {
    fn message_mut(&mut self) -> &mut Option<String>;
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// An object that never had a phase gets `New`.
    fn mark_new(&mut self);

    /// `message`, and `Running=False` with `reason` saying why.
    fn not_running(&mut self, reason: &str, message: String, generation: Option<i64>) {
        set_condition(
            self.conditions_mut(),
            "Running",
            false,
            reason,
            &message,
            generation,
        );
        *self.message_mut() = Some(message);
    }
}

impl RunStatus for BackupStatus {
    fn message_mut(&mut self) -> &mut Option<String> {
        &mut self.message
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn mark_new(&mut self) {
        self.phase.get_or_insert(BackupPhase::New);
    }
}

impl RunStatus for RestoreStatus {
    fn message_mut(&mut self) -> &mut Option<String> {
        &mut self.message
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn mark_new(&mut self) {
        self.phase.get_or_insert(RestorePhase::New);
    }
}

/// Back-off after a reconcile or run error (API server trouble); never a hot loop.
pub const ERROR_REQUEUE: Duration = Duration::from_secs(15);
/// Reconciles at once. They only decide (runs execute in the pool), so this bounds API calls,
/// not runs.
const RECONCILE_CONCURRENCY: u16 = 16;
/// Pause before the next reconcile when a job found nothing to do: the controller's cache was
/// behind the API server, and its watch event is due.
const CACHE_BEHIND_PAUSE: Duration = Duration::from_secs(1);

/// Runs the controller of `K` and its run pool (`concurrency` runs at once, interrupted runs
/// retried `run_retries` times) until `shutdown`; then cancels the runs in flight and waits for
/// them until the shutdown deadline. `namespace` limits it to one namespace; `kind` names the
/// runs in messages ("backup", "restore").
#[allow(clippy::too_many_arguments)]
pub async fn run_controller<K, R, F>(
    kind: &'static str,
    client: Client,
    settings: &super::Settings,
    concurrency: usize,
    shutdown: &Shutdown,
    telemetry: &super::Telemetry,
    reconcile: R,
) where
    K: Watched,
    R: FnMut(Arc<K>, Arc<Context>) -> F,
    F: TryFuture<Ok = Action> + Send + 'static,
    F::Error: std::error::Error + Send + 'static,
{
    let api: Api<K> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (followups, mut ended) = mpsc::unbounded_channel::<RunKey>();
    let pool = RunPool::new(kind, concurrency, shutdown.token(), followups);
    pool.observe(telemetry.metrics.clone());
    let ctx = Arc::new(Context::new(
        client,
        pool.runs(),
        settings,
        telemetry.metrics.clone(),
    ));
    let ended = futures::stream::poll_fn(move |cx| ended.poll_recv(cx))
        .map(|key| ObjectRef::<K>::new(&key.name).within(&key.namespace));
    let stopping = shutdown.clone();
    let log_kind = K::kind(&()).to_string();
    let controller = Controller::new(api, watcher::Config::default());
    let watched = telemetry.watch_store(kind, controller.store());
    let controller = controller
        .with_config(ControllerConfig::default().concurrency(RECONCILE_CONCURRENCY))
        .trigger_backoff(QuickBackoff::default())
        .reconcile_on(ended)
        .graceful_shutdown_on(async move { stopping.requested().await })
        .run(reconcile, error_policy::<K, F::Error>, ctx)
        .for_each(move |result| {
            log_result(&log_kind, result);
            futures::future::ready(())
        });
    // The store watcher only reads; it ends with the controller.
    let controller = async {
        tokio::select! {
            () = controller => {}
            () = watched => {}
        }
    };
    runs::run_controller(kind, controller, pool, shutdown).await;
}

fn error_policy<K: Resource<DynamicType = ()>, E: Display>(
    object: Arc<K>,
    err: &E,
    ctx: Arc<Context>,
) -> Action {
    ctx.metrics.reconcile_error(ctx.runs.kind());
    tracing::warn!(kind = %K::kind(&()), name = %display_name(object.as_ref()), error = %err, "reconcile failed; retrying in 15 s");
    Action::requeue(ERROR_REQUEUE)
}

/// `namespace/name`, for log lines.
pub fn display_name<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// The object of `key` as the API server has it now (not the controller's cache, which can
/// still hold this operator's own earlier writes); `None` when it is gone or is a new object
/// under the same name.
pub async fn fetch<K>(client: &Client, key: &RunKey) -> Result<Option<K>, ReconcileError>
where
    K: Watched,
{
    let api: Api<K> = Api::namespaced(client.clone(), &key.namespace);
    let found = api
        .get_opt(&key.name)
        .await
        .map_err(|source| ReconcileError::Read {
            name: key.name.clone(),
            source,
        })?;
    Ok(found.filter(|object| object.uid().as_deref() == Some(key.uid.as_str())))
}

/// [`fetch`] for a job: `None` also when the operator shuts down first.
pub async fn fetch_for_job<K: Watched>(
    client: &Client,
    key: &RunKey,
    ticket: &Ticket,
) -> Result<Option<K>, ReconcileError> {
    match ticket.unless_cancelled(fetch::<K>(client, key)).await {
        Some(found) => found,
        None => Ok(None),
    }
}

/// How a job ended, for what the controller does next.
pub enum JobEnd {
    /// It wrote the object's status.
    Acted,
    /// The object as the API server has it needed nothing (or the operator stopped first).
    Nothing,
}

/// When the controller looks at the object of a job that ended.
pub fn follow_up<E: Display>(ctx: &Context, key: &RunKey, ended: Result<JobEnd, E>) -> FollowUp {
    let kind = ctx.runs.kind();
    match ended {
        Ok(JobEnd::Acted) => FollowUp::Now,
        Ok(JobEnd::Nothing) => FollowUp::After(CACHE_BEHIND_PAUSE),
        Err(err) => {
            ctx.metrics.reconcile_error(kind);
            tracing::warn!(kind, name = %key, error = %err, "run failed; checking again in 15 s");
            FollowUp::After(ERROR_REQUEUE)
        }
    }
}

/// Sets the message and the `Running` condition of an object whose run waits for a free slot
/// (`busy` says how full the pool is). False when it already says exactly that: no write.
fn mark_waiting(status: &mut impl RunStatus, busy: &str, generation: Option<i64>) -> bool {
    let waiting = format!("Waiting for a free run slot ({busy})");
    if status.message_mut().as_deref() == Some(waiting.as_str()) {
        return false;
    }
    status.not_running("WaitingForRunSlot", waiting, generation);
    true
}

/// No slot is free: the object says its run waits for one. Its phase stays (`New` for one not
/// started yet), so an interrupted run waiting for its retry is still counted as one.
pub async fn report_waiting<K: Watched>(
    ctx: &Context,
    object: &K,
    mut status: impl RunStatus,
    busy: &str,
) -> Result<(), ReconcileError> {
    if !mark_waiting(&mut status, busy, object.meta().generation) {
        return Ok(());
    }
    status.mark_new();
    write_status(ctx, object, &status).await?;
    tracing::info!(kind = %K::kind(&()), name = %display_name(object), "run waits for a free slot");
    Ok(())
}

/// The operator shuts down mid-run: `message` (what happened, and what the next start does)
/// and `Running=False` with reason `Interrupted`; the phase stays, so the next operator start
/// counts the interruption.
pub async fn report_interrupted<K: Watched>(
    ctx: &Context,
    object: &K,
    mut status: impl RunStatus,
    message: String,
) -> Result<(), ReconcileError> {
    status.not_running("Interrupted", message, object.meta().generation);
    write_status(ctx, object, &status).await?;
    tracing::info!(kind = %K::kind(&()), name = %display_name(object), "run interrupted by the shutdown");
    Ok(())
}

/// Writes `status` (server-side apply, our field manager).
pub async fn write_status<K: Watched>(
    ctx: &Context,
    object: &K,
    status: &impl Serialize,
) -> Result<(), ReconcileError> {
    report::apply_status(&ctx.client, object, status)
        .await
        .map_err(|source| ReconcileError::Status {
            name: object.name_any(),
            source,
        })
}

/// "1 time", "2 times".
pub fn times(n: u32) -> String {
    if n == 1 {
        "1 time".to_string()
    } else {
        format!("{n} times")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_written_once_per_message() {
        let mut status = RestoreStatus::default();
        assert!(mark_waiting(&mut status, "1 of 1", Some(1)));
        assert_eq!(
            status.message.as_deref(),
            Some("Waiting for a free run slot (1 of 1)")
        );
        assert_eq!(status.conditions[0].reason, "WaitingForRunSlot");
        assert!(!mark_waiting(&mut status, "1 of 1", Some(1)));
        assert!(mark_waiting(&mut status, "2 of 2", Some(1)));
        status.mark_new();
        assert_eq!(status.phase, Some(RestorePhase::New));
    }

    #[test]
    fn multi_tenant_runs_only_with_a_valid_stamp() {
        let stamped = BTreeMap::from([(
            crate::api::REQUESTER_ANNOTATION.to_string(),
            r#"{"username":"alice","groups":["team-a"]}"#.to_string(),
        )]);
        match run_as(Tenancy::Multi, Some(&stamped)) {
            Ok(RunAs::Requester(requester)) => assert_eq!(requester.username, "alice"),
            other => panic!("{other:?}"),
        }
        assert_eq!(run_as(Tenancy::Multi, None), Err(RequesterError::Missing));
        let forged = BTreeMap::from([(
            crate::api::REQUESTER_ANNOTATION.to_string(),
            r#"{"username":"admin","role":"root"}"#.to_string(),
        )]);
        assert!(run_as(Tenancy::Multi, Some(&forged)).is_err());
        let err = ActingError::from(RequesterError::Missing).to_string();
        for needle in ["is missing", "cluster-backup install", "--single-tenant"] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn single_tenant_runs_as_the_operator_whatever_the_stamp() {
        assert_eq!(run_as(Tenancy::Single, None), Ok(RunAs::Operator));
        let junk = BTreeMap::from([(
            crate::api::REQUESTER_ANNOTATION.to_string(),
            "junk".to_string(),
        )]);
        assert_eq!(run_as(Tenancy::Single, Some(&junk)), Ok(RunAs::Operator));
    }

    #[test]
    fn times_counts() {
        assert_eq!(times(1), "1 time");
        assert_eq!(times(3), "3 times");
    }
}
