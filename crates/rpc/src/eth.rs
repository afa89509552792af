//! The `eth_*`, `net_*` and `web3_*` namespaces.

use std::sync::Arc;

use alloy_consensus::{SignableTransaction, TxEnvelope, TypedTransaction};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, TxKind, U64, U256, keccak256};
use alloy_rpc_types_eth::{
    Block, EIP1186AccountProofResponse, EIP1186StorageProof, FeeHistory, Filter, Log, SyncInfo,
    SyncStatus, Transaction, TransactionReceipt, TransactionRequest, state::StateOverride,
};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use jsonrpsee::{
    PendingSubscriptionSink, SubscriptionMessage,
    core::{RpcResult, SubscriptionResult},
    proc_macros::rpc,
    types::ErrorObject,
};
use noesis_execution::{CallOutcome, CallRequest, MAX_TX_GAS, call, estimate_gas};
use noesis_node::{BlockWithReceipts, Chain, unix_now};
use noesis_primitives::StateView;
use tokio::sync::broadcast::error::RecvError;

use crate::{
    consensus::ConsensusInfo,
    convert::{rpc_block, rpc_log, rpc_receipt, rpc_transaction},
    error::RpcError,
    filters::{FilterChanges, Filters, logs_in_range},
    overrides::OverriddenState,
};

/// Default priority fee suggested to wallets (1 gwei), as geth's dev mode.
pub const SUGGESTED_TIP: u128 = 1_000_000_000;

/// `eth` namespace.
#[rpc(server, namespace = "eth")]
pub trait EthApi {
    /// Chain id.
    #[method(name = "chainId")]
    fn chain_id(&self) -> RpcResult<U64>;
    /// Head block number.
    #[method(name = "blockNumber")]
    fn block_number(&self) -> RpcResult<U64>;
    /// Dev accounts this node signs for.
    #[method(name = "accounts")]
    fn accounts(&self) -> RpcResult<Vec<Address>>;
    /// Balance at a block.
    #[method(name = "getBalance")]
    fn get_balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256>;
    /// Nonce at a block (`pending` counts pooled transactions).
    #[method(name = "getTransactionCount")]
    fn get_transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64>;
    /// Code at a block.
    #[method(name = "getCode")]
    fn get_code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes>;
    /// Storage slot at a block.
    #[method(name = "getStorageAt")]
    fn get_storage_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> RpcResult<B256>;
    /// Simulates a call.
    #[method(name = "call")]
    fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<Bytes>;
    /// Estimates gas for a transaction.
    #[method(name = "estimateGas")]
    fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<U64>;
    /// Submits a signed transaction.
    #[method(name = "sendRawTransaction")]
    fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256>;
    /// Signs with a dev account and submits.
    #[method(name = "sendTransaction")]
    fn send_transaction(&self, request: TransactionRequest) -> RpcResult<B256>;
    /// A transaction by hash (mined or pending).
    #[method(name = "getTransactionByHash")]
    fn get_transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>>;
    /// A receipt by transaction hash.
    #[method(name = "getTransactionReceipt")]
    fn get_transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>>;
    /// A block by number or tag.
    #[method(name = "getBlockByNumber")]
    fn get_block_by_number(&self, number: BlockNumberOrTag, full: bool)
    -> RpcResult<Option<Block>>;
    /// A block by hash.
    #[method(name = "getBlockByHash")]
    fn get_block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>>;
    /// Transaction count of a block by number.
    #[method(name = "getBlockTransactionCountByNumber")]
    fn get_block_transaction_count_by_number(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<U64>>;
    /// Transaction count of a block by hash.
    #[method(name = "getBlockTransactionCountByHash")]
    fn get_block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    /// A transaction by block number and index.
    #[method(name = "getTransactionByBlockNumberAndIndex")]
    fn get_transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>>;
    /// A transaction by block hash and index.
    #[method(name = "getTransactionByBlockHashAndIndex")]
    fn get_transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: U64,
    ) -> RpcResult<Option<Transaction>>;
    /// All receipts of a block.
    #[method(name = "getBlockReceipts")]
    fn get_block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>>;
    /// Logs matching a filter.
    #[method(name = "getLogs")]
    fn get_logs(&self, filter: Filter) -> RpcResult<Vec<Log>>;
    /// Suggested legacy gas price.
    #[method(name = "gasPrice")]
    fn gas_price(&self) -> RpcResult<U256>;
    /// Suggested priority fee.
    #[method(name = "maxPriorityFeePerGas")]
    fn max_priority_fee_per_gas(&self) -> RpcResult<U256>;
    /// Blob base fee (no blobs on this chain: the minimum).
    #[method(name = "blobBaseFee")]
    fn blob_base_fee(&self) -> RpcResult<U256>;
    /// Fee history.
    #[method(name = "feeHistory")]
    fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory>;
    /// Sync status: false, or how far a validator is in catching up with the network
    /// (a dev node is never syncing).
    #[method(name = "syncing")]
    fn syncing(&self) -> RpcResult<SyncStatus>;
    /// Account and storage proofs.
    #[method(name = "getProof")]
    fn get_proof(
        &self,
        address: Address,
        slots: Vec<B256>,
        block: Option<BlockId>,
    ) -> RpcResult<EIP1186AccountProofResponse>;
    /// Installs a log filter.
    #[method(name = "newFilter")]
    fn new_filter(&self, filter: Filter) -> RpcResult<U256>;
    /// Installs a new-block filter.
    #[method(name = "newBlockFilter")]
    fn new_block_filter(&self) -> RpcResult<U256>;
    /// Installs a pending-transaction filter.
    #[method(name = "newPendingTransactionFilter")]
    fn new_pending_transaction_filter(&self) -> RpcResult<U256>;
    /// What a filter saw since the last poll.
    #[method(name = "getFilterChanges")]
    fn get_filter_changes(&self, id: U256) -> RpcResult<FilterChanges>;
    /// All logs of a log filter.
    #[method(name = "getFilterLogs")]
    fn get_filter_logs(&self, id: U256) -> RpcResult<Vec<Log>>;
    /// Removes a filter.
    #[method(name = "uninstallFilter")]
    fn uninstall_filter(&self, id: U256) -> RpcResult<bool>;
    /// Subscriptions: `newHeads`, `logs`, `newPendingTransactions`.
    #[subscription(name = "subscribe" => "subscription", unsubscribe = "unsubscribe", item = serde_json::Value)]
    async fn subscribe(
        &self,
        kind: String,
        params: Option<serde_json::Value>,
    ) -> SubscriptionResult;
}

/// `net` namespace.
#[rpc(server, namespace = "net")]
pub trait NetApi {
    /// Network id (the chain id, as a decimal string).
    #[method(name = "version")]
    fn version(&self) -> RpcResult<String>;
    /// Whether the node listens for peers.
    #[method(name = "listening")]
    fn listening(&self) -> RpcResult<bool>;
    /// Connected peers.
    #[method(name = "peerCount")]
    fn peer_count(&self) -> RpcResult<U64>;
}

/// `web3` namespace.
#[rpc(server, namespace = "web3")]
pub trait Web3Api {
    /// Client name and version.
    #[method(name = "clientVersion")]
    fn client_version(&self) -> RpcResult<String>;
    /// keccak256 of the input.
    #[method(name = "sha3")]
    fn sha3(&self, data: Bytes) -> RpcResult<B256>;
}

/// Implementation of the Ethereum namespaces over a [`Chain`].
#[derive(Clone)]
pub struct EthRpc {
    chain: Arc<Chain>,
    dev_signers: Vec<PrivateKeySigner>,
    filters: Arc<Filters>,
    on_submit: Arc<dyn Fn() + Send + Sync>,
    consensus: Option<Arc<dyn ConsensusInfo>>,
}

impl EthRpc {
    /// Serves `chain`; `dev_signers` sign `eth_sendTransaction`; `on_submit` runs after
    /// each accepted transaction (wakes the dev sealer).
    pub fn new(
        chain: Arc<Chain>,
        dev_signers: Vec<PrivateKeySigner>,
        on_submit: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        let filters = Arc::new(Filters::new(chain.clone()));
        Self {
            chain,
            dev_signers,
            filters,
            on_submit,
            consensus: None,
        }
    }

    /// Serves the view of a running consensus engine (validator mode): without one,
    /// `noesis_consensus` answers that consensus is not running.
    pub fn with_consensus(mut self, consensus: Arc<dyn ConsensusInfo>) -> Self {
        self.consensus = Some(consensus);
        self
    }

    /// The consensus engine's view, if this node runs one.
    pub(crate) fn consensus_info(&self) -> Result<&dyn ConsensusInfo, RpcError> {
        self.consensus.as_deref().ok_or(RpcError::Unavailable(
            "consensus is not running: this node is in dev mode",
        ))
    }

    fn head_number(&self) -> u64 {
        self.chain.head().header.number
    }

    fn number_of(&self, tag: BlockNumberOrTag) -> u64 {
        match tag {
            BlockNumberOrTag::Earliest => 0,
            BlockNumberOrTag::Number(n) => n,
            // Dev blocks are final as soon as they are sealed, and a validator commits
            // only finalized blocks: `latest`, `safe` and `finalized` are the head.
            _ => self.head_number(),
        }
    }

    /// The block number a state query refers to.
    fn state_number(&self, block: Option<BlockId>) -> Result<u64, RpcError> {
        match block.unwrap_or_default() {
            BlockId::Number(tag) => {
                let n = self.number_of(tag);
                if n > self.head_number() {
                    return Err(RpcError::NotFound("header not found".into()));
                }
                Ok(n)
            }
            BlockId::Hash(hash) => self
                .chain
                .store()
                .number_by_hash(&hash.block_hash)?
                .ok_or_else(|| RpcError::NotFound("header not found".into())),
        }
    }

    pub(crate) fn state(
        &self,
        block: Option<BlockId>,
    ) -> Result<std::sync::Arc<dyn StateView + Send + Sync>, RpcError> {
        Ok(self.numbered_state(block)?.1)
    }

    /// The state at `block` with that block's number.
    pub(crate) fn numbered_state(
        &self,
        block: Option<BlockId>,
    ) -> Result<(u64, std::sync::Arc<dyn StateView + Send + Sync>), RpcError> {
        let number = self.state_number(block)?;
        let state = self
            .chain
            .state_at(number)?
            .ok_or_else(|| RpcError::NotFound("header not found".into()))?;
        Ok((number, state))
    }

    /// A block, if it is at or below the head. A block is written to the store just
    /// before the head moves to it; until then it (and its receipts) stay invisible,
    /// so a client that sees a receipt always finds its block at `latest`.
    fn block(&self, number: u64) -> Result<Option<Arc<BlockWithReceipts>>, RpcError> {
        if number > self.head_number() {
            return Ok(None);
        }
        Ok(self.chain.block_with_receipts(number)?)
    }

    fn block_by_hash(&self, hash: &B256) -> Result<Option<Arc<BlockWithReceipts>>, RpcError> {
        match self.chain.store().number_by_hash(hash)? {
            Some(n) => self.block(n),
            None => Ok(None),
        }
    }

    fn simulate(
        &self,
        request: &TransactionRequest,
        block: Option<BlockId>,
    ) -> Result<
        (
            std::sync::Arc<dyn StateView + Send + Sync>,
            noesis_execution::BlockContext,
            CallRequest,
        ),
        RpcError,
    > {
        let pending = matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending)));
        let number = self.state_number(block)?;
        let state = self
            .chain
            .state_at(number)?
            .ok_or_else(|| RpcError::NotFound("header not found".into()))?;
        let ctx = if pending || number == self.head_number() {
            self.chain.next_block_context(unix_now())
        } else {
            let header = self
                .chain
                .store()
                .header_by_number(number)?
                .ok_or_else(|| RpcError::NotFound("header not found".into()))?;
            self.chain.context_after(&header)
        };
        Ok((state, ctx, call_request(request)?))
    }

    fn sign_with_dev_key(&self, request: TransactionRequest) -> Result<TxEnvelope, RpcError> {
        let from = request
            .from
            .ok_or_else(|| RpcError::InvalidParams("missing \"from\"".into()))?;
        let signer = self
            .dev_signers
            .iter()
            .find(|s| s.address() == from)
            .ok_or_else(|| RpcError::InvalidParams(format!("unknown account {from}: eth_sendTransaction signs only for dev accounts; sign locally and use eth_sendRawTransaction")))?;
        let mut request = request;
        request.chain_id = Some(self.chain.chain_id());
        if request.to.is_none() {
            // No recipient: a contract creation.
            request.to = Some(TxKind::Create);
        }
        if request.nonce.is_none() {
            request.nonce = Some(self.chain.pending_nonce(from)?);
        }
        if request.gas_price.is_none() {
            let tip = request.max_priority_fee_per_gas.unwrap_or(SUGGESTED_TIP);
            request.max_priority_fee_per_gas = Some(tip);
            if request.max_fee_per_gas.is_none() {
                request.max_fee_per_gas = Some(2 * self.chain.next_base_fee() as u128 + tip);
            }
        }
        let typed: TypedTransaction = request
            .build_typed_tx()
            .map_err(|_| RpcError::InvalidParams("incomplete transaction request".into()))?;
        let signature = signer
            .sign_hash_sync(&typed.signature_hash())
            .map_err(|e| RpcError::Internal(format!("signing failed: {e}")))?;
        Ok(typed.into_signed(signature).into())
    }

    fn submit(&self, tx: TxEnvelope) -> Result<B256, RpcError> {
        let hash = self.chain.submit(tx)?;
        (self.on_submit)();
        Ok(hash)
    }
}

/// Converts an RPC request into an execution call.
fn call_request(request: &TransactionRequest) -> Result<CallRequest, RpcError> {
    if request.input.input.is_some()
        && request.input.data.is_some()
        && request.input.input != request.input.data
    {
        return Err(RpcError::InvalidParams(
            "both \"data\" and \"input\" are set and not equal; use \"input\"".into(),
        ));
    }
    Ok(CallRequest {
        from: request.from,
        to: request.to.and_then(|kind| kind.to().copied()),
        gas: request.gas,
        gas_price: request.gas_price,
        max_fee_per_gas: request.max_fee_per_gas,
        max_priority_fee_per_gas: request.max_priority_fee_per_gas,
        value: request.value,
        input: request.input.input().cloned().unwrap_or_default(),
        nonce: request.nonce,
        access_list: request.access_list.clone(),
    })
}

fn outcome_to_result(outcome: CallOutcome) -> Result<Bytes, RpcError> {
    match outcome {
        CallOutcome::Success { output, .. } => Ok(output),
        CallOutcome::Revert { output, .. } => Err(RpcError::Reverted(output)),
        CallOutcome::Halt { reason, .. } => Err(RpcError::Halted(halt_message(&reason))),
    }
}

fn halt_message(reason: &str) -> String {
    if reason.starts_with("OutOfGas") {
        "out of gas".into()
    } else {
        format!("execution halted: {reason}")
    }
}

#[jsonrpsee::core::async_trait]
impl EthApiServer for EthRpc {
    fn chain_id(&self) -> RpcResult<U64> {
        Ok(U64::from(self.chain.chain_id()))
    }

    fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.head_number()))
    }

    fn accounts(&self) -> RpcResult<Vec<Address>> {
        Ok(self.dev_signers.iter().map(|s| s.address()).collect())
    }

    fn get_balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        let state = self.state(block)?;
        Ok(state
            .account(address)
            .map_err(RpcError::from)?
            .map(|a| a.balance)
            .unwrap_or_default())
    }

    fn get_transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64> {
        if matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending))) {
            return Ok(U64::from(
                self.chain.pending_nonce(address).map_err(RpcError::from)?,
            ));
        }
        let state = self.state(block)?;
        Ok(U64::from(
            state
                .account(address)
                .map_err(RpcError::from)?
                .map(|a| a.nonce)
                .unwrap_or_default(),
        ))
    }

    fn get_code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        let state = self.state(block)?;
        match state.account(address).map_err(RpcError::from)? {
            Some(account) => Ok(state.code(account.code_hash).map_err(RpcError::from)?),
            None => Ok(Bytes::new()),
        }
    }

    fn get_storage_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> RpcResult<B256> {
        let state = self.state(block)?;
        Ok(B256::from(
            state.storage(address, slot).map_err(RpcError::from)?,
        ))
    }

    fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<Bytes> {
        let (state, ctx, req) = self.simulate(&request, block)?;
        let state = OverriddenState::new(&*state, overrides.unwrap_or_default())?;
        let outcome = call(&state, &ctx, &req).map_err(RpcError::from)?;
        Ok(outcome_to_result(outcome)?)
    }

    fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<U64> {
        let (state, ctx, req) = self.simulate(&request, block)?;
        let state = OverriddenState::new(&*state, overrides.unwrap_or_default())?;
        match estimate_gas(&state, &ctx, &req).map_err(RpcError::from)? {
            Ok(gas) => Ok(U64::from(gas)),
            Err(CallOutcome::Revert { output, .. }) => Err(RpcError::Reverted(output).into()),
            Err(CallOutcome::Halt { reason, .. }) if reason.starts_with("OutOfGas") => {
                Err(RpcError::Halted(format!(
                    "gas required exceeds allowance ({})",
                    req.gas.unwrap_or(ctx.gas_limit.min(MAX_TX_GAS))
                ))
                .into())
            }
            Err(CallOutcome::Halt { reason, .. }) => {
                Err(RpcError::Halted(halt_message(&reason)).into())
            }
            Err(CallOutcome::Success { .. }) => {
                Err(RpcError::Internal("estimate failed".into()).into())
            }
        }
    }

    fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256> {
        let hash = self.chain.submit_raw(&raw).map_err(RpcError::from)?;
        (self.on_submit)();
        Ok(hash)
    }

    fn send_transaction(&self, mut request: TransactionRequest) -> RpcResult<B256> {
        if request.gas.is_none() {
            // Estimated on the pending state without the nonce (earlier transactions
            // of the sender may still be pooled); a revert surfaces as code 3.
            let mut estimate = request.clone();
            estimate.nonce = None;
            request.gas = Some(
                self.estimate_gas(estimate, Some(BlockId::pending()), None)?
                    .to(),
            );
        }
        let tx = self.sign_with_dev_key(request)?;
        Ok(self.submit(tx)?)
    }

    fn get_transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        if let Some(location) = self
            .chain
            .store()
            .tx_location(&hash)
            .map_err(RpcError::from)?
            && let Some(block) = self.block(location.block)?
            && let Some((sender, tx)) = block
                .block
                .transactions
                .get(location.index as usize)
                .cloned()
        {
            return Ok(Some(rpc_transaction(
                sender,
                tx,
                Some((&block.block, location.index as u64)),
            )));
        }
        Ok(self
            .chain
            .pooled(&hash)
            .map(|p| rpc_transaction(p.sender, (*p.tx).clone(), None)))
    }

    fn get_transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>> {
        let Some(location) = self
            .chain
            .store()
            .tx_location(&hash)
            .map_err(RpcError::from)?
        else {
            return Ok(None);
        };
        let Some(block) = self.block(location.block)? else {
            return Ok(None);
        };
        Ok(rpc_receipt(&block, location.index as usize))
    }

    fn get_block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> RpcResult<Option<Block>> {
        Ok(self
            .block(self.number_of(number))?
            .map(|b| rpc_block(&b.block, full)))
    }

    fn get_block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        Ok(self
            .block_by_hash(&hash)?
            .map(|b| rpc_block(&b.block, full)))
    }

    fn get_block_transaction_count_by_number(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<U64>> {
        Ok(self
            .block(self.number_of(number))?
            .map(|b| U64::from(b.block.transactions.len())))
    }

    fn get_block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        Ok(self
            .block_by_hash(&hash)?
            .map(|b| U64::from(b.block.transactions.len())))
    }

    fn get_transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        let Some(block) = self.block(self.number_of(number))? else {
            return Ok(None);
        };
        let i = index.to::<u64>();
        Ok(block
            .block
            .transactions
            .get(i as usize)
            .cloned()
            .map(|(s, tx)| rpc_transaction(s, tx, Some((&block.block, i)))))
    }

    fn get_transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: U64,
    ) -> RpcResult<Option<Transaction>> {
        let Some(block) = self.block_by_hash(&hash)? else {
            return Ok(None);
        };
        let i = index.to::<u64>();
        Ok(block
            .block
            .transactions
            .get(i as usize)
            .cloned()
            .map(|(s, tx)| rpc_transaction(s, tx, Some((&block.block, i)))))
    }

    fn get_block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        let block = match block {
            BlockId::Number(tag) => self.block(self.number_of(tag))?,
            BlockId::Hash(hash) => self.block_by_hash(&hash.block_hash)?,
        };
        let Some(block) = block else { return Ok(None) };
        Ok(Some(
            (0..block.block.transactions.len())
                .filter_map(|i| rpc_receipt(&block, i))
                .collect(),
        ))
    }

    fn get_logs(&self, filter: Filter) -> RpcResult<Vec<Log>> {
        Ok(logs_in_range(&self.chain, &filter, None)?)
    }

    fn gas_price(&self) -> RpcResult<U256> {
        Ok(U256::from(
            self.chain.next_base_fee() as u128 + SUGGESTED_TIP,
        ))
    }

    fn max_priority_fee_per_gas(&self) -> RpcResult<U256> {
        Ok(U256::from(SUGGESTED_TIP))
    }

    fn blob_base_fee(&self) -> RpcResult<U256> {
        Ok(U256::from(1))
    }

    fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        crate::fees::fee_history(
            &self.chain,
            block_count.to::<u64>(),
            self.number_of(newest),
            percentiles,
        )
        .map_err(Into::into)
    }

    fn syncing(&self) -> RpcResult<SyncStatus> {
        let progress = self.consensus.as_ref().and_then(|c| c.syncing());
        Ok(match progress {
            None => SyncStatus::None,
            Some((starting, current, highest)) => SyncStatus::Info(Box::new(SyncInfo {
                starting_block: U256::from(starting),
                current_block: U256::from(current),
                highest_block: U256::from(highest),
                ..Default::default()
            })),
        })
    }

    fn get_proof(
        &self,
        address: Address,
        slots: Vec<B256>,
        block: Option<BlockId>,
    ) -> RpcResult<EIP1186AccountProofResponse> {
        if slots.len() > 1024 {
            return Err(
                RpcError::LimitExceeded("at most 1024 storage slots per proof".into()).into(),
            );
        }
        let number = self.state_number(block)?;
        let header = self
            .chain
            .store()
            .header_by_number(number)
            .map_err(RpcError::from)?
            .ok_or_else(|| RpcError::NotFound("header not found".into()))?;
        let proof = self
            .chain
            .store()
            .proof(header.state_root, address, &slots)
            .map_err(RpcError::from)?;
        let account = proof.account.unwrap_or_default();
        Ok(EIP1186AccountProofResponse {
            address,
            balance: account.balance,
            code_hash: account.code_hash,
            nonce: account.nonce,
            storage_hash: account.storage_root,
            account_proof: proof.account_proof,
            storage_proof: proof
                .storage
                .into_iter()
                .map(|s| EIP1186StorageProof {
                    key: s.slot.into(),
                    value: s.value,
                    proof: s.proof,
                })
                .collect(),
        })
    }

    fn new_filter(&self, filter: Filter) -> RpcResult<U256> {
        Ok(self.filters.install_logs(filter))
    }

    fn new_block_filter(&self) -> RpcResult<U256> {
        Ok(self.filters.install_blocks())
    }

    fn new_pending_transaction_filter(&self) -> RpcResult<U256> {
        Ok(self.filters.install_pending())
    }

    fn get_filter_changes(&self, id: U256) -> RpcResult<FilterChanges> {
        Ok(self.filters.changes(id)?)
    }

    fn get_filter_logs(&self, id: U256) -> RpcResult<Vec<Log>> {
        Ok(self.filters.all_logs(id)?)
    }

    fn uninstall_filter(&self, id: U256) -> RpcResult<bool> {
        Ok(self.filters.uninstall(id))
    }

    async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        params: Option<serde_json::Value>,
    ) -> SubscriptionResult {
        match kind.as_str() {
            "newHeads" | "logs" => {
                let filter = match (kind.as_str(), params) {
                    ("logs", Some(p)) => match serde_json::from_value::<Filter>(p) {
                        Ok(f) => Some(f),
                        Err(e) => {
                            pending
                                .reject(ErrorObject::owned(
                                    -32602,
                                    format!("invalid logs filter: {e}"),
                                    None::<()>,
                                ))
                                .await;
                            return Ok(());
                        }
                    },
                    ("logs", None) => Some(Filter::default()),
                    _ => None,
                };
                let mut blocks = self.chain.subscribe_blocks();
                let sink = pending.accept().await?;
                loop {
                    let block = tokio::select! {
                        _ = sink.closed() => break,
                        block = blocks.recv() => block,
                    };
                    let block = match block {
                        Ok(b) => b,
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => break,
                    };
                    match &filter {
                        None => {
                            let header = alloy_rpc_types_eth::Header {
                                hash: block.hash,
                                inner: block.header.clone(),
                                total_difficulty: Some(U256::ZERO),
                                size: None,
                            };
                            let raw = serde_json::value::to_raw_value(&header)?;
                            sink.send(SubscriptionMessage::from(raw)).await?;
                        }
                        Some(filter) => {
                            for log in block
                                .logs
                                .iter()
                                .map(rpc_log)
                                .filter(|l| filter.matches(&l.inner))
                            {
                                let raw = serde_json::value::to_raw_value(&log)?;
                                sink.send(SubscriptionMessage::from(raw)).await?;
                            }
                        }
                    }
                }
            }
            "newPendingTransactions" => {
                let mut txs = self.chain.subscribe_pending();
                let sink = pending.accept().await?;
                loop {
                    let hash = tokio::select! {
                        _ = sink.closed() => break,
                        hash = txs.recv() => hash,
                    };
                    match hash {
                        Ok(hash) => {
                            sink.send(SubscriptionMessage::from(serde_json::value::to_raw_value(
                                &hash,
                            )?))
                            .await?
                        }
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => break,
                    }
                }
            }
            other => {
                pending
                    .reject(ErrorObject::owned(
                        -32602,
                        format!("unsupported subscription \"{other}\": use newHeads, logs or newPendingTransactions"),
                        None::<()>,
                    ))
                    .await;
            }
        }
        Ok(())
    }
}

impl NetApiServer for EthRpc {
    fn version(&self) -> RpcResult<String> {
        Ok(self.chain.chain_id().to_string())
    }
    fn listening(&self) -> RpcResult<bool> {
        Ok(true)
    }
    fn peer_count(&self) -> RpcResult<U64> {
        // A dev node has no peers.
        Ok(U64::from(
            self.consensus.as_ref().map_or(0, |c| c.peer_count()),
        ))
    }
}

impl Web3ApiServer for EthRpc {
    fn client_version(&self) -> RpcResult<String> {
        Ok(format!(
            "Noesis/v{}/linux-x86_64/rust",
            env!("CARGO_PKG_VERSION")
        ))
    }
    fn sha3(&self, data: Bytes) -> RpcResult<B256> {
        Ok(keccak256(data))
    }
}
