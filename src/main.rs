//! `b2b-signup`: the Azure Functions custom handler and its command-line tools.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    b2b_signup::cli::run().await
}
