//! The runner's HTTP front door: routes `/<routePrefix>/<route>` of every forwarded HTTP
//! function, checks `authLevel` keys, and forwards the request to the handler unchanged.
//!
//! With `enableForwardingHttpRequest`, the host sends a function with exactly one
//! `httpTrigger` and one `http` output to the handler at the same path, method, query,
//! headers and body, and returns the handler's answer as is
//! (`DefaultHttpWorkerService.ProcessHttpInAndOutInvocationRequest`), adding
//! `X-Azure-Functions-InvocationId` and `X-Azure-Functions-HostVersion`. Forwarding uses a
//! bare hyper client so nothing else is added (reqwest would add `Accept: */*` and follow
//! redirects). Hop-by-hop headers (RFC 9110 §7.6.1) are the one thing a proxy must not pass.
//!
//! Keys: `authLevel` `function` and `admin` need a key from
//! [`FUNCTION_KEYS_SETTING`](super::settings::FUNCTION_KEYS_SETTING) in the `x-functions-key`
//! header or the `code` query parameter; a missing or wrong key is 401 with an empty body, as
//! in Azure. The key is the host's business: it is removed before forwarding.
//! <https://learn.microsoft.com/azure/azure-functions/function-keys-how-to>

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use bytes::{Buf, BufMut, Bytes};
use futures::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use percent_encoding::percent_decode_str;
use tokio::net::TcpListener;
use warp::{
    Filter,
    http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode},
};

use super::{
    config::{AuthLevel, Function, Trigger},
    cors::Cors,
    upload::HandlerConnector,
};

/// Azure's request size limit for HTTP functions: "The HTTP request length is limited to
/// 100 MB (104,857,600 bytes)". Over it the host answers 413 itself; under it the handler's
/// answer is returned, even one given before the body was all sent (`upload.rs`).
/// <https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#limits>
const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// The host version the runner claims in `X-Azure-Functions-HostVersion`.
pub const HOST_VERSION: &str = concat!("4.0.0-funchost.", env!("CARGO_PKG_VERSION"));

/// One segment of a route template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matched case-insensitively, as ASP.NET routing does.
    Literal(String),
    /// `{name}`: any one non-empty path segment.
    Parameter,
}

/// Why a `route` is not one the runner can serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "route parameter {0:?} is not supported by the local host runner (only {{name}}: no \
         constraints, optional or catch-all parameters)"
    )]
    UnsupportedParameter(String),
    #[error(
        "route segment {0:?} mixes text and parameters, which the local host runner does not \
         support"
    )]
    MixedSegment(String),
}

/// Why the HTTP functions cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteTableError {
    #[error("{function}: {method:?} is not an HTTP method")]
    Method { function: String, method: String },
    #[error("{function}: {source}")]
    Route {
        function: String,
        source: RouteError,
    },
}

/// Why the function keys setting cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    #[error("each entry must be name=key")]
    NotNameEqualsKey,
}

/// A function's `route`, e.g. `requests/{id}/approve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate {
    segments: Vec<Segment>,
}

impl RouteTemplate {
    /// Parses a route; only whole-segment `{name}` parameters are supported.
    pub fn parse(route: &str) -> Result<Self, RouteError> {
        let mut segments = Vec::new();
        for segment in route.trim_matches('/').split('/').filter(|s| !s.is_empty()) {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(RouteError::UnsupportedParameter(segment.to_owned()));
                }
                segments.push(Segment::Parameter);
            } else if segment.contains(['{', '}']) {
                return Err(RouteError::MixedSegment(segment.to_owned()));
            } else {
                segments.push(Segment::Literal(segment.to_owned()));
            }
        }
        Ok(Self { segments })
    }

    fn matches(&self, path: &[String]) -> bool {
        self.segments.len() == path.len()
            && self.segments.iter().zip(path).all(|(s, p)| match s {
                Segment::Literal(text) => text.eq_ignore_ascii_case(p),
                Segment::Parameter => !p.is_empty(),
            })
    }

    /// More literal segments win when two templates match (`requests/pending` over
    /// `requests/{id}`), as in ASP.NET route precedence.
    fn literals(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }
}

/// A forwarded HTTP function.
#[derive(Debug, Clone)]
struct HttpRoute {
    function: String,
    template: RouteTemplate,
    /// Empty: every method.
    methods: Vec<Method>,
    auth_level: AuthLevel,
}

/// The result of looking a request up.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteMatch<'a> {
    /// A function takes the request.
    Found {
        /// The function's name.
        function: &'a str,
        /// Who may call it.
        auth_level: AuthLevel,
    },
    /// A route matches the path but not the method: 405.
    MethodNotAllowed,
    /// No route matches: 404.
    NotFound,
}

/// Every forwarded HTTP function under the route prefix.
#[derive(Debug, Clone)]
pub struct RouteTable {
    prefix: Vec<String>,
    routes: Vec<HttpRoute>,
}

impl RouteTable {
    /// Routes for the HTTP functions among `functions`; `prefix` is host.json's `routePrefix`.
    pub fn new(prefix: &str, functions: &[Function]) -> Result<Self, RouteTableError> {
        let mut routes = Vec::new();
        for function in functions {
            let Trigger::Http(trigger) = &function.trigger else {
                continue;
            };
            let methods = trigger
                .methods
                .iter()
                .map(|m| {
                    Method::from_bytes(m.as_bytes()).map_err(|_| RouteTableError::Method {
                        function: function.name.clone(),
                        method: m.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
            routes.push(HttpRoute {
                function: function.name.clone(),
                template: RouteTemplate::parse(&trigger.route).map_err(|source| {
                    RouteTableError::Route {
                        function: function.name.clone(),
                        source,
                    }
                })?,
                methods,
                auth_level: trigger.auth_level,
            });
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.template.literals()));
        Ok(Self {
            prefix: prefix
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            routes,
        })
    }

    /// Finds the function for `method` and a request path (percent-encoded, as received).
    pub fn find(&self, method: &Method, path: &str) -> RouteMatch<'_> {
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let Some(rest) = strip_prefix(&segments, &self.prefix) else {
            return RouteMatch::NotFound;
        };
        let mut path_matched = false;
        for route in self.routes.iter().filter(|r| r.template.matches(rest)) {
            path_matched = true;
            if route.methods.is_empty() || route.methods.contains(method) {
                return RouteMatch::Found {
                    function: &route.function,
                    auth_level: route.auth_level,
                };
            }
        }
        if path_matched {
            RouteMatch::MethodNotAllowed
        } else {
            RouteMatch::NotFound
        }
    }
}

fn strip_prefix<'a>(segments: &'a [String], prefix: &[String]) -> Option<&'a [String]> {
    if segments.len() < prefix.len() {
        return None;
    }
    let (head, rest) = segments.split_at(prefix.len());
    head.iter()
        .zip(prefix)
        .all(|(a, b)| a.eq_ignore_ascii_case(b))
        .then_some(rest)
}

/// The keys from [`FUNCTION_KEYS_SETTING`](super::settings::FUNCTION_KEYS_SETTING).
/// `Debug` shows names only.
#[derive(Clone, Default)]
pub struct FunctionKeys(Vec<(String, Vec<u8>)>);

impl std::fmt::Debug for FunctionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl FunctionKeys {
    /// Parses `name=key,name2=key2`; an empty or absent setting means no keys.
    pub fn parse(setting: Option<&str>) -> Result<Self, KeysError> {
        let mut keys = Vec::new();
        for pair in setting
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (name, key) = pair
                .split_once('=')
                .map(|(n, k)| (n.trim(), k.trim()))
                .filter(|(n, k)| !n.is_empty() && !k.is_empty())
                .ok_or(KeysError::NotNameEqualsKey)?;
            keys.push((name.to_owned(), key.as_bytes().to_vec()));
        }
        Ok(Self(keys))
    }

    /// Whether no keys are configured (then every keyed route answers 401).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `presented` is one of the keys.
    pub fn accepts(&self, presented: &str) -> bool {
        self.name_of(presented).is_some()
    }

    /// The name of the key `presented` is. Every key is compared in full, in constant time
    /// per byte, so timing does not tell how much of a guess was right.
    pub fn name_of(&self, presented: &str) -> Option<&str> {
        self.0.iter().fold(None, |found, (name, key)| {
            let matches = constant_time_eq(key, presented.as_bytes());
            found.or(matches.then_some(name.as_str()))
        })
    }
}

/// Compares without an early exit on the first differing byte (the length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Appends the caller's address to `X-Forwarded-For`, as Azure's front end does, so the
/// handler's per-IP limits see the same header shape locally as in Azure. What the caller
/// sent is kept byte for byte, text or not: the handler must cope with whatever a client
/// writes there, and a runner that dropped such a header would hide what it does.
fn append_forwarded_for(headers: &mut HeaderMap, peer: Option<std::net::SocketAddr>) {
    let Some(peer) = peer else { return };
    let mut value: Vec<u8> = Vec::new();
    for existing in headers.get_all("x-forwarded-for") {
        value.extend_from_slice(existing.as_bytes());
        value.extend_from_slice(b", ");
    }
    value.extend_from_slice(peer.ip().to_string().as_bytes());
    if let Ok(value) = HeaderValue::from_bytes(&value) {
        headers.insert("x-forwarded-for", value);
    }
}

/// Tells the handler the name of the function key a request was let in with. Azure's host
/// does not; the handler then records `function key`.
pub const KEY_NAME_HEADER: &str = "x-functions-key-name";

/// The key a request presents: the `x-functions-key` header, else the `code` parameter.
fn presented_key(headers: &HeaderMap, query: &str) -> Option<String> {
    if let Some(value) = headers.get("x-functions-key").and_then(|v| v.to_str().ok()) {
        return Some(value.to_owned());
    }
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name.eq_ignore_ascii_case("code"))
        .map(|(_, value)| value.into_owned())
}

/// The query without `code` parameters, other parameters byte for byte as they were.
fn strip_code(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !percent_decode_str(name)
                .decode_utf8_lossy()
                .eq_ignore_ascii_case("code")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), and
/// `content-length`, which the client recomputes from the body it sends.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named_in_connection: Vec<HeaderName> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named_in_connection {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ] {
        headers.remove(name);
    }
}

/// Sends requests to the handler at its own address.
#[derive(Clone)]
pub struct Forwarder {
    client: Client<HandlerConnector, Full<Bytes>>,
    /// `host:port` of the handler.
    authority: String,
    /// The host's `functionTimeout`: a request that takes longer fails.
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("the handler did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the handler: {0}")]
    Unreachable(String),
}

impl Forwarder {
    /// A forwarder to the handler at `authority` (`host:port`).
    pub fn new(authority: String, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(HandlerConnector(connector));
        Self {
            client,
            authority,
            timeout,
        }
    }

    async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Bytes,
        invocation_id: &str,
    ) -> Result<Response<Bytes>, ForwardError> {
        strip_hop_by_hop(&mut headers);
        headers.insert(
            "x-azure-functions-hostversion",
            HeaderValue::from_static(HOST_VERSION),
        );
        if let Ok(id) = HeaderValue::from_str(invocation_id) {
            headers.insert("x-azure-functions-invocationid", id);
        }
        let uri = format!("http://{}{path_and_query}", self.authority);
        let mut request = warp::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(body))
            .map_err(|e| ForwardError::Unreachable(e.to_string()))?;
        *request.headers_mut() = headers;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| ForwardError::Unreachable(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| ForwardError::Unreachable(e.to_string()))?
                .to_bytes();
            Ok(Response::from_parts(parts, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ForwardError::Timeout(self.timeout))?
    }
}

/// What the HTTP front door needs.
pub struct HttpFrontDoor {
    pub routes: RouteTable,
    pub keys: FunctionKeys,
    pub forwarder: Forwarder,
    pub cors: Cors,
    /// `--site`: static files for the paths no function takes.
    pub site: Option<super::site::StaticSite>,
    /// `--dev-identity`: the development identity provider, under
    /// [`PATH_PREFIX`](super::identity::PATH_PREFIX).
    pub dev_identity: Option<Arc<super::identity::DevIdentity>>,
    /// `--dev-mail`: the mail catcher, under [`PATH_PREFIX`](super::mail::PATH_PREFIX).
    pub dev_mail: Option<Arc<super::mail::DevMail>>,
}

/// Serves on `listener` until `shutdown` completes, then finishes requests in flight.
pub async fn serve(
    listener: TcpListener,
    front_door: HttpFrontDoor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let state = Arc::new(front_door);
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let routes = warp::any()
        .and(warp::method())
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  mut headers: HeaderMap,
                  peer: Option<std::net::SocketAddr>,
                  body| {
                let state = state.clone();
                async move {
                    if let Some(preflight) = state.cors.preflight(&method, &headers) {
                        return preflight;
                    }
                    let request_headers = headers.clone();
                    append_forwarded_for(&mut headers, peer);
                    let mut response =
                        handle(&state, method, path.as_str(), query, headers, body).await;
                    state.cors.decorate(&request_headers, &mut response);
                    response
                }
            },
        )
        .recover(|_rejection| async { Ok::<_, Infallible>(empty(StatusCode::BAD_REQUEST)) })
        .unify();
    warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

async fn handle<S, B>(
    state: &HttpFrontDoor,
    method: Method,
    path: &str,
    mut query: String,
    mut headers: HeaderMap,
    body: S,
) -> warp::reply::Response
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    if let Some(provider) = &state.dev_identity {
        let prefix = super::identity::PATH_PREFIX;
        if path == prefix || path.starts_with(&format!("{prefix}/")) {
            return match read_body(body).await {
                Ok(body) => provider.serve(&method, path, &body),
                Err(status) => empty(status),
            };
        }
    }
    if let Some(catcher) = &state.dev_mail {
        let prefix = super::mail::PATH_PREFIX;
        if path == prefix || path.starts_with(&format!("{prefix}/")) {
            return match read_body(body).await {
                Ok(body) => catcher.serve(&method, path, &query, &headers, &body),
                Err(status) => empty(status),
            };
        }
    }
    let route = state.routes.find(&method, path);
    // The sign-up page's files, at every path no function takes (`--site`, site.rs).
    if let (RouteMatch::NotFound, Some(site)) = (&route, &state.site) {
        return site.serve(&method, path).await;
    }
    let (function, auth_level) = match route {
        RouteMatch::Found {
            function,
            auth_level,
        } => (function.to_owned(), auth_level),
        RouteMatch::MethodNotAllowed => return empty(StatusCode::METHOD_NOT_ALLOWED),
        // The host's own page at `/`; anything else unknown is 404, as in Azure.
        RouteMatch::NotFound if path == "/" && method == Method::GET => {
            return warp::reply::Response::new("funchost: running\n".into());
        }
        RouteMatch::NotFound => return empty(StatusCode::NOT_FOUND),
    };
    // Only the runner says which key was used (the Approval function records it).
    headers.remove(KEY_NAME_HEADER);
    if auth_level != AuthLevel::Anonymous {
        let presented = presented_key(&headers, &query);
        let Some(name) = presented.as_deref().and_then(|key| state.keys.name_of(key)) else {
            tracing::info!(function, "401: missing or wrong function key");
            return empty(StatusCode::UNAUTHORIZED);
        };
        if let Ok(value) = HeaderValue::from_str(name) {
            headers.insert(KEY_NAME_HEADER, value);
        }
        headers.remove("x-functions-key");
        query = strip_code(&query);
    }
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(status) => return empty(status),
    };
    let path_and_query = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let invocation_id = uuid::Uuid::new_v4().to_string();
    let started = std::time::Instant::now();
    match state
        .forwarder
        .forward(
            method.clone(),
            &path_and_query,
            headers,
            body,
            &invocation_id,
        )
        .await
    {
        Ok(response) => {
            tracing::info!(
                function,
                invocation_id,
                %method,
                status = response.status().as_u16(),
                elapsed_ms = started.elapsed().as_millis(),
                "executed"
            );
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            warp::reply::Response::from_parts(parts, body.into())
        }
        Err(e) => {
            tracing::error!(function, invocation_id, error = %e, "forwarding failed");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Reads the request body, stopping as soon as it passes [`MAX_REQUEST_BYTES`]: 413 then,
/// 400 for a body that breaks off.
async fn read_body<S, B>(body: S) -> Result<Bytes, StatusCode>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut collected = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
        if collected.len() + chunk.remaining() > MAX_REQUEST_BYTES {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        collected.put(chunk);
    }
    Ok(collected.freeze())
}

fn empty(status: StatusCode) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(Bytes::new().into());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HttpTrigger;

    fn http(name: &str, route: &str, methods: &[&str], auth_level: AuthLevel) -> Function {
        Function {
            name: name.into(),
            trigger: Trigger::Http(HttpTrigger {
                route: route.into(),
                methods: methods.iter().map(|m| m.to_string()).collect(),
                auth_level,
            }),
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(
            "api",
            &[
                http("SignupHttp", "signup", &["POST"], AuthLevel::Anonymous),
                http(
                    "Approval",
                    "requests/{id}/{decision}",
                    &["POST"],
                    AuthLevel::Function,
                ),
                http("Pending", "requests/pending/list", &[], AuthLevel::Admin),
            ],
        )
        .unwrap()
    }

    #[test]
    fn requests_find_their_function() {
        let table = table();
        let found = |function, auth_level| RouteMatch::Found {
            function,
            auth_level,
        };
        let cases = [
            (
                "exact",
                Method::POST,
                "/api/signup",
                found("SignupHttp", AuthLevel::Anonymous),
            ),
            (
                "case-insensitive",
                Method::POST,
                "/API/SignUp",
                found("SignupHttp", AuthLevel::Anonymous),
            ),
            (
                "trailing slash",
                Method::POST,
                "/api/signup/",
                found("SignupHttp", AuthLevel::Anonymous),
            ),
            (
                "parameters",
                Method::POST,
                "/api/requests/01HX/approve",
                found("Approval", AuthLevel::Function),
            ),
            (
                "encoded parameter",
                Method::POST,
                "/api/requests/a%2Fb/deny",
                found("Approval", AuthLevel::Function),
            ),
            (
                "literals win",
                Method::POST,
                "/api/requests/pending/list",
                found("Pending", AuthLevel::Admin),
            ),
            (
                "no methods means all",
                Method::DELETE,
                "/api/requests/pending/list",
                found("Pending", AuthLevel::Admin),
            ),
            (
                "wrong method",
                Method::GET,
                "/api/signup",
                RouteMatch::MethodNotAllowed,
            ),
            (
                "too few segments",
                Method::POST,
                "/api/requests/01HX",
                RouteMatch::NotFound,
            ),
            ("no prefix", Method::POST, "/signup", RouteMatch::NotFound),
            ("unknown", Method::POST, "/api/other", RouteMatch::NotFound),
            ("root", Method::GET, "/", RouteMatch::NotFound),
        ];
        for (description, method, path, expected) in cases {
            assert_eq!(table.find(&method, path), expected, "{description}");
        }
    }

    #[test]
    fn an_empty_prefix_serves_routes_at_the_root() {
        let table =
            RouteTable::new("", &[http("Hook", "hook", &[], AuthLevel::Anonymous)]).unwrap();
        assert!(matches!(
            table.find(&Method::GET, "/hook"),
            RouteMatch::Found { .. }
        ));
    }

    #[test]
    fn unsupported_route_templates_are_refused() {
        for route in ["a/{id:int}", "a/{id?}", "a/{*rest}", "file.{ext}", "a/{}"] {
            assert!(RouteTemplate::parse(route).is_err(), "{route}");
        }
    }

    #[test]
    fn keys_are_compared_in_full() {
        let keys = FunctionKeys::parse(Some("default=abc123, ops = xyz789 ")).unwrap();
        assert!(keys.accepts("abc123"));
        assert!(keys.accepts("xyz789"));
        for wrong in ["", "abc", "abc1234", "ABC123", "xyz788"] {
            assert!(!keys.accepts(wrong), "{wrong:?}");
        }
        assert!(FunctionKeys::parse(None).unwrap().is_empty());
        assert!(FunctionKeys::parse(Some("nokey")).is_err());
        assert!(!format!("{keys:?}").contains("abc123"));
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
    }

    #[test]
    fn the_key_comes_from_the_header_or_the_code_parameter() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            presented_key(&headers, "a=1&code=k%3D1"),
            Some("k=1".into())
        );
        headers.insert("x-functions-key", HeaderValue::from_static("h"));
        assert_eq!(presented_key(&headers, "code=q"), Some("h".into()));
        assert_eq!(presented_key(&HeaderMap::new(), "a=1"), None);
    }

    #[test]
    fn code_is_stripped_and_the_rest_kept_as_sent() {
        assert_eq!(strip_code("code=k"), "");
        assert_eq!(strip_code("a=1&code=k&b=%20x"), "a=1&b=%20x");
        assert_eq!(strip_code("Code=k&flag"), "flag");
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("content-length", "5"),
            ("x-custom", "kept"),
            ("host", "localhost:7071"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut headers);
        let mut names: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["host", "x-custom"]);
    }
}
