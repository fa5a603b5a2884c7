//! A bucket is untrusted: a restore from a crafted one (manifest and objects written directly,
//! with correct checksums) never widens what the Restore asked for. Cluster-scoped objects
//! need their type named in `resourceTypes`, `kube-*` namespaces need naming in the target,
//! sensitive objects (a binding to cluster-admin, a `system:` ClusterRole, a webhook, an
//! APIService) need `options.includeSensitiveResources`, and names that could change a request
//! path are refused before any request. Everything cluster-scoped the bucket holds has a unique
//! name and is deleted when the test ends, whatever happened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use cluster_backup::api::{RestorePhase, RestoreStatus, RestoredResource};
use cluster_backup::core::layout;
use cluster_backup::core::manifest::{
    BackupRef, ClusterInfo, Manifest, ManifestEntry, OBJECTS_FORMAT_VERSION, RESULT_COMPLETED,
    Sha256Digest, TOOL,
};
use common::objects::{delete_quietly, get_object};
use common::restored::count;
use common::{Scene, TestEnv, short_unique_name};
use serde_json::{Value, json};

const RBAC: &str = "rbac.authorization.k8s.io/v1";
const OPT_IN: &str = "spec.options.includeSensitiveResources: true";

/// What the crafted bucket holds: one ordinary ConfigMap and everything a restore must not
/// take unasked.
struct Crafted {
    path: String,
    /// The backup's own namespace (it does not exist in the cluster).
    source: String,
    binding: String,
    cluster_role: String,
    webhook: String,
    api_service: String,
    secret: String,
    /// Deletes the cluster-scoped objects (and the Secret) when the test ends.
    _cleanup: Cleanup,
}

impl Crafted {
    /// The cluster-scoped objects (apiVersion, kind, plural, name).
    fn cluster_objects(&self) -> [(&str, &str, &str, &str); 4] {
        [
            (
                RBAC,
                "ClusterRoleBinding",
                "clusterrolebindings",
                &self.binding,
            ),
            (RBAC, "ClusterRole", "clusterroles", &self.cluster_role),
            (
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
                &self.webhook,
            ),
            (
                "apiregistration.k8s.io/v1",
                "APIService",
                "apiservices",
                &self.api_service,
            ),
        ]
    }
}

/// Writes the crafted backup into the scene's bucket.
async fn craft(scene: &Scene) -> Crafted {
    let u = short_unique_name("g");
    let source = short_unique_name("gsrc");
    let binding = format!("{u}-admin");
    let cluster_role = format!("system:{u}");
    let webhook = format!("{u}-hook");
    let api_service = format!("v1.{u}.example.com");
    let secret = format!("{u}-token");
    let objects: Vec<(Value, &str, Option<&str>)> = vec![
        (
            json!({ "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": { "name": "app-config", "namespace": source },
                    "data": { "k": "v" } }),
            "configmaps",
            None,
        ),
        (
            json!({ "apiVersion": RBAC, "kind": "ClusterRoleBinding",
                    "metadata": { "name": binding },
                    "roleRef": { "apiGroup": "rbac.authorization.k8s.io",
                                 "kind": "ClusterRole", "name": "cluster-admin" },
                    "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                   "name": format!("mallory-{u}") }] }),
            "clusterrolebindings",
            None,
        ),
        (
            // Harmless if it were ever created: no rules.
            json!({ "apiVersion": RBAC, "kind": "ClusterRole",
                    "metadata": { "name": cluster_role }, "rules": [] }),
            "clusterroles",
            None,
        ),
        (
            // Harmless if it were ever created: no webhooks.
            json!({ "apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": "ValidatingWebhookConfiguration",
                    "metadata": { "name": webhook }, "webhooks": [] }),
            "validatingwebhookconfigurations",
            None,
        ),
        (
            json!({ "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                    "metadata": { "name": api_service },
                    "spec": { "group": format!("{u}.example.com"), "version": "v1",
                              "groupPriorityMinimum": 1000, "versionPriority": 15,
                              "service": { "namespace": "default", "name": "nowhere" } } }),
            "apiservices",
            None,
        ),
        (
            json!({ "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": { "name": secret, "namespace": "kube-system" },
                    "stringData": { "token": "stolen" } }),
            "secrets",
            None,
        ),
        // Names that would change the request path; stored under plain keys.
        (
            json!({ "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": { "name": "../x", "namespace": source } }),
            "configmaps",
            Some("trick-1"),
        ),
        (
            json!({ "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": { "name": "a/b", "namespace": source } }),
            "configmaps",
            Some("trick-2"),
        ),
    ];

    let path = format!("backups/{}/g/2025-01-21T15-30-00Z", scene.namespace());
    let storage = scene.storage();
    storage.ensure_bucket().await.unwrap();
    let mut entries = Vec::new();
    let mut total_bytes = 0;
    for (object, resource, key_name) in objects {
        let bytes = serde_json::to_vec(&object).unwrap();
        let ns = object["metadata"]["namespace"].as_str();
        let name = object["metadata"]["name"].as_str().unwrap();
        let key = layout::relative_object_key(ns, resource, key_name.unwrap_or(name));
        storage
            .put(&format!("{path}/{key}"), Bytes::from(bytes.clone()))
            .await
            .unwrap();
        total_bytes += bytes.len() as u64;
        entries.push(ManifestEntry {
            key,
            api_version: object["apiVersion"].as_str().unwrap().into(),
            kind: object["kind"].as_str().unwrap().into(),
            resource: resource.into(),
            namespace: ns.map(Into::into),
            name: name.to_string(),
            size: bytes.len() as u64,
            sha256: Sha256Digest::of(&bytes),
            location: None,
        });
    }
    let now = chrono::Utc::now();
    let mut namespaces = vec![source.clone(), "kube-system".to_string()];
    namespaces.sort();
    let manifest = Manifest {
        format_version: OBJECTS_FORMAT_VERSION,
        tool: TOOL.into(),
        backup: BackupRef {
            namespace: scene.namespace().to_string(),
            name: "g".into(),
            uid: None,
        },
        spec: cluster_backup::core::manifest::RecordedSpec::new(&json!({})),
        cluster: ClusterInfo {
            server_version: "v1.36.0".into(),
            platform: None,
        },
        backup_path: path.clone(),
        started_at: now,
        completed_at: now,
        result: RESULT_COMPLETED.into(),
        namespaces,
        resource_types: [
            "configmaps",
            "secrets",
            "clusterrolebindings",
            "clusterroles",
            "validatingwebhookconfigurations",
            "apiservices",
        ]
        .map(String::from)
        .to_vec(),
        counts: BTreeMap::new(),
        total_objects: entries.len() as u64,
        total_bytes,
        packed: None,
        objects: entries,
        errors: vec![],
        encryption: None,
    };
    storage
        .put(
            &layout::manifest_key(&path),
            Bytes::from(manifest.to_bytes().unwrap()),
        )
        .await
        .unwrap();

    let cleanup = Cleanup {
        env: scene.env.clone(),
        objects: vec![
            (
                RBAC,
                "ClusterRoleBinding",
                "clusterrolebindings",
                binding.clone(),
            ),
            (RBAC, "ClusterRole", "clusterroles", cluster_role.clone()),
            (
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
                webhook.clone(),
            ),
            (
                "apiregistration.k8s.io/v1",
                "APIService",
                "apiservices",
                api_service.clone(),
            ),
        ],
        secret: secret.clone(),
    };
    Crafted {
        path,
        source,
        binding,
        cluster_role,
        webhook,
        api_service,
        secret,
        _cleanup: cleanup,
    }
}

/// Deletes the crafted cluster-scoped objects and the kube-system Secret when dropped (also
/// when the test panics), on a runtime of its own: the test's may be shutting down.
struct Cleanup {
    env: TestEnv,
    objects: Vec<(&'static str, &'static str, &'static str, String)>,
    secret: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let env = self.env.clone();
        let objects = std::mem::take(&mut self.objects);
        let secret = std::mem::take(&mut self.secret);
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let client = env.client().await;
                for (api_version, kind, plural, name) in &objects {
                    let object = (*api_version, *kind, *plural, name.as_str());
                    delete_quietly(&client, object, None).await;
                }
                let secret = ("v1", "Secret", "secrets", secret.as_str());
                delete_quietly(&client, secret, Some("kube-system")).await;
            });
        })
        .join();
    }
}

/// The status entry of the object named `name` in `list`.
fn entry<'a>(list: &'a [RestoredResource], name: &str) -> &'a RestoredResource {
    list.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {list:#?}"))
}

fn skip_reason<'a>(status: &'a RestoreStatus, name: &str) -> &'a str {
    entry(&status.skipped_resources, name)
        .reason
        .as_deref()
        .unwrap_or_default()
}

/// The two path-trick names are failures naming the rule, never requests.
fn assert_tricks_failed(status: &RestoreStatus) {
    assert_eq!(count(status, "failed"), 2, "{:?}", status.failed_resources);
    for name in ["../x", "a/b"] {
        let error = entry(&status.failed_resources, name)
            .error
            .as_deref()
            .unwrap_or_default();
        assert!(error.contains("must not contain '/'"), "{name}: {error}");
    }
}

/// None of the crafted cluster-scoped objects exists, nor the kube-system Secret.
async fn assert_nothing_widened(scene: &Scene, crafted: &Crafted) {
    for object in crafted.cluster_objects() {
        assert!(
            get_object(&scene.client, object, None).await.is_none(),
            "{object:?} was created"
        );
    }
    let secret = ("v1", "Secret", "secrets", crafted.secret.as_str());
    assert!(
        get_object(&scene.client, secret, Some("kube-system"))
            .await
            .is_none()
    );
}

/// With an empty `resourceTypes` only the ConfigMap is restored; every other object is
/// reported with its reason (dry run and real run alike). Naming the cluster types does not let
/// the sensitive ones through; the opt-in does.
#[tokio::test]
async fn a_crafted_bucket_restores_only_what_was_asked() {
    let scene = Scene::restores("guards").await;
    let crafted = craft(&scene).await;
    let target = scene.new_namespace("gdst").await;
    let mapping = json!({ crafted.source.clone(): target.name });

    for (name, dry_run) in [("dry", true), ("plain", false)] {
        let status = scene
            .restore(
                name,
                json!({ "source": scene.by_path(&crafted.path),
                        "target": { "namespaceMapping": mapping },
                        "options": { "dryRun": dry_run } }),
            )
            .await;
        assert_eq!(
            status.phase,
            Some(RestorePhase::PartiallyFailed),
            "{status:?}"
        );
        assert_eq!(count(&status, "created"), 1, "{:?}", status.resource_counts);
        assert_eq!(count(&status, "created/configmaps"), 1);
        assert_eq!(
            count(&status, "skipped"),
            5,
            "{:?}",
            status.skipped_resources
        );
        for (object, plural) in [
            (&crafted.binding, "clusterrolebindings"),
            (&crafted.cluster_role, "clusterroles"),
            (&crafted.webhook, "validatingwebhookconfigurations"),
            (&crafted.api_service, "apiservices"),
        ] {
            assert_eq!(
                skip_reason(&status, object),
                format!(
                    "cluster-scoped: restored only when spec.target.resourceTypes names its \
                     type ({plural})"
                )
            );
        }
        let secret = entry(&status.skipped_resources, &crafted.secret);
        assert_eq!(secret.namespace.as_deref(), Some("kube-system"));
        assert!(
            skip_reason(&status, &crafted.secret).starts_with("kube-system is a system namespace"),
            "{secret:?}"
        );
        assert_tricks_failed(&status);
        assert_nothing_widened(&scene, &crafted).await;
    }
    let cm = ("v1", "ConfigMap", "configmaps", "app-config");
    assert!(
        get_object(&scene.client, cm, Some(&target.name))
            .await
            .is_some()
    );

    // Named cluster types: still not without the opt-in.
    let named = json!([
        "clusterrolebindings",
        "ClusterRole",
        "validatingwebhookconfigurations",
        "apiservices.apiregistration.k8s.io",
        "cm"
    ]);
    let status = scene
        .restore(
            "named",
            json!({ "source": scene.by_path(&crafted.path),
                    "target": { "namespaceMapping": mapping, "resourceTypes": named } }),
        )
        .await;
    assert_eq!(
        status.phase,
        Some(RestorePhase::PartiallyFailed),
        "{status:?}"
    );
    assert_eq!(count(&status, "created"), 0, "{:?}", status.resource_counts);
    assert_eq!(skip_reason(&status, "app-config"), "already exists");
    for (object, what) in [
        (&crafted.binding, "binds cluster-admin"),
        (&crafted.cluster_role, "RBAC object of the control plane"),
        (&crafted.webhook, "admission webhook or policy"),
        (&crafted.api_service, "APIService"),
    ] {
        let reason = skip_reason(&status, object);
        assert!(
            reason.starts_with(what) && reason.ends_with(OPT_IN),
            "{object}: {reason}"
        );
    }
    assert_tricks_failed(&status);
    assert_nothing_widened(&scene, &crafted).await;

    // The opt-in, for the one harmless sensitive object (a ClusterRole without rules).
    let status = scene
        .restore(
            "opted-in",
            json!({ "source": scene.by_path(&crafted.path),
                    "target": { "namespaceMapping": mapping, "resourceTypes": ["clusterroles"] },
                    "options": { "includeSensitiveResources": true } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created/clusterroles"), 1, "{status:?}");
    let role = (
        RBAC,
        "ClusterRole",
        "clusterroles",
        crafted.cluster_role.as_str(),
    );
    assert!(get_object(&scene.client, role, None).await.is_some());
}

/// The kube-system Secret of the bucket is restored only when the target names kube-system (here
/// as a mapping key, into a fresh namespace: the real kube-system is never written); a single
/// target namespace that takes every namespace of the backup does not name it.
#[tokio::test]
async fn a_system_namespace_restores_only_when_named() {
    let scene = Scene::restores("guards-ns").await;
    let crafted = craft(&scene).await;
    let into = scene.new_namespace("gsys").await;

    let status = scene
        .restore(
            "one-target",
            json!({ "source": scene.by_path(&crafted.path),
                    "target": { "namespaces": [into.name], "resourceTypes": ["secrets"] } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created"), 0, "{:?}", status.resource_counts);
    assert!(
        skip_reason(&status, &crafted.secret).starts_with("kube-system is a system namespace"),
        "{:?}",
        status.skipped_resources
    );
    let secret = ("v1", "Secret", "secrets", crafted.secret.as_str());
    assert!(
        get_object(&scene.client, secret, Some(&into.name))
            .await
            .is_none()
    );

    let status = scene
        .restore(
            "mapped",
            json!({ "source": scene.by_path(&crafted.path),
                    "target": { "namespaceMapping": { "kube-system": into.name },
                                "resourceTypes": ["secrets"] } }),
        )
        .await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_eq!(count(&status, "created/secrets"), 1, "{status:?}");
    let restored = get_object(&scene.client, secret, Some(&into.name))
        .await
        .expect("the Secret is restored into the mapped namespace");
    assert_eq!(restored["data"]["token"], json!("c3RvbGVu"));
    assert_nothing_widened(&scene, &crafted).await;
}
