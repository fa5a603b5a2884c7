//! Owner references survive a restore, pointing at the owners' new UIDs: owners restored
//! after their dependents get their references put back at the end, references to owners that
//! exist nowhere are dropped and counted, and a Namespace owned by a later object still comes
//! first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use cluster_backup::api::RestorePhase;
use common::objects::{
    ObjectRef, cluster_role, create_gizmo, create_gizmo_crd, dynamic_api, get_object,
    namespace_exists, owner_ref, uid_of,
};
use common::restored::count;
use common::{Scene, short_unique_name};
use kube::Client;
use serde_json::{Value, json};

/// `metadata.ownerReferences` of an object in `ns` (`[]` when it has none).
async fn owner_refs_of(client: &Client, object: ObjectRef<'_>, ns: &str) -> Value {
    get_object(client, object, Some(ns)).await.unwrap()["metadata"]
        .get("ownerReferences")
        .cloned()
        .unwrap_or(json!([]))
}

/// Owner references survive a restore into another namespace, pointing at the owners there:
/// a ReplicaSet at the restored Deployment, ConfigMaps at the restored ReplicaSet and at a
/// custom resource (all three restored after their dependents: the references are put back at
/// the end), at an owner that is not in the backup but exists in the target; a reference whose
/// owner exists nowhere is dropped and counted. A dry run of the same never fails because of
/// owners.
#[tokio::test]
async fn owner_references_point_at_the_restored_owners() {
    let scene = Scene::restores("owners").await;
    let client = &scene.client;
    let group = create_gizmo_crd(client).await;
    let src = scene.new_namespace("own").await;
    let ns = src.name.as_str();

    // Paused, no replicas: a running controller-manager leaves these objects as they are.
    let template = json!({ "metadata": { "labels": { "app": "web" } },
                           "spec": { "containers": [{ "name": "web", "image": "nginx:1.27" }] } });
    scene
        .create(json!({ "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "web", "namespace": ns },
                "spec": { "replicas": 0, "paused": true,
                          "selector": { "matchLabels": { "app": "web" } },
                          "template": template } }))
        .await;
    const DEPLOY: (&str, &str, &str, &str) = ("apps/v1", "Deployment", "deployments", "web");
    const RS: (&str, &str, &str, &str) = ("apps/v1", "ReplicaSet", "replicasets", "web-5d9c8b");
    let deploy_uid = uid_of(client, DEPLOY, Some(ns)).await;
    scene
        .create(json!({ "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": { "name": "web-5d9c8b", "namespace": ns,
                              // What the Deployment's selector matches, or it releases it.
                              "labels": { "app": "web" },
                              "ownerReferences": [owner_ref("apps/v1", "Deployment", "web",
                                                            &deploy_uid, true)] },
                "spec": { "replicas": 0,
                          "selector": { "matchLabels": { "app": "web" } },
                          "template": template } }))
        .await;
    let rs_uid = uid_of(client, RS, Some(ns)).await;
    create_gizmo(client, &group, ns, "g1").await;
    let gizmo = (
        format!("{group}/v1"),
        "Gizmo".to_string(),
        "gizmos".to_string(),
    );
    let gizmo_obj = (gizmo.0.as_str(), gizmo.1.as_str(), gizmo.2.as_str(), "g1");
    let gizmo_uid = uid_of(client, gizmo_obj, Some(ns)).await;
    // Owners outside the backup (it holds no Secrets): one will exist in the target, one not.
    for name in ["present", "absent"] {
        scene
            .create(
                json!({ "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": { "name": name, "namespace": ns } }),
            )
            .await;
    }
    let secret = |name: &'static str| ("v1", "Secret", "secrets", name);
    let present_uid = uid_of(client, secret("present"), Some(ns)).await;
    let absent_uid = uid_of(client, secret("absent"), Some(ns)).await;
    let owned: [(&str, Vec<Value>); 5] = [
        (
            "by-rs",
            vec![owner_ref("apps/v1", "ReplicaSet", RS.3, &rs_uid, true)],
        ),
        (
            "by-gizmo",
            vec![owner_ref(&gizmo.0, "Gizmo", "g1", &gizmo_uid, false)],
        ),
        (
            "by-present",
            vec![owner_ref("v1", "Secret", "present", &present_uid, false)],
        ),
        (
            "by-absent",
            vec![owner_ref("v1", "Secret", "absent", &absent_uid, false)],
        ),
        (
            "by-both",
            vec![
                owner_ref("v1", "Secret", "absent", &absent_uid, false),
                owner_ref("apps/v1", "ReplicaSet", RS.3, &rs_uid, false),
            ],
        ),
    ];
    for (name, refs) in &owned {
        scene
            .create(json!({ "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": { "name": name, "namespace": ns, "ownerReferences": refs },
                    "data": { "k": "v" } }))
            .await;
    }
    let gizmo_type = format!("gizmos.{group}");
    let path = scene
        .back_up(
            "own",
            &[ns],
            &["deployments", "replicasets", "configmaps", &gizmo_type],
        )
        .await;

    // The dry run into a namespace it would create: owners are never a failure.
    let dry = short_unique_name("owndry");
    let _dry_guard = scene.adopt_namespace(&dry);
    let status = scene
        .restore(
            "owners-dry",
            json!({ "source": scene.by_path(&path),
                    "target": { "namespaceMapping": { ns: dry } },
                    "options": { "dryRun": true, "createNamespaces": true } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0, "{:?}", status.failed_resources);
    assert!(!namespace_exists(client, &dry).await);

    let copy = scene.new_namespace("owncp").await;
    let to = copy.name.as_str();
    scene
        .create(
            json!({ "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": { "name": "present", "namespace": to } }),
        )
        .await;
    let present_target_uid = uid_of(client, secret("present"), Some(to)).await;
    let status = scene
        .restore(
            "owners",
            json!({ "source": scene.by_path(&path),
                    "target": { "namespaceMapping": { ns: to } } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0, "{:?}", status.failed_resources);
    assert_eq!(count(&status, "created/configmaps"), 5, "{status:?}");
    assert_eq!(count(&status, "created/replicasets"), 1, "{status:?}");
    assert_eq!(
        count(&status, "ownerReferencesDropped"),
        2,
        "{:?}",
        status.resource_counts
    );
    let message = status.message.clone().unwrap_or_default();
    assert!(message.contains("2 owner references dropped"), "{message}");
    // by-rs, by-gizmo, by-both (its ReplicaSet) and the ReplicaSet (its Deployment).
    assert_eq!(
        count(&status, "ownerReferencesRestored"),
        4,
        "{:?}",
        status.resource_counts
    );

    let new_deploy_uid = uid_of(client, DEPLOY, Some(to)).await;
    let new_rs_uid = uid_of(client, RS, Some(to)).await;
    let new_gizmo_uid = uid_of(client, gizmo_obj, Some(to)).await;
    assert_ne!(new_deploy_uid, deploy_uid);
    assert_ne!(new_rs_uid, rs_uid);
    let refs_of = |obj| owner_refs_of(client, obj, to);
    assert_eq!(
        refs_of(RS).await,
        json!([owner_ref(
            "apps/v1",
            "Deployment",
            "web",
            &new_deploy_uid,
            true
        )])
    );
    let cm = |name| ("v1", "ConfigMap", "configmaps", name);
    assert_eq!(
        refs_of(cm("by-rs")).await,
        json!([owner_ref("apps/v1", "ReplicaSet", RS.3, &new_rs_uid, true)])
    );
    assert_eq!(
        refs_of(cm("by-gizmo")).await,
        json!([owner_ref(&gizmo.0, "Gizmo", "g1", &new_gizmo_uid, false)])
    );
    assert_eq!(
        refs_of(cm("by-present")).await,
        json!([owner_ref(
            "v1",
            "Secret",
            "present",
            &present_target_uid,
            false
        )])
    );
    assert_eq!(refs_of(cm("by-absent")).await, json!([]));
    assert_eq!(
        refs_of(cm("by-both")).await,
        json!([owner_ref("apps/v1", "ReplicaSet", RS.3, &new_rs_uid, false)])
    );
    // Still there a moment later: nothing points at a UID the garbage collector cannot find.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (name, _) in &owned {
        assert!(
            get_object(client, cm(name), Some(to)).await.is_some(),
            "ConfigMap {to}/{name} was garbage-collected"
        );
    }
}

/// A Namespace owned by an object restored after it (Capsule makes a Tenant the owner of its
/// Namespaces; here a ClusterRole) is restored in its own level, so the objects in it find it,
/// and gets its owner reference back at the end.
#[tokio::test]
async fn a_namespace_owned_by_a_later_object_is_restored_first() {
    let scene = Scene::restores("ns-owner").await;
    let client = &scene.client;
    let tenant = short_unique_name("tenant");
    const CR: &str = "rbac.authorization.k8s.io/v1";
    scene
        .create(cluster_role(&tenant, json!({ "tenant": tenant }), "pods"))
        .await;
    let tenant_obj = (CR, "ClusterRole", "clusterroles", tenant.as_str());
    let old_uid = uid_of(client, tenant_obj, None).await;
    let src = short_unique_name("nsown");
    scene
        .create(json!({ "apiVersion": "v1", "kind": "Namespace",
                "metadata": { "name": src, "labels": { "tenant": tenant },
                              "ownerReferences": [owner_ref(CR, "ClusterRole", &tenant,
                                                            &old_uid, false)] } }))
        .await;
    let _src_guard = scene.adopt_namespace(&src);
    scene
        .create(json!({ "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "settings", "namespace": src,
                              "labels": { "tenant": tenant } },
                "data": { "k": "v" } }))
        .await;
    let path = scene
        .back_up(
            "nsown",
            &[&src],
            &["namespaces", "configmaps", "clusterroles"],
        )
        .await;

    // The tenant is gone (the garbage collector then removes its namespace too); restore both
    // under a new namespace name.
    let roles = dynamic_api(client, tenant_obj, None);
    roles
        .delete(&tenant, &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let copy = short_unique_name("nsowncp");
    let _copy_guard = scene.adopt_namespace(&copy);
    let status = scene
        .restore(
            "nsown",
            json!({ "source": scene.by_path(&path),
                    "target": { "namespaceMapping": { src.as_str(): copy },
                                // Cluster-scoped: restored only when named.
                                "resourceTypes": ["namespaces", "configmaps", "clusterroles"],
                                // Only this test's ClusterRole of the cluster's.
                                "labelSelector": { "matchLabels": { "tenant": tenant } } } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "failed"), 0, "{:?}", status.failed_resources);
    assert_eq!(count(&status, "created/namespaces"), 1, "{status:?}");
    assert_eq!(count(&status, "created/configmaps"), 1, "{status:?}");
    assert_eq!(count(&status, "created/clusterroles"), 1, "{status:?}");
    assert_eq!(count(&status, "ownerReferencesRestored"), 1, "{status:?}");
    assert_eq!(count(&status, "ownerReferencesDropped"), 0, "{status:?}");

    let new_uid = uid_of(client, tenant_obj, None).await;
    assert_ne!(new_uid, old_uid);
    let namespace = get_object(client, ("v1", "Namespace", "namespaces", &copy), None)
        .await
        .unwrap();
    assert_eq!(
        namespace["metadata"]["ownerReferences"],
        json!([owner_ref(CR, "ClusterRole", &tenant, &new_uid, false)])
    );
    assert!(
        get_object(
            client,
            ("v1", "ConfigMap", "configmaps", "settings"),
            Some(&copy)
        )
        .await
        .is_some()
    );
    // Deleting the tenant deletes its restored namespace: the reference is a real one.
    roles
        .delete(&tenant, &kube::api::DeleteParams::default())
        .await
        .unwrap();
}
