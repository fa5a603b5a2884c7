//! Leader election on a `coordination.k8s.io/v1` Lease: with several replicas only the holder
//! of the Lease runs the controllers (runs, status writes).
//!
//! The same rules as client-go's `leaderelection` (what controller-runtime and kubebuilder
//! operators use), so the Lease reads the same in `kubectl`:
//!
//! * every write is a `replace` carrying the `resourceVersion` that was read: of two candidates
//!   writing at once, one gets `409 Conflict` and stays a standby;
//! * a candidate takes the Lease over when it saw the same record unchanged for the lease
//!   duration, timed on its own clock from when it first saw that record; clocks of different
//!   machines are never compared;
//! * the leader renews every retry period; when it has not renewed for the renew deadline
//!   (shorter than the lease duration, so it stops before anyone may take over), or finds
//!   another holder, it has lost: [`lead`] drops the controllers (runs in flight end as if the
//!   process was killed) and returns an error, and the process exits so Kubernetes restarts it
//!   as a standby;
//! * on a clean shutdown the leader gives the Lease up once its runs recorded that they were
//!   interrupted, so a standby takes over at once instead of after the lease duration.
//!
//! `kube` 5 has no leader election of its own. `kube-lease-manager` supports kube 5, but it has
//! no renew deadline (a leader cut off from the API server goes on running while a standby
//! takes over), renews without `resourceVersion`, and times expiry from the holder's clock.
//!
//! What is decided from a Lease ([`judge`], [`Observation`], [`claim`]) is pure and unit-tested;
//! [`Elector`] does the reads and writes.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

/// The Lease the replicas of the operator compete for, unless told otherwise.
pub const DEFAULT_LEASE_NAME: &str = "cluster-backup-operator";
/// kubebuilder's defaults: how long a Lease not renewed stays its holder's.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long the leader keeps leading without a successful renewal.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often the leader renews and a standby tries to take the Lease.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

/// Where this process stands; for the readiness endpoint and the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderState {
    /// Leader election is off: this process runs the controllers.
    NotElecting,
    /// Waiting for the Lease; the controllers do not run.
    Standby,
    /// Holds the Lease and runs the controllers.
    Leader,
}

/// A channel of [`LeaderState`], starting as `NotElecting` or `Standby`.
pub fn state_channel(electing: bool) -> (watch::Sender<LeaderState>, watch::Receiver<LeaderState>) {
    watch::channel(if electing {
        LeaderState::Standby
    } else {
        LeaderState::NotElecting
    })
}

/// How this process takes part in the election (`cluster-backup run --leader-elect`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElection {
    pub lease_name: String,
    pub namespace: String,
    /// Unique among the candidates: the pod name, else host name and process id.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElection {
    /// The lease duration must outlast the renew deadline, or a standby could take over while
    /// the leader still runs; the deadline must leave room for more than one renewal.
    pub fn validate(&self) -> Result<(), LeaderError> {
        let ordered = self.retry_period > Duration::ZERO
            && self.renew_deadline > self.retry_period
            && self.lease_duration > self.renew_deadline;
        if ordered {
            Ok(())
        } else {
            Err(LeaderError::Timings {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            })
        }
    }
}

/// This process's identity in the Lease: `pod_name` (the `POD_NAME` of the Deployment), else
/// `<host name>_<process id>`.
pub fn identity(pod_name: Option<&str>) -> String {
    if let Some(pod) = pod_name.map(str::trim).filter(|p| !p.is_empty()) {
        return pod.to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string());
    format!("{host}_{}", std::process::id())
}

/// Why leader election stopped this process, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(
        "leader election needs lease duration ({lease_duration:?}) > renew deadline \
         ({renew_deadline:?}) > retry period ({retry_period:?}) > 0"
    )]
    Timings {
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    },
    #[error("lost Lease {lease}: {holder} holds it now")]
    TakenOver { lease: String, holder: String },
    #[error("lost Lease {lease}: not renewed within the renew deadline ({deadline:?}): {source}")]
    NotRenewed {
        lease: String,
        deadline: Duration,
        #[source]
        source: Box<LeaseError>,
    },
}

/// One read or write of the Lease that failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("cannot read Lease {lease}: {source}")]
    Read {
        lease: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot write Lease {lease}: {source}")]
    Write {
        lease: String,
        #[source]
        source: kube::Error,
    },
    #[error("no answer from the API server before the renew deadline")]
    TimedOut,
}

/// What a candidate makes of the Lease it read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody holds it (never held, or given up).
    Free,
    /// This candidate holds it.
    Mine,
    /// Its holder did not renew within the lease duration.
    Expired { holder: String },
    /// Another holder's, for at most `left` more.
    Held { holder: String, left: Duration },
}

/// When this candidate first saw the Lease's current record (its own clock).
#[derive(Clone, Debug)]
pub struct Observation {
    spec: LeaseSpec,
    since: Instant,
}

impl Observation {
    pub fn new(spec: LeaseSpec, now: Instant) -> Observation {
        Observation { spec, since: now }
    }

    /// Notes the record read at `now`: a changed record (a renewal, a new holder) starts the
    /// clock again; the same record keeps it running.
    pub fn update(&mut self, spec: &LeaseSpec, now: Instant) {
        if &self.spec != spec {
            self.spec = spec.clone();
            self.since = now;
        }
    }

    pub fn since(&self) -> Instant {
        self.since
    }
}

/// Pure: `spec`, first seen at `seen_since`, judged at `now` by candidate `identity`. A record
/// without a duration counts with `default_duration`.
pub fn judge(
    identity: &str,
    spec: &LeaseSpec,
    seen_since: Instant,
    now: Instant,
    default_duration: Duration,
) -> Verdict {
    let holder = match spec.holder_identity.as_deref() {
        None | Some("") => return Verdict::Free,
        Some(holder) if holder == identity => return Verdict::Mine,
        Some(holder) => holder.to_string(),
    };
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(default_duration, Duration::from_secs);
    let expires = seen_since + duration;
    if now >= expires {
        Verdict::Expired { holder }
    } else {
        Verdict::Held {
            holder,
            left: expires - now,
        }
    }
}

/// Pure: the record `identity` writes to take or renew the Lease whose record is `current`.
/// A new holder counts a transition and a new acquire time; a renewal keeps both.
pub fn claim(
    identity: &str,
    current: &LeaseSpec,
    now: MicroTime,
    lease_duration: Duration,
) -> LeaseSpec {
    let renewing = current.holder_identity.as_deref() == Some(identity);
    let transitions = current.lease_transitions.unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        // Whole seconds, rounded up: never a shorter lease than configured.
        lease_duration_seconds: Some(
            i32::try_from(lease_duration.as_millis().div_ceil(1000))
                .unwrap_or(i32::MAX)
                .max(1),
        ),
        acquire_time: if renewing {
            current.acquire_time.clone().or_else(|| Some(now.clone()))
        } else {
            Some(now.clone())
        },
        renew_time: Some(now),
        // Counted as client-go does: every change of holder but the first one.
        lease_transitions: Some(if renewing || current == &LeaseSpec::default() {
            transitions
        } else {
            transitions.saturating_add(1)
        }),
        ..current.clone()
    }
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// The outcome of one try to take or renew the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This process holds the Lease now.
    Holding,
    /// Another candidate does.
    HeldBy(String),
}

/// Reads and writes the Lease for one candidate.
pub struct Elector {
    api: Api<Lease>,
    config: LeaderElection,
    observed: Option<Observation>,
}

impl Elector {
    pub fn new(client: Client, config: LeaderElection) -> Elector {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.lease_name)
    }

    /// One try: create the Lease, renew it, or take it over when free or expired. A write
    /// another candidate won (`409 Conflict`) is an error; the next try reads again.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Attempt, LeaseError> {
        let name = self.config.lease_name.clone();
        let read = self.api.get_opt(&name).await;
        let lease = read.map_err(|source| LeaseError::Read {
            lease: self.lease(),
            source,
        })?;
        let now = Instant::now();
        let Some(mut lease) = lease else {
            let spec = claim(
                &self.config.identity,
                &LeaseSpec::default(),
                now_micro(),
                self.config.lease_duration,
            );
            let new = Lease {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            let created = self.api.create(&PostParams::default(), &new).await;
            let created = created.map_err(|source| LeaseError::Write {
                lease: self.lease(),
                source,
            })?;
            self.observe(created.spec.unwrap_or_default(), Instant::now());
            return Ok(Attempt::Holding);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        self.observe(spec.clone(), now);
        let since = self.observed.as_ref().map_or(now, Observation::since);
        match judge(
            &self.config.identity,
            &spec,
            since,
            now,
            self.config.lease_duration,
        ) {
            Verdict::Held { holder, .. } => return Ok(Attempt::HeldBy(holder)),
            Verdict::Free | Verdict::Mine | Verdict::Expired { .. } => {}
        }
        lease.spec = Some(claim(
            &self.config.identity,
            &spec,
            now_micro(),
            self.config.lease_duration,
        ));
        // `lease` carries the resourceVersion read above: a write in between makes this a 409.
        let written = self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await;
        let written = written.map_err(|source| LeaseError::Write {
            lease: self.lease(),
            source,
        })?;
        self.observe(written.spec.unwrap_or_default(), Instant::now());
        Ok(Attempt::Holding)
    }

    fn observe(&mut self, spec: LeaseSpec, now: Instant) {
        match &mut self.observed {
            Some(observed) => observed.update(&spec, now),
            None => self.observed = Some(Observation::new(spec, now)),
        }
    }

    /// Tries every retry period until this process holds the Lease.
    pub async fn acquire(&mut self) {
        let mut last_holder: Option<String> = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Holding) => return,
                Ok(Attempt::HeldBy(holder)) => {
                    if last_holder.as_deref() != Some(holder.as_str()) {
                        tracing::info!(lease = %self.lease(), identity = %self.config.identity, leader = %holder, "standby: another replica leads");
                        last_holder = Some(holder);
                    }
                }
                Err(err) => {
                    tracing::debug!(lease = %self.lease(), error = %err, "cannot take the Lease yet")
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews every retry period while this process leads; returns why it stopped leading.
    pub async fn keep_renewing(&mut self) -> LeaderError {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let deadline = renewed + self.config.renew_deadline;
            let attempt = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await;
            let err = match attempt {
                Ok(Ok(Attempt::Holding)) => {
                    renewed = Instant::now();
                    continue;
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    return LeaderError::TakenOver {
                        lease: self.lease(),
                        holder,
                    };
                }
                Ok(Err(err)) => err,
                Err(_elapsed) => LeaseError::TimedOut,
            };
            if Instant::now() >= deadline {
                return LeaderError::NotRenewed {
                    lease: self.lease(),
                    deadline: self.config.renew_deadline,
                    source: Box::new(err),
                };
            }
            tracing::warn!(lease = %self.lease(), error = %err, "cannot renew the Lease; trying again");
        }
    }

    /// Gives the Lease up if this process still holds it, so a standby need not wait for it to
    /// expire. The short duration client-go writes too: a standby that missed the change waits
    /// one second, not the whole lease duration.
    pub async fn release(&mut self) -> Result<(), LeaseError> {
        let name = self.config.lease_name.clone();
        let read = self.api.get_opt(&name).await;
        let lease = read.map_err(|source| LeaseError::Read {
            lease: self.lease(),
            source,
        })?;
        let Some(mut lease) = lease else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now_micro());
        lease.spec = Some(spec);
        let written = self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await;
        written.map(|_| ()).map_err(|source| LeaseError::Write {
            lease: self.lease(),
            source,
        })
    }
}

/// Runs `work` (the controllers) only while this process holds the Lease: waits as a standby
/// until it does, or until `stopped` resolves (a shutdown request). `work` ends by itself after
/// a shutdown request; then the Lease is given up and this returns `Ok`. When the Lease is
/// lost, `work` is dropped at once and this returns the reason: the caller should exit.
pub async fn lead(
    client: Client,
    config: LeaderElection,
    state: &watch::Sender<LeaderState>,
    stopped: impl Future<Output = ()>,
    work: impl Future<Output = ()>,
) -> Result<(), LeaderError> {
    config.validate()?;
    let lease = format!("{}/{}", config.namespace, config.lease_name);
    let identity = config.identity.clone();
    let mut elector = Elector::new(client, config);
    state.send_replace(LeaderState::Standby);
    tracing::info!(%lease, %identity, "waiting to become the leader");
    tokio::select! {
        () = elector.acquire() => {}
        () = stopped => {
            tracing::info!(%lease, %identity, "stopped while standby");
            return Ok(());
        }
    }
    state.send_replace(LeaderState::Leader);
    tracing::info!(%lease, %identity, "became the leader: starting the controllers");
    let lost = tokio::select! {
        () = work => None,
        lost = elector.keep_renewing() => Some(lost),
    };
    state.send_replace(LeaderState::Standby);
    match lost {
        Some(lost) => {
            tracing::error!(%lease, %identity, error = %lost, "lost the leadership: controllers stopped, runs in flight abandoned; exiting");
            Err(lost)
        }
        None => {
            match elector.release().await {
                Ok(()) => tracing::info!(%lease, %identity, "gave up the leadership"),
                Err(err) => {
                    tracing::warn!(%lease, %identity, error = %err, "cannot give up the Lease; it expires by itself")
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn held_by(holder: &str, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(seconds),
            lease_transitions: Some(3),
            acquire_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..LeaseSpec::default()
        }
    }

    fn config(lease: u64, renew: u64, retry: u64) -> LeaderElection {
        LeaderElection {
            lease_name: "l".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(retry),
        }
    }

    const DEFAULT: Duration = Duration::from_secs(15);

    #[test]
    fn a_lease_without_holder_is_free() {
        let now = Instant::now();
        assert_eq!(
            judge("me", &LeaseSpec::default(), now, now, DEFAULT),
            Verdict::Free
        );
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            ..held_by("x", 1)
        };
        assert_eq!(judge("me", &released, now, now, DEFAULT), Verdict::Free);
    }

    #[test]
    fn my_own_lease_is_mine_even_when_late() {
        let seen = Instant::now();
        let late = seen + Duration::from_secs(3600);
        assert_eq!(
            judge("me", &held_by("me", 6), seen, late, DEFAULT),
            Verdict::Mine
        );
    }

    #[test]
    fn another_holder_keeps_it_for_the_duration_since_this_candidate_saw_the_record() {
        let seen = Instant::now();
        let spec = held_by("other", 6);
        assert_eq!(
            judge("me", &spec, seen, seen + Duration::from_secs(2), DEFAULT),
            Verdict::Held {
                holder: "other".into(),
                left: Duration::from_secs(4)
            }
        );
        assert_eq!(
            judge("me", &spec, seen, seen + Duration::from_secs(6), DEFAULT),
            Verdict::Expired {
                holder: "other".into()
            }
        );
    }

    #[test]
    fn a_record_without_a_duration_counts_with_the_configured_one() {
        let seen = Instant::now();
        let spec = LeaseSpec {
            lease_duration_seconds: None,
            ..held_by("other", 0)
        };
        let at = seen + Duration::from_secs(14);
        assert!(matches!(
            judge("me", &spec, seen, at, DEFAULT),
            Verdict::Held { .. }
        ));
        let at = seen + DEFAULT;
        assert!(matches!(
            judge("me", &spec, seen, at, DEFAULT),
            Verdict::Expired { .. }
        ));
    }

    #[test]
    fn a_renewal_restarts_the_standby_clock_and_the_same_record_does_not() {
        let start = Instant::now();
        let mut observed = Observation::new(held_by("other", 6), start);
        // Read again, unchanged: the holder has not renewed; the clock runs on.
        observed.update(&held_by("other", 6), start + Duration::from_secs(5));
        assert_eq!(observed.since(), start);
        assert!(matches!(
            judge(
                "me",
                &held_by("other", 6),
                observed.since(),
                start + Duration::from_secs(7),
                DEFAULT
            ),
            Verdict::Expired { .. }
        ));
        // Renewed (another renewTime): a full duration from when this candidate saw it.
        let renewed = LeaseSpec {
            renew_time: Some(MicroTime(
                k8s_openapi::jiff::Timestamp::from_second(10).unwrap(),
            )),
            ..held_by("other", 6)
        };
        let later = start + Duration::from_secs(7);
        observed.update(&renewed, later);
        assert_eq!(observed.since(), later);
        assert!(matches!(
            judge(
                "me",
                &renewed,
                observed.since(),
                later + Duration::from_secs(5),
                DEFAULT
            ),
            Verdict::Held { .. }
        ));
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_keeps_the_acquire_time() {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::from_second(100).unwrap());
        let taken = claim(
            "me",
            &held_by("other", 15),
            now.clone(),
            Duration::from_secs(6),
        );
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(now.clone()));
        assert_eq!(taken.renew_time, Some(now.clone()));
        assert_eq!(taken.lease_duration_seconds, Some(6));

        let later = MicroTime(k8s_openapi::jiff::Timestamp::from_second(102).unwrap());
        let renewed = claim("me", &taken, later.clone(), Duration::from_secs(6));
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, Some(now));
        assert_eq!(renewed.renew_time, Some(later));

        let fresh = claim(
            "me",
            &LeaseSpec::default(),
            renewed.renew_time.clone().unwrap(),
            Duration::from_millis(1500),
        );
        assert_eq!(fresh.lease_transitions, Some(0));
        assert_eq!(fresh.lease_duration_seconds, Some(2), "rounded up");
    }

    #[test]
    fn timings_must_let_the_leader_stop_before_a_standby_takes_over() {
        assert!(config(15, 10, 2).validate().is_ok());
        assert!(config(6, 4, 1).validate().is_ok());
        for (lease, renew, retry) in [(10, 10, 2), (10, 15, 2), (15, 2, 2), (15, 10, 0)] {
            assert!(
                config(lease, renew, retry).validate().is_err(),
                "{lease} {renew} {retry}"
            );
        }
    }

    #[test]
    fn identity_is_the_pod_name_or_host_and_process() {
        assert_eq!(identity(Some("op-7d9f-abc")), "op-7d9f-abc");
        let fallback = identity(Some("  "));
        assert!(
            fallback.ends_with(&format!("_{}", std::process::id())),
            "{fallback}"
        );
        assert_eq!(identity(None), fallback);
    }

    #[test]
    fn the_state_channel_starts_as_standby_only_when_electing() {
        assert_eq!(*state_channel(true).1.borrow(), LeaderState::Standby);
        assert_eq!(*state_channel(false).1.borrow(), LeaderState::NotElecting);
    }
}
