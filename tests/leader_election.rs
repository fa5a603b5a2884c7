//! Leader election with a Lease, against the real API server:
//!
//! * two candidates in this process: one takes the Lease, the other stands by; when the leader
//!   stops renewing, the standby takes over after the lease duration and the old leader finds
//!   itself taken over; a leader that gives the Lease up lets a standby take it at once;
//! * two operator processes (`cluster-backup run --leader-elect`) and a Backup with a slot every
//!   minute: only the leader runs; `kill -9` of the leader mid-run; the standby takes over
//!   within the lease duration (plus a margin), retries the interrupted run, and every slot
//!   from the Backup's creation to the end ran exactly once, each run in one process only.
//!
//! Short lease timings keep it quick; timeouts are generous (the machine is shared).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use cluster_backup::api::{BackupRun, RunResult, from_time};
use cluster_backup::controller::leader::{
    Attempt, Elector, LeaderElection, LeaderError, LeaderState, lead, state_channel,
};
use cluster_backup::core::schedule::Schedule;
use cluster_backup::engine::faults::PAUSE_ENV;
use common::process::{OperatorProcess, log_path};
use common::{Scene, eventually, short_unique_name};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use serde_json::json;

const LEASE_DURATION: Duration = Duration::from_secs(6);
const RENEW_DEADLINE: Duration = Duration::from_secs(4);
const RETRY_PERIOD: Duration = Duration::from_secs(1);
/// Longest wait for anything that should happen.
const TIMEOUT: Duration = Duration::from_secs(180);
/// How long each run holds at its pause point: long enough to kill the leader mid-run, short
/// enough to end well before the next slot.
const RUN_PAUSE: &str = "before-list:15";
const LOG_DIR: &str = "leader-election-logs";

fn election(namespace: &str, lease: &str, identity: &str) -> LeaderElection {
    LeaderElection {
        lease_name: lease.to_string(),
        namespace: namespace.to_string(),
        identity: identity.to_string(),
        lease_duration: LEASE_DURATION,
        renew_deadline: RENEW_DEADLINE,
        retry_period: RETRY_PERIOD,
    }
}

async fn holder(client: &Client, namespace: &str, lease: &str) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    api.get_opt(lease)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// Waits until `identity` holds `lease` (a standby took over); returns it.
async fn wait_for_holder(client: &Client, namespace: &str, lease: &str, identity: &str) -> String {
    eventually("the standby takes over", TIMEOUT, || async {
        holder(client, namespace, lease)
            .await
            .filter(|h| h == identity)
    })
    .await
}

#[tokio::test]
async fn a_standby_takes_over_an_abandoned_lease_and_the_old_leader_learns_it_lost() {
    let scene = Scene::bare("leader-lease").await;
    let (client, ns) = (scene.client.clone(), scene.namespace().to_string());
    let lease = short_unique_name("lease");
    let mut a = Elector::new(client.clone(), election(&ns, &lease, "a"));
    let mut b = Elector::new(client.clone(), election(&ns, &lease, "b"));

    assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Holding);
    assert_eq!(holder(&client, &ns, &lease).await.as_deref(), Some("a"));
    assert_eq!(
        b.try_acquire_or_renew().await.unwrap(),
        Attempt::HeldBy("a".into())
    );
    // Renewing is not taking over: still a's, and b's clock restarts with the renewal.
    assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Holding);

    // a stops renewing (as a killed leader would); b keeps trying.
    let stopped_renewing = Instant::now();
    tokio::time::timeout(TIMEOUT, b.acquire())
        .await
        .expect("b takes the Lease");
    let took = stopped_renewing.elapsed();
    eprintln!("standby took the abandoned Lease after {took:?}");
    assert!(took >= LEASE_DURATION, "taken before it expired: {took:?}");
    assert_eq!(holder(&client, &ns, &lease).await.as_deref(), Some("b"));

    // a comes back: it finds b holding the Lease and stops leading at its next renewal.
    let lost = tokio::time::timeout(TIMEOUT, a.keep_renewing())
        .await
        .expect("a learns it lost");
    assert!(
        matches!(&lost, LeaderError::TakenOver { holder, .. } if holder == "b"),
        "{lost}"
    );

    // A leader that stops cleanly gives the Lease up: a takes it at once.
    b.release().await.unwrap();
    assert_eq!(holder(&client, &ns, &lease).await, None);
    assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Holding);
    let api: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let spec = api.get(&lease).await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    // a → b → (released) → a.
    assert_eq!(spec.lease_transitions, Some(2), "{spec:?}");
}

#[tokio::test]
async fn only_the_leader_runs_its_work_and_a_stop_while_standby_returns() {
    let scene = Scene::bare("leader-lead").await;
    let (client, ns) = (scene.client.clone(), scene.namespace().to_string());
    let lease = short_unique_name("lease");
    let (state, mut states) = state_channel(true);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let leader = tokio::spawn({
        let (client, ns, lease) = (client.clone(), ns.clone(), lease.clone());
        async move {
            lead(
                client,
                election(&ns, &lease, "leader"),
                &state,
                std::future::pending::<()>(),
                async {
                    let _ = stopped.await;
                },
            )
            .await
        }
    });
    tokio::time::timeout(TIMEOUT, states.wait_for(|s| *s == LeaderState::Leader))
        .await
        .unwrap()
        .unwrap();

    // The second candidate waits; its work never starts; a stop request ends it.
    let (standby_state, standby_states) = state_channel(true);
    let (stop_standby, standby_stopped) = tokio::sync::oneshot::channel::<()>();
    let standby = tokio::spawn({
        let (client, ns, lease) = (client.clone(), ns.clone(), lease.clone());
        async move {
            lead(
                client,
                election(&ns, &lease, "standby"),
                &standby_state,
                async {
                    let _ = standby_stopped.await;
                },
                async { panic!("the standby's work ran") },
            )
            .await
        }
    });
    tokio::time::sleep(LEASE_DURATION * 2).await;
    assert_eq!(*standby_states.borrow(), LeaderState::Standby);
    assert_eq!(
        holder(&client, &ns, &lease).await.as_deref(),
        Some("leader")
    );
    stop_standby.send(()).unwrap();
    tokio::time::timeout(TIMEOUT, standby)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // The leader's work ends (a shutdown): it returns Ok and gives the Lease up.
    stop.send(()).unwrap();
    tokio::time::timeout(TIMEOUT, leader)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(holder(&client, &ns, &lease).await, None);
}

/// One `cluster-backup run --leader-elect` process.
struct Replica {
    identity: String,
    log: String,
    process: OperatorProcess,
}

impl Replica {
    fn start(scene: &Scene, lease: &str, suffix: &str) -> Replica {
        Replica::start_with(scene, lease, suffix, LEASE_DURATION, RENEW_DEADLINE)
    }

    fn start_with(
        scene: &Scene,
        lease: &str,
        suffix: &str,
        lease_duration: Duration,
        renew_deadline: Duration,
    ) -> Replica {
        let ns = scene.namespace();
        let identity = format!("{ns}-{suffix}");
        let log = format!("{ns}-{suffix}");
        let lease_duration = format!("{}s", lease_duration.as_secs());
        let renew = format!("{}s", renew_deadline.as_secs());
        let retry = format!("{}s", RETRY_PERIOD.as_secs());
        let process = OperatorProcess::start(
            &scene.env,
            ns,
            &[
                "--shutdown-timeout",
                "10s",
                "--leader-elect",
                "--leader-election-namespace",
                ns,
                "--leader-election-lease",
                lease,
                "--leader-election-lease-duration",
                &lease_duration,
                "--leader-election-renew-deadline",
                &renew,
                "--leader-election-retry-period",
                &retry,
            ],
            &[
                ("POD_NAME", identity.as_str()),
                (PAUSE_ENV, RUN_PAUSE),
                // One JSON object a line: the test reads the fields.
                ("LOG_FORMAT", "json"),
            ],
            LOG_DIR,
            &log,
        );
        Replica {
            identity,
            log,
            process,
        }
    }

    /// The `fields` of every log line (JSON) whose message is `message`.
    fn logged(&self, message: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(log_path(LOG_DIR, &self.log)).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|l| l["fields"].clone())
            .filter(|f| f["message"] == message)
            .collect()
    }

    /// The run paths this process logged starting.
    fn runs_started(&self) -> Vec<String> {
        self.logged("backup run started")
            .iter()
            .map(|f| f["run_path"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The slot a run of a `* * * * *` schedule was started for: runs start seconds after it.
fn slot_of(run: &BackupRun) -> DateTime<Utc> {
    from_time(&run.start_time)
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap()
}

#[tokio::test]
async fn killing_the_leader_mid_run_hands_over_without_running_or_losing_a_slot() {
    let scene = Scene::bare("leader-failover").await;
    let (client, ns) = (scene.client.clone(), scene.namespace().to_string());
    let source = scene.new_namespace("src").await;
    scene
        .create_all((0..3).map(|i| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i}"), "namespace": source.name},
                "data": {"index": i.to_string()}})
        }))
        .await;
    let lease = short_unique_name("lease");
    let mut replicas = vec![
        Replica::start(&scene, &lease, "a"),
        Replica::start(&scene, &lease, "b"),
    ];
    let first_leader = eventually("a replica leads", TIMEOUT, || {
        let (client, ns, lease) = (client.clone(), ns.clone(), lease.clone());
        async move { holder(&client, &ns, &lease).await }
    })
    .await;
    eprintln!("leader: {first_leader}");
    let leader_index = replicas
        .iter()
        .position(|r| r.identity == first_leader)
        .expect("the holder is one of the replicas");

    let schedule = "* * * * *";
    scene
        .create_backup(&scene.scheduled("minutely", &source.name, schedule))
        .await;
    let created = from_time(
        scene
            .backups
            .get("minutely")
            .await
            .unwrap()
            .metadata
            .creation_timestamp
            .as_ref()
            .unwrap(),
    );

    // The leader's run of the first slot is in progress (held at its pause point).
    let running = scene
        .wait_backup("minutely", |s| s.current_run.is_some())
        .await
        .status
        .unwrap();
    let interrupted = running.current_run.clone().unwrap();
    assert_eq!(interrupted.trigger, "schedule", "{running:#?}");
    let first_slot = from_time(running.last_schedule_time.as_ref().unwrap());

    let mut leader = replicas.remove(leader_index);
    let standby = replicas.remove(0);
    let killed = Instant::now();
    leader.process.kill();

    let new_leader = wait_for_holder(&client, &ns, &lease, &standby.identity).await;
    let took = killed.elapsed();
    eprintln!("{new_leader} took over {took:?} after the kill");
    // Within the lease duration plus a margin for polling and a loaded machine.
    assert!(
        took < LEASE_DURATION + RETRY_PERIOD + Duration::from_secs(20),
        "took {took:?}"
    );

    // The interrupted run is retried by the new leader; then the next slot runs as usual.
    let second_slot = first_slot + TimeDelta::minutes(1);
    let done = scene
        .wait_backup("minutely", |s| {
            s.current_run.is_none()
                && s.last_schedule_time
                    .as_ref()
                    .is_some_and(|t| from_time(t) >= second_slot)
                && s.last_run
                    .as_ref()
                    .is_some_and(|r| r.result.is_some() && r.trigger != "retry")
        })
        .await
        .status
        .unwrap();
    let last_slot = from_time(done.last_schedule_time.as_ref().unwrap());
    eprintln!("history: {:#?}", done.history);

    // Oldest first: the interrupted first slot, its retry, then one run per later slot.
    let history: Vec<&BackupRun> = done.history.iter().rev().collect();
    assert_eq!(history[0].backup_path, interrupted.backup_path);
    assert_eq!(history[0].result, Some(RunResult::Failed));
    assert!(
        history[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("interrupted")),
        "{:#?}",
        history[0]
    );
    assert_eq!(
        (
            history[1].trigger.as_str(),
            history[1].attempt,
            history[1].result
        ),
        ("retry", Some(2), Some(RunResult::Completed)),
        "{:#?}",
        history[1]
    );
    assert_eq!(
        history.iter().filter(|r| r.trigger == "retry").count(),
        1,
        "one retry only"
    );
    for run in &history[2..] {
        assert_eq!(run.result, Some(RunResult::Completed), "{run:#?}");
    }

    // Every slot from the creation to the last one taken ran exactly once.
    let cron = Schedule::parse(schedule, None).unwrap();
    let mut expected = Vec::new();
    let mut slot = cron.next_after(created).unwrap();
    while slot <= last_slot {
        expected.push(slot);
        slot = cron.next_after(slot).unwrap();
    }
    let ran: Vec<DateTime<Utc>> = history
        .iter()
        .filter(|r| r.trigger != "retry")
        .map(|r| slot_of(r))
        .collect();
    assert_eq!(ran, expected, "slots run vs slots due");
    assert_eq!(expected.first(), Some(&first_slot));

    // Each run was started by exactly one process: the first slot by the killed leader, the
    // rest by the new one.
    let old_runs = leader.runs_started();
    let new_runs = standby.runs_started();
    eprintln!("killed leader ran {old_runs:?}; new leader ran {new_runs:?}");
    assert_eq!(old_runs, vec![interrupted.backup_path.clone()]);
    let all: BTreeSet<&String> = history.iter().map(|r| &r.backup_path).collect();
    assert_eq!(all.len(), history.len(), "a run path twice in the history");
    let expected_new: Vec<String> = history[1..].iter().map(|r| r.backup_path.clone()).collect();
    assert_eq!(new_runs, expected_new);
    let became = standby.logged("became the leader: starting the controllers");
    assert_eq!(became.len(), 1, "{became:?}");
    assert_eq!(became[0]["identity"], standby.identity.as_str());
    let saw = standby.logged("standby: another replica leads");
    assert_eq!(saw[0]["leader"], leader.identity.as_str(), "{saw:?}");
}

/// The shipped Role (`config/rbac/`) lets the operator's ServiceAccount keep its Lease in its
/// own namespace, and nowhere else.
#[tokio::test]
async fn the_shipped_rbac_is_enough_for_the_lease() {
    const OPERATOR: &str = "system:serviceaccount:cluster-backup-system:cluster-backup-operator";
    const OPERATOR_NAMESPACE: &str = "cluster-backup-system";
    let scene = Scene::bare("leader-rbac").await;
    let env = &scene.env;
    let _ = env.kubectl(&["create", "namespace", OPERATOR_NAMESPACE]);
    let (ok, out) = env.kubectl(&["apply", "-k", "config/rbac"]);
    assert!(ok, "kubectl apply -k config/rbac: {out}");
    let operator = env.client_as(OPERATOR).await;
    let lease = short_unique_name("lease");

    let mut elector = Elector::new(
        operator.clone(),
        election(OPERATOR_NAMESPACE, &lease, "operator-0"),
    );
    // Create, renew, give up: get, create and update.
    assert_eq!(
        elector.try_acquire_or_renew().await.unwrap(),
        Attempt::Holding
    );
    assert_eq!(
        elector.try_acquire_or_renew().await.unwrap(),
        Attempt::Holding
    );
    elector.release().await.unwrap();

    let mut elsewhere = Elector::new(operator, election(scene.namespace(), &lease, "operator-0"));
    let refused = elsewhere.try_acquire_or_renew().await.unwrap_err();
    assert!(refused.to_string().contains("forbidden"), "{refused}");

    let api: Api<Lease> = Api::namespaced(scene.client.clone(), OPERATOR_NAMESPACE);
    api.delete(&lease, &Default::default()).await.unwrap();
}

/// Waits until one of `replicas` holds `lease`; its index.
async fn wait_leader(scene: &Scene, lease: &str, replicas: &[Replica]) -> usize {
    let (client, ns) = (scene.client.clone(), scene.namespace().to_string());
    let holder = eventually("a replica leads", TIMEOUT, || {
        let (client, ns, lease) = (client.clone(), ns.clone(), lease.to_string());
        async move { holder(&client, &ns, &lease).await }
    })
    .await;
    replicas
        .iter()
        .position(|r| r.identity == holder)
        .expect("the holder is one of the replicas")
}

/// SIGTERM to the leader: it exits cleanly and gives the Lease up, so the standby takes over at
/// once, long before the (here long) lease duration.
#[tokio::test]
async fn a_leader_stopped_cleanly_hands_over_at_once() {
    let scene = Scene::bare("leader-term").await;
    let lease = short_unique_name("lease");
    let long = Duration::from_secs(60);
    let mut replicas = vec![
        Replica::start_with(&scene, &lease, "a", long, Duration::from_secs(40)),
        Replica::start_with(&scene, &lease, "b", long, Duration::from_secs(40)),
    ];
    let leader_index = wait_leader(&scene, &lease, &replicas).await;
    let leader = replicas.remove(leader_index);
    let standby = replicas.remove(0);
    // The standby has seen the leader's record (it logs whom it waits for).
    eventually("the standby waits", TIMEOUT, || async {
        (!standby.logged("standby: another replica leads").is_empty()).then_some(())
    })
    .await;

    // Its controllers have started their watches (a stop during start-up waits for them).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut leader = leader;
    let stopped = Instant::now();
    leader.process.terminate();
    let exit = leader.process.wait_exit(TIMEOUT).await;
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    assert_eq!(leader.logged("gave up the leadership").len(), 1);
    let (client, ns) = (scene.client.clone(), scene.namespace().to_string());
    wait_for_holder(&client, &ns, &lease, &standby.identity).await;
    let took = stopped.elapsed();
    eprintln!("standby took over {took:?} after SIGTERM to the leader");
    assert!(took < long / 2, "took {took:?}: the Lease was not given up");
}

/// A leader that finds another holder in the Lease stops and exits with an error, so that
/// Kubernetes restarts it as a standby.
#[tokio::test]
async fn a_leader_that_lost_the_lease_exits_with_an_error() {
    let scene = Scene::bare("leader-lost").await;
    let lease = short_unique_name("lease");
    let mut replicas = vec![Replica::start(&scene, &lease, "a")];
    wait_leader(&scene, &lease, &replicas).await;
    let mut leader = replicas.remove(0);

    let api: Api<Lease> = Api::namespaced(scene.client.clone(), scene.namespace());
    let mut taken = api.get(&lease).await.unwrap();
    let spec = taken.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    api.replace(&lease, &Default::default(), &taken)
        .await
        .unwrap();

    let exit = leader.process.wait_exit(TIMEOUT).await;
    assert!(exit.is_some_and(|s| !s.success()), "{exit:?}");
    let lost = leader
        .logged("lost the leadership: controllers stopped, runs in flight abandoned; exiting");
    assert_eq!(lost.len(), 1);
    assert!(
        lost[0]["error"]
            .as_str()
            .unwrap()
            .contains("intruder holds it now"),
        "{lost:?}"
    );
}
