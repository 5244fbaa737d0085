//! One retry policy for the messaging loops: a delay that doubles from a
//! first value up to a ceiling, and starts over after a success.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A doubling delay with a ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `first`, doubles each time, never above `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self { first, next: first, max: max.max(first) }
    }

    /// While a database or broker is away: 50 ms doubling to 2 s.
    pub fn outage() -> Self {
        Self::new(Duration::from_millis(50), Duration::from_secs(2))
    }

    /// While a record fails (its handler or the store under it): `first`
    /// doubling to 2 s.
    pub fn handler(first: Duration) -> Self {
        Self::new(first, Duration::from_secs(2))
    }

    /// The delay to wait now; the next one is twice as long (up to the ceiling).
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }

    /// The delay [`Backoff::next_delay`] (or [`Backoff::wait`]) gives next.
    pub fn upcoming(&self) -> Duration {
        self.next
    }

    /// Sleeps the next delay; false when `cancel` fired first.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        tokio::select! {
            () = cancel.cancelled() => false,
            () = tokio::time::sleep(self.next_delay()) => true,
        }
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_up_to_its_ceiling_and_starts_over_after_a_reset() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(20), ms(100));
        let delays: Vec<Duration> = (0..5).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays, [ms(20), ms(40), ms(80), ms(100), ms(100)]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), ms(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_sleeps_the_next_delay_unless_cancelled_first() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(20), ms(100));
        let cancel = CancellationToken::new();
        let started = tokio::time::Instant::now();
        assert!(backoff.wait(&cancel).await);
        assert_eq!(started.elapsed(), ms(20));
        assert_eq!(backoff.upcoming(), ms(40));
        cancel.cancel();
        assert!(!backoff.wait(&cancel).await);
        assert_eq!(started.elapsed(), ms(20), "a cancelled wait does not sleep");
    }

    #[test]
    fn a_ceiling_below_the_first_delay_is_the_first_delay() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_millis(1));
        assert_eq!((backoff.next_delay(), backoff.next_delay()), (Duration::from_secs(1), Duration::from_secs(1)));
    }
}
