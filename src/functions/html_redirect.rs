//! Plain HTML form posts to `POST /api/signup` (the sign-up page without JavaScript) are
//! answered with `303 See Other` to one of the site's own pages, so the browser shows a page
//! instead of JSON: `thanks.html?id=<requestId>&status=<queued|pending_approval>` or
//! `error.html?code=<code>[&field=<field>][&retry=<seconds>]` (`retry`: the `Retry-After` of a
//! 429 or 503, which the page says in human units), under `fr/` when the form's hidden `lang` field
//! says French.
//!
//! A browser navigating after a form submission sends `Accept: text/html,…`; `fetch` sends
//! `*/*` and API clients `application/json` or nothing, and those keep the JSON answers.
//! The redirect only ever points under the configured [`SiteBase`] (`SIGNUP_SITE_URL`): the
//! request chooses the language, never the address (no open redirect).
//!
//! Each Location also carries a fragment naming the outcome (`#queued`, `#invalid_email`):
//! the pages show the matching message with CSS `:target`, which works without JavaScript,
//! and the query (the contract) stays as above for scripts.
//! <https://www.rfc-editor.org/rfc/rfc9110#name-303-see-other>

use bytes::Bytes;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::body;
use crate::{intake::Receipt, problem::Problem, site_base::SiteBase};

pub use crate::domain::Lang;

/// A sign-up that came from a plain HTML form and wants a page as the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormPost {
    lang: Lang,
}

impl FormPost {
    /// `Some` when the caller prefers HTML to JSON (`Accept` names `text/html` with a higher
    /// weight than any JSON type). `body` is read only for the form's `lang` field.
    pub fn detect(headers: &HeaderMap, body: Option<&Bytes>) -> Option<Self> {
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        if !prefers_html(&accept) {
            return None;
        }
        let is_form =
            body::media_type(headers).as_deref() == Some("application/x-www-form-urlencoded");
        let lang = body
            .filter(|_| is_form)
            .and_then(|bytes| {
                url::form_urlencoded::parse(bytes)
                    .find(|(name, _)| name == "lang")
                    .map(|(_, value)| Lang::from_tag(&value))
            })
            .unwrap_or(Lang::En);
        Some(Self { lang })
    }

    /// The 303 for the outcome of the sign-up.
    pub fn redirect(
        self,
        site: &SiteBase,
        outcome: &Result<Receipt, Problem>,
    ) -> warp::reply::Response {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let (page, fragment, retry_after) = match outcome {
            Ok(receipt) => {
                let status = receipt.status.as_str();
                query
                    .append_pair("id", &receipt.request_id.to_string())
                    .append_pair("status", status);
                // A repeat of an invited guest: the fragment names what happened, so the
                // page says it without JavaScript too.
                let fragment = match receipt.resent {
                    Some(true) => "resent",
                    Some(false) => "already_sent",
                    None => status,
                };
                if let Some(resent) = receipt.resent {
                    query.append_pair("resent", if resent { "1" } else { "0" });
                }
                ("thanks.html", fragment, None)
            }
            Err(problem) => {
                let code = problem.code().as_str();
                query.append_pair("code", code);
                if let Some(field) = problem.field_name() {
                    query.append_pair("field", field);
                }
                // The wait, so the page says it in human units as the script does from
                // `Retry-After` (a browser shows a 303's target, never its headers).
                let retry_after = problem.retry_after_seconds();
                if let Some(seconds) = retry_after {
                    query.append_pair("retry", &seconds.to_string());
                }
                ("error.html", code, retry_after)
            }
        };
        let location = format!(
            "{}{}{page}?{}#{fragment}",
            site.as_str(),
            self.lang.folder(),
            query.finish()
        );
        let mut response = warp::reply::Response::new(Bytes::new().into());
        *response.status_mut() = StatusCode::SEE_OTHER;
        let headers = response.headers_mut();
        // Every part is the configured base or text this module wrote (codes, a ULID, fixed
        // page names), so the value is always a valid header; fall back to the base if not.
        let value = HeaderValue::from_str(&location)
            .or_else(|_| HeaderValue::from_str(site.as_str()))
            .unwrap_or_else(|_| HeaderValue::from_static("/"));
        headers.insert(header::LOCATION, value);
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Whether `accept` (RFC 9110 §12.5.1) weighs `text/html` above every JSON type. A tie goes
/// to JSON: the API's own format wins for callers that list both.
fn prefers_html(accept: &str) -> bool {
    let mut html = 0.0_f32;
    let mut json = 0.0_f32;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.trim().split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, q)| q.trim().parse::<f32>().ok())
            .map_or(1.0, |q| q.clamp(0.0, 1.0));
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => html = html.max(weight),
            "application/json" | "application/problem+json" => json = json.max(weight),
            _ => {}
        }
    }
    html > 0.0 && html > json
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::RequestId,
        intake::ReceiptStatus,
        problem::{ErrorCode, Problem},
    };

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const BROWSER: &str =
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
    const FORM: &str = "application/x-www-form-urlencoded";

    #[test]
    fn only_callers_that_prefer_html_are_redirected() {
        let cases = [
            ("a browser's form navigation", BROWSER, true),
            ("fetch's default", "*/*", false),
            ("an API client", "application/json", false),
            ("problem+json", "application/problem+json, */*", false),
            ("a tie goes to JSON", "application/json, text/html", false),
            (
                "JSON weighed lower",
                "text/html, application/json;q=0.5",
                true,
            ),
            ("html refused", "text/html;q=0, */*", false),
            ("upper case and spaces", " TEXT/HTML ; Q=1 ", true),
            ("no Accept", "", false),
        ];
        for (description, accept, expected) in cases {
            assert_eq!(prefers_html(accept), expected, "{description}");
        }
        assert!(FormPost::detect(&headers(&[]), None).is_none());
    }

    #[test]
    fn the_form_language_picks_the_folder_and_nothing_else() {
        let lang = |body: &'static str| {
            FormPost::detect(
                &headers(&[("accept", BROWSER), ("content-type", FORM)]),
                Some(&Bytes::from_static(body.as_bytes())),
            )
            .unwrap()
            .lang
        };
        assert_eq!(lang("email=a%40b.c&lang=fr"), Lang::Fr);
        assert_eq!(lang("lang=fr-CA"), Lang::Fr);
        assert_eq!(lang("lang=en"), Lang::En);
        assert_eq!(lang("lang=https%3A%2F%2Fevil.example%2F"), Lang::En);
        assert_eq!(lang(""), Lang::En);
    }

    #[test]
    fn outcomes_map_to_pages_under_the_configured_base() {
        let site = SiteBase::parse("https://signup.contoso.example").unwrap();
        let fr = FormPost { lang: Lang::Fr };
        let id = RequestId::new();
        let ok = Ok(Receipt {
            request_id: id,
            status: ReceiptStatus::PendingApproval,
            repeat: false,
            resent: None,
        });
        let response = fr.redirect(&site, &ok);
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()["location"],
            format!(
                "https://signup.contoso.example/fr/thanks.html?id={id}&status=pending_approval#pending_approval"
            )
            .as_str()
        );

        let en = FormPost { lang: Lang::En };
        let refused = Err(Problem::field(ErrorCode::DomainNotAllowed, "email", "x"));
        let response = en.redirect(&SiteBase::default(), &refused);
        assert_eq!(
            response.headers()["location"],
            "/error.html?code=domain_not_allowed&field=email#domain_not_allowed"
        );

        let busy = Err(Problem::unavailable());
        let response = en.redirect(&SiteBase::default(), &busy);
        assert_eq!(
            response.headers()["location"],
            "/error.html?code=service_unavailable&retry=30#service_unavailable"
        );
        assert_eq!(response.headers()["retry-after"], "30");
    }
}
