//! Objects that already exist: `conflictResolution` skip (the default) leaves them, overwrite
//! replaces them, fail stops at the first — however the API server words its refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cluster_backup::api::{RestorePhase, RestoreStatus};
use common::Scene;
use common::objects::api_resource;
use common::restored::count;
use kube::api::{DynamicObject, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// conflictResolution skip (default), overwrite, fail.
#[tokio::test]
async fn conflict_resolution() {
    let scene = Scene::restores("conflicts").await;
    let client = &scene.client;
    let (shop, path) = scene
        .backed_up_shop("cshop", &["configmaps", "secrets"])
        .await;

    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &shop.name);
    let change = || async {
        let mut cm = cms.get("app-config").await.unwrap();
        cm.data
            .get_or_insert_default()
            .insert("greeting".to_string(), "changed".to_string());
        cms.replace("app-config", &PostParams::default(), &cm)
            .await
            .unwrap();
    };
    change().await;

    // By backupName: the newest complete run of that Backup, at its storage location.
    let status = scene
        .restore("skip", json!({ "source": { "backupName": "cshop" } }))
        .await;
    assert_eq!(
        status.backup_info.as_ref().map(|i| i.backup_path.as_str()),
        Some(path.as_str())
    );
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "skipped"), 2);
    let cm = cms.get("app-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "changed");

    let status = restore_resolving(&scene, "overwrite", &path, "overwrite").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(
        count(&status, "overwritten"),
        2,
        "{:?}",
        status.resource_counts
    );
    let cm = cms.get("app-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "hello");

    change().await;
    let status = restore_resolving(&scene, "fail", &path, "fail").await;
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    // Secrets restore before ConfigMaps (restore order): the Secret is the first conflict and
    // the restore stops there.
    assert!(
        message.contains(&format!(
            "Secret {}/app-secret already exists and conflictResolution is fail",
            shop.name
        )),
        "{message}"
    );
    assert_eq!(count(&status, "failed"), 1);
    assert_eq!(count(&status, "skipped") + count(&status, "created"), 0);
    scene
        .event_reasons("Restore", "fail", &["RestoreStarted", "RestoreFailed"])
        .await;
    let cm = cms.get("app-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "changed");
}

/// Creates a NodePort Service `name` with an explicit nodePort (recorded in managedFields, so
/// the restore keeps it); returns the port. Ports are picked at random: Terminating namespaces
/// of earlier runs may still hold theirs.
async fn create_node_port_service(client: &Client, ns: &str, name: &str) -> i64 {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &api_resource("v1", "Service", "services"),
    );
    let mut last_error = String::new();
    for attempt in 0..20u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
        let port = 30000 + (nanos / 7 + attempt * 131) % 2700;
        let service: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": name, "namespace": ns, "labels": { "tier": "edge" } },
            "spec": { "type": "NodePort", "selector": { "app": "edge" },
                      "ports": [{ "name": "http", "port": 80, "targetPort": 8080,
                                  "nodePort": port }] }
        }))
        .unwrap();
        match api.create(&PostParams::default(), &service).await {
            Ok(_) => return port as i64,
            Err(err) => last_error = err.to_string(),
        }
    }
    panic!("no free nodePort for Service {ns}/{name}: {last_error}");
}

/// An existing Service with a pinned nodePort is refused with 422 (port already allocated),
/// not 409; it is still a conflict: skipped with `skip`, replaced with `overwrite`, and the
/// reason to stop with `fail`.
#[tokio::test]
async fn existing_node_port_service_is_a_conflict() {
    let scene = Scene::restores("nodeport").await;
    let client = &scene.client;
    let shop = scene.new_namespace("np").await;
    let port = create_node_port_service(client, &shop.name, "edge").await;
    let path = scene.back_up("np", &[&shop.name], &["services"]).await;

    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), &shop.name);
    let mut live = services.get("edge").await.unwrap();
    live.metadata
        .labels
        .get_or_insert_default()
        .insert("tier".to_string(), "changed".to_string());
    services
        .replace("edge", &PostParams::default(), &live)
        .await
        .unwrap();
    let tier = |s: &k8s_openapi::api::core::v1::Service| {
        s.metadata.labels.as_ref().unwrap()["tier"].clone()
    };
    let node_port = |s: &k8s_openapi::api::core::v1::Service| {
        s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].node_port
    };

    let status = scene
        .restore("np-skip", json!({ "source": scene.by_path(&path) }))
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "skipped"), 1, "{:?}", status.resource_counts);
    assert_eq!(count(&status, "failed"), 0, "{:?}", status.failed_resources);
    assert_eq!(
        status.skipped_resources[0].reason.as_deref(),
        Some("already exists")
    );
    assert_eq!(tier(&services.get("edge").await.unwrap()), "changed");

    let status = restore_resolving(&scene, "np-overwrite", &path, "overwrite").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(
        count(&status, "overwritten"),
        1,
        "{:?}",
        status.resource_counts
    );
    let restored = services.get("edge").await.unwrap();
    assert_eq!(tier(&restored), "edge");
    assert_eq!(node_port(&restored), Some(port as i32));

    let status = restore_resolving(&scene, "np-fail", &path, "fail").await;
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{status:?}");
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains(&format!(
            "Service {}/edge already exists and conflictResolution is fail",
            shop.name
        )),
        "{message}"
    );
}

/// Restores `path` in place with `conflictResolution: <resolution>`.
async fn restore_resolving(
    scene: &Scene,
    name: &str,
    path: &str,
    resolution: &str,
) -> RestoreStatus {
    scene
        .restore(
            name,
            json!({ "source": scene.by_path(path),
                    "target": { "conflictResolution": resolution } }),
        )
        .await
}
