//! The run pool: backups and restores run here, as tasks of their own, not inside `reconcile`.
//!
//! A reconcile decides and hands the object to the pool ([`Runs::submit`]) in microseconds;
//! so a long run never holds up validation or scheduling of other objects, and the
//! controllers' own concurrency is not what limits runs. The pool:
//!
//! * keeps one job per object at most: the key is namespace/name/uid, and a key already
//!   registered is refused, so a run is never started twice;
//! * bounds how many runs execute at once; a job first prepares (reads the object, checks what
//!   needs no slot) and then asks for a slot ([`Ticket::try_start`], [`Ticket::start`]); slots
//!   are handed out in the order they were asked for;
//! * asks the controller to reconcile the object again when its job ends (see
//!   [`FollowUp`]), so what comes after the run (the next schedule slot) is decided from the
//!   status the run wrote;
//! * on shutdown cancels every job ([`Ticket::cancelled`]) and waits for them to record that
//!   they were interrupted, until a deadline; dropping the pool aborts the jobs at once.
//!
//! [`Registry`] is the bookkeeping, kept pure so it is unit-tested without a runtime.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use kube::{Resource, ResourceExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Identity of the object a run belongs to. The uid tells a Backup or Restore from a new object
/// created later under the same name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunKey {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl RunKey {
    /// `None` for an object without a uid (one the API server has not stored).
    pub fn of<K: Resource>(object: &K) -> Option<RunKey> {
        Some(RunKey {
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
            uid: object.uid()?,
        })
    }
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Where a registered job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Reading the object and doing what needs no slot.
    Preparing,
    /// Asked for a slot; none was free.
    Waiting,
    /// Holds a slot.
    Running,
}

/// How full the pool is, as a job waiting for a slot sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy {
    pub running: usize,
    pub limit: usize,
    /// Jobs that asked for a slot before this one and still wait.
    pub ahead: usize,
}

/// The pool's bookkeeping: which objects have a job, which jobs hold a slot, and who waits in
/// which order. No I/O, no clock.
#[derive(Debug)]
pub struct Registry {
    limit: usize,
    jobs: BTreeMap<RunKey, JobState>,
    queue: VecDeque<RunKey>,
}

impl Registry {
    /// `limit` runs at once (at least one).
    pub fn new(limit: usize) -> Registry {
        Registry {
            limit: limit.max(1),
            jobs: BTreeMap::new(),
            queue: VecDeque::new(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Registers a job for `key`; false when the object already has one.
    pub fn register(&mut self, key: RunKey) -> bool {
        if self.jobs.contains_key(&key) {
            return false;
        }
        self.jobs.insert(key, JobState::Preparing);
        true
    }

    pub fn is_registered(&self, key: &RunKey) -> bool {
        self.jobs.contains_key(key)
    }

    pub fn state(&self, key: &RunKey) -> Option<JobState> {
        self.jobs.get(key).copied()
    }

    /// Jobs holding a slot.
    pub fn running(&self) -> usize {
        self.jobs
            .values()
            .filter(|s| **s == JobState::Running)
            .count()
    }

    /// Jobs waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// `key` asks for a slot: it gets one if one is free and nobody asked before it;
    /// otherwise it waits in line (see [`Registry::try_start`]). An unregistered key gets
    /// nothing.
    pub fn request(&mut self, key: &RunKey) -> Result<(), Busy> {
        match self.jobs.get(key) {
            Some(JobState::Running) => return Ok(()),
            Some(JobState::Waiting) => return self.try_start(key),
            Some(JobState::Preparing) => {}
            None => return Err(self.busy(key)),
        }
        if self.queue.is_empty() && self.running() < self.limit {
            self.jobs.insert(key.clone(), JobState::Running);
            return Ok(());
        }
        self.queue.push_back(key.clone());
        self.jobs.insert(key.clone(), JobState::Waiting);
        Err(self.busy(key))
    }

    /// A waiting `key` takes a slot if one is free and it is first in line.
    pub fn try_start(&mut self, key: &RunKey) -> Result<(), Busy> {
        match self.jobs.get(key) {
            Some(JobState::Running) => return Ok(()),
            Some(JobState::Waiting) => {}
            Some(JobState::Preparing) => return self.request(key),
            None => return Err(self.busy(key)),
        }
        if self.running() < self.limit && self.queue.front() == Some(key) {
            self.queue.pop_front();
            self.jobs.insert(key.clone(), JobState::Running);
            return Ok(());
        }
        Err(self.busy(key))
    }

    /// The job of `key` ended (or gave up waiting): its slot or place in line is free.
    pub fn release(&mut self, key: &RunKey) {
        if self.jobs.remove(key) == Some(JobState::Waiting) {
            self.queue.retain(|k| k != key);
        }
    }

    fn busy(&self, key: &RunKey) -> Busy {
        Busy {
            running: self.running(),
            limit: self.limit,
            ahead: self
                .queue
                .iter()
                .position(|k| k == key)
                .unwrap_or(self.queue.len()),
        }
    }
}

/// What the controller should do about the object once its job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowUp {
    /// Reconcile it now: the job wrote the status the next decision starts from.
    Now,
    /// Reconcile it after a pause: the job found nothing to do (the controller's cache was
    /// behind), or could not read or write the object (the API server is in trouble).
    After(Duration),
}

struct State {
    registry: Registry,
    tasks: JoinSet<()>,
    /// Shut down or dropped: no new jobs, and nothing is reconciled after a job ends.
    closed: bool,
}

struct Shared {
    /// `backup` or `restore`, for logs and messages.
    kind: &'static str,
    state: Mutex<State>,
    slot_freed: Notify,
    cancel: CancellationToken,
    followups: mpsc::UnboundedSender<RunKey>,
    /// Where running and waiting runs are counted, once the pool is observed.
    metrics: OnceLock<Arc<super::metrics::Metrics>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes how full the pool is after a change (under the caller's lock, so the
    /// gauges never go back to an older count).
    fn publish(&self, registry: &Registry) {
        if let Some(metrics) = self.metrics.get() {
            metrics.set_pool(self.kind, registry.running(), registry.waiting());
        }
    }
}

/// The pool itself, owned by whoever runs the controller. Dropping it aborts every job at once
/// (what `kill -9` would do); [`RunPool::shutdown`] lets them record the interruption first.
pub struct RunPool {
    shared: Arc<Shared>,
}

/// A handle to submit jobs, shared by the reconciles of one controller.
#[derive(Clone)]
pub struct Runs {
    shared: Arc<Shared>,
}

impl RunPool {
    /// A pool of `limit` slots for runs of `kind`. Jobs are cancelled when `cancel` is; the key
    /// of every job that ended is sent to `followups` (see [`FollowUp`]).
    pub fn new(
        kind: &'static str,
        limit: usize,
        cancel: CancellationToken,
        followups: mpsc::UnboundedSender<RunKey>,
    ) -> RunPool {
        RunPool {
            shared: Arc::new(Shared {
                kind,
                state: Mutex::new(State {
                    registry: Registry::new(limit),
                    tasks: JoinSet::new(),
                    closed: false,
                }),
                slot_freed: Notify::new(),
                cancel,
                followups,
                metrics: OnceLock::new(),
            }),
        }
    }

    /// Counts this pool's running and waiting runs in `metrics`.
    pub fn observe(&self, metrics: Arc<super::metrics::Metrics>) {
        let _ = self.shared.metrics.set(metrics);
        self.shared.publish(&self.shared.state().registry);
    }

    pub fn runs(&self) -> Runs {
        Runs {
            shared: self.shared.clone(),
        }
    }

    /// Cancels every job and waits until they have ended (having recorded the interruption),
    /// at most until `deadline`; jobs still going then are aborted.
    pub async fn shutdown(self, deadline: Instant) {
        self.shared.cancel.cancel();
        let mut tasks = self.close();
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(
                kind = self.shared.kind,
                in_flight,
                "stopping: cancelling runs in flight"
            );
        }
        let drained = tokio::time::timeout_at(deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                kind = self.shared.kind,
                left = tasks.len(),
                "runs did not stop before the shutdown deadline; aborting them"
            );
            tasks.shutdown().await;
        }
    }

    /// Takes the tasks out under the lock and hands them to the caller, so none is dropped
    /// (and none of their tickets released) while the lock is held.
    fn close(&self) -> JoinSet<()> {
        let mut state = self.shared.state();
        state.closed = true;
        std::mem::take(&mut state.tasks)
    }
}

impl Drop for RunPool {
    fn drop(&mut self) {
        let tasks = self.close();
        drop(tasks);
    }
}

impl Runs {
    /// `backup` or `restore`: the kind of runs of this pool.
    pub fn kind(&self) -> &'static str {
        self.shared.kind
    }

    /// Whether the object has a job (preparing, waiting for a slot, or running).
    pub fn is_registered(&self, key: &RunKey) -> bool {
        self.shared.state().registry.is_registered(key)
    }

    /// Starts `job` for `key` as a task of its own, unless the object already has a job or the
    /// pool is shutting down (then false, and `job` is dropped unstarted).
    pub fn submit<F, Fut>(&self, key: RunKey, job: F) -> bool
    where
        F: FnOnce(Ticket) -> Fut,
        Fut: Future<Output = FollowUp> + Send + 'static,
    {
        {
            let mut state = self.shared.state();
            // Finished tasks stay in the set until joined.
            while state.tasks.try_join_next().is_some() {}
            if state.closed || !state.registry.register(key.clone()) {
                return false;
            }
        }
        let ticket = Ticket {
            key: key.clone(),
            shared: self.shared.clone(),
            cancel: self.shared.cancel.child_token(),
        };
        // Not under the lock: a job may drop its ticket right away, which takes the lock.
        let work = job(ticket);
        let shared = self.shared.clone();
        let task = async move {
            // The job's ticket is released when `work` completes, before the follow-up.
            let follow_up = work.await;
            let pause = match follow_up {
                FollowUp::Now => Duration::ZERO,
                FollowUp::After(pause) => pause,
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shared.cancel.cancelled() => return,
            }
            if !shared.state().closed {
                // The controller may be gone already; nothing else to tell then.
                let _ = shared.followups.send(key);
            }
        };
        let mut state = self.shared.state();
        if state.closed {
            // Shut down meanwhile: the job never starts; its ticket is released once the lock
            // is let go.
            drop(state);
            drop(task);
            return false;
        }
        state.tasks.spawn(task);
        true
    }
}

/// A job's registration in the pool; dropping it (when the job ends, however it ends) frees the
/// job's slot or place in line.
pub struct Ticket {
    key: RunKey,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

/// The operator is shutting down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the operator is shutting down")]
pub struct Stopped;

impl Ticket {
    pub fn key(&self) -> &RunKey {
        &self.key
    }

    /// Resolves when the operator shuts down: the job should stop and record that it was
    /// interrupted.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The token the job hands down to code that stops by itself when cancelled.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// `work`, unless the operator shuts down first (then `None`, and `work` is dropped). For
    /// steps that change nothing, so stopping half-way leaves nothing to record.
    pub async fn unless_cancelled<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => None,
            value = work => Some(value),
        }
    }

    /// Takes a slot if one is free now and nobody waits for one; otherwise the job is in line
    /// (see [`Ticket::start`]) and learns how busy the pool is.
    pub fn try_start(&self) -> Result<(), Busy> {
        let mut state = self.shared.state();
        let started = state.registry.request(&self.key);
        self.shared.publish(&state.registry);
        started
    }

    /// Waits in line for a slot; `Err` when the operator shuts down first.
    pub async fn start(&self) -> Result<(), Stopped> {
        loop {
            let freed = self.shared.slot_freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a slot freed right after it is not missed.
            freed.as_mut().enable();
            {
                let mut state = self.shared.state();
                let started = state.registry.try_start(&self.key);
                self.shared.publish(&state.registry);
                if started.is_ok() {
                    return Ok(());
                }
            }
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(Stopped),
                () = &mut freed => {}
            }
        }
    }

    /// `running of limit <kind> runs in progress, N waiting ahead`, for status messages.
    pub fn describe(&self, busy: Busy) -> String {
        format!(
            "{} of {} {} runs in progress, {} waiting ahead of this one",
            busy.running, busy.limit, self.shared.kind, busy.ahead
        )
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state();
            state.registry.release(&self.key);
            self.shared.publish(&state.registry);
        }
        self.shared.slot_freed.notify_waiters();
    }
}

/// When the operator shuts down, and how long runs get to record that they were interrupted.
#[derive(Clone, Debug)]
pub struct Shutdown {
    token: CancellationToken,
    requested_at: Arc<OnceLock<Instant>>,
    timeout: Duration,
}

impl Shutdown {
    pub fn new(timeout: Duration) -> Shutdown {
        Shutdown {
            token: CancellationToken::new(),
            requested_at: Arc::new(OnceLock::new()),
            timeout,
        }
    }

    /// Starts the shutdown (once; later calls change nothing).
    pub fn request(&self) {
        self.requested_at.get_or_init(Instant::now);
        self.token.cancel();
    }

    /// Resolves once a shutdown was requested.
    pub async fn requested(&self) {
        self.token.cancelled().await;
    }

    /// A token cancelled with the shutdown, for a pool's jobs.
    pub fn token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// When everything must have stopped: the shutdown timeout after the request (after now,
    /// when none was made).
    pub fn deadline(&self) -> Instant {
        self.requested_at
            .get()
            .copied()
            .unwrap_or_else(Instant::now)
            + self.timeout
    }

    /// Requests the shutdown on SIGTERM (what Kubernetes sends a pod it stops) or SIGINT, and
    /// then never resolves: run it beside the work it stops.
    pub async fn on_signal(&self) {
        termination_signal().await;
        tracing::info!(
            timeout_seconds = self.timeout.as_secs_f64(),
            "shutdown requested: cancelling runs in flight"
        );
        self.request();
        std::future::pending::<()>().await;
    }
}

/// Drives `controller` (a controller stream that ends after a shutdown request, once its
/// reconciles are done), then shuts `pool` down; nothing waits past the shutdown deadline.
pub async fn run_controller(
    kind: &'static str,
    controller: impl Future<Output = ()>,
    pool: RunPool,
    shutdown: &Shutdown,
) {
    tokio::select! {
        () = controller => {}
        () = async {
            shutdown.requested().await;
            tokio::time::sleep_until(shutdown.deadline()).await;
        } => {
            tracing::warn!(kind, "reconciles did not end before the shutdown deadline");
        }
    }
    pool.shutdown(shutdown.deadline()).await;
    tracing::info!(kind, "controller stopped");
}

/// SIGTERM or SIGINT. A handler that cannot be installed is logged and never fires (the
/// process then stops the default way for that signal).
async fn termination_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> RunKey {
        RunKey {
            namespace: "ns".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
        }
    }

    #[test]
    fn an_object_has_one_job_at_most() {
        let mut registry = Registry::new(2);
        assert!(registry.register(key("a")));
        assert!(!registry.register(key("a")));
        // Same name, new object: a job of its own.
        let recreated = RunKey {
            uid: "other".into(),
            ..key("a")
        };
        assert!(registry.register(recreated));
        registry.release(&key("a"));
        assert!(!registry.is_registered(&key("a")));
        assert!(registry.register(key("a")));
    }

    #[test]
    fn slots_are_bounded_and_handed_out_in_order() {
        let mut registry = Registry::new(1);
        for name in ["a", "b", "c"] {
            registry.register(key(name));
        }
        assert_eq!(registry.request(&key("a")), Ok(()));
        assert_eq!(
            registry.request(&key("b")),
            Err(Busy {
                running: 1,
                limit: 1,
                ahead: 0
            })
        );
        assert_eq!(
            registry.request(&key("c")).map_err(|b| b.ahead),
            Err(1),
            "c waits behind b"
        );
        assert_eq!(registry.waiting(), 2);
        // Nothing frees up until a job ends.
        assert!(registry.try_start(&key("b")).is_err());
        registry.release(&key("a"));
        // c is not first in line.
        assert!(registry.try_start(&key("c")).is_err());
        assert_eq!(registry.try_start(&key("b")), Ok(()));
        assert_eq!(registry.state(&key("b")), Some(JobState::Running));
        assert_eq!(registry.state(&key("c")), Some(JobState::Waiting));
        registry.release(&key("b"));
        assert_eq!(registry.try_start(&key("c")), Ok(()));
        assert_eq!((registry.running(), registry.waiting()), (1, 0));
    }

    #[test]
    fn a_job_that_stops_waiting_leaves_the_line() {
        let mut registry = Registry::new(1);
        for name in ["a", "b", "c"] {
            registry.register(key(name));
            let _ = registry.request(&key(name));
        }
        registry.release(&key("b"));
        registry.release(&key("a"));
        assert_eq!(registry.try_start(&key("c")), Ok(()));
    }

    #[test]
    fn a_newcomer_does_not_jump_the_line() {
        let mut registry = Registry::new(1);
        registry.register(key("a"));
        registry.register(key("b"));
        registry.register(key("c"));
        assert_eq!(registry.request(&key("a")), Ok(()));
        assert!(registry.request(&key("b")).is_err());
        registry.release(&key("a"));
        // A slot is free, but b asked first.
        assert!(registry.request(&key("c")).is_err());
        assert_eq!(registry.try_start(&key("b")), Ok(()));
    }

    #[test]
    fn a_job_that_needs_no_slot_takes_none() {
        let mut registry = Registry::new(1);
        registry.register(key("invalid"));
        registry.register(key("a"));
        // "invalid" finished while preparing (e.g. its spec cannot work).
        registry.release(&key("invalid"));
        assert_eq!(registry.request(&key("a")), Ok(()));
        assert_eq!(registry.limit(), 1);
        assert_eq!(Registry::new(0).limit(), 1);
    }

    #[tokio::test]
    async fn pool_runs_one_job_per_object_and_frees_slots() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let pool = RunPool::new("backup", 1, CancellationToken::new(), tx);
        let runs = pool.runs();
        let (release_a, wait_a) = tokio::sync::oneshot::channel::<()>();
        assert!(runs.submit(key("a"), |ticket| async move {
            assert_eq!(ticket.try_start(), Ok(()));
            let _ = wait_a.await;
            drop(ticket);
            FollowUp::Now
        }));
        assert!(runs.is_registered(&key("a")));
        assert!(
            !runs.submit(key("a"), |_| async { FollowUp::Now }),
            "a second job for the same object"
        );
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        assert!(runs.submit(key("b"), |ticket| async move {
            // Give a time to take its slot first.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let busy = ticket.try_start().err();
            ticket.start().await.ok();
            let _ = started_tx.send(busy);
            FollowUp::Now
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = release_a.send(());
        let busy = started_rx.await.ok().flatten();
        assert_eq!(
            busy.map(|b| (b.running, b.limit, b.ahead)),
            Some((1, 1, 0)),
            "b waited for a's slot"
        );
        let mut ended = vec![rx.recv().await, rx.recv().await];
        ended.sort();
        assert_eq!(ended, vec![Some(key("a")), Some(key("b"))]);
        assert!(!runs.is_registered(&key("a")) && !runs.is_registered(&key("b")));
    }

    #[tokio::test]
    async fn a_job_may_drop_its_ticket_at_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let pool = RunPool::new("backup", 1, CancellationToken::new(), tx);
        let runs = pool.runs();
        assert!(runs.submit(key("a"), |ticket| {
            drop(ticket);
            async { FollowUp::Now }
        }));
        assert_eq!(rx.recv().await, Some(key("a")));
        assert!(!runs.is_registered(&key("a")));
    }

    #[tokio::test]
    async fn shutdown_cancels_jobs_and_waits_for_them() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let pool = RunPool::new("restore", 1, CancellationToken::new(), tx);
        let runs = pool.runs();
        let (recorded_tx, recorded_rx) = tokio::sync::oneshot::channel();
        runs.submit(key("a"), |ticket| async move {
            ticket.try_start().ok();
            ticket.cancelled().await;
            // Recording the interruption takes a moment.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = recorded_tx.send(());
            FollowUp::Now
        });
        let waiting = runs.submit(key("b"), |ticket| async move {
            ticket.try_start().ok();
            assert_eq!(ticket.start().await, Err(Stopped));
            FollowUp::Now
        });
        assert!(waiting);
        tokio::time::sleep(Duration::from_millis(50)).await;
        pool.shutdown(Instant::now() + Duration::from_secs(5)).await;
        assert!(
            recorded_rx.await.is_ok(),
            "the run recorded its interruption"
        );
        assert!(!runs.submit(key("c"), |_| async { FollowUp::Now }));
    }

    #[tokio::test]
    async fn dropping_the_pool_aborts_its_jobs() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let pool = RunPool::new("backup", 1, CancellationToken::new(), tx);
        let runs = pool.runs();
        runs.submit(key("a"), |ticket| async move {
            ticket.try_start().ok();
            std::future::pending::<()>().await;
            FollowUp::Now
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(pool);
        let deadline = Instant::now() + Duration::from_secs(5);
        while runs.is_registered(&key("a")) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!runs.is_registered(&key("a")));
    }

    #[test]
    fn deadline_counts_from_the_request() {
        let shutdown = Shutdown::new(Duration::from_secs(20));
        let before = Instant::now();
        shutdown.request();
        let deadline = shutdown.deadline();
        assert!(deadline >= before + Duration::from_secs(20));
        assert!(deadline <= Instant::now() + Duration::from_secs(20));
        shutdown.request();
        assert_eq!(shutdown.deadline(), deadline);
    }
}
