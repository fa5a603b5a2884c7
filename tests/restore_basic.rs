//! Restoring a backup into the cluster it came from: under a new namespace name next to the
//! original (namespace mapping, RBAC subjects rewritten), in place (what was deleted comes
//! back, the rest is skipped), and the workshop's restore examples run as they describe.
//! Restored objects are compared with the originals, ignoring only the fields the restore
//! documents as stripped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use cluster_backup::api::RestorePhase;
use common::objects::{
    APP_OBJECTS, APP_TYPES, create_gizmo, create_gizmo_crd, delete_object, get_object,
    namespace_exists, shop_app,
};
use common::restored::{assert_restored, count, created_apart_from_default_sa, normalized};
use common::{Scene, TestNamespace, short_unique_name};
use serde_json::{Value, json};

/// Back up a namespace (workloads, config, RBAC, a custom resource), restore it under a new
/// name next to the original, then delete objects from the original and restore them in place.
#[tokio::test]
async fn same_cluster_restore_with_mapping_and_in_place() {
    let scene = Scene::restores("same-cluster").await;
    let client = &scene.client;
    let group = create_gizmo_crd(client).await;
    let shop = scene.new_namespace("shop").await;
    scene.create_all(shop_app(&shop.name)).await;
    create_gizmo(client, &group, &shop.name, "w1").await;
    let gizmo_type = format!("gizmos.{group}");
    let mut types: Vec<&str> = APP_TYPES.to_vec();
    types.push(&gizmo_type);
    let path = scene.back_up("shop", &[&shop.name], &types).await;

    // (b) namespace mapping into a new namespace, created by the restore.
    let copy = short_unique_name("copy");
    let (status, phases) = scene
        .restore_with_phases(
            "to-copy",
            json!({
                "source": scene.by_path(&path),
                "target": { "namespaceMapping": { shop.name.clone(): copy } },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    assert_eq!(
        phases,
        [
            RestorePhase::Validating,
            RestorePhase::Restoring,
            RestorePhase::Completed
        ]
    );
    let _copy_guard = scene.adopt_namespace(&copy);
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0);
    // 7 app objects + the gizmo, plus the namespace itself; the CRD is cluster-scoped and
    // resourceTypes does not name it (skipped; it exists here anyway).
    assert_eq!(
        created_apart_from_default_sa(&status),
        9,
        "{:?}",
        status.resource_counts
    );
    assert_eq!(count(&status, "created/namespaces"), 1);
    assert_eq!(count(&status, "skipped/customresourcedefinitions"), 1);
    assert!(
        status
            .skipped_resources
            .iter()
            .any(|s| s.kind == "CustomResourceDefinition"
                && s.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("spec.target.resourceTypes names its type"))),
        "{:?}",
        status.skipped_resources
    );
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    let info = status.backup_info.as_ref().expect("backupInfo");
    assert_eq!(info.backup_path, path);
    assert_eq!(info.namespaces, vec![shop.name.clone()]);
    assert_restored(client, &shop.name, client, &copy, &APP_OBJECTS).await;
    let gizmo = ("", "Gizmo", "gizmos", "w1");
    let gv = format!("{group}/v1");
    let gizmo = (gv.as_str(), gizmo.1, gizmo.2, gizmo.3);
    assert_restored(client, &shop.name, client, &copy, &[gizmo]).await;
    let binding = get_object(client, APP_OBJECTS[6], Some(&copy))
        .await
        .unwrap();
    assert_eq!(binding["subjects"][0]["namespace"], json!(copy));

    // (a) delete some objects in the original namespace and restore in place: the deleted
    // ones come back, the others are skipped (conflictResolution skip is the default).
    let saved: Vec<Value> = {
        let mut v = Vec::new();
        for o in [APP_OBJECTS[2], APP_OBJECTS[3], APP_OBJECTS[0]] {
            v.push(get_object(client, o, Some(&shop.name)).await.unwrap());
        }
        v
    };
    for o in [APP_OBJECTS[2], APP_OBJECTS[3], APP_OBJECTS[0]] {
        delete_object(client, o, &shop.name).await;
    }
    let status = scene
        .restore("in-place", json!({ "source": scene.by_path(&path) }))
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created"), 3, "{:?}", status.resource_counts);
    assert_eq!(count(&status, "failed"), 0);
    assert!(
        status
            .skipped_resources
            .iter()
            .any(|s| s.kind == "Service" && s.reason.as_deref() == Some("already exists")),
        "{:?}",
        status.skipped_resources
    );
    for (o, before) in [APP_OBJECTS[2], APP_OBJECTS[3], APP_OBJECTS[0]]
        .into_iter()
        .zip(saved)
    {
        let after = get_object(client, o, Some(&shop.name)).await.unwrap();
        assert_eq!(
            normalized(after, None, None),
            normalized(before, None, None)
        );
    }

    scene
        .event_reasons(
            "Restore",
            "in-place",
            &["RestoreStarted", "RestoreCompleted"],
        )
        .await;

    // The Restore is one-shot: its status does not change afterwards.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = scene.restores.get("in-place").await.unwrap();
    assert_eq!(
        again.status.unwrap().completion_time,
        status.completion_time
    );
}

/// Every example of `stage5-restore-samples/` ends in the phase its comments describe, and
/// does what they say, against a backup of two namespaces standing in for `default` and `test`.
#[tokio::test]
async fn workshop_samples_run_as_described() {
    let scene = Scene::restores("samples").await;
    let client = &scene.client;
    let default_ns = scene.new_namespace("sdef").await;
    let test_ns = scene.new_namespace("stst").await;
    scene.create_all(shop_app(&default_ns.name)).await;
    scene.create_all(shop_app(&test_ns.name)).await;
    for kind in ["Deployment", "Service"] {
        let spec = if kind == "Service" {
            json!({ "selector": { "app": "web-server" }, "ports": [{ "port": 80 }] })
        } else {
            json!({ "selector": { "matchLabels": { "app": "web-server" } },
                    "template": { "metadata": { "labels": { "app": "web-server" } },
                                  "spec": { "containers": [{ "name": "web", "image": "nginx" }] } } })
        };
        let api_version = if kind == "Service" { "v1" } else { "apps/v1" };
        scene
            .create(json!({ "apiVersion": api_version, "kind": kind,
                    "metadata": { "name": "web", "namespace": default_ns.name,
                                  "labels": { "app": "web-server" } },
                    "spec": spec }))
            .await;
    }
    let path = scene
        .back_up(
            "samples",
            &[&default_ns.name, &test_ns.name],
            &["deployments", "services", "configmaps", "secrets"],
        )
        .await;
    let fresh: Vec<String> = (0..5).map(|_| short_unique_name("sx")).collect();
    let _guards: Vec<TestNamespace> = fresh.iter().map(|ns| scene.adopt_namespace(ns)).collect();
    let renames = [
        ("default", default_ns.name.as_str()),
        ("test", test_ns.name.as_str()),
        ("test-namespace", fresh[0].as_str()),
        ("production", fresh[1].as_str()),
        ("staging", fresh[2].as_str()),
        ("restored-apps", fresh[3].as_str()),
        ("restored-namespace", fresh[4].as_str()),
    ];
    const COMPREHENSIVE: &str = "backup_v1_comprehensive_restore_examples.yaml";
    let run = |file: &'static str, name: &'static str| {
        let doc = scene.restore_sample(file, name, &path, &renames);
        let scene = &scene;
        async move { scene.restore(name, doc["spec"].clone()).await }
    };

    // Example 1: dry run into one namespace: reports, writes nothing.
    let status = run(COMPREHENSIVE, "basic-restore-dry-run").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert!(count(&status, "created") > 0);
    assert!(!namespace_exists(client, &fresh[0]).await);

    // Example 2: default → production, test → staging, overwrite, namespaces created.
    let status = run(COMPREHENSIVE, "cross-cluster-restore").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_restored(
        client,
        &default_ns.name,
        client,
        &fresh[1],
        &APP_OBJECTS[..4],
    )
    .await;
    assert_restored(client, &test_ns.name, client, &fresh[2], &APP_OBJECTS[..4]).await;

    // Example 3: only app=web-server Deployments and Services, into restored-apps.
    let status = run(COMPREHENSIVE, "selective-restore").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    let web = [
        ("apps/v1", "Deployment", "deployments", "web"),
        ("v1", "Service", "services", "web"),
    ];
    assert_restored(client, &default_ns.name, client, &fresh[3], &web).await;
    assert!(
        get_object(client, APP_OBJECTS[0], Some(&fresh[3]))
            .await
            .is_none()
    );
    assert_eq!(count(&status, "created/deployments"), 1);
    assert_eq!(count(&status, "created/services"), 1);

    // Example 4: validation only.
    let status = run(COMPREHENSIVE, "validation-restore").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created"), 0);
    assert_eq!(count(&status, "failed"), 0);

    // The single sample: a dry run of default → restored-namespace.
    let status = run("backup_v1_restore.yaml", "restore-sample").await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert!(count(&status, "created") > 0);
    assert!(!namespace_exists(client, &fresh[4]).await);
}
