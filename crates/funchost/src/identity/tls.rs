//! The development identity provider's secure door: HTTPS on a loopback port of its own,
//! because MSAL.js refuses an authority over plain HTTP. The certificate is self-signed
//! for `127.0.0.1` and `localhost`, made at each start with a new key (rcgen), and kept in
//! memory only: a browser is told once per run to accept it (`scripts/run` says how), a
//! test browser runs with certificate errors ignored.
//!
//! A page on a loopback origin may call the token endpoint from script (CORS): the answer
//! names that origin, never `*`. Any other origin gets no CORS headers.

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::watch};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::ring,
        pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::{DevIdentity, Door, IdentityError, MAX_FORM_BYTES};

/// A client has this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS configuration with a new self-signed certificate for the loopback names.
pub fn self_signed() -> Result<Arc<ServerConfig>, IdentityError> {
    let failed = |e: &dyn std::fmt::Display| IdentityError::Certificate(e.to_string());
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(|e| failed(&e))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .map_err(|e| failed(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the provider on `listener` over TLS until `stop` is set.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    provider: Arc<DevIdentity>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let accepted = tokio::select! {
            () = crate::stopped(&mut stop) => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _peer)) = accepted else {
            continue;
        };
        let acceptor = acceptor.clone();
        let provider = provider.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            // A browser that has not accepted the certificate gives up here: not an error.
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = service_fn(move |request| {
                let provider = provider.clone();
                async move { Ok::<_, Infallible>(answer(&provider, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service);
            tokio::select! {
                _ = connection => {}
                () = crate::stopped(&mut stop) => {}
            }
        });
    }
}

async fn answer(provider: &DevIdentity, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let origin = loopback_origin(&parts.headers);
    let mut response = if parts.method == Method::OPTIONS {
        preflight(&parts.headers, origin.is_some())
    } else {
        match Limited::new(body, MAX_FORM_BYTES).collect().await {
            Ok(collected) => {
                let body = collected.to_bytes();
                let reply = provider.serve_door(
                    Door::Secure,
                    &parts.method,
                    parts.uri.path(),
                    parts.uri.query().unwrap_or_default(),
                    &body,
                );
                let (head, body) = reply.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map(|collected| collected.to_bytes())
                    .unwrap_or_default();
                Response::from_parts(head, Full::new(bytes))
            }
            Err(_) => status_only(StatusCode::PAYLOAD_TOO_LARGE),
        }
    };
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// The request's `Origin` when it is a loopback page's.
fn loopback_origin(headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let url = url::Url::parse(origin.to_str().ok()?).ok()?;
    super::signin::is_loopback(&url).then(|| origin.clone())
}

fn preflight(headers: &HeaderMap, allowed: bool) -> Response<Full<Bytes>> {
    let mut response = status_only(StatusCode::NO_CONTENT);
    if allowed {
        let out = response.headers_mut();
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
