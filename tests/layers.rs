//! Layers only look down (ARCHITECTURE.md): a module may use its own layer and the layers below
//! it, never one above. This test reads the sources, so a wrong `use` fails the suite with the
//! file and the line, long before the design quietly turns into a web.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// Bottom to top. `cli` sits above `controller` because `cluster-backup run` starts it.
const LAYERS: [&str; 7] = [
    "api",
    "core",
    "storage",
    "k8s",
    "engine",
    "controller",
    "cli",
];

/// What a layer must not name at all, even through an external crate.
const FORBIDDEN: [(&str, &[&str]); 3] = [
    (
        "api",
        &["object_store", "kube::Client", "kube::Api", "tokio"],
    ),
    (
        "core",
        &[
            "object_store",
            "kube::Client",
            "kube::Api",
            "kube::runtime",
            "tokio",
            "std::fs",
            "reqwest",
        ],
    ),
    ("storage", &["kube", "k8s_openapi"]),
];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's non-test code: unit tests may use anything (they sit at the end of a file).
fn production_code(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Code lines only: comments and doc comments may name any layer.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_start()))
        .filter(|(_, line)| !line.starts_with("//"))
}

fn layer_violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let Some(layer) = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .filter(|first| relative.components().count() > 1 || !first.ends_with(".rs"))
        else {
            continue; // lib.rs, main.rs
        };
        let Some(own) = rank(layer) else {
            problems.push(format!(
                "src/{layer}: not a known layer; add it to ARCHITECTURE.md and tests/layers.rs"
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in code_lines(production_code(&text)) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                // `crate::{a, b::c}` names several modules at once.
                let group = rest
                    .strip_prefix('{')
                    .map(|g| g.split('}').next().unwrap_or(g));
                let names: Vec<&str> = match group {
                    Some(group) => group.split(',').collect(),
                    None => vec![rest],
                };
                for name in names {
                    let target: String = name
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let Some(target_rank) = rank(&target) else {
                        continue;
                    };
                    if target_rank <= own {
                        continue;
                    }
                    problems.push(format!(
                        "src/{}:{number}: layer `{layer}` uses `{target}`, a layer above it",
                        relative.display()
                    ));
                }
            }
            if let Some((_, names)) = FORBIDDEN.iter().find(|(l, _)| *l == layer) {
                for name in *names {
                    let mentions = line.match_indices(name).any(|(at, _)| {
                        let before = line[..at].chars().next_back();
                        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                    });
                    if mentions {
                        problems.push(format!(
                            "src/{}:{number}: layer `{layer}` must not use `{name}`",
                            relative.display()
                        ));
                    }
                }
            }
        }
    }
    problems
}

#[test]
fn layers_only_look_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = layer_violations(&src);
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_top_level_module_is_a_layer() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| {
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))
        })
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let mut sorted_layers = LAYERS.to_vec();
    sorted_layers.sort();
    assert_eq!(modules, sorted_layers);
}

#[test]
fn the_check_catches_an_upward_use() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core");
    std::fs::create_dir_all(&core).unwrap();
    std::fs::write(
        core.join("plan.rs"),
        "//! uses crate::engine in a comment only\nuse crate::engine::backup;\nuse crate::{api, cli::x};\nuse tokio::time;\n#[cfg(test)]\nmod tests { use crate::cli; }\n",
    )
    .unwrap();
    let problems = layer_violations(dir.path());
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("core/plan.rs:2: layer `core` uses `engine`"));
    assert!(problems[1].contains("core/plan.rs:3: layer `core` uses `cli`"));
    assert!(problems[2].contains("must not use `tokio`"));
}
