//! CORS for the forwarded HTTP routes, as `func start` applies `Host.CORS` from
//! local.settings.json. In Azure the platform answers CORS from the app's `cors` site
//! settings (infra/, `corsAllowedOrigins`), before the request reaches the host: the
//! handler itself never deals with it.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here
//! without reaching the handler; an actual request from an allowed origin gets
//! `Access-Control-Allow-Origin` on its answer. A disallowed origin gets no CORS headers, so
//! the browser keeps the answer from the page.

use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};

/// Allowed origins; empty means CORS is off (no headers at all).
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
    any: bool,
    credentials: bool,
}

impl Cors {
    /// From `Host.CORS` (`https://a.example,https://b.example` or `*`) and `CORSCredentials`.
    pub fn new(origins: &str, credentials: bool) -> Self {
        let origins: Vec<String> = origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Self {
            any: origins.iter().any(|o| o == "*"),
            origins,
            // Credentials with a wildcard would let every site act as the user: never.
            credentials,
        }
    }

    fn allowed_origin<'a>(&self, headers: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin
            .to_str()
            .ok()?
            .trim_end_matches('/')
            .to_ascii_lowercase();
        (self.any || self.origins.contains(&text)).then_some(origin)
    }

    /// The answer to a preflight, or `None` when the request is not one.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<warp::reply::Response> {
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut response = warp::reply::Response::new(Vec::new().into());
        *response.status_mut() = StatusCode::NO_CONTENT;
        if let Some(origin) = self.allowed_origin(headers) {
            let out = response.headers_mut();
            self.allow(out, origin);
            if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
                out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, requested.clone());
            }
            if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
            }
            out.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("3600"),
            );
        }
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
        Some(response)
    }

    /// Adds the CORS headers an actual request's answer needs.
    pub fn decorate(&self, request: &HeaderMap, response: &mut warp::reply::Response) {
        if let Some(origin) = self.allowed_origin(request) {
            self.allow(response.headers_mut(), origin);
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }

    fn allow(&self, out: &mut HeaderMap, origin: &HeaderValue) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.credentials && !self.any {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                warp::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn preflights_are_answered_for_allowed_origins_only() {
        let cors = Cors::new(
            "https://signup.contoso.example/, https://other.example",
            false,
        );
        let allowed = cors
            .preflight(
                &Method::OPTIONS,
                &headers(&[
                    ("origin", "https://signup.contoso.example"),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type"),
                ]),
            )
            .unwrap();
        assert_eq!(allowed.status(), 204);
        assert_eq!(
            allowed.headers()["access-control-allow-origin"],
            "https://signup.contoso.example"
        );
        assert_eq!(
            allowed.headers()["access-control-allow-headers"],
            "content-type"
        );
        // The admin console's calls: a GET with the bearer token.
        let console = cors
            .preflight(
                &Method::OPTIONS,
                &headers(&[
                    ("origin", "https://signup.contoso.example"),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "authorization"),
                ]),
            )
            .unwrap();
        assert_eq!(
            console.headers()["access-control-allow-headers"],
            "authorization"
        );
        let refused = cors
            .preflight(
                &Method::OPTIONS,
                &headers(&[
                    ("origin", "https://evil.example"),
                    ("access-control-request-method", "POST"),
                ]),
            )
            .unwrap();
        assert!(
            !refused
                .headers()
                .contains_key("access-control-allow-origin")
        );
        assert!(
            cors.preflight(
                &Method::OPTIONS,
                &headers(&[("origin", "https://other.example")])
            )
            .is_none(),
            "not a preflight"
        );
    }

    #[test]
    fn answers_get_allow_origin_and_credentials_never_with_a_wildcard() {
        let mut response = warp::reply::Response::new(Vec::new().into());
        Cors::new("https://a.example", true)
            .decorate(&headers(&[("origin", "https://a.example")]), &mut response);
        assert_eq!(
            response.headers()["access-control-allow-credentials"],
            "true"
        );
        let mut response = warp::reply::Response::new(Vec::new().into());
        Cors::new("*", true).decorate(&headers(&[("origin", "https://x.example")]), &mut response);
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "https://x.example"
        );
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-credentials")
        );
        let mut response = warp::reply::Response::new(Vec::new().into());
        Cors::default().decorate(&headers(&[("origin", "https://x.example")]), &mut response);
        assert!(response.headers().is_empty(), "CORS off: no headers");
    }
}
