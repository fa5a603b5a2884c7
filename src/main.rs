//! `cluster-backup`: the operator (`run`), the CRD printer (`crd`) and user commands.
//! Everything lives in the library; this file only hands over to it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cluster_backup::cli::main().await
}
