//! The store's errors: a few the API turns into 4xx answers, the rest are the database's own.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the slug is already taken")]
    SlugTaken,
    #[error(transparent)]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// A grouped query's task is gone (the runtime is shutting down).
    #[error("the grouped query {0} has stopped")]
    Stopped(&'static str),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let constraint = error
            .as_database_error()
            .and_then(|e| e.constraint())
            .map(str::to_owned);
        match constraint.as_deref() {
            Some("links_slug_unique") => StoreError::SlugTaken,
            _ => StoreError::Database(error),
        }
    }
}
