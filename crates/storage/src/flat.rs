//! Write-back for the flat tables (accounts, storage slots, transaction index).
//!
//! Those tables are keyed by random hashes and addresses, so a block's inserts land on
//! pages all over each B-tree: written per block, a block of a few thousand transfers
//! dirtied (and flushed) most of their pages. Instead each block's flat changes are
//! kept in memory as a [`BlockDiff`] and journaled in one sequential record; every
//! [`FLUSH_BLOCKS`] blocks (or [`FLUSH_ENTRIES`] entries) the pending diffs are merged
//! and written in key order, in the same durable transaction as that block. After a
//! crash the store reloads the journal (and the transaction index from the bodies), so
//! nothing committed is lost. Reads consult the pending diffs, newest first, before the
//! tables; the trie, which is the authenticated state, is written every block.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use alloy_consensus::TxEnvelope;
use alloy_primitives::{Address, B256, U256};
use alloy_trie::TrieAccount;
use noesis_primitives::StateChanges;

use crate::StoreError;

/// Flush the pending diffs into the tables once this many blocks are pending.
pub(crate) const FLUSH_BLOCKS: usize = 16;
/// ... or once they hold this many entries (accounts, slots and transactions).
pub(crate) const FLUSH_ENTRIES: usize = 250_000;

/// One block's changes to the flat tables.
#[derive(Debug, Default)]
pub(crate) struct BlockDiff {
    /// New account records; `None` deletes the account.
    pub accounts: HashMap<Address, Option<TrieAccount>>,
    /// Storage changes per account.
    pub storage: HashMap<Address, SlotDiff>,
    /// Transactions of the block by hash, with their index.
    pub txs: HashMap<B256, u32>,
}

/// An account's storage changes in one block.
#[derive(Debug, Default, Clone)]
pub(crate) struct SlotDiff {
    /// Every slot was cleared first (account created or destroyed).
    pub reset: bool,
    /// New values; zero deletes the slot.
    pub slots: HashMap<U256, U256>,
}

impl BlockDiff {
    /// The diff of a block from its account records, state changes and transactions.
    pub fn new(
        accounts: &[(Address, Option<TrieAccount>)],
        changes: &StateChanges,
        transactions: &[(Address, TxEnvelope)],
    ) -> Self {
        let mut storage = HashMap::new();
        for (address, change) in &changes.accounts {
            let reset = change.storage_reset || change.account.is_none();
            let slots: HashMap<U256, U256> = if change.account.is_none() {
                HashMap::new()
            } else {
                change.storage.iter().map(|(k, v)| (*k, *v)).collect()
            };
            if reset || !slots.is_empty() {
                storage.insert(*address, SlotDiff { reset, slots });
            }
        }
        Self {
            accounts: accounts.iter().copied().collect(),
            storage,
            txs: transaction_index(transactions),
        }
    }

    fn entries(&self) -> usize {
        self.accounts.len()
            + self.txs.len()
            + self
                .storage
                .values()
                .map(|s| s.slots.len() + 1)
                .sum::<usize>()
    }

    /// The journal record (the transaction index is rebuilt from the body instead).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.accounts.len() * 120);
        let mut accounts: Vec<_> = self.accounts.iter().collect();
        accounts.sort_unstable_by_key(|(address, _)| **address);
        out.extend_from_slice(&(accounts.len() as u32).to_be_bytes());
        for (address, account) in accounts {
            out.extend_from_slice(address.as_slice());
            match account {
                None => out.push(0),
                Some(account) => {
                    out.push(1);
                    out.extend_from_slice(&account.nonce.to_be_bytes());
                    out.extend_from_slice(&account.balance.to_be_bytes::<32>());
                    out.extend_from_slice(account.storage_root.as_slice());
                    out.extend_from_slice(account.code_hash.as_slice());
                }
            }
        }
        let mut storage: Vec<_> = self.storage.iter().collect();
        storage.sort_unstable_by_key(|(address, _)| **address);
        out.extend_from_slice(&(storage.len() as u32).to_be_bytes());
        for (address, diff) in storage {
            out.extend_from_slice(address.as_slice());
            out.push(u8::from(diff.reset));
            let mut slots: Vec<_> = diff.slots.iter().collect();
            slots.sort_unstable();
            out.extend_from_slice(&(slots.len() as u32).to_be_bytes());
            for (slot, value) in slots {
                out.extend_from_slice(&slot.to_be_bytes::<32>());
                out.extend_from_slice(&value.to_be_bytes::<32>());
            }
        }
        out
    }

    /// Decodes a journal record; `transactions` is the block's body.
    pub fn decode(raw: &[u8], transactions: &[(Address, TxEnvelope)]) -> Result<Self, StoreError> {
        let mut r = Reader(raw);
        let mut accounts = HashMap::new();
        for _ in 0..r.u32()? {
            let address = Address::from_slice(r.take(20)?);
            let account = match r.take(1)?[0] {
                0 => None,
                1 => Some(TrieAccount {
                    nonce: u64::from_be_bytes(r.array()?),
                    balance: U256::from_be_bytes(r.array::<32>()?),
                    storage_root: B256::from(r.array::<32>()?),
                    code_hash: B256::from(r.array::<32>()?),
                }),
                _ => return Err(bad_record()),
            };
            accounts.insert(address, account);
        }
        let mut storage = HashMap::new();
        for _ in 0..r.u32()? {
            let address = Address::from_slice(r.take(20)?);
            let reset = match r.take(1)?[0] {
                0 => false,
                1 => true,
                _ => return Err(bad_record()),
            };
            let mut slots = HashMap::new();
            for _ in 0..r.u32()? {
                let slot = U256::from_be_bytes(r.array::<32>()?);
                slots.insert(slot, U256::from_be_bytes(r.array::<32>()?));
            }
            storage.insert(address, SlotDiff { reset, slots });
        }
        if !r.0.is_empty() {
            return Err(bad_record());
        }
        Ok(Self {
            accounts,
            storage,
            txs: transaction_index(transactions),
        })
    }
}

fn transaction_index(transactions: &[(Address, TxEnvelope)]) -> HashMap<B256, u32> {
    transactions
        .iter()
        .enumerate()
        .map(|(index, (_, tx))| (*tx.tx_hash(), index as u32))
        .collect()
}

fn bad_record() -> StoreError {
    StoreError::Corrupt("bad flat-state journal record".into())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or_else(bad_record)?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        self.take(N)?.try_into().map_err(|_| bad_record())
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
}

/// The diffs of the blocks `next..next + diffs.len()`, not yet in the flat tables.
#[derive(Debug, Default, Clone)]
pub(crate) struct Pending {
    /// The first block whose flat changes are not in the tables.
    pub next: u64,
    /// Oldest first.
    pub diffs: Vec<Arc<BlockDiff>>,
}

/// A lookup in the pending diffs: decided there, or to be read from the tables.
pub(crate) enum Found<T> {
    Here(T),
    InTables,
}

impl Pending {
    /// The number the next committed block must have.
    pub fn next_block(&self) -> u64 {
        self.next + self.diffs.len() as u64
    }

    /// Whether adding `diff` calls for a flush.
    pub fn should_flush(&self, diff: &BlockDiff) -> bool {
        self.diffs.len() + 1 >= FLUSH_BLOCKS
            || self.diffs.iter().map(|d| d.entries()).sum::<usize>() + diff.entries()
                >= FLUSH_ENTRIES
    }

    /// The pending diffs and then `diff`, merged in key order for writing.
    pub fn merged(&self, diff: &BlockDiff) -> Merged {
        let mut merged = Merged::default();
        for (offset, d) in self.diffs.iter().map(|d| &**d).chain([diff]).enumerate() {
            let number = self.next + offset as u64;
            merged
                .accounts
                .extend(d.accounts.iter().map(|(a, v)| (*a, *v)));
            for (address, slots) in &d.storage {
                let entry = merged.storage.entry(*address).or_default();
                if slots.reset {
                    entry.0 = true;
                    entry.1.clear();
                }
                entry.1.extend(slots.slots.iter().map(|(k, v)| (*k, *v)));
            }
            merged
                .txs
                .extend(d.txs.iter().map(|(hash, index)| (*hash, (number, *index))));
        }
        merged
    }

    /// The pending record of `address`.
    pub fn account(&self, address: &Address) -> Found<Option<TrieAccount>> {
        for diff in self.diffs.iter().rev() {
            if let Some(account) = diff.accounts.get(address) {
                return Found::Here(*account);
            }
        }
        Found::InTables
    }

    /// The pending value of a storage slot.
    pub fn storage(&self, address: &Address, slot: &U256) -> Found<U256> {
        for diff in self.diffs.iter().rev() {
            if let Some(slots) = diff.storage.get(address) {
                if let Some(value) = slots.slots.get(slot) {
                    return Found::Here(*value);
                }
                if slots.reset {
                    return Found::Here(U256::ZERO);
                }
            }
        }
        Found::InTables
    }

    /// Where a pending transaction sits: (block, index).
    pub fn tx(&self, hash: &B256) -> Option<(u64, u32)> {
        self.diffs
            .iter()
            .enumerate()
            .rev()
            .find_map(|(offset, diff)| {
                diff.txs
                    .get(hash)
                    .map(|index| (self.next + offset as u64, *index))
            })
    }
}

/// Pending diffs merged, in key order, later blocks winning.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    pub accounts: BTreeMap<Address, Option<TrieAccount>>,
    /// Per account: cleared first, then these slots (zero deletes).
    pub storage: BTreeMap<Address, (bool, BTreeMap<U256, U256>)>,
    pub txs: BTreeMap<B256, (u64, u32)>,
}

#[cfg(test)]
mod tests {
    use noesis_primitives::AccountChange;

    use super::*;

    fn account(nonce: u64) -> TrieAccount {
        TrieAccount {
            nonce,
            balance: U256::from(nonce * 10),
            storage_root: B256::repeat_byte(nonce as u8),
            code_hash: B256::repeat_byte(0xcc),
        }
    }

    /// An account's storage changes in a test: (seed, reset, [(slot, value)]).
    type Slots<'a> = (u8, bool, &'a [(u64, u64)]);

    fn diff(accounts: &[(u8, Option<u64>)], storage: &[Slots]) -> BlockDiff {
        let mut changes = StateChanges::default();
        for (a, reset, slots) in storage {
            changes.accounts.insert(
                Address::repeat_byte(*a),
                AccountChange {
                    account: Some((0, U256::ZERO, B256::ZERO)),
                    storage_reset: *reset,
                    storage: slots
                        .iter()
                        .map(|(k, v)| (U256::from(*k), U256::from(*v)))
                        .collect(),
                },
            );
        }
        let records: Vec<_> = accounts
            .iter()
            .map(|(a, n)| (Address::repeat_byte(*a), n.map(account)))
            .collect();
        for (address, record) in &records {
            if record.is_none() {
                changes.accounts.insert(
                    *address,
                    AccountChange {
                        account: None,
                        storage_reset: true,
                        storage: Default::default(),
                    },
                );
            }
        }
        BlockDiff::new(&records, &changes, &[])
    }

    #[test]
    fn journal_record_round_trips() {
        let d = diff(
            &[(1, Some(3)), (2, None)],
            &[(1, true, &[(5, 6), (7, 0)]), (3, false, &[(1, 1)])],
        );
        let back = BlockDiff::decode(&d.encode(), &[]).expect("decodes");
        assert_eq!(back.accounts, d.accounts);
        assert_eq!(back.storage.len(), d.storage.len());
        for (address, slots) in &d.storage {
            let other = &back.storage[address];
            assert_eq!((other.reset, &other.slots), (slots.reset, &slots.slots));
        }
        let raw = d.encode();
        assert!(BlockDiff::decode(&raw[..raw.len() - 1], &[]).is_err());
        let mut extra = raw.clone();
        extra.push(0);
        assert!(BlockDiff::decode(&extra, &[]).is_err());
    }

    #[test]
    fn newest_diff_wins_and_resets_hide_older_slots() {
        let mut pending = Pending {
            next: 7,
            diffs: vec![
                Arc::new(diff(&[(1, Some(1))], &[(1, false, &[(1, 11), (2, 22)])])),
                Arc::new(diff(&[(1, Some(2))], &[(1, true, &[(3, 33)])])),
            ],
        };
        let a1 = Address::repeat_byte(1);
        assert!(matches!(pending.account(&a1), Found::Here(Some(a)) if a.nonce == 2));
        assert!(
            matches!(pending.storage(&a1, &U256::from(3)), Found::Here(v) if v == U256::from(33))
        );
        // Slot 1 was set in the older diff, then the account's storage was reset.
        assert!(matches!(pending.storage(&a1, &U256::from(1)), Found::Here(v) if v.is_zero()));
        assert!(matches!(
            pending.account(&Address::repeat_byte(9)),
            Found::InTables
        ));
        assert_eq!(pending.next_block(), 9);

        let last = diff(&[(1, None)], &[]);
        let merged = pending.merged(&last);
        assert_eq!(merged.accounts[&a1], None);
        assert_eq!(merged.storage[&a1], (true, BTreeMap::new()));
        pending.diffs.push(Arc::new(last));
        assert!(matches!(pending.storage(&a1, &U256::from(3)), Found::Here(v) if v.is_zero()));
    }
}
