//! `--wait`: follows a Backup's run or a Restore until it ends, with a progress bar on a
//! terminal (objects, bytes, rate, ETA from the status' progress) and plain lines otherwise.
//! Ctrl-C stops the waiting only; the operator's run goes on, and the CLI says so.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use kube::Api;

use super::output::{self, Explain};
use crate::api::{Backup, BackupPhase, Restore, RestorePhase};

/// How often the object is read again.
const POLL: Duration = Duration::from_millis(500);
/// Without a terminal, a progress line at most this often (and on every phase change).
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// What the waiting shows: a bar on a terminal, lines on stderr otherwise.
enum Display {
    Bar(ProgressBar),
    Plain {
        last: Option<String>,
        printed: std::time::Instant,
    },
}

impl Display {
    fn new() -> Display {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            Display::Bar(bar)
        } else {
            Display::Plain {
                last: None,
                printed: std::time::Instant::now(),
            }
        }
    }

    /// `done`/`total` objects (total unknown: 0), `bytes`, and a phase word.
    fn update(&mut self, phase: &str, done: u64, total: u64, bytes: Option<u64>) {
        let size = bytes
            .map(|b| format!(", {}", output::bytes(b)))
            .unwrap_or_default();
        match self {
            Display::Bar(bar) => {
                if total > 0 {
                    if bar.length() != Some(total) {
                        bar.set_length(total);
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{spinner} {msg:12} [{bar:30}] {pos}/{len} objects{prefix} ({per_sec}, ETA {eta})",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                    }
                } else if bar.length().is_some() {
                    bar.unset_length();
                }
                if total == 0 {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {msg:12} {pos} objects{prefix} ({per_sec})",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                }
                bar.set_message(phase.to_string());
                bar.set_prefix(size);
                bar.set_position(done);
            }
            Display::Plain { last, printed } => {
                let line = if total > 0 {
                    format!("{phase}: {done}/{total} objects{size}")
                } else {
                    format!("{phase}: {done} objects{size}")
                };
                let phase_changed = last
                    .as_deref()
                    .map(|l| !l.starts_with(&format!("{phase}:")))
                    != Some(false);
                if phase_changed
                    || (last.as_deref() != Some(line.as_str()) && printed.elapsed() >= PLAIN_EVERY)
                {
                    eprintln!("{line}");
                    *printed = std::time::Instant::now();
                    *last = Some(line);
                }
            }
        }
    }

    /// The bar (a handle to it), to clear it from outside the loop that updates it.
    fn bar(&self) -> Option<ProgressBar> {
        match self {
            Display::Bar(bar) => Some(bar.clone()),
            Display::Plain { .. } => None,
        }
    }
}

/// Waits for `ctrl_c` or `done`; `None` when interrupted (after saying the run goes on).
async fn until_done_or_interrupted<T>(
    bar: Option<ProgressBar>,
    what: &str,
    done: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    let finish = || {
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
    };
    tokio::select! {
        result = done => {
            finish();
            result.map(Some)
        }
        _ = tokio::signal::ctrl_c() => {
            finish();
            eprintln!("Stopped waiting. {what} goes on in the cluster; follow it with `cluster-backup {} get`.",
                if what.starts_with("The restore") { "restore" } else { "backup" });
            Ok(None)
        }
    }
}

/// Waits until the Backup's run ends: the run asked for with run-now value `trigger`, else the
/// first run (a one-shot backup's only one). `None`: interrupted with Ctrl-C.
pub async fn backup(
    api: &Api<Backup>,
    name: &str,
    trigger: Option<&str>,
) -> anyhow::Result<Option<Backup>> {
    let mut display = Display::new();
    let bar = display.bar();
    let follow = async move {
        // What the previous run stored: the expected total, for an ETA.
        let mut expected = 0u64;
        loop {
            let backup = api
                .get(name)
                .await
                .explain(|| format!("cannot read Backup {name}"))?;
            let status = backup.status.clone().unwrap_or_default();
            let ours = match trigger {
                Some(value) => status.last_manual_trigger.as_deref() == Some(value),
                None => true,
            };
            if let Some(run) = status.current_run.as_ref().filter(|_| ours) {
                display.update(
                    "Running",
                    u64::try_from(run.objects).unwrap_or(0),
                    expected,
                    Some(u64::try_from(run.bytes).unwrap_or(0)),
                );
            } else if ours && status.last_run.is_some() {
                return Ok(backup);
            } else if trigger.is_none() && status.phase == Some(BackupPhase::Failed) {
                // An invalid spec fails without any run.
                return Ok(backup);
            } else {
                if let Some(last) = &status.last_run {
                    expected = u64::try_from(last.objects).unwrap_or(0);
                }
                let phase = status
                    .phase
                    .map(|p| format!("{p:?}"))
                    .unwrap_or_else(|| "New".into());
                display.update(&phase, 0, 0, None);
            }
            tokio::time::sleep(POLL).await;
        }
    };
    until_done_or_interrupted(bar, "The backup", follow).await
}

/// Waits until the Restore ends. `None`: interrupted with Ctrl-C.
pub async fn restore(api: &Api<Restore>, name: &str) -> anyhow::Result<Option<Restore>> {
    let mut display = Display::new();
    let bar = display.bar();
    let follow = async move {
        loop {
            let restore = api
                .get(name)
                .await
                .explain(|| format!("cannot read Restore {name}"))?;
            let status = restore.status.clone().unwrap_or_default();
            match status.phase {
                Some(
                    RestorePhase::Completed | RestorePhase::PartiallyFailed | RestorePhase::Failed,
                ) => {
                    return Ok(restore);
                }
                phase => {
                    let progress = status.progress.clone().unwrap_or_default();
                    display.update(
                        &phase
                            .map(|p| format!("{p:?}"))
                            .unwrap_or_else(|| "New".into()),
                        u64::try_from(progress.processed).unwrap_or(0),
                        u64::try_from(progress.total).unwrap_or(0),
                        None,
                    );
                }
            }
            tokio::time::sleep(POLL).await;
        }
    };
    until_done_or_interrupted(bar, "The restore", follow).await
}
