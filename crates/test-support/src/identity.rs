//! A mock Microsoft Entra ID as the admin API sees it: the tenant's OpenID configuration, its
//! signing keys (JWKS), and access tokens signed with the test-only keys of
//! `tests/fixtures/entra/` — never keys of a real tenant.
//!
//! Paths are Entra ID's own under `AZURE_AUTHORITY_HOST` = the mock server's URI:
//! `/{tenant}/v2.0/.well-known/openid-configuration` and `/{tenant}/discovery/v2.0/keys`
//! (<https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc>).

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};

/// One of the two test-only RSA-2048 key pairs, with its public half as a JSON Web Key.
pub struct TestKey {
    kid: &'static str,
    private_pem: &'static str,
    public_pem: &'static str,
    jwk: &'static str,
}

/// `test-only-key-1`: the key the mock tenant signs with unless a test rotates keys.
pub const KEY_1: TestKey = TestKey {
    kid: "test-only-key-1",
    private_pem: include_str!("../../../tests/fixtures/entra/test-only-key-1.pem"),
    public_pem: include_str!("../../../tests/fixtures/entra/test-only-key-1.pub.pem"),
    jwk: include_str!("../../../tests/fixtures/entra/test-only-key-1.jwk.json"),
};

/// `test-only-key-2`: the key a rotation brings in.
pub const KEY_2: TestKey = TestKey {
    kid: "test-only-key-2",
    private_pem: include_str!("../../../tests/fixtures/entra/test-only-key-2.pem"),
    public_pem: include_str!("../../../tests/fixtures/entra/test-only-key-2.pub.pem"),
    jwk: include_str!("../../../tests/fixtures/entra/test-only-key-2.jwk.json"),
};

impl TestKey {
    /// The key id the JWKS lists it under and tokens name in their `kid` header.
    pub fn kid(&self) -> &'static str {
        self.kid
    }

    /// The public key as PEM text (SubjectPublicKeyInfo): what an attacker who read the
    /// JWKS would use as an HMAC secret in an algorithm-confusion attempt.
    pub fn public_pem(&self) -> &'static str {
        self.public_pem
    }

    /// The public key as a JSON Web Key (`kty`, `use`, `kid`, `n`, `e`).
    pub fn jwk(&self) -> Value {
        serde_json::from_str(self.jwk).expect("the fixture is a JSON Web Key")
    }

    /// `claims` as an RS256 token signed with this key, its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, claims)
    }

    /// `claims` signed with this key but naming `kid` in the header.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let header = Header {
            kid: Some(kid.to_owned()),
            ..Header::new(Algorithm::RS256)
        };
        let key = EncodingKey::from_rsa_der(&pem_body(self.private_pem));
        jsonwebtoken::encode(&header, claims, &key).expect("RS256 signing with a fixture key")
    }
}

/// The DER bytes inside a PEM block.
fn pem_body(pem: &str) -> Vec<u8> {
    let base64: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(base64).expect("the fixture is a PEM block")
}

/// An HS256 token with `secret` as the HMAC key and `kid` in the header.
pub fn hs256_token(secret: &[u8], kid: &str, claims: &Value) -> String {
    let header = Header {
        kid: Some(kid.to_owned()),
        ..Header::new(Algorithm::HS256)
    };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("HS256 signing")
}

/// A token with any `header` and no signature (`alg: none` and other forgeries).
pub fn unsigned_token(header: &Value, claims: &Value) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.", part(header), part(claims))
}

/// `claims` with `changes` applied: a value replaces the claim, `null` removes it (the
/// bad-token cases are valid claims with one thing changed).
pub fn changed(claims: &Value, changes: Value) -> Value {
    let mut claims = claims.clone();
    if let (Some(claims), Value::Object(changes)) = (claims.as_object_mut(), changes) {
        for (name, value) in changes {
            if value.is_null() {
                claims.remove(&name);
            } else {
                claims.insert(name, value);
            }
        }
    }
    claims
}

/// The issuer the mock tenant's configuration names, as Entra ID v2.0 writes it:
/// `{authority}/{tenant}/v2.0`.
pub fn issuer(authority: &str, tenant: &str) -> String {
    format!("{authority}/{tenant}/v2.0")
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: the `issuer` and `jwks_uri`
/// on the mock server at `authority`. Add `.expect(n)` and mount it.
pub fn openid_configuration(authority: &str, tenant: &str) -> Mock {
    Mock::given(method("GET"))
        .and(path(format!(
            "/{tenant}/v2.0/.well-known/openid-configuration"
        )))
        .respond_with(openid_configuration_document(authority, tenant))
        .named("OpenID configuration")
}

/// The tenant's OpenID configuration document (a slow one: add `.set_delay`).
pub fn openid_configuration_document(authority: &str, tenant: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "issuer": issuer(authority, tenant),
        "jwks_uri": format!("{authority}/{tenant}/discovery/v2.0/keys"),
        "token_endpoint": format!("{authority}/{tenant}/oauth2/v2.0/token"),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

/// `GET /{tenant}/discovery/v2.0/keys`: the public halves of `keys`. Add `.expect(n)` and
/// mount it.
pub fn jwks(tenant: &str, keys: &[&TestKey]) -> Mock {
    let keys: Vec<Value> = keys.iter().map(|key| key.jwk()).collect();
    Mock::given(method("GET"))
        .and(path(format!("/{tenant}/discovery/v2.0/keys")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "keys": keys })))
        .named("JWKS")
}

/// Who a token from [`MockTenant`] names.
pub struct Signer<'a> {
    /// `preferred_username`.
    pub username: &'a str,
    /// `oid`: what the admin API records as `DecidedById`.
    pub object_id: &'a str,
}

/// A mock Entra ID tenant for an app's tests: the settings that point the admin API at it,
/// and valid tokens for its app registration.
pub struct MockTenant {
    pub authority: String,
    pub tenant: String,
    /// The admin API's app id (`SIGNUP_ADMIN_APP_ID`).
    pub app_id: String,
}

impl MockTenant {
    /// Mounts the tenant's OpenID configuration and keys (`KEY_1`) on `server`.
    pub async fn start(server: &wiremock::MockServer, tenant: &str, app_id: &str) -> Self {
        let authority = server.uri();
        openid_configuration(&authority, tenant).mount(server).await;
        jwks(tenant, &[&KEY_1]).mount(server).await;
        Self {
            authority,
            tenant: tenant.to_owned(),
            app_id: app_id.to_owned(),
        }
    }

    /// The settings that make the admin API trust this tenant.
    pub fn settings(&self) -> [(&'static str, String); 3] {
        [
            ("AZURE_AUTHORITY_HOST", self.authority.clone()),
            ("AZURE_TENANT_ID", self.tenant.clone()),
            ("SIGNUP_ADMIN_APP_ID", self.app_id.clone()),
        ]
    }

    /// The claims of a valid v2.0 access token a signed-in person got for the admin API,
    /// with `roles`, valid from a minute ago for an hour.
    pub fn claims(&self, who: &Signer<'_>, roles: &[&str]) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        json!({
            "aud": self.app_id,
            "iss": issuer(&self.authority, &self.tenant),
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
            "azp": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            "oid": who.object_id,
            "preferred_username": who.username,
            "roles": roles,
            "scp": "access_as_user",
            "tid": self.tenant,
            "ver": "2.0",
        })
    }

    /// A valid token for `who` with `roles`, signed with `KEY_1`.
    pub fn token(&self, who: &Signer<'_>, roles: &[&str]) -> String {
        KEY_1.sign(&self.claims(who, roles))
    }
}
