//! What the Backup and Restore controllers do the same way around their runs: start a
//! controller with its run pool, read the API server's current object for a job, turn how a
//! job ended into its follow-up, and say that a run waits for a free slot.

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
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::conditions::set_condition;
use super::report::Context;
use super::runs::{self, FollowUp, RunKey, RunPool, Shutdown};
use super::watch::{QuickBackoff, log_result};

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
pub async fn run_controller<K, R, F>(
    kind: &'static str,
    client: Client,
    namespace: Option<String>,
    concurrency: usize,
    run_retries: u32,
    shutdown: &Shutdown,
    reconcile: R,
) where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    R: FnMut(Arc<K>, Arc<Context>) -> F,
    F: TryFuture<Ok = Action> + Send + 'static,
    F::Error: std::error::Error + Send + 'static,
{
    let api: Api<K> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (followups, mut ended) = mpsc::unbounded_channel::<RunKey>();
    let pool = RunPool::new(kind, concurrency, shutdown.token(), followups);
    let ctx = Arc::new(Context::new(client, pool.runs(), run_retries));
    let ended = futures::stream::poll_fn(move |cx| ended.poll_recv(cx))
        .map(|key| ObjectRef::<K>::new(&key.name).within(&key.namespace));
    let stopping = shutdown.clone();
    let log_kind = K::kind(&()).to_string();
    let controller = Controller::new(api, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(RECONCILE_CONCURRENCY))
        .trigger_backoff(QuickBackoff::default())
        .reconcile_on(ended)
        .graceful_shutdown_on(async move { stopping.requested().await })
        .run(reconcile, error_policy::<K, F::Error>, ctx)
        .for_each(move |result| {
            log_result(&log_kind, result);
            futures::future::ready(())
        });
    runs::run_controller(kind, controller, pool, shutdown).await;
}

/// Runs `controller` (a [`run_controller`] future) until SIGTERM or SIGINT with `shutdown`'s
/// deadline. Dropping the future aborts runs in flight (as a killed operator would leave them).
pub async fn until_signal(controller: impl Future<Output = ()>, shutdown: &Shutdown) {
    tokio::select! {
        () = controller => {}
        () = shutdown.on_signal() => {}
    }
}

fn error_policy<K: Resource<DynamicType = ()>, E: Display>(
    object: Arc<K>,
    err: &E,
    _ctx: Arc<Context>,
) -> Action {
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
pub async fn fetch<K>(client: &Client, key: &RunKey) -> Result<Option<K>, kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), &key.namespace);
    let found = api.get_opt(&key.name).await?;
    Ok(found.filter(|object| object.uid().as_deref() == Some(key.uid.as_str())))
}

/// How a job ended, for what the controller does next.
pub enum JobEnd {
    /// It wrote the object's status.
    Acted,
    /// The object as the API server has it needed nothing (or the operator stopped first).
    Nothing,
}

/// When the controller looks at the object of a job that ended.
pub fn follow_up<E: Display>(kind: &str, key: &RunKey, ended: Result<JobEnd, E>) -> FollowUp {
    match ended {
        Ok(JobEnd::Acted) => FollowUp::Now,
        Ok(JobEnd::Nothing) => FollowUp::After(CACHE_BEHIND_PAUSE),
        Err(err) => {
            tracing::warn!(kind, name = %key, error = %err, "run failed; checking again in 15 s");
            FollowUp::After(ERROR_REQUEUE)
        }
    }
}

/// Sets the message and the `Running` condition of an object whose run waits for a free slot
/// (`busy` says how full the pool is). False when it already says exactly that: no write.
pub fn mark_waiting(
    message: &mut Option<String>,
    conditions: &mut Vec<Condition>,
    busy: &str,
    generation: Option<i64>,
) -> bool {
    let waiting = format!("Waiting for a free run slot ({busy})");
    if message.as_deref() == Some(waiting.as_str()) {
        return false;
    }
    set_condition(
        conditions,
        "Running",
        false,
        "WaitingForRunSlot",
        &waiting,
        generation,
    );
    *message = Some(waiting);
    true
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
        let (mut message, mut conditions) = (None, Vec::new());
        assert!(mark_waiting(
            &mut message,
            &mut conditions,
            "1 of 1",
            Some(1)
        ));
        assert_eq!(
            message.as_deref(),
            Some("Waiting for a free run slot (1 of 1)")
        );
        assert_eq!(conditions[0].reason, "WaitingForRunSlot");
        assert!(!mark_waiting(
            &mut message,
            &mut conditions,
            "1 of 1",
            Some(1)
        ));
        assert!(mark_waiting(
            &mut message,
            &mut conditions,
            "2 of 2",
            Some(1)
        ));
    }

    #[test]
    fn times_counts() {
        assert_eq!(times(1), "1 time");
        assert_eq!(times(3), "3 times");
    }
}
