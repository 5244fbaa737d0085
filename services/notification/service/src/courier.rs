//! The courier port: whatever carries a notice to the customer (e-mail,
//! SMS, push). The service supplies one; Udders ships a simulated courier.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;

/// One notice, ready to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `{order_id}.{kind}`: the courier's idempotency key. A message sent
    /// again with an id the courier has taken must not reach the customer twice.
    pub notification_id: String,
    /// Who.
    pub customer_id: String,
    /// The subject line.
    pub subject: String,
    /// The particulars.
    pub body: String,
}

/// Carries notices to customers.
pub trait Courier: Send + Sync + 'static {
    /// Sends one message; `Err` says why it did not go (it will be tried again).
    fn send(&self, message: &Message) -> impl Future<Output = Result<(), String>> + Send;
}

impl<C: Courier> Courier for std::sync::Arc<C> {
    fn send(&self, message: &Message) -> impl Future<Output = Result<(), String>> + Send {
        C::send(self, message)
    }
}

/// A courier that keeps what it was given in memory. It refuses the first
/// attempt of one message in ten (by a hash of its id, so a run repeats),
/// to show retries, and every attempt for a customer whose id contains
/// `unreachable`, to show a notice given up on. It is idempotent by
/// notification id: a message it has taken is taken again without a second
/// delivery, for as long as it remembers the id. Like a real courier's
/// idempotency keys, its memory is a window: the last
/// [`SimulatedCourier::WINDOW`] ids it was handed (a notice is sent again
/// within seconds, not after thousands of others), so `udders up` does not
/// grow with every order it ever carried.
#[derive(Debug)]
pub struct SimulatedCourier {
    log: Mutex<CourierLog>,
    window: usize,
}

#[derive(Debug, Default)]
struct CourierLog {
    attempts: HashMap<String, u32>,
    delivered: HashMap<String, Message>,
    /// The ids it remembers, oldest first.
    seen: VecDeque<String>,
}

impl Default for SimulatedCourier {
    fn default() -> Self {
        Self::with_window(Self::WINDOW)
    }
}

impl SimulatedCourier {
    /// How many notification ids the courier remembers.
    pub const WINDOW: usize = 10_000;

    /// A courier that has sent nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A courier that remembers the last `window` ids it was handed.
    pub fn with_window(window: usize) -> Self {
        Self { log: Mutex::new(CourierLog::default()), window: window.max(1) }
    }

    /// How many messages reached customers (each at most once).
    pub fn delivered(&self) -> usize {
        self.log.lock().map_or(0, |log| log.delivered.len())
    }

    /// The message delivered under an id, if any.
    pub fn delivered_message(&self, notification_id: &str) -> Option<Message> {
        self.log.lock().ok()?.delivered.get(notification_id).cloned()
    }

    /// How many times a notification id was handed over (delivered or not).
    pub fn attempts(&self, notification_id: &str) -> u32 {
        self.log.lock().map_or(0, |log| log.attempts.get(notification_id).copied().unwrap_or(0))
    }
}

/// FNV-1a: a hash that is the same in every run.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

impl Courier for SimulatedCourier {
    async fn send(&self, message: &Message) -> Result<(), String> {
        let mut log = self.log.lock().map_err(|_| "the courier's log is poisoned".to_owned())?;
        let attempt = match log.attempts.get_mut(&message.notification_id) {
            Some(n) => {
                *n += 1;
                *n
            }
            None => {
                log.attempts.insert(message.notification_id.clone(), 1);
                log.seen.push_back(message.notification_id.clone());
                while log.seen.len() > self.window {
                    if let Some(oldest) = log.seen.pop_front() {
                        log.attempts.remove(&oldest);
                        log.delivered.remove(&oldest);
                    }
                }
                1
            }
        };
        if log.delivered.contains_key(&message.notification_id) {
            return Ok(());
        }
        if message.customer_id.contains("unreachable") {
            return Err(format!("no address on file for {}", message.customer_id));
        }
        if attempt == 1 && stable_hash(&message.notification_id).is_multiple_of(10) {
            return Err("the mail relay is busy (simulated)".to_owned());
        }
        log.delivered.insert(message.notification_id.clone(), message.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, customer: &str) -> Message {
        Message { notification_id: id.into(), customer_id: customer.into(), subject: "s".into(), body: String::new() }
    }

    #[tokio::test]
    async fn a_message_sent_twice_is_delivered_once() {
        let courier = SimulatedCourier::new();
        let id =
            (0..).map(|i| format!("o-{i}.received")).find(|id| !stable_hash(id).is_multiple_of(10)).expect("an id");
        courier.send(&message(&id, "cust-1")).await.expect("delivered");
        courier.send(&message(&id, "cust-1")).await.expect("taken again");
        assert_eq!((courier.delivered(), courier.attempts(&id)), (1, 2));
    }

    #[tokio::test]
    async fn one_message_in_ten_needs_a_second_attempt() {
        let courier = SimulatedCourier::new();
        let ids: Vec<String> = (0..1000).map(|i| format!("o-{i}.shipped")).collect();
        let mut refused = 0;
        for id in &ids {
            if courier.send(&message(id, "cust-1")).await.is_err() {
                refused += 1;
                courier.send(&message(id, "cust-1")).await.expect("the second attempt goes");
            }
        }
        assert!((50..=150).contains(&refused), "{refused} of 1000 refused at first");
        assert_eq!(courier.delivered(), 1000);
    }

    #[tokio::test]
    async fn it_remembers_the_last_ids_of_its_window_and_no_more() {
        let courier = SimulatedCourier::with_window(3);
        let ids: Vec<String> =
            (0..).map(|i| format!("o-{i}.received")).filter(|id| !stable_hash(id).is_multiple_of(10)).take(4).collect();
        for id in &ids {
            courier.send(&message(id, "cust-1")).await.expect("delivered");
        }
        assert_eq!(courier.delivered(), 3, "the oldest of four fell out of a window of three");
        assert_eq!((courier.attempts(&ids[0]), courier.delivered_message(&ids[0])), (0, None));
        courier.send(&message(&ids[3], "cust-1")).await.expect("taken again");
        assert_eq!((courier.delivered(), courier.attempts(&ids[3])), (3, 2), "a remembered id is not delivered twice");
    }

    #[tokio::test]
    async fn an_unreachable_customer_is_never_reached() {
        let courier = SimulatedCourier::new();
        for _ in 0..3 {
            assert!(courier.send(&message("o-1.received", "cust-unreachable")).await.is_err());
        }
        assert_eq!(courier.delivered(), 0);
    }
}
