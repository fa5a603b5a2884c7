//! Whether the operator can work: the start-up check that its CRDs are served and that it may
//! list and watch them ([`check_access`]), and the readiness `/readyz` reports ([`Health`]).

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kube::api::ListParams;
use kube::core::NamespaceResourceScope;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::metrics::{BACKUP, LOCATION, RESTORE};
use super::{Controllers, Settings};
use crate::api::{Backup, ClusterStorageLocation, Restore};

/// Where this replica stands in leader election. Every state counts as ready: a standby is a
/// healthy replica waiting to take over, and must not be taken out of its Service or restarted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LeaderState {
    Leader,
    Standby,
    /// No leader election: the only replica.
    #[default]
    NotElecting,
}

/// Readiness, shared by the controllers (which report their watches synced), the start-up
/// check and the admin HTTP server. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Health {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    crds_ok: bool,
    /// Controllers started whose watch has not listed everything yet.
    expected: BTreeSet<&'static str>,
    synced: BTreeSet<&'static str>,
    leader: LeaderState,
}

impl State {
    /// Ready, or what it still waits for.
    fn readiness(&self) -> Result<(), String> {
        if !self.crds_ok {
            return Err("the CRDs have not been checked yet".to_string());
        }
        let waiting: Vec<&str> = self.expected.difference(&self.synced).copied().collect();
        if !waiting.is_empty() {
            return Err(format!("watches not synced yet: {}", waiting.join(", ")));
        }
        // Every leader state is ready (see `LeaderState`).
        match self.leader {
            LeaderState::Leader | LeaderState::Standby | LeaderState::NotElecting => Ok(()),
        }
    }
}

impl Health {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The CRDs are served and the operator may list them.
    pub fn set_crds_ok(&self, ok: bool) {
        self.state().crds_ok = ok;
    }

    /// A controller starts: readiness waits until its watch has synced.
    pub fn expect_sync(&self, controller: &'static str) {
        self.state().expected.insert(controller);
    }

    /// The watch of `controller` has listed everything once.
    pub fn set_synced(&self, controller: &'static str) {
        self.state().synced.insert(controller);
    }

    pub fn set_leader_state(&self, leader: LeaderState) {
        self.state().leader = leader;
    }

    pub fn leader_state(&self) -> LeaderState {
        self.state().leader
    }

    /// `Ok` when ready; otherwise what it waits for, for the `/readyz` body.
    pub fn readiness(&self) -> Result<(), String> {
        self.state().readiness()
    }
}

/// Why `cluster-backup run` cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Every problem, then what to do about them (each remedy once).
    #[error("the operator cannot work: {}", problems.join("; "))]
    Access { problems: Vec<String> },
    #[error("cannot serve metrics and health on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Lists each kind the started controllers watch (one object), as their watches will: fails
/// with every missing CRD and missing right at once, saying what to do about each.
/// On success `health` expects the watch of each started controller to sync.
pub async fn check_access(
    client: &Client,
    settings: &Settings,
    health: &Health,
) -> Result<(), StartError> {
    let ns = settings.namespace.as_deref();
    let (backups, restores, locations) = match settings.controllers {
        Controllers::Both => (true, true, true),
        Controllers::Backups => (true, false, false),
        Controllers::Restores => (false, true, false),
        Controllers::Locations => (false, false, true),
    };
    let scope = match ns {
        Some(ns) => Scope::Namespace(ns),
        None => Scope::AllNamespaces,
    };
    let mut found = Vec::new();
    if backups {
        found.extend(list_one::<Backup>(Api::namespaced_or_all(client, ns), scope).await);
    }
    if restores {
        found.extend(list_one::<Restore>(Api::namespaced_or_all(client, ns), scope).await);
    }
    if locations {
        let api: Api<ClusterStorageLocation> = Api::all(client.clone());
        found.extend(list_one(api, Scope::Cluster).await);
    }
    if found.is_empty() {
        for (started, kind) in [
            (backups, BACKUP),
            (restores, RESTORE),
            (locations, LOCATION),
        ] {
            if started {
                health.expect_sync(kind);
            }
        }
        health.set_crds_ok(true);
        Ok(())
    } else {
        Err(StartError::Access {
            problems: with_remedies(found),
        })
    }
}

/// Where a kind was listed, for messages.
#[derive(Clone, Copy, Debug)]
enum Scope<'a> {
    Namespace(&'a str),
    AllNamespaces,
    Cluster,
}

impl std::fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Namespace(ns) => write!(f, "in namespace {ns}"),
            Scope::AllNamespaces => f.write_str("in all namespaces"),
            Scope::Cluster => f.write_str("cluster-wide"),
        }
    }
}

/// A problem found, and what fixes it.
#[derive(Debug, PartialEq, Eq)]
struct Problem {
    what: String,
    remedy: &'static str,
}

const INSTALL_CRDS: &str =
    "run `cluster-backup install` (or apply config/crd), or start with --install-crds";
const GRANT_RBAC: &str = "bind the operator's ServiceAccount the ClusterRole in config/rbac (kubectl apply -k config/rbac)";

/// The problems, then each remedy once.
fn with_remedies(found: Vec<Problem>) -> Vec<String> {
    let mut remedies: Vec<&str> = Vec::new();
    for problem in &found {
        if !problem.remedy.is_empty() && !remedies.contains(&problem.remedy) {
            remedies.push(problem.remedy);
        }
    }
    let mut lines: Vec<String> = found.into_iter().map(|p| p.what).collect();
    lines.extend(remedies.into_iter().map(|r| format!("to fix: {r}")));
    lines
}

/// `Api::namespaced` or `Api::all`, as the controllers watch.
trait NamespacedOrAll {
    fn namespaced_or_all(client: &Client, namespace: Option<&str>) -> Self;
}

impl<K> NamespacedOrAll for Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    fn namespaced_or_all(client: &Client, namespace: Option<&str>) -> Self {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
}

/// The problem with listing `K`, if any.
async fn list_one<K>(api: Api<K>, scope: Scope<'_>) -> Option<Problem>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let err = api
        .list_metadata(&ListParams::default().limit(1))
        .await
        .err()?;
    Some(access_problem(
        &format!("{}.{}", K::plural(&()), K::group(&())),
        scope,
        &err,
    ))
}

/// What a failed list of `resource` means, and what fixes it.
fn access_problem(resource: &str, scope: Scope<'_>, err: &kube::Error) -> Problem {
    match err {
        kube::Error::Api(status) if status.is_not_found() => Problem {
            what: format!("the CRD {resource} is not installed"),
            remedy: INSTALL_CRDS,
        },
        kube::Error::Api(status) if status.is_forbidden() => Problem {
            what: format!(
                "the operator may not list {resource} {scope} ({})",
                status.message
            ),
            remedy: GRANT_RBAC,
        },
        err => Problem {
            what: format!("cannot list {resource} {scope}: {err}"),
            remedy: "",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_crds_and_every_watch_synced() {
        let health = Health::default();
        health.expect_sync("backup");
        health.expect_sync("restore");
        assert!(health.readiness().unwrap_err().contains("CRDs"));
        health.set_crds_ok(true);
        let waiting = health.readiness().unwrap_err();
        assert!(waiting.contains("backup, restore"), "{waiting}");
        health.set_synced("backup");
        assert_eq!(
            health.readiness(),
            Err("watches not synced yet: restore".to_string())
        );
        health.set_synced("restore");
        assert_eq!(health.readiness(), Ok(()));
    }

    #[test]
    fn every_leader_state_is_ready() {
        let health = Health::default();
        health.set_crds_ok(true);
        for state in [
            LeaderState::Leader,
            LeaderState::Standby,
            LeaderState::NotElecting,
        ] {
            health.set_leader_state(state);
            assert_eq!(health.leader_state(), state);
            assert_eq!(health.readiness(), Ok(()));
        }
    }

    #[test]
    fn access_problems_say_what_to_do() {
        let status = |code: u16, reason: &str| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure("denied by test", reason).with_code(code),
            ))
        };
        let missing = access_problem(
            "backups.backup.cnd.dk",
            Scope::AllNamespaces,
            &status(404, "NotFound"),
        );
        assert_eq!(
            missing.what,
            "the CRD backups.backup.cnd.dk is not installed"
        );
        let forbidden =
            |resource: &str, scope| access_problem(resource, scope, &status(403, "Forbidden"));
        let found = vec![
            missing,
            forbidden("restores.backup.cnd.dk", Scope::Namespace("team-a")),
            forbidden("clusterstoragelocations.backup.cnd.dk", Scope::Cluster),
        ];
        let message = StartError::Access {
            problems: with_remedies(found),
        }
        .to_string();
        for needle in [
            "CRD backups.backup.cnd.dk is not installed",
            "may not list restores.backup.cnd.dk in namespace team-a (denied by test)",
            "may not list clusterstoragelocations.backup.cnd.dk cluster-wide",
            "to fix: run `cluster-backup install`",
            "to fix: bind the operator's ServiceAccount the ClusterRole in config/rbac",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
        assert_eq!(message.matches("to fix: bind").count(), 1, "{message}");
    }
}
