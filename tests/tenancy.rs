//! Run as the requester: a Backup or Restore never does more than the identity that asked for
//! it could do itself. The tenant is a ServiceAccount with Kubernetes' own `admin` role on the
//! scene's namespace ("team-a") and nothing else, acting with its own token; the operator runs
//! in its default multi-tenant mode and impersonates whoever the API server stamped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cluster_backup::api::{BackupPhase, RestorePhase, RunResult};
use common::objects::{ObjectRef, configmap, delete_quietly, get_object, secret};
use common::scene::Operators;
use common::stored::ns_key;
use common::{Scene, TestClusterObject, short_unique_name};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::DeleteParams;
use serde_json::{Value, json};

const OPERATOR: &str = "system:serviceaccount:cluster-backup-system:cluster-backup-operator";

fn backup(scene: &Scene, name: &str, source: Value) -> Value {
    json!({"apiVersion": "backup.cnd.dk/v1", "kind": "Backup",
        "metadata": {"name": name, "namespace": scene.namespace()},
        "spec": {"source": source, "storageLocation": scene.location()}})
}

/// What `get_object` and `delete_quietly` take for `object` of type `plural`.
fn reference<'a>(plural: &'a str, object: &'a Value) -> (ObjectRef<'a>, Option<&'a str>) {
    let field = |name: &str| object[name].as_str().unwrap();
    let reference = (
        field("apiVersion"),
        field("kind"),
        plural,
        object["metadata"]["name"].as_str().unwrap(),
    );
    (reference, object["metadata"]["namespace"].as_str())
}

fn restore(scene: &Scene, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "backup.cnd.dk/v1", "kind": "Restore",
        "metadata": {"name": name, "namespace": scene.namespace()}, "spec": spec})
}

/// As installed: the operators run as the shipped ServiceAccount with its least-privilege RBAC
/// (`config/rbac`), impersonating the tenant.
#[tokio::test]
async fn a_namespace_admin_backs_up_and_restores_its_own_namespace() {
    let scene = Scene::builder("tenant-own")
        .operators(Operators::None)
        .start()
        .await;
    let _ = scene
        .env
        .kubectl(&["create", "namespace", "cluster-backup-system"]);
    let (ok, out) = scene.env.kubectl(&["apply", "-k", "config/rbac"]);
    assert!(ok, "kubectl apply -k config/rbac: {out}");
    let operator = scene.env.client_as(OPERATOR).await;
    let _backups = scene.start_backup_operator_as(&operator);
    let _restores = scene.start_restore_operator_as(&operator);
    let alice = scene.namespace_admin("alice").await;
    let ns = scene.namespace().to_string();
    scene.create(configmap(&ns, "settings", json!({}))).await;
    scene.create(secret(&ns, "password", json!({}))).await;

    let source = json!({"namespaces": [ns], "resourceTypes": ["configmaps", "secrets"]});
    alice.create(backup(&scene, "own", source)).await;
    let done = scene.wait_finished("own").await;
    let status = done.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(BackupPhase::Completed), "{status:#?}");
    let run = status.last_run.as_ref().unwrap();
    assert_eq!(run.requester.as_deref(), Some(alice.username.as_str()));
    let stored = scene.verify_run(&done).await;
    for key in [
        ns_key(&ns, "configmaps", "settings"),
        ns_key(&ns, "secrets", "password"),
    ] {
        assert!(stored.keys().contains(&key), "{key} in {:?}", stored.keys());
    }

    // Lost, and brought back by the tenant.
    let configmaps: Api<ConfigMap> = Api::namespaced(scene.client.clone(), &ns);
    configmaps
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    let path = status.backup_path.clone().unwrap();
    let spec = json!({"source": scene.by_path(&path),
        "target": {"namespaces": [ns], "resourceTypes": ["configmaps"]}});
    alice.create(restore(&scene, "back", spec)).await;
    let restored = scene.wait_restore("back").await;
    assert_eq!(
        restored.phase,
        Some(RestorePhase::Completed),
        "{restored:#?}"
    );
    assert_eq!(restored.requester.as_deref(), Some(alice.username.as_str()));
    assert!(configmaps.get_opt("settings").await.unwrap().is_some());
}

#[tokio::test]
async fn a_tenant_backup_holds_nothing_the_tenant_could_not_list() {
    let scene = Scene::backups("tenant-reach").await;
    let alice = scene.namespace_admin("alice").await;
    let ns = scene.namespace().to_string();
    scene.create(configmap(&ns, "mine", json!({}))).await;
    let team_b = scene.namespace_with_configmap("tb", "theirs").await;

    // "*": the tenant may not list namespaces, so it covers none, and says why.
    let everything = json!({"namespaces": ["*"], "resourceTypes": ["configmaps", "secrets"]});
    alice.create(backup(&scene, "everything", everything)).await;
    // Another team's namespace: refused, by name.
    let theirs = json!({"namespaces": [team_b.name], "resourceTypes": ["configmaps"]});
    alice.create(backup(&scene, "theirs", theirs)).await;
    // Cluster-scoped types: refused, by type; the tenant's own namespace is still backed up.
    let cluster = json!({"namespaces": [ns], "resourceTypes": ["configmaps", "clusterroles"],
        "includeClusterResources": true});
    alice.create(backup(&scene, "cluster", cluster)).await;

    let expectations: [(&str, &[&str]); 3] = [
        (
            "everything",
            &["namespaces", "cannot list namespaces", "forbidden"],
        ),
        (
            "theirs",
            &[team_b.name.as_str(), "cannot read namespace", "forbidden"],
        ),
        ("cluster", &["clusterroles", "forbidden"]),
    ];
    for (name, needles) in expectations {
        let done = scene.wait_finished(name).await;
        let status = done.status.as_ref().unwrap();
        let run = status.last_run.as_ref().unwrap();
        assert_eq!(
            run.result,
            Some(RunResult::PartiallyFailed),
            "{name}: {status:#?}"
        );
        assert_eq!(run.requester.as_deref(), Some(alice.username.as_str()));
        let errors = run.errors.join("\n");
        for needle in needles {
            assert!(errors.contains(needle), "{name}: {needle:?} in {errors}");
        }
        assert!(errors.contains(&alice.username), "{name}: {errors}");
        let stored = scene.verify_run(&done).await;
        let outside: Vec<_> = stored
            .keys()
            .into_iter()
            .filter(|key| !key.starts_with(&format!("namespaces/{ns}/")))
            .collect();
        assert!(outside.is_empty(), "{name} stored {outside:?}");
        if name == "cluster" {
            assert!(stored.keys().contains(&ns_key(&ns, "configmaps", "mine")));
        }
    }

    // The same "*" Backup written by the administrator covers every namespace.
    let everything = json!({"namespaces": ["*"], "resourceTypes": ["configmaps"]});
    scene
        .create_backup(&backup(&scene, "admin-everything", everything))
        .await;
    let done = scene.wait_finished("admin-everything").await;
    let stored = scene.verify_run(&done).await;
    assert!(
        stored
            .keys()
            .contains(&ns_key(&team_b.name, "configmaps", "theirs"))
    );
}

/// A bucket holding what a tenant must never get from a restore — a ClusterRoleBinding to
/// cluster-admin, a Secret in kube-system, an admission webhook, a RoleBinding to
/// cluster-admin in the tenant's own namespace — next to a harmless ConfigMap. The backup is
/// made by the administrator (the bytes are real; who put them in the bucket does not
/// matter), the objects deleted, and the tenant restores it naming every one of them
/// explicitly: only the ConfigMap is created; each of the others fails with the API server's
/// reason.
#[tokio::test]
async fn a_tenant_restore_creates_nothing_the_tenant_could_not_create() {
    let scene = Scene::builder("tenant-restore")
        .operators(Operators::BackupAndRestore)
        .start()
        .await;
    let alice = scene.namespace_admin("alice").await;
    let ns = scene.namespace().to_string();
    let mark = short_unique_name("crafted");
    let labels = json!({"crafted": mark});
    let rbac = "rbac.authorization.k8s.io";
    let crafted = [
        ("configmaps", configmap(&ns, "harmless", labels.clone())),
        ("secrets", secret("kube-system", &mark, labels.clone())),
        (
            "clusterrolebindings",
            json!({"apiVersion": format!("{rbac}/v1"), "kind": "ClusterRoleBinding",
            "metadata": {"name": mark, "labels": labels},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": ns}]}),
        ),
        (
            "rolebindings",
            json!({"apiVersion": format!("{rbac}/v1"), "kind": "RoleBinding",
            "metadata": {"name": mark, "namespace": ns, "labels": labels},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": ns}]}),
        ),
        // Matches nothing (a group nobody serves), so it is harmless while it exists.
        (
            "validatingwebhookconfigurations",
            json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": mark, "labels": labels},
            "webhooks": [{"name": "crafted.example.invalid", "sideEffects": "None",
                "admissionReviewVersions": ["v1"], "failurePolicy": "Ignore",
                "clientConfig": {"url": "https://127.0.0.1:1/crafted"},
                "rules": [{"apiGroups": ["example.invalid"], "apiVersions": ["*"],
                    "operations": ["CREATE"], "resources": ["nothing"]}]}]}),
        ),
    ];
    scene
        .create_all(crafted.iter().map(|(_, object)| object.clone()))
        .await;
    let types = [
        "configmaps",
        "secrets",
        "rolebindings",
        "clusterrolebindings",
        "validatingwebhookconfigurations",
    ];
    let source = json!({"namespaces": [ns, "kube-system"], "resourceTypes": types,
        "includeClusterResources": true,
        "labelSelector": {"matchLabels": {"crafted": mark}}});
    scene
        .create_backup(&backup(&scene, "crafted", source))
        .await;
    let done = scene.wait_finished("crafted").await;
    let stored = scene.verify_run(&done).await;
    assert_eq!(stored.keys().len(), crafted.len(), "{:?}", stored.keys());
    for (plural, object) in &crafted {
        let (reference, ns) = reference(plural, object);
        delete_quietly(&scene.client, reference, ns).await;
    }

    let path = done.status.unwrap().backup_path.unwrap();
    let spec = json!({"source": scene.by_path(&path),
        "target": {"namespaces": [ns, "kube-system"], "resourceTypes": types},
        "options": {"includeSensitiveResources": true}});
    alice.create(restore(&scene, "crafted", spec)).await;
    let status = scene.wait_restore("crafted").await;
    assert_eq!(
        status.phase,
        Some(RestorePhase::PartiallyFailed),
        "{status:#?}"
    );
    assert_eq!(status.requester.as_deref(), Some(alice.username.as_str()));
    let created: Vec<_> = status
        .restored_resources
        .iter()
        .filter(|r| r.action.as_deref() == Some("created"))
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(created, ["harmless"], "{status:#?}");
    let failed: Vec<_> = status
        .failed_resources
        .iter()
        .map(|r| (r.kind.as_str(), r.error.clone().unwrap_or_default()))
        .collect();
    for kind in [
        "Secret",
        "ClusterRoleBinding",
        "RoleBinding",
        "ValidatingWebhookConfiguration",
    ] {
        let (_, error) = failed
            .iter()
            .find(|(k, _)| *k == kind)
            .unwrap_or_else(|| panic!("{kind} not failed: {failed:?}"));
        assert!(error.contains("forbidden"), "{kind}: {error}");
    }
    for (plural, object) in &crafted[1..] {
        let (reference, ns) = reference(plural, object);
        assert!(
            get_object(&scene.client, reference, ns).await.is_none(),
            "{object} exists"
        );
    }
}

/// Another team's ClusterStorageLocation is refused, with what to grant: first the `use` verb
/// (asked of the API server as the tenant), then, once granted, the location's own list of
/// namespaces.
#[tokio::test]
async fn another_teams_storage_location_is_refused_with_what_to_grant() {
    let scene = Scene::backups("tenant-store").await;
    let alice = scene.namespace_admin("alice").await;
    let ns = scene.namespace().to_string();
    let team_b = scene.new_namespace("tb").await;
    let location = TestClusterObject::create(
        &scene.env,
        &scene.client,
        json!({"apiVersion": "backup.cnd.dk/v1", "kind": "ClusterStorageLocation",
            "metadata": {"name": short_unique_name("team-b-store")},
            "spec": {"provider": "minio", "bucket": scene.bucket.name,
                "endpoint": scene.env.s3_endpoint, "credentialsSecret": {"name": "keys"},
                "allowedNamespaces": [team_b.name]}}),
    )
    .await;
    let doc = |name: &str| {
        json!({"apiVersion": "backup.cnd.dk/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"source": {"namespaces": [ns], "resourceTypes": ["configmaps"]},
                "storageLocation": {"name": location.name}}})
    };
    alice.create(doc("not-granted")).await;
    let refused = failure_of(&scene, "not-granted").await;
    for needle in [
        alice.username.as_str(),
        "may not use ClusterStorageLocation",
        location.name.as_str(),
        "use",
    ] {
        assert!(refused.contains(needle), "{needle:?} in {refused}");
    }

    // Granted `use` in team-a, it is still team-b's location only.
    let _grant = grant_use(&scene, &location.name, "alice").await;
    alice.create(doc("granted")).await;
    let refused = failure_of(&scene, "granted").await;
    assert!(refused.contains("does not allow namespace"), "{refused}");
    assert!(refused.contains(&ns), "{refused}");
}

/// Grants ServiceAccount `account` of the scene's namespace the `use` verb on ClusterStorageLocation
/// `location` there; the ClusterRole goes when the returned object drops.
async fn grant_use(scene: &Scene, location: &str, account: &str) -> TestClusterObject {
    let rbac = "rbac.authorization.k8s.io";
    let ns = scene.namespace();
    let role = TestClusterObject::create(
        &scene.env,
        &scene.client,
        json!({"apiVersion": format!("{rbac}/v1"), "kind": "ClusterRole",
            "metadata": {"name": short_unique_name("use-store")},
            "rules": [{"apiGroups": ["backup.cnd.dk"], "resources": ["clusterstoragelocations"],
                "resourceNames": [location], "verbs": ["use"]}]}),
    )
    .await;
    scene
        .create(
            json!({"apiVersion": format!("{rbac}/v1"), "kind": "RoleBinding",
            "metadata": {"name": format!("use-{}", role.name), "namespace": ns},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": role.name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}]}),
        )
        .await;
    role
}

/// The message of a one-shot Backup's run that must fail.
async fn failure_of(scene: &Scene, name: &str) -> String {
    let done = scene.wait_finished(name).await;
    let status = done.status.unwrap();
    assert_eq!(status.phase, Some(BackupPhase::Failed), "{status:#?}");
    status.last_run.unwrap().message.unwrap_or_default()
}

/// A ClusterStorageLocation shared by every namespace holds every team's runs: a tenant may use
/// it, yet may not restore another team's run from it by naming its path.
#[tokio::test]
async fn a_shared_location_does_not_hand_out_another_teams_runs() {
    let scene = Scene::builder("tenant-shared")
        .operators(Operators::BackupAndRestore)
        .start()
        .await;
    let alice = scene.namespace_admin("alice").await;
    let ns = scene.namespace().to_string();
    let team_b = scene.new_namespace("tb").await;
    scene
        .create(secret(&team_b.name, "their-password", json!({})))
        .await;

    // The administrator's shared location, keys in the operator's namespace.
    let _ = scene
        .env
        .kubectl(&["create", "namespace", "cluster-backup-system"]);
    let keys = short_unique_name("keys");
    scene
        .create(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": keys, "namespace": "cluster-backup-system"},
            "stringData": {"accessKey": scene.env.s3_access_key,
                "secretKey": scene.env.s3_secret_key}}))
        .await;
    let location = TestClusterObject::create(
        &scene.env,
        &scene.client,
        json!({"apiVersion": "backup.cnd.dk/v1", "kind": "ClusterStorageLocation",
            "metadata": {"name": short_unique_name("shared")},
            "spec": {"provider": "minio", "bucket": scene.bucket.name,
                "endpoint": scene.env.s3_endpoint, "region": scene.env.s3_region,
                "credentialsSecret": {"name": keys}, "allowedNamespaces": ["*"]}}),
    )
    .await;
    let _grant = grant_use(&scene, &location.name, "alice").await;

    // Team B's own Backup, in team B's namespace, into the shared location.
    let _team_b_operator = common::start_operator(&scene.client, &team_b.name);
    let theirs = json!({"apiVersion": "backup.cnd.dk/v1", "kind": "Backup",
        "metadata": {"name": "theirs", "namespace": team_b.name},
        "spec": {"source": {"namespaces": [team_b.name], "resourceTypes": ["secrets"]},
            "storageLocation": {"name": location.name}}});
    common::create_json(&scene.client, theirs).await;
    let their_backups: Api<cluster_backup::api::Backup> =
        Api::namespaced(scene.client.clone(), &team_b.name);
    let done = common::wait_for_backup(&their_backups, "theirs", common::RUN_TIMEOUT, |s| {
        s.last_run.is_some() && s.current_run.is_none()
    })
    .await;
    let path = done.status.unwrap().backup_path.unwrap();

    // Alice names that run's path.
    let spec = json!({"source": {"storageLocation": {"name": location.name}, "backupPath": path},
        "target": {"namespaceMapping": {team_b.name.clone(): ns}, "resourceTypes": ["secrets"]}});
    alice.create(restore(&scene, "theirs", spec)).await;
    let status = scene.wait_restore("theirs").await;
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{status:#?}");
    let message = status.message.unwrap_or_default();
    for needle in [
        alice.username.as_str(),
        "may not restore runs of namespace",
        team_b.name.as_str(),
        location.name.as_str(),
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert!(
        get_object(
            &scene.client,
            ("v1", "Secret", "secrets", "their-password"),
            Some(&ns)
        )
        .await
        .is_none()
    );
}

/// An inline location's encryption key Secret is read with the tenant's own rights (a
/// ServiceAccount token, not the admin certificate): the tenant's Secret encrypts its backup,
/// and a key Secret that is not there fails the run, naming it.
#[tokio::test]
async fn a_tenant_encrypts_with_its_own_key_secret() {
    let scene = Scene::backups("tenant-keys").await;
    let alice = scene.namespace_admin("alice").await;
    let ns = scene.namespace().to_string();
    scene.create(configmap(&ns, "mine", json!({}))).await;
    alice
        .create(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "alice-keys", "namespace": ns},
            "stringData": {"alice.key": "a1".repeat(32)}}))
        .await;
    let encrypted = |name: &str, keys: &str| {
        let mut doc = backup(
            &scene,
            name,
            json!({"namespaces": [ns], "resourceTypes": ["configmaps"]}),
        );
        doc["spec"]["storageLocation"]["encryption"] = json!({"keySecret": keys});
        doc
    };
    alice.create(encrypted("sealed", "alice-keys")).await;
    let done = scene.wait_finished("sealed").await;
    let status = done.status.unwrap();
    assert_eq!(status.phase, Some(BackupPhase::Completed), "{status:#?}");
    let path = status.backup_path.unwrap();
    let raw = scene
        .storage()
        .get_bounded_raw(&cluster_backup::core::layout::manifest_key(&path), u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        cluster_backup::storage::sealed::key_id_of(&raw).unwrap(),
        "alice"
    );

    alice.create(encrypted("no-keys", "nobody-keys")).await;
    let refused = failure_of(&scene, "no-keys").await;
    for needle in ["encryption key Secret", "nobody-keys", "not found"] {
        assert!(refused.contains(needle), "{needle:?} in {refused}");
    }
}
