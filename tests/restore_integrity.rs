//! Storage contents are untrusted: an object changed after the backup (sha256 mismatch),
//! unparseable bytes, an impossible size or an odd key are item errors naming the object, and
//! the rest restores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use cluster_backup::api::{RestorePhase, RestoreStatus};
use common::objects::{APP_OBJECTS, APP_TYPES, get_object};
use common::restored::{assert_restored, count, created_apart_from_default_sa, message};
use common::{Scene, TestNamespace, short_unique_name};
use serde_json::json;

/// A stored object changed after the backup is an item error naming it; the rest restores.
#[tokio::test]
async fn corrupted_object_is_reported_and_the_rest_restores() {
    let scene = Scene::restores("corrupt").await;
    let client = &scene.client;
    let (shop, path) = scene.backed_up_shop("kshop", &APP_TYPES).await;

    let storage = scene.storage();
    let manifest = scene.manifest(&path).await;
    let entry = manifest
        .objects
        .iter()
        .find(|e| e.kind.as_ref() == "Secret")
        .expect("the Secret is in the manifest");
    let key = format!("{path}/{}", entry.key);
    let mut bytes = storage.get(&key).await.unwrap().to_vec();
    let text = String::from_utf8(bytes.clone())
        .unwrap()
        .replace("app-secret", "app-secreT");
    bytes = text.into_bytes();
    storage.put(&key, Bytes::from(bytes)).await.unwrap();

    let (copy, status) = restore_into_new_namespace(&scene, "corrupt", &path, &shop.name).await;
    assert_eq!(
        status.phase,
        Some(RestorePhase::PartiallyFailed),
        "{status:?}"
    );
    assert_eq!(count(&status, "failed"), 1);
    assert_eq!(count(&status, "failed/secrets"), 1);
    assert_eq!(
        created_apart_from_default_sa(&status),
        7,
        "{:?}",
        status.resource_counts
    );
    let failed = &status.failed_resources[0];
    assert_eq!(failed.kind, "Secret");
    assert_eq!(failed.name, "app-secret");
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&entry.key) && error.contains("sha256"),
        "{error}"
    );
    assert!(
        message(&status).contains("app-secret"),
        "{:?}",
        status.message
    );
    assert!(
        get_object(client, APP_OBJECTS[3], Some(&copy.name))
            .await
            .is_none()
    );
    assert_restored(client, &shop.name, client, &copy.name, &APP_OBJECTS[..3]).await;
    scene
        .event_reasons("Restore", "corrupt", &["RestorePartiallyFailed"])
        .await;
}

/// Storage contents are untrusted input: a manifest describing unparseable bytes (with a
/// matching checksum), an impossible size, an odd key, an object larger than its entry (not
/// read past the entry's size) and a truncated object give item errors, never a panic, and the
/// rest restores.
#[tokio::test]
async fn untrusted_storage_contents_are_item_errors() {
    use cluster_backup::core::manifest::Sha256Digest;
    let scene = Scene::restores("untrusted").await;
    let (shop, path) = scene.backed_up_shop("ushop", &APP_TYPES).await;

    let storage = scene.storage();
    let manifest_key = format!("{path}/manifest.json");
    let mut manifest = scene.manifest(&path).await;
    for entry in &mut manifest.objects {
        match &*entry.kind {
            "ConfigMap" => {
                let junk = b"{ this is not JSON \xff".to_vec();
                entry.size = junk.len() as u64;
                entry.sha256 = Sha256Digest::of(&junk);
                storage
                    .put(&format!("{path}/{}", entry.key), Bytes::from(junk))
                    .await
                    .unwrap();
            }
            "Secret" => entry.size = 1 << 40,
            "Role" => entry.key = "../../../../etc/passwd%00/..".to_string(),
            "Service" => {
                // 8 MiB more than the entry says: refused while it is read.
                let key = format!("{path}/{}", entry.key);
                let mut larger = storage.get(&key).await.unwrap().to_vec();
                larger.resize(larger.len() + (8 << 20), b' ');
                storage.put(&key, Bytes::from(larger)).await.unwrap();
            }
            "RoleBinding" => {
                let key = format!("{path}/{}", entry.key);
                let whole = storage.get(&key).await.unwrap();
                storage
                    .put(&key, whole.slice(..whole.len() / 2))
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    storage
        .put(&manifest_key, Bytes::from(manifest.to_bytes().unwrap()))
        .await
        .unwrap();

    let (_copy, status) = restore_into_new_namespace(&scene, "untrusted", &path, &shop.name).await;
    assert_eq!(
        status.phase,
        Some(RestorePhase::PartiallyFailed),
        "{status:?}"
    );
    assert_eq!(count(&status, "failed"), 5, "{:?}", status.failed_resources);
    let error_of = |kind: &str| {
        status
            .failed_resources
            .iter()
            .find(|f| f.kind == kind)
            .and_then(|f| f.error.clone())
            .unwrap_or_else(|| panic!("no failure for {kind}: {:?}", status.failed_resources))
    };
    for (kind, reason) in [
        ("ConfigMap", "not valid JSON"),
        ("Secret", "not downloaded"),
        ("Role", "cannot read stored object"),
        ("Service", "not read"),
        ("RoleBinding", "does not match the manifest"),
    ] {
        let error = error_of(kind);
        assert!(error.contains(reason), "{error}");
    }
    // The other two objects and the namespace.
    assert_eq!(
        created_apart_from_default_sa(&status),
        3,
        "{:?}",
        status.resource_counts
    );
}

/// A manifest that is 50 MB of garbage, and one that claims 2 GB of objects it does not have:
/// each fails the restore with a message about the manifest or the object, creating nothing.
#[tokio::test]
async fn a_huge_garbage_manifest_and_false_claims_fail_clearly() {
    let scene = Scene::restores("huge-manifest").await;
    let (shop, path) = scene.backed_up_shop("hshop", &APP_TYPES).await;
    let storage = scene.storage();
    let manifest_key = format!("{path}/manifest.json");
    let original = storage.get(&manifest_key).await.unwrap();

    // 50 MB that is not JSON (it starts like a manifest, then never ends).
    let mut garbage = b"{\"formatVersion\":1,\"objects\":[".to_vec();
    garbage.resize(50 << 20, b'[');
    storage
        .put(&manifest_key, Bytes::from(garbage))
        .await
        .unwrap();
    let (copy, status) = restore_into_new_namespace(&scene, "garbage", &path, &shop.name).await;
    assert_eq!(status.phase, Some(RestorePhase::Failed), "{status:?}");
    let text = message(&status);
    assert!(text.contains("manifest"), "{text}");
    assert!(
        text.len() < 2000,
        "the message quotes the garbage: {} bytes",
        text.len()
    );
    assert!(!scene_has_namespace(&scene, &copy.name).await);

    // Every entry claims 2 GB (and the totals with them): refused before any download.
    let mut manifest: serde_json::Value = serde_json::from_slice(&original).unwrap();
    manifest["totalBytes"] = json!(2u64 << 30 << 5);
    for entry in manifest["objects"].as_array_mut().unwrap() {
        entry["size"] = json!(2u64 << 30);
    }
    storage
        .put(
            &manifest_key,
            Bytes::from(serde_json::to_vec(&manifest).unwrap()),
        )
        .await
        .unwrap();
    let (_copy, status) = restore_into_new_namespace(&scene, "claims", &path, &shop.name).await;
    assert_ne!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert!(
        status.failed_resources.iter().all(|f| f
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("not downloaded")),
        "{:?}",
        status.failed_resources
    );
}

/// Crafted manifests as large as the operator reads (48 MiB by default) and larger, each a
/// clear failure; the operator (a process of its own, as in a cluster) stays within the chart's
/// 256 MiB memory limit throughout: lists of short strings are bounded by count, the recorded
/// spec is kept raw, and what is larger than the limit is not read.
#[tokio::test]
async fn crafted_manifests_leave_the_operator_within_its_memory_limit() {
    use cluster_backup::storage::catalogue::DEFAULT_MAX_MANIFEST_BYTES;
    let scene = Scene::builder("rss")
        .operators(common::scene::Operators::None)
        .start()
        .await;
    let operator = common::process::OperatorProcess::start(
        &scene.env,
        scene.namespace(),
        &[],
        &[],
        "restore-integrity-logs",
        "crafted-manifests",
    );
    let (shop, path) = scene.backed_up_shop("mshop", &APP_TYPES).await;
    let storage = scene.storage();
    let manifest_key = format!("{path}/manifest.json");
    let original: serde_json::Value =
        serde_json::from_slice(&storage.get(&manifest_key).await.unwrap()).unwrap();
    let near_limit = usize::try_from(DEFAULT_MAX_MANIFEST_BYTES).unwrap() - (1 << 20);
    // The original manifest with `field` replaced by `[item,item,…,last]` of about `size` bytes.
    let flooded = |field: &str, item: &str, last: &str, size: usize| {
        let mut doc = original.clone();
        doc[field] = json!("FLOOD");
        let text = serde_json::to_string(&doc).unwrap();
        let mut list = String::with_capacity(size + 1024);
        list.push('[');
        while list.len() < size {
            list.push_str(item);
            list.push(',');
        }
        list.push_str(last);
        list.push(']');
        Bytes::from(text.replacen("\"FLOOD\"", &list, 1))
    };
    let entry = |sha: &str| {
        format!(
            r#"{{"key":"k","apiVersion":"v1","kind":"K","resource":"r","name":"n","size":1,"sha256":"{sha}"}}"#
        )
    };
    let cases = [
        // Entries are the cheapest text per parsed byte; the last one is broken, so all the
        // others are parsed first.
        (
            "entries",
            flooded(
                "objects",
                &entry(&"0".repeat(64)),
                &entry("broken"),
                near_limit,
            ),
            "invalid sha256",
        ),
        (
            "namespaces",
            flooded("namespaces", "\"a\"", "\"a\"", near_limit),
            "more than 100000 items",
        ),
        (
            "oversized",
            flooded("namespaces", "\"a\"", "\"a\"", near_limit + (8 << 20)),
            "bytes; not read",
        ),
    ];
    for (name, bytes, needle) in cases {
        storage.put(&manifest_key, bytes).await.unwrap();
        let (copy, status) = restore_into_new_namespace(&scene, name, &path, &shop.name).await;
        assert_eq!(
            status.phase,
            Some(RestorePhase::Failed),
            "{name}: {status:?}"
        );
        let text = message(&status);
        assert!(text.contains(needle), "{name}: {text}");
        assert!(text.len() < 2000, "{name}: {} bytes of message", text.len());
        assert!(!scene_has_namespace(&scene, &copy.name).await);
    }
    // A spec of millions of numbers is kept as text: the restore reads past it and completes.
    let spec_flood = flooded("spec", "1", "1", near_limit);
    storage.put(&manifest_key, spec_flood).await.unwrap();
    let (copy, status) = restore_into_new_namespace(&scene, "spec", &path, &shop.name).await;
    assert_eq!(status.phase, Some(RestorePhase::Completed), "{status:?}");
    assert_restored(
        &scene.client,
        &shop.name,
        &scene.client,
        &copy.name,
        &APP_OBJECTS,
    )
    .await;

    let peak = operator.peak_rss_mib();
    println!("operator peak RSS after crafted manifests: {peak} MiB");
    assert!(peak < 256, "the operator's peak RSS was {peak} MiB");
}

async fn scene_has_namespace(scene: &Scene, name: &str) -> bool {
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(scene.client.clone());
    api.get_opt(name).await.unwrap().is_some()
}

/// Restores `path` with namespace `from` mapped to a new namespace that the restore creates
/// (deleted when the test ends).
async fn restore_into_new_namespace(
    scene: &Scene,
    name: &str,
    path: &str,
    from: &str,
) -> (TestNamespace, RestoreStatus) {
    let copy = scene.adopt_namespace(&short_unique_name("copy"));
    let status = scene
        .restore(
            name,
            json!({
                "source": scene.by_path(path),
                "target": { "namespaceMapping": { from: copy.name } },
                "options": { "createNamespaces": true },
            }),
        )
        .await;
    (copy, status)
}
