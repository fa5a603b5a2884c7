//! Client-side encryption (`storageLocation.encryption`) on the real API server and S3 server:
//! the bucket holds no plaintext of any Secret, restores are exact, keys rotate (an old backup
//! restores after the active key changed), and a wrong or missing key is a clear failure that
//! creates nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use cluster_backup::api::{BackupPhase, RestorePhase};
use cluster_backup::core::layout;
use cluster_backup::storage::sealed;
use common::Scene;
use common::scene::assert_phase;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

const KEY_1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const KEY_2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// The scene's location, encrypting with the keys of Secret `keys`.
fn encrypted(scene: &Scene, keys: &str) -> Value {
    let mut location = scene.location();
    location["encryption"] = json!({ "keySecret": keys });
    location
}

async fn put_keys(scene: &Scene, name: &str, data: Value) {
    let api: Api<Secret> = Api::namespaced(scene.client.clone(), scene.namespace());
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": name, "namespace": scene.namespace() },
        "stringData": data,
    });
    api.patch(
        name,
        &PatchParams::apply("encryption-test").force(),
        &Patch::Apply(&secret),
    )
    .await
    .unwrap();
}

/// Backs up `source` (Secrets and ConfigMaps) to `location` as Backup `name`; the run path.
async fn back_up(scene: &Scene, name: &str, source: &str, location: Value, format: &str) -> String {
    let mut doc = scene.backup_json(name, &[source], &["secrets", "configmaps"]);
    doc["spec"]["storageLocation"] = location;
    doc["spec"]["format"] = json!(format);
    scene.create_backup(&doc).await;
    let backup = scene.wait_finished(name).await;
    assert_phase(&backup, BackupPhase::Completed);
    backup.status.unwrap().backup_path.unwrap()
}

/// A namespace with a Secret and a ConfigMap holding `value`.
async fn source_with(scene: &Scene, value: &str) -> common::TestNamespace {
    let ns = scene.new_namespace("enc").await;
    scene
        .create(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "db", "namespace": ns.name },
            "stringData": { "password": value },
        }))
        .await;
    scene
        .create(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "settings", "namespace": ns.name },
            "data": { "note": value },
        }))
        .await;
    ns
}

/// Every object of the bucket, as stored.
async fn raw_objects(scene: &Scene) -> Vec<(String, Vec<u8>)> {
    let storage = scene.storage();
    let listed: Vec<_> = storage.list("").try_collect().await.unwrap();
    let mut out = Vec::new();
    for object in listed {
        let bytes = storage
            .get_bounded_raw(&object.key, u64::MAX)
            .await
            .unwrap();
        out.push((object.key, bytes.to_vec()));
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// `cluster-backup backups list` of the scene's bucket, with `--encryption-key key_file`.
fn backups_list(scene: &Scene, key_file: Option<&std::path::Path>) -> std::process::Output {
    common::assert_loopback(&scene.env.s3_endpoint);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cluster-backup"));
    command
        .args(["backups", "list", "--provider", "minio", "--bucket"])
        .arg(&scene.bucket.name)
        .args(["--endpoint", &scene.env.s3_endpoint])
        .args(["--region", &scene.env.s3_region])
        .env("AWS_ACCESS_KEY_ID", &scene.env.s3_access_key)
        .env("AWS_SECRET_ACCESS_KEY", &scene.env.s3_secret_key);
    if let Some(file) = key_file {
        command.arg("--encryption-key").arg(file);
    }
    command.output().unwrap()
}

/// Restores `path` of `source` into a new namespace; its status and the namespace's name.
async fn restore_copy(
    scene: &Scene,
    name: &str,
    location: Value,
    path: &str,
    source: &str,
) -> (cluster_backup::api::RestoreStatus, String) {
    let copy = common::short_unique_name("enc-copy");
    let status = scene
        .restore(
            name,
            json!({
                "source": { "storageLocation": location, "backupPath": path },
                "target": { "namespaceMapping": { source: copy } },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    (status, copy)
}

#[tokio::test]
async fn an_encrypted_bucket_holds_no_plaintext_and_restores_exactly() {
    let scene = Scene::restores("enc-roundtrip").await;
    put_keys(&scene, "backup-keys", json!({ "k1.key": KEY_1 })).await;
    let value = common::unique_name("s3cr3t-value");
    let source = source_with(&scene, &value).await;

    let objects_run = back_up(
        &scene,
        "enc-objects",
        &source.name,
        encrypted(&scene, "backup-keys"),
        "objects",
    )
    .await;
    let packed_run = back_up(
        &scene,
        "enc-packed",
        &source.name,
        encrypted(&scene, "backup-keys"),
        "packed",
    )
    .await;

    // No plaintext of the Secret (as written, or base64 as the API stores it), the ConfigMap or
    // even the object names in any stored object; everything but packs is sealed whole.
    let encoded = base64::engine::general_purpose::STANDARD.encode(&value);
    let stored = raw_objects(&scene).await;
    assert!(
        stored.len() >= 6,
        "{:?}",
        stored.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    for (key, bytes) in &stored {
        for needle in [value.as_str(), encoded.as_str(), "settings"] {
            assert!(
                !contains(bytes, needle),
                "{key} holds {needle:?} in plaintext"
            );
        }
        if !key.contains("/data/packs/") {
            assert!(sealed::is_sealed(bytes), "{key} is not sealed");
            assert_eq!(sealed::key_id_of(bytes).unwrap(), "k1", "{key}");
        }
    }

    // The CLI reads the bucket from a laptop with the key file; without it, it says why not.
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("k1.key");
    std::fs::write(&key_file, KEY_1).unwrap();
    let with_key = backups_list(&scene, Some(&key_file));
    assert!(with_key.status.success(), "{with_key:?}");
    let listed = String::from_utf8_lossy(&with_key.stdout);
    for run in [&objects_run, &packed_run] {
        assert!(listed.contains(run.as_str()), "{listed}");
    }
    assert!(!listed.contains("Not restorable"), "{listed}");
    let without = backups_list(&scene, None);
    let listed = String::from_utf8_lossy(&without.stdout);
    assert!(listed.contains("Not restorable"), "{listed}");
    assert!(listed.contains("encrypted with key \"k1\""), "{listed}");

    for (run, restore) in [(&objects_run, "from-objects"), (&packed_run, "from-packed")] {
        let (status, copy) = restore_copy(
            &scene,
            restore,
            encrypted(&scene, "backup-keys"),
            run,
            &source.name,
        )
        .await;
        let _guard = scene.adopt_namespace(&copy);
        assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
        let secret = Api::<Secret>::namespaced(scene.client.clone(), &copy)
            .get("db")
            .await
            .unwrap();
        assert_eq!(
            secret.data.unwrap()["password"].0,
            value.as_bytes(),
            "{restore}"
        );
        let map = Api::<ConfigMap>::namespaced(scene.client.clone(), &copy)
            .get("settings")
            .await
            .unwrap();
        assert_eq!(map.data.unwrap()["note"], value, "{restore}");
    }
}

#[tokio::test]
async fn keys_rotate_and_a_wrong_or_missing_key_fails_clearly() {
    let scene = Scene::restores("enc-rotate").await;
    put_keys(&scene, "backup-keys", json!({ "k1.key": KEY_1 })).await;
    let source = source_with(&scene, "rotate-me").await;
    let old_run = back_up(
        &scene,
        "before",
        &source.name,
        encrypted(&scene, "backup-keys"),
        "packed",
    )
    .await;

    // Rotate: a second key becomes active; new runs use it, the old run still restores.
    put_keys(
        &scene,
        "backup-keys",
        json!({ "k1.key": KEY_1, "k2.key": KEY_2, "active": "k2" }),
    )
    .await;
    let new_run = back_up(
        &scene,
        "after",
        &source.name,
        encrypted(&scene, "backup-keys"),
        "packed",
    )
    .await;
    let manifest = |run: &str| layout::manifest_key(run);
    let storage = scene.storage();
    for (run, key_id) in [(&old_run, "k1"), (&new_run, "k2")] {
        let bytes = storage
            .get_bounded_raw(&manifest(run), u64::MAX)
            .await
            .unwrap();
        assert_eq!(sealed::key_id_of(&bytes).unwrap(), key_id);
    }
    let (status, copy) = restore_copy(
        &scene,
        "old-after-rotation",
        encrypted(&scene, "backup-keys"),
        &old_run,
        &source.name,
    )
    .await;
    let _guard = scene.adopt_namespace(&copy);
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");

    // A key of the same id with other bytes, a key Secret without the key, and no encryption
    // at all: each fails, names the key, and creates nothing.
    put_keys(&scene, "wrong-keys", json!({ "k1.key": KEY_2 })).await;
    put_keys(&scene, "only-k2", json!({ "k2.key": KEY_2 })).await;
    for (restore, location, needles) in [
        (
            "wrong-key",
            encrypted(&scene, "wrong-keys"),
            vec!["cannot be decrypted with key \"k1\"", "wrong-keys"],
        ),
        (
            "missing-key",
            encrypted(&scene, "only-k2"),
            vec!["encrypted with key \"k1\"", "does not hold"],
        ),
        (
            "no-encryption",
            scene.location(),
            vec!["encrypted with key \"k1\"", "encryption.keySecret"],
        ),
    ] {
        let (status, copy) = restore_copy(&scene, restore, location, &old_run, &source.name).await;
        assert_eq!(
            status.phase,
            Some(RestorePhase::Failed),
            "{restore}: {status:?}"
        );
        let message = status.message.clone().unwrap_or_default();
        for needle in needles {
            assert!(message.contains(needle), "{restore}: {message}");
        }
        assert!(!message.contains(KEY_1) && !message.contains(KEY_2));
        let created = Api::<Secret>::namespaced(scene.client.clone(), &copy)
            .get_opt("db")
            .await
            .unwrap();
        assert!(created.is_none(), "{restore} created the Secret");
    }
}

/// `encryption.scope: Secrets`: only Secret objects are sealed; the manifest, indexes and other
/// objects stay readable with plain tools. Restores through a `Secrets` location are exact; a
/// location scoped `All` refuses the plain manifest; a Secret replaced by plain bytes is refused
/// while the rest restores.
#[tokio::test]
async fn only_secrets_are_encrypted_with_scope_secrets() {
    let scene = Scene::restores("enc-secrets").await;
    put_keys(&scene, "backup-keys", json!({ "k1.key": KEY_1 })).await;
    let value = common::unique_name("only-secret");
    let source = source_with(&scene, &value).await;
    let secrets_only = |scene: &Scene| {
        let mut location = encrypted(scene, "backup-keys");
        location["encryption"]["scope"] = json!("Secrets");
        location
    };
    let objects_run = back_up(
        &scene,
        "secrets-objects",
        &source.name,
        secrets_only(&scene),
        "objects",
    )
    .await;
    let packed_run = back_up(
        &scene,
        "secrets-packed",
        &source.name,
        secrets_only(&scene),
        "packed",
    )
    .await;

    // The Secret's value is nowhere in plaintext or base64; the ConfigMap of the objects run
    // and both manifests are plain, and the manifests say how the run was encrypted.
    let encoded = base64::engine::general_purpose::STANDARD.encode(&value);
    let stored = raw_objects(&scene).await;
    let mut secret_key = None;
    for (key, bytes) in &stored {
        assert!(!contains(bytes, &encoded), "{key} holds the Secret's value");
        if key.contains("/secrets/") {
            assert!(sealed::is_sealed(bytes), "{key} is not sealed");
            assert!(!contains(bytes, &value), "{key}");
            if key.starts_with(&objects_run) {
                secret_key = Some(key.clone());
            }
        }
        if key.starts_with(&objects_run) && key.contains("/configmaps/") {
            assert!(!sealed::is_sealed(bytes), "{key} is sealed");
            assert!(contains(bytes, &value), "{key}");
        }
    }
    for run in [&objects_run, &packed_run] {
        let bytes = scene
            .storage()
            .get_bounded_raw(&layout::manifest_key(run), u64::MAX)
            .await
            .unwrap();
        let manifest: Value = serde_json::from_slice(&bytes).expect("a plain manifest");
        assert_eq!(
            manifest["encryption"],
            json!({ "keyId": "k1", "scope": "Secrets" }),
            "{run}"
        );
    }

    for (run, restore) in [(&objects_run, "from-objects"), (&packed_run, "from-packed")] {
        let (status, copy) =
            restore_copy(&scene, restore, secrets_only(&scene), run, &source.name).await;
        let _guard = scene.adopt_namespace(&copy);
        assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
        let secret = Api::<Secret>::namespaced(scene.client.clone(), &copy)
            .get("db")
            .await
            .unwrap();
        assert_eq!(secret.data.unwrap()["password"].0, value.as_bytes());
    }

    // A location that encrypts everything refuses the plain manifest, and says which scope.
    let (status, _copy) = restore_copy(
        &scene,
        "scope-all",
        encrypted(&scene, "backup-keys"),
        &objects_run,
        &source.name,
    )
    .await;
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("is not encrypted") && message.contains("scope Secrets"),
        "{message}"
    );

    // A Secret swapped for plain bytes (even the right ones) is refused; the rest restores.
    let secret_key = secret_key.expect("the objects run stored the Secret");
    let storage = scene.storage();
    let plain = storage
        .with_keyring(std::sync::Arc::new(
            sealed::Keyring::from_secret_data(
                "test",
                &[("k1.key".to_string(), KEY_1.as_bytes().to_vec())].into(),
            )
            .unwrap(),
        ))
        .get_bounded(&secret_key, u64::MAX)
        .await
        .unwrap();
    storage.put_raw(&secret_key, plain).await.unwrap();
    let (status, copy) = restore_copy(
        &scene,
        "swapped",
        secrets_only(&scene),
        &objects_run,
        &source.name,
    )
    .await;
    let _guard = scene.adopt_namespace(&copy);
    assert_eq!(
        status.phase,
        Some(RestorePhase::PartiallyFailed),
        "{status:?}"
    );
    let failed = &status.failed_resources[0];
    assert_eq!(failed.kind, "Secret");
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("is a Secret that is not encrypted"),
        "{error}"
    );
    let api = Api::<Secret>::namespaced(scene.client.clone(), &copy);
    assert!(api.get_opt("db").await.unwrap().is_none());
    let map = Api::<ConfigMap>::namespaced(scene.client.clone(), &copy)
        .get("settings")
        .await
        .unwrap();
    assert_eq!(map.data.unwrap()["note"], value);
}
