//! `backup create|get|describe|delete|run` and `restore create|get|describe`: everything goes
//! through the Backup and Restore resources with the caller's kubeconfig, so RBAC and the
//! operator decide, never the CLI.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use clap::{Args, Subcommand, ValueEnum};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use super::output::{self, Exit, Explain, OutputFormat, Table, UsageError};
use super::wait;
use crate::api::{
    Backup, BackupRun, RUN_NOW_ANNOTATION, Restore, RestorePhase, RunResult, from_time,
};

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Create a Backup: one-shot (runs at once), or with --schedule.
    #[command(after_help = "Examples:
  cluster-backup backup create shop-now --namespaces shop --storage team-bucket --wait
  cluster-backup backup create nightly --namespaces '*' --exclude-namespaces kube-system \\
      --schedule '0 2 * * *' --bucket k8s-backups --endpoint http://minio.minio:9000 \\
      --credentials-secret minio-credentials --format packed")]
    Create(Box<BackupCreate>),
    /// List Backups (or show one) with phase, schedule and last run.
    #[command(after_help = "Examples:
  cluster-backup backup get
  cluster-backup backup get -A -o json")]
    Get(Get),
    /// Show a Backup's status, its last runs and the objects its newest backup stored.
    #[command(after_help = "Example:
  cluster-backup backup describe nightly -n team-a")]
    Describe(Named),
    /// Delete a Backup. What it stored stays in the bucket (a Restore can still use it).
    #[command(after_help = "Example:
  cluster-backup backup delete shop-now")]
    Delete(Delete),
    /// Run a Backup now, besides its schedule (sets the backup.cnd.dk/run-now annotation).
    #[command(after_help = "Example:
  cluster-backup backup run nightly --wait")]
    Run(RunNow),
}

#[derive(Subcommand, Debug)]
pub enum RestoreCommand {
    /// Create a Restore from a Backup's newest complete run or from a stored backup path.
    #[command(after_help = "Examples:
  cluster-backup restore create shop-back --from-backup shop-now --wait
  cluster-backup restore create shop-copy --from-backup nightly \\
      --namespace-mapping shop=shop-copy --create-namespaces --dry-run --wait
  cluster-backup restore create dr --from-path backups/team-a/nightly/2026-11-30T02-00-00Z \\
      --storage team-bucket --conflict overwrite --wait")]
    Create(Box<RestoreCreate>),
    /// List Restores (or show one) with phase and counts.
    #[command(after_help = "Examples:
  cluster-backup restore get
  cluster-backup restore get shop-back -o yaml")]
    Get(Get),
    /// Show a Restore's status: counts, failed and skipped objects, the backup it read.
    #[command(after_help = "Example:
  cluster-backup restore describe shop-back -n team-a")]
    Describe(Named),
}

#[derive(Args, Debug)]
pub struct Named {
    pub name: String,
    /// Namespace (default: the kubeconfig context's).
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Args, Debug)]
pub struct Delete {
    pub name: String,
    /// Namespace (default: the kubeconfig context's).
    #[arg(short, long)]
    pub namespace: Option<String>,
}

#[derive(Args, Debug)]
pub struct Get {
    /// One object (default: all of the namespace).
    #[arg(conflicts_with = "all_namespaces")]
    pub name: Option<String>,
    #[arg(short, long, conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// Every namespace the caller may list.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// Where a Backup stores (or a Restore reads): a ClusterStorageLocation, or a bucket inline.
#[derive(Args, Debug, Default)]
pub struct LocationArgs {
    /// A ClusterStorageLocation (an administrator's bucket) to use.
    #[arg(long, value_name = "LOCATION", conflicts_with_all = ["bucket", "provider", "endpoint", "region", "prefix", "credentials_secret"])]
    pub storage: Option<String>,
    /// Bucket, written inline (with --endpoint and --credentials-secret).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Provider of the inline bucket (default: minio).
    #[arg(long, value_parser = ["minio", "s3", "filesystem"])]
    pub provider: Option<String>,
    /// S3 endpoint (inline); http:// is plain, https:// is TLS.
    #[arg(long)]
    pub endpoint: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    /// Key prefix inside the bucket.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Secret in the object's namespace with the S3 keys (inline).
    #[arg(long)]
    pub credentials_secret: Option<String>,
}

impl LocationArgs {
    fn given(&self) -> bool {
        self.storage.is_some() || self.bucket.is_some()
    }

    fn to_json(&self) -> Result<Value, UsageError> {
        if let Some(name) = &self.storage {
            return Ok(json!({ "name": name }));
        }
        let Some(bucket) = &self.bucket else {
            return Err(UsageError(
                "say where: --storage LOCATION (a ClusterStorageLocation) or --bucket with --endpoint and --credentials-secret".into(),
            ));
        };
        let mut location = json!({
            "provider": self.provider.as_deref().unwrap_or("minio"),
            "bucket": bucket,
        });
        for (field, value) in [
            ("endpoint", &self.endpoint),
            ("region", &self.region),
            ("prefix", &self.prefix),
            ("credentialsSecret", &self.credentials_secret),
        ] {
            if let Some(value) = value {
                location[field] = json!(value);
            }
        }
        Ok(location)
    }
}

#[derive(Args, Debug)]
pub struct BackupCreate {
    pub name: String,
    /// Namespace of the Backup object (default: the kubeconfig context's).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Namespaces to back up ('*': all), comma-separated (default: the Backup's own).
    #[arg(long, value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Namespaces left out of '*', comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub exclude_namespaces: Vec<String>,
    /// Resource types (deployments, configmaps, certificates.cert-manager.io, ...);
    /// default: every type.
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only objects with these labels: key=value[,key=value].
    #[arg(long, short = 'l')]
    pub selector: Option<String>,
    /// Back up cluster-scoped objects of the listed types too.
    #[arg(long)]
    pub include_cluster_resources: bool,
    /// 5-field cron schedule (default: run once, now).
    #[arg(long)]
    pub schedule: Option<String>,
    /// objects or packed.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Keep this many runs (retention).
    #[arg(long)]
    pub keep_last: Option<u32>,
    #[command(flatten)]
    pub location: LocationArgs,
    /// Wait for the (first) run to end; the exit code says how it ended.
    #[arg(long)]
    pub wait: bool,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Objects,
    Packed,
}

#[derive(Args, Debug)]
pub struct RunNow {
    pub name: String,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Wait for the run to end; the exit code says how it ended.
    #[arg(long)]
    pub wait: bool,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["from_backup", "from_path"]))]
pub struct RestoreCreate {
    pub name: String,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// A Backup in the same namespace: its newest complete run is restored.
    #[arg(long, value_name = "BACKUP")]
    pub from_backup: Option<String>,
    /// A stored backup path (`cluster-backup backups list` shows them); needs --storage or
    /// --bucket.
    #[arg(long, value_name = "PATH")]
    pub from_path: Option<String>,
    #[command(flatten)]
    pub location: LocationArgs,
    /// Restore namespace FROM into TO: FROM=TO, repeatable or comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "FROM=TO")]
    pub namespace_mapping: Vec<String>,
    /// Only these (target) namespaces, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Only these resource types, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// What to do with an object that exists already.
    #[arg(long, value_enum, default_value = "skip")]
    pub conflict: Conflict,
    /// Say what would be restored; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Create target namespaces that do not exist.
    #[arg(long)]
    pub create_namespaces: bool,
    /// Wait for the restore to end; the exit code says how it ended.
    #[arg(long)]
    pub wait: bool,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Conflict {
    Skip,
    Overwrite,
    Fail,
}

async fn client() -> anyhow::Result<Client> {
    Client::try_default().await.explain(|| {
        "cannot connect to Kubernetes (check KUBECONFIG and the current context)".to_string()
    })
}

fn namespace_or_default(client: &Client, namespace: &Option<String>) -> String {
    namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string())
}

/// `key=value[,key=value]` as a label selector's `matchLabels`.
fn match_labels(selector: &str) -> Result<Value, UsageError> {
    let mut labels = serde_json::Map::new();
    for pair in selector.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(UsageError(format!(
                "--selector {selector:?}: write key=value pairs, comma-separated"
            )));
        };
        let (key, value) = (key.trim().trim_end_matches('='), value.trim());
        if key.is_empty() || key.contains('!') {
            return Err(UsageError(format!(
                "--selector {selector:?}: only key=value pairs are supported here; write matchExpressions in YAML"
            )));
        }
        labels.insert(key.to_string(), json!(value));
    }
    Ok(json!({ "matchLabels": labels }))
}

fn backup_object(args: &BackupCreate, namespace: &str) -> Result<Backup, anyhow::Error> {
    let mut source = json!({});
    if !args.namespaces.is_empty() {
        source["namespaces"] = json!(args.namespaces);
    }
    if !args.exclude_namespaces.is_empty() {
        source["excludeNamespaces"] = json!(args.exclude_namespaces);
    }
    if !args.types.is_empty() {
        source["resourceTypes"] = json!(args.types);
    }
    if let Some(selector) = &args.selector {
        source["labelSelector"] = match_labels(selector)?;
    }
    if args.include_cluster_resources {
        source["includeClusterResources"] = json!(true);
    }
    let mut spec = json!({
        "source": source,
        "storageLocation": args.location.to_json()?,
    });
    if let Some(schedule) = &args.schedule {
        spec["schedule"] = json!(schedule);
    }
    if let Some(format) = args.format {
        spec["format"] = json!(match format {
            Format::Objects => "objects",
            Format::Packed => "packed",
        });
    }
    if let Some(keep_last) = args.keep_last {
        spec["retention"] = json!({ "keepLast": keep_last });
    }
    let doc = json!({
        "apiVersion": "backup.cnd.dk/v1",
        "kind": "Backup",
        "metadata": { "name": args.name, "namespace": namespace },
        "spec": spec,
    });
    serde_json::from_value(doc).explain(|| "the flags do not make a valid Backup".to_string())
}

fn restore_object(args: &RestoreCreate, namespace: &str) -> Result<Restore, anyhow::Error> {
    let source = match (&args.from_backup, &args.from_path) {
        (Some(backup), _) => {
            if args.location.given() {
                return Err(UsageError(
                    "--from-backup reads the Backup's own location; --storage and --bucket go with --from-path".into(),
                )
                .into());
            }
            json!({ "backupName": backup })
        }
        (None, Some(path)) => json!({
            "backupPath": path,
            "storageLocation": args.location.to_json()?,
        }),
        (None, None) => {
            return Err(
                UsageError("say what to restore: --from-backup or --from-path".into()).into(),
            );
        }
    };
    let mut mapping = BTreeMap::new();
    for pair in &args.namespace_mapping {
        let Some((from, to)) = pair.split_once('=') else {
            return Err(UsageError(format!("--namespace-mapping {pair:?}: write FROM=TO")).into());
        };
        mapping.insert(from.trim().to_string(), to.trim().to_string());
    }
    let doc = json!({
        "apiVersion": "backup.cnd.dk/v1",
        "kind": "Restore",
        "metadata": { "name": args.name, "namespace": namespace },
        "spec": {
            "source": source,
            "target": {
                "namespaces": args.namespaces,
                "resourceTypes": args.types,
                "namespaceMapping": mapping,
                "conflictResolution": match args.conflict {
                    Conflict::Skip => "skip",
                    Conflict::Overwrite => "overwrite",
                    Conflict::Fail => "fail",
                },
            },
            "options": {
                "dryRun": args.dry_run,
                "createNamespaces": args.create_namespaces,
            },
        },
    });
    serde_json::from_value(doc).explain(|| "the flags do not make a valid Restore".to_string())
}

fn api_error(what: &str, err: kube::Error) -> anyhow::Error {
    match err {
        kube::Error::Api(status) => anyhow::anyhow!("{what}: {}", status.message),
        other => anyhow::anyhow!("{what}: {other}"),
    }
}

pub async fn backup(command: BackupCommand) -> anyhow::Result<Exit> {
    let client = client().await?;
    match command {
        BackupCommand::Create(args) => {
            let namespace = namespace_or_default(&client, &args.namespace);
            let backup = backup_object(&args, &namespace)?;
            let api: Api<Backup> = Api::namespaced(client.clone(), &namespace);
            let created = api
                .create(&PostParams::default(), &backup)
                .await
                .map_err(|e| {
                    api_error(
                        &format!("cannot create Backup {namespace}/{}", args.name),
                        e,
                    )
                })?;
            if !args.wait {
                print_created(args.output, &created, "backup")?;
                return Ok(Exit::Ok);
            }
            eprintln!(
                "Backup {namespace}/{} created; waiting for its run to end (Ctrl-C stops waiting, not the run).",
                args.name
            );
            let ended = wait::backup(&api, &args.name, None).await?;
            finish_backup(args.output, ended)
        }
        BackupCommand::Run(args) => {
            let namespace = namespace_or_default(&client, &args.namespace);
            let api: Api<Backup> = Api::namespaced(client.clone(), &namespace);
            let trigger = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let patch = json!({ "metadata": { "annotations": { RUN_NOW_ANNOTATION: trigger } } });
            let patched = api
                .patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| {
                    api_error(&format!("cannot run Backup {namespace}/{}", args.name), e)
                })?;
            if !args.wait {
                eprintln!(
                    "Backup {namespace}/{} asked to run now ({RUN_NOW_ANNOTATION}={trigger}).",
                    args.name
                );
                if let Some(text) = output::structured(args.output, &patched)? {
                    print!("{text}");
                }
                return Ok(Exit::Ok);
            }
            eprintln!(
                "Backup {namespace}/{} asked to run now; waiting for the run to end (Ctrl-C stops waiting, not the run).",
                args.name
            );
            let ended = wait::backup(&api, &args.name, Some(&trigger)).await?;
            finish_backup(args.output, ended)
        }
        BackupCommand::Get(args) => {
            let items = list::<Backup>(&client, &args).await?;
            if let Some(text) = output::structured(args.output, &list_document(&items))? {
                print!("{text}");
            } else {
                print!("{}", backup_table(&items, args.all_namespaces));
            }
            Ok(Exit::Ok)
        }
        BackupCommand::Describe(args) => {
            let namespace = namespace_or_default(&client, &args.namespace);
            if args.output != OutputFormat::Table {
                let api: Api<Backup> = Api::namespaced(client.clone(), &namespace);
                let backup = api.get(&args.name).await.map_err(|e| {
                    api_error(&format!("cannot read Backup {namespace}/{}", args.name), e)
                })?;
                print!(
                    "{}",
                    output::structured(args.output, &backup)?.unwrap_or_default()
                );
                return Ok(Exit::Ok);
            }
            print!(
                "{}",
                super::describe::describe(&client, &namespace, &args.name).await?
            );
            Ok(Exit::Ok)
        }
        BackupCommand::Delete(args) => {
            let namespace = namespace_or_default(&client, &args.namespace);
            let api: Api<Backup> = Api::namespaced(client.clone(), &namespace);
            api.delete(&args.name, &DeleteParams::default())
                .await
                .map_err(|e| {
                    api_error(
                        &format!("cannot delete Backup {namespace}/{}", args.name),
                        e,
                    )
                })?;
            println!(
                "backup.backup.cnd.dk/{} deleted (what it stored stays in the bucket)",
                args.name
            );
            Ok(Exit::Ok)
        }
    }
}

pub async fn restore(command: RestoreCommand) -> anyhow::Result<Exit> {
    let client = client().await?;
    match command {
        RestoreCommand::Create(args) => {
            let namespace = namespace_or_default(&client, &args.namespace);
            let restore = restore_object(&args, &namespace)?;
            let api: Api<Restore> = Api::namespaced(client.clone(), &namespace);
            let created = api
                .create(&PostParams::default(), &restore)
                .await
                .map_err(|e| {
                    api_error(
                        &format!("cannot create Restore {namespace}/{}", args.name),
                        e,
                    )
                })?;
            if !args.wait {
                print_created(args.output, &created, "restore")?;
                return Ok(Exit::Ok);
            }
            eprintln!(
                "Restore {namespace}/{} created; waiting for it to end (Ctrl-C stops waiting, not the restore).",
                args.name
            );
            let ended = wait::restore(&api, &args.name).await?;
            let Some(restore) = ended else {
                return Ok(Exit::Interrupted);
            };
            if let Some(text) = output::structured(args.output, &restore)? {
                print!("{text}");
            } else {
                print!("{}", describe_restore(&restore));
            }
            Ok(restore_exit(&restore))
        }
        RestoreCommand::Get(args) => {
            let items = list::<Restore>(&client, &args).await?;
            if let Some(text) = output::structured(args.output, &list_document(&items))? {
                print!("{text}");
            } else {
                print!("{}", restore_table(&items, args.all_namespaces));
            }
            Ok(Exit::Ok)
        }
        RestoreCommand::Describe(args) => {
            let namespace = namespace_or_default(&client, &args.namespace);
            let api: Api<Restore> = Api::namespaced(client.clone(), &namespace);
            let restore = api.get(&args.name).await.map_err(|e| {
                api_error(&format!("cannot read Restore {namespace}/{}", args.name), e)
            })?;
            if let Some(text) = output::structured(args.output, &restore)? {
                print!("{text}");
            } else {
                print!("{}", describe_restore(&restore));
            }
            Ok(Exit::Ok)
        }
    }
}

fn print_created<K: serde::Serialize + ResourceExt>(
    format: OutputFormat,
    object: &K,
    kind: &str,
) -> anyhow::Result<()> {
    match output::structured(format, object)? {
        Some(text) => print!("{text}"),
        None => println!("{kind}.backup.cnd.dk/{} created", object.name_any()),
    }
    Ok(())
}

fn finish_backup(format: OutputFormat, ended: Option<wait::BackupWaited>) -> anyhow::Result<Exit> {
    let Some(ended) = ended else {
        return Ok(Exit::Interrupted);
    };
    if let Some(text) = output::structured(format, &ended.backup)? {
        print!("{text}");
    } else {
        print!("{}", backup_summary(&ended.backup, ended.run.as_ref()));
    }
    Ok(backup_exit(ended.run.as_ref()))
}

/// The exit code for the run waited for (`None`: no run, the spec is invalid).
pub fn backup_exit(run: Option<&BackupRun>) -> Exit {
    match run.and_then(|run| run.result) {
        Some(RunResult::Completed) => Exit::Ok,
        Some(RunResult::PartiallyFailed) => Exit::PartiallyFailed,
        _ => Exit::Failed,
    }
}

pub fn restore_exit(restore: &Restore) -> Exit {
    match restore.status.as_ref().and_then(|s| s.phase) {
        Some(RestorePhase::Completed) => Exit::Ok,
        Some(RestorePhase::PartiallyFailed) => Exit::PartiallyFailed,
        _ => Exit::Failed,
    }
}

async fn list<K>(client: &Client, args: &Get) -> anyhow::Result<Vec<K>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = if args.all_namespaces {
        Api::all(client.clone())
    } else {
        Api::namespaced(
            client.clone(),
            &namespace_or_default(client, &args.namespace),
        )
    };
    let kind = K::kind(&K::DynamicType::default()).to_string();
    match &args.name {
        Some(name) => {
            Ok(vec![api.get(name).await.map_err(|e| {
                api_error(&format!("cannot read {kind} {name}"), e)
            })?])
        }
        None => Ok(api
            .list(&ListParams::default())
            .await
            .map_err(|e| api_error(&format!("cannot list {kind}s"), e))?
            .items),
    }
}

fn list_document<K: serde::Serialize>(items: &[K]) -> Value {
    json!({ "apiVersion": "v1", "kind": "List", "items": items })
}

fn time_of(
    t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    t.map(from_time)
}

fn backup_table(items: &[Backup], all_namespaces: bool) -> String {
    let mut table = if all_namespaces {
        Table::new(&[
            "NAMESPACE",
            "NAME",
            "PHASE",
            "SCHEDULE",
            "LAST RUN",
            "RESULT",
            "OBJECTS",
            "BYTES",
            "BACKUP PATH",
        ])
    } else {
        Table::new(&[
            "NAME",
            "PHASE",
            "SCHEDULE",
            "LAST RUN",
            "RESULT",
            "OBJECTS",
            "BYTES",
            "BACKUP PATH",
        ])
    };
    for backup in items {
        let status = backup.status.clone().unwrap_or_default();
        let run = status.last_run.as_ref();
        let mut row = Vec::new();
        if all_namespaces {
            row.push(backup.namespace().unwrap_or_default());
        }
        row.extend([
            backup.name_any(),
            output::shown(status.phase, "New"),
            backup.spec.schedule.clone().unwrap_or_else(|| "-".into()),
            output::age(time_of(run.and_then(|r| r.completion_time.as_ref())).as_ref()),
            run.and_then(|r| r.result)
                .map(|r| format!("{r:?}"))
                .unwrap_or_else(|| "-".into()),
            run.map(|r| r.objects.to_string())
                .unwrap_or_else(|| "-".into()),
            run.map(|r| output::bytes(u64::try_from(r.bytes).unwrap_or(0)))
                .unwrap_or_else(|| "-".into()),
            status.backup_path.clone().unwrap_or_else(|| "-".into()),
        ]);
        table.row(row);
    }
    table.render()
}

fn restore_table(items: &[Restore], all_namespaces: bool) -> String {
    let mut table = if all_namespaces {
        Table::new(&[
            "NAMESPACE",
            "NAME",
            "PHASE",
            "CREATED",
            "SKIPPED",
            "FAILED",
            "AGE",
            "BACKUP PATH",
        ])
    } else {
        Table::new(&[
            "NAME",
            "PHASE",
            "CREATED",
            "SKIPPED",
            "FAILED",
            "AGE",
            "BACKUP PATH",
        ])
    };
    for restore in items {
        let status = restore.status.clone().unwrap_or_default();
        let count = |key: &str| {
            status
                .resource_counts
                .get(key)
                .copied()
                .unwrap_or(0)
                .to_string()
        };
        let mut row = Vec::new();
        if all_namespaces {
            row.push(restore.namespace().unwrap_or_default());
        }
        row.extend([
            restore.name_any(),
            output::shown(status.phase, "New"),
            count("created"),
            count("skipped"),
            count("failed"),
            output::age(time_of(restore.metadata.creation_timestamp.as_ref()).as_ref()),
            status
                .backup_info
                .as_ref()
                .map(|i| i.backup_path.clone())
                .unwrap_or_else(|| "-".into()),
        ]);
        table.row(row);
    }
    table.render()
}

/// What a finished `backup create|run --wait` prints: the run waited for, or why none ran.
fn backup_summary(backup: &Backup, run: Option<&BackupRun>) -> String {
    let status = backup.status.clone().unwrap_or_default();
    let mut out = String::new();
    let name = format!(
        "{}/{}",
        backup.namespace().unwrap_or_default(),
        backup.name_any()
    );
    match run {
        Some(run) => {
            let _ = writeln!(
                out,
                "Backup {name}: {} — {} objects, {}, {} failed",
                output::shown(run.result, "Running"),
                run.objects,
                output::bytes(u64::try_from(run.bytes).unwrap_or(0)),
                run.failed
            );
            let _ = writeln!(out, "  backup path: {}", run.backup_path);
            if let Some(message) = &run.message {
                let _ = writeln!(out, "  {message}");
            }
            for err in &run.errors {
                let _ = writeln!(out, "  error: {err}");
            }
        }
        None => {
            let _ = writeln!(
                out,
                "Backup {name}: {} — {}",
                output::shown(status.phase, "New"),
                status.message.unwrap_or_default()
            );
        }
    }
    out
}

fn describe_restore(restore: &Restore) -> String {
    let status = restore.status.clone().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Restore {}/{}",
        restore.namespace().unwrap_or_default(),
        restore.name_any()
    );
    let _ = writeln!(out, "  phase:       {}", output::shown(status.phase, "New"));
    let _ = writeln!(
        out,
        "  message:     {}",
        status.message.clone().unwrap_or_default()
    );
    if let Some(info) = &status.backup_info {
        let _ = writeln!(
            out,
            "  backup:      {} ({} objects)",
            info.backup_path, info.total_resources
        );
    }
    if let Some(requester) = &status.requester {
        let _ = writeln!(out, "  run as:      {requester}");
    }
    if !status.resource_counts.is_empty() {
        let _ = writeln!(out, "  counts:");
        for (key, count) in &status.resource_counts {
            let _ = writeln!(out, "    {key}: {count}");
        }
    }
    for (title, list) in [
        ("failed", &status.failed_resources),
        ("skipped", &status.skipped_resources),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {title}:");
        for item in list {
            let place = match &item.namespace {
                Some(ns) => format!("{ns}/{}", item.name),
                None => item.name.clone(),
            };
            let why = item
                .error
                .as_deref()
                .or(item.reason.as_deref())
                .unwrap_or("");
            let _ = writeln!(out, "    {} {place}: {why}", item.kind);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_match_labels_only() {
        assert_eq!(
            match_labels("app=shop, tier = web").unwrap(),
            json!({ "matchLabels": { "app": "shop", "tier": "web" } })
        );
        assert!(match_labels("app").is_err());
        assert!(match_labels("app!=shop").is_err());
    }
}
