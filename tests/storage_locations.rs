//! Admin-owned storage (`ClusterStorageLocation`): a Backup and a Restore that name one use its
//! bucket with the keys from the operator's namespace; a namespace it does not allow is
//! refused; its status says whether it is reachable; in multi-tenant mode an inline location
//! cannot use the operator's disk or cloud identity; and whether a requester may `use` one is
//! answered by the real RBAC authorizer through a SubjectAccessReview.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use cluster_backup::api::{
    BackupPhase, ClusterStorageLocation, LocationPhase, REQUESTER_ANNOTATION, RestorePhase,
    StorageLocation,
};
use cluster_backup::controller::{Controllers, Settings, Tenancy};
use cluster_backup::core::requester::{Requester, RunAs};
use cluster_backup::k8s::locations::{Access, may_use, open_storage};
use cluster_backup::storage::{Probe, StorageError};
use common::scene::assert_phase;
use common::stored::{keys, ns_key};
use common::{
    OperatorHandle, RUN_TIMEOUT, Scene, TestClusterObject, TestNamespace, poll_until,
    short_unique_name, start_operator_with, unused_local_endpoint, wait_for,
};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

/// The Secret of every location here, in the test's operator namespace.
const KEYS_SECRET: &str = "s3-keys";

/// A namespace standing in for the operator's, holding the S3 keys as [`KEYS_SECRET`].
async fn operator_namespace(scene: &Scene) -> TestNamespace {
    let ns = scene.new_namespace("op").await;
    scene
        .create(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": KEYS_SECRET, "namespace": ns.name },
            "stringData": {
                "accessKey": scene.env.s3_access_key,
                "secretKey": scene.env.s3_secret_key,
            }
        }))
        .await;
    ns
}

/// A ClusterStorageLocation (unique name) on the local S3 server and the scene's bucket,
/// allowing `allowed`; deleted when the test ends.
async fn cluster_location(scene: &Scene, endpoint: &str, allowed: &[&str]) -> TestClusterObject {
    let mut spec = location_spec(scene, endpoint);
    spec["allowedNamespaces"] = json!(allowed);
    create_location(scene, spec).await
}

fn location_spec(scene: &Scene, endpoint: &str) -> Value {
    json!({
        "provider": "minio",
        "bucket": scene.bucket.name,
        "endpoint": endpoint,
        "region": scene.env.s3_region,
        "credentialsSecret": { "name": KEYS_SECRET },
    })
}

async fn create_location(scene: &Scene, spec: Value) -> TestClusterObject {
    let name = short_unique_name("csl");
    TestClusterObject::create(
        &scene.env,
        &scene.client,
        json!({
            "apiVersion": "backup.cnd.dk/v1", "kind": "ClusterStorageLocation",
            "metadata": { "name": name }, "spec": spec,
        }),
    )
    .await
}

fn settings(
    scene: &Scene,
    op: &TestNamespace,
    controllers: Controllers,
    tenancy: Tenancy,
) -> Settings {
    Settings {
        controllers,
        namespace: Some(scene.namespace().to_string()),
        tenancy,
        operator_namespace: op.name.clone(),
        ..Settings::default()
    }
}

fn start(
    scene: &Scene,
    op: &TestNamespace,
    controllers: Controllers,
    tenancy: Tenancy,
) -> OperatorHandle {
    start_operator_with(&scene.client, settings(scene, op, controllers, tenancy))
}

/// A one-shot Backup of the ConfigMaps in `source` to `location`.
fn backup_to(scene: &Scene, name: &str, source: &str, location: Value) -> Value {
    let mut doc = scene.one_shot(name, source);
    doc["spec"]["storageLocation"] = location;
    doc
}

#[tokio::test]
async fn a_backup_and_a_restore_naming_a_cluster_storage_location_use_its_bucket() {
    let scene = Scene::bare("csl-use").await;
    let op = operator_namespace(&scene).await;
    let location = cluster_location(&scene, &scene.env.s3_endpoint, &[scene.namespace()]).await;
    let _backups = start(&scene, &op, Controllers::Backups, Tenancy::Single);
    let _restores = start(&scene, &op, Controllers::Restores, Tenancy::Single);

    let source = scene.namespace_with_configmap("src", "cfg").await;
    let named = json!({ "name": location.name });
    scene
        .create_backup(&backup_to(&scene, "named", &source.name, named.clone()))
        .await;
    let backup = scene.wait_finished("named").await;
    assert_phase(&backup, BackupPhase::Completed);
    // In the location's bucket, under the Backup's own path; no keys in the namespace.
    let run = scene.verify_run(&backup).await;
    assert_eq!(
        run.keys(),
        keys([ns_key(&source.name, "configmaps", "cfg")])
    );
    assert_eq!(run.manifest.spec.value()["storageLocation"], named);

    let copy = short_unique_name("copy");
    let status = scene
        .restore(
            "from-named",
            json!({
                "source": { "storageLocation": named, "backupPath": run.path },
                "target": { "namespaceMapping": { source.name.clone(): copy } },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    let _copy = scene.adopt_namespace(&copy);
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    let restored: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(scene.client.clone(), &copy);
    assert!(restored.get_opt("cfg").await.unwrap().is_some());
}

#[tokio::test]
async fn a_namespace_the_location_does_not_allow_is_refused() {
    let scene = Scene::bare("csl-ns").await;
    let op = operator_namespace(&scene).await;
    let location = cluster_location(&scene, &scene.env.s3_endpoint, &["somebody-else"]).await;
    let _backups = start(&scene, &op, Controllers::Backups, Tenancy::Single);
    let source = scene.new_namespace("src").await;
    let doc = backup_to(
        &scene,
        "refused",
        &source.name,
        json!({ "name": location.name }),
    );
    scene
        .expect_failed_run(
            &doc,
            &[
                &format!(
                    "ClusterStorageLocation {:?} does not allow namespace {:?}",
                    location.name,
                    scene.namespace()
                ),
                "allowedNamespaces",
            ],
        )
        .await;

    // A name with inline fields beside it is a spec problem, reported before any run.
    let mut both = backup_to(&scene, "both", &source.name, scene.location());
    both["spec"]["storageLocation"]["name"] = json!(location.name);
    scene.create_backup(&both).await;
    let backup = scene.wait_finished("both").await;
    assert_phase(&backup, BackupPhase::Failed);
    let message = common::scene::message(&backup);
    assert!(message.contains("storageLocation: "), "{message}");
    assert!(message.contains("are both set"), "{message}");

    // Neither a name nor provider and bucket: the schema refuses it.
    let mut neither = backup_to(&scene, "neither", &source.name, json!({ "prefix": "x" }));
    neither["metadata"]["namespace"] = json!(scene.namespace());
    let err = common::try_create_json(&scene.client, neither)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("set name"), "{err}");
}

#[tokio::test]
async fn availability_is_checked_and_shown_in_status() {
    let scene = Scene::bare("csl-avail").await;
    let op = operator_namespace(&scene).await;
    let all = ["*"];
    let good = cluster_location(&scene, &scene.env.s3_endpoint, &all).await;
    let down = cluster_location(&scene, &unused_local_endpoint(), &all).await;
    // A CA bundle that is there (and unused by a plain-HTTP endpoint) and one that is not.
    scene
        .create(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "storage-ca", "namespace": op.name },
            "data": { "ca.crt": TEST_CA },
        }))
        .await;
    let mut with_ca = location_spec(&scene, &scene.env.s3_endpoint);
    with_ca["caBundle"] = json!({ "configMap": "storage-ca" });
    let with_ca = create_location(&scene, with_ca).await;
    let mut missing_ca = location_spec(&scene, &scene.env.s3_endpoint);
    missing_ca["caBundle"] = json!({ "configMap": "no-such-ca" });
    let missing_ca = create_location(&scene, missing_ca).await;

    let _checks = start(&scene, &op, Controllers::Locations, Tenancy::Multi);
    let api: Api<ClusterStorageLocation> = Api::all(scene.client.clone());
    let phase_of =
        |location: &ClusterStorageLocation| location.status.as_ref().and_then(|s| s.phase);
    for available in [&good, &with_ca] {
        let checked = wait_for(&api, &available.name, RUN_TIMEOUT, "to be Available", |l| {
            phase_of(l) == Some(LocationPhase::Available)
        })
        .await;
        let status = checked.status.unwrap();
        assert!(status.message.unwrap().contains("is reachable"));
        assert!(status.last_checked.is_some());
        assert_eq!(status.observed_generation, checked.metadata.generation);
        let condition = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Available")
            .unwrap();
        assert_eq!(condition.status, "True");
    }
    for (unavailable, needles) in [
        (
            &down,
            &["cannot reach S3 endpoint", "connection refused"][..],
        ),
        (
            &missing_ca,
            &["CA bundle", "\"no-such-ca\"", "not found"][..],
        ),
    ] {
        let checked = wait_for(
            &api,
            &unavailable.name,
            RUN_TIMEOUT,
            "to be Unavailable",
            |l| phase_of(l) == Some(LocationPhase::Unavailable),
        )
        .await;
        let message = checked.status.unwrap().message.unwrap();
        for needle in needles {
            assert!(message.contains(needle), "{needle}: {message}");
        }
    }
    // The flip to Unavailable is an Event (cluster-scoped objects' Events are in `default`).
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(scene.client.clone(), "default");
    poll_until(
        "a StorageUnavailable Event",
        Duration::from_secs(30),
        || async {
            let found = events
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .any(|e| {
                    e.reason.as_deref() == Some("StorageUnavailable")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                            == Some(down.name.as_str())
                });
            if found {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        },
    )
    .await;

    // A fixed spec is checked again at once (a new generation).
    let patch = json!({ "spec": { "endpoint": scene.env.s3_endpoint } });
    api.patch(
        &down.name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    wait_for(
        &api,
        &down.name,
        RUN_TIMEOUT,
        "to be Available once fixed",
        |l| phase_of(l) == Some(LocationPhase::Available),
    )
    .await;
}

#[tokio::test]
async fn multi_tenant_inline_locations_cannot_use_the_operators_disk_or_identity() {
    let scene = Scene::bare("csl-inline").await;
    let op = operator_namespace(&scene).await;
    let location = cluster_location(&scene, &scene.env.s3_endpoint, &[scene.namespace()]).await;
    let _backups = start(&scene, &op, Controllers::Backups, Tenancy::Multi);
    let source = scene.namespace_with_configmap("src", "cfg").await;

    let dir = std::env::temp_dir().join(short_unique_name("cbo-inline-fs"));
    let filesystem = json!({ "provider": "filesystem", "bucket": dir.display().to_string() });
    scene
        .expect_failed_run(
            &backup_to(&scene, "inline-fs", &source.name, filesystem),
            &["provider filesystem", "ClusterStorageLocation"],
        )
        .await;
    assert!(!dir.exists(), "the operator's disk was touched");

    let ambient = json!({
        "provider": "s3", "bucket": scene.bucket.name,
        "endpoint": scene.env.s3_endpoint, "region": scene.env.s3_region,
    });
    scene
        .expect_failed_run(
            &backup_to(&scene, "inline-ambient", &source.name, ambient),
            &["must bring its own credentials", "ClusterStorageLocation"],
        )
        .await;

    // The requester's own keys inline, and an admin-owned location the requester (the test's
    // administrator, stamped by the policy) may use, both work.
    scene
        .create_backup(&backup_to(
            &scene,
            "own-keys",
            &source.name,
            scene.location(),
        ))
        .await;
    assert_phase(
        &scene.wait_finished("own-keys").await,
        BackupPhase::Completed,
    );
    let named = json!({ "name": location.name });
    scene
        .create_backup(&backup_to(&scene, "named", &source.name, named))
        .await;
    let backup = scene.wait_finished("named").await;
    assert_phase(&backup, BackupPhase::Completed);
    let annotations = backup.annotations();
    assert!(
        annotations.contains_key(REQUESTER_ANNOTATION),
        "{annotations:?}"
    );
}

/// The identity a ServiceAccount's requests carry.
fn service_account(namespace: &str, name: &str) -> Requester {
    Requester {
        username: format!("system:serviceaccount:{namespace}:{name}"),
        uid: String::new(),
        groups: vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".to_string(),
        ],
        extra: Default::default(),
    }
}

#[tokio::test]
async fn the_use_verb_is_granted_by_rbac_and_checked_with_a_subject_access_review() {
    let scene = Scene::bare("csl-sar").await;
    let op = operator_namespace(&scene).await;
    let ns = scene.namespace().to_string();
    let location = cluster_location(&scene, &scene.env.s3_endpoint, &["*"]).await;
    for sa in ["tenant", "stranger"] {
        scene
            .create(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": sa, "namespace": ns}}))
            .await;
    }
    // As an administrator grants it: a ClusterRole with `use` on this location, bound to
    // `tenant` in its own namespace only.
    let role = TestClusterObject::create(
        &scene.env,
        &scene.client,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": format!("use-{}", location.name)},
            "rules": [{"apiGroups": ["backup.cnd.dk"], "resources": ["clusterstoragelocations"],
                "resourceNames": [location.name], "verbs": ["use"]}]}),
    )
    .await;
    scene
        .create(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "use-location", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": role.name},
            "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": ns}]}),
        )
        .await;

    let tenant = service_account(&ns, "tenant");
    let stranger = service_account(&ns, "stranger");
    // The authorizer learns of new bindings from a watch: allowed within moments.
    poll_until(
        "tenant may use the location",
        Duration::from_secs(30),
        || async {
            may_use(&scene.client, &tenant, &location.name, &ns)
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;

    let open_as = |requester: &Requester, namespace: &str| {
        let run_as = RunAs::Requester(requester.clone());
        let client = scene.client.clone();
        let (op, namespace, name) = (
            op.name.clone(),
            namespace.to_string(),
            location.name.clone(),
        );
        async move {
            let access = Access {
                operator: &client,
                requester: &client,
                run_as: &run_as,
                operator_namespace: &op,
            };
            let named = StorageLocation {
                name: Some(name),
                ..StorageLocation::default()
            };
            open_storage(&access, &namespace, &named).await
        }
    };
    let opened = open_as(&tenant, &ns).await.unwrap();
    let probe = opened.storage.probe().await.unwrap();
    assert!(matches!(probe, Probe::Ready | Probe::BucketMissing));

    // Not granted to the stranger, and not granted to the tenant in another namespace.
    for (requester, namespace) in [(&stranger, ns.as_str()), (&tenant, op.name.as_str())] {
        let err = open_as(requester, namespace).await.unwrap_err();
        assert!(matches!(err, StorageError::UseDenied { .. }), "{err}");
        let message = err.to_string();
        for needle in [
            format!(
                "user {:?} may not use ClusterStorageLocation {:?}",
                requester.username, location.name
            ),
            format!("in namespace {namespace:?}"),
            "grant the `use` verb".to_string(),
        ] {
            assert!(message.contains(&needle), "{needle}: {message}");
        }
    }
    // Denied before anything about the location is read: the same answer for one that does
    // not exist.
    let err = may_use(&scene.client, &stranger, "no-such-location", &ns)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::UseDenied { .. }), "{err}");
}

/// A self-signed CA (the same as the unit tests'), only parsed here.
const TEST_CA: &str = include_str!("fixtures/test-ca.pem");

#[tokio::test]
async fn the_sample_applies() {
    let scene = Scene::bare("csl-sample").await;
    let ns = scene.namespace().to_string();
    for mut doc in scene
        .env
        .sample_documents("backup_v1_cluster_storage_location.yaml")
    {
        if doc["metadata"]["namespace"].is_string() {
            doc["metadata"]["namespace"] = json!(ns);
        }
        let kind = doc["kind"].as_str().unwrap().to_string();
        // Server-side dry run: checked by the real schema and admission, nothing persisted
        // (the sample's cluster-scoped names are fixed).
        let resource = common::objects::api_resource_of(&scene.client, &doc).await;
        let object: kube::api::DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        let api: Api<kube::api::DynamicObject> = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(scene.client.clone(), ns, &resource),
            None => Api::all_with(scene.client.clone(), &resource),
        };
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        api.create(&dry_run, &object)
            .await
            .unwrap_or_else(|e| panic!("sample {kind} refused: {e}"));
    }
}

/// The operator's ServiceAccount (what `config/rbac` grants), impersonated.
const OPERATOR: &str = "system:serviceaccount:cluster-backup-system:cluster-backup-operator";
const OPERATOR_NAMESPACE: &str = "cluster-backup-system";

#[tokio::test]
async fn the_shipped_rbac_lets_the_operator_check_locations_and_ask_reviews() {
    let scene = Scene::bare("csl-rbac").await;
    let env = &scene.env;
    let _ = env.kubectl(&["create", "namespace", OPERATOR_NAMESPACE]);
    let (ok, out) = env.kubectl(&["apply", "-k", "config/rbac"]);
    assert!(ok, "kubectl apply -k config/rbac: {out}");
    for (verb, resource, subresource, expected) in [
        ("watch", "clusterstoragelocations.backup.cnd.dk", "", "yes"),
        (
            "patch",
            "clusterstoragelocations.backup.cnd.dk",
            "status",
            "yes",
        ),
        (
            "create",
            "subjectaccessreviews.authorization.k8s.io",
            "",
            "yes",
        ),
        ("update", "clusterstoragelocations.backup.cnd.dk", "", "no"),
    ] {
        let subresource = format!("--subresource={subresource}");
        let args = [
            "auth",
            "can-i",
            verb,
            resource,
            &subresource,
            "--as",
            OPERATOR,
        ];
        let (_, out) = env.kubectl(&args);
        // A warning may follow for cluster-scoped resources.
        let answer = out.lines().next().unwrap_or_default().trim();
        assert_eq!(
            answer, expected,
            "can the operator {verb} {resource}? {out}"
        );
    }

    // Keys in the real operator namespace, under a name of this test's own.
    let secret = short_unique_name("keys");
    scene
        .create(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": secret, "namespace": OPERATOR_NAMESPACE },
            "stringData": { "accessKey": env.s3_access_key, "secretKey": env.s3_secret_key },
        }))
        .await;
    let mut spec = location_spec(&scene, &env.s3_endpoint);
    spec["credentialsSecret"] = json!({ "name": secret });
    spec["allowedNamespaces"] = json!(["*"]);
    let location = create_location(&scene, spec).await;

    let operator = env.client_as(OPERATOR).await;
    let api: Api<ClusterStorageLocation> = Api::all(operator.clone());
    let found = api.get(&location.name).await.unwrap();
    let checked =
        cluster_backup::controller::locations::check(&operator, OPERATOR_NAMESPACE, &found).await;
    assert!(checked.is_ok(), "{checked:?}");
    let status = json!({
        "apiVersion": "backup.cnd.dk/v1", "kind": "ClusterStorageLocation",
        "status": { "phase": "Available", "message": checked.unwrap() },
    });
    api.patch_status(
        &location.name,
        &kube::api::PatchParams::apply(cluster_backup::controller::crds::FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&status),
    )
    .await
    .unwrap();
    // The review is made (and answered): no grant, so a refusal, not an error.
    let stranger = service_account(scene.namespace(), "nobody");
    let err = may_use(&operator, &stranger, &location.name, scene.namespace())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::UseDenied { .. }), "{err}");

    // A namespaceSelector: the operator reads the asking namespace's labels with its own rights.
    let mark = short_unique_name("team");
    let (ok, out) = env.kubectl(&[
        "label",
        "namespace",
        scene.namespace(),
        &format!("backup.cnd.dk/test-store={mark}"),
    ]);
    assert!(ok, "{out}");
    let mut spec = location_spec(&scene, &env.s3_endpoint);
    spec["credentialsSecret"] = json!({ "name": secret });
    spec["namespaceSelector"] = json!({"matchLabels": {"backup.cnd.dk/test-store": mark}});
    let selected = create_location(&scene, spec).await;
    let access = Access {
        operator: &operator,
        requester: &operator,
        run_as: &RunAs::Operator,
        operator_namespace: OPERATOR_NAMESPACE,
    };
    let by_name = cluster_backup::api::StorageLocation {
        name: Some(selected.name.clone()),
        ..Default::default()
    };
    let opened = open_storage(&access, scene.namespace(), &by_name).await;
    assert!(opened.is_ok(), "{:?}", opened.err());
    let other = scene.new_namespace("unlabelled").await;
    let refused = open_storage(&access, &other.name, &by_name).await;
    assert!(
        matches!(refused, Err(StorageError::NamespaceNotAllowed { .. })),
        "{:?}",
        refused.err()
    );

    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(scene.client.clone(), OPERATOR_NAMESPACE);
    let _ = secrets.delete(&secret, &Default::default()).await;
}
