//! The consensus-facing executor: a block is built, verified and committed in three
//! separate steps.
//!
//! A BFT engine proposes on top of a parent that is notarized but not yet final, so a
//! block often executes on state that is not in the store yet. The committed head's
//! state (the store's [`LatestState`]) plus the merged [`StateChanges`] of the pending
//! ancestors above it, oldest first, form a [`PendingState`]: the state the next
//! block executes against.
//!
//! - [`Chain::build_block`] (the leader) takes the best pool transactions not already
//!   included in the ancestors, executes them and seals a header. It always returns a
//!   block, empty or not: consensus always proposes.
//! - [`Chain::execute_block`] (every validator) checks a proposed header against its
//!   parent, re-executes its transactions and compares every value the header commits
//!   to. A block that does not match is a [`BlockError`], never a panic.
//! - [`Chain::commit_executed`] (on finalization) writes a block whose parent is the
//!   committed head. Committing a block twice is harmless.
//!
//! The store's trie holds only committed state, so a pending block's state root is
//! computed from the committed head's root with the ancestors' changes and the
//! block's own merged. The dev sealer's [`Chain::produce_block`] is `build_block` on
//! no ancestors followed by `commit_executed`: dev mode and consensus share one
//! executor.
//!
//! The three steps hold the chain's production lock, so the committed head cannot move
//! while a block executes on it.

use std::{
    collections::{BTreeMap, BTreeSet, btree_map::Entry},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Header, ReceiptEnvelope, Transaction, TxEnvelope, TxReceipt,
    proofs::{calculate_receipt_root, calculate_transaction_root},
    transaction::SignerRecoverable,
};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bloom, Bytes, Log, U256};
use noesis_execution::{BlockBuilder, BlockContext, InvalidTransaction, PushOutcome};
use noesis_primitives::{
    AccountChange, AccountState, ProposedBlock, StateChanges, StateError, StateView,
};
use noesis_storage::{PreparedState, StoredBlock};
use parking_lot::Mutex;
use rayon::prelude::*;

use crate::{
    NodeError,
    chain::{BlockWithReceipts, Chain, Head, NewBlock, index_logs, post_prague_header},
};

/// Most bytes of transactions (EIP-2718 encodings) a built block holds: well under the
/// 16 MiB a consensus message carries, whatever the gas limit allows.
pub const MAX_BLOCK_TRANSACTION_BYTES: usize = 12 << 20;

/// A block executed on top of its parent, ready to be voted on and later committed.
/// Shared as `Arc<ExecutedBlock>` between the consensus engine and the chain.
#[derive(Debug)]
pub struct ExecutedBlock {
    block: StoredBlock,
    receipts: Vec<ReceiptEnvelope>,
    system_logs: Vec<Log>,
    changes: StateChanges,
    /// The trie nodes to write, when the block was executed directly on the committed
    /// head (they are then still valid at commit); taken by the commit.
    prepared: Mutex<Option<PreparedState>>,
    execution_time: Duration,
    state_root_time: Duration,
}

impl ExecutedBlock {
    /// The block sealed under `header` from the execution's output; `started` and
    /// `executed_at` time execution and the state root.
    fn sealed(
        header: Header,
        executed: noesis_execution::ExecutedBlock,
        prepared: Option<PreparedState>,
        started: Instant,
        executed_at: Instant,
    ) -> Self {
        Self {
            block: StoredBlock {
                hash: header.hash_slow(),
                header,
                transactions: executed.transactions,
            },
            receipts: executed.receipts,
            system_logs: executed.system_logs,
            changes: executed.changes,
            prepared: Mutex::new(prepared),
            execution_time: executed_at - started,
            state_root_time: executed_at.elapsed(),
        }
    }

    /// The block: header, hash, and transactions with their senders.
    pub fn block(&self) -> &StoredBlock {
        &self.block
    }

    /// The sealed header.
    pub fn header(&self) -> &Header {
        &self.block.header
    }

    /// The block hash.
    pub fn hash(&self) -> B256 {
        self.block.hash
    }

    /// The block number.
    pub fn number(&self) -> u64 {
        self.block.header.number
    }

    /// The parent's hash.
    pub fn parent_hash(&self) -> B256 {
        self.block.header.parent_hash
    }

    /// One receipt per transaction.
    pub fn receipts(&self) -> &[ReceiptEnvelope] {
        &self.receipts
    }

    /// Logs of the end-of-block system call (in no receipt).
    pub fn system_logs(&self) -> &[Log] {
        &self.system_logs
    }

    /// This block's own state changes (not its ancestors').
    pub fn changes(&self) -> &StateChanges {
        &self.changes
    }

    /// The block as sent on the wire.
    pub fn proposal(&self) -> ProposedBlock {
        ProposedBlock {
            header: self.block.header.clone(),
            transactions: self
                .block
                .transactions
                .iter()
                .map(|(_, tx)| tx.clone())
                .collect(),
        }
    }
}

/// What [`Chain::commit_executed`] did.
#[derive(Clone, Debug)]
pub enum CommitOutcome {
    /// The block was written and is the new head.
    Committed(Arc<NewBlock>),
    /// The block was already canonical at its height: nothing was written.
    AlreadyCommitted,
}

/// Why a proposed block is not valid on top of its parent. Every variant but
/// [`BlockError::Internal`] is the block's fault. In the mismatch variants `expected`
/// is what this node computed and `got` what the header says.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The header's parent is not the block it was verified on top of.
    #[error("parent hash {got} is not the expected parent {expected}")]
    BadParent {
        /// The parent's hash.
        expected: B256,
        /// The header's parent hash.
        got: B256,
    },
    /// The number is not the parent's plus one.
    #[error("block number {got}, expected {expected}")]
    BadNumber {
        /// The parent's number plus one.
        expected: u64,
        /// The header's number.
        got: u64,
    },
    /// The transactions take more bytes than a block may hold.
    #[error("the block's transactions take {bytes} bytes, more than the {max} a block may hold")]
    TooLarge {
        /// Their EIP-2718 encodings' total size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The timestamp is before the parent's.
    #[error("timestamp {got} is before the parent's {parent}")]
    BadTimestamp {
        /// The parent's timestamp.
        parent: u64,
        /// The header's timestamp.
        got: u64,
    },
    /// The base fee is not the one EIP-1559 gives after the parent.
    #[error("base fee {got:?}, expected {expected}")]
    BadBaseFee {
        /// The base fee after the parent.
        expected: u64,
        /// The header's base fee.
        got: Option<u64>,
    },
    /// The gas limit is not the chain spec's.
    #[error("gas limit {got}, expected {expected}")]
    BadGasLimit {
        /// The chain spec's gas limit.
        expected: u64,
        /// The header's gas limit.
        got: u64,
    },
    /// The beneficiary is not this chain's.
    #[error("beneficiary {got}, expected {expected}")]
    BadBeneficiary {
        /// The chain's beneficiary.
        expected: Address,
        /// The header's beneficiary.
        got: Address,
    },
    /// The mix hash (PREVRANDAO) is not keccak256 of the parent hash.
    #[error("prevrandao {got}, expected {expected}")]
    BadPrevrandao {
        /// keccak256 of the parent hash.
        expected: B256,
        /// The header's mix hash.
        got: B256,
    },
    /// A field the chain always sets to one value (ommers hash, difficulty, nonce,
    /// extra data, the post-Cancun fields) has another, or the header differs from the
    /// one this node seals for the same block in a field not checked on its own.
    #[error("header field {0} differs from the value this chain sets")]
    BadHeaderField(&'static str),
    /// The transactions root does not match the transactions.
    #[error("transactions root {got}, computed {expected}")]
    TransactionsRootMismatch {
        /// Computed from the transactions.
        expected: B256,
        /// The header's.
        got: B256,
    },
    /// A transaction cannot be included: bad signature or chain id, a blob
    /// transaction, invalid against the state (nonce, balance, fees), or its gas
    /// limit exceeds what is left of the block.
    #[error("transaction {index} is not includable: {reason}")]
    InvalidTransaction {
        /// Its index in the block.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The gas used is not what execution used.
    #[error("gas used {got}, execution used {expected}")]
    GasUsedMismatch {
        /// Used by execution.
        expected: u64,
        /// The header's.
        got: u64,
    },
    /// The receipts root is not the root of the receipts execution produced.
    #[error("receipts root {got}, computed {expected}")]
    ReceiptsRootMismatch {
        /// Computed.
        expected: B256,
        /// The header's.
        got: B256,
    },
    /// The logs bloom is not the bloom of the receipts and system logs.
    #[error("logs bloom does not match the block's logs")]
    LogsBloomMismatch,
    /// The state root is not the root of the state after execution.
    #[error("state root {got}, computed {expected}")]
    StateRootMismatch {
        /// Computed.
        expected: B256,
        /// The header's.
        got: B256,
    },
    /// The node could not verify the block (a store failure, or ancestors that do not
    /// extend the committed head). Says nothing about the block.
    #[error(transparent)]
    Internal(#[from] NodeError),
}

impl BlockError {
    /// Whether the block itself is at fault (every variant but `Internal`).
    pub fn is_invalid_block(&self) -> bool {
        !matches!(self, Self::Internal(_))
    }
}

/// The state on top of pending blocks: the committed state, then the merged changes of
/// the pending ancestors above it. Reads never touch the store for what the ancestors
/// changed.
///
/// The storage root of an account that a pending block changed is not computed (it is
/// reported as zero); execution never reads it.
pub struct PendingState {
    base: Arc<dyn StateView + Send + Sync>,
    changes: StateChanges,
    hashes: BTreeMap<u64, B256>,
}

impl std::fmt::Debug for PendingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingState")
            .field("blocks", &self.hashes)
            .field("accounts", &self.changes.accounts.len())
            .finish()
    }
}

impl PendingState {
    /// The state after `ancestors` (oldest first, the first one's parent being the
    /// block whose state `base` is).
    pub fn new(base: Arc<dyn StateView + Send + Sync>, ancestors: &[Arc<ExecutedBlock>]) -> Self {
        let mut changes = StateChanges::default();
        let mut hashes = BTreeMap::new();
        for block in ancestors {
            merge_changes(&mut changes, &block.changes);
            hashes.insert(block.number(), block.hash());
        }
        Self {
            base,
            changes,
            hashes,
        }
    }

    /// The ancestors' changes merged: applied to the committed state in one step, they
    /// give the same state as applied block by block.
    pub fn changes(&self) -> &StateChanges {
        &self.changes
    }

    /// The nonce of `address` after the ancestors, if one of them changed the account.
    pub fn pending_nonce(&self, address: &Address) -> Option<u64> {
        let change = self.changes.accounts.get(address)?;
        Some(change.account.map_or(0, |(nonce, _, _)| nonce))
    }

    fn into_changes(self) -> StateChanges {
        self.changes
    }
}

impl StateView for PendingState {
    fn account(&self, address: Address) -> Result<Option<AccountState>, StateError> {
        match self.changes.accounts.get(&address) {
            Some(change) => Ok(change
                .account
                .map(|(nonce, balance, code_hash)| AccountState {
                    nonce,
                    balance,
                    code_hash,
                    storage_root: B256::ZERO,
                })),
            None => self.base.account(address),
        }
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        if let Some(change) = self.changes.accounts.get(&address) {
            if let Some(value) = change.storage.get(&slot) {
                return Ok(*value);
            }
            if change.storage_reset || change.account.is_none() {
                return Ok(U256::ZERO);
            }
        }
        self.base.storage(address, slot)
    }

    fn code(&self, code_hash: B256) -> Result<Bytes, StateError> {
        match self.changes.codes.get(&code_hash) {
            Some(code) => Ok(code.clone()),
            None => self.base.code(code_hash),
        }
    }

    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        match self.hashes.get(&number) {
            Some(hash) => Ok(*hash),
            None => self.base.block_hash(number),
        }
    }
}

/// Applies `later`, the changes of a block executed after those merged in `into`.
///
/// Later account values win; a later storage reset wipes the earlier slot changes; a
/// deleted account takes its storage with it (as the store does), so it counts as a
/// reset for what comes after; codes are a union.
pub(crate) fn merge_changes(into: &mut StateChanges, later: &StateChanges) {
    for (address, change) in &later.accounts {
        let deleted = change.account.is_none();
        let merged = match into.accounts.entry(*address) {
            Entry::Vacant(entry) => entry.insert(AccountChange::default()),
            Entry::Occupied(entry) => entry.into_mut(),
        };
        merged.account = change.account;
        if change.storage_reset || deleted {
            merged.storage_reset = true;
            merged.storage.clear();
        }
        if !deleted {
            merged
                .storage
                .extend(change.storage.iter().map(|(k, v)| (*k, *v)));
        }
    }
    into.codes
        .extend(later.codes.iter().map(|(hash, code)| (*hash, code.clone())));
}

/// The header values that come out of execution.
struct Sealed {
    transactions_root: B256,
    receipts_root: B256,
    logs_bloom: Bloom,
    gas_used: u64,
    state_root: B256,
}

/// The header of a block executed with `ctx` on top of `parent_hash`: the one place
/// headers are made, for blocks built and for blocks verified.
fn seal_header(ctx: &BlockContext, parent_hash: B256, sealed: &Sealed) -> Header {
    Header {
        parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: ctx.beneficiary,
        state_root: sealed.state_root,
        transactions_root: sealed.transactions_root,
        receipts_root: sealed.receipts_root,
        logs_bloom: sealed.logs_bloom,
        difficulty: U256::ZERO,
        number: ctx.number,
        gas_limit: ctx.gas_limit,
        gas_used: sealed.gas_used,
        timestamp: ctx.timestamp,
        extra_data: Bytes::new(),
        mix_hash: ctx.prevrandao,
        nonce: Default::default(),
        base_fee_per_gas: Some(ctx.base_fee),
        ..post_prague_header()
    }
}

/// The bloom of the receipts and of the system call's logs, which are in no receipt
/// but in the bloom so that `eth_getLogs` finds their blocks.
fn logs_bloom(receipts: &[ReceiptEnvelope], system_logs: &[Log]) -> Bloom {
    let mut bloom = Bloom::ZERO;
    for receipt in receipts {
        bloom.accrue_bloom(&receipt.bloom());
    }
    for log in system_logs {
        bloom.accrue_log(log);
    }
    bloom
}

/// Fields that are the same in every header of this chain.
fn check_fixed_fields(header: &Header) -> Result<(), BlockError> {
    let fixed = post_prague_header();
    let checks: [(&'static str, bool); 11] = [
        ("ommers_hash", header.ommers_hash == EMPTY_OMMER_ROOT_HASH),
        ("difficulty", header.difficulty.is_zero()),
        ("nonce", header.nonce == fixed.nonce),
        ("extra_data", header.extra_data.is_empty()),
        (
            "withdrawals_root",
            header.withdrawals_root == fixed.withdrawals_root,
        ),
        ("blob_gas_used", header.blob_gas_used == fixed.blob_gas_used),
        (
            "excess_blob_gas",
            header.excess_blob_gas == fixed.excess_blob_gas,
        ),
        (
            "parent_beacon_block_root",
            header.parent_beacon_block_root == fixed.parent_beacon_block_root,
        ),
        ("requests_hash", header.requests_hash == fixed.requests_hash),
        (
            "block_access_list_hash",
            header.block_access_list_hash == fixed.block_access_list_hash,
        ),
        ("slot_number", header.slot_number == fixed.slot_number),
    ];
    match checks.iter().find(|(_, ok)| !ok) {
        Some((field, _)) => Err(BlockError::BadHeaderField(field)),
        None => Ok(()),
    }
}

/// Whether a pool transaction is already included in a pending ancestor: its nonce is
/// below the sender's pending nonce but not below the committed one (below the
/// committed nonce it is simply stale, and execution says so).
fn in_pending_ancestor(
    pending: &PendingState,
    committed: &dyn StateView,
    sender: Address,
    nonce: u64,
) -> Result<bool, NodeError> {
    match pending.pending_nonce(&sender) {
        Some(pending_nonce) if nonce < pending_nonce => {
            let committed_nonce = committed.account(sender)?.map_or(0, |a| a.nonce);
            Ok(nonce >= committed_nonce)
        }
        _ => Ok(false),
    }
}

impl Chain {
    /// Builds a block from the pool on top of `ancestors` (pending blocks, oldest
    /// first, the first one's parent being the committed head; empty to build on the
    /// head) at `timestamp` (raised to the parent's if needed: under consensus,
    /// several blocks may share a second, as on rollups that seal faster than 1 Hz). Transactions
    /// the ancestors already include are skipped and stay in the pool; ones invalid on
    /// top of the ancestors are dropped from it. The block may be empty. Nothing is
    /// written.
    ///
    /// Ancestors that were committed meanwhile (a canonical prefix) are skipped.
    pub fn build_block(
        &self,
        ancestors: &[Arc<ExecutedBlock>],
        timestamp: u64,
    ) -> Result<Arc<ExecutedBlock>, NodeError> {
        let _producing = self.producing.lock();
        self.build_locked(ancestors, timestamp, true)?
            .ok_or_else(|| NodeError::Internal("an empty block was refused".into()))
    }

    /// Re-executes a proposed block on top of `ancestors` (as for
    /// [`Chain::build_block`]) and checks that its header is exactly the one this node
    /// would seal for the same transactions and timestamp. Nothing is written.
    pub fn execute_block(
        &self,
        ancestors: &[Arc<ExecutedBlock>],
        header: Header,
        transactions: Vec<TxEnvelope>,
    ) -> Result<Arc<ExecutedBlock>, BlockError> {
        let _producing = self.producing.lock();
        self.execute_locked(ancestors, header, transactions)
    }

    /// Commits `block`, whose parent must be the committed head. Returns
    /// [`CommitOutcome::AlreadyCommitted`] without writing when the block is already
    /// canonical; an error when another block is canonical at its height (a conflicting
    /// finalized block: a bug or a safety violation) or when its parent is not the head
    /// (a gap: its ancestors must be committed first).
    pub fn commit_executed(&self, block: &ExecutedBlock) -> Result<CommitOutcome, NodeError> {
        let _producing = self.producing.lock();
        self.commit_locked(block)
    }

    /// The ancestors still pending: `ancestors` without a prefix that is already
    /// canonical, checked to chain from the committed head.
    fn pending_ancestors<'a>(
        &self,
        head: &Head,
        ancestors: &'a [Arc<ExecutedBlock>],
    ) -> Result<&'a [Arc<ExecutedBlock>], NodeError> {
        let mut committed = 0;
        for block in ancestors {
            if block.number() > head.header.number {
                break;
            }
            match self.store.hash_by_number(block.number())? {
                Some(hash) if hash == block.hash() => committed += 1,
                other => {
                    return Err(NodeError::ConflictingBlock {
                        number: block.number(),
                        committed: other.unwrap_or_default(),
                        offered: block.hash(),
                    });
                }
            }
        }
        let (stripped, pending) = ancestors.split_at(committed);
        if let Some(last) = stripped.last()
            && pending.is_empty()
            && last.hash() != head.hash
        {
            // Building on a committed block below the head would fork the chain.
            return Err(NodeError::NotOnHead {
                number: last.number().saturating_add(1),
                parent: last.hash(),
                expected: head.hash,
            });
        }
        let mut parent = (head.hash, head.header.number);
        for block in pending {
            if block.parent_hash() != parent.0 || Some(block.number()) != parent.1.checked_add(1) {
                return Err(NodeError::NotOnHead {
                    number: block.number(),
                    parent: block.parent_hash(),
                    expected: parent.0,
                });
            }
            parent = (block.hash(), block.number());
        }
        Ok(pending)
    }

    /// The block context on top of `parent` at `timestamp`.
    pub(crate) fn context_on(
        &self,
        parent: &Header,
        parent_hash: B256,
        timestamp: u64,
    ) -> BlockContext {
        BlockContext {
            chain_id: self.spec.chain_id,
            number: parent.number.saturating_add(1),
            timestamp,
            beneficiary: self.beneficiary,
            base_fee: crate::next_base_fee(parent),
            gas_limit: self.spec.gas_limit,
            prevrandao: alloy_primitives::keccak256(parent_hash),
        }
    }

    /// The state root after `own` on top of `pending` (the committed head's state plus
    /// the ancestors'), with the trie nodes to commit when there are no ancestors.
    fn pending_state_root(
        &self,
        head: &Head,
        pending: PendingState,
        own: &StateChanges,
    ) -> Result<(B256, Option<PreparedState>), NodeError> {
        if pending.hashes.is_empty() {
            let (root, prepared) = self.store.compute_state_root(head.header.state_root, own)?;
            return Ok((root, Some(prepared)));
        }
        let mut merged = pending.into_changes();
        merge_changes(&mut merged, own);
        let (root, _) = self
            .store
            .compute_state_root(head.header.state_root, &merged)?;
        Ok((root, None))
    }

    /// [`Chain::build_block`] with the production lock held; `None` when
    /// `allow_empty` is false and nothing was included (nothing is built then).
    pub(crate) fn build_locked(
        &self,
        ancestors: &[Arc<ExecutedBlock>],
        timestamp: u64,
        allow_empty: bool,
    ) -> Result<Option<Arc<ExecutedBlock>>, NodeError> {
        let started = Instant::now();
        let head = self.head();
        let latest = self.latest_state();
        let ancestors = self.pending_ancestors(&head, ancestors)?;
        let (parent, parent_hash) = match ancestors.last() {
            Some(block) => (block.header(), block.hash()),
            None => (&head.header, head.hash),
        };
        let ctx = self.context_on(parent, parent_hash, timestamp.max(parent.timestamp));
        let pending = PendingState::new(latest.clone(), ancestors);
        let candidates = self
            .mempool
            .lock()
            .best_after(ctx.base_fee, ctx.gas_limit, |sender| {
                pending.pending_nonce(sender)
            });
        let mut builder = BlockBuilder::new(&pending, &ctx);
        let mut skipped: BTreeSet<Address> = BTreeSet::new();
        let mut invalid = Vec::new();
        let mut bytes = 0usize;
        for pooled in candidates {
            if builder.gas_left() < 21_000 {
                break;
            }
            if skipped.contains(&pooled.sender)
                || in_pending_ancestor(&pending, &*latest, pooled.sender, pooled.tx.nonce())?
            {
                continue;
            }
            // Blocks are bounded in bytes as well as gas, so that every block fits a
            // consensus message; the sender's later transactions wait for the next.
            let size = pooled.tx.encode_2718_len();
            if bytes + size > MAX_BLOCK_TRANSACTION_BYTES {
                skipped.insert(pooled.sender);
                continue;
            }
            match builder.push(pooled.sender, (*pooled.tx).clone())? {
                PushOutcome::Included => bytes += size,
                // A gap on top of the ancestors: it may become executable; kept.
                PushOutcome::Invalid(InvalidTransaction::NonceTooHigh { .. })
                | PushOutcome::DoesNotFit => {
                    skipped.insert(pooled.sender);
                }
                PushOutcome::Invalid(reason) => {
                    tracing::debug!(tx = %pooled.hash, %reason, "dropping invalid transaction");
                    invalid.push(pooled.hash);
                    skipped.insert(pooled.sender);
                }
            }
        }
        if !invalid.is_empty() {
            let mut pool = self.mempool.lock();
            for hash in &invalid {
                pool.remove_with_descendants(hash);
            }
            self.metrics.mempool_size.set(pool.len() as i64);
        }
        if builder.is_empty() && !allow_empty {
            return Ok(None);
        }
        let executed = builder.finish()?;
        if let Some(e) = &executed.system_error {
            tracing::error!(
                number = ctx.number,
                "end-of-block module work reverted and was skipped for this block: {e}"
            );
        }
        let executed_at = Instant::now();
        let (state_root, prepared) = self.pending_state_root(&head, pending, &executed.changes)?;
        let txs: Vec<&TxEnvelope> = executed.transactions.iter().map(|(_, tx)| tx).collect();
        let sealed = Sealed {
            transactions_root: calculate_transaction_root(&txs),
            receipts_root: calculate_receipt_root(&executed.receipts),
            logs_bloom: logs_bloom(&executed.receipts, &executed.system_logs),
            gas_used: executed.gas_used,
            state_root,
        };
        let header = seal_header(&ctx, parent_hash, &sealed);
        Ok(Some(Arc::new(ExecutedBlock::sealed(
            header,
            executed,
            prepared,
            started,
            executed_at,
        ))))
    }

    /// [`Chain::execute_block`] with the production lock held.
    fn execute_locked(
        &self,
        ancestors: &[Arc<ExecutedBlock>],
        header: Header,
        transactions: Vec<TxEnvelope>,
    ) -> Result<Arc<ExecutedBlock>, BlockError> {
        let started = Instant::now();
        let head = self.head();
        let latest = self.latest_state();
        let ancestors = self.pending_ancestors(&head, ancestors)?;
        let (parent, parent_hash) = match ancestors.last() {
            Some(block) => (block.header(), block.hash()),
            None => (&head.header, head.hash),
        };

        // What needs no execution first.
        let bytes: usize = transactions.iter().map(|tx| tx.encode_2718_len()).sum();
        if bytes > MAX_BLOCK_TRANSACTION_BYTES {
            return Err(BlockError::TooLarge {
                bytes,
                max: MAX_BLOCK_TRANSACTION_BYTES,
            });
        }
        if header.parent_hash != parent_hash {
            return Err(BlockError::BadParent {
                expected: parent_hash,
                got: header.parent_hash,
            });
        }
        let number = parent.number.saturating_add(1);
        if header.number != number {
            return Err(BlockError::BadNumber {
                expected: number,
                got: header.number,
            });
        }
        if header.timestamp < parent.timestamp {
            return Err(BlockError::BadTimestamp {
                parent: parent.timestamp,
                got: header.timestamp,
            });
        }
        let ctx = self.context_on(parent, parent_hash, header.timestamp);
        if header.base_fee_per_gas != Some(ctx.base_fee) {
            return Err(BlockError::BadBaseFee {
                expected: ctx.base_fee,
                got: header.base_fee_per_gas,
            });
        }
        if header.gas_limit != ctx.gas_limit {
            return Err(BlockError::BadGasLimit {
                expected: ctx.gas_limit,
                got: header.gas_limit,
            });
        }
        if header.beneficiary != ctx.beneficiary {
            return Err(BlockError::BadBeneficiary {
                expected: ctx.beneficiary,
                got: header.beneficiary,
            });
        }
        if header.mix_hash != ctx.prevrandao {
            return Err(BlockError::BadPrevrandao {
                expected: ctx.prevrandao,
                got: header.mix_hash,
            });
        }
        check_fixed_fields(&header)?;
        let transactions_root = calculate_transaction_root(&transactions);
        if header.transactions_root != transactions_root {
            return Err(BlockError::TransactionsRootMismatch {
                expected: transactions_root,
                got: header.transactions_root,
            });
        }
        let chain_id = self.spec.chain_id;
        // A transaction this node pooled (a validator's pool holds most of a block's,
        // gossiped to it) has its sender recovered already: the hash covers the
        // signature, so the same hash is the same signer.
        let pooled: Vec<Option<Address>> = {
            let pool = self.mempool.lock();
            transactions
                .iter()
                .map(|tx| pool.get(tx.tx_hash()).map(|p| p.sender))
                .collect()
        };
        let senders: Vec<Result<Address, &'static str>> = transactions
            .par_iter()
            .zip(pooled)
            .map(|(tx, pooled)| {
                if tx.is_eip4844() {
                    return Err("blob transactions are not supported");
                }
                if tx.chain_id() != Some(chain_id) {
                    return Err("missing or wrong chain id");
                }
                match pooled {
                    Some(sender) => Ok(sender),
                    None => tx.recover_signer().map_err(|_| "invalid signature"),
                }
            })
            .collect();

        // Execution.
        let pending = PendingState::new(latest, ancestors);
        let mut builder = BlockBuilder::new(&pending, &ctx);
        for (index, (sender, tx)) in senders.into_iter().zip(transactions).enumerate() {
            let sender = sender.map_err(|reason| BlockError::InvalidTransaction {
                index,
                reason: reason.into(),
            })?;
            let reason = match builder.push(sender, tx).map_err(NodeError::from)? {
                PushOutcome::Included => continue,
                PushOutcome::Invalid(reason) => reason.to_string(),
                PushOutcome::DoesNotFit => "gas limit above what is left of the block".into(),
            };
            return Err(BlockError::InvalidTransaction { index, reason });
        }
        let executed = builder.finish().map_err(NodeError::from)?;
        if let Some(e) = &executed.system_error {
            tracing::error!(
                number = ctx.number,
                "end-of-block module work reverted and was skipped for this block: {e}"
            );
        }
        let executed_at = Instant::now();

        // What execution produced, cheapest first.
        if header.gas_used != executed.gas_used {
            return Err(BlockError::GasUsedMismatch {
                expected: executed.gas_used,
                got: header.gas_used,
            });
        }
        let receipts_root = calculate_receipt_root(&executed.receipts);
        if header.receipts_root != receipts_root {
            return Err(BlockError::ReceiptsRootMismatch {
                expected: receipts_root,
                got: header.receipts_root,
            });
        }
        let bloom = logs_bloom(&executed.receipts, &executed.system_logs);
        if header.logs_bloom != bloom {
            return Err(BlockError::LogsBloomMismatch);
        }
        let (state_root, prepared) = self.pending_state_root(&head, pending, &executed.changes)?;
        if header.state_root != state_root {
            return Err(BlockError::StateRootMismatch {
                expected: state_root,
                got: header.state_root,
            });
        }
        // Every field was checked above; this keeps it so if the header grows one.
        let sealed = seal_header(
            &ctx,
            parent_hash,
            &Sealed {
                transactions_root,
                receipts_root,
                logs_bloom: bloom,
                gas_used: executed.gas_used,
                state_root,
            },
        );
        if sealed != header {
            return Err(BlockError::BadHeaderField("header"));
        }
        Ok(Arc::new(ExecutedBlock::sealed(
            header,
            executed,
            prepared,
            started,
            executed_at,
        )))
    }

    /// [`Chain::commit_executed`] with the production lock held.
    pub(crate) fn commit_locked(&self, block: &ExecutedBlock) -> Result<CommitOutcome, NodeError> {
        let head = self.head();
        let number = block.number();
        if number <= head.header.number {
            return match self.store.hash_by_number(number)? {
                Some(hash) if hash == block.hash() => Ok(CommitOutcome::AlreadyCommitted),
                other => Err(NodeError::ConflictingBlock {
                    number,
                    committed: other.unwrap_or_default(),
                    offered: block.hash(),
                }),
            };
        }
        if block.parent_hash() != head.hash || Some(number) != head.header.number.checked_add(1) {
            return Err(NodeError::NotOnHead {
                number,
                parent: block.parent_hash(),
                expected: head.hash,
            });
        }
        let commit_started = Instant::now();
        let prepared = match block.prepared.lock().take() {
            Some(prepared) => prepared,
            None => {
                let (root, prepared) = self
                    .store
                    .compute_state_root(head.header.state_root, &block.changes)?;
                if root != block.header().state_root {
                    return Err(NodeError::Internal(format!(
                        "block {number}: its state root {} recomputed on its parent is {root}",
                        block.header().state_root
                    )));
                }
                prepared
            }
        };
        let rooted_at = Instant::now();
        self.store.commit_block(
            &block.block,
            &block.receipts,
            &block.system_logs,
            &block.changes,
            prepared,
        )?;
        let committed_at = Instant::now();

        let announced = Arc::new(NewBlock {
            logs: index_logs(&block.block, &block.receipts, &block.system_logs),
            header: block.header().clone(),
            hash: block.hash(),
        });
        // Cached before the head moves, so the first receipt lookups find it decoded.
        self.cache_block(Arc::new(BlockWithReceipts::new(
            block.block.clone(),
            block.receipts.clone(),
        )));
        let latest = Arc::new(self.store.latest()?);
        {
            // Head and its state change together.
            let mut head = self.head.write();
            *self.latest.write() = latest;
            *head = Head {
                header: block.header().clone(),
                hash: block.hash(),
            };
        }
        self.after_block(&block.block, &block.changes);

        let state_root_time = block.state_root_time + (rooted_at - commit_started);
        let commit_time = committed_at - rooted_at;
        let m = &self.metrics;
        m.height.set(number as i64);
        m.transactions.inc_by(block.block.transactions.len() as u64);
        m.block_execution_seconds
            .observe(block.execution_time.as_secs_f64());
        m.block_commit_seconds
            .observe((state_root_time + commit_time).as_secs_f64());
        // Empty blocks (the dev heartbeat, interval sealing) are logged only with -v.
        if !block.block.transactions.is_empty() || tracing::enabled!(tracing::Level::DEBUG) {
            tracing::info!(
                number,
                txs = block.block.transactions.len(),
                gas = block.header().gas_used,
                exec_ms = block.execution_time.as_millis() as u64,
                root_ms = state_root_time.as_millis() as u64,
                commit_ms = commit_time.as_millis() as u64,
                "block committed"
            );
        }
        let _ = self.new_blocks.send(announced.clone());
        Ok(CommitOutcome::Committed(announced))
    }
}

#[cfg(test)]
mod tests;
