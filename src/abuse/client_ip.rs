//! The client's IP address, as the Azure front end reports it.
//!
//! A custom handler sees connections from the Functions host, not from the client; the
//! platform's front end appends the address it accepted the connection from to
//! `X-Forwarded-For` (App Service writes `ip:port`). Anything a client sends in that header
//! itself stands to the *left* of what trusted proxies append, so the address is read from
//! the right: with `trusted_hops` proxies in front of the app (1 on Azure Functions; 2 behind
//! Front Door or Application Gateway), it is the `trusted_hops`-th entry from the right.
//! Prepending addresses therefore never changes the result, and neither does what a client
//! writes there: entries are split on the header's raw bytes, so a byte that is not text
//! (which a client may send) spoils its own entry only, never the trusted ones beside it.
//! With no usable address (too few entries, or the trusted entry is not an address) there is
//! no client IP, and the per-IP limit counts the sign-up in one shared "unknown" bucket
//! (`RateLimiter::check`): a header can never switch the limit off.

use std::net::IpAddr;

use warp::http::HeaderMap;

pub fn client_ip(headers: &HeaderMap, trusted_hops: usize) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return None;
    }
    // Several X-Forwarded-For headers are one list, in order. Split as bytes: only the
    // entry read needs to be text.
    let entries: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|entry| !entry.is_empty())
        .collect();
    let entry = entries
        .len()
        .checked_sub(trusted_hops)
        .map(|i| entries[i])?;
    parse_entry(std::str::from_utf8(entry).ok()?)
}

/// `203.0.113.5`, `203.0.113.5:51234`, `2001:db8::1` or `[2001:db8::1]:51234`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    let (host, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    fn ip(values: &[&str], hops: usize) -> Option<String> {
        let values: Vec<&[u8]> = values.iter().map(|value| value.as_bytes()).collect();
        ip_of_bytes(&values, hops)
    }

    fn ip_of_bytes(values: &[&[u8]], hops: usize) -> Option<String> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_bytes(value).unwrap());
        }
        client_ip(&headers, hops).map(|ip| ip.to_string())
    }

    /// (description, header values, trusted hops, expected address)
    type ByteCase = (
        &'static str,
        &'static [&'static [u8]],
        usize,
        Option<&'static str>,
    );

    #[test]
    fn bytes_that_are_not_text_spoil_their_own_entry_only() {
        let cases: [ByteCase; 6] = [
            (
                "in the client's entry, one hop",
                &[b"198.51.100.7\xff, 203.0.113.78"],
                1,
                Some("203.0.113.78"),
            ),
            (
                "in the client's entry, two hops",
                &[b"198.51.100.7\xff, 203.0.113.78, 10.0.0.4:5000"],
                2,
                Some("203.0.113.78"),
            ),
            (
                "in a header of its own before the trusted ones",
                &[b"\xfe\xff", b"203.0.113.78, 10.0.0.4"],
                2,
                Some("203.0.113.78"),
            ),
            (
                "a full-width comma does not split",
                &[b"198.51.100.7\xef\xbc\x8c203.0.113.9, 203.0.113.78"],
                1,
                Some("203.0.113.78"),
            ),
            // The trusted entry itself unreadable: no address (the shared bucket).
            (
                "in the trusted entry",
                &[b"198.51.100.7\xff, 203.0.113.78"],
                2,
                None,
            ),
            ("only bytes", &[b"\xff"], 1, None),
        ];
        for (description, values, hops, expected) in cases {
            assert_eq!(
                ip_of_bytes(values, hops).as_deref(),
                expected,
                "{description}"
            );
        }
    }

    #[test]
    fn the_address_the_trusted_proxy_appended_wins() {
        let cases: [(&str, &[&str], usize, Option<&str>); 11] = [
            ("plain", &["203.0.113.5"], 1, Some("203.0.113.5")),
            (
                "App Service ip:port",
                &["203.0.113.5:51234"],
                1,
                Some("203.0.113.5"),
            ),
            ("IPv6", &["2001:db8::1"], 1, Some("2001:db8::1")),
            (
                "IPv6 with port",
                &["[2001:db8::1]:51234"],
                1,
                Some("2001:db8::1"),
            ),
            (
                "client prepends one address",
                &["198.51.100.1, 203.0.113.5"],
                1,
                Some("203.0.113.5"),
            ),
            (
                "client prepends many",
                &["1.1.1.1, 2.2.2.2, 3.3.3.3, 203.0.113.5:1"],
                1,
                Some("203.0.113.5"),
            ),
            (
                "split across headers",
                &["198.51.100.1", "203.0.113.5"],
                1,
                Some("203.0.113.5"),
            ),
            (
                "two trusted hops (Front Door)",
                &["198.51.100.1, 203.0.113.5, 10.0.0.4"],
                2,
                Some("203.0.113.5"),
            ),
            ("fewer entries than hops", &["203.0.113.5"], 2, None),
            ("garbage entry", &["not-an-ip"], 1, None),
            ("no header", &[], 1, None),
        ];
        for (description, values, hops, expected) in cases {
            assert_eq!(ip(values, hops).as_deref(), expected, "{description}");
        }
    }
}
