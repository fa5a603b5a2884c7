//! The Helm chart (`charts/cluster-backup-operator`): it lints, renders in every mode, agrees
//! with config/ (kustomize) on every object both ship, is accepted by the real API server, and
//! an installed release's ServiceAccount is enough for the operator to back up and restore.
//!
//! helm comes from `scripts/tools.sh` (built once from the Go module proxy into the cache, or
//! `HELM=/path/to/helm`); the tests fail, never skip, when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use cluster_backup::api::RestorePhase;
use common::process::OperatorProcess;
use common::{Scene, TestEnv, poll_until, repo_root, short_unique_name, yaml_documents};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::DeleteParams;
use serde_json::{Value, json};

const CHART: &str = "charts/cluster-backup-operator";
/// The release name and namespace under which the chart renders exactly config/'s names.
const CONFIG_RELEASE: &str = "cluster-backup-operator";
const CONFIG_NAMESPACE: &str = "cluster-backup-system";

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

/// A tool built by `scripts/tools.sh` (or the path in `$HELM` / `$PROMTOOL`).
fn tool(name: &str) -> PathBuf {
    if let Ok(path) = std::env::var(name.to_uppercase()) {
        return PathBuf::from(path);
    }
    let out = Command::new(repo_root().join("scripts/tools.sh"))
        .args(["path", name])
        .output()
        .expect("run scripts/tools.sh");
    assert!(
        out.status.success(),
        "\n\n{name} is not built ({}).\nBuild it with:   scripts/tools.sh build\n\n",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// helm with its own config/cache folders under target/ (never the user's repositories) and
/// the test ground's kubeconfig when `kubeconfig` is given.
fn helm_command(kubeconfig: Option<&Path>) -> Command {
    let home = repo_root().join("target/helm-home");
    let mut command = Command::new(tool("helm"));
    command
        .current_dir(repo_root())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("NO_PROXY", "127.0.0.1,localhost");
    match kubeconfig {
        Some(path) => command.env("KUBECONFIG", path),
        // Rendering and linting need no cluster: make sure none is used by accident.
        None => command.env("KUBECONFIG", "/dev/null"),
    };
    command
}

fn run(mut command: Command) -> (bool, String, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn helm_ok(kubeconfig: Option<&Path>, args: &[&str]) -> String {
    let mut command = helm_command(kubeconfig);
    command.args(args);
    let (ok, stdout, stderr) = run(command);
    assert!(ok, "helm {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// `--set` flags for helm.
fn sets(values: &[&str]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| ["--set".to_string(), v.to_string()])
        .collect()
}

/// `helm template` of the chart as `release` in `namespace` with `values`; its documents.
fn render(release: &str, namespace: &str, values: &[&str], include_crds: bool) -> Vec<Value> {
    let mut args = vec![
        "template".to_string(),
        release.to_string(),
        CHART.to_string(),
        "--namespace".to_string(),
        namespace.to_string(),
    ];
    if include_crds {
        args.push("--include-crds".into());
    }
    args.extend(sets(values));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    yaml_documents(&helm_ok(None, &args))
}

/// `kubectl kustomize config/<dir>`; its documents.
fn kustomize(dir: &str) -> Vec<Value> {
    let env = TestEnv::load();
    let out = env.kubectl_ok(&["kustomize", &format!("config/{dir}")]);
    yaml_documents(&out)
}

type Key = (String, String, String);

fn key(doc: &Value) -> Key {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        s(&doc["kind"]),
        s(&doc["metadata"]["namespace"]),
        s(&doc["metadata"]["name"]),
    )
}

fn k(kind: &str, namespace: &str, name: &str) -> Key {
    (kind.to_string(), namespace.to_string(), name.to_string())
}

fn by_key(docs: Vec<Value>) -> BTreeMap<Key, Value> {
    docs.into_iter().map(|d| (key(&d), d)).collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The chart on its own
// ---------------------------------------------------------------------------------------------

#[test]
fn chart_version_and_image_tag_follow_cargo_toml() {
    let chart: Value = yaml_serde::from_str(&read(&format!("{CHART}/Chart.yaml"))).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        chart["version"], version,
        "Chart.yaml version = Cargo.toml's"
    );
    assert_eq!(
        chart["appVersion"], version,
        "Chart.yaml appVersion = Cargo.toml's"
    );
    let docs = by_key(render("rel", "ns", &[], false));
    let deployment = &docs[&k("Deployment", "ns", "rel-cluster-backup-operator")];
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("cluster-backup-operator:{version}")
    );
    // `latest` is refused outright.
    let mut command = helm_command(None);
    command.args(["template", "rel", CHART, "--set", "image.tag=latest"]);
    let (ok, _, stderr) = run(command);
    assert!(!ok && stderr.contains("not latest"), "{stderr}");
}

#[test]
fn chart_lints_in_every_mode() {
    for values in [
        vec![],
        vec!["singleTenant=true"],
        vec!["singleTenant=true", "rbac.restore=false"],
        vec![
            "metrics.serviceMonitor.enabled=true",
            "prometheusRule.enabled=true",
            "dashboard.enabled=true",
            "watchNamespace=team-a",
            "replicas=1",
            "leaderElection.enabled=false",
        ],
    ] {
        let mut args = vec!["lint".to_string(), "--strict".into(), CHART.into()];
        args.extend(sets(&values));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = helm_ok(None, &args);
        assert!(out.contains("0 chart(s) failed"), "{values:?}: {out}");
    }
    // Two replicas without leader election would run every backup twice.
    let mut command = helm_command(None);
    command.args([
        "template",
        "rel",
        CHART,
        "--set",
        "leaderElection.enabled=false",
    ]);
    let (ok, _, stderr) = run(command);
    assert!(!ok && stderr.contains("leaderElection"), "{stderr}");
}

/// Files the chart carries as copies: the CRDs, the admission policy, the alert rules.
#[test]
fn chart_copies_equal_config() {
    for (copy, original) in [
        ("crds/crds.yaml", "config/crd/crds.yaml"),
        (
            "files/requester-stamp.yaml",
            "config/admission/requester-stamp.yaml",
        ),
        ("files/alerts.yaml", "config/prometheus/alerts.yaml"),
    ] {
        assert!(
            read(&format!("{CHART}/{copy}")) == read(original),
            "{CHART}/{copy} differs from {original}: cp {original} {CHART}/{copy}"
        );
    }
}

#[test]
fn deployment_has_the_operators_settings() {
    let docs = by_key(render(
        CONFIG_RELEASE,
        CONFIG_NAMESPACE,
        &[
            "watchNamespace=team-a",
            "concurrency=3",
            "restoreConcurrency=4",
            "logFormat=text",
            "singleTenant=true",
        ],
        false,
    ));
    let deployment = &docs[&k("Deployment", CONFIG_NAMESPACE, CONFIG_RELEASE)];
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "run",
            "--metrics-bind-address=:8080",
            "--concurrency=3",
            "--restore-concurrency=4",
            "--leader-elect",
            "--single-tenant",
            "--namespace=team-a",
        ]
    );
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(env["LOG_FORMAT"]["value"], "text");
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        container["ports"],
        json!([{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "metrics"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "metrics"})
    );
    assert_eq!(
        container["securityContext"],
        json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
               "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    // Off by default: monitoring objects need the Prometheus Operator's CRDs.
    let kinds: BTreeSet<String> = docs.keys().map(|k| k.0.clone()).collect();
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        assert!(!kinds.contains(kind), "{kind} is rendered by default");
    }
    assert!(
        !docs.contains_key(&k(
            "ConfigMap",
            CONFIG_NAMESPACE,
            &format!("{CONFIG_RELEASE}-dashboard")
        )),
        "the dashboard is rendered by default"
    );
}

#[test]
fn monitoring_objects_render_when_enabled() {
    let docs = by_key(render(
        "rel",
        "ops",
        &[
            "metrics.serviceMonitor.enabled=true",
            "prometheusRule.enabled=true",
            "dashboard.enabled=true",
        ],
        false,
    ));
    let name = "rel-cluster-backup-operator";
    let monitor = &docs[&k("ServiceMonitor", "ops", name)];
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    let service = &docs[&k("Service", "ops", &format!("{name}-metrics"))];
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    // ServiceMonitor's selector picks the metrics Service.
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][k], v, "label {k}");
    }
    // The PrometheusRule carries alerts.yaml's groups, OperatorDown watching this release's job.
    let rule = &docs[&k("PrometheusRule", "ops", name)];
    let mut expected: Value = yaml_serde::from_str(&read("config/prometheus/alerts.yaml")).unwrap();
    for r in expected["groups"][0]["rules"].as_array_mut().unwrap() {
        if r["alert"] == "OperatorDown" {
            let expr = r["expr"].as_str().unwrap().replace(
                "cluster-backup-operator-metrics",
                &format!("{name}-metrics"),
            );
            r["expr"] = json!(expr);
        }
    }
    assert_eq!(rule["spec"]["groups"], expected["groups"]);
    let alerts: BTreeSet<&str> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    assert_eq!(
        alerts,
        BTreeSet::from([
            "BackupFailed",
            "BackupMissed",
            "StorageUnavailable",
            "OperatorDown"
        ])
    );
    // The dashboard: the JSON file, labelled for Grafana's sidecar.
    let dashboard = &docs[&k("ConfigMap", "ops", &format!("{name}-dashboard"))];
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json_text = dashboard["data"]["cluster-backup.json"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(json_text).unwrap();
    let file: Value =
        serde_json::from_str(&read(&format!("{CHART}/dashboards/cluster-backup.json"))).unwrap();
    assert_eq!(parsed, file);
    assert_eq!(parsed["uid"], "cluster-backup-operator");
    // Every panel query uses metrics the operator exports (or `up`).
    let text = json_text.to_string();
    for metric in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if metric.starts_with("cluster_backup_") {
            let base = metric.trim_end_matches("_bucket");
            assert!(
                KNOWN_METRICS.contains(&base),
                "dashboard uses unknown metric {metric}"
            );
        }
    }
}

/// The operator's metrics (README, "Operate").
const KNOWN_METRICS: [&str; 13] = [
    "cluster_backup_runs_started_total",
    "cluster_backup_runs_finished_total",
    "cluster_backup_run_duration_seconds",
    "cluster_backup_run_objects",
    "cluster_backup_run_bytes",
    "cluster_backup_items_failed_total",
    "cluster_backup_last_success_timestamp_seconds",
    "cluster_backup_schedule_interval_seconds",
    "cluster_backup_storage_errors_total",
    "cluster_backup_storage_location_available",
    "cluster_backup_queue_depth",
    "cluster_backup_reconcile_errors_total",
    "cluster_backup_runs_in_progress",
];

// ---------------------------------------------------------------------------------------------
// Drift: the chart and config/ (kustomize) ship the same objects
// ---------------------------------------------------------------------------------------------

/// What must agree between the two: whole objects for generated ones (CRDs, the admission
/// policy); rules and aggregation labels of roles; roleRef and subjects of bindings; the
/// pod's identity, security, environment and resources (the chart adds probes, a metrics
/// port, leader election and replicas on purpose).
fn relevant(doc: &Value) -> Value {
    match doc["kind"].as_str().unwrap_or_default() {
        "CustomResourceDefinition"
        | "MutatingAdmissionPolicy"
        | "MutatingAdmissionPolicyBinding" => doc.clone(),
        "ClusterRole" | "Role" => {
            let aggregation: BTreeMap<&String, &Value> = doc["metadata"]["labels"]
                .as_object()
                .map(|labels| {
                    labels
                        .iter()
                        .filter(|(k, _)| k.starts_with("rbac.authorization.k8s.io/"))
                        .collect()
                })
                .unwrap_or_default();
            json!({"rules": doc["rules"], "aggregation": aggregation})
        }
        "ClusterRoleBinding" | "RoleBinding" => {
            json!({"roleRef": doc["roleRef"], "subjects": doc["subjects"]})
        }
        "ServiceAccount" => json!({}),
        "Deployment" => {
            let pod = &doc["spec"]["template"]["spec"];
            let c = &pod["containers"][0];
            json!({
                "serviceAccountName": pod["serviceAccountName"],
                "terminationGracePeriodSeconds": pod["terminationGracePeriodSeconds"],
                "podSecurity": {
                    "runAsNonRoot": pod["securityContext"]["runAsNonRoot"],
                    "seccompProfile": pod["securityContext"]["seccompProfile"],
                },
                "image": c["image"],
                "imagePullPolicy": c["imagePullPolicy"],
                "env": c["env"],
                "resources": c["resources"],
                "securityContext": c["securityContext"],
                // config/'s args, in order, are the chart's without the flags it adds.
                "args": c["args"].as_array().unwrap().iter().filter(|a| {
                    let a = a.as_str().unwrap_or_default();
                    !["--metrics-bind-address=", "--concurrency=", "--restore-concurrency=", "--leader-elect"]
                        .iter()
                        .any(|added| a.starts_with(added))
                }).collect::<Vec<_>>(),
            })
        }
        other => panic!("no comparison for {other}"),
    }
}

/// Renders the chart as config/ names things and compares every object kustomize builds from
/// `dir` (except the Namespace, which `helm install --create-namespace` makes) with the
/// chart's; `chart_only` lists the kinds only the chart has.
fn assert_same_objects(dir: &str, values: &[&str], chart_only: &[&str]) {
    let config = by_key(kustomize(dir));
    let chart = by_key(render(CONFIG_RELEASE, CONFIG_NAMESPACE, values, true));
    let config_keys: BTreeSet<&Key> = config.keys().filter(|k| k.0 != "Namespace").collect();
    let chart_keys: BTreeSet<&Key> = chart
        .keys()
        .filter(|k| !chart_only.contains(&k.0.as_str()))
        .collect();
    assert_eq!(
        config_keys, chart_keys,
        "config/{dir} and the chart ({values:?}) ship different objects"
    );
    for k in config_keys {
        if let Some(at) = first_difference(&relevant(&config[k]), &relevant(&chart[k]), "") {
            panic!("{k:?} differs between config/{dir} and the chart ({values:?}) at {at}");
        }
    }
}

/// Where `a` and `b` first differ (a JSON pointer and both values), numbers compared by value
/// (kustomize writes the CRDs' `minimum: 0.0` as `0`).
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|key| {
                first_difference(
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                    &format!("{at}/{key}"),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{at}/{i}"))),
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
        _ if a == b => None,
        _ => Some(format!("{at}: config/ has {a}, the chart {b}")),
    }
}

#[test]
fn chart_matches_config_default() {
    assert_same_objects("default", &[], &["Service"]);
}

#[test]
fn chart_matches_config_single_tenant() {
    assert_same_objects(
        "single-tenant",
        &["singleTenant=true", "admissionPolicy.enabled=false"],
        &["Service"],
    );
}

#[test]
fn chart_values_leave_out_what_is_disabled() {
    let names = |values: &[&str]| -> BTreeSet<String> {
        render("rel", "ns", values, false)
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let all = names(&["singleTenant=true"]);
    for expected in [
        "ClusterRole/rel-cluster-backup-operator-single-tenant",
        "ClusterRole/rel-cluster-backup-operator-restore",
        "ClusterRoleBinding/rel-cluster-backup-operator-restore",
        "MutatingAdmissionPolicy/backup.cnd.dk-requester-stamp",
    ] {
        assert!(all.contains(expected), "{expected} missing from {all:?}");
    }
    // Nobody but administrators may create Backups or Restores in single-tenant mode.
    assert!(!all.iter().any(|n| n.contains("aggregate-to")), "{all:?}");
    let backup_only = names(&["singleTenant=true", "rbac.restore=false"]);
    assert!(backup_only.contains("ClusterRole/rel-cluster-backup-operator-single-tenant"));
    assert!(
        !backup_only.iter().any(|n| n.ends_with("-restore")),
        "{backup_only:?}"
    );
    let multi_tenant = names(&["rbac.restore=true"]);
    assert!(multi_tenant.contains("ClusterRole/rel-cluster-backup-operator-aggregate-to-edit"));
    assert!(
        !multi_tenant
            .iter()
            .any(|n| n.ends_with("-restore") || n.ends_with("-single-tenant")),
        "multi-tenant mode never gets the read-all or write-all roles: {multi_tenant:?}"
    );
    let bare = names(&["rbac.tenantRoles=false", "admissionPolicy.enabled=false"]);
    assert!(
        !bare
            .iter()
            .any(|n| n.contains("aggregate-to") || n.contains("requester-stamp")),
        "{bare:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// On the real API server
// ---------------------------------------------------------------------------------------------

/// Writes `docs` as one YAML stream (JSON documents) to target/chart-tests/<name>.yaml.
fn write_documents(name: &str, docs: &[Value]) -> PathBuf {
    let dir = repo_root().join("target/chart-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    let text: Vec<String> = docs
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect();
    std::fs::write(&path, text.join("\n---\n")).unwrap();
    path
}

#[tokio::test]
async fn rendered_chart_is_accepted_by_the_api_server() {
    let env = TestEnv::load();
    let client = env.client().await;
    let ns = common::TestNamespace::new(&client, "chart-dry").await;
    for (mode, values) in [
        ("multi", vec!["dashboard.enabled=true"]),
        (
            "single",
            vec!["singleTenant=true", "dashboard.enabled=true"],
        ),
    ] {
        let release = format!("cluster-backup-operator-{}", short_unique_name("d"));
        let docs = render(&release, &ns.name, &values, false);
        let file = write_documents(&format!("dry-run-{mode}"), &docs);
        let out = env.kubectl_ok(&["apply", "--dry-run=server", "-f", file.to_str().unwrap()]);
        for doc in &docs {
            let (kind, _, name) = key(doc);
            assert!(
                out.lines()
                    .any(|l| l.contains(&format!("/{name} ")) && l.ends_with("(server dry run)")),
                "{kind}/{name} not accepted (dry run): {out}"
            );
        }
    }
    ns.cleanup().await;
}

/// A Helm release; `uninstall` removes it (and is also tried when the test fails midway).
struct Release {
    name: String,
    namespace: String,
    kubeconfig: PathBuf,
    installed: bool,
}

impl Release {
    fn install(env: &TestEnv, name: &str, namespace: &str, values: &[&str]) -> Release {
        let mut args = vec![
            "install".to_string(),
            name.to_string(),
            CHART.to_string(),
            "--namespace".into(),
            namespace.into(),
            // Scene installs the CRDs (the same file) on the shared ground already.
            "--skip-crds".into(),
        ];
        args.extend(sets(values));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        helm_ok(Some(&env.kubeconfig), &args);
        Release {
            name: name.into(),
            namespace: namespace.into(),
            kubeconfig: env.kubeconfig.clone(),
            installed: true,
        }
    }

    fn uninstall(&mut self) {
        if std::mem::take(&mut self.installed) {
            helm_ok(
                Some(&self.kubeconfig),
                &["uninstall", &self.name, "--namespace", &self.namespace],
            );
        }
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.installed {
            let mut command = helm_command(Some(&self.kubeconfig));
            command.args(["uninstall", &self.name, "--namespace", &self.namespace]);
            let _ = command.output();
        }
    }
}

/// A kubeconfig file for the test ground that authenticates with `token` (the binary needs a
/// file): the ground's own, its users' credentials replaced by the token.
/// The chart's Deployment as it would run: its container args start the operator (leader
/// election on, as by default), the paths its probes ask answer 200, and the Lease names the
/// pod.
#[tokio::test]
async fn the_charts_container_args_run_and_its_probes_answer() {
    use common::process::{free_port, get};
    let scene = Scene::bare("chart-args").await;
    let ns = scene.namespace().to_string();
    let docs = render("args", &ns, &[], false);
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args.first(), Some(&"run"), "{args:?}");
    assert!(args.contains(&"--leader-elect"), "{args:?}");
    // The pod's port, moved to a free local one.
    let port = free_port();
    let bind = format!("--metrics-bind-address=127.0.0.1:{port}");
    let args: Vec<&str> = args[1..]
        .iter()
        .map(|a| match a.starts_with("--metrics-bind-address") {
            true => bind.as_str(),
            false => a,
        })
        .collect();
    assert!(
        args.contains(&bind.as_str()),
        "the chart sets the admin port: {args:?}"
    );
    let probe = |probe: &str| {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["port"], "metrics", "{probe}");
        get["path"].as_str().unwrap().to_string()
    };
    let (live, ready) = (probe("livenessProbe"), probe("readinessProbe"));
    let pod = format!("{ns}-operator-0");
    let _operator = OperatorProcess::start(
        &scene.env,
        &ns,
        &args,
        &[("POD_NAMESPACE", &ns), ("POD_NAME", &pod)],
        "chart-tests",
        "chart-args",
    );
    for path in [&live, &ready] {
        poll_until(
            &format!("{path} answers 200"),
            std::time::Duration::from_secs(60),
            || async {
                match get(port, path).await {
                    Some((200, _)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    }
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(scene.client.clone(), &ns);
    poll_until(
        "the pod holds the Lease",
        std::time::Duration::from_secs(60),
        || async {
            let holder = leases
                .get_opt("cluster-backup-operator")
                .await
                .unwrap()
                .and_then(|l| l.spec.and_then(|s| s.holder_identity));
            match holder.as_deref() == Some(pod.as_str()) {
                true => Ok(()),
                false => Err(format!("holder {holder:?}")),
            }
        },
    )
    .await;
}

/// `helm install` into a fresh namespace, then the operator binary, authenticated as the
/// release's ServiceAccount (a TokenRequest token, as the pod would have), backs up a
/// namespace and restores it: the chart's RBAC is enough for a real run, in multi-tenant mode
/// (the runs impersonate the requester) and in single-tenant mode (the operator's own rights,
/// read-all + restore roles) — and with `rbac.restore=false` (backup-only) the same restore is
/// refused by the API server. The releases' cluster-scoped objects carry the release name, so
/// they never clash with a config/ install or another release on the shared ground, and are
/// gone after `helm uninstall`.
#[tokio::test]
async fn helm_release_service_account_backs_up_and_restores() {
    for (single_tenant, restore_rbac) in [(false, true), (true, true), (true, false)] {
        install_and_run(single_tenant, restore_rbac).await;
    }
}

async fn install_and_run(single_tenant: bool, restore_rbac: bool) {
    let mode = match (single_tenant, restore_rbac) {
        (false, _) => "multi",
        (true, true) => "single",
        (true, false) => "backup-only",
    };
    let scene = Scene::bare(&format!("chart-install-{mode}")).await;
    let release_ns = scene.new_namespace("rel").await;
    let name = format!("cluster-backup-operator-{}", short_unique_name("r"));
    let mut values = vec![
        // The ground has the policy already (`cluster-backup install`, owned by it, not Helm).
        "admissionPolicy.enabled=false",
        "dashboard.enabled=true",
    ];
    if single_tenant {
        values.push("singleTenant=true");
    }
    if !restore_rbac {
        values.push("rbac.restore=false");
    }
    let mut release = Release::install(&scene.env, &name, &release_ns.name, &values);

    // What Helm created, with the image of this version.
    let deployment = scene.env.kubectl_ok(&[
        "get",
        "deployment",
        &name,
        "-n",
        &release_ns.name,
        "-o",
        "json",
    ]);
    let deployment: Value = serde_json::from_str(&deployment).unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        format!("cluster-backup-operator:{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        name.as_str()
    );

    // The operator as the release's ServiceAccount.
    let token = common::tenant::service_account_token(&scene.client, &release_ns.name, &name).await;
    let mut as_operator = scene.env.clone();
    as_operator.kubeconfig =
        common::tenant::kubeconfig_file_with_token(&scene.env, &token, "chart-tests", &name);
    let whoami = as_operator.kubectl_ok(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(
        whoami.trim(),
        format!("system:serviceaccount:{}:{name}", release_ns.name)
    );
    let mut args = vec!["--operator-namespace", release_ns.name.as_str()];
    if single_tenant {
        args.push("--single-tenant");
    }
    let mut operator = OperatorProcess::start(
        &as_operator,
        scene.namespace(),
        &args,
        &[],
        "chart-logs",
        &name,
    );

    // Back up a namespace, lose a ConfigMap, restore it.
    let source = scene.namespace_with_configmap("src", "settings").await;
    let path = scene
        .back_up("nightly", &[&source.name], &["configmaps"])
        .await;
    let configmaps: Api<ConfigMap> = Api::namespaced(scene.client.clone(), &source.name);
    configmaps
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    poll_until(
        "the ConfigMap is gone",
        std::time::Duration::from_secs(30),
        || async {
            match configmaps.get_opt("settings").await.unwrap() {
                None => Ok(()),
                Some(_) => Err("still there".to_string()),
            }
        },
    )
    .await;
    let status = scene
        .restore("back", json!({ "source": scene.by_path(&path) }))
        .await;
    let log = format!("operator log: target/chart-logs/{name}.log");
    if restore_rbac {
        assert_eq!(
            status.phase,
            Some(RestorePhase::Completed),
            "restore as the chart's ServiceAccount ({mode}): {status:?} ({log})"
        );
        assert!(configmaps.get_opt("settings").await.unwrap().is_some());
    } else {
        // Backup-only: the operator may read everything but write nothing.
        assert!(
            matches!(
                status.phase,
                Some(RestorePhase::Failed | RestorePhase::PartiallyFailed)
            ),
            "a backup-only release cannot restore ({mode}): {status:?} ({log})"
        );
        assert!(
            format!("{status:?}").contains("forbidden"),
            "the API server's refusal is reported: {status:?}"
        );
        assert!(configmaps.get_opt("settings").await.unwrap().is_none());
    }
    operator.kill();

    // Uninstall leaves nothing cluster-scoped behind.
    release.uninstall();
    let (_, left) = scene
        .env
        .kubectl(&["get", "clusterroles,clusterrolebindings", "-o", "name"]);
    assert!(
        !left.contains(&name),
        "{name} left cluster-scoped objects: {left}"
    );
    source.cleanup().await;
    release_ns.cleanup().await;
}
