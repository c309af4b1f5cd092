//! [`RequestStore`] and [`SignupQueue`] on Azure Table and Queue storage (or Azurite),
//! through the community 0.21 crates.
//!
//! Built without any network call (the host gives ~30 s to bind): tables and the queue
//! are created on first use, once per process, and again on the next call if that failed.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use azure_core::{
    ClientOptions, ExponentialRetryOptions, RetryOptions, TransportOptions, error::ErrorKind,
};
use azure_data_tables::{
    IfMatchCondition,
    clients::{EntityClient, TableClient, TableServiceClientBuilder},
};
use azure_storage_queues::{QueueClient, QueueServiceClientBuilder};
use base64::Engine;
use futures::StreamExt;
use tokio::sync::OnceCell;

use super::{
    AddressClaim, CounterStore, DEAD_LETTERS_TABLE, DeadLetter, DeadLetters, ETag, INVITE_QUEUE,
    Increment, InviteMessage, RATE_LIMITS_TABLE, REQUESTS_TABLE, RequestKey, RequestQuery,
    RequestStore, SignupQueue, StorageAccount, StoreError, Versioned,
    entity::{ClaimEntity, DeadLetterEntity, KeyEntity, RequestEntity, check_key, claim_row_key},
    transport::Transport,
};
use crate::domain::{EmailAddress, EmailDomain, RequestId, SignupRequest};

/// Time limits for every storage call. Retries inside the SDK are few and short: the
/// caller (an HTTP request or a queue invocation) has its own retry story.
#[derive(Debug, Clone, Copy)]
pub struct StorageTimeouts {
    pub connect: Duration,
    pub request: Duration,
    pub retries: u32,
}

impl Default for StorageTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(10),
            retries: 2,
        }
    }
}

/// Clients for the account's tables and queue; cheap to clone and shared by all requests.
#[derive(Clone)]
pub struct AzureStorage {
    /// Request rows and address claims (see [`REQUESTS_TABLE`]).
    pub(super) requests: TableClient,
    pub(super) dead_letters: TableClient,
    counters: TableClient,
    queue: QueueClient,
    /// Created-once markers; `OnceCell` retries initialisation after a failure.
    ready_tables: Arc<OnceCell<()>>,
    ready_queue: Arc<OnceCell<()>>,
    /// Storage requests sent by these clients (see [`AzureStorage::calls`]).
    calls: Arc<std::sync::atomic::AtomicU64>,
}

impl AzureStorage {
    pub fn new(account: &StorageAccount, timeouts: StorageTimeouts) -> Result<Self, StoreError> {
        let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let options = client_options(timeouts, calls.clone())?;
        let credentials = webjobs_storage::credentials(&account.auth).map_err(unavailable)?;
        let tables =
            TableServiceClientBuilder::with_location(account.table_location(), credentials.clone())
                .client_options(options.clone())
                .build();
        let queues =
            QueueServiceClientBuilder::with_location(account.queue_location(), credentials)
                .client_options(options)
                .build();
        Ok(Self {
            requests: tables.table_client(REQUESTS_TABLE),
            dead_letters: tables.table_client(DEAD_LETTERS_TABLE),
            counters: tables.table_client(RATE_LIMITS_TABLE),
            queue: queues.queue_client(INVITE_QUEUE),
            ready_tables: Arc::default(),
            ready_queue: Arc::default(),
            calls,
        })
    }

    /// How many HTTP requests these clients have sent to storage (SDK retries included):
    /// what a benchmark reports beside the time.
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Creates the tables and the queue if missing. Called lazily; also useful right after
    /// start-up to warm connections.
    pub async fn ensure_created(&self) -> Result<(), StoreError> {
        self.tables().await?;
        self.queue().await?;
        Ok(())
    }

    pub(super) async fn tables(&self) -> Result<(), StoreError> {
        self.ready_tables
            .get_or_try_init(|| async {
                for table in [&self.requests, &self.dead_letters, &self.counters] {
                    match table.create().await {
                        Ok(_) => {}
                        Err(e) if http_status(&e) == Some(409) => {} // TableAlreadyExists
                        Err(e) => return Err(unavailable(e)),
                    }
                }
                Ok(())
            })
            .await
            .copied()
    }

    async fn queue(&self) -> Result<&QueueClient, StoreError> {
        self.ready_queue
            .get_or_try_init(|| async {
                // Create Queue is idempotent: 201 when new, 204 when it exists.
                self.queue.create().await.map(drop).map_err(unavailable)
            })
            .await?;
        Ok(&self.queue)
    }
}

impl AzureStorage {
    /// Request rows matching `filter`, which must keep claims out (see [`RequestQuery`]).
    async fn query_filter(
        &self,
        filter: String,
        limit: usize,
    ) -> Result<Vec<Versioned<SignupRequest>>, StoreError> {
        self.tables().await?;
        let mut pages = self
            .requests
            .query()
            .filter(filter)
            .into_stream::<RequestEntity>();
        let mut rows = Vec::new();
        while let Some(page) = pages.next().await {
            for entity in page.map_err(unavailable)?.entities {
                let etag = entity.etag.clone();
                match (entity.into_request(), etag) {
                    (Ok(value), Some(etag)) => rows.push(Versioned {
                        value,
                        etag: ETag(etag),
                    }),
                    (Err(e), _) => {
                        tracing::warn!(error = %e, "skipping a request row that does not parse")
                    }
                    (Ok(_), None) => tracing::warn!("skipping a request row without an ETag"),
                }
                if rows.len() >= limit {
                    return Ok(rows);
                }
            }
        }
        Ok(rows)
    }
}

/// Client options with `timeouts` on every call; shared with the local host runner's queues.
fn client_options(
    timeouts: StorageTimeouts,
    calls: Arc<std::sync::atomic::AtomicU64>,
) -> Result<ClientOptions, StoreError> {
    let http = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
    Ok(
        ClientOptions::new(TransportOptions::new(Arc::new(Transport { http, calls }))).retry(
            RetryOptions::exponential(
                ExponentialRetryOptions::default()
                    .max_retries(timeouts.retries)
                    .initial_delay(Duration::from_millis(100))
                    .max_total_elapsed(timeouts.request * 2),
            ),
        ),
    )
}

pub(super) fn http_status(error: &azure_core::Error) -> Option<u16> {
    match error.kind() {
        ErrorKind::HttpResponse { status, .. } => Some(u16::from(*status)),
        _ => None,
    }
}

pub(super) fn unavailable(error: azure_core::Error) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

/// 409 (exists) and 412 (ETag mismatch) mean someone else won; 404 on a conditional
/// update means the entity is gone, which for a compare-and-swap is the same.
pub(super) fn write_error(error: azure_core::Error) -> StoreError {
    match http_status(&error) {
        Some(404 | 409 | 412) => StoreError::Conflict,
        _ => unavailable(error),
    }
}

async fn get_entity<T>(client: EntityClient) -> Result<Option<(T, ETag)>, StoreError>
where
    T: serde::de::DeserializeOwned + Send,
{
    match client.get::<T>().await {
        Ok(response) => Ok(Some((response.entity, ETag(response.etag.to_string())))),
        Err(e) if http_status(&e) == Some(404) => Ok(None),
        Err(e) if matches!(e.kind(), ErrorKind::DataConversion) => Err(StoreError::Corrupt(
            "entity does not have the expected columns".into(),
        )),
        Err(e) => Err(unavailable(e)),
    }
}

#[async_trait]
impl RequestStore for AzureStorage {
    async fn create(
        &self,
        request: &SignupRequest,
        claim: &AddressClaim,
        expected: Option<&ETag>,
    ) -> Result<ETag, StoreError> {
        self.tables().await?;
        let row = RequestEntity::from_request(request)?;
        let claim = ClaimEntity::new(&request.email, claim)?;
        let batch = self
            .requests
            .partition_key_client(&row.partition_key)
            .transaction()
            .insert(&row)
            .map_err(unavailable)?;
        let batch = match expected {
            None => batch.insert(&claim),
            Some(etag) => batch.update(
                claim.row_key.as_str(),
                &claim,
                Some(IfMatchCondition::Etag(etag.0.clone().into())),
            ),
        }
        .map_err(unavailable)?;
        let response = batch.await.map_err(write_error)?;
        // The batch answers 202 whatever happened inside: each operation's own status is in
        // its part of the answer. When one is refused, nothing was written and its part is
        // the only one.
        let parts = response.operation_responses;
        if let Some(refused) = parts.iter().find(|part| !part.status_code.is_success()) {
            return match u16::from(refused.status_code) {
                404 | 409 | 412 => Err(StoreError::Conflict),
                status => Err(StoreError::Unavailable(
                    format!("transaction refused with status {status}").into(),
                )),
            };
        }
        match parts.first().and_then(|row| row.etag.as_ref()) {
            Some(etag) if parts.len() == 2 => Ok(ETag(etag.to_string())),
            _ => Err(StoreError::Unavailable(
                "the transaction's answer lacks a part or the row's ETag".into(),
            )),
        }
    }

    async fn get(
        &self,
        domain: &EmailDomain,
        id: &RequestId,
    ) -> Result<Option<Versioned<SignupRequest>>, StoreError> {
        self.tables().await?;
        let client = self
            .requests
            .partition_key_client(check_key(domain.as_str())?)
            .entity_client(id.to_string());
        match get_entity::<RequestEntity>(client).await? {
            Some((entity, etag)) => Ok(Some(Versioned {
                value: entity.into_request()?,
                etag,
            })),
            None => Ok(None),
        }
    }

    async fn replace(&self, request: &SignupRequest, etag: &ETag) -> Result<ETag, StoreError> {
        self.tables().await?;
        let entity = RequestEntity::from_request(request)?;
        let response = self
            .requests
            .partition_key_client(&entity.partition_key)
            .entity_client(&entity.row_key)
            .update(&entity, IfMatchCondition::Etag(etag.0.clone().into()))
            .map_err(unavailable)?
            .await
            .map_err(write_error)?;
        Ok(ETag(response.etag.to_string()))
    }

    async fn find(&self, id: &RequestId) -> Result<Option<Versioned<SignupRequest>>, StoreError> {
        let filter = format!("RowKey eq '{}'", check_key(&id.to_string())?);
        Ok(self.query_filter(filter, 1).await?.into_iter().next())
    }

    async fn query(
        &self,
        query: &RequestQuery,
        limit: usize,
    ) -> Result<Vec<Versioned<SignupRequest>>, StoreError> {
        self.query_filter(query.filter(), limit).await
    }

    async fn keys(
        &self,
        query: &RequestQuery,
        limit: usize,
    ) -> Result<Vec<RequestKey>, StoreError> {
        self.tables().await?;
        let mut pages = self
            .requests
            .query()
            .filter(query.filter())
            .select("PartitionKey,RowKey")
            .into_stream::<KeyEntity>();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            for entity in page.map_err(unavailable)?.entities {
                match entity.into_key() {
                    Ok(key) => keys.push(key),
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping a request row that does not parse")
                    }
                }
                if keys.len() >= limit {
                    return Ok(keys);
                }
            }
        }
        Ok(keys)
    }

    async fn claim_of(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<Versioned<AddressClaim>>, StoreError> {
        self.tables().await?;
        let client = self
            .requests
            .partition_key_client(check_key(email.domain().as_str())?)
            .entity_client(check_key(&claim_row_key(email))?);
        match get_entity::<ClaimEntity>(client).await? {
            Some((entity, etag)) => Ok(Some(Versioned {
                value: entity.into_claim()?,
                etag,
            })),
            None => Ok(None),
        }
    }

    async fn insert_claim(
        &self,
        email: &EmailAddress,
        claim: &AddressClaim,
    ) -> Result<bool, StoreError> {
        self.tables().await?;
        let inserted = self
            .requests
            .insert::<_, serde::de::IgnoredAny>(&ClaimEntity::new(email, claim)?)
            .map_err(unavailable)?
            .await
            .map_err(write_error);
        match inserted {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CounterEntity {
    partition_key: String,
    row_key: String,
    count: u32,
}

#[async_trait]
impl CounterStore for AzureStorage {
    async fn try_increment(
        &self,
        partition: &str,
        row: &str,
        max: u32,
        create_first: bool,
    ) -> Result<Increment, StoreError> {
        self.tables().await?;
        let client = self
            .counters
            .partition_key_client(check_key(partition)?)
            .entity_client(check_key(row)?);
        let first = CounterEntity {
            partition_key: partition.to_owned(),
            row_key: row.to_owned(),
            count: 1,
        };
        let insert_first = || async {
            self.counters
                .insert::<_, serde::de::IgnoredAny>(&first)
                .map_err(unavailable)?
                .await
                .map(drop)
                .map_err(write_error)
        };
        if create_first && max > 0 {
            // Create it at 1 without reading first; 409 means it exists: read and update.
            match insert_first().await {
                Ok(()) => return Ok(Increment::Counted),
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        let written = match get_entity::<CounterEntity>(client.clone()).await? {
            Some((counter, _)) if counter.count >= max => return Ok(Increment::Full),
            Some((mut counter, etag)) => {
                counter.count += 1;
                client
                    .update(&counter, IfMatchCondition::Etag(etag.0.into()))
                    .map_err(unavailable)?
                    .await
                    .map(drop)
                    .map_err(write_error)
            }
            None if max == 0 => return Ok(Increment::Full),
            None => insert_first().await,
        };
        match written {
            Ok(()) => Ok(Increment::Counted),
            // 412 (changed since read) or 409 (created since read): another writer won.
            Err(StoreError::Conflict) => Ok(Increment::Raced),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl DeadLetters for AzureStorage {
    async fn record(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.tables().await?;
        self.dead_letters
            .insert::<_, serde::de::IgnoredAny>(DeadLetterEntity::new(letter))
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl SignupQueue for AzureStorage {
    async fn send(&self, message: &InviteMessage) -> Result<(), StoreError> {
        let json = serde_json::to_vec(message).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        // The Functions host decodes queue messages as base64 (host.json messageEncoding);
        // the 0.21 crate sends text as given, so encode here.
        let body = base64::engine::general_purpose::STANDARD.encode(json);
        self.queue()
            .await?
            .put_message(body)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
