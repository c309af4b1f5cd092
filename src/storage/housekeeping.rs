//! Reading and deleting what retention and data-subject requests need beyond
//! [`super::RequestStore`]: address claims and dead letters as entities, and deletes that
//! are ETag-guarded, batched per partition (an entity-group transaction holds at most 100
//! operations of one partition:
//! <https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions>).

use async_trait::async_trait;
use azure_data_tables::{IfMatchCondition, clients::TableClient};
use futures::StreamExt;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{
    AzureStorage, CLAIM_ROW_PREFIX, ETag, StoreError,
    azure::{http_status, unavailable},
    entity::{check_key, claim_row_key, format_time},
};
use crate::domain::{EmailAddress, EmailDomain, RequestId};

/// Most operations in one entity-group transaction (the service's limit).
pub const MAX_BATCH: usize = 100;

/// One entity to delete if it still has the ETag it was read with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRef {
    pub partition: String,
    pub row_key: String,
    pub etag: ETag,
}

/// An address claim as stored: which request it points at. Claims carry no address
/// column: the RowKey is the escaped local part ([`claim_row_key`]).
#[derive(Debug, Clone)]
pub struct StoredClaim {
    pub entity: EntityRef,
    pub request_id: RequestId,
    pub claimed_at: String,
}

/// A kept queue message ([`super::DEAD_LETTERS_TABLE`]) as stored.
#[derive(Debug, Clone)]
pub struct StoredDeadLetter {
    pub entity: EntityRef,
    pub message_id: Option<String>,
    pub dequeue_count: u32,
    pub error: String,
    pub text: String,
    pub received_at: String,
}

/// What a delete did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The entities deleted.
    pub deleted: Vec<EntityRef>,
    /// Changed since read (or gone already): left for the next pass.
    pub skipped: usize,
}

#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Claims in `SignupRequests` made before `before` (a finished request's claim is at
    /// least as old as the request), at most `limit`.
    async fn claims_before(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<StoredClaim>, StoreError>;

    /// `email`'s claim as an entity, to delete it.
    async fn claim_entity(&self, email: &EmailAddress) -> Result<Option<StoredClaim>, StoreError>;

    /// Dead letters received before `before` (every one when `None`), at most `limit`.
    async fn dead_letters(
        &self,
        before: Option<OffsetDateTime>,
        limit: usize,
    ) -> Result<Vec<StoredDeadLetter>, StoreError>;

    /// Deletes entities of `SignupRequests` (rows and claims), each only if unchanged.
    async fn delete_requests(&self, entities: &[EntityRef]) -> Result<Deleted, StoreError>;

    /// Deletes dead letters, each only if unchanged.
    async fn delete_dead_letters(&self, entities: &[EntityRef]) -> Result<Deleted, StoreError>;
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ClaimRow {
    partition_key: String,
    row_key: String,
    request_id: String,
    claimed_at: String,
    #[serde(rename = "odata.etag")]
    etag: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeadLetterRow {
    partition_key: String,
    row_key: String,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    dequeue_count: u32,
    #[serde(default)]
    error: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    received_at: String,
    #[serde(rename = "odata.etag")]
    etag: Option<String>,
}

impl ClaimRow {
    fn into_claim(self) -> Option<StoredClaim> {
        Some(StoredClaim {
            request_id: RequestId::parse(&self.request_id)?,
            claimed_at: self.claimed_at,
            entity: EntityRef {
                partition: self.partition_key,
                row_key: self.row_key,
                etag: ETag(self.etag?),
            },
        })
    }
}

/// Every entity of `table` matching `filter`, up to `limit`, with its ETag.
async fn query_all<T>(
    table: &TableClient,
    filter: String,
    limit: usize,
) -> Result<Vec<T>, StoreError>
where
    T: serde::de::DeserializeOwned + Send + Sync,
{
    let mut pages = table.query().filter(filter).into_stream::<T>();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for entity in page.map_err(unavailable)?.entities {
            out.push(entity);
            if out.len() >= limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// Deletes `entities`, grouped by partition, in transactions of [`MAX_BATCH`]. A
/// transaction is all or nothing: when one of its entities changed since it was read, the
/// service refuses the whole of it, and its entities are then deleted one by one so the
/// unchanged ones still go.
async fn delete_batched(
    table: &TableClient,
    entities: &[EntityRef],
) -> Result<Deleted, StoreError> {
    let mut sorted: Vec<&EntityRef> = entities.iter().collect();
    sorted.sort_by(|a, b| (&a.partition, &a.row_key).cmp(&(&b.partition, &b.row_key)));
    let mut total = Deleted::default();
    for partition in sorted.chunk_by(|a, b| a.partition == b.partition) {
        for chunk in partition.chunks(MAX_BATCH) {
            let done = delete_chunk(table, chunk).await?;
            total.deleted.extend(done.deleted);
            total.skipped += done.skipped;
        }
    }
    Ok(total)
}

async fn delete_chunk(table: &TableClient, chunk: &[&EntityRef]) -> Result<Deleted, StoreError> {
    let Some(first) = chunk.first() else {
        return Ok(Deleted::default());
    };
    if chunk.len() > 1 {
        let mut batch = table
            .partition_key_client(check_key(&first.partition)?)
            .transaction();
        for entity in chunk {
            batch = batch
                .delete(
                    check_key(&entity.row_key)?,
                    Some(IfMatchCondition::Etag(entity.etag.0.clone().into())),
                )
                .map_err(unavailable)?;
        }
        let response = batch.await.map_err(unavailable)?;
        let refused = response
            .operation_responses
            .iter()
            .any(|part| !part.status_code.is_success());
        if !refused {
            return Ok(Deleted {
                deleted: chunk.iter().map(|e| (*e).clone()).collect(),
                skipped: 0,
            });
        }
    }
    let mut done = Deleted::default();
    for entity in chunk {
        let deleted = table
            .partition_key_client(check_key(&entity.partition)?)
            .entity_client(check_key(&entity.row_key)?)
            .delete()
            .if_match(IfMatchCondition::Etag(entity.etag.0.clone().into()))
            .await;
        match deleted {
            Ok(_) => done.deleted.push((*entity).clone()),
            Err(e) if matches!(http_status(&e), Some(404 | 412)) => done.skipped += 1,
            Err(e) => return Err(unavailable(e)),
        }
    }
    Ok(done)
}

#[async_trait]
impl Housekeeping for AzureStorage {
    async fn claims_before(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<StoredClaim>, StoreError> {
        self.tables().await?;
        let filter = format!(
            "RowKey ge '{CLAIM_ROW_PREFIX}' and ClaimedAt lt datetime'{}'",
            format_time(before)
        );
        let rows: Vec<ClaimRow> = query_all(&self.requests, filter, limit).await?;
        Ok(rows.into_iter().filter_map(ClaimRow::into_claim).collect())
    }

    async fn claim_entity(&self, email: &EmailAddress) -> Result<Option<StoredClaim>, StoreError> {
        self.tables().await?;
        let filter = format!(
            "PartitionKey eq '{}' and RowKey eq '{}'",
            check_key(email.domain().as_str())?,
            check_key(&claim_row_key(email))?.replace('\'', "''")
        );
        let rows: Vec<ClaimRow> = query_all(&self.requests, filter, 1).await?;
        Ok(rows.into_iter().find_map(ClaimRow::into_claim))
    }

    async fn dead_letters(
        &self,
        before: Option<OffsetDateTime>,
        limit: usize,
    ) -> Result<Vec<StoredDeadLetter>, StoreError> {
        self.tables().await?;
        let filter = match before {
            Some(before) => format!("ReceivedAt lt datetime'{}'", format_time(before)),
            None => "PartitionKey ne ''".to_owned(),
        };
        let rows: Vec<DeadLetterRow> = query_all(&self.dead_letters, filter, limit).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(StoredDeadLetter {
                    entity: EntityRef {
                        partition: row.partition_key,
                        row_key: row.row_key,
                        etag: ETag(row.etag?),
                    },
                    message_id: row.message_id,
                    dequeue_count: row.dequeue_count,
                    error: row.error,
                    text: row.text,
                    received_at: row.received_at,
                })
            })
            .collect())
    }

    async fn delete_requests(&self, entities: &[EntityRef]) -> Result<Deleted, StoreError> {
        self.tables().await?;
        delete_batched(&self.requests, entities).await
    }

    async fn delete_dead_letters(&self, entities: &[EntityRef]) -> Result<Deleted, StoreError> {
        self.tables().await?;
        delete_batched(&self.dead_letters, entities).await
    }
}

/// The entity of a request row, to delete it.
pub fn request_ref(domain: &EmailDomain, id: &RequestId, etag: &ETag) -> EntityRef {
    EntityRef {
        partition: domain.as_str().to_owned(),
        row_key: id.to_string(),
        etag: etag.clone(),
    }
}
