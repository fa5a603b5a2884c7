//! What acting as the requester costs: building an impersonating client, and one LIST through
//! it against the same LIST with the operator's own identity, on a real API server
//! (`KUBECONFIG`, e.g. the test ground's). Prints a Markdown table for BENCHMARKS.md.
//!
//!     source "$(scripts/testenv.sh env default)"
//!     cargo run --release --example impersonation_cost
//!
//! The requester is shaped like a ServiceAccount token's identity (user, uid, three groups,
//! one `extra`): the API server authorises each impersonated attribute on every request.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster_backup::core::requester::Requester;
use cluster_backup::k8s::impersonate::impersonating;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const OBJECTS: usize = 50;
const ROUNDS: usize = 400;
const CLIENTS: usize = 10_000;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("crypto provider"))?;
    let operator = Client::try_default().await?;
    let ns = format!("impersonation-bench-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(operator.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let configmaps: Api<ConfigMap> = Api::namespaced(operator.clone(), &ns);
    for i in 0..OBJECTS {
        let object =
            json!({"metadata": {"name": format!("cm-{i}")}, "data": {"k": "v".repeat(512)}});
        configmaps
            .create(&PostParams::default(), &serde_json::from_value(object)?)
            .await?;
    }
    // The test ground's administrator, with a ServiceAccount-like set of attributes.
    let requester = Requester {
        username: "testenv-admin".to_string(),
        uid: "c0ffee00-0000-4000-8000-000000000000".to_string(),
        groups: vec![
            "system:masters".to_string(),
            "system:serviceaccounts".to_string(),
            "system:authenticated".to_string(),
        ],
        extra: BTreeMap::from([(
            "authentication.kubernetes.io/credential-id".to_string(),
            vec!["JTI=bench".to_string()],
        )]),
    };

    let started = Instant::now();
    for _ in 0..CLIENTS {
        std::hint::black_box(impersonating(&operator, &requester)?);
    }
    let per_client = started.elapsed() / CLIENTS as u32;

    let as_requester: Api<ConfigMap> = Api::namespaced(impersonating(&operator, &requester)?, &ns);
    let params = ListParams::default().limit(500);
    let (mut own, mut impersonated) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS + 20 {
        // Interleaved, so load on the machine hits both alike; the first rounds warm up.
        for (api, samples) in [(&configmaps, &mut own), (&as_requester, &mut impersonated)] {
            let started = Instant::now();
            let listed = api.list(&params).await?;
            let took = started.elapsed();
            // Plus the kube-root-ca.crt ConfigMap of every namespace.
            anyhow::ensure!(
                listed.items.len() > OBJECTS,
                "listed {}",
                listed.items.len()
            );
            if round >= 20 {
                samples.push(took);
            }
        }
    }
    namespaces.delete(&ns, &DeleteParams::default()).await?;

    let (own, impersonated) = (median(own), median(impersonated));
    let extra = impersonated.saturating_sub(own);
    println!("| measurement | value |");
    println!("|---|---:|");
    println!("| building an impersonating client (mean of {CLIENTS}) | {per_client:.2?} |");
    println!("| LIST of {OBJECTS} ConfigMaps as the operator (median of {ROUNDS}) | {own:.2?} |");
    println!(
        "| the same LIST impersonating the requester (median of {ROUNDS}) | {impersonated:.2?} |"
    );
    println!("| difference per request | {extra:.2?} |");
    Ok(())
}
