//! `storage` against the real local S3 server of the test ground (each test on a fresh bucket).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster_backup::api::StorageLocation;
use cluster_backup::storage::{Credentials, ErrorCategory, Storage, StorageError};
use futures::TryStreamExt;

/// Display of the error and of every source below it.
fn chain(err: &StorageError) -> String {
    let mut out = err.to_string();
    let mut current = std::error::Error::source(err);
    while let Some(e) = current {
        out.push_str("\n  caused by: ");
        out.push_str(&e.to_string());
        current = e.source();
    }
    out
}

async fn sorted_keys(storage: &Storage, dir: &str) -> Vec<(String, u64)> {
    let mut keys: Vec<(String, u64)> = storage
        .list(dir)
        .map_ok(|o| (o.key, o.size))
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn fresh_bucket_round_trip() {
    let env = common::TestEnv::load();
    let bucket = common::fresh_bucket_name("storage-rt");
    let location = StorageLocation {
        prefix: Some("/clusters/dev/".to_string()),
        ..env.storage_location(&bucket)
    };
    let storage = Storage::new(&location, Some(env.credentials())).unwrap();
    assert_eq!(
        storage.describe(),
        format!("s3://{bucket}/clusters/dev at {}", env.s3_endpoint)
    );

    storage
        .ensure_bucket()
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    // Second call finds the bucket and changes nothing.
    storage
        .ensure_bucket()
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));

    let big = Bytes::from(vec![b'x'; 256 * 1024]);
    let objects = [
        (
            "nightly/2024-01-01T00-00-00Z/manifest.json",
            Bytes::from_static(b"{\"ok\":true}"),
        ),
        (
            "nightly/2024-01-01T00-00-00Z/rbac/system:aggregate-to-edit.json",
            Bytes::from_static(b"{}"),
        ),
        ("nightly/2024-01-02T00-00-00Z/big.bin", big.clone()),
        (
            "weekly/2024-01-07T00-00-00Z/manifest.json",
            Bytes::from_static(b"{}"),
        ),
    ];
    for (key, bytes) in &objects {
        storage
            .put(key, bytes.clone())
            .await
            .unwrap_or_else(|e| panic!("{}", chain(&e)));
    }

    for (key, bytes) in &objects {
        assert_eq!(&storage.get(key).await.unwrap(), bytes, "{key}");
    }
    assert_eq!(
        sorted_keys(&storage, "nightly").await,
        [
            ("nightly/2024-01-01T00-00-00Z/manifest.json".to_string(), 11),
            (
                "nightly/2024-01-01T00-00-00Z/rbac/system:aggregate-to-edit.json".to_string(),
                2
            ),
            (
                "nightly/2024-01-02T00-00-00Z/big.bin".to_string(),
                256 * 1024
            ),
        ]
    );
    assert_eq!(sorted_keys(&storage, "").await.len(), 4);
    // Objects really are under the prefix.
    let raw: Vec<String> = storage
        .store()
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert!(
        raw.iter().all(|p| p.starts_with("clusters/dev/")),
        "{raw:?}"
    );

    assert_eq!(storage.list_dirs("").await.unwrap(), ["nightly", "weekly"]);
    let runs = storage.list_dirs("nightly").await.unwrap();
    assert_eq!(
        runs,
        [
            "nightly/2024-01-01T00-00-00Z",
            "nightly/2024-01-02T00-00-00Z"
        ]
    );
    // Listed directories are keys that the other calls accept as they are.
    assert_eq!(
        storage
            .get(&format!("{}/manifest.json", runs[0]))
            .await
            .unwrap(),
        objects[0].1
    );

    assert_eq!(storage.delete_dir(&runs[0]).await.unwrap(), 2);
    assert_eq!(
        storage.list_dirs("nightly").await.unwrap(),
        ["nightly/2024-01-02T00-00-00Z"]
    );
    let err = storage
        .get("nightly/2024-01-01T00-00-00Z/manifest.json")
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::NotFound, "{}", chain(&err));
    assert!(
        matches!(err, StorageError::NotFound { .. }),
        "{}",
        chain(&err)
    );

    // Leave the bucket empty.
    assert_eq!(storage.delete_dir("nightly").await.unwrap(), 1);
    assert_eq!(storage.delete_all().await.unwrap(), 1);
    assert!(sorted_keys(&storage, "").await.is_empty());
}

#[tokio::test]
async fn missing_bucket_without_ensure_is_a_config_error() {
    let env = common::TestEnv::load();
    let bucket = common::fresh_bucket_name("storage-missing");
    let storage = Storage::new(&env.storage_location(&bucket), Some(env.credentials())).unwrap();
    // Listings only: s3s-fs creates a missing bucket on PUT and answers a GET with NoSuchKey;
    // real S3 and MinIO say NoSuchBucket to both.
    let errors = [
        storage.list_dirs("").await.unwrap_err(),
        storage.list("").try_collect::<Vec<_>>().await.unwrap_err(),
    ];
    for err in &errors {
        eprintln!("missing bucket: {}", chain(err));
        assert!(
            matches!(err, StorageError::BucketNotFound { .. }),
            "{}",
            chain(err)
        );
        assert_eq!(err.category(), ErrorCategory::Config, "{}", chain(err));
        assert!(err.to_string().contains(&bucket), "{err}");
    }
}

#[tokio::test]
async fn wrong_keys_are_auth_errors_without_the_secret() {
    let env = common::TestEnv::load();
    let bucket = common::fresh_bucket_name("storage-auth");
    let wrong_secret = format!("wrong-{}-secret", common::unique_name("s"));
    let wrong_secret_key = Credentials {
        secret_access_key: wrong_secret.clone(),
        ..env.credentials()
    };
    let unknown_access_key = Credentials {
        access_key_id: "no-such-access-key".to_string(),
        ..env.credentials()
    };
    for creds in [wrong_secret_key, unknown_access_key] {
        let storage = Storage::new(&env.storage_location(&bucket), Some(creds)).unwrap();
        let mut errors = vec![storage.ensure_bucket().await.unwrap_err()];
        errors.push(
            storage
                .put("a.json", Bytes::from_static(b"{}"))
                .await
                .unwrap_err(),
        );
        errors.push(storage.get("a.json").await.unwrap_err());
        errors.push(storage.list("").try_collect::<Vec<_>>().await.unwrap_err());
        errors.push(storage.list_dirs("").await.unwrap_err());
        errors.push(storage.delete_dir("x").await.unwrap_err());
        for err in &errors {
            let text = chain(err);
            eprintln!("wrong keys: {text}");
            assert_eq!(err.category(), ErrorCategory::Auth, "{text}");
            assert!(!err.is_transient(), "{text}");
            assert!(!text.contains(&wrong_secret), "secret leaked: {text}");
            assert!(
                !format!("{err:?}").contains(&wrong_secret),
                "secret leaked in Debug: {err:?}"
            );
            assert!(
                !text.contains(&env.s3_secret_key),
                "real secret leaked: {text}"
            );
            assert!(
                !format!("{err:?}").contains(&env.s3_secret_key),
                "leaked in Debug: {err:?}"
            );
        }
        assert!(
            matches!(errors[0], StorageError::CredentialsRejected { .. }),
            "{}",
            chain(&errors[0])
        );
    }
}

#[tokio::test]
async fn unreachable_endpoint_fails_within_seconds() {
    let env = common::TestEnv::load();
    let endpoint = common::unused_local_endpoint();
    let location = StorageLocation {
        endpoint: Some(endpoint.clone()),
        ..env.storage_location("unreachable")
    };
    let storage = Storage::new(&location, Some(env.credentials())).unwrap();

    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(60), storage.ensure_bucket())
        .await
        .expect("ensure_bucket must give up on its own")
        .unwrap_err();
    let ensure_took = started.elapsed();
    eprintln!(
        "ensure_bucket on a closed port took {ensure_took:?}: {}",
        chain(&err)
    );
    assert_eq!(
        err.category(),
        ErrorCategory::Unreachable,
        "{}",
        chain(&err)
    );
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        format!("cannot reach S3 endpoint {endpoint}: connection refused")
    );

    // object_store's own path (with its retries) gives the same answer.
    let started = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        storage.put("a.json", Bytes::from_static(b"{}")),
    )
    .await
    .expect("put must give up on its own")
    .unwrap_err();
    let put_took = started.elapsed();
    eprintln!("put on a closed port took {put_took:?}: {}", chain(&err));
    assert_eq!(
        err.category(),
        ErrorCategory::Unreachable,
        "{}",
        chain(&err)
    );
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert!(ensure_took < Duration::from_secs(20) && put_took < Duration::from_secs(20));
}

#[tokio::test]
async fn invalid_bucket_name_says_why_it_cannot_be_created() {
    let env = common::TestEnv::load();
    let storage = Storage::new(
        &env.storage_location("Bad_Bucket!"),
        Some(env.credentials()),
    )
    .unwrap();
    let err = storage.ensure_bucket().await.unwrap_err();
    let text = chain(&err);
    eprintln!("invalid bucket name: {text}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("bucket \"Bad_Bucket!\" does not exist and could not be created: "),
        "{text}"
    );
    assert!(msg.contains("InvalidBucketName"), "{text}");
    assert_eq!(err.category(), ErrorCategory::Config, "{text}");
    assert!(!err.is_transient());
}
