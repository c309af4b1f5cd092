//! Request bodies, read with a size limit whether or not a Content-Length was sent.

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};
use warp::Filter;

use crate::problem::{ErrorCode, Problem};

/// The body as bytes, refused with 413 as soon as it passes `limit`. Unlike warp's
/// `content_length_limit`, a request without Content-Length (an empty POST, a chunked
/// upload) is read, not refused.
pub(super) fn limited(
    limit: usize,
) -> impl Filter<Extract = (Result<Bytes, Problem>,), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .then(move |declared: Option<u64>, body| async move {
            // A declared length over the limit is refused without reading anything.
            if declared.is_some_and(|length| length > limit as u64) {
                return Err(too_large(limit));
            }
            read_limited(body, limit)
                .await
                .map_err(|error| match error {
                    BodyError::TooLarge => too_large(limit),
                    BodyError::Unreadable => Problem::new(
                        ErrorCode::InvalidRequest,
                        "The request body could not be read.",
                    ),
                })
        })
}

/// The media type of the body without parameters, lower-cased (`application/json` for
/// `Application/JSON; charset=utf-8`); `None` without a readable `Content-Type`.
pub(super) fn media_type(headers: &warp::http::HeaderMap) -> Option<String> {
    let value = headers
        .get(warp::http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

pub(super) fn too_large(limit: usize) -> Problem {
    Problem::new(
        ErrorCode::PayloadTooLarge,
        format!("The request body is larger than {} KiB.", limit / 1024),
    )
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    TooLarge,
    Unreadable,
}

/// Reads a body stream, stopping as soon as it passes `limit` bytes.
pub(crate) async fn read_limited<S, B>(mut body: S, limit: usize) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut collected = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if collected.len() + chunk.remaining() > limit {
            return Err(BodyError::TooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            collected.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(collected.into())
}
