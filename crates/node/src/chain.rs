//! The chain: store + mempool + block production, and the read API the RPC uses.
//!
//! Blocks are built, verified and committed by the executor ([`crate::executor`]):
//! a consensus engine drives its three steps, the dev sealer (automine or interval)
//! drives [`Chain::produce_block`], which is two of them. Only one block is built,
//! verified or committed at a time.

use std::{
    collections::{BTreeMap, VecDeque},
    path::Path,
    sync::Arc,
};

use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Header, ReceiptEnvelope, Transaction, TxEnvelope,
    transaction::SignerRecoverable,
};
use alloy_eips::{eip1559::BaseFeeParams, eip7685::EMPTY_REQUESTS_HASH};
use alloy_primitives::{Address, B256, Bytes, Log, U256, keccak256};
use noesis_execution::{BlockContext, MAX_TX_GAS, intrinsic_gas};
use noesis_primitives::{ChainSpec, DecodeError, StateChanges, StateView};
use noesis_storage::{LatestState, Store, StoredBlock};
use parking_lot::{Mutex, RwLock};
use tokio::sync::broadcast;

use crate::{
    NodeError,
    executor::CommitOutcome,
    mempool::{Mempool, PoolError, PooledTx},
    metrics::Metrics,
};

/// A log with its position in the chain, as RPC and subscriptions report it.
#[derive(Clone, Debug)]
pub struct IndexedLog {
    /// The log.
    pub log: Log,
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Block timestamp.
    pub block_timestamp: u64,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Transaction index in the block.
    pub tx_index: u64,
    /// Log index in the block.
    pub log_index: u64,
}

/// A newly committed block, as announced to subscribers.
#[derive(Clone, Debug)]
pub struct NewBlock {
    /// The header.
    pub header: Header,
    /// Its hash.
    pub hash: B256,
    /// The block's logs.
    pub logs: Vec<IndexedLog>,
}

/// A canonical block with its receipts, decoded once and shared by RPC readers.
#[derive(Debug)]
pub struct BlockWithReceipts {
    /// The block.
    pub block: StoredBlock,
    /// Its receipts, in transaction order.
    pub receipts: Vec<ReceiptEnvelope>,
    /// The block-wide index of each transaction's first log.
    pub first_log_index: Vec<u64>,
}

impl BlockWithReceipts {
    pub(crate) fn new(block: StoredBlock, receipts: Vec<ReceiptEnvelope>) -> Self {
        let mut next = 0u64;
        let first_log_index = receipts
            .iter()
            .map(|r| {
                let first = next;
                next += r.logs().len() as u64;
                first
            })
            .collect();
        Self {
            block,
            receipts,
            first_log_index,
        }
    }
}

/// How many recently read or produced blocks stay decoded in memory. Receipt and
/// transaction lookups hit the newest blocks; a block of a 1B-gas chain holds tens of
/// thousands of transactions, so decoding it once per lookup would be quadratic.
const BLOCK_CACHE_CAPACITY: usize = 8;

/// The chain's current head.
#[derive(Clone, Debug)]
pub struct Head {
    /// Head header.
    pub header: Header,
    /// Head hash.
    pub hash: B256,
}

/// The node's chain.
pub struct Chain {
    pub(crate) spec: ChainSpec,
    pub(crate) store: Store,
    pub(crate) mempool: Mutex<Mempool>,
    pub(crate) head: RwLock<Head>,
    /// Snapshot of the head's state, replaced after every block.
    pub(crate) latest: RwLock<Arc<LatestState>>,
    /// Held while a block is built, verified or committed (see [`crate::executor`]).
    pub(crate) producing: Mutex<()>,
    /// Recently used canonical blocks with receipts, newest last.
    block_cache: Mutex<VecDeque<Arc<BlockWithReceipts>>>,
    pub(crate) beneficiary: Address,
    pub(crate) new_blocks: broadcast::Sender<Arc<NewBlock>>,
    new_txs: broadcast::Sender<B256>,
    /// Prometheus metrics.
    pub metrics: Metrics,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("chain_id", &self.spec.chain_id)
            .finish()
    }
}

impl Chain {
    /// Opens the chain in `datadir`, writing the genesis block on first start.
    pub fn open(
        datadir: &Path,
        spec: ChainSpec,
        pool_capacity: usize,
    ) -> Result<Arc<Self>, NodeError> {
        let store = Store::open(datadir, spec.hash())?;
        if store.head()?.is_none() {
            write_genesis(&store, &spec)?;
        }
        let (number, hash) = store
            .head()?
            .ok_or_else(|| NodeError::Internal("no genesis".into()))?;
        let header = store
            .header_by_hash(&hash)?
            .ok_or_else(|| NodeError::Internal(format!("head block {number} missing")))?;
        let latest = Arc::new(store.latest()?);
        let (new_blocks, _) = broadcast::channel(1024);
        let (new_txs, _) = broadcast::channel(16384);
        let metrics = Metrics::default();
        metrics.height.set(number as i64);
        Ok(Arc::new(Self {
            spec,
            store,
            mempool: Mutex::new(Mempool::new(pool_capacity)),
            head: RwLock::new(Head { header, hash }),
            latest: RwLock::new(latest),
            producing: Mutex::new(()),
            block_cache: Mutex::new(VecDeque::with_capacity(BLOCK_CACHE_CAPACITY)),
            beneficiary: Address::ZERO,
            new_blocks,
            new_txs,
            metrics,
        }))
    }

    /// The chain spec.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.spec.chain_id
    }

    /// The store (read access for RPC).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current head.
    pub fn head(&self) -> Head {
        self.head.read().clone()
    }

    /// Subscribes to new blocks.
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<NewBlock>> {
        self.new_blocks.subscribe()
    }

    /// Subscribes to hashes of transactions entering the pool.
    pub fn subscribe_pending(&self) -> broadcast::Receiver<B256> {
        self.new_txs.subscribe()
    }

    /// Base fee of the next block.
    pub fn next_base_fee(&self) -> u64 {
        next_base_fee(&self.head.read().header)
    }

    /// Execution context of the next block (also used by `eth_call` on `pending`).
    pub fn next_block_context(&self, timestamp: u64) -> BlockContext {
        let head = self.head();
        let timestamp = timestamp.max(head.header.timestamp.saturating_add(1));
        self.context_on(&head.header, head.hash, timestamp)
    }

    /// Execution context that replays on top of block `header` (for `eth_call` at a
    /// past block: the call runs as if in the block that follows it).
    pub fn context_after(&self, header: &Header) -> BlockContext {
        BlockContext {
            chain_id: self.spec.chain_id,
            number: header.number + 1,
            timestamp: header.timestamp + 1,
            beneficiary: self.beneficiary,
            base_fee: next_base_fee(header),
            gas_limit: header.gas_limit,
            prevrandao: keccak256(header.hash_slow()),
        }
    }

    /// The head's state.
    pub fn latest_state(&self) -> Arc<LatestState> {
        self.latest.read().clone()
    }

    /// The state after block `number` (the flat latest state when it is the head).
    pub fn state_at(
        &self,
        number: u64,
    ) -> Result<Option<Arc<dyn StateView + Send + Sync>>, NodeError> {
        {
            let head = self.head.read();
            if number == head.header.number {
                return Ok(Some(self.latest_state()));
            }
        }
        match self.store.header_by_number(number)? {
            Some(header) => Ok(Some(Arc::new(self.store.at_root(header.state_root)?))),
            None => Ok(None),
        }
    }

    /// Pool counts.
    pub fn pool_status(&self) -> crate::mempool::PoolStatus {
        self.mempool.lock().status()
    }

    /// A transaction still waiting in the pool.
    pub fn pooled(&self, hash: &B256) -> Option<PooledTx> {
        self.mempool.lock().get(hash).cloned()
    }

    /// Next nonce for `address` counting its executable pooled transactions.
    pub fn pending_nonce(&self, address: Address) -> Result<u64, NodeError> {
        if let Some(nonce) = self.mempool.lock().pending_nonce(&address) {
            return Ok(nonce);
        }
        Ok(self
            .latest_state()
            .account(address)?
            .map(|a| a.nonce)
            .unwrap_or(0))
    }

    /// Whether the pool holds executable transactions.
    pub fn has_pending(&self) -> bool {
        self.mempool.lock().has_pending()
    }

    /// Decodes, checks and pools a raw signed transaction (`eth_sendRawTransaction`).
    pub fn submit_raw(&self, raw: &[u8]) -> Result<B256, PoolError> {
        let tx = noesis_primitives::decode_transaction(raw).map_err(|e| match e {
            DecodeError::Oversized => PoolError::Oversized,
            DecodeError::TypeNotSupported => PoolError::TypeNotSupported,
            DecodeError::Rlp(msg) => PoolError::Decode(msg),
        })?;
        self.submit(tx)
    }

    /// Checks and pools a signed transaction.
    pub fn submit(&self, tx: TxEnvelope) -> Result<B256, PoolError> {
        let sender = self.check_stateless(&tx)?;
        let hash = *tx.tx_hash();
        {
            let mut pool = self.mempool.lock();
            if pool.contains(&hash) {
                return Err(PoolError::AlreadyKnown);
            }
            // Read state under the pool lock so the pool never sees an older nonce
            // than the one it already holds.
            let account = self
                .latest_state()
                .account(sender)
                .map_err(|e| PoolError::Decode(format!("state unavailable: {e}")))?
                .unwrap_or_default();
            if tx.nonce() < account.nonce {
                return Err(PoolError::NonceTooLow);
            }
            let cost = U256::from(tx.gas_limit())
                .saturating_mul(U256::from(tx.max_fee_per_gas()))
                .saturating_add(tx.value());
            if account.balance < cost {
                return Err(PoolError::InsufficientFunds);
            }
            pool.insert(
                PooledTx {
                    hash,
                    sender,
                    tx: Arc::new(tx),
                },
                account.nonce,
            )?;
            self.metrics.mempool_size.set(pool.len() as i64);
        }
        let _ = self.new_txs.send(hash);
        Ok(hash)
    }

    /// Checks that need no state; returns the recovered sender.
    fn check_stateless(&self, tx: &TxEnvelope) -> Result<Address, PoolError> {
        if tx.is_eip4844() {
            return Err(PoolError::TypeNotSupported);
        }
        match tx.chain_id() {
            Some(id) if id == self.spec.chain_id => {}
            Some(_) => return Err(PoolError::InvalidChainId),
            None => return Err(PoolError::Unprotected),
        }
        if tx.gas_limit() > self.spec.gas_limit {
            return Err(PoolError::ExceedsBlockGasLimit);
        }
        if tx.gas_limit() > MAX_TX_GAS {
            return Err(PoolError::GasLimitTooHigh(MAX_TX_GAS));
        }
        if let Some(tip) = tx.max_priority_fee_per_gas()
            && tip > tx.max_fee_per_gas()
        {
            return Err(PoolError::TipAboveFeeCap);
        }
        if tx.max_fee_per_gas() < self.next_base_fee() as u128 {
            return Err(PoolError::FeeCapTooLow);
        }
        let sender = tx.recover_signer().map_err(|_| PoolError::InvalidSender)?;
        if tx.gas_limit() < intrinsic_gas(sender, tx) {
            return Err(PoolError::IntrinsicGasTooLow);
        }
        Ok(sender)
    }

    /// Builds, executes and commits the next block from the pool: [`Chain::build_block`]
    /// on the head, then [`Chain::commit_executed`]. Returns `None` without writing
    /// anything when `allow_empty` is false and nothing was executable.
    pub fn produce_block(
        &self,
        timestamp: u64,
        allow_empty: bool,
    ) -> Result<Option<Arc<NewBlock>>, NodeError> {
        let _producing = self.producing.lock();
        // Dev blocks keep strictly increasing timestamps, as anvil's do.
        let timestamp = timestamp.max(self.head().header.timestamp.saturating_add(1));
        let Some(block) = self.build_locked(&[], timestamp, allow_empty)? else {
            return Ok(None);
        };
        match self.commit_locked(&block)? {
            CommitOutcome::Committed(announced) => Ok(Some(announced)),
            CommitOutcome::AlreadyCommitted => Err(NodeError::Internal(format!(
                "block {} was committed while it was being produced",
                block.number()
            ))),
        }
    }

    pub(crate) fn after_block(&self, block: &StoredBlock, changes: &StateChanges) {
        let mut nonces = BTreeMap::new();
        for (sender, _) in &block.transactions {
            if let Some(change) = changes.accounts.get(sender) {
                nonces.insert(
                    *sender,
                    change.account.map(|(nonce, _, _)| nonce).unwrap_or(0),
                );
            }
        }
        let mut pool = self.mempool.lock();
        pool.on_block(&nonces);
        self.metrics.mempool_size.set(pool.len() as i64);
    }

    /// The canonical block `number` with its receipts, from the cache of recent blocks
    /// or decoded from the store (and then cached).
    pub fn block_with_receipts(
        &self,
        number: u64,
    ) -> Result<Option<Arc<BlockWithReceipts>>, NodeError> {
        if let Some(hit) = self
            .block_cache
            .lock()
            .iter()
            .rev()
            .find(|b| b.block.header.number == number)
        {
            return Ok(Some(hit.clone()));
        }
        let Some(block) = self.store.block_by_number(number)? else {
            return Ok(None);
        };
        let receipts = self.store.receipts(number)?;
        let entry = Arc::new(BlockWithReceipts::new(block, receipts));
        self.cache_block(entry.clone());
        Ok(Some(entry))
    }

    pub(crate) fn cache_block(&self, entry: Arc<BlockWithReceipts>) {
        let mut cache = self.block_cache.lock();
        cache.retain(|b| b.block.header.number != entry.block.header.number);
        if cache.len() == BLOCK_CACHE_CAPACITY {
            cache.pop_front();
        }
        cache.push_back(entry);
    }
}

/// The transaction hash under which a block's end-of-block system-call logs are
/// reported (they belong to no transaction): `keccak256("noesis-system" ‖ block hash)`.
pub fn system_tx_hash(block_hash: B256) -> B256 {
    keccak256([b"noesis-system".as_slice(), block_hash.as_slice()].concat())
}

/// Logs of a block with their positions: every transaction's, then the end-of-block
/// system call's (at transaction index `len(transactions)`, under [`system_tx_hash`]).
pub fn index_logs(
    block: &StoredBlock,
    receipts: &[ReceiptEnvelope],
    system_logs: &[Log],
) -> Vec<IndexedLog> {
    let mut out = Vec::new();
    let mut log_index = 0u64;
    let positioned = |log: &Log, tx_hash: B256, tx_index: usize, log_index: u64| IndexedLog {
        log: log.clone(),
        block_number: block.header.number,
        block_hash: block.hash,
        block_timestamp: block.header.timestamp,
        tx_hash,
        tx_index: tx_index as u64,
        log_index,
    };
    for (tx_index, (receipt, (_, tx))) in receipts.iter().zip(&block.transactions).enumerate() {
        for log in receipt.logs() {
            out.push(positioned(log, *tx.tx_hash(), tx_index, log_index));
            log_index += 1;
        }
    }
    let system_hash = system_tx_hash(block.hash);
    for log in system_logs {
        out.push(positioned(
            log,
            system_hash,
            block.transactions.len(),
            log_index,
        ));
        log_index += 1;
    }
    out
}

/// EIP-1559 base fee of the block after `parent`.
pub fn next_base_fee(parent: &Header) -> u64 {
    BaseFeeParams::ethereum().next_block_base_fee(
        parent.gas_used,
        parent.gas_limit,
        parent
            .base_fee_per_gas
            .unwrap_or(noesis_primitives::INITIAL_BASE_FEE),
    )
}

fn write_genesis(store: &Store, spec: &ChainSpec) -> Result<(), NodeError> {
    let mut changes = StateChanges::default();
    for (address, account) in &spec.alloc {
        let code_hash = match &account.code {
            Some(code) if !code.is_empty() => {
                let hash = keccak256(code);
                changes.codes.insert(hash, code.clone());
                hash
            }
            _ => noesis_primitives::EMPTY_CODE_HASH,
        };
        changes.accounts.insert(
            *address,
            noesis_primitives::AccountChange {
                account: Some((account.nonce, account.balance, code_hash)),
                storage_reset: true,
                storage: account
                    .storage
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            },
        );
    }
    // Native modules' accounts exist from genesis (ADR 0006).
    let module_code = Bytes::from_static(&noesis_execution::MODULE_CODE);
    let module_code_hash = keccak256(&module_code);
    for address in noesis_execution::MODULE_ADDRESSES {
        if changes.accounts.contains_key(&address) {
            continue;
        }
        changes.codes.insert(module_code_hash, module_code.clone());
        changes.accounts.insert(
            address,
            noesis_primitives::AccountChange {
                account: Some((0, U256::ZERO, module_code_hash)),
                storage_reset: true,
                storage: Default::default(),
            },
        );
    }
    let (state_root, prepared) = store.compute_state_root(alloy_trie::EMPTY_ROOT_HASH, &changes)?;
    let header = Header {
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        state_root,
        transactions_root: alloy_trie::EMPTY_ROOT_HASH,
        receipts_root: alloy_trie::EMPTY_ROOT_HASH,
        gas_limit: spec.gas_limit,
        timestamp: spec.genesis_timestamp,
        base_fee_per_gas: Some(spec.initial_base_fee),
        ..post_prague_header()
    };
    let hash = header.hash_slow();
    store.commit_block(
        &StoredBlock {
            header,
            hash,
            transactions: Vec::new(),
        },
        &[],
        &[],
        &changes,
        prepared,
    )?;
    Ok(())
}

/// A header with the post-Cancun/Prague fields this chain always sets (no
/// withdrawals, no blobs, no beacon root, no requests; ADR 0003).
pub(crate) fn post_prague_header() -> Header {
    Header {
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        withdrawals_root: Some(alloy_trie::EMPTY_ROOT_HASH),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(EMPTY_REQUESTS_HASH),
        ..Default::default()
    }
}
