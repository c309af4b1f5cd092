//! Access-key authentication of Communication Services requests: HMAC-SHA256 over the
//! verb, the path and query, and the `x-ms-date;host;x-ms-content-sha256` values, as
//! <https://learn.microsoft.com/azure/communication-services/tutorials/hmac-header-tutorial>
//! describes. The crates do the cryptography (`hmac`, `sha2`); this module only lays out
//! the text that is signed.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, format_description::well_known::Rfc2822};

use super::settings::AccessKey;

/// The three headers of a signed request, in the order they are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `x-ms-date`: the HTTP date (RFC 7231 IMF-fixdate) the signature covers.
    pub date: String,
    /// `x-ms-content-sha256`: base64 SHA-256 of the body.
    pub content_sha256: String,
    /// `Authorization`.
    pub authorization: String,
}

/// The headers that sign `POST`/`GET` `path_and_query` on `host` (with its port when not
/// the scheme's default) at `at`, for `body`.
pub fn sign(
    key: &AccessKey,
    method: &str,
    path_and_query: &str,
    host: &str,
    at: OffsetDateTime,
    body: &[u8],
) -> Signed {
    let date = http_date(at);
    let content_sha256 = STANDARD.encode(Sha256::digest(body));
    let string_to_sign = format!("{method}\n{path_and_query}\n{date};{host};{content_sha256}");
    let signature = signature(key.bytes(), &string_to_sign);
    Signed {
        authorization: format!(
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
        ),
        date,
        content_sha256,
    }
}

/// base64 HMAC-SHA256 of `text` under `key`.
pub fn signature(key: &[u8], text: &str) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(text.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `Tue, 26 Mar 2019 16:06:51 GMT`: the IMF-fixdate of RFC 7231 that `x-ms-date` and
/// `Repeatability-First-Sent` take.
pub fn http_date(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    // RFC 2822 writes `+0000`; an HTTP date ends in `GMT` and has two-digit days.
    let text = utc
        .replace_nanosecond(0)
        .unwrap_or(utc)
        .format(&Rfc2822)
        .unwrap_or_default();
    match text.strip_suffix(" +0000") {
        Some(stem) => format!("{stem} GMT"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn http_dates_are_imf_fixdates() {
        assert_eq!(
            http_date(datetime!(2019-03-26 16:06:51.9 UTC)),
            "Tue, 26 Mar 2019 16:06:51 GMT"
        );
        assert_eq!(
            http_date(datetime!(2026-11-01 08:05:03 +02:00)),
            "Sun, 01 Nov 2026 06:05:03 GMT"
        );
    }

    /// The layout of Microsoft's tutorial (linked above): verb, path and query, then the
    /// three signed header values joined by `;`. The expected values were computed with
    /// Python's standard library (`hmac`, `hashlib`, `base64`), an implementation
    /// independent of this one:
    /// `base64(hmac.new(b64decode(key), text.encode(), sha256).digest())`.
    #[test]
    fn requests_are_signed_as_the_tutorial_lays_them_out() {
        let key = AccessKey::parse("bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1hLXNlY3JldA==").unwrap();
        let body = br#"{"senderAddress":"DoNotReply@contoso.example"}"#;
        let signed = sign(
            &key,
            "POST",
            "/emails:send?api-version=2023-03-31",
            "contoso.communication.azure.com",
            datetime!(2026-11-29 08:30:00 UTC),
            body,
        );
        assert_eq!(signed.date, "Sun, 29 Nov 2026 08:30:00 GMT");
        assert_eq!(signed.content_sha256, PY_CONTENT_SHA256);
        assert_eq!(
            signed.authorization,
            format!(
                "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={PY_SIGNATURE}"
            )
        );
        // The empty body's hash is the well-known SHA-256 of nothing.
        let empty = sign(
            &key,
            "GET",
            "/",
            "h",
            datetime!(2026-11-29 08:30:00 UTC),
            b"",
        );
        assert_eq!(
            empty.content_sha256,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    const PY_CONTENT_SHA256: &str = "YtH5Gcx/CKf1+ocUoLgkNZLhJ3U13ev2HfjqQiP9Q8c=";
    const PY_SIGNATURE: &str = "3g9IjY6l9K1OnaAXVg9YinOcVdOtE65K3IiJVMTwkpc=";
}
