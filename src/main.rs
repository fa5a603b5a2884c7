//! `cluster-backup`: the operator (`run`), the CRD printer (`crd`) and user commands.
//! Everything lives in the library; this file only hands over to it.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    use cluster_backup::cli::output::{Exit, UsageError};
    match cluster_backup::cli::main().await {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            // The library's messages already say what failed and why; the source chain
            // repeats the raw HTTP bodies. Exit codes: README "CLI".
            eprintln!("error: {err}");
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(Exit::Usage.code())
            } else {
                ExitCode::from(Exit::Failed.code())
            }
        }
    }
}
