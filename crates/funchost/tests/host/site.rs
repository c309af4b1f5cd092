//! `--site DIR`: a static site's files beside the forwarded API, on one address, with the
//! Content-Security-Policy given by `--site-csp`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{AppRoot, FakeHandler, HostProcess, TEST_HOST_JSON};

const SIGNUP: &str = r#"{"bindings":[
    {"type":"httpTrigger","direction":"in","name":"req","authLevel":"anonymous","methods":["post"],"route":"signup"},
    {"type":"http","direction":"out","name":"res"}]}"#;

/// An app root whose `site/` folder holds a small site, and a secret beside it.
fn app_root() -> AppRoot {
    let root = AppRoot::new(TEST_HOST_JSON)
        .function("SignupHttp", SIGNUP)
        .file("secret.txt", "outside the site");
    let site = root.path().join("site");
    for (path, text) in [
        ("index.html", "<!doctype html><title>en</title>"),
        ("fr/index.html", "<!doctype html><title>fr</title>"),
        ("assets/site.css", "body{}"),
        ("assets/signup.js", "export {};"),
        ("config.json", r#"{"accessOptions":[]}"#),
        (".env", "SECRET=1"),
    ] {
        let file = site.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    std::os::unix::fs::symlink(root.path().join("secret.txt"), site.join("escape.txt")).unwrap();
    root
}

async fn start(root: &AppRoot, extra_args: &[&str]) -> (FakeHandler, HostProcess) {
    let handler = FakeHandler::start(|_| {
        (
            202,
            vec![("content-type", "application/json".into())],
            br#"{"requestId":"01J0000000000000000000000","status":"queued"}"#.to_vec(),
        )
    })
    .await;
    let site = root.path().join("site");
    let mut args = vec![
        "--handler-url",
        &handler.url,
        "--site",
        site.to_str().unwrap(),
    ];
    args.extend_from_slice(extra_args);
    let host = HostProcess::start(root, &args, &[]).await;
    (handler, host)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sends `request_target` byte for byte (an HTTP client would normalise `..` away) and
/// returns the status code and the raw answer.
async fn raw_get(address: &str, request_target: &str) -> (u16, String) {
    let authority = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request =
        format!("GET {request_target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the runner answers")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[tokio::test]
async fn the_page_and_the_api_share_one_address() {
    // Arrange
    let root = app_root();
    let (mut handler, host) = start(&root, &[]).await;

    // Act
    let page = client().get(host.url("/")).send().await.unwrap();
    let french = client().get(host.url("/fr/")).send().await.unwrap();
    let api = client()
        .post(host.url("/api/signup"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'self'; script-src 'self';"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("https:"),
        "no outside origin without a captcha: {csp}"
    );
    assert_eq!(
        page.text().await.unwrap(),
        "<!doctype html><title>en</title>"
    );
    assert_eq!(
        french.text().await.unwrap(),
        "<!doctype html><title>fr</title>"
    );
    assert_eq!(api.status(), 202, "the API is still forwarded");
    handler.next_to("/api/signup", Duration::from_secs(5)).await;

    let css = client()
        .get(host.url("/assets/site.css?v=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let js = client()
        .head(host.url("/assets/signup.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(js.headers()["content-length"], "10");
}

#[tokio::test]
async fn nothing_outside_the_folder_and_no_listing_is_served() {
    // Arrange
    let root = app_root();
    let (_handler, host) = start(&root, &[]).await;

    // Act / Assert: every way out of the folder, hidden files and folders without an index.
    for target in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/..%5csecret.txt",
        "/escape.txt",
        "/.env",
        "/%2eenv",
        "/assets/",
        "/missing.html",
        "/index.html%00.txt",
    ] {
        let (status, answer) = raw_get(&host.address, target).await;
        assert_eq!(status, 404, "{target}: {answer}");
        assert!(!answer.contains("outside the site"), "{target}");
        assert!(!answer.contains("SECRET"), "{target}");
        assert!(!answer.contains("site.css"), "{target}: a listing");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-security-policy:"),
            "{target}: errors are guarded too"
        );
    }

    // A folder without its slash is redirected on this origin only, never to `//host`.
    for (target, location) in [("/fr", "/fr/"), ("//fr", "/fr/"), ("/assets", "/assets/")] {
        let (status, answer) = raw_get(&host.address, target).await;
        assert_eq!(status, 308, "{target}: {answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains(&format!("location: {location}\r\n")),
            "{target}: {answer}"
        );
    }

    let post = client().post(host.url("/index.html")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn the_site_csp_is_sent_as_given_and_a_bad_one_stops_the_runner() {
    let root = app_root();
    let policy = "default-src 'self'; script-src 'self' https://challenges.cloudflare.com; \
                  frame-src https://challenges.cloudflare.com; frame-ancestors 'none'";
    let (_handler, host) = start(&root, &["--site-csp", policy]).await;
    let page = client().get(host.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self' https://challenges.cloudflare.com;"),
        "{csp}"
    );
    assert!(
        csp.contains("frame-src https://challenges.cloudflare.com;"),
        "{csp}"
    );
    drop(host);

    let site = root.path().join("site");
    let (status, output) = HostProcess::run_to_exit(
        &root,
        &[
            "--handler-url",
            "http://127.0.0.1:9",
            "--site",
            site.to_str().unwrap(),
            "--site-csp",
            "default-src 'self'\nX-Injected: 1",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(output.contains("--site-csp"), "{output}");
}
