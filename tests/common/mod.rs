//! Integration-test harness: every test runs against the REAL control plane and S3 server
//! started by `scripts/testenv.sh up`, in a fresh namespace and a fresh bucket of its own.
//! When the test ground is not running, tests FAIL (never skip) and say how to start it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use cluster_backup::api::{StorageLocation, StorageProvider};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Connection details of one running test ground (`.testenv/NAME/env`).
#[derive(Clone, Debug)]
pub struct TestEnv {
    pub name: String,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub s3_endpoint: String,
    pub s3_access_key: String,
    pub s3_secret_key: String,
    pub s3_region: String,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl TestEnv {
    /// The test ground named by `TESTENV_NAME` (default `default`).
    pub fn load() -> TestEnv {
        let name = std::env::var("TESTENV_NAME").unwrap_or_else(|_| "default".to_string());
        Self::load_named(&name)
    }

    /// A named test ground, e.g. `second` for cross-cluster tests.
    pub fn load_named(name: &str) -> TestEnv {
        let root = std::env::var("TESTENV_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join(".testenv"));
        let path = root.join(name).join("env");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
            panic!(
                "\n\nThe local test ground `{name}` is not running ({}: {err}).\n\
                 Start it with:   scripts/testenv.sh up {name}\n\
                 or run the whole suite with:   scripts/test.sh\n\n",
                path.display()
            )
        });
        let vars = parse_env_file(&text);
        let get = |key: &str| {
            vars.get(key).cloned().unwrap_or_else(|| {
                panic!(
                    "{} has no {key}; re-run scripts/testenv.sh up {name}",
                    path.display()
                )
            })
        };
        let env = TestEnv {
            name: name.to_string(),
            kubeconfig: PathBuf::from(get("KUBECONFIG")),
            kubectl: PathBuf::from(get("KUBECTL")),
            s3_endpoint: get("S3_ENDPOINT"),
            s3_access_key: get("S3_ACCESS_KEY"),
            s3_secret_key: get("S3_SECRET_KEY"),
            s3_region: get("S3_REGION"),
        };
        assert_loopback(&env.s3_endpoint);
        env
    }

    /// A client for this test ground's API server (never the user's own kubeconfig).
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.kubeconfig.display()));
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig of the test ground is usable");
        assert_loopback(&config.cluster_url.to_string());
        Client::try_from(config).expect("client for the test ground")
    }

    /// A storage location on the local S3 server with inline keys.
    pub fn storage_location(&self, bucket: &str) -> StorageLocation {
        StorageLocation {
            provider: StorageProvider::Minio,
            bucket: bucket.to_string(),
            endpoint: Some(self.s3_endpoint.clone()),
            access_key: Some(self.s3_access_key.clone()),
            secret_key: Some(self.s3_secret_key.clone()),
            region: Some(self.s3_region.clone()),
            ..StorageLocation::default()
        }
    }

    /// Rewrites every `endpoint:` in a YAML document to the local S3 server, so no test ever
    /// connects to the design document's Docker addresses (172.17.0.3, host.docker.internal).
    pub fn localize_yaml(&self, yaml: &str) -> String {
        yaml.lines()
            .map(|line| match line.find("endpoint:") {
                Some(idx) => format!("{}endpoint: \"{}\"", &line[..idx], self.s3_endpoint),
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Tests never talk to anything outside 127.0.0.0/8.
pub fn assert_loopback(url: &str) {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    assert!(
        host.starts_with("127.") || host == "localhost",
        "refusing to use non-loopback address {url} in a test"
    );
}

fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let value = value.trim().trim_matches('"').trim_matches('\'');
            Some((key.trim().to_string(), value.to_string()))
        })
        .collect()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A DNS-1123 name unique to this test process: `<prefix>-<pid>-<n>-<nanos>`.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{n}-{}",
        std::process::id() % 100_000,
        nanos % 100_000
    )
}

/// A namespace that exists for one test and is deleted when the test ends.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> TestNamespace {
        let name = unique_name(prefix);
        create_namespace(client, &name).await;
        TestNamespace {
            name,
            client: client.clone(),
        }
    }
}

pub async fn create_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": name, "labels": { "cluster-backup-test": "true" } }
    }))
    .unwrap();
    api.create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
}

impl TestNamespace {
    /// Deletes the namespace now (tests that want to be sure call this at the end).
    pub async fn cleanup(&self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = api.delete(&self.name, &DeleteParams::default()).await;
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Best effort when a test ends or fails: the ground's controller manager then empties
        // and removes the namespace, but a deletion spawned while the test's runtime shuts
        // down may never be sent. Names are unique per test so nothing collides, and
        // `scripts/testenv.sh down` removes the whole control plane. (Blocking here would
        // deadlock: the client's worker runs on the test's own runtime.)
        let client = self.client.clone();
        let name = self.name.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let api: Api<Namespace> = Api::all(client);
                let _ = api.delete(&name, &DeleteParams::default()).await;
            });
        }
    }
}

/// A bucket name unique to this test (S3 rules: 3-63 chars, lowercase, digits, '-').
/// The bucket's objects are deleted when the test process's [`TestBucket`] guard drops.
pub fn fresh_bucket_name(prefix: &str) -> String {
    let mut name = unique_name(prefix);
    name.truncate(63);
    name
}

/// Deletes every object of a test bucket when dropped (best effort).
pub struct TestBucket {
    pub name: String,
    env: TestEnv,
}

impl TestBucket {
    pub fn new(env: &TestEnv, prefix: &str) -> TestBucket {
        TestBucket {
            name: fresh_bucket_name(prefix),
            env: env.clone(),
        }
    }

    pub fn storage(&self) -> cluster_backup::storage::Storage {
        self.env.storage(&self.name)
    }
}

impl TestBucket {
    /// Deletes every object of the bucket.
    pub async fn cleanup(&self) {
        let _ = self.storage().delete_all().await;
    }
}

impl Drop for TestBucket {
    fn drop(&mut self) {
        // Best effort, like TestNamespace; `scripts/testenv.sh down` removes all S3 data.
        let storage = self.storage();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = storage.delete_all().await;
            });
        }
    }
}

impl TestEnv {
    /// A `Storage` for `bucket` on the local S3 server, with the test ground's keys.
    pub fn storage(&self, bucket: &str) -> cluster_backup::storage::Storage {
        let credentials = cluster_backup::storage::Credentials {
            access_key_id: self.s3_access_key.clone(),
            secret_access_key: self.s3_secret_key.clone(),
            session_token: None,
        };
        cluster_backup::storage::Storage::new(&self.storage_location(bucket), Some(credentials))
            .expect("storage for the local S3 server")
    }
}

/// Starts the Backup controller in this test process, watching only `namespace`, so tests
/// running in parallel never reconcile each other's Backups. Stopped when the handle drops.
pub fn start_operator(client: &Client, namespace: &str) -> OperatorHandle {
    let handle = tokio::spawn(cluster_backup::controller::backup::run(
        client.clone(),
        Some(namespace.to_string()),
        2,
    ));
    OperatorHandle(handle)
}

pub struct OperatorHandle(tokio::task::JoinHandle<()>);

impl OperatorHandle {
    pub fn stop(&self) {
        self.0.abort();
    }
}

impl Drop for OperatorHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls a Backup until `done` says so, or panics after `timeout` showing the last status.
pub async fn wait_for_backup(
    api: &Api<cluster_backup::api::Backup>,
    name: &str,
    timeout: std::time::Duration,
    done: impl Fn(&cluster_backup::api::BackupStatus) -> bool,
) -> cluster_backup::api::Backup {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let backup = api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get backup {name}: {e}"));
        if backup.status.as_ref().is_some_and(&done) {
            return backup;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "backup {name} did not reach the expected state within {timeout:?}; status: {}",
                serde_json::to_string_pretty(&backup.status).unwrap()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Applies one object given as JSON (create; the namespace comes from the object).
pub async fn create_json(client: &Client, value: serde_json::Value) {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let api_version = value["apiVersion"].as_str().unwrap().to_string();
    let kind = value["kind"].as_str().unwrap().to_string();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, &kind);
    let discovered = kube::discovery::pinned_kind(client, &gvk).await;
    let resource = match discovered {
        Ok((resource, _)) => resource,
        Err(_) => ApiResource::from_gvk(&gvk),
    };
    let object: DynamicObject = serde_json::from_value(value.clone()).unwrap();
    let api: Api<DynamicObject> = match value["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create {kind} {}: {e}", value["metadata"]["name"]));
}

/// A short unique name (DNS label and S3 bucket name): `<prefix>` plus 8-9 base-36 characters
/// (pid, time, counter). Names persist across runs (namespaces stay Terminating, buckets stay),
/// so the time part keeps a reused pid from repeating an old name.
///
/// Why short: the test ground's S3 server (s3s-fs) keeps one file per object whose file NAME
/// holds base64(bucket) + base64(key), so bucket + key must stay under about 168 bytes
/// (NAME_MAX 255) or the PUT fails with HTTP 500 "File name too long". Backup keys embed the
/// Backup's namespace and name and the source namespace, so tests that check object keys use
/// these names for buckets and namespaces.
pub fn short_unique_name(prefix: &str) -> String {
    fn base36(mut n: u64, width: usize) -> String {
        const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut out = Vec::new();
        while n > 0 || out.len() < width {
            out.push(DIGITS[(n % 36) as usize]);
            n /= 36;
        }
        out.reverse();
        String::from_utf8(out).unwrap()
    }
    let n = u64::from(COUNTER.fetch_add(1, Ordering::Relaxed));
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let pid = u64::from(std::process::id());
    format!(
        "{prefix}{}{}{}",
        base36(pid % 36u64.pow(3), 3),
        base36(secs % 36u64.pow(4), 4),
        base36(n, 1)
    )
}

impl TestNamespace {
    /// A namespace with exactly this name (e.g. from [`short_unique_name`]), deleted when the
    /// test ends like [`TestNamespace::new`]'s.
    pub async fn named(client: &Client, name: &str) -> TestNamespace {
        create_namespace(client, name).await;
        TestNamespace {
            name: name.to_string(),
            client: client.clone(),
        }
    }
}

/// Starts the Restore controller in this test process, watching only `namespace`. Stopped when
/// the handle drops.
pub fn start_restore_operator(client: &Client, namespace: &str) -> OperatorHandle {
    let handle = tokio::spawn(cluster_backup::controller::restore::run(
        client.clone(),
        Some(namespace.to_string()),
    ));
    OperatorHandle(handle)
}

/// Polls a Restore until it is finished (Completed, PartiallyFailed or Failed), or panics after
/// `timeout` showing the last status.
pub async fn wait_for_restore(
    api: &Api<cluster_backup::api::Restore>,
    name: &str,
    timeout: std::time::Duration,
) -> cluster_backup::api::Restore {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let restore = api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get restore {name}: {e}"));
        let phase = restore.status.as_ref().and_then(|s| s.phase);
        if cluster_backup::controller::restore::is_finished(phase) {
            return restore;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "restore {name} did not finish within {timeout:?}; status: {}",
                serde_json::to_string_pretty(&restore.status).unwrap()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

impl TestNamespace {
    /// Takes charge of a namespace something else created (e.g. a restore), so it is deleted
    /// when the test ends like [`TestNamespace::new`]'s.
    pub fn adopt(client: &Client, name: &str) -> TestNamespace {
        TestNamespace {
            name: name.to_string(),
            client: client.clone(),
        }
    }
}
