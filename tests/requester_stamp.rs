//! The requester stamp (`config/admission/`, `controller::admission`): the API server records who
//! created or changed a Backup or Restore in `backup.cnd.dk/requester`, and nobody can forge it —
//! proven with a ServiceAccount that authenticates with its own token, as a real user would.
//!
//! The policy is cluster-wide: it is server-side applied (idempotent, so parallel runs of this
//! test agree) and left installed, as removing it could race with another run of this test. The
//! annotation it adds is harmless to the other tests on the ground.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cluster_backup::api::{Backup, BackupPhase, REQUESTER_ANNOTATION, RUN_NOW_ANNOTATION, Restore};
use cluster_backup::controller::report::apply_status;
use cluster_backup::core::requester::Requester;
use common::Scene;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::{Value, json};

const SA: &str = "requester";

/// Who the API server says `client` is.
async fn whoami(client: &Client) -> Requester {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = review.status.and_then(|s| s.user_info).unwrap();
    Requester {
        username: user.username.unwrap_or_default(),
        uid: user.uid.unwrap_or_default(),
        groups: user.groups.unwrap_or_default(),
        extra: user.extra.unwrap_or_default().into_iter().collect(),
    }
}

/// The requester stamped on `object`.
fn stamp<K: Resource>(object: &K) -> Requester {
    let annotations = object.meta().annotations.clone().unwrap_or_default();
    Requester::from_annotations(&annotations)
        .unwrap_or_else(|e| panic!("{e}; annotations: {annotations:?}"))
}

/// A ServiceAccount that may create, change and write the status of Backups and Restores in
/// the scene's namespace, and a client that authenticates with a fresh token of its own.
async fn service_account_client(scene: &Scene) -> Client {
    let ns = scene.namespace();
    scene
        .create(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": SA, "namespace": ns}}))
        .await;
    scene
        .create(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": SA, "namespace": ns},
            "rules": [{"apiGroups": ["backup.cnd.dk"],
                "resources": ["backups", "backups/status", "restores"],
                "verbs": ["create", "get", "update", "patch"]}]}),
        )
        .await;
    scene
        .create(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": SA, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SA},
            "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": ns}]}),
        )
        .await;
    let token = common::tenant::service_account_token(&scene.client, ns, SA).await;
    scene.env.client_with_token(&token).await
}

fn forged(mut doc: Value) -> Value {
    doc["metadata"]["annotations"] = json!({
        REQUESTER_ANNOTATION: r#"{"username":"admin","groups":["system:masters"]}"#
    });
    doc
}

#[tokio::test]
async fn the_api_server_stamps_who_asked_and_nobody_can_forge_it() {
    // The scene installs the CRDs and the policy, and waits until it is enforced.
    let scene = Scene::bare("requester").await;
    let admin = whoami(&scene.client).await;
    let user_client = service_account_client(&scene).await;
    let user = whoami(&user_client).await;
    let ns = scene.namespace();
    assert_eq!(user.username, format!("system:serviceaccount:{ns}:{SA}"));
    let account: ServiceAccount = Api::namespaced(scene.client.clone(), ns)
        .get(SA)
        .await
        .unwrap();
    assert_eq!(Some(&user.uid), account.metadata.uid.as_ref());
    let user_backups: Api<Backup> = Api::namespaced(user_client.clone(), ns);
    let post = PostParams::default();

    // A create is stamped with exactly the identity the API server authenticated.
    let doc = scene.backup_json("plain", &["x"], &["configmaps"]);
    let created = user_backups
        .create(&post, &serde_json::from_value(doc).unwrap())
        .await
        .unwrap();
    assert_eq!(stamp(&created), user);
    for group in [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".to_string(),
    ] {
        assert!(user.groups.contains(&group), "{group} in {:?}", user.groups);
    }

    // A forged stamp on create is overwritten.
    let doc = forged(scene.backup_json("forged", &["x"], &["configmaps"]));
    let created = user_backups
        .create(&post, &serde_json::from_value(doc).unwrap())
        .await
        .unwrap();
    assert_eq!(stamp(&created), user, "forged stamp on create");

    // ... and on update, by merge patch and by forced server-side apply.
    let patched = user_backups
        .patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(forged(json!({}))),
        )
        .await
        .unwrap();
    assert_eq!(stamp(&patched), user, "forged stamp by merge patch");
    let apply = forged(json!({"apiVersion": "backup.cnd.dk/v1", "kind": "Backup",
        "metadata": {"name": "plain"}}));
    let applied = user_backups
        .patch(
            "plain",
            &PatchParams::apply("requester-test").force(),
            &Patch::Apply(apply),
        )
        .await
        .unwrap();
    assert_eq!(stamp(&applied), user, "forged stamp by server-side apply");

    // A change of the spec by another identity stamps that identity.
    let changed = scene
        .backups
        .patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"schedule": "@daily"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        stamp(&changed),
        admin,
        "restamped by the admin's change of the spec"
    );
    assert_ne!(admin.username, user.username);

    // The run-now trigger is a change too: whoever sets it is the requester of that run.
    let triggered = user_backups
        .patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {RUN_NOW_ANNOTATION: "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(stamp(&triggered), user, "restamped by the user's run-now");

    // Any other write keeps the stamp: another identity's label (as an admin or a garbage
    // collector might add), its forged stamp, and a user's forged stamp.
    let someone = scene.env.client_as("someone-else").await;
    scene
        .create(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "someone-else", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SA},
            "subjects": [{"kind": "User", "name": "someone-else"}]}),
        )
        .await;
    let someone_backups: Api<Backup> = Api::namespaced(someone.clone(), ns);
    let labelled = someone_backups
        .patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(forged(
                json!({"metadata": {"labels": {"seen-by": "someone"}}}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(
        stamp(&labelled),
        user,
        "a label and a forged stamp keep the stamp"
    );
    let forged_again = user_backups
        .patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(forged(json!({}))),
        )
        .await
        .unwrap();
    assert_eq!(stamp(&forged_again), user);

    // A status write (a subresource) changes the status and never the stamp, even when it
    // carries a forged one: the policy does not match it and the API server drops metadata
    // sent to `status`.
    let status_write = forged(json!({"status": {"phase": "Failed"}}));
    let written = user_backups
        .patch_status(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(status_write),
        )
        .await
        .unwrap();
    assert_eq!(
        written.status.as_ref().and_then(|s| s.phase),
        Some(BackupPhase::Failed)
    );
    assert_eq!(stamp(&written), user, "status write by the user");
    apply_status(&someone, &written, &json!({"phase": "Completed"}))
        .await
        .unwrap();
    let after: Backup = scene.backups.get("plain").await.unwrap();
    assert_eq!(
        after.status.as_ref().and_then(|s| s.phase),
        Some(BackupPhase::Completed)
    );
    assert_eq!(stamp(&after), user, "status write by someone else");

    // Restores are stamped the same way.
    let user_restores: Api<Restore> = Api::namespaced(user_client, ns);
    let restore = forged(json!({"apiVersion": "backup.cnd.dk/v1", "kind": "Restore",
        "metadata": {"name": "back", "namespace": ns},
        "spec": {"source": {"backupName": "plain"}}}));
    let created = user_restores
        .create(&post, &serde_json::from_value(restore).unwrap())
        .await
        .unwrap();
    assert_eq!(stamp(&created), user, "forged stamp on a Restore");

    // The stamp never hides the schema: an object the CRD schema refuses is still refused with
    // 422 naming the field, not with an error from the policy.
    let invalid = json!({"apiVersion": "backup.cnd.dk/v1", "kind": "Backup",
        "metadata": {"name": "invalid", "namespace": ns},
        "spec": {"source": {"resourceTypes": 5}, "storageLocation": scene.location()}});
    match common::try_create_json(&scene.client, invalid).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains("resourceTypes"),
                "{}",
                status.message
            );
        }
        other => panic!("a schema-invalid Backup must be refused with 422: {other:?}"),
    }
}
