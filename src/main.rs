//! `b2b-signup`: the Azure Functions custom handler and its command-line tools.

use std::process::ExitCode;

fn main() -> ExitCode {
    match b2b_signup::cli::runtime() {
        Ok(runtime) => runtime.block_on(b2b_signup::cli::run()),
        Err(e) => {
            eprintln!("b2b-signup: configuration error: {e}");
            ExitCode::from(2)
        }
    }
}
