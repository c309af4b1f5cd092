//! A warp hello-world built like the handler (same warp/tokio features, release profile,
//! and the handler's runtime: [`b2b_signup::cli::runtime`], so `SIGNUP_WORKER_THREADS`
//! sizes both alike): the yardstick `scripts/bench` compares rejected sign-ups with. Reads
//! the body like a route does and answers 200 "hello" to anything on
//! 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT.

use warp::Filter;

fn main() {
    let runtime = b2b_signup::cli::runtime().expect("a runtime");
    runtime.block_on(serve());
}

async fn serve() {
    let port: u16 = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("port is free");
    let route = warp::any()
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::bytes())
        .map(|_body: bytes::Bytes| "hello");
    warp::serve(route).incoming(listener).run().await;
}
