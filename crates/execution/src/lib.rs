//! Deterministic execution for Noesis: revm at its current default hardfork, with a
//! precompile provider that wraps Ethereum's standard set so native modules can be
//! added at reserved addresses.
//!
//! Execution is a pure function of (state, block): it reads state through the small
//! [`noesis_primitives::StateView`] trait, writes nothing, and returns the block's
//! receipts and [`noesis_primitives::StateChanges`]. Persisting them is the store's job.

mod executor;
pub mod modules;
mod overlay;
mod precompiles;

pub use executor::{
    BlockBuilder, BlockContext, CallError, CallOutcome, CallRequest, ExecutedBlock, ExecutionError,
    MAX_TX_GAS, PushOutcome, SPEC, call, estimate_gas, intrinsic_gas, tx_env,
};
pub use precompiles::{
    END_BLOCK_CALL, MODULE_ADDRESSES, MODULE_CODE, NoesisPrecompiles, SUBNETS_STATE_ACCOUNT,
};
pub use revm::context::result::InvalidTransaction;
pub use revm::context_interface::transaction::AccessList;
