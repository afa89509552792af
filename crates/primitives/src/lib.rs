//! Core types shared by every layer of Noesis: the chain spec and genesis, the dev
//! accounts, the account record kept in state, the read-only state trait that
//! execution runs against, and the wire form of a proposed block.
//!
//! Transactions, headers, receipts and logs are Ethereum's own, taken from alloy
//! (`alloy-consensus`) so that every wallet and client sees exactly what it expects.

mod block;
mod chain_spec;
mod dev;
mod state;
mod transaction;

pub use block::ProposedBlock;
pub use chain_spec::{
    ChainSpec, ChainSpecError, DEFAULT_GAS_LIMIT, DEV_CHAIN_ID, GenesisAccount, INITIAL_BASE_FEE,
};
pub use dev::{DEV_MNEMONIC, DevAccount, dev_accounts};
pub use state::{AccountChange, AccountState, StateChanges, StateError, StateView};
pub use transaction::{DecodeError, MAX_TX_SIZE, decode_transaction};

/// Re-exported Ethereum types used across the workspace, so every crate agrees on one version.
pub use alloy_consensus::{
    Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, Signed, Transaction, TxEnvelope, TxType,
};
pub use alloy_primitives::{Address, B256, Bloom, Bytes, Log, U256, keccak256};
pub use state::EMPTY_CODE_HASH;
