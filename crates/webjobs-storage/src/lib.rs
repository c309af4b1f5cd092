//! Where storage is and how to sign in, from the one setting the Functions host reads:
//! `AzureWebJobsStorage` (a connection string) or its identity-based form
//! (`AzureWebJobsStorage__accountName`, `__tableServiceUri`, `__queueServiceUri`).
//!
//! Its own crate because two programs read that setting the way the Functions host does:
//! the product (its tables and queue) and the development host `funchost` (the queues it
//! polls for triggers). Neither depends on the other; both depend on this.
//!
//! See <https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity>.

use std::{fmt, sync::Arc};

use azure_storage::{CloudLocation, ConnectionString, StorageCredentials};

/// Azurite's well-known development account (public, documented by Microsoft).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error(
        "no storage configured: set AzureWebJobsStorage (a connection string, or \
         UseDevelopmentStorage=true for Azurite) or AzureWebJobsStorage__accountName"
    )]
    Missing,
    #[error("AzureWebJobsStorage is not a valid connection string: {0}")]
    Invalid(String),
    #[error(
        "AzureWebJobsStorage__clientId asks for a user-assigned identity; only the system-assigned \
         managed identity is supported"
    )]
    UserAssignedIdentity,
}

/// How requests to storage are signed.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageAuth {
    SharedKey {
        account: String,
        key: String,
    },
    Sas(String),
    /// The app's system-assigned managed identity (identity-based connection).
    ManagedIdentity,
}

/// Never prints keys or SAS tokens.
impl fmt::Debug for StorageAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SharedKey { account, .. } => write!(f, "SharedKey({account}, ***)"),
            Self::Sas(_) => f.write_str("Sas(***)"),
            Self::ManagedIdentity => f.write_str("ManagedIdentity"),
        }
    }
}

/// The storage account: endpoints of the two services the app uses, and the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageAccount {
    pub account: String,
    /// Base URL of the Table service, e.g. `https://acct.table.core.windows.net` or
    /// `http://127.0.0.1:10002/devstoreaccount1`.
    pub table_endpoint: String,
    pub queue_endpoint: String,
    pub auth: StorageAuth,
}

impl StorageAccount {
    /// Reads the settings through `lookup` (the environment in production).
    pub fn from_settings(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConnectionError> {
        if let Some(connection_string) =
            lookup("AzureWebJobsStorage").filter(|s| !s.trim().is_empty())
        {
            return Self::from_connection_string(&connection_string);
        }
        let prefix = "AzureWebJobsStorage__";
        if lookup(&format!("{prefix}clientId")).is_some() {
            return Err(ConnectionError::UserAssignedIdentity);
        }
        let account = lookup(&format!("{prefix}accountName"));
        // The service URIs win over the account name: they are how sovereign clouds and custom
        // DNS are reached. ARM's `primaryEndpoints` (what infra/ sets them from) end in `/`.
        let service_uri = |service: &str| {
            lookup(&format!("{prefix}{service}ServiceUri"))
                .map(|uri| uri.trim().trim_end_matches('/').to_owned())
                .filter(|uri| !uri.is_empty())
        };
        let table = service_uri("table");
        let queue = service_uri("queue");
        let account = match (&account, &table) {
            (Some(account), _) => account.clone(),
            (None, Some(uri)) => account_from_uri(uri).ok_or_else(|| {
                ConnectionError::Invalid(
                    "cannot tell the account name from __tableServiceUri".into(),
                )
            })?,
            (None, None) => return Err(ConnectionError::Missing),
        };
        Ok(Self {
            table_endpoint: table
                .unwrap_or_else(|| format!("https://{account}.table.core.windows.net")),
            queue_endpoint: queue
                .unwrap_or_else(|| format!("https://{account}.queue.core.windows.net")),
            account,
            auth: StorageAuth::ManagedIdentity,
        })
    }

    pub fn from_connection_string(text: &str) -> Result<Self, ConnectionError> {
        let parsed = ConnectionString::new(text.trim())
            .map_err(|e| ConnectionError::Invalid(e.to_string()))?;
        if parsed.use_development_storage == Some(true) {
            let host = parsed
                .development_storage_proxy_uri
                .unwrap_or("http://127.0.0.1")
                .trim_end_matches('/');
            return Ok(Self {
                account: DEV_ACCOUNT.to_owned(),
                table_endpoint: format!("{host}:10002/{DEV_ACCOUNT}"),
                queue_endpoint: format!("{host}:10001/{DEV_ACCOUNT}"),
                auth: StorageAuth::SharedKey {
                    account: DEV_ACCOUNT.to_owned(),
                    key: DEV_KEY.to_owned(),
                },
            });
        }
        let auth = match (parsed.account_name, parsed.account_key, parsed.sas) {
            (_, _, Some(sas)) => StorageAuth::Sas(sas.to_owned()),
            (Some(account), Some(key), None) => StorageAuth::SharedKey {
                account: account.to_owned(),
                key: key.to_owned(),
            },
            _ => {
                return Err(ConnectionError::Invalid(
                    "it needs AccountName and AccountKey, or SharedAccessSignature".into(),
                ));
            }
        };
        let explicit =
            |endpoint: Option<&str>| endpoint.map(|e| e.trim_end_matches('/').to_owned());
        let account = match (parsed.account_name, parsed.table_endpoint) {
            (Some(name), _) => name.to_owned(),
            (None, Some(uri)) => account_from_uri(uri).unwrap_or_default(),
            (None, None) => {
                return Err(ConnectionError::Invalid(
                    "AccountName or TableEndpoint is required".into(),
                ));
            }
        };
        let protocol = match parsed.default_endpoints_protocol {
            Some(azure_storage::EndpointProtocol::Http) => "http",
            _ => "https",
        };
        let suffix = parsed.endpoint_suffix.unwrap_or("core.windows.net");
        let derived = |service: &str| format!("{protocol}://{account}.{service}.{suffix}");
        Ok(Self {
            table_endpoint: explicit(parsed.table_endpoint).unwrap_or_else(|| derived("table")),
            queue_endpoint: explicit(parsed.queue_endpoint).unwrap_or_else(|| derived("queue")),
            account,
            auth,
        })
    }

    pub fn table_location(&self) -> CloudLocation {
        CloudLocation::Custom {
            account: self.account.clone(),
            uri: self.table_endpoint.clone(),
        }
    }

    pub fn queue_location(&self) -> CloudLocation {
        CloudLocation::Custom {
            account: self.account.clone(),
            uri: self.queue_endpoint.clone(),
        }
    }
}

/// The credential that signs requests for `auth`: the key, the SAS, or the App Service
/// managed identity's token (fetched lazily, on the first request).
pub fn credentials(auth: &StorageAuth) -> azure_core::Result<StorageCredentials> {
    match auth {
        StorageAuth::SharedKey { account, key } => Ok(StorageCredentials::access_key(
            account.clone(),
            azure_core::auth::Secret::new(key.clone()),
        )),
        StorageAuth::Sas(token) => StorageCredentials::sas_token(token.clone()),
        StorageAuth::ManagedIdentity => {
            let credential = azure_identity::AppServiceManagedIdentityCredential::create(
                azure_identity::TokenCredentialOptions::default(),
            )?;
            Ok(StorageCredentials::token_credential(Arc::new(credential)))
        }
    }
}

/// `https://acct.table.core.windows.net` → `acct`; `http://127.0.0.1:10002/acct` → `acct`.
fn account_from_uri(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    let from_path = url.path_segments()?.find(|s| !s.is_empty());
    match (url.host()?, from_path) {
        (url::Host::Domain(host), _) if host.contains('.') && !host.starts_with("localhost") => {
            host.split('.').next().map(str::to_owned)
        }
        (_, path) => path.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<StorageAccount, ConnectionError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StorageAccount::from_settings(|key| map.get(key).cloned())
    }

    #[test]
    fn development_storage_points_at_azurite() {
        let account = from(&[("AzureWebJobsStorage", "UseDevelopmentStorage=true")]).unwrap();
        assert_eq!(
            account.table_endpoint,
            "http://127.0.0.1:10002/devstoreaccount1"
        );
        assert_eq!(
            account.queue_endpoint,
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert!(matches!(account.auth, StorageAuth::SharedKey { .. }));
    }

    #[test]
    fn explicit_endpoints_are_used_as_given() {
        let account = from(&[(
            "AzureWebJobsStorage",
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;\
             TableEndpoint=http://127.0.0.1:41002/devstoreaccount1;QueueEndpoint=http://127.0.0.1:41001/devstoreaccount1/;",
        )])
        .unwrap();
        assert_eq!(
            account.table_endpoint,
            "http://127.0.0.1:41002/devstoreaccount1"
        );
        assert_eq!(
            account.queue_endpoint,
            "http://127.0.0.1:41001/devstoreaccount1"
        );
    }

    #[test]
    fn account_connection_strings_derive_endpoints() {
        let account = from(&[(
            "AzureWebJobsStorage",
            "DefaultEndpointsProtocol=https;AccountName=prodsignup;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        )])
        .unwrap();
        assert_eq!(
            account.table_endpoint,
            "https://prodsignup.table.core.windows.net"
        );
        assert_eq!(
            account.queue_endpoint,
            "https://prodsignup.queue.core.windows.net"
        );
    }

    #[test]
    fn identity_based_settings_use_the_managed_identity() {
        let account = from(&[("AzureWebJobsStorage__accountName", "prodsignup")]).unwrap();
        assert_eq!(account.auth, StorageAuth::ManagedIdentity);
        assert_eq!(
            account.table_endpoint,
            "https://prodsignup.table.core.windows.net"
        );

        let account = from(&[
            (
                "AzureWebJobsStorage__tableServiceUri",
                "https://prodsignup.table.core.windows.net",
            ),
            (
                "AzureWebJobsStorage__queueServiceUri",
                "https://prodsignup.queue.core.windows.net",
            ),
        ])
        .unwrap();
        assert_eq!(account.account, "prodsignup");
        assert_eq!(
            account.queue_endpoint,
            "https://prodsignup.queue.core.windows.net"
        );
    }

    #[test]
    fn service_uris_from_arm_win_over_the_account_name() {
        // As infra/modules/function-app.bicep sets them: the account name and the account's
        // `primaryEndpoints`, here a national cloud's (trailing `/` as ARM returns them).
        let account = from(&[
            ("AzureWebJobsStorage__accountName", "prodsignup"),
            ("AzureWebJobsStorage__credential", "managedidentity"),
            (
                "AzureWebJobsStorage__blobServiceUri",
                "https://prodsignup.blob.core.usgovcloudapi.net/",
            ),
            (
                "AzureWebJobsStorage__queueServiceUri",
                "https://prodsignup.queue.core.usgovcloudapi.net/",
            ),
            (
                "AzureWebJobsStorage__tableServiceUri",
                "https://prodsignup.table.core.usgovcloudapi.net/",
            ),
        ])
        .unwrap();
        assert_eq!(account.account, "prodsignup");
        assert_eq!(account.auth, StorageAuth::ManagedIdentity);
        assert_eq!(
            account.table_endpoint,
            "https://prodsignup.table.core.usgovcloudapi.net"
        );
        assert_eq!(
            account.queue_endpoint,
            "https://prodsignup.queue.core.usgovcloudapi.net"
        );
    }

    #[test]
    fn bad_or_missing_settings_are_clear_errors() {
        assert_eq!(from(&[]), Err(ConnectionError::Missing));
        assert!(matches!(
            from(&[("AzureWebJobsStorage", "nonsense")]),
            Err(ConnectionError::Invalid(_))
        ));
        assert!(matches!(
            from(&[(
                "AzureWebJobsStorage",
                "AccountName=a;EndpointSuffix=core.windows.net"
            )]),
            Err(ConnectionError::Invalid(_))
        ));
        assert_eq!(
            from(&[
                ("AzureWebJobsStorage__accountName", "a"),
                ("AzureWebJobsStorage__clientId", "x")
            ]),
            Err(ConnectionError::UserAssignedIdentity)
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let account = from(&[("AzureWebJobsStorage", "UseDevelopmentStorage=true")]).unwrap();
        assert!(!format!("{account:?}").contains(DEV_KEY));
    }
}
