//! Linkkit's Postgres seam: the schema and its migrations, one module of queries per table
//! family, and the transactional outbox. It never talks to the broker: the outbox relay (in
//! the API service) reads what this crate wrote and publishes it.
//!
//! Every query that reads or changes a customer's object takes the workspace id, so one
//! workspace can never reach another's rows.

pub mod deliveries;
pub mod endpoint_cache;
pub mod endpoints;
mod error;
pub mod group;
pub mod links;
pub mod metrics;
pub mod outbox;
pub mod parked;
pub mod sessions;
pub mod worker_queries;
pub mod workspaces;

use std::str::FromStr;
use std::time::Duration;

pub use error::StoreError;
pub use sqlx::postgres::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
pub use sqlx::{PgConnection, Postgres, Transaction};

/// Connects a pool (lazily: the first query opens the first connection).
///
/// Every statement is planned for its own parameters (`plan_cache_mode = force_custom_plan`).
/// Postgres otherwise settles on one generic plan per prepared statement after five runs and
/// keeps it until the table is next analyzed; a plan made while `deliveries` was nearly empty
/// (a fresh install, a new partition of work) scans the whole table on every later run, which
/// the benchmarks saw as most of Postgres's time. Planning these short statements costs far
/// less than one such scan.
pub fn connect_lazy(database_url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(database_url)?
        .options([("plan_cache_mode", "force_custom_plan")]);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options))
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .map_err(StoreError::Migrate)
}

/// True when Postgres answers.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

/// One page of a list, newest first.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Splits `limit + 1` rows into a page and the cursor of the next (the last id shown).
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> &str) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|row| id(row).to_owned())
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}
