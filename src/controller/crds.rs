//! Installing our own CRDs (used by `cluster-backup install`, the demo and the tests).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, ResourceExt};

use crate::api;

/// Field manager for everything this tool writes with server-side apply.
pub const FIELD_MANAGER: &str = "cluster-backup-operator";

#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("cannot apply CRD {name}: {source}")]
    Apply { name: String, source: kube::Error },
    #[error("CRD {name} did not become Established within {seconds} s")]
    NotEstablished { name: String, seconds: u64 },
    #[error("waiting for CRD {name}: {source}")]
    Wait {
        name: String,
        source: kube::runtime::wait::Error,
    },
}

/// Server-side applies every CRD of this operator and waits until each is Established.
pub async fn install_crds(client: &Client, timeout: Duration) -> Result<Vec<String>, CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::new();
    for crd in api::crds() {
        let name = crd.name_any();
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(|source| CrdError::Apply {
                name: name.clone(),
                source,
            })?;
        names.push(name);
    }
    for name in &names {
        let established = await_condition(api.clone(), name, conditions::is_crd_established());
        match tokio::time::timeout(timeout, established).await {
            Ok(Ok(_)) => {}
            Ok(Err(source)) => {
                return Err(CrdError::Wait {
                    name: name.clone(),
                    source,
                });
            }
            Err(_) => {
                return Err(CrdError::NotEstablished {
                    name: name.clone(),
                    seconds: timeout.as_secs(),
                });
            }
        }
    }
    Ok(names)
}
