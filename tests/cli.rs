//! The `cluster-backup` command line, run as a process against the local control plane and S3
//! server: output, `-o json|yaml`, exit codes (0 ok, 1 failed, 2 usage, 3 partially failed,
//! 130 interrupted), `--wait` with a progress bar on a pseudo-terminal and plain lines
//! without one, verify, diff, download, completions and the kubectl plugin name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Output};

use bytes::Bytes;
use common::Scene;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cluster-backup");

/// The binary with the scene's kubeconfig and S3 keys (for `backups …`), nothing else from
/// this process's environment that could point it elsewhere.
fn command(scene: &Scene, args: &[&str]) -> Command {
    common::assert_loopback(&scene.env.s3_endpoint);
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("KUBECONFIG", &scene.env.kubeconfig)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("AWS_ACCESS_KEY_ID", &scene.env.s3_access_key)
        .env("AWS_SECRET_ACCESS_KEY", &scene.env.s3_secret_key)
        .env_remove("POD_NAMESPACE");
    command
}

/// Runs the binary to its end without blocking the test's runtime (the in-process operator
/// runs on it).
async fn run(scene: &Scene, args: &[&str]) -> Output {
    tokio::process::Command::from(command(scene, args))
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// `--bucket … --endpoint … --region …` of the scene's bucket.
fn bucket_args(scene: &Scene) -> Vec<String> {
    vec![
        "--bucket".into(),
        scene.bucket.name.clone(),
        "--endpoint".into(),
        scene.env.s3_endpoint.clone(),
        "--region".into(),
        scene.env.s3_region.clone(),
    ]
}

fn with(base: &[&str], extra: &[String]) -> Vec<String> {
    base.iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .collect()
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A credentials Secret `s3-creds` in the scene's namespace.
async fn credentials_secret(scene: &Scene) {
    let api: Api<Secret> = Api::namespaced(scene.client.clone(), scene.namespace());
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "s3-creds", "namespace": scene.namespace() },
        "stringData": { "accessKey": scene.env.s3_access_key, "secretKey": scene.env.s3_secret_key },
    });
    api.patch(
        "s3-creds",
        &PatchParams::apply("cli-test").force(),
        &Patch::Apply(&secret),
    )
    .await
    .unwrap();
}

/// A namespace with ConfigMaps `name -> data.key`.
async fn source(scene: &Scene, maps: &[(&str, &str)]) -> common::TestNamespace {
    let ns = scene.new_namespace("cli-src").await;
    for (name, value) in maps {
        scene
            .create(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": name, "namespace": ns.name },
                "data": { "key": value },
            }))
            .await;
    }
    ns
}

/// `backup create NAME --namespaces SRC` into the scene's bucket through `s3-creds`.
fn create_backup_args(scene: &Scene, name: &str, src: &str, extra: &[&str]) -> Vec<String> {
    let mut args = with(
        &[
            "backup",
            "create",
            name,
            "-n",
            scene.namespace(),
            "--namespaces",
            src,
        ],
        &bucket_args(scene),
    );
    args.extend(["--credentials-secret".to_string(), "s3-creds".to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test]
async fn backups_are_created_waited_for_listed_described_run_and_deleted() {
    let scene = Scene::restores("cli-backup").await;
    credentials_secret(&scene).await;
    let src = source(&scene, &[("a", "1"), ("b", "2")]).await;
    let ns = scene.namespace().to_string();

    let created = run(
        &scene,
        &refs(&create_backup_args(
            &scene,
            "nightly",
            &src.name,
            &["--wait"],
        )),
    )
    .await;
    assert_exit(&created, 0);
    let out = text(&created.stdout);
    assert!(
        out.contains("Completed") && out.contains("backup path: backups/"),
        "{out}"
    );

    // Table, JSON and YAML listings.
    let table = run(&scene, &["backup", "get", "-n", &ns]).await;
    assert_exit(&table, 0);
    let out = text(&table.stdout);
    assert!(
        out.starts_with("NAME") && out.contains("nightly") && out.contains("Completed"),
        "{out}"
    );
    let listed: Value = serde_json::from_slice(
        &run(&scene, &["backup", "get", "-n", &ns, "-o", "json"])
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(listed["items"][0]["metadata"]["name"], "nightly");
    assert_eq!(listed["items"][0]["status"]["phase"], "Completed");
    let yaml = run(
        &scene,
        &["backup", "get", "nightly", "-n", &ns, "-o", "yaml"],
    )
    .await;
    let parsed: Value = yaml_serde::from_slice(&yaml.stdout).unwrap();
    assert_eq!(
        parsed["items"][0]["spec"]["source"]["namespaces"][0],
        json!(src.name)
    );

    // Run it again now, waiting, as JSON: the run's result is in the document.
    let again = run(
        &scene,
        &[
            "backup", "run", "nightly", "-n", &ns, "--wait", "-o", "json",
        ],
    )
    .await;
    assert_exit(&again, 0);
    let document: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(document["status"]["lastRun"]["trigger"], "manual");
    assert_eq!(document["status"]["lastRun"]["result"], "Completed");
    assert_eq!(document["status"]["backupCount"], 2);

    let described = run(&scene, &["backup", "describe", "nightly", "-n", &ns]).await;
    assert_exit(&described, 0);
    let out = text(&described.stdout);
    assert!(
        out.contains(&format!("Backup {ns}/nightly")) && out.contains("configmaps"),
        "{out}"
    );

    // The kubectl plugin name: `kubectl backup get` runs `kubectl-backup get`.
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-backup");
    std::os::unix::fs::symlink(BIN, &plugin).unwrap();
    let via_plugin = tokio::process::Command::new(&plugin)
        .args(["get", "-n", &ns])
        .env("KUBECONFIG", &scene.env.kubeconfig)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .await
        .unwrap();
    assert_exit(&via_plugin, 0);
    assert!(text(&via_plugin.stdout).contains("nightly"));

    let deleted = run(&scene, &["backup", "delete", "nightly", "-n", &ns]).await;
    assert_exit(&deleted, 0);
    assert!(text(&deleted.stdout).contains("stays in the bucket"));
    let gone = run(&scene, &["backup", "get", "nightly", "-n", &ns]).await;
    assert_exit(&gone, 1);
    assert!(
        text(&gone.stderr).contains("not found"),
        "{}",
        text(&gone.stderr)
    );
}

#[tokio::test]
async fn restores_report_their_result_in_the_exit_code() {
    let scene = Scene::restores("cli-restore").await;
    credentials_secret(&scene).await;
    let src = source(&scene, &[("a", "1"), ("b", "2")]).await;
    let ns = scene.namespace().to_string();
    assert_exit(
        &run(
            &scene,
            &refs(&create_backup_args(&scene, "snap", &src.name, &["--wait"])),
        )
        .await,
        0,
    );

    // Completed: 0, with the objects in the mapped namespace.
    let copy = common::short_unique_name("cli-copy");
    let _guard = scene.adopt_namespace(&copy);
    let mapping = format!("{}={copy}", src.name);
    let restored = run(
        &scene,
        &[
            "restore",
            "create",
            "back",
            "-n",
            &ns,
            "--from-backup",
            "snap",
            "--namespace-mapping",
            &mapping,
            "--create-namespaces",
            "--wait",
        ],
    )
    .await;
    assert_exit(&restored, 0);
    assert!(
        text(&restored.stdout).contains("phase:       Completed"),
        "{}",
        text(&restored.stdout)
    );
    let maps: Api<ConfigMap> = Api::namespaced(scene.client.clone(), &copy);
    assert_eq!(maps.get("b").await.unwrap().data.unwrap()["key"], "2");

    // Listing as YAML, describing as JSON.
    let listed: Value = yaml_serde::from_slice(
        &run(&scene, &["restore", "get", "-n", &ns, "-o", "yaml"])
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(listed["items"][0]["status"]["phase"], "Completed");
    let described: Value = serde_json::from_slice(
        &run(
            &scene,
            &["restore", "describe", "back", "-n", &ns, "-o", "json"],
        )
        .await
        .stdout,
    )
    .unwrap();
    // The namespace and the two ConfigMaps.
    assert_eq!(described["status"]["resourceCounts"]["created"], 3);

    // PartiallyFailed: 3. One stored object is damaged; the other restores.
    let path = scene
        .backups
        .get("snap")
        .await
        .unwrap()
        .status
        .unwrap()
        .backup_path
        .unwrap();
    let storage = scene.storage();
    let key = format!("{path}/namespaces/{}/configmaps/a.json", src.name);
    let mut bytes = storage.get(&key).await.unwrap().to_vec();
    bytes.push(b' ');
    storage.put(&key, Bytes::from(bytes)).await.unwrap();
    let partial_copy = common::short_unique_name("cli-part");
    let _guard2 = scene.adopt_namespace(&partial_copy);
    let mapping = format!("{}={partial_copy}", src.name);
    let partial = run(
        &scene,
        &[
            "restore",
            "create",
            "partial",
            "-n",
            &ns,
            "--from-backup",
            "snap",
            "--namespace-mapping",
            &mapping,
            "--create-namespaces",
            "--wait",
        ],
    )
    .await;
    assert_exit(&partial, 3);
    assert!(
        text(&partial.stdout).contains("PartiallyFailed"),
        "{}",
        text(&partial.stdout)
    );

    // Failed: 1 (nothing stored at that path).
    let mut args = with(
        &[
            "restore",
            "create",
            "nothing",
            "-n",
            &ns,
            "--from-path",
            "backups/x/y/2020-01-01T00-00-00Z",
            "--wait",
        ],
        &bucket_args(&scene),
    );
    args.extend(["--credentials-secret".into(), "s3-creds".into()]);
    let failed = run(&scene, &refs(&args)).await;
    assert_exit(&failed, 1);
    assert!(
        text(&failed.stdout).contains("Failed"),
        "{}",
        text(&failed.stdout)
    );

    // Usage: 2 (clap's own, and ours).
    assert_exit(
        &run(&scene, &["restore", "create", "x", "-n", &ns]).await,
        2,
    );
    assert_exit(
        &run(
            &scene,
            &[
                "restore",
                "create",
                "x",
                "-n",
                &ns,
                "--from-backup",
                "snap",
                "--bucket",
                "b",
            ],
        )
        .await,
        2,
    );
    assert_exit(
        &run(
            &scene,
            &[
                "backup",
                "create",
                "x",
                "-n",
                &ns,
                "--selector",
                "app!=x",
                "--storage",
                "s",
            ],
        )
        .await,
        2,
    );
    assert_exit(&run(&scene, &["backup", "nonsense"]).await, 2);
    assert_exit(&run(&scene, &["backup", "get", "snap", "-A"]).await, 2);
    assert_exit(
        &run(
            &scene,
            &["backups", "list", "--bucket", "b", "--provider", "ftp"],
        )
        .await,
        2,
    );
    assert_exit(
        &run(
            &scene,
            &[
                "backup",
                "create",
                "x",
                "-n",
                &ns,
                "--storage",
                "s",
                "--region",
                "r",
            ],
        )
        .await,
        2,
    );
    let misnamed = run(
        &scene,
        &[
            "backups",
            "list",
            "--bucket",
            "b",
            "--encryption-key",
            "/tmp/key.txt",
        ],
    )
    .await;
    assert_exit(&misnamed, 2);
    assert!(
        text(&misnamed.stderr).contains("<id>.key"),
        "{}",
        text(&misnamed.stderr)
    );
}

#[tokio::test]
async fn verify_download_and_diff_read_stored_backups() {
    let scene = Scene::restores("cli-stored").await;
    let src = source(&scene, &[("a", "1"), ("b", "2"), ("c", "3")]).await;
    let first = scene.back_up("before", &[&src.name], &["configmaps"]).await;

    // Change the namespace: a removed, b changed, d added; then a second backup.
    let maps: Api<ConfigMap> = Api::namespaced(scene.client.clone(), &src.name);
    maps.delete("a", &DeleteParams::default()).await.unwrap();
    maps.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "key": "22" } })),
    )
    .await
    .unwrap();
    scene
        .create(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "d", "namespace": src.name },
            "data": { "key": "4" },
        }))
        .await;
    let second = scene.back_up("after", &[&src.name], &["configmaps"]).await;
    let bucket = bucket_args(&scene);

    let diff = run(
        &scene,
        &refs(&with(&["backups", "diff", &first, &second], &bucket)),
    )
    .await;
    assert_exit(&diff, 0);
    let out = text(&diff.stdout);
    let id = |name: &str| format!("configmaps/{}/{name}", src.name);
    assert!(out.contains(&format!("+ {}", id("d"))), "{out}");
    assert!(out.contains(&format!("- {}", id("a"))), "{out}");
    assert!(out.contains(&format!("~ {}", id("b"))), "{out}");
    assert!(out.contains("/data/key: \"2\" -> \"22\""), "{out}");
    let document: Value = serde_json::from_slice(
        &run(
            &scene,
            &refs(&with(
                &["backups", "diff", &first, &second, "-o", "json"],
                &bucket,
            )),
        )
        .await
        .stdout,
    )
    .unwrap();
    assert_eq!(document["changed"][0]["name"], "b");
    assert_eq!(document["changed"][0]["fields"][0]["after"], "22");

    // Against the live cluster: c changed since the second backup, e added, d deleted.
    maps.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "key": "33" } })),
    )
    .await
    .unwrap();
    maps.delete("d", &DeleteParams::default()).await.unwrap();
    scene
        .create(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "e", "namespace": src.name },
            "data": { "key": "5" },
        }))
        .await;
    let live = run(
        &scene,
        &refs(&with(&["backups", "diff", &second, "--live"], &bucket)),
    )
    .await;
    assert_exit(&live, 0);
    let out = text(&live.stdout);
    assert!(
        out.contains(&format!("~ {}", id("c"))) && out.contains("\"3\" -> \"33\""),
        "{out}"
    );
    assert!(out.contains(&format!("+ {}", id("e"))), "{out}");
    assert!(out.contains(&format!("- {}", id("d"))), "{out}");
    // kube-root-ca.crt, which a backup never stores, is not taken for an added object.
    assert!(!out.contains("kube-root-ca.crt"), "{out}");

    // Download: manifest.json and every object, verified.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("after.tar.gz");
    let downloaded = run(
        &scene,
        &refs(&with(
            &[
                "backups",
                "download",
                &second,
                "-o",
                archive.to_str().unwrap(),
            ],
            &bucket,
        )),
    )
    .await;
    assert_exit(&downloaded, 0);
    let mut names = Vec::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&archive).unwrap(),
    ));
    for entry in tar.entries().unwrap() {
        names.push(entry.unwrap().path().unwrap().to_string_lossy().to_string());
    }
    assert!(names.contains(&"manifest.json".to_string()), "{names:?}");
    assert!(
        names.contains(&format!("namespaces/{}/configmaps/d.json", src.name)),
        "{names:?}"
    );
    // An existing file is not overwritten.
    assert_exit(
        &run(
            &scene,
            &refs(&with(
                &[
                    "backups",
                    "download",
                    &second,
                    "-o",
                    archive.to_str().unwrap(),
                ],
                &bucket,
            )),
        )
        .await,
        1,
    );

    // Verify: all good, then a flipped byte and a missing object, each named.
    let verified = run(
        &scene,
        &refs(&with(&["backups", "verify", &second], &bucket)),
    )
    .await;
    assert_exit(&verified, 0);
    assert!(
        text(&verified.stdout).starts_with("OK: "),
        "{}",
        text(&verified.stdout)
    );
    let storage = scene.storage();
    let flipped = format!("{second}/namespaces/{}/configmaps/b.json", src.name);
    let mut bytes = storage.get(&flipped).await.unwrap().to_vec();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    storage.put(&flipped, Bytes::from(bytes)).await.unwrap();
    let missing = format!("{second}/namespaces/{}/configmaps/c.json", src.name);
    storage.delete(&missing).await.unwrap();
    let damaged = run(
        &scene,
        &refs(&with(
            &["backups", "verify", &second, "-o", "json"],
            &bucket,
        )),
    )
    .await;
    assert_exit(&damaged, 1);
    let report: Value = serde_json::from_slice(&damaged.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{report}");
    assert!(problems[0]["key"].as_str().unwrap().ends_with("b.json"));
    assert!(
        problems[0]["error"].as_str().unwrap().contains("sha256"),
        "{report}"
    );
    assert!(problems[1]["key"].as_str().unwrap().ends_with("c.json"));
    assert!(
        problems[1]["error"].as_str().unwrap().contains("not found"),
        "{report}"
    );
    let human = run(
        &scene,
        &refs(&with(&["backups", "verify", &second], &bucket)),
    )
    .await;
    assert_exit(&human, 1);
    assert!(
        text(&human.stdout).starts_with("DAMAGED: 2 of"),
        "{}",
        text(&human.stdout)
    );

    // Inspect: counts by namespace and type.
    let inspected: Value = serde_json::from_slice(
        &run(
            &scene,
            &refs(&with(
                &["backups", "inspect", &first, "-o", "json"],
                &bucket,
            )),
        )
        .await
        .stdout,
    )
    .unwrap();
    // a, b and c (kube-root-ca.crt is never stored).
    assert_eq!(inspected["counts"][format!("{}/configmaps", src.name)], 3);
    assert_eq!(inspected["format"], "objects");
}

/// A packed run verifies and inspects like any other; a changed Secret shows which key changed,
/// never its value.
#[tokio::test]
async fn packed_runs_verify_and_secret_values_stay_hidden_in_diffs() {
    let scene = Scene::restores("cli-packed").await;
    let src = source(&scene, &[("a", "1")]).await;
    let secret = |value: &str| {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "db", "namespace": src.name },
            "stringData": { "password": value },
        })
    };
    scene.create(secret("first-password-value")).await;
    let packed = |name: &str| {
        let mut doc = scene.backup_json(name, &[&src.name], &["configmaps", "secrets"]);
        doc["spec"]["format"] = json!("packed");
        doc
    };
    scene.create_backup(&packed("p1")).await;
    let first = scene
        .wait_finished("p1")
        .await
        .status
        .unwrap()
        .backup_path
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(scene.client.clone(), &src.name);
    secrets
        .patch(
            "db",
            &PatchParams::apply("cli-test").force(),
            &Patch::Apply(&secret("second-password-value")),
        )
        .await
        .unwrap();
    scene.create_backup(&packed("p2")).await;
    let second = scene
        .wait_finished("p2")
        .await
        .status
        .unwrap()
        .backup_path
        .unwrap();
    let bucket = bucket_args(&scene);

    let verified = run(
        &scene,
        &refs(&with(&["backups", "verify", &second], &bucket)),
    )
    .await;
    assert_exit(&verified, 0);
    assert!(
        text(&verified.stdout).starts_with("OK: 2 objects"),
        "{}",
        text(&verified.stdout)
    );
    let inspected: Value = serde_json::from_slice(
        &run(
            &scene,
            &refs(&with(
                &["backups", "inspect", &second, "-o", "json"],
                &bucket,
            )),
        )
        .await
        .stdout,
    )
    .unwrap();
    assert_eq!(inspected["format"], "packed");

    let diff = run(
        &scene,
        &refs(&with(
            &["backups", "diff", &first, &second, "-o", "json"],
            &bucket,
        )),
    )
    .await;
    assert_exit(&diff, 0);
    let out = text(&diff.stdout);
    assert!(
        out.contains("/data/password") && out.contains("(redacted)"),
        "{out}"
    );
    for value in ["first-password-value", "second-password-value"] {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(!out.contains(value) && !out.contains(&encoded), "{out}");
    }
}

/// `--wait` on a terminal draws a progress bar; without one it prints plain lines; Ctrl-C
/// stops the waiting, not the run, and says so.
#[tokio::test]
async fn waiting_shows_progress_and_ctrl_c_leaves_the_run_alone() {
    let scene = Scene::restores("cli-wait").await;
    credentials_secret(&scene).await;
    let src = source(&scene, &[("a", "1")]).await;

    // Without a terminal: plain lines on stderr, no escape sequences.
    let plain = run(
        &scene,
        &refs(&create_backup_args(&scene, "plain", &src.name, &["--wait"])),
    )
    .await;
    assert_exit(&plain, 0);
    let err = text(&plain.stderr);
    assert!(err.contains("objects") && !err.contains('\u{1b}'), "{err}");

    // On a pseudo-terminal (util-linux `script`): the bar's escape sequences.
    let args = create_backup_args(&scene, "tty", &src.name, &["--wait"]);
    let shell_line = std::iter::once(BIN.to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let tty = tokio::process::Command::new("script")
        .args(["-qec", &shell_line, "/dev/null"])
        .env("KUBECONFIG", &scene.env.kubeconfig)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("TERM", "xterm")
        .output()
        .await
        .unwrap();
    assert_exit(&tty, 0);
    let out = text(&tty.stdout);
    assert!(out.contains('\u{1b}') && out.contains("objects"), "{out:?}");
    assert!(out.contains("Completed"), "{out:?}");

    // A Backup no operator runs (another namespace): Ctrl-C ends the wait with 130.
    let idle = scene.new_namespace("cli-idle").await;
    let mut args = create_backup_args(&scene, "idle", &src.name, &["--wait"]);
    args[4] = idle.name.clone();
    let child = tokio::process::Command::from(command(&scene, &refs(&args)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let status = Command::new("kill")
        .args(["-INT", &child.id().expect("running").to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let interrupted = child.wait_with_output().await.unwrap();
    assert_exit(&interrupted, 130);
    assert!(
        text(&interrupted.stderr).contains("goes on in the cluster"),
        "{}",
        text(&interrupted.stderr)
    );
}

/// A team member, not the admin: a ServiceAccount with the `admin` role in its own namespace,
/// its own token in its kubeconfig. It backs up and restores its namespace through the CLI; a
/// backup of a namespace it may not read ends PartiallyFailed (exit 3) and says why; listing
/// every namespace is refused with the API server's reason (exit 1).
#[tokio::test]
async fn a_team_member_uses_the_cli_with_its_own_rights() {
    let scene = Scene::restores("cli-tenant").await;
    credentials_secret(&scene).await;
    let ns = scene.namespace().to_string();
    scene
        .create(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "team-settings", "namespace": ns },
            "data": { "key": "v" },
        }))
        .await;
    let tenant = scene.namespace_admin("cli-member").await;
    let token = common::tenant::service_account_token(&scene.client, &ns, "cli-member").await;
    let kubeconfig =
        common::tenant::kubeconfig_file_with_token(&scene.env, &token, "cli-tenant", &ns);
    let as_member = |args: Vec<String>| {
        let mut command = command(&scene, &refs(&args));
        command.env("KUBECONFIG", &kubeconfig);
        tokio::process::Command::from(command)
    };

    let mut args = with(
        &[
            "backup",
            "create",
            "mine",
            "-n",
            &ns,
            "--namespaces",
            &ns,
            "--types",
            "configmaps",
        ],
        &bucket_args(&scene),
    );
    args.extend([
        "--credentials-secret".into(),
        "s3-creds".into(),
        "--wait".into(),
        "-o".into(),
        "json".into(),
    ]);
    let created = as_member(args).output().await.unwrap();
    assert_exit(&created, 0);
    let backup: Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(
        backup["status"]["lastRun"]["requester"],
        json!(tenant.username)
    );

    let other = scene.new_namespace("cli-other").await;
    let mut args = with(
        &[
            "backup",
            "create",
            "theirs",
            "-n",
            &ns,
            "--namespaces",
            &other.name,
        ],
        &bucket_args(&scene),
    );
    args.extend([
        "--credentials-secret".into(),
        "s3-creds".into(),
        "--wait".into(),
    ]);
    // The operator reads as the member: the namespace is an item error, the run partial (3).
    let refused = as_member(args).output().await.unwrap();
    assert_exit(&refused, 3);
    let out = text(&refused.stdout);
    assert!(
        out.contains("PartiallyFailed") && out.contains(&other.name) && out.contains("forbidden"),
        "{out}"
    );

    let all = as_member(vec!["backup".into(), "get".into(), "-A".into()])
        .output()
        .await
        .unwrap();
    assert_exit(&all, 1);
    assert!(
        text(&all.stderr).contains("forbidden"),
        "{}",
        text(&all.stderr)
    );

    let restored = as_member(
        [
            "restore",
            "create",
            "back",
            "-n",
            &ns,
            "--from-backup",
            "mine",
            "--conflict",
            "overwrite",
            "--wait",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
    .output()
    .await
    .unwrap();
    assert_exit(&restored, 0);
    assert!(
        text(&restored.stdout).contains(&format!("run as:      {}", tenant.username)),
        "{}",
        text(&restored.stdout)
    );
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(
            script.contains("cluster-backup") && script.contains("restore"),
            "{shell}"
        );
    }
}

#[test]
fn every_command_has_help_with_examples() {
    for command in [
        &["backup", "create"][..],
        &["backup", "get"],
        &["backup", "describe"],
        &["backup", "delete"],
        &["backup", "run"],
        &["restore", "create"],
        &["restore", "get"],
        &["restore", "describe"],
        &["backups", "list"],
        &["backups", "inspect"],
        &["backups", "verify"],
        &["backups", "diff"],
        &["backups", "download"],
        &["completion"],
    ] {
        let out = Command::new(BIN)
            .args(command)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("Example"), "{command:?}");
    }
}
