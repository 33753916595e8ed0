//! The HTTP API's error: a status code and a message, sent as `{"error": "..."}`.

use crate::error::CtlError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An API error response.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
}

impl From<CtlError> for ApiError {
    fn from(e: CtlError) -> Self {
        let status = match &e {
            CtlError::Invalid(_) => StatusCode::BAD_REQUEST,
            CtlError::NotFound(_) => StatusCode::NOT_FOUND,
            CtlError::Precondition(_) => StatusCode::CONFLICT,
            CtlError::Exhausted(_) => StatusCode::TOO_MANY_REQUESTS,
            CtlError::Db(_) | CtlError::Migration { .. } | CtlError::Corrupt(_) => {
                tracing::error!(error = %e, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError { status, message: e.to_string() }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        ApiError { status: e.status(), message: e.body_text() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}
