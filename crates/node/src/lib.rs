//! The Noesis node: the chain (store, mempool, block production) and the dev sealer.
//!
//! Transactions enter through [`Chain::submit_raw`], wait in the [`mempool`], and are
//! executed into blocks by the [`executor`]: a consensus engine builds, verifies and
//! commits blocks in separate steps ([`Chain::build_block`], [`Chain::execute_block`],
//! [`Chain::commit_executed`]); the dev sealer calls [`Chain::produce_block`], which
//! is the same build and commit in one call. Committed blocks are announced on a
//! broadcast channel that the RPC layer turns into subscriptions and filters.

pub mod chain;
pub mod executor;
pub mod mempool;
mod metrics;
pub mod sealer;

use alloy_primitives::B256;

pub use chain::{BlockWithReceipts, Chain, Head, IndexedLog, NewBlock, next_base_fee};
pub use executor::{
    BlockError, CommitOutcome, ExecutedBlock, MAX_BLOCK_TRANSACTION_BYTES, PendingState,
};
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
    /// A block to commit conflicts with the one already canonical at its height (a
    /// bug, or a safety violation of consensus).
    #[error("block {number} {offered} conflicts with the canonical block {committed}")]
    ConflictingBlock {
        /// The height.
        number: u64,
        /// The canonical block there (zero if none).
        committed: B256,
        /// The block offered.
        offered: B256,
    },
    /// A block does not extend the committed head (or the pending block before it):
    /// a gap, its ancestors must be committed first, or a fork.
    #[error("block {number} builds on {parent}, not on {expected}")]
    NotOnHead {
        /// The block's number.
        number: u64,
        /// Its parent hash.
        parent: B256,
        /// The hash it had to build on.
        expected: B256,
    },
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}
