//! The decider: the shape of every aggregate in Udders.

/// An aggregate written as two pure functions over a state.
///
/// `decide` holds every rule: it looks at the current state and a command and
/// answers with the events that happened, or an error when the command cannot
/// be carried out at all. Refusals that other services react to are *events*
/// (for example `CreditEvent::Rejected`), not errors. `evolve` holds no rules:
/// it folds one event into the state and must accept any event `decide` ever
/// produced, so it is total.
///
/// Everything a decision needs (the time, new ids, looked-up facts) arrives
/// inside the command, so the same inputs always give the same events.
pub trait Decider {
    /// What the aggregate remembers between commands.
    type State;
    /// What the aggregate is asked to do (imperative: `Reserve`).
    type Command;
    /// What happened (past tense: `Reserved`).
    type Event;
    /// Why a command could not be handled at all.
    type Error;

    /// The state of a stream that has no events yet.
    fn initial_state() -> Self::State;

    /// Decides which events a command produces in the given state.
    fn decide(state: &Self::State, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Folds a whole history into a state, starting from [`Decider::initial_state`].
    fn fold<'a, I>(events: I) -> Self::State
    where
        I: IntoIterator<Item = &'a Self::Event>,
        Self::Event: 'a,
    {
        Self::fold_from(Self::initial_state(), events)
    }

    /// Folds events into a given state (for example one restored from a snapshot).
    fn fold_from<'a, I>(state: Self::State, events: I) -> Self::State
    where
        I: IntoIterator<Item = &'a Self::Event>,
        Self::Event: 'a,
    {
        events.into_iter().fold(state, Self::evolve)
    }
}
