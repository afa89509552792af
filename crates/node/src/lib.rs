//! The Noesis node: the chain (store, mempool, block production) and the dev sealer.
//!
//! Transactions enter through [`Chain::submit_raw`], wait in the [`mempool`], and are
//! executed into blocks by [`Chain::produce_block`], which a sealer (dev mode) or a
//! consensus engine calls. Committed blocks are announced on a broadcast channel that
//! the RPC layer turns into subscriptions and filters.

pub mod chain;
pub mod mempool;
mod metrics;
pub mod sealer;

pub use chain::{BlockWithReceipts, Chain, Head, IndexedLog, NewBlock, next_base_fee};
pub use metrics::Metrics;
pub use sealer::{SealMode, SealerHandle, spawn_dev_sealer, unix_now};

/// A node failure (never caused by user input).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] noesis_storage::StoreError),
    /// State could not be read.
    #[error(transparent)]
    State(#[from] noesis_primitives::StateError),
    /// Execution failed.
    #[error(transparent)]
    Execution(#[from] noesis_execution::ExecutionError),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}
