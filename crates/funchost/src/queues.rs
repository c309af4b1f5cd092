//! Queue triggers: poll a queue with host.json's `extensions.queues` settings, invoke the
//! function for each message, and apply dequeue counts and the poison queue as the host does.
//! <https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger#poison-messages>
//!
//! - A batch of `batchSize` messages is fetched, each locked for the function timeout plus a
//!   minute, and invoked concurrently; a new batch is fetched when the invocations in flight
//!   drop to `newBatchThreshold` (so up to `batchSize + newBatchThreshold` run at once).
//! - An empty queue is polled with exponential backoff from 100 ms to `maxPollingInterval`.
//! - Success deletes the message. Failure makes it visible again after `visibilityTimeout`
//!   (0: at once); when the failed delivery's `DequeueCount` reached `maxDequeueCount`, the
//!   original text goes to `<queue>-poison` instead.
//! - With `messageEncoding: base64`, a message that is not base64 of UTF-8 text goes
//!   straight to the poison queue, as the host does when decoding fails.

use std::{sync::Arc, time::Duration};

use base64::Engine;
use time::OffsetDateTime;
use tokio::{sync::watch, task::JoinSet};

use super::{
    config::{MessageEncoding, QueueOptions, QueueTrigger},
    invoke::Invoker,
    payload::{self, MessageInfo, Sys},
    queue_store::{QueueStore, QueueStoreError, ReceivedMessage},
    stopped,
};

/// The first wait after an empty poll, doubled each time up to `maxPollingInterval`.
const MIN_POLL: Duration = Duration::from_millis(100);
/// How long invocations in flight may finish after a stop before they are abandoned (their
/// messages reappear when their lock ends).
const DRAIN: Duration = Duration::from_secs(30);

/// What to do with a message whose invocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Visible again after `visibilityTimeout`.
    Retry,
    /// Copied to `<queue>-poison` and deleted.
    Poison,
}

/// The host's rule: poison once this delivery's count reached `maxDequeueCount`.
pub fn after_failure(dequeue_count: u64, max_dequeue_count: u64) -> AfterFailure {
    if dequeue_count >= max_dequeue_count {
        AfterFailure::Poison
    } else {
        AfterFailure::Retry
    }
}

/// Decodes message text for `encoding`; `None` when it cannot be decoded.
pub fn decode(text: &str, encoding: MessageEncoding) -> Option<String> {
    match encoding {
        MessageEncoding::None => Some(text.to_owned()),
        MessageEncoding::Base64 => {
            // .NET's base64 decoder skips white space; so does this.
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()?;
            String::from_utf8(bytes).ok()
        }
    }
}

/// One queue-triggered function.
pub struct QueueListener {
    pub function: String,
    pub trigger: QueueTrigger,
    pub options: QueueOptions,
    pub store: Arc<dyn QueueStore>,
    pub invoker: Invoker,
    /// How long a fetched message stays locked: longer than any invocation may run.
    pub lock: Duration,
}

impl QueueListener {
    fn poison_queue(&self) -> String {
        format!("{}-poison", self.trigger.queue_name)
    }

    /// Polls until `stop` turns true, then lets invocations in flight finish (bounded).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if !self.create_queues(&mut stop).await {
            return;
        }
        let threshold = usize::try_from(self.options.new_batch_threshold).unwrap_or(usize::MAX);
        let mut in_flight = JoinSet::new();
        let mut delay = MIN_POLL;
        loop {
            while in_flight.try_join_next().is_some() {}
            if in_flight.len() > threshold {
                tokio::select! {
                    _ = in_flight.join_next() => continue,
                    () = stopped(&mut stop) => break,
                }
            }
            let fetched = self
                .store
                .get_messages(&self.trigger.queue_name, self.options.batch_size, self.lock)
                .await;
            match fetched {
                Ok(messages) if !messages.is_empty() => {
                    delay = MIN_POLL;
                    for message in messages {
                        in_flight.spawn(self.clone().process(message));
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    function = %self.function,
                    queue = %self.trigger.queue_name,
                    error = %e,
                    "cannot fetch messages; will retry"
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(&mut stop) => break,
            }
            delay = (delay * 2).min(self.options.max_polling_interval);
        }
        if tokio::time::timeout(DRAIN, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!(function = %self.function, "invocations still running at shutdown were abandoned");
        }
    }

    /// Creates the queue and its poison queue, retrying until it works or the runner stops.
    async fn create_queues(&self, stop: &mut watch::Receiver<bool>) -> bool {
        let mut delay = MIN_POLL;
        loop {
            let mut result = self.store.create(&self.trigger.queue_name).await;
            if result.is_ok() {
                result = self.store.create(&self.poison_queue()).await;
            }
            match result {
                Ok(()) => return true,
                Err(e) => tracing::warn!(
                    function = %self.function,
                    queue = %self.trigger.queue_name,
                    error = %e,
                    "cannot create the queue; will retry"
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(stop) => return false,
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    async fn process(self: Arc<Self>, message: ReceivedMessage) {
        let queue = &self.trigger.queue_name;
        let Some(text) = decode(&message.text, self.options.message_encoding) else {
            tracing::warn!(
                function = %self.function,
                message_id = %message.id,
                "message is not valid base64 (host.json messageEncoding); moving it to the poison queue"
            );
            self.poison(&message).await;
            return;
        };
        let info = MessageInfo {
            id: &message.id,
            pop_receipt: &message.pop_receipt,
            dequeue_count: message.dequeue_count,
            insertion_time: message.insertion_time,
            expiration_time: message.expiration_time,
            next_visible_time: message.next_visible_time,
        };
        let sys = Sys {
            method_name: &self.function,
            utc_now: OffsetDateTime::now_utc(),
            rand_guid: uuid::Uuid::new_v4(),
        };
        let invocation = payload::queue_invocation(&self.trigger.binding, &text, &info, &sys);
        let started = std::time::Instant::now();
        match self.invoker.invoke(&self.function, &invocation).await {
            Ok(()) => {
                tracing::info!(
                    function = %self.function,
                    message_id = %message.id,
                    dequeue_count = message.dequeue_count,
                    elapsed_ms = started.elapsed().as_millis(),
                    "executed"
                );
                if let Err(e) = self.store.delete(queue, &message).await {
                    // Not deleted: it reappears when its lock ends and runs again, which
                    // at-least-once delivery allows.
                    tracing::warn!(function = %self.function, message_id = %message.id, error = %e, "cannot delete the message");
                }
            }
            Err(e) => {
                let next = after_failure(message.dequeue_count, self.options.max_dequeue_count);
                tracing::warn!(
                    function = %self.function,
                    message_id = %message.id,
                    dequeue_count = message.dequeue_count,
                    max_dequeue_count = self.options.max_dequeue_count,
                    error = %e,
                    next = ?next,
                    "invocation failed"
                );
                match next {
                    AfterFailure::Poison => self.poison(&message).await,
                    AfterFailure::Retry => self.release(&message).await,
                }
            }
        }
    }

    async fn release(&self, message: &ReceivedMessage) {
        let result = self
            .store
            .release(
                &self.trigger.queue_name,
                message,
                self.options.visibility_timeout,
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(function = %self.function, message_id = %message.id, error = %e, "cannot release the message; it reappears when its lock ends");
        }
    }

    /// Copies the original text (same encoding) to the poison queue, then deletes it.
    async fn poison(&self, message: &ReceivedMessage) {
        let poison = self.poison_queue();
        match self.store.put(&poison, &message.text).await {
            Ok(()) => {
                tracing::warn!(function = %self.function, message_id = %message.id, queue = %poison, "moved to the poison queue");
                match self.store.delete(&self.trigger.queue_name, message).await {
                    Ok(()) | Err(QueueStoreError::NotFound) => {}
                    Err(e) => {
                        tracing::warn!(function = %self.function, message_id = %message.id, error = %e, "cannot delete the poisoned message")
                    }
                }
            }
            Err(e) => {
                tracing::error!(function = %self.function, message_id = %message.id, error = %e, "cannot write to the poison queue; retrying the message later");
                self.release(message).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_poisoned_once_the_dequeue_count_reaches_the_maximum() {
        let cases = [
            (1, 5, AfterFailure::Retry),
            (4, 5, AfterFailure::Retry),
            (5, 5, AfterFailure::Poison),
            (6, 5, AfterFailure::Poison),
            (1, 1, AfterFailure::Poison),
        ];
        for (count, max, expected) in cases {
            assert_eq!(after_failure(count, max), expected, "{count}/{max}");
        }
    }

    #[test]
    fn base64_messages_decode_and_bad_ones_do_not() {
        let cases = [
            ("eyJ2IjoxfQ==", MessageEncoding::Base64, Some(r#"{"v":1}"#)),
            (
                "eyJ2Ijox\r\nfQ==",
                MessageEncoding::Base64,
                Some(r#"{"v":1}"#),
            ),
            ("{\"v\":1}", MessageEncoding::Base64, None),
            ("not base64!", MessageEncoding::Base64, None),
            ("//79", MessageEncoding::Base64, None), // valid base64, not UTF-8
            ("{\"v\":1}", MessageEncoding::None, Some(r#"{"v":1}"#)),
        ];
        for (text, encoding, expected) in cases {
            assert_eq!(decode(text, encoding).as_deref(), expected, "{text}");
        }
    }
}
