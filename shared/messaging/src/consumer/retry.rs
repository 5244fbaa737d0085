//! How one failing record is retried, pure: the handler's refusals count
//! toward the dead-letter limit (a permanent one gives up at once), the
//! store's failures never do, and both wait a delay that doubles from
//! `retry_backoff` up to a ceiling ([`Backoff::handler`]). Each record
//! starts over at the first delay. No clock: the caller sleeps.

use std::time::Duration;

use crate::backoff::Backoff;

/// What to do after the handler refused a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Try again after `after`; the handler has had `attempts` so far.
    Retry { after: Duration, attempts: u32 },
    /// Give up: dead-letter the record after `attempts` handler attempts.
    GiveUp { attempts: u32 },
}

/// One record's attempts so far, and its backoff.
#[derive(Debug, Clone)]
pub(super) struct Retries {
    attempts: u32,
    max_attempts: u32,
    backoff: Backoff,
}

impl Retries {
    /// A record not tried yet: `max_attempts` handler attempts at most, the
    /// first retry after `first_delay`.
    pub(super) fn new(first_delay: Duration, max_attempts: u32) -> Self {
        Self { attempts: 0, max_attempts, backoff: Backoff::handler(first_delay) }
    }

    /// The store failed, not the record: wait this long, never count it.
    pub(super) fn store_failed(&mut self) -> Duration {
        self.backoff.next_delay()
    }

    /// The handler refused the record (`permanent`: no retry can mend it).
    pub(super) fn handler_failed(&mut self, permanent: bool) -> Next {
        self.attempts += 1;
        if permanent || self.attempts >= self.max_attempts {
            return Next::GiveUp { attempts: self.attempts };
        }
        Next::Retry { after: self.backoff.next_delay(), attempts: self.attempts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What failed, one attempt of a record.
    #[derive(Debug, Clone, Copy)]
    enum Failed {
        Handler,
        Permanently,
        Store,
    }

    #[test]
    fn a_failing_record_waits_longer_each_time_and_is_given_up_after_its_attempts() {
        let ms = Duration::from_millis;
        let retry = |after, attempts| Next::Retry { after, attempts };
        let give_up = |attempts| Next::GiveUp { attempts };
        let store = |after| Next::Retry { after, attempts: u32::MAX }; // a mark: not counted
        use Failed::*;
        // (reason, first delay in ms, max attempts, failures, what each failure decides)
        type Row = (&'static str, u64, u32, Vec<Failed>, Vec<Next>);
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("the delay doubles", 20, 5, vec![Handler, Handler, Handler],
                vec![retry(ms(20), 1), retry(ms(40), 2), retry(ms(80), 3)]),
            ("the last attempt gives up", 5, 3, vec![Handler, Handler, Handler],
                vec![retry(ms(5), 1), retry(ms(10), 2), give_up(3)]),
            ("a permanent failure gives up at once", 20, 5, vec![Permanently], vec![give_up(1)]),
            ("one attempt only: the first failure gives up", 20, 1, vec![Handler], vec![give_up(1)]),
            ("store failures wait on the same backoff and never count", 20, 1, vec![Store, Store, Store, Handler],
                vec![store(ms(20)), store(ms(40)), store(ms(80)), give_up(1)]),
            ("the delay stops doubling at two seconds", 600, 9, vec![Handler, Store, Handler, Handler],
                vec![retry(ms(600), 1), store(ms(1200)), retry(ms(2000), 2), retry(ms(2000), 3)]),
        ];
        for (reason, first, max_attempts, failures, expected) in rows {
            let mut retries = Retries::new(ms(first), max_attempts);
            let decided: Vec<Next> = failures
                .iter()
                .map(|failure| match failure {
                    Handler => retries.handler_failed(false),
                    Permanently => retries.handler_failed(true),
                    Store => store(retries.store_failed()),
                })
                .collect();
            assert_eq!(decided, expected, "{reason}");
        }
    }

    #[test]
    fn the_next_record_starts_over_at_the_first_delay() {
        let mut first = Retries::new(Duration::from_millis(20), 5);
        for _ in 0..3 {
            first.handler_failed(false);
        }
        // It succeeded; the loop makes the next record's retries afresh.
        let mut next = Retries::new(Duration::from_millis(20), 5);
        let after = Duration::from_millis(20);
        assert_eq!(next.handler_failed(false), Next::Retry { after, attempts: 1 });
    }
}
