//! `cluster-backup describe NAME`: a Backup's status and the objects its newest backup stored
//! (read from that backup's manifest).

use std::fmt::Write as _;

use super::output::{self, Explain as _};
use kube::{Api, Client};

use crate::api::Backup;
use crate::core::layout;
use crate::core::requester::RunAs;
use crate::k8s::locations::{Access, open_storage};

pub async fn describe(client: &Client, namespace: &str, name: &str) -> anyhow::Result<String> {
    let api: Api<Backup> = Api::namespaced(client.clone(), namespace);
    let backup = api
        .get(name)
        .await
        .explain(|| format!("cannot read Backup {namespace}/{name}"))?;
    let status = backup.status.clone().unwrap_or_default();
    let mut out = String::new();
    writeln!(out, "Backup {namespace}/{name}")?;
    writeln!(
        out,
        "  schedule:      {}",
        backup.spec.schedule.as_deref().unwrap_or("<one-shot>")
    )?;
    writeln!(
        out,
        "  phase:         {}",
        output::shown(status.phase, "New")
    )?;
    writeln!(
        out,
        "  message:       {}",
        status.message.as_deref().unwrap_or("")
    )?;
    writeln!(out, "  backups:       {}", status.backup_count)?;
    if let Some(next) = &status.next_backup_time {
        writeln!(out, "  next backup:   {}", next.0)?;
    }
    if let Some(run) = &status.last_run {
        writeln!(
            out,
            "  last run:      {} ({}, {} objects, {} failed) at {}",
            output::shown(run.result, "Running"),
            run.trigger,
            run.objects,
            run.failed,
            run.backup_path
        )?;
        if let Some(requester) = &run.requester {
            writeln!(out, "  run as:        {requester}")?;
        }
        for err in &run.errors {
            writeln!(out, "    error: {err}")?;
        }
    }
    if !status.resource_counts.is_empty() {
        writeln!(out, "  resource counts:")?;
        for (key, count) in &status.resource_counts {
            writeln!(out, "    {key}: {count}")?;
        }
    }
    let Some(path) = status.backup_path.as_deref() else {
        writeln!(out, "  (no complete backup yet)")?;
        return Ok(out);
    };
    // The caller's own rights, like every other read of this command; a ClusterStorageLocation's
    // Secret is read from the operator's namespace (POD_NAMESPACE, as for `run`).
    let operator_namespace = std::env::var("POD_NAMESPACE")
        .unwrap_or_else(|_| crate::controller::DEFAULT_OPERATOR_NAMESPACE.to_string());
    let access = Access {
        operator: client,
        requester: client,
        run_as: &RunAs::Operator,
        operator_namespace: &operator_namespace,
    };
    let store = open_storage(&access, namespace, &backup.spec.storage_location)
        .await?
        .storage;
    // The same bounded, checked read a restore makes (the bucket is untrusted).
    let manifest = crate::engine::restore::read_manifest(&store, path).await?;
    writeln!(out, "  stored at {} under {path}/:", store.describe())?;
    for entry in &manifest.objects {
        let place = match &entry.location {
            Some(at) => format!("  in pack {} at {}", at.pack, at.offset),
            None => String::new(),
        };
        writeln!(
            out,
            "    {:<70} {:>7} B  sha256 {}{place}",
            entry.key,
            entry.size,
            &entry.sha256.to_string()[..12]
        )?;
    }
    writeln!(
        out,
        "    {:<70} (commit marker: {} objects, {} bytes)",
        layout::MANIFEST_FILE,
        manifest.total_objects,
        manifest.total_bytes
    )?;
    Ok(out)
}
