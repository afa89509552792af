//! Noesis's public API: Ethereum JSON-RPC (HTTP and WebSocket on one port) with
//! subscriptions and filters, and plain HTTP pages such as `/metrics`.
//!
//! Every method reads the chain through [`noesis_node::Chain`]; errors are mapped to
//! JSON-RPC in one place ([`error`]), with geth's codes and words.

mod convert;
pub mod error;
pub mod eth;
mod fees;
mod filters;
pub mod noesis;
mod overrides;
pub mod server;

pub use eth::EthRpc;
pub use server::{MAX_REQUEST_BYTES, Page, rpc_module, start};
