//! Integration-test harness: every test runs against the REAL control plane and S3 server
//! started by `scripts/testenv.sh up`, in a fresh namespace and a fresh bucket of its own.
//! When the test ground is not running, tests FAIL (never skip) and say how to start it.
//!
//! - this file: the ground (connection details, clients, kubectl), namespaces and buckets that
//!   clean up after themselves, the in-process operators, polling;
//! - [`scene`]: one test's [`Scene`] — namespace, bucket, operators, and the steps tests take
//!   (create a Backup, trigger it, wait for it; restore; read Events, samples, manifests);
//! - [`objects`]: sample objects and test CRDs, and reading objects back;
//! - [`stored`]: what a backup run put in storage, checked against its manifest and status;
//! - [`restored`]: what a restore made, compared with the originals.
//!
//! Every test binary compiles this module and uses a part of it, hence `dead_code`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod objects;
pub mod process;
pub mod restored;
pub mod scene;
pub mod stored;
pub mod tenant;

pub use scene::Scene;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cluster_backup::api::{StorageLocation, StorageProvider};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Longest wait for one backup or restore run (discovery, listing and uploads take a few
/// seconds here; generous so a busy machine never fails a test).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

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
        Client::try_from(self.config().await).expect("client for the test ground")
    }

    /// A client that acts as `user` (impersonation), e.g. the operator's ServiceAccount.
    pub async fn client_as(&self, user: &str) -> Client {
        let mut config = self.config().await;
        config.auth_info.impersonate = Some(user.to_string());
        Client::try_from(config).expect("impersonating client for the test ground")
    }

    /// A client that authenticates with a bearer `token` (e.g. a ServiceAccount's, from the
    /// TokenRequest API) instead of the admin certificate: the API server then sees that
    /// identity itself, as a real user's request, not an impersonation.
    pub async fn client_with_token(&self, token: &str) -> Client {
        let mut kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.kubeconfig.display()));
        for named in &mut kubeconfig.auth_infos {
            named.auth_info =
                Some(serde_json::from_value(serde_json::json!({"token": token})).unwrap());
        }
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig of the test ground with a token is usable");
        assert_loopback(&config.cluster_url.to_string());
        Client::try_from(config).expect("token client for the test ground")
    }

    async fn config(&self) -> Config {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.kubeconfig.display()));
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig of the test ground is usable");
        assert_loopback(&config.cluster_url.to_string());
        config
    }

    /// Runs the test ground's kubectl (from the repository root); success and its output.
    pub fn kubectl(&self, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .current_dir(repo_root())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.kubectl.display()));
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// [`TestEnv::kubectl`] that must succeed; its output.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.kubectl(args);
        assert!(ok, "kubectl {args:?}: {out}");
        out
    }

    /// The S3 server's keys.
    pub fn credentials(&self) -> cluster_backup::storage::Credentials {
        cluster_backup::storage::Credentials {
            access_key_id: self.s3_access_key.clone(),
            secret_access_key: self.s3_secret_key.clone(),
            session_token: None,
        }
    }

    /// A storage location on the local S3 server with inline keys.
    pub fn storage_location(&self, bucket: &str) -> StorageLocation {
        StorageLocation {
            provider: Some(StorageProvider::Minio),
            bucket: bucket.to_string(),
            endpoint: Some(self.s3_endpoint.clone()),
            access_key: Some(self.s3_access_key.clone()),
            secret_key: Some(self.s3_secret_key.clone()),
            region: Some(self.s3_region.clone()),
            ..StorageLocation::default()
        }
    }

    /// A `Storage` for `bucket` on the local S3 server, with the test ground's keys.
    pub fn storage(&self, bucket: &str) -> cluster_backup::storage::Storage {
        cluster_backup::storage::Storage::new(
            &self.storage_location(bucket),
            Some(self.credentials()),
        )
        .expect("storage for the local S3 server")
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

    /// Every document of `config/samples/<file>`, with endpoints made local
    /// ([`TestEnv::localize_yaml`]).
    pub fn sample_documents(&self, file: &str) -> Vec<serde_json::Value> {
        let path = repo_root().join("config/samples").join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        yaml_documents(&self.localize_yaml(&text))
    }
}

/// `http://127.0.0.1:<port>` where nothing listens: the port was free a moment ago.
pub fn unused_local_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port();
    format!("http://127.0.0.1:{port}")
}

/// The documents of a multi-document YAML text (empty ones left out).
pub fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    yaml_serde::Deserializer::from_str(text)
        .filter_map(|doc| {
            let value: serde_json::Value =
                serde::Deserialize::deserialize(doc).expect("valid YAML");
            (!value.is_null()).then_some(value)
        })
        .collect()
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

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

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

/// A bucket name unique to this test (S3 rules: 3-63 chars, lowercase, digits, '-').
pub fn fresh_bucket_name(prefix: &str) -> String {
    let mut name = unique_name(prefix);
    name.truncate(63);
    name
}

// ---------------------------------------------------------------------------------------------
// Namespaces and buckets that clean up after themselves
// ---------------------------------------------------------------------------------------------

/// A namespace that exists for one test and is deleted when the test ends.
pub struct TestNamespace {
    pub name: String,
    client: Client,
    /// Known for namespaces of a [`Scene`]: their deletion is then certain (see `Drop`).
    env: Option<TestEnv>,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> TestNamespace {
        Self::named(client, &unique_name(prefix)).await
    }

    /// A namespace with exactly this name (e.g. from [`short_unique_name`]), deleted when the
    /// test ends like [`TestNamespace::new`]'s.
    pub async fn named(client: &Client, name: &str) -> TestNamespace {
        create_namespace(client, name).await;
        Self::adopt(client, name)
    }

    /// Takes charge of a namespace something else created (e.g. a restore), so it is deleted
    /// when the test ends like [`TestNamespace::new`]'s.
    pub fn adopt(client: &Client, name: &str) -> TestNamespace {
        TestNamespace {
            name: name.to_string(),
            client: client.clone(),
            env: None,
        }
    }

    /// [`TestNamespace::adopt`] on the ground `env`, so that dropping it deletes the namespace
    /// for certain, even when the test panics.
    pub fn adopt_on(env: &TestEnv, client: &Client, name: &str) -> TestNamespace {
        TestNamespace {
            name: name.to_string(),
            client: client.clone(),
            env: Some(env.clone()),
        }
    }

    /// Deletes the namespace now (tests that want to be sure call this at the end).
    pub async fn cleanup(&self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = api.delete(&self.name, &DeleteParams::default()).await;
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

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        if let Some(env) = self.env.take() {
            // The ground's controller manager then empties and removes the namespace.
            run_detached(move || async move {
                let api: Api<Namespace> = Api::all(env.client().await);
                let _ = api.delete(&name, &DeleteParams::default()).await;
            });
            return;
        }
        // Best effort without the ground's details: a deletion spawned while the test's
        // runtime shuts down may never be sent. Names are unique per test so nothing collides,
        // and `scripts/testenv.sh down` removes the whole control plane.
        let client = self.client.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let api: Api<Namespace> = Api::all(client);
                let _ = api.delete(&name, &DeleteParams::default()).await;
            });
        }
    }
}

/// Runs the future `make` returns on a runtime of its own, in a thread of its own, and waits
/// (at most 60 s) for it: cleanup in `Drop`, where the test's runtime is shutting down or
/// blocked on this very thread (its clients cannot be used; blocking on them would deadlock).
fn run_detached<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let cleanup = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(60), make()).await;
            });
        }
    });
    let _ = cleanup.join();
}

/// Deletes every object of a test bucket when dropped.
pub struct TestBucket {
    pub name: String,
    env: TestEnv,
}

impl TestBucket {
    pub fn new(env: &TestEnv, prefix: &str) -> TestBucket {
        Self::named(env, &fresh_bucket_name(prefix))
    }

    /// A bucket with exactly this name (e.g. from [`short_unique_name`], or another scene's).
    pub fn named(env: &TestEnv, name: &str) -> TestBucket {
        TestBucket {
            name: name.to_string(),
            env: env.clone(),
        }
    }

    pub fn storage(&self) -> cluster_backup::storage::Storage {
        self.env.storage(&self.name)
    }

    /// Deletes every object of the bucket.
    pub async fn cleanup(&self) {
        let _ = self.storage().delete_all().await;
    }
}

impl Drop for TestBucket {
    fn drop(&mut self) {
        let (env, name) = (self.env.clone(), self.name.clone());
        run_detached(move || async move {
            let _ = env.storage(&name).delete_all().await;
        });
    }
}

/// A cluster-scoped object a test created (a ClusterStorageLocation, a ClusterRole), deleted
/// when dropped, even when the test panics.
pub struct TestClusterObject {
    pub name: String,
    resource: kube::discovery::ApiResource,
    env: TestEnv,
}

impl TestClusterObject {
    /// Creates the cluster-scoped object given as JSON.
    pub async fn create(env: &TestEnv, client: &Client, value: serde_json::Value) -> Self {
        let resource = objects::api_resource_of(client, &value).await;
        let name = value["metadata"]["name"].as_str().unwrap().to_string();
        create_json(client, value).await;
        TestClusterObject {
            name,
            resource,
            env: env.clone(),
        }
    }
}

impl Drop for TestClusterObject {
    fn drop(&mut self) {
        let (env, name, resource) = (self.env.clone(), self.name.clone(), self.resource.clone());
        run_detached(move || async move {
            let api: Api<kube::api::DynamicObject> = Api::all_with(env.client().await, &resource);
            let _ = api.delete(&name, &DeleteParams::default()).await;
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The operator, in process
// ---------------------------------------------------------------------------------------------

use cluster_backup::controller::{Controllers, Settings};

/// Starts the Backup controller in this test process, watching only `namespace`, so tests
/// running in parallel never reconcile each other's Backups. Stopped when the handle drops.
pub fn start_operator(client: &Client, namespace: &str) -> OperatorHandle {
    let handle = tokio::spawn(cluster_backup::controller::run(
        client.clone(),
        Settings {
            controllers: Controllers::Backups,
            namespace: Some(namespace.to_string()),
            ..Settings::default()
        },
    ));
    OperatorHandle(handle)
}

/// Starts the Restore controller in this test process, watching only `namespace`. Stopped when
/// the handle drops.
pub fn start_restore_operator(client: &Client, namespace: &str) -> OperatorHandle {
    let handle = tokio::spawn(cluster_backup::controller::run(
        client.clone(),
        Settings {
            controllers: Controllers::Restores,
            namespace: Some(namespace.to_string()),
            ..Settings::default()
        },
    ));
    OperatorHandle(handle)
}

/// Starts the operator in this test process with `settings` (e.g. another tenancy, operator
/// namespace, or only the ClusterStorageLocation checks). Stopped when the handle drops.
pub fn start_operator_with(client: &Client, settings: Settings) -> OperatorHandle {
    OperatorHandle(tokio::spawn(cluster_backup::controller::run(
        client.clone(),
        settings,
    )))
}

pub struct OperatorHandle(
    tokio::task::JoinHandle<Result<(), cluster_backup::controller::leader::LeaderError>>,
);

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

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

/// Polls `check` every 250 ms until it returns `Ok`, or panics after `timeout` with `what` and
/// the last `Err` (what was seen instead).
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let seen = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if tokio::time::Instant::now() > deadline {
            panic!("{what}: not within {timeout:?}; {seen}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// [`poll_until`] for a check that has nothing to say when it is not there yet.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_until(what, timeout, || {
        let next = check();
        async move { next.await.ok_or_else(|| "still waiting".to_string()) }
    })
    .await
}

/// Polls object `name` until `done` says so, or panics after `timeout` showing its last
/// status.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&K) -> bool,
) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).to_string();
    poll_until(&format!("{kind} {name} {what}"), timeout, || async {
        let object = api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}"));
        if done(&object) {
            return Ok(object);
        }
        let status = serde_json::to_value(&object).unwrap()["status"].clone();
        Err(format!(
            "status: {}",
            serde_json::to_string_pretty(&status).unwrap()
        ))
    })
    .await
}

/// Polls a Backup until `done` says so, or panics after `timeout` showing the last status.
pub async fn wait_for_backup(
    api: &Api<cluster_backup::api::Backup>,
    name: &str,
    timeout: Duration,
    done: impl Fn(&cluster_backup::api::BackupStatus) -> bool,
) -> cluster_backup::api::Backup {
    wait_for(api, name, timeout, "to reach the expected state", |b| {
        b.status.as_ref().is_some_and(&done)
    })
    .await
}

/// Polls a Restore until it is finished (Completed, PartiallyFailed or Failed), or panics after
/// `timeout` showing the last status.
pub async fn wait_for_restore(
    api: &Api<cluster_backup::api::Restore>,
    name: &str,
    timeout: Duration,
) -> cluster_backup::api::Restore {
    wait_for(api, name, timeout, "to finish", |r| {
        cluster_backup::controller::restore::is_finished(r.status.as_ref().and_then(|s| s.phase))
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Creating objects from JSON
// ---------------------------------------------------------------------------------------------

/// Creates one object given as JSON (the namespace comes from the object); panics on refusal.
pub async fn create_json(client: &Client, value: serde_json::Value) {
    let kind = value["kind"].as_str().unwrap_or_default().to_string();
    let name = value["metadata"]["name"].clone();
    try_create_json(client, value)
        .await
        .unwrap_or_else(|e| panic!("create {kind} {name}: {e}"));
}

/// Creates one object given as JSON, returning the API server's refusal.
pub async fn try_create_json(client: &Client, value: serde_json::Value) -> Result<(), kube::Error> {
    use kube::api::DynamicObject;
    let resource = objects::api_resource_of(client, &value).await;
    let object: DynamicObject = serde_json::from_value(value.clone()).unwrap();
    let api: Api<DynamicObject> = match value["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.create(&PostParams::default(), &object)
        .await
        .map(|_| ())
}

/// Creates every object, in order.
pub async fn create_all(client: &Client, objects: impl IntoIterator<Item = serde_json::Value>) {
    for object in objects {
        create_json(client, object).await;
    }
}
