//! The transaction pool: per-sender nonce queues, fee-priority selection, replacement
//! by fee bump, and a size bound with lowest-fee eviction. Errors use geth's words so
//! that wallets and tools recognise them.

use std::{
    collections::{BTreeMap, BinaryHeap, HashMap, btree_map::Entry},
    sync::Arc,
};

use alloy_consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Address, B256};

/// Why a transaction was not accepted into the pool.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The raw bytes did not decode as a transaction.
    #[error("rlp: {0}")]
    Decode(String),
    /// The signature does not recover to a sender.
    #[error("invalid sender")]
    InvalidSender,
    /// Larger than the 128 KiB limit.
    #[error("oversized data")]
    Oversized,
    /// Blob or other unsupported transaction types.
    #[error("transaction type not supported")]
    TypeNotSupported,
    /// A chain id other than this chain's.
    #[error("invalid chain id")]
    InvalidChainId,
    /// A legacy transaction without EIP-155 replay protection.
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    Unprotected,
    /// The nonce is below the account's.
    #[error("nonce too low")]
    NonceTooLow,
    /// Balance below gas limit × fee cap + value.
    #[error("insufficient funds for gas * price + value")]
    InsufficientFunds,
    /// Same sender and nonce, fee not bumped by at least 10%.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// Already in the pool.
    #[error("already known")]
    AlreadyKnown,
    /// Gas limit below the intrinsic gas.
    #[error("intrinsic gas too low")]
    IntrinsicGasTooLow,
    /// Gas limit above the block gas limit.
    #[error("exceeds block gas limit")]
    ExceedsBlockGasLimit,
    /// Gas limit above the per-transaction cap (EIP-7825).
    #[error("transaction gas limit too high (cap: {0})")]
    GasLimitTooHigh(u64),
    /// Priority fee above the fee cap.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// Fee cap below the current base fee.
    #[error("max fee per gas less than block base fee")]
    FeeCapTooLow,
    /// The pool is full of better-paying transactions.
    #[error("txpool is full")]
    PoolFull,
}

/// A validated transaction waiting in the pool.
#[derive(Clone, Debug)]
pub struct PooledTx {
    /// Transaction hash.
    pub hash: B256,
    /// Recovered sender.
    pub sender: Address,
    /// The signed transaction.
    pub tx: Arc<TxEnvelope>,
}

impl PooledTx {
    fn nonce(&self) -> u64 {
        self.tx.nonce()
    }
    fn max_fee(&self) -> u128 {
        self.tx.max_fee_per_gas()
    }
    fn tip_cap(&self) -> u128 {
        self.tx
            .max_priority_fee_per_gas()
            .unwrap_or_else(|| self.tx.max_fee_per_gas())
    }
    /// Priority fee actually paid at `base_fee`.
    fn effective_tip(&self, base_fee: u64) -> u128 {
        self.tip_cap()
            .min(self.max_fee().saturating_sub(base_fee as u128))
    }
}

#[derive(Default, Debug)]
struct SenderQueue {
    /// The account's nonce in the latest state, as the pool last saw it.
    state_nonce: u64,
    txs: BTreeMap<u64, PooledTx>,
}

impl SenderQueue {
    /// Number of transactions executable now (contiguous from the state nonce).
    fn pending_len(&self) -> usize {
        let mut next = self.state_nonce;
        for nonce in self.txs.keys() {
            if *nonce != next {
                break;
            }
            next += 1;
        }
        (next - self.state_nonce) as usize
    }
}

/// Pool counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Executable now.
    pub pending: usize,
    /// Waiting for a nonce gap to fill.
    pub queued: usize,
}

/// The transaction pool.
#[derive(Debug)]
pub struct Mempool {
    capacity: usize,
    senders: BTreeMap<Address, SenderQueue>,
    by_hash: HashMap<B256, (Address, u64)>,
}

impl Mempool {
    /// An empty pool holding at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            senders: BTreeMap::new(),
            by_hash: HashMap::new(),
        }
    }

    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Whether `hash` is in the pool.
    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The pooled transaction with hash `hash`.
    pub fn get(&self, hash: &B256) -> Option<&PooledTx> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.senders.get(sender)?.txs.get(nonce)
    }

    /// Pending and queued counts.
    pub fn status(&self) -> PoolStatus {
        let pending: usize = self.senders.values().map(SenderQueue::pending_len).sum();
        PoolStatus {
            pending,
            queued: self.len() - pending,
        }
    }

    /// Whether any transaction is executable now.
    pub fn has_pending(&self) -> bool {
        self.senders
            .values()
            .any(|q| q.txs.contains_key(&q.state_nonce))
    }

    /// The next nonce for `sender` counting its executable pooled transactions, or
    /// `None` when the pool holds nothing executable for it.
    pub fn pending_nonce(&self, sender: &Address) -> Option<u64> {
        let queue = self.senders.get(sender)?;
        let pending = queue.pending_len() as u64;
        (pending > 0).then(|| queue.state_nonce + pending)
    }

    /// Adds a transaction already checked against state (`state_nonce` is the
    /// sender's nonce in the latest state). Returns the hash of a transaction it
    /// replaced, if any.
    pub fn insert(&mut self, tx: PooledTx, state_nonce: u64) -> Result<Option<B256>, PoolError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(PoolError::AlreadyKnown);
        }
        if tx.nonce() < state_nonce {
            return Err(PoolError::NonceTooLow);
        }
        let replacing = self
            .senders
            .get(&tx.sender)
            .and_then(|q| q.txs.get(&tx.nonce()))
            .map(|old| (old.hash, old.max_fee(), old.tip_cap()));
        if let Some((_, old_fee, old_tip)) = replacing {
            // Both the fee cap and the tip must rise by at least 10%.
            if tx.max_fee() * 10 < old_fee * 11 || tx.tip_cap() * 10 < old_tip * 11 {
                return Err(PoolError::ReplacementUnderpriced);
            }
        } else if self.len() >= self.capacity {
            self.evict_for(&tx)?;
        }
        let queue = self.senders.entry(tx.sender).or_default();
        queue.state_nonce = state_nonce;
        let replaced = replacing.map(|(hash, _, _)| hash);
        if let Some(old) = replaced {
            self.by_hash.remove(&old);
        }
        self.by_hash.insert(tx.hash, (tx.sender, tx.nonce()));
        queue.txs.insert(tx.nonce(), tx);
        Ok(replaced)
    }

    /// Makes room for `incoming` by evicting the lowest-paying transaction, which is
    /// always the last nonce of some sender (so no gap is created).
    fn evict_for(&mut self, incoming: &PooledTx) -> Result<(), PoolError> {
        let victim = self
            .senders
            .iter()
            .filter_map(|(sender, q)| {
                q.txs
                    .last_key_value()
                    .map(|(nonce, tx)| (tx.max_fee(), *sender, *nonce))
            })
            .min();
        match victim {
            Some((fee, sender, nonce)) if fee < incoming.max_fee() => {
                self.remove_at(&sender, nonce);
                Ok(())
            }
            _ => Err(PoolError::PoolFull),
        }
    }

    fn remove_at(&mut self, sender: &Address, nonce: u64) -> Option<PooledTx> {
        let queue = self.senders.get_mut(sender)?;
        let tx = queue.txs.remove(&nonce)?;
        self.by_hash.remove(&tx.hash);
        if queue.txs.is_empty() {
            self.senders.remove(sender);
        }
        Some(tx)
    }

    /// Removes a transaction and every later one from the same sender (used when it
    /// turned out invalid at execution).
    pub fn remove_with_descendants(&mut self, hash: &B256) {
        let Some((sender, nonce)) = self.by_hash.get(hash).copied() else {
            return;
        };
        if let Some(queue) = self.senders.get(&sender) {
            let doomed: Vec<u64> = queue.txs.range(nonce..).map(|(n, _)| *n).collect();
            for n in doomed {
                self.remove_at(&sender, n);
            }
        }
    }

    /// Updates the pool after a block: `nonces` are the new state nonces of the
    /// senders whose transactions were included. Drops what is now stale.
    pub fn on_block(&mut self, nonces: &BTreeMap<Address, u64>) {
        for (sender, new_nonce) in nonces {
            let Entry::Occupied(mut entry) = self.senders.entry(*sender) else {
                continue;
            };
            let queue = entry.get_mut();
            queue.state_nonce = *new_nonce;
            let kept = queue.txs.split_off(new_nonce);
            for tx in std::mem::replace(&mut queue.txs, kept).into_values() {
                self.by_hash.remove(&tx.hash);
            }
            if queue.txs.is_empty() {
                entry.remove();
            }
        }
    }

    /// Executable transactions in the order a block should take them: highest
    /// effective tip first across senders, nonce order within a sender; as many as
    /// `gas_limit` can hold (by their gas limits), plus a margin for ones that turn out
    /// invalid.
    pub fn best(&self, base_fee: u64, gas_limit: u64) -> Vec<PooledTx> {
        self.best_after(base_fee, gas_limit, |_| None)
    }

    /// Like [`Mempool::best`], but each sender's transactions start at
    /// `pending_nonce(sender)` when that is above the nonce the pool last saw for it:
    /// a block built on top of blocks not yet committed skips what they included.
    pub fn best_after(
        &self,
        base_fee: u64,
        gas_limit: u64,
        pending_nonce: impl Fn(&Address) -> Option<u64>,
    ) -> Vec<PooledTx> {
        let budget = gas_limit.saturating_add(gas_limit / 4);
        let mut gas = 0u64;
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        struct Head {
            tip: u128,
            // Earlier senders first on ties, deterministically.
            sender: std::cmp::Reverse<Address>,
            nonce: u64,
        }
        let mut heap = BinaryHeap::new();
        for (sender, queue) in &self.senders {
            let first = pending_nonce(sender)
                .map_or(queue.state_nonce, |pending| pending.max(queue.state_nonce));
            if let Some(tx) = queue.txs.get(&first)
                && tx.max_fee() >= base_fee as u128
            {
                heap.push(Head {
                    tip: tx.effective_tip(base_fee),
                    sender: std::cmp::Reverse(*sender),
                    nonce: first,
                });
            }
        }
        let mut out = Vec::new();
        while let Some(head) = heap.pop() {
            let sender = head.sender.0;
            let Some(queue) = self.senders.get(&sender) else {
                continue;
            };
            let Some(tx) = queue.txs.get(&head.nonce) else {
                continue;
            };
            gas = gas.saturating_add(tx.tx.gas_limit());
            if gas > budget {
                break;
            }
            out.push(tx.clone());
            if let Some(next) = queue.txs.get(&(head.nonce + 1))
                && next.max_fee() >= base_fee as u128
            {
                heap.push(Head {
                    tip: next.effective_tip(base_fee),
                    sender: head.sender,
                    nonce: head.nonce + 1,
                });
            }
        }
        out
    }

    /// Every pooled transaction, grouped as `txpool_content` reports them.
    pub fn content(&self) -> (Vec<PooledTx>, Vec<PooledTx>) {
        let mut pending = Vec::new();
        let mut queued = Vec::new();
        for queue in self.senders.values() {
            let executable = queue.pending_len();
            for (i, tx) in queue.txs.values().enumerate() {
                if i < executable {
                    pending.push(tx.clone())
                } else {
                    queued.push(tx.clone())
                }
            }
        }
        (pending, queued)
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{Signed, TxEip1559};
    use alloy_primitives::{Signature, TxKind, U256};

    use super::*;

    fn tx(sender: u8, nonce: u64, fee: u128, tip: u128) -> PooledTx {
        let inner = TxEip1559 {
            chain_id: 7337,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::ZERO),
            value: U256::ZERO,
            ..Default::default()
        };
        let hash = alloy_primitives::keccak256([sender, nonce as u8, fee as u8, tip as u8]);
        let signed = Signed::new_unchecked(inner, Signature::test_signature(), hash);
        PooledTx {
            hash,
            sender: Address::repeat_byte(sender),
            tx: Arc::new(signed.into()),
        }
    }

    #[test]
    fn gapped_transactions_are_queued_until_the_gap_fills() {
        let mut pool = Mempool::new(100);
        pool.insert(tx(1, 2, 10, 1), 0).unwrap();
        assert_eq!(
            pool.status(),
            PoolStatus {
                pending: 0,
                queued: 1
            }
        );
        assert!(pool.best(1, u64::MAX).is_empty());
        pool.insert(tx(1, 0, 10, 1), 0).unwrap();
        pool.insert(tx(1, 1, 10, 1), 0).unwrap();
        assert_eq!(
            pool.status(),
            PoolStatus {
                pending: 3,
                queued: 0
            }
        );
        let order: Vec<u64> = pool
            .best(1, u64::MAX)
            .iter()
            .map(|t| t.tx.nonce())
            .collect();
        assert_eq!(order, vec![0, 1, 2]);
        assert_eq!(pool.pending_nonce(&Address::repeat_byte(1)), Some(3));
    }

    #[test]
    fn best_orders_by_effective_tip_across_senders() {
        let mut pool = Mempool::new(100);
        pool.insert(tx(1, 0, 100, 1), 0).unwrap();
        pool.insert(tx(2, 0, 100, 5), 0).unwrap();
        pool.insert(tx(3, 0, 100, 3), 0).unwrap();
        let senders: Vec<u8> = pool
            .best(10, u64::MAX)
            .iter()
            .map(|t| t.sender.0[0])
            .collect();
        assert_eq!(senders, vec![2, 3, 1]);
        // A fee cap below the base fee is not executable.
        assert!(pool.best(101, u64::MAX).is_empty());
    }

    #[test]
    fn replacement_needs_a_ten_percent_bump() {
        let mut pool = Mempool::new(100);
        pool.insert(tx(1, 0, 100, 10), 0).unwrap();
        assert_eq!(
            pool.insert(tx(1, 0, 109, 11), 0),
            Err(PoolError::ReplacementUnderpriced)
        );
        assert_eq!(
            pool.insert(tx(1, 0, 110, 10), 0),
            Err(PoolError::ReplacementUnderpriced)
        );
        let replaced = pool.insert(tx(1, 0, 110, 11), 0).unwrap();
        assert!(replaced.is_some());
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn duplicates_and_stale_nonces_are_refused() {
        let mut pool = Mempool::new(100);
        pool.insert(tx(1, 5, 100, 10), 5).unwrap();
        assert_eq!(
            pool.insert(tx(1, 5, 100, 10), 5),
            Err(PoolError::AlreadyKnown)
        );
        assert_eq!(
            pool.insert(tx(1, 4, 100, 10), 5),
            Err(PoolError::NonceTooLow)
        );
    }

    #[test]
    fn a_full_pool_evicts_the_lowest_fee_or_refuses() {
        let mut pool = Mempool::new(2);
        pool.insert(tx(1, 0, 50, 1), 0).unwrap();
        pool.insert(tx(2, 0, 80, 1), 0).unwrap();
        assert_eq!(pool.insert(tx(3, 0, 40, 1), 0), Err(PoolError::PoolFull));
        pool.insert(tx(3, 0, 90, 1), 0).unwrap();
        assert_eq!(pool.len(), 2);
        assert!(!pool.senders.contains_key(&Address::repeat_byte(1)));
    }

    #[test]
    fn best_after_starts_at_the_pending_nonce() {
        let mut pool = Mempool::new(100);
        for n in 0..4 {
            pool.insert(tx(1, n, 100, 1), 0).unwrap();
        }
        pool.insert(tx(2, 0, 100, 1), 0).unwrap();
        let pending = |sender: &Address| (*sender == Address::repeat_byte(1)).then_some(2);
        let picked: Vec<(u8, u64)> = pool
            .best_after(10, u64::MAX, pending)
            .iter()
            .map(|t| (t.sender.0[0], t.tx.nonce()))
            .collect();
        assert_eq!(picked, vec![(1, 2), (1, 3), (2, 0)]);
        // Nothing is removed: the skipped ones are only included in pending blocks.
        assert_eq!(pool.len(), 5);
        // A pending nonce past the queue's end leaves nothing from that sender.
        assert_eq!(pool.best_after(10, u64::MAX, |_| Some(9)).len(), 0);
    }

    #[test]
    fn on_block_drops_included_transactions() {
        let mut pool = Mempool::new(100);
        for n in 0..4 {
            pool.insert(tx(1, n, 100, 1), 0).unwrap();
        }
        pool.on_block(&BTreeMap::from([(Address::repeat_byte(1), 3)]));
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.status().pending, 1);
    }
}
