//! Which tokens the admin API accepts: its app registration, the tenant, and where Entra ID
//! is. Read once at start-up with the other settings.

use std::time::Duration;

use url::Url;

use crate::{
    domain::{AppId, ObjectId, TenantId},
    graph::{GraphConfigError, authority_host},
};

/// `SIGNUP_ADMIN_APP_ID`: the admin API's app registration. Unset, the admin API is off.
pub const APP_ID_SETTING: &str = "SIGNUP_ADMIN_APP_ID";
/// `AZURE_TENANT_ID`: also the Graph credential's tenant; here the only tenant whose tokens
/// are accepted.
pub const TENANT_SETTING: &str = "AZURE_TENANT_ID";
/// How long one fetch of the OpenID configuration or of the keys may take, connection
/// included: an administrator waits for it, and a dead identity provider must turn into a
/// 503 soon, not hold the request until the host's own timeout.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything [`super::Authenticator`] needs; pure data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAuthSettings {
    app_id: AppId,
    tenant_id: TenantId,
    authority_host: Url,
    configuration_url: Url,
    fetch_timeout: Duration,
}

/// An admin API setting that is missing or unusable.
#[derive(Debug, thiserror::Error)]
pub enum AdminAuthConfigError {
    #[error("{name} must be {expected}, not {value:?}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error(
        "{APP_ID_SETTING} is set, so {TENANT_SETTING} must be too: the admin API accepts \
         only its own tenant's tokens"
    )]
    MissingTenant,
    #[error(transparent)]
    AuthorityHost(GraphConfigError),
    #[error("could not build the HTTP client for the identity provider")]
    HttpClient(#[source] reqwest::Error),
}

impl AdminAuthSettings {
    /// The settings for `app_id` in `tenant_id`, whose OpenID configuration is under
    /// `authority_host` (https, or http on loopback: the keys that vouch for every token
    /// come from there).
    pub fn new(
        app_id: AppId,
        tenant_id: TenantId,
        authority_host: Url,
    ) -> Result<Self, AdminAuthConfigError> {
        let invalid = || AdminAuthConfigError::Invalid {
            name: "AZURE_AUTHORITY_HOST",
            expected: "an https:// URL (http:// only for localhost)",
            value: authority_host.to_string(),
        };
        if !crate::graph::is_https_or_loopback(&authority_host) {
            return Err(invalid());
        }
        // The tenant's v2.0 metadata document: it names the keys (`jwks_uri`) and the
        // `issuer` tokens carry.
        // <https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri>
        let configuration_url = Url::parse(&format!(
            "{}/{tenant_id}/v2.0/.well-known/openid-configuration",
            authority_host.as_str().trim_end_matches('/')
        ))
        .map_err(|_| invalid())?;
        Ok(Self {
            app_id,
            tenant_id,
            authority_host,
            configuration_url,
            fetch_timeout: FETCH_TIMEOUT,
        })
    }

    /// Reads the settings through `lookup` (the environment in production). `Ok(None)`
    /// when `SIGNUP_ADMIN_APP_ID` is unset: the admin API is off.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, AdminAuthConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let Some(app_id) = get(APP_ID_SETTING) else {
            return Ok(None);
        };
        fn guid<K>(
            name: &'static str,
            expected: &'static str,
            value: String,
        ) -> Result<ObjectId<K>, AdminAuthConfigError> {
            ObjectId::parse(value.trim()).ok_or(AdminAuthConfigError::Invalid {
                name,
                expected,
                value,
            })
        }
        let app_id = guid(
            APP_ID_SETTING,
            "the app registration's application (client) id, a GUID",
            app_id,
        )?;
        let tenant_id = guid(
            TENANT_SETTING,
            "a GUID when the admin API is on (the tenant's id, not its domain name: tokens carry the id)",
            get(TENANT_SETTING).ok_or(AdminAuthConfigError::MissingTenant)?,
        )?;
        let authority_host = authority_host(&get).map_err(AdminAuthConfigError::AuthorityHost)?;
        Self::new(app_id, tenant_id, authority_host).map(Some)
    }

    /// The same settings with another limit per fetch (tests of a slow identity provider).
    pub fn with_fetch_timeout(self, fetch_timeout: Duration) -> Self {
        Self {
            fetch_timeout,
            ..self
        }
    }

    /// The admin API's application (client) id: tokens' `aud` is it or `api://{it}`.
    pub fn app_id(&self) -> &AppId {
        &self.app_id
    }

    /// The tenant whose tokens are accepted (`tid`).
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }

    pub fn authority_host(&self) -> &Url {
        &self.authority_host
    }

    /// `{authority}/{tenant}/v2.0/.well-known/openid-configuration`.
    pub fn configuration_url(&self) -> &Url {
        &self.configuration_url
    }

    pub fn fetch_timeout(&self) -> Duration {
        self.fetch_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const APP: &str = "6e3c1f0a-7b7d-4c4e-9a55-0c2f7d1b9e01";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    /// A setting's name and value.
    type Setting<'a> = (&'a str, &'a str);

    fn read(pairs: &[Setting]) -> Result<Option<AdminAuthSettings>, AdminAuthConfigError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        AdminAuthSettings::from_lookup(|name| map.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn unset_app_id_turns_the_admin_api_off() {
        assert!(read(&[]).unwrap().is_none());
        assert!(
            read(&[(APP_ID_SETTING, " "), (TENANT_SETTING, TENANT)])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_configuration_is_the_tenants_v2_document_under_the_authority() {
        let settings = read(&[(APP_ID_SETTING, APP), (TENANT_SETTING, TENANT)])
            .unwrap()
            .unwrap();
        assert_eq!(settings.app_id().as_str(), APP);
        assert_eq!(
            settings.configuration_url().as_str(),
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(settings.fetch_timeout(), FETCH_TIMEOUT);

        let local = read(&[
            (APP_ID_SETTING, &APP.to_uppercase()),
            (TENANT_SETTING, TENANT),
            ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:4010/"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            local.app_id().as_str(),
            APP,
            "kept lower-case, as tokens write it"
        );
        assert_eq!(
            local.configuration_url().as_str(),
            "http://127.0.0.1:4010/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0/.well-known/openid-configuration"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let cases: [(&str, &[Setting], &str); 5] = [
            (
                "app id not a GUID",
                &[(APP_ID_SETTING, "admin-api"), (TENANT_SETTING, TENANT)],
                APP_ID_SETTING,
            ),
            ("no tenant", &[(APP_ID_SETTING, APP)], TENANT_SETTING),
            (
                "tenant as a domain name",
                &[
                    (APP_ID_SETTING, APP),
                    (TENANT_SETTING, "contoso.onmicrosoft.com"),
                ],
                TENANT_SETTING,
            ),
            (
                "plain http authority",
                &[
                    (APP_ID_SETTING, APP),
                    (TENANT_SETTING, TENANT),
                    ("AZURE_AUTHORITY_HOST", "http://login.example"),
                ],
                "AZURE_AUTHORITY_HOST",
            ),
            (
                "not a URL",
                &[
                    (APP_ID_SETTING, APP),
                    (TENANT_SETTING, TENANT),
                    ("AZURE_AUTHORITY_HOST", "login"),
                ],
                "AZURE_AUTHORITY_HOST",
            ),
        ];
        for (description, pairs, name) in cases {
            let error = read(pairs).unwrap_err().to_string();
            assert!(error.contains(name), "{description}: {error}");
        }
    }
}
