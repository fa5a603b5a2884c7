//! The alert rules (config/prometheus/alerts.yaml) are valid Prometheus rules, and their unit
//! tests (config/prometheus/alerts_test.yaml: for each alert, series that must fire it and
//! series that must not) pass — checked by promtool, built by `scripts/tools.sh` (or
//! `PROMTOOL=/path/to/promtool`); the tests fail, never skip, when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn promtool() -> PathBuf {
    if let Ok(path) = std::env::var("PROMTOOL") {
        return PathBuf::from(path);
    }
    let out = Command::new(repo_root().join("scripts/tools.sh"))
        .args(["path", "promtool"])
        .output()
        .expect("run scripts/tools.sh");
    assert!(
        out.status.success(),
        "\n\npromtool is not built ({}).\nBuild it with:   scripts/tools.sh build\n\n",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn promtool_ok(args: &[&str]) -> String {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(repo_root().join("config/prometheus"))
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn alert_rules_are_valid() {
    let out = promtool_ok(&["check", "rules", "alerts.yaml"]);
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}");
}

#[test]
fn alert_rules_fire_when_they_should_and_only_then() {
    let out = promtool_ok(&["test", "rules", "alerts_test.yaml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert has a test that fires it and one that must stay quiet.
    let tests =
        std::fs::read_to_string(repo_root().join("config/prometheus/alerts_test.yaml")).unwrap();
    for alert in [
        "BackupFailed",
        "BackupMissed",
        "StorageUnavailable",
        "OperatorDown",
    ] {
        assert!(
            tests.contains(&format!("name: {alert} fires")),
            "no firing test for {alert}"
        );
        assert!(
            tests.contains(&format!("name: {alert} stays quiet")),
            "no quiet test for {alert}"
        );
        assert!(tests.contains(&format!("alertname: {alert}")), "{alert}");
    }
}
