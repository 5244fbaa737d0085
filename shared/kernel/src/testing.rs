//! Given/when/then for deciders: `given(history).when(command).then(events)`.
//!
//! ```
//! use udders_kernel::{Decider, testing::given};
//!
//! struct Counter;
//! #[derive(Debug, PartialEq)]
//! enum Event { Incremented }
//! impl Decider for Counter {
//!     type State = u32;
//!     type Command = u32; // the cap
//!     type Event = Event;
//!     type Error = &'static str;
//!     fn initial_state() -> u32 { 0 }
//!     fn decide(n: &u32, cap: u32) -> Result<Vec<Event>, Self::Error> {
//!         if *n < cap { Ok(vec![Event::Incremented]) } else { Err("at cap") }
//!     }
//!     fn evolve(n: u32, _: &Event) -> u32 { n + 1 }
//! }
//!
//! given::<Counter>([Event::Incremented]).when(2).then([Event::Incremented]);
//! given::<Counter>([Event::Incremented, Event::Incremented]).when(2).then_error("at cap");
//! ```

use std::fmt::Debug;

use crate::Decider;

/// Starts a decider test from a history of events.
pub fn given<D: Decider>(history: impl IntoIterator<Item = D::Event>) -> Given<D> {
    let history: Vec<D::Event> = history.into_iter().collect();
    Given { state: D::fold(&history) }
}

/// A decider test with its history folded into a state.
pub struct Given<D: Decider> {
    state: D::State,
}

impl<D: Decider> Debug for Given<D>
where
    D::State: Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Given").field("state", &self.state).finish()
    }
}

impl<D: Decider> Given<D> {
    /// Runs one command against the folded state.
    pub fn when(self, command: D::Command) -> When<D> {
        let outcome = D::decide(&self.state, command);
        When { state: self.state, outcome }
    }

    /// The state the history folds into, for assertions on `evolve`.
    pub fn state(&self) -> &D::State {
        &self.state
    }
}

/// The outcome of one command, ready for assertions.
pub struct When<D: Decider> {
    state: D::State,
    outcome: Result<Vec<D::Event>, D::Error>,
}

impl<D: Decider> Debug for When<D>
where
    D::Event: Debug,
    D::Error: Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("When").field("outcome", &self.outcome).finish()
    }
}

impl<D: Decider> When<D>
where
    D::Event: Debug + PartialEq,
    D::Error: Debug + PartialEq,
{
    /// Asserts the command produced exactly these events, in this order, and
    /// returns the state after them for further checks.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = D::Event>) -> D::State {
        let expected: Vec<D::Event> = expected.into_iter().collect();
        match self.outcome {
            Ok(events) => {
                assert_eq!(events, expected, "the command produced other events than expected");
                D::fold_from(self.state, &events)
            }
            Err(error) => panic!("expected events {expected:?}, but the command failed: {error:?}"),
        }
    }

    /// Asserts the command failed with exactly this error.
    #[track_caller]
    pub fn then_error(self, expected: D::Error) {
        match self.outcome {
            Ok(events) => panic!("expected error {expected:?}, but the command produced {events:?}"),
            Err(error) => assert_eq!(error, expected, "the command failed with another error"),
        }
    }
}
