//! Mocks of Microsoft Entra ID's token endpoint and of Graph's answers, shared by the tests
//! that run the handler against a mock Graph.

use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

/// The token endpoint's answer for the client-credentials flow: `access_token`, valid for
/// an hour.
pub fn token_response(access_token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access_token,
    }))
}

/// Mounts `{server}/{tenant}/oauth2/v2.0/token` (what `AZURE_AUTHORITY_HOST` = the server's
/// URI asks), handing out `access_token` as often as asked.
pub async fn mount_token_endpoint(server: &MockServer, tenant: &str, access_token: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/{tenant}/oauth2/v2.0/token")))
        .respond_with(token_response(access_token))
        .named("token endpoint")
        .mount(server)
        .await;
}

/// The secret part of the redeem URL [`invitation_created`] answers with: tests look for it
/// in logs, rows and answers, where it must never be.
pub const REDEEM_TICKET: &str = "secret-redeem-ticket-7f3a";

/// Graph's `201 Created` for `POST /invitations`: the guest's object id, a redeem URL that
/// must never reach the requester, and Graph's `request-id` header.
pub fn invitation_created(user_id: &str, request_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(201)
        .insert_header("request-id", request_id)
        .set_body_json(json!({
            "id": "invitation-id",
            "inviteRedeemUrl": format!("https://login.microsoftonline.com/redeem?rd={REDEEM_TICKET}"),
            "invitedUser": { "id": user_id },
            "status": "PendingAcceptance"
        }))
}
