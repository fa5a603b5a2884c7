//! Command line: `cluster-backup run | crd | install | ...`.

use std::io::Write;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use output::Explain as _;
use tracing_subscriber::EnvFilter;

use crate::api;
use crate::controller;

mod describe;
pub mod output;
mod resources;
mod stored;
mod wait;

use output::Exit;

#[derive(Parser, Debug)]
#[command(
    name = "cluster-backup",
    version,
    about = "Back up Kubernetes objects to object storage and restore them"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator (Backup and Restore controllers) against the cluster of the current kubeconfig or
    /// the in-cluster service account.
    Run {
        /// Watch only this namespace (default: all namespaces).
        #[arg(long, env = "WATCH_NAMESPACE")]
        namespace: Option<String>,
        /// Backups running at the same time; more wait for a free slot (their status says
        /// so). Reconciles (validation, scheduling) of other objects never wait for runs.
        #[arg(long, default_value_t = 2, env = "BACKUP_CONCURRENCY")]
        concurrency: u16,
        /// Restores running at the same time; more wait for a free slot.
        #[arg(long, default_value_t = 2, env = "RESTORE_CONCURRENCY")]
        restore_concurrency: u16,
        /// Objects one restore creates at the same time (`conflictResolution: fail` always
        /// creates one at a time).
        #[arg(long, default_value_t = crate::engine::restore::RESTORE_CONCURRENCY as u16, env = "RESTORE_OBJECTS_IN_FLIGHT")]
        restore_objects_in_flight: u16,
        /// Lists one backup has in flight: the one being stored and the next ones, fetched
        /// ahead so the API server serializes them meanwhile (pages of 500 objects each).
        #[arg(long, default_value_t = crate::engine::backup::LISTS_IN_FLIGHT as u16, env = "BACKUP_LISTS_IN_FLIGHT", value_parser = clap::value_parser!(u16).range(1..=16))]
        backup_lists_in_flight: u16,
        /// Requests per second the operator sends to the API server at most, all runs
        /// together (0: no limit). Each backup also lists one page (500 objects) at a time.
        #[arg(long, default_value_t = crate::k8s::rate_limit::DEFAULT_QPS, env = "KUBE_API_QPS")]
        kube_api_qps: u32,
        /// Requests the operator may send at once above `--kube-api-qps` before it waits.
        #[arg(long, default_value_t = crate::k8s::rate_limit::DEFAULT_BURST, env = "KUBE_API_BURST")]
        kube_api_burst: u32,
        /// Largest manifest (`manifest.json`) the operator reads or writes, in bytes: bucket
        /// content is untrusted, and reading a manifest holds up to about 3× its size in memory.
        /// The default fits the chart's 256 MiB limit and one-file-per-object backups of about
        /// 200,000 objects (packed backups keep small manifests at any size); raise both together.
        #[arg(long, default_value_t = crate::storage::catalogue::DEFAULT_MAX_MANIFEST_BYTES, env = "MAX_MANIFEST_BYTES", value_parser = clap::value_parser!(u64).range(1 << 20..))]
        max_manifest_bytes: u64,
        /// How often a backup or restore the operator stopped during (killed, crashed or shut
        /// down mid-run) is run again before it ends Failed.
        #[arg(long, default_value_t = 1, env = "RUN_RETRIES")]
        run_retries: u32,
        /// After SIGTERM or SIGINT, how long runs in flight get to stop and record that they
        /// were interrupted before the process exits anyway (e.g. `20s`; keep it below the
        /// pod's terminationGracePeriodSeconds, 30 s by default).
        #[arg(long, default_value = "20s", env = "SHUTDOWN_TIMEOUT", value_parser = humantime::parse_duration)]
        shutdown_timeout: Duration,
        /// Install or update the CRDs before starting.
        #[arg(long)]
        install_crds: bool,
        /// Run every backup and restore with the operator's own rights instead of the
        /// requester's, and accept objects without a requester stamp. Only for clusters where
        /// nobody but administrators may create Backups and Restores (README, "Multi-tenancy
        /// and security model").
        #[arg(long, env = "SINGLE_TENANT")]
        single_tenant: bool,
        /// The operator's own namespace: where the credentials Secrets and CA bundles of
        /// cluster storage locations are read from.
        #[arg(long, env = "POD_NAMESPACE", default_value = controller::DEFAULT_OPERATOR_NAMESPACE)]
        operator_namespace: String,
        /// Where /metrics, /healthz and /readyz are served: `:PORT` (every interface),
        /// `HOST:PORT`, or `0` for no server.
        #[arg(long, env = "METRICS_BIND_ADDRESS", default_value = ":8080", value_parser = parse_bind_address)]
        metrics_bind_address: BindAddress,
        #[command(flatten)]
        leader: LeaderArgs,
    },
    /// Print the CustomResourceDefinitions (Backup, Restore) as YAML.
    Crd,
    /// Install or update what the cluster needs besides the operator's Deployment: the CRDs
    /// (waits until Established) and the admission policy that records who asked for each
    /// Backup and Restore (waits until the API server enforces it). Idempotent.
    Install,
    /// Create, list, show, delete and run Backups in the cluster (as the kubeconfig's user).
    Backup {
        #[command(subcommand)]
        command: resources::BackupCommand,
    },
    /// Create, list and show Restores in the cluster (as the kubeconfig's user).
    Restore {
        #[command(subcommand)]
        command: resources::RestoreCommand,
    },
    /// Work with the backups stored in a bucket (no cluster needed).
    Backups {
        #[command(subcommand)]
        command: stored::BackupsCommand,
    },
    /// Print a shell completion script: `source <(cluster-backup completion bash)`.
    #[command(after_help = "Examples:
  source <(cluster-backup completion bash)
  cluster-backup completion zsh > \"${fpath[1]}/_cluster-backup\"
  cluster-backup completion fish > ~/.config/fish/completions/cluster-backup.fish")]
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Show a Backup's status and the object keys its newest backup stored (also
    /// `backup describe`).
    Describe {
        /// Name of the Backup.
        name: String,
        /// Namespace of the Backup.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
}

/// `--metrics-bind-address`: `None` is `0`, no server.
#[derive(Clone, Copy, Debug)]
pub struct BindAddress(pub Option<std::net::SocketAddr>);

fn parse_bind_address(text: &str) -> Result<BindAddress, String> {
    controller::metrics::parse_bind_address(text).map(BindAddress)
}

/// Leader election among replicas of the operator (`cluster-backup run`).
#[derive(clap::Args, Debug)]
pub struct LeaderArgs {
    /// Run backups and restores only while holding a Lease, so that of several replicas one
    /// works and the others stand by to take over (off by default; the Deployment in
    /// config/manager turns it on).
    #[arg(long, env = "LEADER_ELECT")]
    pub leader_elect: bool,
    /// Name of the Lease the replicas compete for.
    #[arg(long, env = "LEADER_ELECTION_LEASE", default_value = controller::leader::DEFAULT_LEASE_NAME)]
    pub leader_election_lease: String,
    /// Namespace of the Lease (default: the operator's namespace, --operator-namespace).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// How long a Lease not renewed keeps its holder: a standby takes over at most this long
    /// after the leader died.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader keeps running without renewing the Lease before it stops and exits
    /// (shorter than the lease duration).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub leader_election_renew_deadline: Duration,
    /// How often the leader renews the Lease and a standby tries to take it.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub leader_election_retry_period: Duration,
    /// This replica's name in the Lease (default: the pod name, else host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub leader_election_identity: Option<String>,
}

impl LeaderArgs {
    fn election(&self, operator_namespace: &str) -> Option<controller::leader::LeaderElection> {
        self.leader_elect
            .then(|| controller::leader::LeaderElection {
                lease_name: self.leader_election_lease.clone(),
                namespace: self
                    .leader_election_namespace
                    .clone()
                    .unwrap_or_else(|| operator_namespace.to_string()),
                identity: controller::leader::identity(self.leader_election_identity.as_deref()),
                lease_duration: self.leader_election_lease_duration,
                renew_deadline: self.leader_election_renew_deadline,
                retry_period: self.leader_election_retry_period,
            })
    }
}

/// Where the backups are, for commands that read storage directly from a laptop.
#[derive(clap::Args, Debug)]
pub struct StorageArgs {
    /// minio, s3 or filesystem.
    #[arg(long, default_value = "minio", value_parser = ["minio", "s3", "filesystem"])]
    pub provider: String,
    /// Largest manifest read, in bytes (as the operator's flag; raise it for one-file-per-object
    /// backups of more than about 200,000 objects).
    #[arg(long, default_value_t = crate::storage::catalogue::DEFAULT_MAX_MANIFEST_BYTES, value_parser = clap::value_parser!(u64).range(1 << 20..))]
    pub max_manifest_bytes: u64,
    /// Bucket (for filesystem: the directory).
    #[arg(long)]
    pub bucket: String,
    /// S3 endpoint; http:// is plain, https:// is TLS.
    #[arg(long)]
    pub endpoint: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    /// Key prefix inside the bucket.
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// PEM file of the CA that signed an https:// endpoint's certificate.
    #[arg(long, value_name = "PEM_FILE")]
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Do not verify an https:// endpoint's certificate.
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// An encryption key file named `<id>.key` (32 bytes, raw or 64 hex digits), as in the
    /// location's key Secret; repeat it for backups written with other keys.
    #[arg(long = "encryption-key", value_name = "ID.key")]
    pub encryption_keys: Vec<std::path::PathBuf>,
    /// What the location encrypts (`encryption.scope`): with `secrets`, manifests, indexes
    /// and objects other than Secrets are read in plain.
    #[arg(long, value_enum, default_value_t = EncryptionScopeArg::All, requires = "encryption_keys")]
    pub encryption_scope: EncryptionScopeArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EncryptionScopeArg {
    All,
    Secrets,
}

impl From<EncryptionScopeArg> for api::EncryptionScope {
    fn from(arg: EncryptionScopeArg) -> Self {
        match arg {
            EncryptionScopeArg::All => api::EncryptionScope::All,
            EncryptionScopeArg::Secrets => api::EncryptionScope::Secrets,
        }
    }
}

impl StorageArgs {
    fn storage(&self) -> anyhow::Result<crate::storage::Storage> {
        crate::storage::catalogue::set_max_manifest_bytes(self.max_manifest_bytes);
        // Key file names first: a wrong command line is a usage error, found before anything
        // is read or contacted.
        let mut names = std::collections::BTreeSet::new();
        for file in &self.encryption_keys {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if !name.ends_with(crate::storage::sealed::KEY_SUFFIX) {
                return Err(output::UsageError(format!(
                    "--encryption-key {}: name key files <id>.key, as in the key Secret",
                    file.display()
                ))
                .into());
            }
            if !names.insert(name.clone()) {
                return Err(
                    output::UsageError(format!("--encryption-key {name} is given twice")).into(),
                );
            }
        }

        let location: api::StorageLocation = serde_json::from_value(serde_json::json!({
            "provider": self.provider,
            "bucket": self.bucket,
            "endpoint": self.endpoint,
            "region": self.region,
            "prefix": self.prefix,
        }))
        .explain(|| "invalid --provider (minio, s3 or filesystem)".to_string())?;
        let credentials = match (&self.access_key, &self.secret_key) {
            (Some(access), Some(secret)) => Some(crate::storage::Credentials {
                access_key_id: access.clone(),
                secret_access_key: secret.clone(),
                session_token: None,
            }),
            _ => None,
        };
        let location = api::StorageLocation {
            insecure_skip_tls_verify: Some(self.insecure_skip_tls_verify),
            ..location
        };
        let ca_bundle = match &self.ca_bundle {
            Some(file) => Some(
                std::fs::read(file)
                    .explain(|| format!("cannot read --ca-bundle {}", file.display()))?,
            ),
            None => None,
        };
        let storage = crate::storage::Storage::new_with_ca_bundle(
            &location,
            credentials,
            ca_bundle.as_deref(),
        )?;
        if self.encryption_keys.is_empty() {
            return Ok(storage);
        }
        // The files stand for the entries of a key Secret; the first one is `active` (reading
        // needs no active key, but a keyring has one). Wiped however this ends.
        let mut data = WipedOnDrop::default();
        for file in &self.encryption_keys {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let key = std::fs::read(file).map_err(|e| {
                anyhow::anyhow!("cannot read --encryption-key {}: {e}", file.display())
            })?;
            if data.0.is_empty()
                && let Some(id) = name.strip_suffix(crate::storage::sealed::KEY_SUFFIX)
            {
                data.0.insert(
                    crate::storage::sealed::ACTIVE_KEY.to_string(),
                    id.as_bytes().to_vec(),
                );
            }
            data.0.insert(name, key);
        }
        let keyring =
            crate::storage::sealed::Keyring::from_secret_data("--encryption-key", &data.0)
                .map_err(|reason| anyhow::anyhow!("--encryption-key: {reason}"))?;
        Ok(storage
            .with_keyring(std::sync::Arc::new(keyring))
            .with_scope(self.encryption_scope.into()))
    }
}

/// Key file contents, wiped when dropped (also on an early return).
#[derive(Default)]
struct WipedOnDrop(std::collections::BTreeMap<String, Vec<u8>>);

impl Drop for WipedOnDrop {
    fn drop(&mut self) {
        self.0.values_mut().for_each(zeroize::Zeroize::zeroize);
    }
}

/// Entry point of the binary. `anyhow` stops here; the library uses typed errors.
pub async fn main() -> anyhow::Result<Exit> {
    let cli = Cli::parse_from(plugin_args(std::env::args_os()));
    init_tracing(cli.log_format);
    // One TLS crypto provider for kube, object_store and everything else: aws-lc-rs.
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a rustls crypto provider was already installed");
    }
    match cli.command {
        Command::Crd => {
            let yaml = api::crds_yaml()?;
            std::io::stdout().write_all(yaml.as_bytes())?;
        }
        Command::Install => {
            let client = kube::Client::try_default()
                .await
                .explain(|| "cannot connect to Kubernetes".to_string())?;
            let installed = controller::install::install(&client, Duration::from_secs(60)).await?;
            println!(
                "CRDs installed and Established: {}",
                installed.crds.join(", ")
            );
            println!(
                "MutatingAdmissionPolicy {} installed and enforced",
                installed.policy
            );
        }
        Command::Backup { command } => return resources::backup(command).await,
        Command::Restore { command } => return resources::restore(command).await,
        Command::Backups { command } => return stored::run(command).await,
        Command::Completion { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "cluster-backup",
                &mut std::io::stdout(),
            );
        }
        Command::Describe { name, namespace } => {
            let client = kube::Client::try_default()
                .await
                .explain(|| "cannot connect to Kubernetes".to_string())?;
            print!("{}", describe::describe(&client, &namespace, &name).await?);
        }
        Command::Run {
            namespace,
            concurrency,
            restore_concurrency,
            restore_objects_in_flight,
            backup_lists_in_flight,
            kube_api_qps,
            kube_api_burst,
            max_manifest_bytes,
            run_retries,
            shutdown_timeout,
            install_crds,
            single_tenant,
            operator_namespace,
            metrics_bind_address,
            leader,
        } => {
            let client = kube::Client::try_default()
                .await
                .explain(|| "cannot connect to Kubernetes".to_string())?;
            let client = crate::k8s::rate_limit::rate_limited(client, kube_api_qps, kube_api_burst);
            if install_crds {
                controller::crds::install_crds(&client, Duration::from_secs(60)).await?;
            }
            crate::storage::catalogue::set_max_manifest_bytes(max_manifest_bytes);
            tracing::info!(
                namespace = namespace.as_deref().unwrap_or("<all>"),
                backup_concurrency = concurrency,
                restore_concurrency,
                restore_objects_in_flight,
                backup_lists_in_flight,
                kube_api_qps,
                kube_api_burst,
                max_manifest_bytes,
                run_retries,
                shutdown_timeout_seconds = shutdown_timeout.as_secs_f64(),
                single_tenant,
                operator_namespace,
                metrics_bind_address = metrics_bind_address
                    .0
                    .map_or_else(|| "off".to_string(), |a| a.to_string()),
                leader_elect = leader.leader_elect,
                "starting cluster-backup operator"
            );
            let leader_election = leader.election(&operator_namespace);
            if let Some(election) = &leader_election {
                election.validate()?;
            }
            let settings = controller::Settings {
                controllers: controller::Controllers::Both,
                namespace,
                backup_concurrency: usize::from(concurrency.max(1)),
                restore_concurrency: usize::from(restore_concurrency.max(1)),
                restore_objects_in_flight: usize::from(restore_objects_in_flight.max(1)),
                backup_lists_in_flight: usize::from(backup_lists_in_flight.max(1)),
                run_retries,
                shutdown_timeout,
                tenancy: if single_tenant {
                    controller::Tenancy::Single
                } else {
                    controller::Tenancy::Multi
                },
                operator_namespace,
                metrics_bind_address: metrics_bind_address.0,
                leader_election,
            };
            // Start-up problems are one line that says what to do, exit code 1; losing the
            // lead is an error exit too: Kubernetes restarts the pod as a standby.
            controller::run(client, settings).await?;
            tracing::info!("operator stopped");
        }
    }
    Ok(Exit::Ok)
}

/// Installed as `kubectl-backup`, `kubectl backup create NAME` arrives as `create NAME`: the
/// Backup commands are taken as `backup …` then (`kubectl backup restore create …` and the
/// others work as they are).
fn plugin_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = args.collect();
    let as_plugin = args
        .first()
        .and_then(|arg0| std::path::Path::new(arg0).file_name())
        .is_some_and(|name| name == "kubectl-backup");
    let backup_verb = args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| matches!(a, "create" | "get" | "describe" | "delete" | "run"));
    if as_plugin && backup_verb {
        args.insert(1, "backup".into());
    }
    args
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube_runtime=warn,object_store=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
