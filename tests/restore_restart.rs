//! Restores across operator restarts: a finished Restore never runs again, and one the
//! operator was interrupted in runs again to the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use cluster_backup::api::RestorePhase;
use common::Scene;
use common::restored::message;
use serde_json::json;

/// A finished Restore never runs again (even when the operator starts afresh); one the
/// operator was interrupted in (phase Restoring) runs again to the end.
#[tokio::test]
async fn finished_restores_stay_finished_and_interrupted_ones_rerun() {
    let scene = Scene::bare("restore-restart").await;
    for (name, phase) in [("done", "Completed"), ("interrupted", "Restoring")] {
        scene
            .create_restore(name, json!({ "source": { "backupName": "missing" } }))
            .await;
        scene
            .preset_status(
                "Restore",
                name,
                json!({ "phase": phase, "message": "set by the test" }),
            )
            .await;
    }
    let _operator = scene.start_restore_operator();
    let status = scene.wait_restore("interrupted").await;
    assert_eq!(status.phase, Some(RestorePhase::Failed));
    assert!(
        message(&status).contains("Backup missing not found"),
        "{status:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let done = scene.restores.get("done").await.unwrap().status.unwrap();
    assert_eq!(done.phase, Some(RestorePhase::Completed));
    assert_eq!(done.message.as_deref(), Some("set by the test"));
}
