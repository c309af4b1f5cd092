//! `spawn_app()`: an Azurite of its own (in memory, OS-chosen ports, telemetry off) and the
//! handler on port 0, with a policy written for the test.

use std::{path::PathBuf, time::Duration};

use azure_storage::{CloudLocation, StorageCredentials};
use azure_storage_queues::QueueServiceClientBuilder;
use b2b_signup::{
    app::Application,
    clock::{Clock, ManualTime},
    domain::{EmailDomain, RequestId, RequestStatus, SignupRequest},
    settings::{LogFormat, Settings},
    storage::{AzureStorage, InviteMessage, RequestStore, StorageAccount, azure::StorageTimeouts},
};
use base64::Engine;
use test_support::identity::{MockTenant, Signer};

pub const GROUP_A: &str = "11111111-1111-1111-1111-111111111111";
pub const GROUP_B: &str = "22222222-2222-2222-2222-222222222222";

/// contoso.com invites, fabrikam.com (and subdomains) waits for approval, gmail.com is
/// refused, everything else is refused by default.
pub fn default_policy() -> String {
    format!(
        r#"{{
        "defaultAction": "deny", "verifyEmail": false,
        "accessOptions": {{
            "partner-portal": {{ "displayName": "Partner portal", "groups": ["{GROUP_A}"] }},
            "sales-extranet": {{ "displayName": "Sales extranet", "groups": ["{GROUP_A}", "{GROUP_B}"] }}
        }},
        "rules": [
            {{ "domains": ["contoso.com"], "action": "invite", "access": ["partner-portal", "sales-extranet"] }},
            {{ "domains": ["fabrikam.com", "*.fabrikam.com"], "action": "approve", "access": ["partner-portal"] }},
            {{ "domains": ["gmail.com"], "action": "deny" }}
        ]
    }}"#
    )
}

pub use test_support::Azurite;

/// The mock tenant's id, and the admin API's app registration in it.
pub const ADMIN_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const ADMIN_APP: &str = "6e3c1f0a-7b7d-4c4e-9a55-0c2f7d1b9e01";
/// The administrator the tests' tokens name, and their object id.
pub const ADMIN: Signer<'static> = Signer {
    username: "alice@contoso.com",
    object_id: "5f0c8e3a-1b2c-4d5e-8f90-0123456789ab",
};
/// A second administrator, deciding at the same time as [`ADMIN`].
pub const OTHER_ADMIN: Signer<'static> = Signer {
    username: "bob@contoso.com",
    object_id: "6a1d9f4b-2c3d-4e5f-9a01-123456789abc",
};
pub const APPROVE: &[&str] = &["Signup.Approve"];
pub const READ: &[&str] = &["Signup.Read"];

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub store: AzureStorage,
    pub azurite: Azurite,
    pub time: ManualTime,
    /// The mock Entra ID the admin API trusts (unless a test turned the API off).
    pub tenant: MockTenant,
    _identity: wiremock::MockServer,
    _policy: tempfile::NamedTempFile,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with_policy(&default_policy()).await
}

pub fn settings_for(connection_string: &str, policy_path: PathBuf) -> Settings {
    Settings {
        port: 0,
        storage: StorageAccount::from_connection_string(connection_string)
            .expect("valid connection string"),
        policy_path,
        dry_run: true,
        log_format: LogFormat::Text,
        graph: None,
        admin_auth: None,
        approval_webhook: None,
        public_base_url: None,
        captcha: None,
        // Most tests sign up many times from one place; abuse tests set their own limits.
        rate_limits: b2b_signup::abuse::RateLimitSettings::parse("off").unwrap(),
        trusted_proxy_hops: 1,
        site_url: Default::default(),
        stale_after: time::Duration::minutes(2),
        mail: Default::default(),
        retention: time::Duration::days(365),
    }
}

pub fn write_policy(json: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), json).expect("policy written");
    file
}

pub async fn spawn_app_with_policy(policy: &str) -> TestApp {
    spawn_app_with(policy, |_| {}).await
}

/// The tenant id the live tests' token endpoint answers for.
pub const TENANT: &str = "0f0e0d0c-0000-4000-8000-000000000001";

/// A live (not dry-run) app whose Graph and Entra token endpoint are `graph`, a wiremock
/// server, set through the same settings an operator uses.
pub async fn spawn_live_app(graph: &wiremock::MockServer) -> TestApp {
    spawn_live_app_with_policy(graph, &default_policy()).await
}

/// [`spawn_live_app`] with the policy given.
pub async fn spawn_live_app_with_policy(graph: &wiremock::MockServer, policy: &str) -> TestApp {
    spawn_live_app_with(graph, policy, |_| {}).await
}

/// As [`spawn_live_app_with_policy`], with more settings from `configure`.
pub async fn spawn_live_app_with(
    graph: &wiremock::MockServer,
    policy: &str,
    configure: impl FnOnce(&mut Settings) + Send + 'static,
) -> TestApp {
    let lookup = |name: &str| match name {
        "GRAPH_BASE_URL" => Some(format!("{}/v1.0", graph.uri())),
        "AZURE_AUTHORITY_HOST" => Some(graph.uri()),
        "AZURE_TENANT_ID" => Some(TENANT.to_owned()),
        "AZURE_CLIENT_ID" => Some("app-client-id".to_owned()),
        "AZURE_CLIENT_SECRET" => Some("s3cr3t-value".to_owned()),
        "GRAPH_TIMEOUT_SECONDS" => Some("2".to_owned()),
        "GRAPH_MAX_INLINE_RETRY_SECONDS" => Some("1".to_owned()),
        _ => None,
    };
    let graph = b2b_signup::graph::GraphSettings::from_lookup(lookup)
        .expect("valid Graph settings")
        .expect("a credential is configured");
    spawn_app_with(policy, move |settings| {
        settings.dry_run = false;
        settings.graph = Some(graph);
        configure(settings);
    })
    .await
}

pub async fn spawn_app_with(policy: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let azurite = Azurite::start();
    let policy = write_policy(policy);
    let mut settings = settings_for(&azurite.connection_string(), policy.path().to_owned());
    let identity = wiremock::MockServer::start().await;
    let tenant = MockTenant::start(&identity, ADMIN_TENANT, ADMIN_APP).await;
    let tenant_settings = tenant.settings();
    settings.admin_auth = b2b_signup::auth::AdminAuthSettings::from_lookup(|name| {
        tenant_settings
            .iter()
            .find(|(setting, _)| *setting == name)
            .map(|(_, value)| value.clone())
    })
    .expect("valid admin API settings");
    configure(&mut settings);
    let (clock, time) = Clock::manual(time::OffsetDateTime::now_utc());
    let app = Application::build_with_clock(&settings, clock)
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        store: AzureStorage::new(&settings.storage, StorageTimeouts::default()).expect("store"),
        azurite,
        time,
        tenant,
        _identity: identity,
        _policy: policy,
    }
}

impl TestApp {
    /// `Authorization: Bearer <token>` for `who` with `roles`, from the mock tenant.
    pub fn bearer(&self, who: &Signer<'_>, roles: &[&str]) -> String {
        format!("Bearer {}", self.tenant.token(who, roles))
    }

    /// A call to the admin API (`path` after `/api/`) as [`ADMIN`] with `Signup.Approve`.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/api/{path}", self.address))
            .header("authorization", self.bearer(&ADMIN, APPROVE))
    }

    pub async fn post_json(&self, body: &str) -> reqwest::Response {
        self.post("application/json", body.to_owned()).await
    }

    pub async fn post(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/api/signup", self.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Signs up and returns the 202 body's `requestId` and `status`.
    pub async fn sign_up(&self, email: &str) -> (String, String) {
        let response = self
            .post_json(
                &serde_json::json!({ "email": email, "displayName": "Test Person" }).to_string(),
            )
            .await;
        assert_eq!(response.status(), 202, "sign-up of {email} accepted");
        let body: serde_json::Value = response.json().await.expect("json body");
        (
            body["requestId"].as_str().unwrap().to_owned(),
            body["status"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn row(&self, domain: &str, id: &str) -> Option<SignupRequest> {
        let domain = EmailDomain::parse(domain).unwrap();
        let id = RequestId::parse(id).expect("a ULID");
        self.store
            .get(&domain, &id)
            .await
            .expect("storage answers")
            .map(|v| v.value)
    }

    /// Forces a row's status, as a worker or a crash would leave it.
    pub async fn set_status(&self, domain: &str, id: &str, status: RequestStatus) {
        let domain = EmailDomain::parse(domain).unwrap();
        let id = RequestId::parse(id).expect("a ULID");
        let mut row = self
            .store
            .get(&domain, &id)
            .await
            .unwrap()
            .expect("row exists");
        row.value.status = status;
        self.store
            .replace(&row.value, &row.etag)
            .await
            .expect("row replaced");
    }

    /// Removes columns of a request row by hand (a replace of the whole entity without them),
    /// as a row written by an earlier version lacks them.
    pub async fn remove_columns(&self, domain: &str, id: &str, columns: &[&str]) {
        let entity = self
            .table("SignupRequests")
            .partition_key_client(domain)
            .entity_client(id);
        let mut row: serde_json::Map<String, serde_json::Value> =
            entity.get().await.expect("row read").entity;
        row.retain(|name, _| {
            !name.starts_with("odata.")
                && name != "Timestamp"
                && !columns.iter().any(|column| name.starts_with(column))
        });
        entity
            .update(
                serde_json::Value::Object(row),
                azure_data_tables::IfMatchCondition::Any,
            )
            .expect("entity serialises")
            .await
            .expect("row replaced");
    }

    /// A client for one of the app's tables, bypassing the app.
    fn table(&self, name: &str) -> azure_data_tables::clients::TableClient {
        azure_data_tables::clients::TableServiceClientBuilder::with_location(
            CloudLocation::Custom {
                account: "devstoreaccount1".into(),
                uri: format!(
                    "http://127.0.0.1:{}/devstoreaccount1",
                    self.azurite.table_port
                ),
            },
            StorageCredentials::emulator(),
        )
        .build()
        .table_client(name)
    }

    /// Deletes an entity of `SignupRequests` by hand: a request row (its address claim
    /// stays behind, as when an administrator deletes a row) or a claim (`address:…`, as
    /// after an upgrade from the version that kept claims in another table).
    pub async fn delete_entity(&self, domain: &str, row_key: &str) {
        self.table("SignupRequests")
            .partition_key_client(domain)
            .entity_client(row_key)
            .delete()
            .await
            .expect("entity deleted");
    }

    /// Writes a request row's `Status` by hand, bypassing the app, as an administrator's edit
    /// or a newer version might leave it: a value this version cannot read.
    pub async fn write_status_text(&self, domain: &str, id: &str, status: &str) {
        self.write_column(domain, id, "Status", status).await;
    }

    /// Writes one text column of a request row by hand, bypassing the app's rules, as an
    /// earlier version or an administrator's edit may have left it.
    pub async fn write_column(&self, domain: &str, id: &str, column: &str, text: &str) {
        self.table("SignupRequests")
            .partition_key_client(domain)
            .entity_client(id)
            .merge(
                serde_json::json!({ column: text }),
                azure_data_tables::IfMatchCondition::Any,
            )
            .expect("entity serialises")
            .await
            .expect("row merged");
    }

    /// The `Error` column of every stored dead letter.
    pub async fn dead_letter_errors(&self) -> Vec<String> {
        use futures::StreamExt;
        let table = self.table("SignupDeadLetters");
        let mut pages = table.query().into_stream::<serde_json::Value>();
        let mut errors = Vec::new();
        while let Some(page) = pages.next().await {
            for letter in page.expect("dead letters readable").entities {
                errors.push(letter["Error"].as_str().unwrap_or_default().to_owned());
            }
        }
        errors
    }

    /// How many dead letters are stored.
    pub async fn dead_letters(&self) -> usize {
        self.dead_letter_errors().await.len()
    }

    /// Every message on `signup-requests`, decoded (peeked: they stay on the queue).
    pub async fn queued_messages(&self) -> Vec<InviteMessage> {
        let queue = QueueServiceClientBuilder::with_location(
            CloudLocation::Custom {
                account: "devstoreaccount1".into(),
                uri: format!(
                    "http://127.0.0.1:{}/devstoreaccount1",
                    self.azurite.queue_port
                ),
            },
            StorageCredentials::emulator(),
        )
        .build()
        .queue_client("signup-requests");
        let peeked = match queue.peek_messages().number_of_messages(32u8).await {
            Ok(peeked) => peeked,
            Err(_) => return Vec::new(), // the queue does not exist yet
        };
        peeked
            .messages
            .iter()
            .map(|m| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&m.message_text)
                    .expect("messages are base64, as the Functions host expects");
                serde_json::from_slice(&bytes).expect("message is the versioned JSON")
            })
            .collect()
    }
}

/// A request's history, one `actor action from→to` line per entry (`(new)` for no `from`),
/// for assertions that read as the sequence of changes.
pub fn changes(row: &SignupRequest) -> Vec<String> {
    row.history
        .entries()
        .iter()
        .map(|entry| {
            let from = entry.from.map_or("(new)", |from| from.as_str());
            format!("{} {} {from}→{}", entry.actor, entry.action, entry.to)
        })
        .collect()
}

/// Asserts a problem+json answer and returns its body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status(), status, "status for {code}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    for key in ["type", "title", "detail"] {
        assert!(body[key].is_string(), "problem has {key}: {body}");
    }
    body
}
