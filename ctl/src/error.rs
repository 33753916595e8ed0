//! The ctl library error and its mapping to gRPC statuses.

use tonic::Status;

/// Errors of ctl operations; each maps to one gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The request is malformed (bad URL, negative limit, empty id, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The named object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The operation does not apply in the object's state.
    #[error("failed precondition: {0}")]
    Precondition(String),
    /// No quota is available right now; retry later.
    #[error("resource exhausted: {0}")]
    Exhausted(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Schema migration failed.
    #[error("migration {version}: {source}")]
    Migration {
        /// Migration version that failed.
        version: i64,
        /// Underlying error.
        source: sqlx::Error,
    },
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Result alias for ctl operations.
pub(crate) type CtlResult<T> = Result<T, CtlError>;

impl From<CtlError> for Status {
    fn from(e: CtlError) -> Self {
        match &e {
            CtlError::Invalid(m) => Status::invalid_argument(m.clone()),
            CtlError::NotFound(m) => Status::not_found(m.clone()),
            CtlError::Precondition(m) => Status::failed_precondition(m.clone()),
            CtlError::Exhausted(m) => Status::resource_exhausted(m.clone()),
            CtlError::Db(_) | CtlError::Migration { .. } | CtlError::Corrupt(_) => {
                tracing::error!(error = %e, "internal error");
                Status::internal(e.to_string())
            }
        }
    }
}

/// Current unix time in milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
