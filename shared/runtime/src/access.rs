//! Who may do what over HTTP. Operator actions (dead-letter replay and
//! discard, every `/admin` route) need `Authorization: Bearer <operator
//! token>`; the POS writes (`POST /orders`, cancel) need an API key when
//! keys are configured, and are open when none are. Reads are open. Tokens
//! and keys are compared in constant time and never logged: `Debug` shows
//! only whether they are set.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::Problem;

/// The operator token and the POS API keys of a process.
#[derive(Clone)]
pub struct Access {
    operator: Option<Arc<str>>,
    api_keys: Arc<[String]>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("operator_token", &self.operator.as_ref().map(|_| "<set>"))
            .field("api_keys", &self.api_keys.len())
            .finish()
    }
}

impl Access {
    /// `operator`: the token operator actions need (`None`: every operator
    /// action is refused). `api_keys`: the keys the POS accepts (empty: open).
    pub fn new(operator: Option<String>, api_keys: Vec<String>) -> Self {
        let api_keys: Vec<String> =
            api_keys.into_iter().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect();
        Self { operator: operator.filter(|t| !t.is_empty()).map(Arc::from), api_keys: api_keys.into() }
    }

    /// A fresh random operator token (128 bits, hex).
    pub fn random_token() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// True when operator actions can be authorised at all.
    pub fn has_operator_token(&self) -> bool {
        self.operator.is_some()
    }

    /// True when `POST /orders` and cancel need an API key.
    pub fn api_keys_required(&self) -> bool {
        !self.api_keys.is_empty()
    }

    /// True when `headers` carry the operator token.
    pub fn is_operator(&self, headers: &HeaderMap) -> bool {
        match (&self.operator, bearer(headers)) {
            (Some(token), Some(given)) => same(token.as_bytes(), given.as_bytes()),
            _ => false,
        }
    }

    /// True when the POS may write: no keys configured, or a valid key in
    /// `Authorization: Bearer` or `X-API-Key`.
    pub fn is_pos(&self, headers: &HeaderMap) -> bool {
        if self.api_keys.is_empty() {
            return true;
        }
        let given = bearer(headers).or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        // Every key is compared, so the time says nothing about which matched.
        given.is_some_and(|given| {
            self.api_keys.iter().fold(false, |found, key| same(key.as_bytes(), given.as_bytes()) | found)
        })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Equal bytes, in time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn unauthorized(detail: &str) -> Response {
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Middleware: the request goes on only with the operator token.
pub async fn require_operator(State(access): State<Access>, request: Request, next: Next) -> Response {
    if access.is_operator(request.headers()) {
        return next.run(request).await;
    }
    let detail = if access.has_operator_token() {
        "this action needs the operator token: Authorization: Bearer <token>"
    } else {
        "operator actions are disabled: this process was started without UDDERS_OPERATOR_TOKEN"
    };
    unauthorized(detail)
}

/// Middleware for the POS routes: a POST goes on only with a valid API key
/// when keys are configured; other methods always go on.
pub async fn require_api_key(State(access): State<Access>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || access.is_pos(request.headers()) {
        return next.run(request).await;
    }
    unauthorized("this API needs an API key: Authorization: Bearer <key> or X-API-Key: <key>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_the_operator_token_in_a_bearer_header_makes_an_operator() {
        let access = Access::new(Some("s3cret".into()), Vec::new());
        assert!(access.is_operator(&headers(&[("authorization", "Bearer s3cret")])));
        assert!(access.is_operator(&headers(&[("authorization", "bearer s3cret")])));
        assert!(!access.is_operator(&headers(&[("authorization", "Bearer s3cre")])));
        assert!(!access.is_operator(&headers(&[("authorization", "Basic s3cret")])));
        assert!(!access.is_operator(&headers(&[])));
        let closed = Access::new(None, Vec::new());
        assert!(!closed.is_operator(&headers(&[("authorization", "Bearer ")])));
    }

    #[test]
    fn the_pos_is_open_without_keys_and_needs_one_of_them_with_keys() {
        assert!(Access::new(None, Vec::new()).is_pos(&headers(&[])));
        let access = Access::new(None, vec!["k1".into(), " k2 ".into(), String::new()]);
        assert!(access.api_keys_required());
        assert!(access.is_pos(&headers(&[("authorization", "Bearer k2")])));
        assert!(access.is_pos(&headers(&[("x-api-key", "k1")])));
        assert!(!access.is_pos(&headers(&[("x-api-key", "k3")])));
        assert!(!access.is_pos(&headers(&[])));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!("{:?}", Access::new(Some("s3cret".into()), vec!["key-1".into()]));
        assert!(!text.contains("s3cret") && !text.contains("key-1"), "{text}");
    }
}
