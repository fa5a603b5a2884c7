//! `cluster-backup`: the operator (`run`), the CRD printer (`crd`) and user commands.
//! Everything lives in the library; this file only hands over to it.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match cluster_backup::cli::main().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The library's messages already say what failed and why; the source chain
            // repeats the raw HTTP bodies.
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
