//! A static site's files (`funchost --site DIR`, the sign-up page), served at every path no
//! function takes, so the page and the API it posts to share one address locally (as they do
//! behind Azure Static Web Apps with a linked Functions app).
//!
//! Only files inside the folder are served: no directory listings (a folder answers with its
//! `index.html` or 404), no `..`, no hidden files, nothing reached through a symbolic link
//! that leads outside. Every answer carries the Content-Security-Policy given with
//! `--site-csp` (this origin only without it: the app, not the host, knows what its page
//! loads), and `nosniff` and `no-referrer`: the page handles personal data, and the request
//! id in `thanks.html?id=…` must not leak to another site.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use warp::http::{HeaderValue, Method, StatusCode, header};

/// Characters escaped when a path segment goes back into a `Location`.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Larger files are not the sign-up page's; refusing them keeps memory bounded.
const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;

/// The Content-Security-Policy without `--site-csp`: this origin only. An app whose page
/// loads from elsewhere (a captcha widget) passes its own policy.
pub const SELF_ONLY_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; frame-src 'none'; img-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Why a folder cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("--site {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--site {}: not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error("--site-csp: not a valid header value")]
    InvalidPolicy,
}

/// A folder served as a static site.
#[derive(Debug, Clone)]
pub struct StaticSite {
    /// Canonical (symbolic links resolved), so containment is a prefix check.
    root: PathBuf,
    csp: HeaderValue,
}

impl StaticSite {
    /// Serves `dir` with `csp` (default [`SELF_ONLY_CSP`]) on every answer.
    pub fn new(dir: &Path, csp: Option<&str>) -> Result<Self, SiteError> {
        let root = dir.canonicalize().map_err(|source| SiteError::Unreadable {
            path: dir.to_owned(),
            source,
        })?;
        if !root.is_dir() {
            return Err(SiteError::NotAFolder(dir.to_owned()));
        }
        let csp = HeaderValue::from_str(csp.unwrap_or(SELF_ONLY_CSP))
            .map_err(|_| SiteError::InvalidPolicy)?;
        Ok(Self { root, csp })
    }

    /// The answer for `path` (as received, percent-encoded; without the query).
    pub async fn serve(&self, method: &Method, path: &str) -> warp::reply::Response {
        if method != Method::GET && method != Method::HEAD {
            let mut response = self.text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let Some(segments) = safe_segments(path) else {
            return self.not_found();
        };
        let mut file = self.root.clone();
        file.extend(&segments);
        let Ok(metadata) = tokio::fs::metadata(&file).await else {
            return self.not_found();
        };
        if metadata.is_dir() {
            if !path.ends_with('/') {
                // `fr` → `fr/`, so the page's relative links resolve inside the folder. Built
                // from the checked segments: never `//host` (another origin).
                let mut location = String::from("/");
                for segment in &segments {
                    location.extend(utf8_percent_encode(segment, SEGMENT));
                    location.push('/');
                }
                let mut response = self.text(StatusCode::PERMANENT_REDIRECT, "");
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                return response;
            }
            file.push("index.html");
        }
        // A symbolic link may point anywhere: the resolved file must still be inside.
        let Ok(resolved) = tokio::fs::canonicalize(&file).await else {
            return self.not_found();
        };
        if !resolved.starts_with(&self.root) {
            tracing::warn!(path, "refused: resolves outside the site folder");
            return self.not_found();
        }
        match tokio::fs::metadata(&resolved).await {
            Ok(m) if m.is_file() && m.len() <= MAX_FILE_BYTES => {}
            _ => return self.not_found(),
        }
        let body = match tokio::fs::read(&resolved).await {
            Ok(bytes) => Bytes::from(bytes),
            Err(_) => return self.not_found(),
        };
        let length = body.len();
        let mut response = if method == Method::HEAD {
            warp::reply::Response::new(Bytes::new().into())
        } else {
            warp::reply::Response::new(body.into())
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&resolved)),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        self.secure(response)
    }

    fn not_found(&self) -> warp::reply::Response {
        self.text(StatusCode::NOT_FOUND, "Not found\n")
    }

    fn text(&self, status: StatusCode, text: &'static str) -> warp::reply::Response {
        let mut response = warp::reply::Response::new(text.into());
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.secure(response)
    }

    fn secure(&self, mut response: warp::reply::Response) -> warp::reply::Response {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        // Revalidate every time: a developer editing the page sees the change at once.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// The decoded segments of `path`, or `None` when one could leave the folder or name a
/// hidden file (`..`, `.git`, an encoded `/` or `\`, a NUL) or is not UTF-8.
fn safe_segments(path: &str) -> Option<Vec<String>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|raw| {
            let segment = percent_decode_str(raw).decode_utf8().ok()?.into_owned();
            let refused = segment.starts_with('.')
                || segment.contains(['/', '\\', '\0', ':'])
                || segment.is_empty();
            (!refused).then_some(segment)
        })
        .collect()
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_leave_the_folder_are_refused() {
        assert_eq!(safe_segments("/"), Some(vec![]));
        assert_eq!(
            safe_segments("/fr/index.html"),
            Some(vec!["fr".into(), "index.html".into()])
        );
        assert_eq!(
            safe_segments("/caf%C3%A9.html"),
            Some(vec!["café.html".into()])
        );
        for bad in [
            "/../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/fr/..%2F..%2Fetc",
            "/a%2fb",
            "/a%5C..%5Cb",
            "/.git/config",
            "/x%00.html",
            "/%FF",
            "/c:/windows",
        ] {
            assert_eq!(safe_segments(bad), None, "{bad}");
        }
    }
}
