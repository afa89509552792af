//! Multi-validator BFT consensus for Noesis (ADR 0013).
//!
//! commonware's simplex orders blocks and its marshal disseminates, backfills and
//! delivers finalized blocks in height order; this crate plugs the node's executor
//! into them ([`application::Executor`]): leaders build blocks from the mempool on the
//! parent's post-state, validators re-execute and compare, and finalized blocks are
//! committed to the store. Everything is written against commonware's runtime and
//! network traits, so the same code runs on the deterministic runtime with a simulated
//! network in tests and on tokio with authenticated p2p in `noesis node`.

pub mod application;
pub mod block;
pub mod engine;
pub mod follow;
pub mod gossip;
pub mod network;
pub mod status;

pub use application::{Executor, Progress};
pub use block::Block;
pub use engine::{Channels, Running, Timeouts, ValidatorConfig, channel, start_validator};
pub use follow::{Archive, Certified, FollowError, Follower};
pub use status::Status;

/// The consensus signature scheme: ed25519 votes and certificates (attributable).
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;
