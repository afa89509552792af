//! Persistent storage for Noesis: blocks, receipts and world state in redb, with
//! Ethereum's Merkle-Patricia trie as the authenticated state structure.
//!
//! Latest state is kept in flat tables for fast reads (written back in batches, see
//! `flat`); the trie's nodes are stored beside them, so the state root of each block is computed
//! incrementally and any past state can be read and proven (`eth_getProof`).

mod flat;
mod store;
pub mod trie;

pub use store::{
    AccountProof, LatestState, PreparedState, StorageProof, Store, StoredBlock, TrieState,
    TxLocation,
};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Db(String),
    /// Data on disk is inconsistent, truncated or corrupted.
    #[error("store is corrupted: {0}")]
    Corrupt(String),
    /// The data dir belongs to another chain.
    #[error(
        "the data dir at {0} belongs to another chain (different chain spec); use another --datadir"
    )]
    WrongChain(String),
    /// A file system error.
    #[error("{0}")]
    Io(String),
}
