//! `cluster-backup run` as its own process, for the tests that kill, crash or stop it.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cluster_backup::engine::faults::{CRASH_ENV, PAUSE_ENV};

use super::{TestEnv, repo_root};

/// The variables `cluster-backup run` reads; a test sets only what it means to.
const OPERATOR_ENV: [&str; 18] = [
    "SINGLE_TENANT",
    "METRICS_BIND_ADDRESS",
    "POD_NAMESPACE",
    CRASH_ENV,
    PAUSE_ENV,
    "WATCH_NAMESPACE",
    "BACKUP_CONCURRENCY",
    "RESTORE_CONCURRENCY",
    "RESTORE_OBJECTS_IN_FLIGHT",
    "BACKUP_LISTS_IN_FLIGHT",
    "KUBE_API_QPS",
    "KUBE_API_BURST",
    "RUN_RETRIES",
    "SHUTDOWN_TIMEOUT",
    "POD_NAME",
    "LEADER_ELECT",
    "LEADER_ELECTION_LEASE",
    "LEADER_ELECTION_NAMESPACE",
];

/// Where [`OperatorProcess::start`] appends the output of the process it starts.
pub fn log_path(log_dir: &str, log: &str) -> PathBuf {
    repo_root()
        .join("target")
        .join(log_dir)
        .join(format!("{log}.log"))
}

/// The operator binary running `run --namespace NAMESPACE ARGS`, its output appended to
/// `target/<log_dir>/<log>.log`. Killed when dropped.
pub struct OperatorProcess {
    child: Child,
}

impl OperatorProcess {
    /// `env_vars` are e.g. a crash point (`CLUSTER_BACKUP_CRASH_AT`) or a pause point
    /// (`CLUSTER_BACKUP_PAUSE_AT`). No metrics port unless `args` asks for one, so operators
    /// of tests running in parallel never collide on `:8080`.
    pub fn start(
        env: &TestEnv,
        namespace: &str,
        args: &[&str],
        env_vars: &[(&str, &str)],
        log_dir: &str,
        log: &str,
    ) -> OperatorProcess {
        let path = log_path(log_dir, log);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_cluster-backup"));
        command
            .args(["run", "--namespace", namespace])
            .args(args)
            .args(
                (!args.iter().any(|a| a.starts_with("--metrics-bind-address")))
                    .then_some(["--metrics-bind-address", "0"])
                    .into_iter()
                    .flatten(),
            )
            .env("KUBECONFIG", &env.kubeconfig)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        for var in OPERATOR_ENV {
            command.env_remove(var);
        }
        for (var, value) in env_vars {
            command.env(var, value);
        }
        OperatorProcess {
            child: command.spawn().expect("start cluster-backup run"),
        }
    }

    /// The highest resident memory of the process so far (`VmHWM`), in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib / 1024
    }

    /// SIGTERM, as Kubernetes sends a pod it stops.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// `kill -9`, and the process reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to end by itself (a crash point, a shutdown); `None` on timeout.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free local port (free a moment ago): for an operator's admin port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// `GET path` on an operator's admin port on 127.0.0.1: status code and body (`None`: no
/// answer).
pub async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}
