//! Retention: `keepLast` deletes expired run prefixes from the bucket, keeps the newest ones,
//! and reports what it deleted as an Event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use cluster_backup::api::{Backup, BackupSpec, RUN_NOW_ANNOTATION, RunResult};
use cluster_backup::controller::crds::install_crds;
use cluster_backup::engine::retention;
use common::{TestBucket, TestEnv, TestNamespace, create_json, start_operator, wait_for_backup};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn keep_last_deletes_older_runs_from_storage() {
    let env = TestEnv::load();
    let client = env.client().await;
    install_crds(&client, Duration::from_secs(60))
        .await
        .unwrap();
    let ns = TestNamespace::new(&client, "retention").await;
    let source = TestNamespace::new(&client, "retention-src").await;
    create_json(
        &client,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": source.name}, "data": {"k": "v"}}),
    )
    .await;
    let bucket = TestBucket::new(&env, "retention");
    let mut spec: BackupSpec = serde_json::from_value(json!({
        "source": {"namespaces": [source.name], "resourceTypes": ["configmaps"]},
        "schedule": "@yearly",
        "storageLocation": {"provider": "minio", "bucket": "x"},
        "retention": {"keepLast": 2}
    }))
    .unwrap();
    spec.storage_location = env.storage_location(&bucket.name);
    let api: Api<Backup> = Api::namespaced(client.clone(), &ns.name);
    api.create(&PostParams::default(), &Backup::new("kept", spec))
        .await
        .unwrap();
    let _operator = start_operator(&client, &ns.name);

    let mut paths = Vec::new();
    for run in 1..=3 {
        let patch =
            json!({"metadata": {"annotations": {RUN_NOW_ANNOTATION: format!("run-{run}")}}});
        api.patch("kept", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        let done = wait_for_backup(&api, "kept", Duration::from_secs(60), |s| {
            s.backup_count >= run
        })
        .await;
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

    let storage = bucket.storage();
    let runs = retention::list_runs(&storage, &ns.name, "kept")
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
}
