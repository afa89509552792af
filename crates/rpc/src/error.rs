//! The one place where internal errors become JSON-RPC errors, with geth's codes and
//! words so that clients recognise them.

use alloy_primitives::Bytes;
use alloy_sol_types::{Revert, SolError};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use noesis_execution::{CallError, InvalidTransaction};
use noesis_node::{NodeError, mempool::PoolError};

/// The method does not exist, or is not served by this node.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i32 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i32 = -32603;
/// geth's generic server error (txpool rejections, invalid transactions).
pub const SERVER_ERROR: i32 = -32000;
/// Execution reverted (geth, with the revert data in `data`).
pub const EXECUTION_REVERTED: i32 = 3;
/// Resource not found.
pub const RESOURCE_NOT_FOUND: i32 = -32001;
/// A request that exceeds a limit (block range, results).
pub const LIMIT_EXCEEDED: i32 = -32005;

/// An RPC failure.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Bad parameters from the caller.
    #[error("{0}")]
    InvalidParams(String),
    /// The pool refused a transaction.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// Execution reverted (eth_call, eth_estimateGas).
    #[error("execution reverted{}", reason_suffix(.0))]
    Reverted(Bytes),
    /// Execution halted (out of gas, invalid opcode...).
    #[error("{0}")]
    Halted(String),
    /// The transaction is invalid against state (eth_call, eth_estimateGas).
    #[error("{}", invalid_tx_message(.0))]
    InvalidTransaction(InvalidTransaction),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A query that exceeds a limit.
    #[error("{0}")]
    LimitExceeded(String),
    /// The method needs a component this node does not run.
    #[error("{0}")]
    Unavailable(&'static str),
    /// A node fault.
    #[error("internal error: {0}")]
    Internal(String),
}

fn reason_suffix(data: &Bytes) -> String {
    match Revert::abi_decode(data) {
        Ok(revert) => format!(": {}", revert.reason),
        Err(_) => String::new(),
    }
}

/// geth's words for invalid transactions.
fn invalid_tx_message(invalid: &InvalidTransaction) -> String {
    match invalid {
        InvalidTransaction::LackOfFundForMaxFee { .. } => {
            "insufficient funds for gas * price + value".into()
        }
        InvalidTransaction::NonceTooLow { .. } => "nonce too low".into(),
        InvalidTransaction::NonceTooHigh { .. } => "nonce too high".into(),
        InvalidTransaction::CallGasCostMoreThanGasLimit { .. } => "intrinsic gas too low".into(),
        InvalidTransaction::GasFloorMoreThanGasLimit { .. } => "intrinsic gas too low".into(),
        InvalidTransaction::CallerGasLimitMoreThanBlock => "exceeds block gas limit".into(),
        InvalidTransaction::GasPriceLessThanBasefee => {
            "max fee per gas less than block base fee".into()
        }
        InvalidTransaction::PriorityFeeGreaterThanMaxFee => {
            "max priority fee per gas higher than max fee per gas".into()
        }
        InvalidTransaction::InvalidChainId => "invalid chain id".into(),
        other => other.to_string(),
    }
}

impl From<NodeError> for RpcError {
    fn from(e: NodeError) -> Self {
        RpcError::Internal(e.to_string())
    }
}

impl From<noesis_storage::StoreError> for RpcError {
    fn from(e: noesis_storage::StoreError) -> Self {
        RpcError::Internal(e.to_string())
    }
}

impl From<noesis_primitives::StateError> for RpcError {
    fn from(e: noesis_primitives::StateError) -> Self {
        RpcError::Internal(e.to_string())
    }
}

impl From<CallError> for RpcError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Invalid(invalid) => RpcError::InvalidTransaction(invalid),
            CallError::Fault(fault) => RpcError::Internal(fault.to_string()),
        }
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(e: RpcError) -> Self {
        let message = e.to_string();
        match e {
            RpcError::InvalidParams(_) => ErrorObject::owned(INVALID_PARAMS, message, None::<()>),
            RpcError::Reverted(data) => ErrorObject::owned(EXECUTION_REVERTED, message, Some(data)),
            RpcError::NotFound(_) => ErrorObject::owned(RESOURCE_NOT_FOUND, message, None::<()>),
            RpcError::LimitExceeded(_) => ErrorObject::owned(LIMIT_EXCEEDED, message, None::<()>),
            RpcError::Unavailable(_) => ErrorObject::owned(METHOD_NOT_FOUND, message, None::<()>),
            RpcError::Internal(_) => ErrorObject::owned(INTERNAL_ERROR, message, None::<()>),
            RpcError::Pool(_) | RpcError::Halted(_) | RpcError::InvalidTransaction(_) => {
                ErrorObject::owned(SERVER_ERROR, message, None::<()>)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_reason_is_decoded_into_the_message() {
        let data: Bytes = Revert::from("not enough").abi_encode().into();
        let obj: ErrorObjectOwned = RpcError::Reverted(data).into();
        assert_eq!(obj.code(), 3);
        assert_eq!(obj.message(), "execution reverted: not enough");
        assert!(obj.data().is_some());
    }

    #[test]
    fn pool_errors_use_geth_words() {
        let obj: ErrorObjectOwned = RpcError::Pool(PoolError::NonceTooLow).into();
        assert_eq!((obj.code(), obj.message()), (-32000, "nonce too low"));
    }
}
