//! The queue operations a queue trigger needs, behind [`QueueStore`], implemented on Azure
//! Queue storage (or Azurite) with the community 0.21 crate, on the account and credential
//! the connection setting names ([`webjobs_storage`], read as the app reads it).
//!
//! The 0.21 crate sends and returns message text as is (no base64): encoding is the
//! trigger's business ([`super::queues`]).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use azure_core::{
    ClientOptions, ExponentialRetryOptions, RetryOptions, TransportOptions, error::ErrorKind,
};
use azure_storage_queues::{PopReceipt, QueueServiceClient, QueueServiceClientBuilder};
use time::OffsetDateTime;
use webjobs_storage::{StorageAccount, credentials};

/// Every queue call is bounded: connecting, the whole request, and the SDK's few retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const RETRIES: u32 = 2;

/// A message fetched with Get Messages: invisible to others until its lock ends.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub id: String,
    /// Needed to delete or update the message; changes with every update.
    pub pop_receipt: String,
    /// The text as stored (base64 or not, as the sender wrote it).
    pub text: String,
    /// 1 on the first delivery, incremented by the service on each Get Messages.
    pub dequeue_count: u64,
    pub insertion_time: OffsetDateTime,
    pub expiration_time: OffsetDateTime,
    pub next_visible_time: OffsetDateTime,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueStoreError {
    /// The message is gone or its pop receipt is stale (someone else has it now).
    #[error("the message was not found (deleted, or its lock expired)")]
    NotFound,
    /// Storage could not be reached or answered with an error; worth retrying.
    #[error("queue storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Queue operations by queue name.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Creates the queue if it does not exist.
    async fn create(&self, queue: &str) -> Result<(), QueueStoreError>;

    /// Up to `max` (1–32) messages, each locked for `lock`.
    async fn get_messages(
        &self,
        queue: &str,
        max: u8,
        lock: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueStoreError>;

    /// Deletes a fetched message (with its current pop receipt).
    async fn delete(&self, queue: &str, message: &ReceivedMessage) -> Result<(), QueueStoreError>;

    /// Makes the message visible again after `visibility` (text unchanged).
    async fn release(
        &self,
        queue: &str,
        message: &ReceivedMessage,
        visibility: Duration,
    ) -> Result<(), QueueStoreError>;

    /// Adds a message with `text` exactly as given.
    async fn put(&self, queue: &str, text: &str) -> Result<(), QueueStoreError>;
}

/// [`QueueStore`] on one storage account.
#[derive(Clone)]
pub struct AzureQueueStore {
    service: Arc<QueueServiceClient>,
}

impl AzureQueueStore {
    /// Clients only; no network call until the first operation.
    pub fn new(account: &StorageAccount) -> Result<Self, QueueStoreError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| QueueStoreError::Unavailable(Box::new(e)))?;
        let options = ClientOptions::new(TransportOptions::new(Arc::new(http))).retry(
            RetryOptions::exponential(
                ExponentialRetryOptions::default()
                    .max_retries(RETRIES)
                    .initial_delay(Duration::from_millis(100))
                    .max_total_elapsed(REQUEST_TIMEOUT * 2),
            ),
        );
        let credentials =
            credentials(&account.auth).map_err(|e| QueueStoreError::Unavailable(Box::new(e)))?;
        let service =
            QueueServiceClientBuilder::with_location(account.queue_location(), credentials)
                .client_options(options)
                .build();
        Ok(Self {
            service: Arc::new(service),
        })
    }
}

fn error(e: azure_core::Error) -> QueueStoreError {
    match e.kind() {
        ErrorKind::HttpResponse { status, .. } if u16::from(*status) == 404 => {
            QueueStoreError::NotFound
        }
        _ => QueueStoreError::Unavailable(Box::new(e)),
    }
}

#[async_trait]
impl QueueStore for AzureQueueStore {
    async fn create(&self, queue: &str) -> Result<(), QueueStoreError> {
        // Create Queue is idempotent: 201 when new, 204 when it exists.
        self.service
            .queue_client(queue)
            .create()
            .await
            .map(drop)
            .map_err(error)
    }

    async fn get_messages(
        &self,
        queue: &str,
        max: u8,
        lock: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueStoreError> {
        let response = self
            .service
            .queue_client(queue)
            .get_messages()
            .number_of_messages(max.clamp(1, 32))
            .visibility_timeout(lock)
            .await
            .map_err(error)?;
        Ok(response
            .messages
            .into_iter()
            .map(|m| ReceivedMessage {
                id: m.message_id,
                pop_receipt: m.pop_receipt,
                text: m.message_text,
                dequeue_count: m.dequeue_count,
                insertion_time: m.insertion_time,
                expiration_time: m.expiration_time,
                next_visible_time: m.time_next_visible,
            })
            .collect())
    }

    async fn delete(&self, queue: &str, message: &ReceivedMessage) -> Result<(), QueueStoreError> {
        self.service
            .queue_client(queue)
            .pop_receipt_client(PopReceipt::new(&message.id, &message.pop_receipt))
            .delete()
            .await
            .map(drop)
            .map_err(error)
    }

    async fn release(
        &self,
        queue: &str,
        message: &ReceivedMessage,
        visibility: Duration,
    ) -> Result<(), QueueStoreError> {
        // Update Message needs the text; sending it back unchanged keeps the message as is.
        self.service
            .queue_client(queue)
            .pop_receipt_client(PopReceipt::new(&message.id, &message.pop_receipt))
            .update(message.text.clone(), visibility)
            .await
            .map(drop)
            .map_err(error)
    }

    async fn put(&self, queue: &str, text: &str) -> Result<(), QueueStoreError> {
        self.service
            .queue_client(queue)
            .put_message(text)
            .await
            .map(drop)
            .map_err(error)
    }
}
