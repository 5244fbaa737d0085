//! HTTP edges shared by every service: errors as RFC 9457
//! `application/problem+json`; JSON body, query and path extractors whose
//! rejections are problems too; the answers for an unknown path and a wrong
//! method; and the request body limit.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use udders_eventstore::StoreError;

/// Request bodies above this are refused with 413, far below the broker's
/// 1 MiB record limit, so an accepted order always fits in one record.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An error answered as `application/problem+json`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
}

impl Problem {
    /// A problem with a status, a kind slug (`/problems/<slug>`) and details.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{slug}"),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 400, for a malformed parameter or body.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 422: well-formed, but not a valid request.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request", detail)
    }

    /// 409: conflicts with the resource's state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 503: the service is shutting down or not ready; try again.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// 500: logged with its cause chain; the client sees no internals.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server failed; the error is logged")
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        Problem::internal(&error)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

/// A JSON body; every way it can fail is a [`Problem`]: 400 for broken
/// JSON, 422 for a missing or mistyped field, 415 without a JSON content
/// type, 413 above [`MAX_BODY_BYTES`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => Problem::unprocessable(e.body_text()),
                JsonRejection::JsonSyntaxError(e) => Problem::bad_request(e.body_text()),
                JsonRejection::MissingJsonContentType(e) => {
                    Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", e.body_text())
                }
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
                ),
                other => Problem::new(other.status(), "bad-request", other.body_text()),
            }),
        }
    }
}

/// Answers 404 as a problem for paths no route serves.
pub async fn no_such_path() -> Problem {
    Problem::not_found("no such path")
}

/// Answers 405 as a problem for a method a path does not take.
pub async fn wrong_method() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "this path does not take that method")
}

/// Query parameters; a query string that does not parse into `T` (an
/// unknown number, a negative limit, ...) is a 400 problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(Problem::new(rejection.status(), "bad-request", rejection.body_text())),
        }
    }
}

/// Path parameters; a segment that does not parse into `T` is a problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(Problem::new(rejection.status(), "bad-request", rejection.body_text())),
        }
    }
}

/// The whole number a JSON number stands for: an integer, or a float with
/// no fraction (JSON Schema's `integer` allows `2.0`, so the API does too).
fn whole(number: &serde_json::Number) -> Option<i64> {
    if let Some(n) = number.as_i64() {
        return Some(n);
    }
    // Beyond 2^53 a float no longer tells whole numbers apart.
    number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0).map(|f| f as i64)
}

/// Deserialises an `i64` written as an integer or as a whole float (`#[serde(deserialize_with)]`).
pub fn whole_i64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = <serde_json::Number as serde::Deserialize>::deserialize(deserializer)?;
    whole(&number).ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number")))
}

/// Deserialises a `u32` written as an integer or as a whole float (`#[serde(deserialize_with)]`).
pub fn whole_u32<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let number = <serde_json::Number as serde::Deserialize>::deserialize(deserializer)?;
    whole(&number)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number from 0 to {}", u32::MAX)))
}
