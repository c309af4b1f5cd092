//! What the admin API's functions (`Requests`, `Request`, `Approval`) share: the requests
//! they read and change, the [`Authenticator`] every call goes through first, and the 404
//! of an id that names no request.
//!
//! The host lets these functions through anonymously (`authLevel: anonymous`): the
//! handler is the one place that authorises an administrator's call, from the Entra ID
//! access token alone (DESIGN, "Administrators: the admin API and who decided"). Function
//! keys and `X-MS-CLIENT-PRINCIPAL*` headers are never read.

use std::sync::Arc;

use warp::http::{HeaderMap, header::AUTHORIZATION};

use crate::{
    auth::{Authenticator, Principal, Role},
    domain::RequestId,
    problem::{ErrorCode, Problem},
    requests::Requests,
};

pub struct AdminApi {
    pub requests: Arc<Requests>,
    pub auth: Authenticator,
}

impl AdminApi {
    /// The caller, if their token is valid and holds `needed`; else the 401, 403 or 503
    /// to answer. Called before anything else of the request is looked at, so a caller
    /// without a token learns nothing, not even whether an id is well-formed.
    pub(crate) async fn principal(
        &self,
        headers: &HeaderMap,
        needed: Role,
    ) -> Result<Principal, Problem> {
        self.auth
            .authenticate(headers.get(AUTHORIZATION), needed)
            .await
            .map_err(Problem::from)
    }
}

/// The id in a path; text that is not a ULID names no request, and is answered without
/// asking storage.
pub(crate) fn request_id(text: &str) -> Result<RequestId, Problem> {
    RequestId::parse(text).ok_or_else(not_found)
}

pub(crate) fn not_found() -> Problem {
    Problem::new(ErrorCode::NotFound, "No request has this id.")
}
