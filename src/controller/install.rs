//! `cluster-backup install`: everything the cluster needs besides the operator's Deployment —
//! the CRDs and the policy that records who asked for each Backup and Restore — installed
//! (server-side apply, idempotent) and waited for.

use std::time::Duration;

use kube::Client;

use super::admission::{self, AdmissionError};
use super::crds::{self, CrdError};

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Crds(#[from] CrdError),
    #[error(transparent)]
    Admission(#[from] AdmissionError),
}

/// What [`install`] put in place.
#[derive(Debug)]
pub struct Installed {
    pub crds: Vec<String>,
    pub policy: &'static str,
}

/// Installs the CRDs and waits until they are Established, then the requester-stamp policy and
/// waits until the API server enforces it: once this returns, every Backup and Restore written
/// is stamped.
pub async fn install(client: &Client, timeout: Duration) -> Result<Installed, InstallError> {
    let crds = crds::install_crds(client, timeout).await?;
    admission::install_admission_policy(client).await?;
    admission::wait_until_enforced(client, timeout).await?;
    Ok(Installed {
        crds,
        policy: admission::REQUESTER_POLICY_NAME,
    })
}
