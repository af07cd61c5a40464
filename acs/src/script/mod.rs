//! GenieACS's provision scripts, run in the embedded engine ([`engine`]) against what the ACS
//! knows of a device ([`view`]), and the session's declarations resolved into CWMP requests.
//!
//! A session's scripts run together, in their presets' order. A script's `declare()` says what
//! it wants known (timestamps) and what it wants the device to hold (values, instance counts);
//! reading an attribute that is not known recently enough ends the run there (GenieACS's
//! commit), and the script runs again from its start once the session fetched it. Unlike
//! GenieACS, which re-runs every script at every step of the session:
//!
//! - every script's declarations of a round are fetched together: one GetParameterNames per
//!   table that must be listed, one GetParameterValues for every value wanted;
//! - every value declared to be set, by every script, goes in one SetParameterValues (whose
//!   values the cache takes as set, without reading them back), after all scripts ran to their
//!   end (or to an explicit `commit()`, which orders them);
//! - a script that ran to its end runs again only when something it read changed (its answers
//!   are compared, without running it); its declarations are kept and evaluated again.
//!
//! Virtual parameters (`VirtualParameters.<name>`) are scripts of their own, run when a
//! declaration wants one fresher than the cache holds it or writes it; what they return is
//! cached as the device's parameter (so queries and projections read it). A `provisions` task
//! naming a script runs its built-ins here too, as GenieACS's default provisions declare them;
//! one without scripts stays with [`crate::provisions`].
//!
//! Layout: [`engine`] (QuickJS, limits, the sandbox's functions), [`view`] (the device as the
//! cache holds it; path patterns), `decl` (declarations, what they need, what they change),
//! `host` (one run's side of the sandbox), `session` ([`Provisioning`]: rounds), [`ext`]
//! (extension programs).

mod decl;
pub mod engine;
pub mod ext;
mod host;
mod session;
pub mod view;

pub use session::{Next, Provisioning, ScriptFault, Stats};

use serde_json::Value as Json;

use engine::Limits;

/// The most rounds (fetches, sets, extension calls) a session's scripts may take.
pub const MAX_ROUNDS: u32 = 32;
/// The most declarations one run may make.
pub const MAX_DECLARATIONS: usize = 4096;

/// How scripts run: the engine's limits per run, and where `ext()` finds its programs.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Time and memory of one run.
    pub limits: Limits,
    /// The extensions (none: an `ext()` call faults its script).
    pub extensions: Option<ext::Extensions>,
    /// How declarations become requests (ours; a model of GenieACS's, to measure against).
    pub strategy: Strategy,
}

/// How a session's declarations become requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Ours (see above): fetches of every script merged per round, values set once after every
    /// script ran to its end, a finished script run again only when what it read changed.
    #[default]
    Merged,
    /// A model of GenieACS's documented algorithm, kept to measure against
    /// (docs/benchmarks.md): every script runs again from its start at every step, the values
    /// declared by each step are set at that step, objects are listed one level per request,
    /// and after the last change every script runs once more to see that nothing changes.
    Revisions,
}

/// A provision script a preset (or a `provisions` task) asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The preset (or task) that asked; faults are recorded in its channel.
    pub preset: String,
    /// Its fault channel.
    pub channel: String,
    /// The provision's name.
    pub name: String,
    /// `args`.
    pub args: Vec<Json>,
}
