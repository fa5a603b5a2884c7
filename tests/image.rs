//! The operator's container image (scripts/image.sh): its tag follows Cargo.toml everywhere
//! it is named, and the built image has the right config, a layer with the binary, its
//! libraries and no shell, and a binary that runs with nothing but what the image carries.
//!
//! The image checks need the image: `scripts/image.sh && cargo test --test image -- --ignored`
//! (a release build, several minutes; `.ci/run` does it as a step of its own).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const NAME: &str = "cluster-backup-operator";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tag() -> String {
    format!("{NAME}:{}", env!("CARGO_PKG_VERSION"))
}

#[test]
fn manifests_name_the_image_of_this_version() {
    let text = std::fs::read_to_string(repo_root().join("config/manager/manager.yaml")).unwrap();
    let images: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image:"))
        .map(|v| v.split('#').next().unwrap().trim())
        .collect();
    assert_eq!(
        images,
        [tag().as_str()],
        "config/manager/manager.yaml must use the image tag of Cargo.toml's version, never latest"
    );
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("ARG VERSION={}", env!("CARGO_PKG_VERSION"))),
        "Dockerfile's VERSION = Cargo.toml's"
    );
}

/// The OCI layout scripts/image.sh wrote.
struct Image {
    layout: PathBuf,
    index: Value,
    manifest: Value,
    config: Value,
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let data = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    // Content-addressed: the name is the content's sha256.
    let actual = Command::new("sha256sum")
        .arg(layout.join("blobs/sha256").join(hex))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&actual.stdout).starts_with(hex),
        "blob {digest} is corrupt"
    );
    data
}

fn image() -> Image {
    let layout = repo_root().join("target/image/oci");
    let index_text = std::fs::read_to_string(layout.join("index.json")).unwrap_or_else(|e| {
        panic!(
            "\n\nNo image in {} ({e}).\nBuild it with:   scripts/image.sh\n\n",
            layout.display()
        )
    });
    let index: Value = serde_json::from_str(&index_text).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: Value = serde_json::from_slice(&blob(&layout, &digest)).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let config: Value = serde_json::from_slice(&blob(&layout, &config_digest)).unwrap();
    Image {
        layout,
        index,
        manifest,
        config,
    }
}

/// The image's single layer, unpacked into a temporary folder.
fn unpack(image: &Image) -> tempfile::TempDir {
    let layers = image.manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer");
    let digest = layers[0]["digest"].as_str().unwrap();
    blob(&image.layout, digest);
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(
            image
                .layout
                .join("blobs/sha256")
                .join(digest.strip_prefix("sha256:").unwrap()),
        )
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
#[ignore = "needs scripts/image.sh first"]
fn image_config_has_entrypoint_user_and_labels() {
    let image = image();
    assert_eq!(
        image.index["manifests"][0]["annotations"]["io.containerd.image.name"],
        tag().as_str()
    );
    assert_eq!(
        image.index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        env!("CARGO_PKG_VERSION")
    );
    let config = &image.config["config"];
    assert_eq!(config["Entrypoint"], serde_json::json!(["/cluster-backup"]));
    assert_eq!(config["User"], "65532:65532");
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert!(
        labels["org.opencontainers.image.source"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(image.config["os"], "linux");
    // The docker-archive view of the same image carries the tag.
    let archive = repo_root().join(format!(
        "target/image/{NAME}-{}.tar",
        env!("CARGO_PKG_VERSION")
    ));
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(&archive)
        .arg("manifest.json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: no manifest.json",
        archive.display()
    );
    let docker: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(docker[0]["RepoTags"], serde_json::json!([tag()]));
}

#[test]
#[ignore = "needs scripts/image.sh first"]
fn image_layer_has_the_binary_and_no_shell() {
    let image = image();
    let root = unpack(&image);
    let files = files(root.path());
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    assert!(names.contains(&"cluster-backup".to_string()), "{names:?}");
    assert!(names.contains(&"etc/ssl/certs/ca-certificates.crt".to_string()));
    for shell in ["sh", "bash", "dash", "ash", "busybox"] {
        assert!(
            !files
                .iter()
                .any(|f| f.file_name().is_some_and(|n| n == shell)),
            "the image has a shell ({shell}): {names:?}"
        );
    }
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("nonroot:x:65532:65532:")),
        "{passwd}"
    );
    // Only the binary, its libraries and the loader are executables.
    for f in &files {
        let name = f.display().to_string();
        assert!(
            name == "cluster-backup" || name.contains(".so") || name.starts_with("etc/"),
            "unexpected file {name}"
        );
    }
}

/// Runs the image's binary with the image's own loader and libraries only (not the host's):
/// what the container would run.
fn run_in_image(root: &Path, args: &[&str]) -> (bool, String) {
    let files = files(root);
    let loader = files.iter().find(|f| {
        f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ld-linux"))
    });
    let mut command = match loader {
        Some(loader) => {
            let mut dirs: Vec<String> = files
                .iter()
                .filter(|f| f.to_string_lossy().contains(".so"))
                .map(|f| root.join(f.parent().unwrap()).display().to_string())
                .collect();
            dirs.sort();
            dirs.dedup();
            let mut c = Command::new(root.join(loader));
            c.args(["--inhibit-cache", "--library-path", &dirs.join(":")])
                .arg(root.join("cluster-backup"));
            c
        }
        // A static binary.
        None => Command::new(root.join("cluster-backup")),
    };
    let out = command.args(args).env_clear().output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.success() {
        true => (true, stdout),
        false => (
            false,
            format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
        ),
    }
}

#[test]
#[ignore = "needs scripts/image.sh first"]
fn image_binary_runs_and_prints_the_crds() {
    let image = image();
    let root = unpack(&image);
    let (ok, version) = run_in_image(root.path(), &["--version"]);
    assert!(ok, "{version}");
    assert_eq!(
        version.trim(),
        format!("cluster-backup {}", env!("CARGO_PKG_VERSION"))
    );
    let (ok, crds) = run_in_image(root.path(), &["crd"]);
    assert!(ok, "{crds}");
    let expected = std::fs::read_to_string(repo_root().join("config/crd/crds.yaml")).unwrap();
    assert!(
        crds == expected,
        "the image's `crd` output differs from config/crd/crds.yaml"
    );
}
