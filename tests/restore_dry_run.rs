//! `dryRun` reports what a restore would do and writes nothing; `validateOnly` verifies every
//! stored object and writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cluster_backup::api::RestorePhase;
use common::objects::{APP_OBJECTS, APP_TYPES, delete_object, get_object, namespace_exists};
use common::restored::{count, message};
use common::{Scene, short_unique_name};
use serde_json::json;

/// dryRun reports what would happen and writes nothing; validateOnly verifies and writes
/// nothing.
#[tokio::test]
async fn dry_run_and_validate_only_write_nothing() {
    let scene = Scene::restores("dry-run").await;
    let client = &scene.client;
    let (shop, path) = scene.backed_up_shop("dshop", &APP_TYPES).await;

    // Into a new namespace: everything would be created.
    let copy = short_unique_name("dcopy");
    let status = scene
        .restore(
            "dry-copy",
            json!({
                "source": scene.by_path(&path),
                "target": { "namespaceMapping": { shop.name.clone(): copy } },
                "options": { "dryRun": true, "createNamespaces": true },
            }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    // The namespace and the app's objects; with kube-controller-manager on the ground the
    // backup also holds the namespace's `default` ServiceAccount.
    let service_accounts = count(&status, "created/serviceaccounts");
    assert!((1..=2).contains(&service_accounts), "{status:?}");
    assert_eq!(
        count(&status, "created"),
        7 + service_accounts,
        "{:?}",
        status.resource_counts
    );
    assert!(
        status
            .restored_resources
            .iter()
            .all(|r| r.action.as_deref() == Some("created (dry run)"))
    );
    assert!(message(&status).contains("Dry run"));
    assert!(
        !namespace_exists(client, &copy).await,
        "dry run created a namespace"
    );

    // In place after deleting one object and changing another: the API server checks each
    // create for real; the deleted one would be created, the rest would be overwritten.
    delete_object(client, APP_OBJECTS[2], &shop.name).await;
    let status = scene
        .restore(
            "dry-in-place",
            json!({
                "source": scene.by_path(&path),
                "target": { "conflictResolution": "overwrite" },
                "options": { "dryRun": true },
            }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created"), 1, "{:?}", status.resource_counts);
    assert_eq!(count(&status, "created/configmaps"), 1);
    assert_eq!(count(&status, "overwritten"), 5 + service_accounts);
    assert!(
        get_object(client, APP_OBJECTS[2], Some(&shop.name))
            .await
            .is_none(),
        "dry run re-created the deleted ConfigMap"
    );

    // validateOnly: verifies every object, creates nothing.
    let (status, phases) = scene
        .restore_with_phases(
            "validate",
            json!({
                "source": scene.by_path(&path),
                "options": { "validateOnly": true },
            }),
        )
        .await;
    assert_eq!(
        phases,
        [
            RestorePhase::Validating,
            RestorePhase::Downloading,
            RestorePhase::Completed
        ]
    );
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created"), 0);
    assert_eq!(count(&status, "failed"), 0);
    assert!(
        message(&status).contains(&format!(
            "{} objects verified",
            status.backup_info.as_ref().unwrap().total_resources
        )),
        "{:?}",
        status.message
    );
    assert!(
        get_object(client, APP_OBJECTS[2], Some(&shop.name))
            .await
            .is_none(),
        "validateOnly re-created the deleted ConfigMap"
    );
}
