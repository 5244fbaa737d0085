//! Read-model documents: one JSON document per (view, key), with up to three
//! filter tags. Projections write them in the handler's transaction, the API
//! reads them, and replay drops and rebuilds them from the event log.

use serde_json::Value;

/// A read-model document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The view, for example `orders`.
    pub view: String,
    /// The key within the view, for example an order id.
    pub key: String,
    /// The document.
    pub doc: Value,
    /// Filter columns, meaning set by the view (orders: status, country, channel).
    pub tags: [Option<String>; 3],
    /// When the document needs attention (orders: the saga deadline), if ever.
    pub due: Option<udders_kernel::Timestamp>,
}

/// Which documents of a view to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentFilter {
    /// Equal to each given tag.
    pub tags: [Option<String>; 3],
    /// At most this many, most recently updated first.
    pub limit: u32,
    /// Only those after this one in that order (the cursor of the last
    /// document of the previous page).
    pub after: Option<DocumentCursor>,
    /// Only those whose top-level field (name, value) equals the value: read
    /// from the document itself, so it filters what the tags and the cursor
    /// leave, without an index of its own.
    pub field: Option<(String, String)>,
}

/// Where a page of documents ended: the last document's update time and key.
/// Pages follow the documents' order (most recently updated first), so a
/// document updated while a client pages may be listed twice or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentCursor {
    /// Its update time, microseconds.
    pub updated_at_us: i64,
    /// Its key.
    pub key: String,
}

impl std::fmt::Display for DocumentCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.updated_at_us, self.key)
    }
}

impl std::str::FromStr for DocumentCursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a cursor this service gave out");
        let (at, key) = text.split_once('.').ok_or_else(bad)?;
        if at.is_empty() || at.len() > 18 || !at.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(Self { updated_at_us: at.parse().map_err(|_| bad())?, key: key.to_owned() })
    }
}

/// A page of documents and, when the page is full, where the next begins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocumentPage {
    /// The documents.
    pub documents: Vec<Document>,
    /// The cursor of the next page, if there may be one.
    pub next: Option<DocumentCursor>,
}
