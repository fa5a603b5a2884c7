//! Retention: `keepLast` deletes expired run prefixes from the bucket, keeps the newest ones,
//! and reports what it deleted as an Event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cluster_backup::api::RunResult;
use cluster_backup::engine::retention;
use common::Scene;
use serde_json::json;

#[tokio::test]
async fn keep_last_deletes_older_runs_from_storage() {
    let scene = Scene::backups("retention").await;
    let source = scene.namespace_with_configmap("src", "c").await;
    let mut doc = scene.scheduled("kept", &source.name, "@yearly");
    doc["spec"]["retention"] = json!({ "keepLast": 2 });
    scene.create_backup(&doc).await;

    let mut paths = Vec::new();
    for run in 1..=3 {
        scene.run_now("kept", &format!("run-{run}")).await;
        let done = scene.wait_backup("kept", |s| s.backup_count >= run).await;
        let status = done.status.unwrap();
        assert_eq!(
            status.last_run.as_ref().unwrap().result,
            Some(RunResult::Completed)
        );
        paths.push(status.backup_path.unwrap());
    }
    assert_eq!(
        paths
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "{paths:?}"
    );

    let storage = scene.storage();
    let runs = retention::list_runs(&storage, scene.namespace(), "kept")
        .await
        .unwrap();
    let mut dirs: Vec<String> = runs.iter().map(|r| r.dir.clone()).collect();
    dirs.sort();
    assert_eq!(
        dirs,
        paths[1..].to_vec(),
        "the oldest run must be deleted, the newest two kept"
    );
    assert!(runs.iter().all(|r| r.complete));
    assert!(
        !retention::manifest_exists(&storage, &paths[0])
            .await
            .unwrap()
    );
    let listed: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(storage.list(&paths[0]))
        .await
        .unwrap();
    assert!(
        listed.is_empty(),
        "objects of the expired run remain: {listed:?}"
    );

    scene
        .event_reasons("Backup", "kept", &["RetentionApplied"])
        .await;
    let notes: Vec<String> = scene
        .events("Backup", "kept")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("RetentionApplied"))
        .filter_map(|e| e.note)
        .collect();
    assert!(
        notes.iter().any(|n| n.contains(paths[0].as_str())),
        "the RetentionApplied Event must name the deleted run {}: {notes:?}",
        paths[0]
    );
}
