//! Aggregates and read-model documents kept in memory between transactions,
//! for a store whose process is the database's only writer (ADR 0008).
//!
//! A transaction takes what it needs out of the cache and gives back what it
//! holds when it commits; a transaction that rolls back gives nothing back,
//! so the next one reads the database. Every transaction gets a stamp when it
//! begins, under the store's single writer connection, so stamps follow the
//! order in which transactions hold the writer. A key remembers the highest
//! stamp that touched it (read it, wrote it, or wrote past the cache), and a
//! transaction may give a key back only if no later transaction touched it:
//! a transaction that gives back late (it committed, released the writer,
//! and another one came and went before it got here) can never put an older
//! state over a newer one.
//!
//! Bounded: two generations of at most half the capacity each. A lookup in
//! the old generation moves the key to the young one; when the young one is
//! full it becomes the old one and the old one is dropped, with a floor that
//! refuses the late give-backs of keys that were dropped.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::documents::Document;

/// What the cache holds a value for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// An aggregate's stream.
    Stream(String),
    /// A read-model document: view and key.
    Document(String, String),
}

/// A cached value.
#[derive(Clone)]
pub(crate) enum Cached {
    /// An aggregate's state and the version it folds up to.
    Aggregate { version: u64, state: Arc<dyn Any + Send + Sync> },
    /// A document, or the knowledge that there is none.
    Document(Option<Document>),
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cached::Aggregate { version, .. } => write!(f, "Aggregate(version {version})"),
            Cached::Document(doc) => write!(f, "Document({:?})", doc.as_ref().map(|d| &d.key)),
        }
    }
}

#[derive(Debug)]
struct Slot {
    /// The highest stamp that touched this key.
    stamp: u64,
    /// The value, unless a transaction holds it (or nobody gave it back).
    value: Option<Cached>,
}

#[derive(Debug, Default)]
struct Generations {
    next_stamp: u64,
    /// Give-backs older than this are refused for keys no longer present.
    floor: u64,
    young: HashMap<Key, Slot>,
    old: HashMap<Key, Slot>,
}

impl Generations {
    /// The slot of `key`, moved to the young generation, if present.
    fn find(&mut self, key: &Key, half: usize) -> Option<&mut Slot> {
        if !self.young.contains_key(key) {
            let slot = self.old.remove(key)?;
            self.insert(key.clone(), slot, half);
        }
        self.young.get_mut(key)
    }

    fn insert(&mut self, key: Key, slot: Slot, half: usize) {
        if self.young.len() >= half {
            self.old = std::mem::take(&mut self.young);
            self.floor = self.next_stamp;
        }
        self.young.insert(key, slot);
    }
}

/// The cache of one store.
#[derive(Debug)]
pub(crate) struct Cache {
    half: usize,
    inner: Mutex<Generations>,
}

impl Cache {
    /// A cache of at most `capacity` keys; `None` for 0.
    pub(crate) fn new(capacity: usize) -> Option<Self> {
        (capacity > 0).then(|| Self { half: capacity.div_ceil(2), inner: Mutex::new(Generations::default()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stamp of a transaction that now holds the writer.
    pub(crate) fn stamp(&self) -> u64 {
        let mut g = self.lock();
        g.next_stamp += 1;
        g.next_stamp
    }

    /// Takes the value of `key` for the transaction `stamp` (which now owns
    /// it until it gives it back), or `None`: read the database.
    pub(crate) fn take(&self, key: &Key, stamp: u64) -> Option<Cached> {
        let half = self.half;
        let mut g = self.lock();
        match g.find(key, half) {
            Some(slot) => {
                slot.stamp = slot.stamp.max(stamp);
                slot.value.take()
            }
            None => {
                g.insert(key.clone(), Slot { stamp, value: None }, half);
                None
            }
        }
    }

    /// Notes that transaction `stamp` changes `key` in a way the cache does
    /// not see (or will give back at commit): older give-backs are refused.
    pub(crate) fn touch(&self, key: &Key, stamp: u64) {
        let _ = self.take(key, stamp);
    }

    /// Gives back what the committed transaction `stamp` holds.
    pub(crate) fn give_back(&self, values: impl IntoIterator<Item = (Key, Cached)>, stamp: u64) {
        let half = self.half;
        let mut g = self.lock();
        for (key, value) in values {
            let floor = g.floor;
            match g.find(&key, half) {
                Some(slot) if slot.stamp <= stamp => *slot = Slot { stamp, value: Some(value) },
                Some(_) => {}
                None if stamp >= floor => g.insert(key, Slot { stamp, value: Some(value) }, half),
                None => {}
            }
        }
    }

    /// Forgets every document (they were all deleted by transaction `stamp`).
    pub(crate) fn forget_documents(&self, stamp: u64) {
        let mut g = self.lock();
        g.young.retain(|key, _| matches!(key, Key::Stream(_)));
        g.old.retain(|key, _| matches!(key, Key::Stream(_)));
        g.floor = g.floor.max(stamp + 1);
    }

    /// How many keys it holds values for (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        let g = self.lock();
        g.young.values().chain(g.old.values()).filter(|s| s.value.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Cached {
        Cached::Document(Some(Document {
            view: "v".into(),
            key: "k".into(),
            doc: serde_json::json!(text),
            tags: [None, None, None],
            due: None,
        }))
    }

    fn text(value: Option<Cached>) -> Option<String> {
        match value? {
            Cached::Document(Some(d)) => d.doc.as_str().map(str::to_owned),
            _ => None,
        }
    }

    fn key() -> Key {
        Key::Document("v".into(), "k".into())
    }

    #[test]
    fn a_taken_value_is_gone_until_its_transaction_gives_it_back() {
        let cache = Cache::new(8).unwrap();
        let a = cache.stamp();
        cache.give_back([(key(), doc("one"))], a);
        let b = cache.stamp();
        assert_eq!(text(cache.take(&key(), b)), Some("one".into()));
        let c = cache.stamp();
        assert_eq!(text(cache.take(&key(), c)), None, "held by b, and c touched it");
        cache.give_back([(key(), doc("two"))], b);
        assert_eq!(text(cache.take(&key(), cache.stamp())), None, "c touched it after b: b's give-back is refused");
    }

    #[test]
    fn a_late_give_back_never_covers_a_newer_value() {
        let cache = Cache::new(8).unwrap();
        let a = cache.stamp();
        cache.touch(&key(), a); // a reads the document from the database
        let b = cache.stamp(); // a committed and released the writer; b reads and writes it
        cache.touch(&key(), b);
        cache.give_back([(key(), doc("b's"))], b);
        cache.give_back([(key(), doc("a's"))], a); // a, late
        assert_eq!(text(cache.take(&key(), cache.stamp())), Some("b's".into()));
    }

    #[test]
    fn a_rolled_back_transaction_leaves_the_key_to_the_database() {
        let cache = Cache::new(8).unwrap();
        let a = cache.stamp();
        cache.give_back([(key(), doc("one"))], a);
        let b = cache.stamp();
        assert!(cache.take(&key(), b).is_some());
        // b rolls back: gives nothing back.
        assert!(cache.take(&key(), cache.stamp()).is_none());
    }

    #[test]
    fn it_holds_at_most_its_capacity_and_refuses_late_give_backs_of_dropped_keys() {
        let cache = Cache::new(4).unwrap();
        let early = cache.stamp();
        cache.touch(&Key::Stream("s-0".into()), early);
        for i in 1..20 {
            let s = cache.stamp();
            cache.give_back([(Key::Stream(format!("s-{i}")), Cached::Aggregate { version: 1, state: Arc::new(i) })], s);
            assert!(cache.len() <= 4);
        }
        cache.give_back([(Key::Stream("s-0".into()), Cached::Aggregate { version: 1, state: Arc::new(0) })], early);
        assert!(cache.take(&Key::Stream("s-0".into()), cache.stamp()).is_none(), "dropped meanwhile: refused");
        assert!(cache.take(&Key::Stream("s-19".into()), cache.stamp()).is_some(), "the newest is kept");
    }

    #[test]
    fn forgetting_documents_keeps_aggregates_and_refuses_older_documents() {
        let cache = Cache::new(8).unwrap();
        let a = cache.stamp();
        let state = Cached::Aggregate { version: 3, state: Arc::new(7u32) };
        cache.give_back([(key(), doc("one")), (Key::Stream("s".into()), state)], a);
        let b = cache.stamp();
        cache.forget_documents(b);
        cache.give_back([(key(), doc("late"))], a);
        assert!(cache.take(&key(), cache.stamp()).is_none());
        assert!(cache.take(&Key::Stream("s".into()), cache.stamp()).is_some());
    }
}
