//! Command line: `cluster-backup run | crd | ...`.

use std::io::Write;

use clap::{Parser, Subcommand};

use crate::api;

#[derive(Parser, Debug)]
#[command(name = "cluster-backup", version, about = "Back up Kubernetes objects to object storage and restore them")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CustomResourceDefinitions (Backup, Restore) as YAML.
    Crd,
}

/// Entry point of the binary. `anyhow` stops here; the library uses typed errors.
pub async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            let yaml = api::crds_yaml()?;
            std::io::stdout().write_all(yaml.as_bytes())?;
        }
    }
    Ok(())
}
