//! Where runs are written: Backups sharing a bucket never share a path, and a bucket that
//! cannot be created or an endpoint that cannot be reached fails the run with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cluster_backup::api::BackupPhase;
use cluster_backup::core::layout;
use common::Scene;
use common::scene::{assert_phase, message};
use common::stored::{keys, ns_key};
use futures::TryStreamExt;
use serde_json::json;

/// Backups sharing one bucket never share a path: two Backups of one namespace and a Backup
/// with the same name in another namespace, all started at once.
#[tokio::test]
async fn backups_sharing_a_bucket_never_share_a_path() {
    let first = Scene::backups("bk-share-a").await;
    let second = Scene::builder("bk-share-b")
        .bucket(&first.bucket.name)
        .start()
        .await;
    let source = first.namespace_with_configmap("s", "cfg").await;

    first
        .create_backup(&first.one_shot("alpha", &source.name))
        .await;
    first
        .create_backup(&first.one_shot("beta", &source.name))
        .await;
    second
        .create_backup(&second.one_shot("alpha", &source.name))
        .await;

    let mut paths = Vec::new();
    let mut all_keys = BTreeSet::new();
    for (scene, name) in [(&first, "alpha"), (&first, "beta"), (&second, "alpha")] {
        let backup = scene.wait_finished(name).await;
        assert_phase(&backup, BackupPhase::Completed);
        let run = scene.verify_run(&backup).await;
        assert_eq!(
            run.keys(),
            keys([ns_key(&source.name, "configmaps", "cfg")])
        );
        all_keys.extend(run.objects.keys().map(|k| format!("{}/{k}", run.path)));
        all_keys.insert(format!("{}/{}", run.path, layout::MANIFEST_FILE));
        paths.push(run.path);
    }
    for (i, a) in paths.iter().enumerate() {
        for b in &paths[i + 1..] {
            assert!(
                !a.starts_with(&format!("{b}/")) && !b.starts_with(&format!("{a}/")) && a != b,
                "{a} and {b} overlap"
            );
        }
    }
    // Nothing else in the bucket: every key belongs to exactly one of the three runs.
    let bucket_keys: BTreeSet<String> = first
        .storage()
        .list("")
        .map_ok(|o| o.key)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(bucket_keys, all_keys);
}

#[tokio::test]
async fn bucket_that_cannot_be_created_says_why() {
    let scene = Scene::backups("bk-bad-bucket").await;
    let source = scene.new_namespace("s").await;
    let mut doc = scene.one_shot("bad-bucket", &source.name);
    doc["spec"]["storageLocation"]["bucket"] = json!("Bad_Bucket");
    let backup = scene
        .expect_failed_run(
            &doc,
            &["bucket \"Bad_Bucket\" does not exist and could not be created: "],
        )
        .await;
    let msg = message(&backup);
    let reason = msg
        .split("could not be created: ")
        .nth(1)
        .unwrap_or_default()
        .trim();
    assert!(!reason.is_empty(), "no reason given: {msg}");
    scene.good_backup_still_completes("good").await;
}

#[tokio::test]
async fn unreachable_endpoint_fails_quickly_with_connection_refused() {
    let scene = Scene::backups("bk-bad-endpoint").await;
    let source = scene.new_namespace("s").await;
    let endpoint = common::unused_local_endpoint();
    let mut doc = scene.one_shot("unreachable", &source.name);
    doc["spec"]["storageLocation"]["endpoint"] = json!(endpoint);
    let started = Instant::now();
    scene
        .expect_failed_run(
            &doc,
            &[
                format!("cannot reach S3 endpoint {endpoint}").as_str(),
                "connection refused",
            ],
        )
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "took {took:?}");
    eprintln!("unreachable endpoint reported after {took:?}");
    scene.good_backup_still_completes("good").await;
}
