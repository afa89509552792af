//! Noesis's public API: Ethereum JSON-RPC (HTTP and WebSocket on one port) with
//! subscriptions and filters, and plain HTTP pages such as `/metrics`.
//!
//! A validator node adds its consensus engine's view ([`ConsensusInfo`]):
//! `noesis_consensus` and `eth_syncing` read it.
//!
//! Every method reads the chain through [`noesis_node::Chain`]; errors are mapped to
//! JSON-RPC in one place ([`error`]), with geth's codes and words.

pub mod consensus;
mod convert;
pub mod error;
pub mod eth;
mod fees;
mod filters;
pub mod noesis;
mod overrides;
pub mod server;

pub use consensus::{ConsensusInfo, FinalizedBlock, FinalizedBlocks, FinalizedFuture};
pub use eth::EthRpc;
pub use server::{MAX_REQUEST_BYTES, Page, rpc_module, start};
