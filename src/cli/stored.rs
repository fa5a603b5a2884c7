//! `backups list|inspect|verify|download|diff`: stored backups read straight from the bucket
//! (no operator needed; `diff --live` also reads the cluster with the caller's kubeconfig).
//! Every object is read through the same bounded, verified path a restore uses.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use futures::{StreamExt, TryStreamExt};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::Value;

use super::StorageArgs;
use super::output::{self, Exit, Explain, OutputFormat, Table, UsageError};
use crate::core::diff::{self, Diff, ObjectId};
use crate::core::manifest::{Manifest, ManifestEntry};
use crate::engine::packed::PackReader;
use crate::storage::Storage;

/// Objects read at once by verify, download and diff.
const READS_IN_FLIGHT: usize = 8;

#[derive(Subcommand, Debug)]
pub enum BackupsCommand {
    /// List the complete backups in a bucket (from their manifests), newest first, with the
    /// `backupPath` a Restore takes; incomplete runs are listed separately.
    #[command(after_help = "Example:
  cluster-backup backups list --bucket k8s-backups --endpoint http://127.0.0.1:9000")]
    List {
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// What one stored backup holds: counts by namespace and type, errors, cluster version,
    /// size, format and encryption.
    #[command(after_help = "Example:
  cluster-backup backups inspect backups/team-a/nightly/2026-11-30T02-00-00Z --bucket k8s-backups")]
    Inspect(PathArgs),
    /// Download every object of a stored backup and check it against the manifest's sha256
    /// (and, when encrypted, its authentication tag). Exit code 1 on any damaged or missing
    /// object.
    #[command(after_help = "Example:
  cluster-backup backups verify backups/team-a/nightly/2026-11-30T02-00-00Z --bucket k8s-backups")]
    Verify(PathArgs),
    /// Write a stored backup as a .tar.gz: manifest.json and every object as JSON at its key,
    /// each verified before it is written.
    #[command(after_help = "Example:
  cluster-backup backups download backups/team-a/nightly/2026-11-30T02-00-00Z -o nightly.tar.gz --bucket k8s-backups")]
    Download {
        /// The backup path.
        path: String,
        /// The file to write (not overwritten if it exists).
        #[arg(short, long, value_name = "FILE.tar.gz")]
        output: PathBuf,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Added, removed and changed objects between two stored backups, or between a stored
    /// backup and the live cluster (--live), compared after the cleaning a restore applies;
    /// for changed objects, the changed fields.
    #[command(after_help = "Examples:
  cluster-backup backups diff backups/team-a/nightly/2026-11-29T02-00-00Z backups/team-a/nightly/2026-11-30T02-00-00Z --bucket k8s-backups
  cluster-backup backups diff backups/team-a/nightly/2026-11-30T02-00-00Z --live --bucket k8s-backups")]
    Diff {
        /// The earlier backup path.
        path: String,
        /// The later backup path (or --live).
        #[arg(required_unless_present = "live", conflicts_with = "live")]
        other: Option<String>,
        /// Compare with the objects in the cluster now (the current kubeconfig's).
        #[arg(long)]
        live: bool,
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

#[derive(Args, Debug)]
pub struct PathArgs {
    /// The backup path (a Backup's `status.backupPath`, or from `backups list`).
    pub path: String,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

pub async fn run(command: BackupsCommand) -> anyhow::Result<Exit> {
    match command {
        BackupsCommand::List { storage, output } => list(&storage.storage()?, output).await,
        BackupsCommand::Inspect(args) => {
            inspect(&args.storage.storage()?, &args.path, args.output).await
        }
        BackupsCommand::Verify(args) => {
            verify(&args.storage.storage()?, &args.path, args.output).await
        }
        BackupsCommand::Download {
            path,
            output,
            storage,
        } => download(&storage.storage()?, &path, &output).await,
        BackupsCommand::Diff {
            path,
            other,
            live,
            storage,
            output,
        } => {
            let storage = storage.storage()?;
            let diff = match (other, live) {
                (Some(other), false) => diff_stored(&storage, &path, &other).await?,
                (None, true) => {
                    let client = Client::try_default()
                        .await
                        .explain(|| "cannot connect to Kubernetes (for --live)".to_string())?;
                    diff_live(&storage, &client, &path).await?
                }
                _ => return Err(UsageError("give a second backup path, or --live".into()).into()),
            };
            match output::structured(output, &diff)? {
                Some(text) => print!("{text}"),
                None => print!("{}", render_diff(&diff)),
            }
            Ok(Exit::Ok)
        }
    }
}

async fn read_manifest(storage: &Storage, path: &str) -> anyhow::Result<Manifest> {
    let path = path.trim_end_matches('/');
    crate::engine::restore::read_manifest(storage, path)
        .await
        .explain(|| format!("cannot read the backup at {path} in {}", storage.describe()))
}

async fn list(storage: &Storage, format: OutputFormat) -> anyhow::Result<Exit> {
    let catalogue = crate::storage::catalogue::list(storage).await?;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Listed<'a> {
        backup_path: &'a str,
        backup: String,
        completed_at: String,
        result: &'a str,
        objects: u64,
        bytes: u64,
        errors: usize,
        cluster_version: &'a str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct NotRestorable<'a> {
        backup_path: &'a str,
        reason: &'a str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Document<'a> {
        location: String,
        complete: Vec<Listed<'a>>,
        not_restorable: Vec<NotRestorable<'a>>,
    }
    let document = Document {
        location: storage.describe(),
        complete: catalogue
            .complete
            .iter()
            .map(|e| Listed {
                backup_path: &e.backup_path,
                backup: format!("{}/{}", e.backup_namespace, e.backup_name),
                completed_at: e.completed_at.to_rfc3339(),
                result: &e.result,
                objects: e.objects,
                bytes: e.bytes,
                errors: e.errors,
                cluster_version: &e.cluster_version,
            })
            .collect(),
        not_restorable: catalogue
            .unrestorable
            .iter()
            .map(|u| NotRestorable {
                backup_path: &u.backup_path,
                reason: &u.reason,
            })
            .collect(),
    };
    if let Some(text) = output::structured(format, &document)? {
        print!("{text}");
        return Ok(Exit::Ok);
    }
    println!("Complete backups in {} (newest first):", document.location);
    let mut table = Table::new(&[
        "BACKUP PATH",
        "BACKUP",
        "COMPLETED",
        "RESULT",
        "OBJECTS",
        "BYTES",
    ]);
    for e in &catalogue.complete {
        table.row(vec![
            e.backup_path.clone(),
            format!("{}/{}", e.backup_namespace, e.backup_name),
            e.completed_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            e.result.clone(),
            e.objects.to_string(),
            e.bytes.to_string(),
        ]);
    }
    print!("{}", table.render());
    if !catalogue.unrestorable.is_empty() {
        println!("\nNot restorable:");
        for u in &catalogue.unrestorable {
            println!("{:<70} {}", u.backup_path, u.reason);
        }
    }
    Ok(Exit::Ok)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inspected {
    backup_path: String,
    backup: String,
    started_at: String,
    completed_at: String,
    result: String,
    cluster_version: String,
    format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption: Option<crate::core::manifest::EncryptionRecord>,
    objects: u64,
    bytes: u64,
    namespaces: Vec<String>,
    counts: BTreeMap<String, u64>,
    errors: Vec<crate::core::manifest::ItemError>,
}

async fn inspect(storage: &Storage, path: &str, format: OutputFormat) -> anyhow::Result<Exit> {
    let manifest = read_manifest(storage, path).await?;
    let inspected = Inspected {
        backup_path: manifest.backup_path.clone(),
        backup: format!("{}/{}", manifest.backup.namespace, manifest.backup.name),
        started_at: manifest.started_at.to_rfc3339(),
        completed_at: manifest.completed_at.to_rfc3339(),
        result: manifest.result.clone(),
        cluster_version: manifest.cluster.server_version.clone(),
        format: if manifest.packed.is_some() {
            "packed"
        } else {
            "objects"
        },
        encryption: manifest.encryption.clone(),
        objects: manifest.total_objects,
        bytes: manifest.total_bytes,
        namespaces: manifest.namespaces.clone(),
        counts: manifest.counts.clone(),
        errors: manifest.errors.clone(),
    };
    if let Some(text) = output::structured(format, &inspected)? {
        print!("{text}");
        return Ok(Exit::Ok);
    }
    let mut out = String::new();
    writeln!(out, "Backup path:     {}", inspected.backup_path)?;
    writeln!(out, "Backup:          {}", inspected.backup)?;
    writeln!(out, "Started:         {}", inspected.started_at)?;
    writeln!(out, "Completed:       {}", inspected.completed_at)?;
    writeln!(out, "Result:          {}", inspected.result)?;
    writeln!(out, "Cluster version: {}", inspected.cluster_version)?;
    writeln!(out, "Format:          {}", inspected.format)?;
    if let Some(enc) = &inspected.encryption {
        writeln!(
            out,
            "Encryption:      key {:?}, scope {:?}",
            enc.key_id, enc.scope
        )?;
    }
    writeln!(
        out,
        "Size:            {} objects, {}",
        inspected.objects,
        output::bytes(inspected.bytes)
    )?;
    writeln!(out, "Errors:          {}", inspected.errors.len())?;
    for err in &inspected.errors {
        writeln!(
            out,
            "  {} {}/{}: {}",
            err.resource,
            err.namespace.as_deref().unwrap_or("-"),
            err.name.as_deref().unwrap_or("-"),
            err.message
        )?;
    }
    let mut table = Table::new(&["NAMESPACE", "TYPE", "OBJECTS"]);
    for (key, count) in &inspected.counts {
        let (namespace, resource) = key.split_once('/').unwrap_or(("", key));
        table.row(vec![
            namespace.to_string(),
            resource.to_string(),
            count.to_string(),
        ]);
    }
    writeln!(out)?;
    out.push_str(&table.render());
    print!("{out}");
    Ok(Exit::Ok)
}

/// A progress bar on a terminal (stderr), nothing otherwise.
fn progress(len: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{bar:30}}] {{pos}}/{{len}} objects ({{per_sec}}, ETA {{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    Some(bar)
}

fn packs_for(storage: &Storage, path: &str, manifest: &Manifest) -> Option<PackReader> {
    manifest
        .packed
        .is_some()
        .then(|| PackReader::new(storage, path, &manifest.objects, &manifest.objects))
}

/// One object read and checked as a restore checks it: size and sha256 against its entry (and,
/// encrypted, its tag), then parsed and checked to be the object its entry names.
async fn read_verified(
    storage: &Storage,
    path: &str,
    entry: &ManifestEntry,
    packs: Option<&PackReader>,
) -> Result<bytes::Bytes, String> {
    let bytes = crate::engine::restore::read_stored(storage, path, entry, packs).await?;
    entry.verify(&bytes).map_err(|e| e.to_string())?;
    let obj: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("stored object {} is not valid JSON: {e}", entry.key))?;
    crate::core::restore::clean::check_stored_object(&obj, entry).map_err(|e| e.to_string())?;
    Ok(bytes)
}

async fn verify(storage: &Storage, path: &str, format: OutputFormat) -> anyhow::Result<Exit> {
    let path = path.trim_end_matches('/');
    let manifest = read_manifest(storage, path).await?;
    let packs = packs_for(storage, path, &manifest);
    let bar = progress(manifest.objects.len() as u64, "verifying");
    #[derive(Serialize)]
    struct Problem {
        key: String,
        error: String,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Verified {
        backup_path: String,
        objects: u64,
        bytes: u64,
        problems: Vec<Problem>,
    }
    let mut verified = Verified {
        backup_path: path.to_string(),
        objects: 0,
        bytes: 0,
        problems: Vec::new(),
    };
    let mut reads = futures::stream::iter(&manifest.objects)
        .map(|entry| {
            let packs = packs.as_ref();
            async move { (entry, read_verified(storage, path, entry, packs).await) }
        })
        .buffer_unordered(READS_IN_FLIGHT);
    while let Some((entry, result)) = reads.next().await {
        match result {
            Ok(bytes) => {
                verified.objects += 1;
                verified.bytes += bytes.len() as u64;
            }
            Err(error) => verified.problems.push(Problem {
                key: entry.key.clone(),
                error,
            }),
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    verified.problems.sort_by(|a, b| a.key.cmp(&b.key));
    let exit = if verified.problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    };
    if let Some(text) = output::structured(format, &verified)? {
        print!("{text}");
        return Ok(exit);
    }
    if verified.problems.is_empty() {
        println!(
            "OK: {} objects ({}) of {path} match the manifest",
            verified.objects,
            output::bytes(verified.bytes)
        );
    } else {
        println!(
            "DAMAGED: {} of {} objects of {path} cannot be used:",
            verified.problems.len(),
            manifest.objects.len()
        );
        for problem in &verified.problems {
            println!("  {}: {}", problem.key, problem.error);
        }
    }
    Ok(exit)
}

async fn download(storage: &Storage, path: &str, file: &std::path::Path) -> anyhow::Result<Exit> {
    let path = path.trim_end_matches('/');
    let manifest = read_manifest(storage, path).await?;
    let manifest_bytes = manifest.to_bytes()?;
    let packs = packs_for(storage, path, &manifest);
    if file.exists() {
        return Err(anyhow::anyhow!(
            "{} exists; an existing file is not overwritten",
            file.display()
        ));
    }
    // Written under a temporary name beside it and renamed once complete: an interrupted or
    // failed download never leaves a partial archive under the name asked for.
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let partial = tempfile::Builder::new()
        .prefix(".cluster-backup-download-")
        .suffix(".partial")
        .tempfile_in(dir)
        .explain(|| format!("cannot create a file in {}", dir.display()))?;
    let out = partial
        .reopen()
        .explain(|| format!("cannot write {}", partial.path().display()))?;
    let writing = write_archive(
        storage,
        path,
        &manifest,
        &manifest_bytes,
        packs.as_ref(),
        out,
    );
    // Ctrl-C drops the temporary file (decrypted objects included) rather than leave it.
    let objects = tokio::select! {
        written = writing => written?,
        _ = tokio::signal::ctrl_c() => {
            drop(partial);
            eprintln!("Download stopped; nothing was written to {}.", file.display());
            return Ok(Exit::Interrupted);
        }
    };
    if let Err(err) = partial.persist_noclobber(file) {
        // Filesystems without an atomic no-replace rename (FAT, some network mounts): a plain
        // rename, unless the name was taken meanwhile.
        if file.exists() {
            return Err(anyhow::anyhow!(
                "{} was created by someone else during the download; not overwritten",
                file.display()
            ));
        }
        err.file
            .persist(file)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", file.display(), e.error))?;
    }
    println!(
        "wrote {} ({} objects and manifest.json, each object verified)",
        file.display(),
        objects
    );
    Ok(Exit::Ok)
}

async fn write_archive(
    storage: &Storage,
    path: &str,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    packs: Option<&PackReader>,
    out: std::fs::File,
) -> anyhow::Result<u64> {
    let gz =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(out), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mtime = u64::try_from(manifest.completed_at.timestamp()).unwrap_or(0);
    let mut append = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes)
            .explain(|| format!("cannot write {name} into the archive"))
    };
    append(crate::core::layout::MANIFEST_FILE, manifest_bytes)?;
    let bar = progress(manifest.objects.len() as u64, "downloading");
    // In manifest order, a few reads ahead.
    let mut reads = futures::stream::iter(&manifest.objects)
        .map(|entry| async move { (entry, read_verified(storage, path, entry, packs).await) })
        .buffered(READS_IN_FLIGHT);
    let mut objects = 0u64;
    while let Some((entry, result)) = reads.next().await {
        let bytes = result.map_err(|e| anyhow::anyhow!("{e}; nothing was kept"))?;
        append(&entry.key, &bytes)?;
        objects += 1;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let gz = tar
        .into_inner()
        .explain(|| "cannot finish the archive".to_string())?;
    let mut writer = gz
        .finish()
        .explain(|| "cannot finish the archive".to_string())?;
    std::io::Write::flush(&mut writer).explain(|| "cannot write the archive".to_string())?;
    Ok(objects)
}

fn object_id(entry: &ManifestEntry) -> ObjectId {
    ObjectId {
        resource: entry.resource.to_string(),
        namespace: entry.namespace.as_deref().map(str::to_string),
        name: entry.name.clone(),
    }
}

async fn comparable_stored(
    storage: &Storage,
    path: &str,
    entry: &ManifestEntry,
    packs: Option<&PackReader>,
) -> anyhow::Result<Value> {
    let bytes = read_verified(storage, path, entry, packs)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let obj: Value = serde_json::from_slice(&bytes)
        .explain(|| format!("stored object {} is not JSON", entry.key))?;
    Ok(diff::comparable(obj))
}

async fn diff_stored(
    storage: &Storage,
    before_path: &str,
    after_path: &str,
) -> anyhow::Result<Diff> {
    let (before_path, after_path) = (
        before_path.trim_end_matches('/'),
        after_path.trim_end_matches('/'),
    );
    let before = read_manifest(storage, before_path).await?;
    let after = read_manifest(storage, after_path).await?;
    let before_packs = packs_for(storage, before_path, &before);
    let after_packs = packs_for(storage, after_path, &after);
    let before_ids: BTreeMap<ObjectId, &ManifestEntry> =
        before.objects.iter().map(|e| (object_id(e), e)).collect();
    let after_ids: BTreeMap<ObjectId, &ManifestEntry> =
        after.objects.iter().map(|e| (object_id(e), e)).collect();
    let mut result = Diff {
        added: after_ids
            .keys()
            .filter(|id| !before_ids.contains_key(*id))
            .cloned()
            .collect(),
        removed: before_ids
            .keys()
            .filter(|id| !after_ids.contains_key(*id))
            .cloned()
            .collect(),
        ..Diff::default()
    };
    // Equal bytes need no download.
    let both: Vec<_> = before_ids
        .iter()
        .filter_map(|(id, old)| after_ids.get(id).map(|new| (id, *old, *new)))
        .collect();
    let mut compared = futures::stream::iter(both)
        .map(|(id, old, new)| {
            let (before_packs, after_packs) = (before_packs.as_ref(), after_packs.as_ref());
            async move {
                if old.sha256 == new.sha256 {
                    return Ok::<_, anyhow::Error>((id, Vec::new()));
                }
                let old = comparable_stored(storage, before_path, old, before_packs).await?;
                let new = comparable_stored(storage, after_path, new, after_packs).await?;
                Ok((id, diff::object_changes(&id.resource, &old, &new)))
            }
        })
        .buffered(READS_IN_FLIGHT);
    while let Some((id, fields)) = compared.try_next().await? {
        result.record(id, fields);
    }
    Ok(result)
}

/// The API resource of a stored entry: group and version from its apiVersion, plural from its
/// type folder (`widgets.acme.io` is plural `widgets` of group `acme.io`).
fn api_resource(entry: &ManifestEntry) -> ApiResource {
    let (group, version) = match entry.api_version.split_once('/') {
        Some((group, version)) => (group.to_string(), version.to_string()),
        None => (String::new(), entry.api_version.to_string()),
    };
    let plural = if group.is_empty() {
        entry.resource.to_string()
    } else {
        entry
            .resource
            .strip_suffix(&format!(".{group}"))
            .unwrap_or(&entry.resource)
            .to_string()
    };
    ApiResource {
        group,
        version,
        api_version: entry.api_version.to_string(),
        kind: entry.kind.to_string(),
        plural,
    }
}

/// The API of a type in one namespace (`None`: cluster-scoped).
fn dynamic_api(
    client: &Client,
    namespace: Option<&str>,
    resource: &ApiResource,
) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// The objects of one namespace and type in the cluster now, by name, as a GET would return
/// them (list items carry no apiVersion and kind).
async fn live_objects(
    client: &Client,
    namespace: Option<&str>,
    entry: &ManifestEntry,
    selector: Option<&str>,
) -> anyhow::Result<BTreeMap<String, DynamicObject>> {
    let api = dynamic_api(client, namespace, &api_resource(entry));
    let mut params = ListParams::default();
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let listed = api
        .list(&params)
        .await
        .explain(|| format!("cannot list {} in the cluster", entry.resource))?;
    Ok(listed
        .items
        .into_iter()
        .filter_map(|mut object| {
            object.types = Some(kube::api::TypeMeta {
                api_version: entry.api_version.to_string(),
                kind: entry.kind.to_string(),
            });
            object.metadata.name.clone().map(|name| (name, object))
        })
        .collect())
}

/// Compares a stored backup with the cluster, one namespace and type at a time: one LIST per
/// namespace and type (with the backup's label selector), a GET only for a stored object the
/// list does not hold (its labels may have changed), and a download only to compare.
async fn diff_live(storage: &Storage, client: &Client, path: &str) -> anyhow::Result<Diff> {
    let path = path.trim_end_matches('/');
    let manifest = read_manifest(storage, path).await?;
    let packs = packs_for(storage, path, &manifest);
    // The backup's own label selector, so objects it never took do not show as added.
    let selector = serde_json::from_value::<crate::api::BackupSpec>(manifest.spec.value())
        .ok()
        .and_then(|spec| spec.source.label_selector)
        .and_then(|sel| {
            crate::core::selector::label_selector_to_query(&sel)
                .ok()
                .flatten()
        });
    let mut scopes: BTreeMap<(Option<String>, String), Vec<&ManifestEntry>> = BTreeMap::new();
    for entry in &manifest.objects {
        scopes
            .entry((
                entry.namespace.as_deref().map(str::to_string),
                entry.resource.to_string(),
            ))
            .or_default()
            .push(entry);
    }
    let mut result = Diff::default();
    for ((namespace, resource), entries) in scopes {
        let Some(first) = entries.first().copied() else {
            continue;
        };
        let live = live_objects(client, namespace.as_deref(), first, selector.as_deref()).await?;
        let stored: BTreeSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let mut compared = futures::stream::iter(entries)
            .map(|entry| {
                let packs = packs.as_ref();
                let listed = live.get(&entry.name).cloned();
                async move {
                    let live = match listed {
                        Some(object) => Some(object),
                        None => {
                            let api = dynamic_api(
                                client,
                                entry.namespace.as_deref(),
                                &api_resource(entry),
                            );
                            api.get_opt(&entry.name).await.explain(|| {
                                format!(
                                    "cannot read {} {} from the cluster",
                                    entry.kind, entry.name
                                )
                            })?
                        }
                    };
                    let Some(live) = live else {
                        return Ok::<_, anyhow::Error>((entry, None));
                    };
                    let old = comparable_stored(storage, path, entry, packs).await?;
                    let new = diff::comparable(serde_json::to_value(&live)?);
                    Ok((
                        entry,
                        Some(diff::object_changes(&entry.resource, &old, &new)),
                    ))
                }
            })
            .buffered(READS_IN_FLIGHT);
        while let Some((entry, fields)) = compared.try_next().await? {
            let id = object_id(entry);
            match fields {
                None => result.removed.push(id),
                Some(fields) => result.record(&id, fields),
            }
        }
        drop(compared);
        // What the cluster holds there and the backup does not (leaving out what a backup
        // never stores).
        let kind = api_resource(first);
        for (name, object) in &live {
            if stored.contains(name.as_str())
                || crate::core::plan::skip_object_of(&kind.group, &kind.plural, name, &object.data)
                    .is_some()
            {
                continue;
            }
            result.added.push(ObjectId {
                resource: resource.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
            });
        }
    }
    result.added.sort();
    result.removed.sort();
    Ok(result)
}

fn render_diff(diff: &Diff) -> String {
    let mut out = String::new();
    let short = |v: &Option<Value>| match v {
        None => "(none)".to_string(),
        Some(v) => {
            let text = v.to_string();
            if text.chars().count() > 80 {
                format!("{}…", text.chars().take(80).collect::<String>())
            } else {
                text
            }
        }
    };
    let _ = writeln!(out, "Added ({}):", diff.added.len());
    for id in &diff.added {
        let _ = writeln!(out, "  + {id}");
    }
    let _ = writeln!(out, "Removed ({}):", diff.removed.len());
    for id in &diff.removed {
        let _ = writeln!(out, "  - {id}");
    }
    let _ = writeln!(out, "Changed ({}):", diff.changed.len());
    for changed in &diff.changed {
        let _ = writeln!(out, "  ~ {}", changed.id);
        for field in &changed.fields {
            let _ = writeln!(
                out,
                "      {}: {} -> {}",
                field.path,
                short(&field.before),
                short(&field.after)
            );
        }
    }
    let _ = writeln!(out, "Unchanged: {}", diff.unchanged);
    out
}
