//! Block execution with revm: a [`BlockBuilder`] takes transactions one at a time
//! (so a producer can stop when the block is full), and [`call`] / [`estimate_gas`]
//! serve `eth_call` and `eth_estimateGas`.

use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, Transaction, TxEnvelope};
use alloy_eips::Typed2718;
use alloy_primitives::{Address, B256, Bytes, Log, TxKind, U256};
use noesis_primitives::{StateChanges, StateView};
use revm::{
    Context, ExecuteCommitEvm, ExecuteEvm, Journal, SystemCallCommitEvm,
    context::{
        BlockEnv, CfgEnv, Evm, TxEnv,
        result::{EVMError, ExecutionResult, InvalidTransaction},
    },
    context_interface::{either::Either, transaction::AccessList},
    handler::{EthFrame, instructions::EthInstructions},
    interpreter::interpreter::EthInterpreter,
    primitives::{
        eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE, eip7825::TX_GAS_LIMIT_CAP, hardfork::SpecId,
    },
};

use crate::{
    overlay::{DbError, Overlay},
    precompiles::{END_BLOCK_CALL, NoesisPrecompiles, SUBNETS_STATE_ACCOUNT},
};

/// The hardfork Noesis executes: revm's current default.
pub const SPEC: SpecId = SpecId::OSAKA;

/// Per-transaction gas limit cap (EIP-7825).
pub const MAX_TX_GAS: u64 = TX_GAS_LIMIT_CAP;

type NoesisContext<'a> = Context<BlockEnv, TxEnv, CfgEnv, Overlay<'a>, Journal<Overlay<'a>>, ()>;
type NoesisEvm<'a> = Evm<
    NoesisContext<'a>,
    (),
    EthInstructions<EthInterpreter, NoesisContext<'a>>,
    NoesisPrecompiles,
    EthFrame<EthInterpreter>,
>;

/// The block-level inputs to execution.
#[derive(Clone, Debug)]
pub struct BlockContext {
    /// Chain id (EIP-155).
    pub chain_id: u64,
    /// Block number.
    pub number: u64,
    /// Timestamp in seconds.
    pub timestamp: u64,
    /// Receives priority fees.
    pub beneficiary: Address,
    /// EIP-1559 base fee per gas.
    pub base_fee: u64,
    /// Block gas limit.
    pub gas_limit: u64,
    /// PREVRANDAO value.
    pub prevrandao: B256,
}

/// An execution fault: the state could not be read. Never caused by a transaction.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The state store failed.
    #[error("state read failed during execution: {0}")]
    State(String),
    /// revm reported an internal error.
    #[error("execution fault: {0}")]
    Fault(String),
}

/// What happened to a transaction offered to a block.
#[derive(Debug)]
pub enum PushOutcome {
    /// Executed and included (successfully or not).
    Included,
    /// Invalid against the current state (nonce, balance, fee, ...): not included.
    Invalid(InvalidTransaction),
    /// Its gas limit does not fit in what is left of the block.
    DoesNotFit,
}

/// A block's executed transactions, receipts and state changes.
#[derive(Debug, Default)]
pub struct ExecutedBlock {
    /// Included transactions with their senders, in order.
    pub transactions: Vec<(Address, TxEnvelope)>,
    /// One receipt per transaction.
    pub receipts: Vec<ReceiptEnvelope>,
    /// Total gas used.
    pub gas_used: u64,
    /// The state changes.
    pub changes: StateChanges,
    /// Logs of the end-of-block system call (module epochs); in no receipt.
    pub system_logs: Vec<Log>,
    /// Why the end-of-block system call failed, if it did (its effects were skipped).
    pub system_error: Option<String>,
}

fn block_env(ctx: &BlockContext) -> BlockEnv {
    let mut env = BlockEnv {
        number: U256::from(ctx.number),
        beneficiary: ctx.beneficiary,
        timestamp: U256::from(ctx.timestamp),
        gas_limit: ctx.gas_limit,
        basefee: ctx.base_fee,
        difficulty: U256::ZERO,
        prevrandao: Some(ctx.prevrandao),
        ..Default::default()
    };
    env.set_blob_excess_gas_and_price(0, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE);
    env
}

fn new_evm<'a>(
    overlay: Overlay<'a>,
    block: &BlockContext,
    cfg: impl FnOnce(&mut CfgEnv),
) -> NoesisEvm<'a> {
    let mut context: NoesisContext<'a> = Context::new(overlay, SPEC);
    context.block = block_env(block);
    context.cfg.chain_id = block.chain_id;
    cfg(&mut context.cfg);
    Evm::new(
        context,
        EthInstructions::new_mainnet_with_spec(SPEC),
        NoesisPrecompiles::new(SPEC),
    )
}

/// Converts a signed transaction and its sender into revm's transaction environment.
pub fn tx_env(sender: Address, tx: &TxEnvelope) -> TxEnv {
    TxEnv {
        tx_type: tx.ty(),
        caller: sender,
        gas_limit: tx.gas_limit(),
        gas_price: tx.max_fee_per_gas(),
        kind: tx.kind(),
        value: tx.value(),
        data: tx.input().clone(),
        nonce: tx.nonce(),
        chain_id: tx.chain_id(),
        access_list: tx.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: tx.max_priority_fee_per_gas(),
        blob_hashes: tx
            .blob_versioned_hashes()
            .map(<[B256]>::to_vec)
            .unwrap_or_default(),
        max_fee_per_blob_gas: tx.max_fee_per_blob_gas().unwrap_or_default(),
        authorization_list: tx
            .authorization_list()
            .map(|list| list.iter().cloned().map(Either::Left).collect())
            .unwrap_or_default(),
    }
}

fn fault<E: std::fmt::Display>(e: EVMError<DbError, E>) -> ExecutionError {
    match e {
        EVMError::Database(e) => ExecutionError::State(e.to_string()),
        other => ExecutionError::Fault(other.to_string()),
    }
}

/// Builds a block by executing transactions one at a time on top of a state.
pub struct BlockBuilder<'a> {
    evm: NoesisEvm<'a>,
    gas_limit: u64,
    block: ExecutedBlock,
}

impl<'a> BlockBuilder<'a> {
    /// Starts a block on top of `state`.
    pub fn new(state: &'a dyn StateView, ctx: &BlockContext) -> Self {
        Self {
            evm: new_evm(Overlay::new(state), ctx, |_| {}),
            gas_limit: ctx.gas_limit,
            block: ExecutedBlock::default(),
        }
    }

    /// Gas left in the block.
    pub fn gas_left(&self) -> u64 {
        self.gas_limit.saturating_sub(self.block.gas_used)
    }

    /// Number of transactions included so far.
    pub fn len(&self) -> usize {
        self.block.transactions.len()
    }

    /// Whether no transaction was included yet.
    pub fn is_empty(&self) -> bool {
        self.block.transactions.is_empty()
    }

    /// Executes `tx` from `sender` and includes it if it is valid and fits.
    pub fn push(&mut self, sender: Address, tx: TxEnvelope) -> Result<PushOutcome, ExecutionError> {
        if tx.gas_limit() > self.gas_left() {
            return Ok(PushOutcome::DoesNotFit);
        }
        let result = match self.evm.transact_commit(tx_env(sender, &tx)) {
            Ok(result) => result,
            Err(EVMError::Transaction(invalid)) => return Ok(PushOutcome::Invalid(invalid)),
            Err(other) => return Err(fault(other)),
        };
        let gas_used = result.tx_gas_used();
        self.block.gas_used += gas_used;
        let success = result.is_success();
        let logs = result.into_logs();
        let receipt = Receipt {
            status: Eip658Value::Eip658(success),
            cumulative_gas_used: self.block.gas_used,
            logs,
        };
        self.block.receipts.push(ReceiptEnvelope::from_typed(
            tx.tx_type(),
            receipt.with_bloom(),
        ));
        self.block.transactions.push((sender, tx));
        Ok(PushOutcome::Included)
    }

    /// Finishes the block: runs the native modules' end-of-block work (a system call,
    /// ADR 0006) and collects the state changes.
    pub fn finish(mut self) -> Result<ExecutedBlock, ExecutionError> {
        let result = self
            .evm
            .system_call_commit(
                SUBNETS_STATE_ACCOUNT,
                Bytes::copy_from_slice(&END_BLOCK_CALL),
            )
            .map_err(fault)?;
        let mut block = self.block;
        if result.is_success() {
            block.system_logs = result.into_logs();
        } else {
            // A module's end-of-block work that reverts is skipped for this block (its
            // writes are undone); every node skips it alike, so the chain stays live
            // and deterministic. The node reports it.
            block.system_error = Some(format!("{result:?}"));
        }
        block.changes = self.evm.ctx.journaled_state.database.into_changes();
        Ok(block)
    }
}

/// A call to simulate (`eth_call`, `eth_estimateGas`).
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    /// Sender (zero address when absent).
    pub from: Option<Address>,
    /// Recipient; `None` creates a contract.
    pub to: Option<Address>,
    /// Gas limit; defaults to the block gas limit (capped per EIP-7825).
    pub gas: Option<u64>,
    /// Legacy gas price.
    pub gas_price: Option<u128>,
    /// EIP-1559 max fee.
    pub max_fee_per_gas: Option<u128>,
    /// EIP-1559 priority fee.
    pub max_priority_fee_per_gas: Option<u128>,
    /// Value in wei.
    pub value: Option<U256>,
    /// Call data.
    pub input: Bytes,
    /// Nonce (not checked when absent).
    pub nonce: Option<u64>,
    /// EIP-2930 access list.
    pub access_list: Option<AccessList>,
}

/// The result of a simulated call.
#[derive(Clone, Debug)]
pub enum CallOutcome {
    /// The call returned.
    Success {
        /// Return data.
        output: Bytes,
        /// Gas used.
        gas_used: u64,
        /// Logs it would emit.
        logs: Vec<Log>,
    },
    /// The call reverted with this data.
    Revert {
        /// Revert data (an `Error(string)` or a custom error).
        output: Bytes,
        /// Gas used.
        gas_used: u64,
    },
    /// The call halted (out of gas, invalid opcode, ...).
    Halt {
        /// Why.
        reason: String,
        /// Gas used.
        gas_used: u64,
    },
}

/// A call that could not be simulated at all.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The transaction is invalid against the state (e.g. insufficient funds).
    #[error("{0}")]
    Invalid(InvalidTransaction),
    /// An execution fault.
    #[error(transparent)]
    Fault(#[from] ExecutionError),
}

fn call_tx_env(req: &CallRequest, gas: u64, chain_id: u64) -> TxEnv {
    let gas_price = req.gas_price.or(req.max_fee_per_gas).unwrap_or(0);
    TxEnv {
        tx_type: if req.max_fee_per_gas.is_some() || req.max_priority_fee_per_gas.is_some() {
            2
        } else if req.access_list.is_some() {
            1
        } else {
            0
        },
        caller: req.from.unwrap_or_default(),
        gas_limit: gas,
        gas_price,
        kind: req.to.map_or(TxKind::Create, TxKind::Call),
        value: req.value.unwrap_or_default(),
        data: req.input.clone(),
        nonce: req.nonce.unwrap_or_default(),
        chain_id: Some(chain_id),
        access_list: req.access_list.clone().unwrap_or_default(),
        gas_priority_fee: req.max_priority_fee_per_gas.map(|p| p.min(gas_price)),
        ..Default::default()
    }
}

/// Simulates a call on top of `state` without changing it.
pub fn call(
    state: &dyn StateView,
    ctx: &BlockContext,
    req: &CallRequest,
) -> Result<CallOutcome, CallError> {
    let gas = req.gas.unwrap_or(ctx.gas_limit.min(MAX_TX_GAS));
    call_with_gas(state, ctx, req, gas)
}

fn call_with_gas(
    state: &dyn StateView,
    ctx: &BlockContext,
    req: &CallRequest,
    gas: u64,
) -> Result<CallOutcome, CallError> {
    let no_fee = req.gas_price.or(req.max_fee_per_gas).unwrap_or(0) == 0;
    let mut block = ctx.clone();
    // Like geth: a call without a fee pays none and is exempt from the base fee, and a
    // call may ask for more gas than a block holds.
    if no_fee {
        block.base_fee = 0;
    }
    block.gas_limit = block.gas_limit.max(gas);
    let mut evm = new_evm(Overlay::new(state), &block, |cfg| {
        cfg.disable_nonce_check = req.nonce.is_none();
        cfg.tx_gas_limit_cap = Some(u64::MAX);
    });
    let result = match evm.transact(call_tx_env(req, gas, ctx.chain_id)) {
        Ok(out) => out.result,
        Err(EVMError::Transaction(invalid)) => return Err(CallError::Invalid(invalid)),
        Err(other) => return Err(CallError::Fault(fault(other))),
    };
    let gas_used = result.tx_gas_used();
    Ok(match result {
        ExecutionResult::Success { output, logs, .. } => CallOutcome::Success {
            output: output.into_data(),
            gas_used,
            logs,
        },
        ExecutionResult::Revert { output, .. } => CallOutcome::Revert { output, gas_used },
        ExecutionResult::Halt { reason, .. } => CallOutcome::Halt {
            reason: format!("{reason:?}"),
            gas_used,
        },
    })
}

/// Finds the smallest gas limit with which the call succeeds (binary search, as geth).
/// Returns the failing outcome when it fails even with the maximum gas.
pub fn estimate_gas(
    state: &dyn StateView,
    ctx: &BlockContext,
    req: &CallRequest,
) -> Result<Result<u64, CallOutcome>, CallError> {
    let mut hi = req.gas.unwrap_or(ctx.gas_limit.min(MAX_TX_GAS));
    let first = call_with_gas(state, ctx, req, hi)?;
    let used = match &first {
        CallOutcome::Success { gas_used, .. } => *gas_used,
        _ => return Ok(Err(first)),
    };
    // Most calls succeed with exactly what they used (always so for plain transfers).
    if used < hi
        && matches!(
            call_with_gas(state, ctx, req, used)?,
            CallOutcome::Success { .. }
        )
    {
        return Ok(Ok(used));
    }
    let mut lo = used;
    // Then an optimistic guess covering the 1/64 rule and call stipends.
    let guess = (used + 2300) * 64 / 63;
    if guess < hi
        && matches!(
            call_with_gas(state, ctx, req, guess)?,
            CallOutcome::Success { .. }
        )
    {
        hi = guess;
    }
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        match call_with_gas(state, ctx, req, mid) {
            Ok(CallOutcome::Success { .. }) => hi = mid,
            Ok(_) | Err(CallError::Invalid(_)) => lo = mid,
            Err(e) => return Err(e),
        }
    }
    Ok(Ok(hi))
}

/// The gas a transaction must pay before executing (intrinsic gas and the EIP-7623
/// calldata floor, whichever is higher).
pub fn intrinsic_gas(sender: Address, tx: &TxEnvelope) -> u64 {
    let gas = revm::context_interface::cfg::gas::calculate_initial_tx_gas_for_tx(
        tx_env(sender, tx),
        SPEC,
        None,
    );
    (gas.initial_regular_gas + gas.initial_state_gas).max(gas.floor_gas)
}
