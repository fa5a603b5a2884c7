//! A Restore names types the way `kubectl` does, including the short names that exist only in
//! the CRDs a backup stores, against the REAL API server and S3 server: the backup and restore
//! engines run directly (no operator), one fresh namespace and bucket per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Utc;
use cluster_backup::api::{BackupSpec, RestoreSpec};
use cluster_backup::core::restore::status::Action;
use cluster_backup::engine::backup::{Progress, RunContext, check_spec, run_backup};
use cluster_backup::engine::restore::{RestoreProgress, run_restore};
use common::objects::create_gizmo_crd_with_short_names;
use common::{TestBucket, TestEnv, TestNamespace, create_json, unique_name};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::watch;

fn gizmos(client: &Client, group: &str, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1", "Gizmo");
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "gizmos"),
    )
}

#[tokio::test]
async fn short_names_of_stored_crds_select_their_custom_resources() {
    let env = TestEnv::load();
    let client = env.client().await;
    let source = TestNamespace::new(&client, "tn-src").await;
    let copy = unique_name("tn-copy");
    let bucket = TestBucket::new(&env, "tn");
    let storage = bucket.storage();
    let group = create_gizmo_crd_with_short_names(&client, &["gzmo"]).await;
    create_json(
        &client,
        json!({"apiVersion": format!("{group}/v1"), "kind": "Gizmo",
               "metadata": {"name": "g1", "namespace": source.name}, "spec": {"size": 3}}),
    )
    .await;
    create_json(
        &client,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "settings", "namespace": source.name},
               "data": {"a": "1"}}),
    )
    .await;

    // Back up the custom resources (and so their CRD) and the ConfigMaps.
    let backup: BackupSpec = serde_json::from_value(json!({
        "source": {"namespaces": [source.name],
                   "resourceTypes": [format!("gizmos.{group}"), "configmaps"]},
        "storageLocation": env.storage_location(&bucket.name),
    }))
    .unwrap();
    let checked = check_spec(&client, &backup)
        .await
        .expect("valid backup spec");
    let run = RunContext {
        backup_namespace: source.name.clone(),
        backup_name: "type-names".into(),
        uid: None,
        started: Utc::now(),
        lists_in_flight: cluster_backup::engine::backup::LISTS_IN_FLIGHT,
    };
    let (progress, _) = watch::channel(Progress::default());
    let never = tokio_util::sync::CancellationToken::new();
    let backed_up = run_backup(
        &client, &storage, &backup, &checked, &run, &progress, &never,
    )
    .await
    .expect("backup");
    assert_eq!(backed_up.total_objects, 3, "{:?}", backed_up.counts);

    // Restore by the CRD's short name only, next to the original; a type the backup lacks and a
    // mapping of a namespace it does not have select nothing and are noted.
    let restore: RestoreSpec = serde_json::from_value(json!({
        "source": {"storageLocation": env.storage_location(&bucket.name),
                   "backupPath": backed_up.run_path},
        "target": {"resourceTypes": ["GZMO", "statefulsets"],
                   "namespaceMapping": {source.name.clone(): copy, "no-such-ns": "elsewhere"}},
        "options": {"createNamespaces": true},
    }))
    .unwrap();
    let (progress, _) = watch::channel(RestoreProgress::default());
    let outcome = run_restore(
        &client,
        &storage,
        &restore,
        &backed_up.run_path,
        8,
        &progress,
    )
    .await
    .expect("`gzmo` resolves through the stored CRD");
    let lists = &outcome.lists;
    let type_dir = format!("gizmos.{group}");
    assert_eq!(lists.count(Action::Created, &type_dir), 1, "{lists:?}");
    assert_eq!(
        lists.count(Action::Skipped, "customresourcedefinitions"),
        1,
        "the CRD comes along and already exists"
    );
    assert_eq!(lists.total(Action::Failed), 0, "{lists:?}");
    assert_eq!(lists.count(Action::Created, "configmaps"), 0);
    let summary = lists.summary();
    assert!(
        summary.contains("nothing to restore for resourceTypes \"statefulsets\""),
        "{summary}"
    );
    assert!(
        summary.contains("namespaceMapping \"no-such-ns\" names no namespace of this backup"),
        "{summary}"
    );

    let restored = gizmos(&client, &group, &copy).get("g1").await.unwrap();
    assert_eq!(restored.data["spec"]["size"], 3);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &copy);
    assert!(configmaps.get_opt("settings").await.unwrap().is_none());

    // A name that matches nothing, not even through the stored CRDs, still fails the restore
    // with the types the backup holds.
    let mut unknown = restore.clone();
    unknown.target.resource_types = vec!["gzmos-typo".into()];
    let err = run_restore(
        &client,
        &storage,
        &unknown,
        &backed_up.run_path,
        8,
        &progress,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "\"gzmos-typo\" matches no type in this backup (it contains: configmaps, \
             customresourcedefinitions, {type_dir})"
        )),
        "{err}"
    );

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&copy, &DeleteParams::default()).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds
        .delete(&format!("gizmos.{group}"), &DeleteParams::default())
        .await;
    source.cleanup().await;
    bucket.cleanup().await;
}
