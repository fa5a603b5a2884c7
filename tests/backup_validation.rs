//! Bad Backup specs: a specific message in status and in an Event, every spec problem at once
//! before storage or credentials are touched, a missing namespace named while the rest is
//! stored — and the operator keeps working afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cluster_backup::api::{BackupPhase, RunResult};
use common::objects::configmap;
use common::scene::{assert_phase, message};
use common::stored::{keys, ns_key};
use common::{Scene, unique_name};
use serde_json::json;

const COMPREHENSIVE: &str = "backup_v1_comprehensive_examples_v2.yaml";

#[tokio::test]
async fn invalid_label_selector_is_reported() {
    let scene = Scene::backups("bk-bad-sel").await;
    let source = scene.new_namespace("s").await;
    let mut doc = scene.one_shot("bad-selector", &source.name);
    doc["spec"]["source"]["labelSelector"] = json!({
        "matchExpressions": [{ "key": "app", "operator": "Equals", "values": ["web"] }]
    });
    scene
        .expect_failed_run(&doc, &["invalid labelSelector", "operator \"Equals\""])
        .await;
    scene.good_backup_still_completes("good").await;
}

/// Several spec problems at once, with storage that cannot be reached and credentials that do
/// not exist: every spec problem is reported together, before storage or credentials are
/// touched (so neither the missing Secret nor the dead endpoint is what the user reads).
#[tokio::test]
async fn every_spec_problem_is_reported_together_before_storage() {
    let scene = Scene::backups("bk-bad-all").await;
    let source = scene.new_namespace("s").await;
    let mut doc = scene.one_shot("bad-all", &source.name);
    doc["spec"]["source"]["resourceTypes"] = json!(["deploymnts"]);
    doc["spec"]["source"]["labelSelector"] = json!({
        "matchExpressions": [{ "key": "app", "operator": "Equals", "values": ["web"] }]
    });
    doc["spec"]["retention"] = json!({ "ttl": "soon" });
    doc["spec"]["storageLocation"] = json!({
        "provider": "minio", "bucket": "b", "endpoint": "http://127.0.0.1:1",
        "prefix": "team/../other", "credentialsSecret": "no-such-secret",
    });
    let backup = scene
        .expect_failed_run(
            &doc,
            &[
                "\"deploymnts\"",
                "invalid labelSelector",
                "invalid retention.ttl \"soon\"",
                "storageLocation: ",
                "\"team/../other\"",
            ],
        )
        .await;
    let msg = message(&backup);
    assert!(!msg.contains("no-such-secret"), "{msg}");
    assert!(!msg.contains("127.0.0.1:1"), "{msg}");
    let ready = backup
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready.reason, "InvalidSpec");
}

#[tokio::test]
async fn unknown_resource_type_is_named_with_a_suggestion() {
    let scene = Scene::backups("bk-bad-type").await;
    let source = scene.new_namespace("s").await;
    let mut doc = scene.one_shot("bad-type", &source.name);
    doc["spec"]["source"]["resourceTypes"] = json!(["deploymnts"]);
    scene
        .expect_failed_run(&doc, &["\"deploymnts\"", "did you mean \"deployments\""])
        .await;
    scene.good_backup_still_completes("good").await;
}

/// `production-backup` made one-shot, with one of its three namespaces missing: the others are
/// stored (restorable), the result is PartiallyFailed and names the missing namespace.
#[tokio::test]
async fn missing_namespace_is_named_and_the_rest_is_stored() {
    let scene = Scene::backups("bk-bad-ns").await;
    let production = scene.new_namespace("p").await;
    let data = scene.new_namespace("pd").await;
    let missing = unique_name("prod-monitoring-missing");
    let labels = json!({ "environment": "production", "backup": "enabled" });
    for ns in [&production.name, &data.name] {
        scene.create(configmap(ns, "cfg", labels.clone())).await;
    }
    let mut doc = scene.backup_sample(
        COMPREHENSIVE,
        "production-backup",
        &[
            ("production", &production.name),
            ("prod-data", &data.name),
            ("prod-monitoring", &missing),
        ],
    );
    doc["spec"].as_object_mut().unwrap().remove("schedule");
    scene.create_backup(&doc).await;

    let backup = scene.wait_finished("production-backup").await;
    assert_phase(&backup, BackupPhase::PartiallyFailed);
    let status = backup.status.as_ref().unwrap();
    let last = status.last_run.as_ref().unwrap();
    assert_eq!(last.result, Some(RunResult::PartiallyFailed));
    assert_eq!(last.failed, 1);
    assert!(
        last.errors
            .iter()
            .any(|e| e.contains(&missing) && e.contains("does not exist")),
        "{:?}",
        last.errors
    );
    let msg = message(&backup);
    assert!(
        msg.contains(&missing) && msg.contains("does not exist"),
        "{msg}"
    );
    let note = scene
        .warning_event("Backup", "production-backup", "BackupPartiallyFailed")
        .await;
    assert!(note.contains(&missing), "{note}");

    let run = scene.verify_run(&backup).await;
    assert_eq!(
        run.keys(),
        keys([
            ns_key(&production.name, "configmaps", "cfg"),
            ns_key(&data.name, "configmaps", "cfg"),
        ])
    );
    assert_eq!(run.manifest.result, "PartiallyFailed");
    assert!(
        run.manifest
            .errors
            .iter()
            .any(|e| e.name.as_deref() == Some(missing.as_str())),
        "{:?}",
        run.manifest.errors
    );

    scene.good_backup_still_completes("good").await;
}

/// A scheduled Backup is checked against the cluster when its spec changes, not at its first
/// slot (here a year away): an unknown type fails it at once with `InvalidSpec`, and fixing
/// the spec schedules it.
#[tokio::test]
async fn scheduled_backup_spec_is_checked_when_it_changes() {
    let scene = Scene::backups("bk-sched-spec").await;
    let source = scene.new_namespace("s").await;
    let mut doc = scene.scheduled("yearly", &source.name, "@yearly");
    doc["spec"]["source"]["resourceTypes"] = json!(["deploymnts"]);
    scene.create_backup(&doc).await;

    let failed = scene
        .wait_backup("yearly", |s| s.phase == Some(BackupPhase::Failed))
        .await;
    let msg = message(&failed);
    assert!(msg.contains("\"deploymnts\""), "{msg}");
    let status = failed.status.as_ref().unwrap();
    assert!(status.last_run.is_none(), "nothing may run: {status:?}");
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "InvalidSpec");
    scene.warning_event("Backup", "yearly", "InvalidSpec").await;

    let fix = json!({ "spec": { "source": { "resourceTypes": ["deployments"] } } });
    scene
        .backups
        .patch(
            "yearly",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&fix),
        )
        .await
        .unwrap();
    let scheduled = scene
        .wait_backup("yearly", |s| s.phase == Some(BackupPhase::Scheduled))
        .await;
    let status = scheduled.status.as_ref().unwrap();
    assert!(status.next_backup_time.is_some(), "{status:?}");
    assert_eq!(status.observed_generation, scheduled.metadata.generation);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Scheduled")
    );
    assert!(status.last_run.is_none());
}
