//! The outbox relay: publishes what the API committed to the outbox, in order, with confirms,
//! and deletes each row only after the broker confirmed it.
//!
//! It wakes on a Postgres notification from each insert, and also polls, so a missed
//! notification (or a row written while the broker was down) is picked up within a second.
//! Several relays (one per API process) share the table through `FOR UPDATE SKIP LOCKED`.

use std::time::Duration;

use linkkit_bus::{metrics::MESSAGES_PUBLISHED, Outgoing, Publisher};
use linkkit_core::{Envelope, Namespace, WorkspaceId};
use linkkit_store::{outbox, PgPool, StoreError};
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

const BATCH_SIZE: i64 = 200;
const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] linkkit_bus::BusError),
}

/// Publishes outbox rows until `shutdown` fires.
pub async fn run_outbox_relay(
    pool: PgPool,
    publisher: &Publisher,
    namespace: Namespace,
    shutdown: CancellationToken,
) {
    let mut listener = None;
    while !shutdown.is_cancelled() {
        let published = match relay_once(&pool, publisher, &namespace).await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(error = %error, "outbox relay failed; retrying");
                0
            }
        };
        if published as i64 == BATCH_SIZE {
            continue; // more may be waiting
        }
        if listener.is_none() {
            listener = listen(&pool).await;
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            ok = notified => if !ok { listener = None },
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen(outbox::NOTIFY_CHANNEL).await.ok()?;
    Some(listener)
}

/// Publishes one batch of the oldest rows; returns how many were published.
pub async fn relay_once(
    pool: &PgPool,
    publisher: &Publisher,
    namespace: &Namespace,
) -> Result<usize, RelayError> {
    let mut tx = pool.begin().await.map_err(StoreError::from)?;
    let rows = outbox::claim_batch(&mut tx, BATCH_SIZE).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut messages = Vec::with_capacity(rows.len());
    let mut seqs = Vec::with_capacity(rows.len());
    let mut types = Vec::with_capacity(rows.len());
    for row in rows {
        seqs.push(row.seq);
        let parsed = serde_json::from_value::<Envelope>(row.payload)
            .ok()
            .zip(WorkspaceId::parse(&row.workspace_id).ok());
        match parsed {
            Some((event, workspace)) => {
                types.push(event.event);
                messages.push(Outgoing::event(
                    namespace,
                    &workspace,
                    &event,
                    row.created_at,
                ));
            }
            // Only this crate writes the outbox, so this cannot happen short of manual edits;
            // such a row is dropped rather than blocking every event behind it.
            None => tracing::error!(seq = row.seq, "dropping an outbox row that is not an event"),
        }
    }
    publisher.publish_all(&messages).await?;
    outbox::remove(&mut tx, &seqs).await?;
    tx.commit().await.map_err(StoreError::from)?;
    for event_type in types {
        MESSAGES_PUBLISHED
            .with_label_values(&[event_type.as_str(), "api"])
            .inc();
    }
    Ok(seqs.len())
}
