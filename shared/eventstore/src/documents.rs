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
}
