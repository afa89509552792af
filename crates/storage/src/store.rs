//! The chain store on redb: blocks, receipts, the transaction index, flat latest state
//! and the state trie's nodes, all in one crash-safe file (`chain.redb`).
//!
//! Every block is written in a single redb write transaction (fsync on commit), so after
//! a crash the store holds exactly the blocks whose commit returned. The flat tables are
//! written back every few blocks from a journal committed with each block (`flat`).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use alloy_consensus::{Header, ReceiptEnvelope, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes, Log, U256, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::{EMPTY_ROOT_HASH, TrieAccount};
use noesis_primitives::{AccountState, StateChanges, StateError, StateView};
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};

use crate::{
    StoreError,
    flat::{BlockDiff, Found, Pending},
    trie::{self, NodeId, NodeSource, NodeWrites, TrieUpdate},
};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CANONICAL: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("canonical");
const HEADERS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("headers");
const BLOCK_NUMBERS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_numbers");
const BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("bodies");
const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts");
const TX_LOOKUP: TableDefinition<&[u8; 32], (u64, u32)> = TableDefinition::new("tx_lookup");
const ACCOUNTS: TableDefinition<&[u8; 20], &[u8]> = TableDefinition::new("accounts");
const STORAGE: TableDefinition<&[u8; 52], &[u8; 32]> = TableDefinition::new("storage");
const CODE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("code");
const TRIE: TableDefinition<NodeId, &[u8]> = TableDefinition::new("trie_nodes");
const TRIE_ROOTS: TableDefinition<&[u8; 32], NodeId> = TableDefinition::new("trie_roots");
const SYSTEM_LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("system_logs");
/// Per block not yet written back to the flat tables: its flat changes.
const FLAT_JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("flat_journal");
/// `META` key: the first block whose flat changes are not in the flat tables.
const FLAT_NEXT: &str = "flat_next";

/// Version of the on-disk layout; a store of another version is refused.
const FORMAT_VERSION: u64 = 4;
const FILE_NAME: &str = "chain.redb";
/// Beside the store: the last head whose commit returned. Written after each commit
/// (no fsync needed: it only ever lags the store), it lets an open detect a store that
/// lost committed blocks, e.g. to a damaged commit slot that redb rolled back.
const HEAD_FILE: &str = "HEAD";

/// A block as stored: its header, hash, and transactions with their recovered senders.
#[derive(Clone, Debug)]
pub struct StoredBlock {
    /// The sealed header.
    pub header: Header,
    /// keccak256 of the header's RLP.
    pub hash: B256,
    /// Transactions in block order with their senders.
    pub transactions: Vec<(Address, TxEnvelope)>,
}

/// Where a transaction sits in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    /// Block number.
    pub block: u64,
    /// Index in the block.
    pub index: u32,
}

/// The chain store.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Flat changes committed but not yet written back to the flat tables.
    pending: RwLock<Arc<Pending>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

impl Store {
    /// Opens (or creates) the store in `dir`, bound to the chain spec hash `spec_hash`.
    ///
    /// A store that is truncated or corrupted, of another format version, or made for
    /// another chain is refused with a message that says so; it is never loaded silently.
    pub fn open(dir: &Path, spec_hash: B256) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Io(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let path = dir.join(FILE_NAME);
        let existed = path.exists();
        let mut builder = Database::builder();
        builder.set_cache_size(256 * 1024 * 1024);
        let db = if existed {
            // Verify every page checksum on open: a file altered outside redb is refused
            // instead of trusted (a plain open may panic on it).
            builder.set_check_integrity_on_open(true).open(&path)
        } else {
            builder.create(&path)
        }
        .map_err(|e| StoreError::Corrupt(format!("cannot open {}: {e}", path.display())))?;
        let store = Self {
            db,
            path,
            pending: RwLock::default(),
        };
        if existed {
            store.check_integrity(spec_hash)?;
        } else {
            store.init_meta(spec_hash)?;
        }
        Ok(store)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn init_meta(&self, spec_hash: B256) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut meta = tx.open_table(META).map_err(db_err)?;
            meta.insert("format", FORMAT_VERSION.to_be_bytes().as_slice())
                .map_err(db_err)?;
            meta.insert("spec", spec_hash.as_slice()).map_err(db_err)?;
            // Create every table so readers never meet a missing one.
            tx.open_table(CANONICAL).map_err(db_err)?;
            tx.open_table(HEADERS).map_err(db_err)?;
            tx.open_table(BLOCK_NUMBERS).map_err(db_err)?;
            tx.open_table(BODIES).map_err(db_err)?;
            tx.open_table(RECEIPTS).map_err(db_err)?;
            tx.open_table(TX_LOOKUP).map_err(db_err)?;
            tx.open_table(ACCOUNTS).map_err(db_err)?;
            tx.open_table(STORAGE).map_err(db_err)?;
            tx.open_table(CODE).map_err(db_err)?;
            tx.open_table(TRIE).map_err(db_err)?;
            tx.open_table(TRIE_ROOTS).map_err(db_err)?;
            tx.open_table(SYSTEM_LOGS).map_err(db_err)?;
            tx.open_table(FLAT_JOURNAL).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Reloads the flat changes that were journaled but not written back.
    fn load_pending(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let next = read_flat_next(&tx)?;
        let journal = tx.open_table(FLAT_JOURNAL).map_err(db_err)?;
        let head = tx
            .open_table(CANONICAL)
            .map_err(db_err)?
            .last()
            .map_err(db_err)?
            .map(|(n, _)| n.value());
        let bodies = tx.open_table(BODIES).map_err(db_err)?;
        let mut pending = Pending {
            next,
            diffs: Vec::new(),
        };
        let end = head.map_or(0, |h| h + 1);
        for number in next..end {
            let record = journal.get(number).map_err(db_err)?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the flat-state journal lacks block {number} (flat tables end before it)"
                ))
            })?;
            let body = match bodies.get(number).map_err(db_err)? {
                Some(raw) => decode_body(raw.value())?,
                None => Vec::new(),
            };
            pending
                .diffs
                .push(Arc::new(BlockDiff::decode(record.value(), &body)?));
        }
        *self.pending.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pending);
        Ok(())
    }

    fn pending(&self) -> Arc<Pending> {
        self.pending
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn check_integrity(&self, spec_hash: B256) -> Result<(), StoreError> {
        let corrupt = |what: String| {
            StoreError::Corrupt(format!(
                "{}: {what}; refusing to load it. Restore a backup or remove the data dir to start a new chain",
                self.path.display()
            ))
        };
        let tx = self.db.begin_read().map_err(|e| corrupt(e.to_string()))?;
        let meta = tx
            .open_table(META)
            .map_err(|e| corrupt(format!("no metadata ({e})")))?;
        let format = meta
            .get("format")
            .map_err(|e| corrupt(e.to_string()))?
            .ok_or_else(|| corrupt("no format version".into()))?;
        let format = u64::from_be_bytes(
            format
                .value()
                .try_into()
                .map_err(|_| corrupt("bad format version".into()))?,
        );
        if format != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {format}, expected {FORMAT_VERSION}"
            )));
        }
        let spec = meta
            .get("spec")
            .map_err(|e| corrupt(e.to_string()))?
            .ok_or_else(|| corrupt("no chain spec hash".into()))?;
        if spec.value() != spec_hash.as_slice() {
            return Err(StoreError::WrongChain(self.path.display().to_string()));
        }
        drop(meta);
        drop(tx);
        self.load_pending().map_err(|e| corrupt(e.to_string()))?;
        // The store must hold every block whose commit returned.
        let head = self.head()?;
        if let Some((recorded, recorded_hash)) = self.recorded_head() {
            match head {
                Some((number, hash))
                    if number > recorded || (number == recorded && hash == recorded_hash) => {}
                Some((number, _)) => {
                    return Err(corrupt(format!(
                        "it ends at block {number} but block {recorded} ({recorded_hash}) was committed"
                    )));
                }
                None => {
                    return Err(corrupt(format!(
                        "it is empty but block {recorded} was committed"
                    )));
                }
            }
        }
        // The head block, its state root and the flat state must all be present.
        if let Some((number, hash)) = head {
            let header = self
                .header_by_hash(&hash)?
                .ok_or_else(|| corrupt(format!("head block {number} ({hash}) is missing")))?;
            if header.number != number || header.hash_slow() != hash {
                return Err(corrupt(format!(
                    "head block {number} does not match its hash"
                )));
            }
            if header.state_root != EMPTY_ROOT_HASH
                && self.latest()?.root_id(&header.state_root)?.is_none()
            {
                return Err(corrupt(format!("state root of block {number} is missing")));
            }
        }
        Ok(())
    }

    /// The head block's number and hash, or `None` for an empty store.
    pub fn head(&self) -> Result<Option<(u64, B256)>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(CANONICAL).map_err(db_err)?;
        let last = table.last().map_err(db_err)?;
        Ok(last.map(|(n, h)| (n.value(), B256::from(*h.value()))))
    }

    /// The canonical block hash at `number`.
    pub fn hash_by_number(&self, number: u64) -> Result<Option<B256>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(CANONICAL).map_err(db_err)?;
        Ok(table
            .get(number)
            .map_err(db_err)?
            .map(|h| B256::from(*h.value())))
    }

    /// The number of the block with hash `hash`.
    pub fn number_by_hash(&self, hash: &B256) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(BLOCK_NUMBERS).map_err(db_err)?;
        Ok(table.get(&hash.0).map_err(db_err)?.map(|n| n.value()))
    }

    /// The header with hash `hash`.
    pub fn header_by_hash(&self, hash: &B256) -> Result<Option<Header>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(HEADERS).map_err(db_err)?;
        match table.get(&hash.0).map_err(db_err)? {
            Some(raw) => {
                Ok(Some(Header::decode(&mut raw.value()).map_err(|e| {
                    StoreError::Corrupt(format!("bad header {hash}: {e}"))
                })?))
            }
            None => Ok(None),
        }
    }

    /// The canonical header at `number`.
    pub fn header_by_number(&self, number: u64) -> Result<Option<Header>, StoreError> {
        match self.hash_by_number(number)? {
            Some(hash) => self.header_by_hash(&hash),
            None => Ok(None),
        }
    }

    /// The canonical block at `number` with its transactions.
    pub fn block_by_number(&self, number: u64) -> Result<Option<StoredBlock>, StoreError> {
        let Some(hash) = self.hash_by_number(number)? else {
            return Ok(None);
        };
        let Some(header) = self.header_by_hash(&hash)? else {
            return Ok(None);
        };
        let tx = self.db.begin_read().map_err(db_err)?;
        let bodies = tx.open_table(BODIES).map_err(db_err)?;
        let transactions = match bodies.get(number).map_err(db_err)? {
            Some(raw) => decode_body(raw.value())?,
            None => Vec::new(),
        };
        Ok(Some(StoredBlock {
            header,
            hash,
            transactions,
        }))
    }

    /// The receipts of the canonical block at `number`.
    pub fn receipts(&self, number: u64) -> Result<Vec<ReceiptEnvelope>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(RECEIPTS).map_err(db_err)?;
        match table.get(number).map_err(db_err)? {
            Some(raw) => decode_receipts(raw.value()),
            None => Ok(Vec::new()),
        }
    }

    /// The logs of block `number`'s end-of-block system call (module epochs).
    pub fn system_logs(&self, number: u64) -> Result<Vec<Log>, StoreError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(SYSTEM_LOGS).map_err(db_err)?;
        match table.get(number).map_err(db_err)? {
            Some(raw) => Vec::<Log>::decode(&mut raw.value())
                .map_err(|e| StoreError::Corrupt(format!("bad system logs: {e}"))),
            None => Ok(Vec::new()),
        }
    }

    /// Where the transaction `hash` was included.
    pub fn tx_location(&self, hash: &B256) -> Result<Option<TxLocation>, StoreError> {
        // Pending first: a flush moves entries from there to the table after the table
        // is committed, so this order never misses a committed transaction.
        if let Some((block, index)) = self.pending().tx(hash) {
            return Ok(Some(TxLocation { block, index }));
        }
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(TX_LOOKUP).map_err(db_err)?;
        Ok(table.get(&hash.0).map_err(db_err)?.map(|v| {
            let (block, index) = v.value();
            TxLocation { block, index }
        }))
    }

    /// A snapshot of the latest state (flat tables, fast reads).
    pub fn latest(&self) -> Result<LatestState, StoreError> {
        // The snapshot and the pending diffs must describe the same blocks; a commit
        // between taking the two is seen and the pair taken again.
        for _ in 0..10_000 {
            let pending = self.pending();
            let tx = self.db.begin_read().map_err(db_err)?;
            let head = tx
                .open_table(CANONICAL)
                .map_err(db_err)?
                .last()
                .map_err(db_err)?
                .map_or(0, |(n, _)| n.value() + 1);
            if read_flat_next(&tx)? == pending.next && head == pending.next_block() {
                return LatestState::open(tx, pending);
            }
            std::thread::yield_now();
        }
        Err(StoreError::Db(
            "the flat state kept changing while a snapshot was taken".into(),
        ))
    }

    /// A snapshot of the state with root `root`, read through the trie (any past block).
    pub fn at_root(&self, root: B256) -> Result<TrieState, StoreError> {
        Ok(TrieState {
            tables: StateTables::open(&self.db.begin_read().map_err(db_err)?)?,
            root,
        })
    }

    /// Computes the state root after applying `changes` on top of the latest state,
    /// whose root is `parent_root`, and returns it with the trie nodes to store.
    /// Nothing is written.
    pub fn compute_state_root(
        &self,
        parent_root: B256,
        changes: &StateChanges,
    ) -> Result<(B256, PreparedState), StoreError> {
        let snapshot = self.latest()?;
        let mut writes = NodeWrites::new(snapshot.tables.next_node_id()?);
        let mut accounts = Vec::with_capacity(changes.accounts.len());
        let mut update = TrieUpdate::new(&snapshot, parent_root)?;
        for (address, change) in &changes.accounts {
            let key = keccak256(address);
            let Some((nonce, balance, code_hash)) = change.account else {
                update.set(&key, Vec::new())?;
                accounts.push((*address, None));
                continue;
            };
            let previous_root = if change.storage_reset {
                EMPTY_ROOT_HASH
            } else {
                snapshot
                    .account(*address)
                    .map_err(|e| StoreError::Db(e.0))?
                    .map(|a| a.storage_root)
                    .unwrap_or(EMPTY_ROOT_HASH)
            };
            let storage_root = if change.storage.is_empty() {
                previous_root
            } else {
                let mut storage = TrieUpdate::new(&snapshot, previous_root)?;
                for (slot, value) in &change.storage {
                    let key = keccak256(slot.to_be_bytes::<32>());
                    let encoded = if value.is_zero() {
                        Vec::new()
                    } else {
                        alloy_rlp::encode(value)
                    };
                    storage.set(&key, encoded)?;
                }
                storage.commit(&mut writes)
            };
            let account = TrieAccount {
                nonce,
                balance,
                storage_root,
                code_hash,
            };
            update.set(&key, alloy_rlp::encode(account))?;
            accounts.push((*address, Some(account)));
        }
        let root = update.commit(&mut writes);
        Ok((
            root,
            PreparedState {
                nodes: writes,
                accounts,
            },
        ))
    }

    /// Writes a block, its receipts, the logs of its end-of-block system call and its
    /// state changes in one durable transaction.
    pub fn commit_block(
        &self,
        block: &StoredBlock,
        receipts: &[ReceiptEnvelope],
        system_logs: &[Log],
        changes: &StateChanges,
        prepared: PreparedState,
    ) -> Result<(), StoreError> {
        let number = block.header.number;
        let pending = self.pending();
        if number != pending.next_block() {
            return Err(StoreError::Db(format!(
                "block {number} is stale or out of order: the store's next block is {}",
                pending.next_block()
            )));
        }
        let diff = BlockDiff::new(&prepared.accounts, changes, &block.transactions);
        let flush = pending.should_flush(&diff);
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut headers = tx.open_table(HEADERS).map_err(db_err)?;
            headers
                .insert(&block.hash.0, alloy_rlp::encode(&block.header).as_slice())
                .map_err(db_err)?;
            tx.open_table(BLOCK_NUMBERS)
                .map_err(db_err)?
                .insert(&block.hash.0, number)
                .map_err(db_err)?;
            tx.open_table(CANONICAL)
                .map_err(db_err)?
                .insert(number, &block.hash.0)
                .map_err(db_err)?;
            tx.open_table(BODIES)
                .map_err(db_err)?
                .insert(number, encode_body(&block.transactions).as_slice())
                .map_err(db_err)?;
            tx.open_table(RECEIPTS)
                .map_err(db_err)?
                .insert(number, encode_receipts(receipts).as_slice())
                .map_err(db_err)?;
            if !system_logs.is_empty() {
                tx.open_table(SYSTEM_LOGS)
                    .map_err(db_err)?
                    .insert(number, alloy_rlp::encode(system_logs.to_vec()).as_slice())
                    .map_err(db_err)?;
            }
            let mut code = tx.open_table(CODE).map_err(db_err)?;
            for (hash, bytes) in &changes.codes {
                code.insert(&hash.0, bytes.as_ref()).map_err(db_err)?;
            }
            let mut trie = tx.open_table(TRIE).map_err(db_err)?;
            // Node ids were handed out from the snapshot the state root was computed
            // on; they must continue the table exactly.
            let next = trie
                .last()
                .map_err(db_err)?
                .map_or(1, |(id, _)| id.value() + 1);
            if let Some((first, _)) = prepared.nodes.nodes.first()
                && *first != next
            {
                return Err(StoreError::Db(format!(
                    "prepared state is stale: its nodes start at #{first}, the store at #{next}"
                )));
            }
            for (id, record) in &prepared.nodes.nodes {
                trie.insert(*id, record.as_slice()).map_err(db_err)?;
            }
            let mut roots = tx.open_table(TRIE_ROOTS).map_err(db_err)?;
            for (hash, id) in &prepared.nodes.roots {
                roots.insert(&hash.0, *id).map_err(db_err)?;
            }
            let mut journal = tx.open_table(FLAT_JOURNAL).map_err(db_err)?;
            if flush {
                write_back(&tx, &pending.merged(&diff))?;
                for journaled in pending.next..number {
                    journal.remove(journaled).map_err(db_err)?;
                }
                tx.open_table(META)
                    .map_err(db_err)?
                    .insert(FLAT_NEXT, (number + 1).to_be_bytes().as_slice())
                    .map_err(db_err)?;
            } else {
                journal
                    .insert(number, diff.encode().as_slice())
                    .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)?;
        let pending = if flush {
            Pending {
                next: number + 1,
                diffs: Vec::new(),
            }
        } else {
            let mut pending = (*pending).clone();
            pending.diffs.push(Arc::new(diff));
            pending
        };
        *self.pending.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pending);
        // The block is committed whatever happens next; a missing HEAD record only
        // weakens the check at the next open.
        if let Err(e) = self.record_head(number, block.hash) {
            tracing::warn!("{e}");
        }
        Ok(())
    }

    fn head_file(&self) -> PathBuf {
        self.path.with_file_name(HEAD_FILE)
    }

    fn record_head(&self, number: u64, hash: B256) -> Result<(), StoreError> {
        let tmp = self.path.with_file_name("HEAD.tmp");
        std::fs::write(&tmp, format!("{number} {hash}\n"))
            .and_then(|()| std::fs::rename(&tmp, self.head_file()))
            .map_err(|e| {
                StoreError::Io(format!(
                    "cannot record the head in {}: {e}",
                    self.head_file().display()
                ))
            })
    }

    /// The head recorded beside the store, if any.
    fn recorded_head(&self) -> Option<(u64, B256)> {
        let text = std::fs::read_to_string(self.head_file()).ok()?;
        let (number, hash) = text.trim().split_once(' ')?;
        Some((number.parse().ok()?, hash.parse().ok()?))
    }

    /// An account and storage proof (`eth_getProof`) against the state root `root`.
    pub fn proof(
        &self,
        root: B256,
        address: Address,
        slots: &[B256],
    ) -> Result<AccountProof, StoreError> {
        let state = self.at_root(root)?;
        let account_proof = trie::proof(&state, root, &keccak256(address))?;
        let account = state.account(address).map_err(|e| StoreError::Db(e.0))?;
        let storage_root = account.map(|a| a.storage_root).unwrap_or(EMPTY_ROOT_HASH);
        let mut storage = Vec::with_capacity(slots.len());
        for slot in slots {
            let key = keccak256(slot);
            let value = match trie::get(&state, storage_root, &key)? {
                Some(raw) => U256::decode(&mut raw.as_slice())
                    .map_err(|e| StoreError::Corrupt(format!("bad storage value: {e}")))?,
                None => U256::ZERO,
            };
            storage.push(StorageProof {
                slot: *slot,
                value,
                proof: trie::proof(&state, storage_root, &key)?,
            });
        }
        Ok(AccountProof {
            account,
            account_proof,
            storage,
        })
    }
}

/// Trie nodes and account records computed for a block, ready to be written.
#[derive(Debug, Default)]
pub struct PreparedState {
    nodes: NodeWrites,
    accounts: Vec<(Address, Option<TrieAccount>)>,
}

/// An `eth_getProof` answer.
#[derive(Clone, Debug)]
pub struct AccountProof {
    /// The account, if it exists.
    pub account: Option<AccountState>,
    /// Nodes from the state root to the account's leaf (or to where it would be).
    pub account_proof: Vec<Bytes>,
    /// One proof per requested slot.
    pub storage: Vec<StorageProof>,
}

/// A storage slot with its proof.
#[derive(Clone, Debug)]
pub struct StorageProof {
    /// The slot as requested.
    pub slot: B256,
    /// Its value.
    pub value: U256,
    /// Nodes from the storage root down the slot's path.
    pub proof: Vec<Bytes>,
}

/// `FLAT_NEXT` as of a snapshot (0 when no block was ever written back).
fn read_flat_next(tx: &ReadTransaction) -> Result<u64, StoreError> {
    let meta = tx.open_table(META).map_err(db_err)?;
    match meta.get(FLAT_NEXT).map_err(db_err)? {
        Some(raw) => {
            Ok(u64::from_be_bytes(raw.value().try_into().map_err(
                |_| StoreError::Corrupt("bad flat_next record".into()),
            )?))
        }
        None => Ok(0),
    }
}

/// Writes merged flat changes into the flat tables, in key order.
fn write_back(tx: &redb::WriteTransaction, merged: &crate::flat::Merged) -> Result<(), StoreError> {
    let mut lookup = tx.open_table(TX_LOOKUP).map_err(db_err)?;
    for (hash, location) in &merged.txs {
        lookup.insert(&hash.0, *location).map_err(db_err)?;
    }
    let mut accounts = tx.open_table(ACCOUNTS).map_err(db_err)?;
    for (address, account) in &merged.accounts {
        match account {
            Some(account) => {
                accounts
                    .insert(&address.0.0, alloy_rlp::encode(account).as_slice())
                    .map_err(db_err)?;
            }
            None => {
                accounts.remove(&address.0.0).map_err(db_err)?;
            }
        }
    }
    let mut storage = tx.open_table(STORAGE).map_err(db_err)?;
    for (address, (reset, slots)) in &merged.storage {
        if *reset {
            let (start, end) = (
                slot_key(address, &U256::ZERO),
                slot_key(address, &U256::MAX),
            );
            storage
                .retain_in::<&[u8; 52], _>(&start..=&end, |_, _| false)
                .map_err(db_err)?;
        }
        for (slot, value) in slots {
            let key = slot_key(address, slot);
            if value.is_zero() {
                storage.remove(&key).map_err(db_err)?;
            } else {
                storage
                    .insert(&key, &value.to_be_bytes::<32>())
                    .map_err(db_err)?;
            }
        }
    }
    Ok(())
}

fn slot_key(address: &Address, slot: &U256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    key
}

fn encode_body(transactions: &[(Address, TxEnvelope)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(transactions.len() * 140);
    for (sender, tx) in transactions {
        out.extend_from_slice(sender.as_slice());
        let encoded = tx.encoded_2718();
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(&encoded);
    }
    out
}

fn decode_body(mut raw: &[u8]) -> Result<Vec<(Address, TxEnvelope)>, StoreError> {
    let bad = || StoreError::Corrupt("bad block body".into());
    let mut out = Vec::new();
    while !raw.is_empty() {
        let (sender, rest) = raw.split_at_checked(20).ok_or_else(bad)?;
        let (len, rest) = rest.split_at_checked(4).ok_or_else(bad)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| bad())?) as usize;
        let (mut tx, rest) = rest.split_at_checked(len).ok_or_else(bad)?;
        let tx = TxEnvelope::decode_2718(&mut tx).map_err(|_| bad())?;
        out.push((Address::from_slice(sender), tx));
        raw = rest;
    }
    Ok(out)
}

fn encode_receipts(receipts: &[ReceiptEnvelope]) -> Vec<u8> {
    let mut out = Vec::new();
    for receipt in receipts {
        let encoded = receipt.encoded_2718();
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(&encoded);
    }
    out
}

fn decode_receipts(mut raw: &[u8]) -> Result<Vec<ReceiptEnvelope>, StoreError> {
    let bad = || StoreError::Corrupt("bad receipts".into());
    let mut out = Vec::new();
    while !raw.is_empty() {
        let (len, rest) = raw.split_at_checked(4).ok_or_else(bad)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| bad())?) as usize;
        let (mut receipt, rest) = rest.split_at_checked(len).ok_or_else(bad)?;
        out.push(ReceiptEnvelope::decode_2718(&mut receipt).map_err(|_| bad())?);
        raw = rest;
    }
    Ok(out)
}

fn decode_account(raw: &[u8]) -> Result<AccountState, StateError> {
    let account = TrieAccount::decode(&mut &raw[..])
        .map_err(|e| StateError(format!("bad account record: {e}")))?;
    Ok(account_state(account))
}

fn account_state(account: TrieAccount) -> AccountState {
    AccountState {
        nonce: account.nonce,
        balance: account.balance,
        code_hash: account.code_hash,
        storage_root: account.storage_root,
    }
}

fn state_err(e: impl std::fmt::Display) -> StateError {
    StateError(e.to_string())
}

/// Tables every state snapshot reads, opened once per snapshot.
struct StateTables {
    trie: ReadOnlyTable<NodeId, &'static [u8]>,
    trie_roots: ReadOnlyTable<&'static [u8; 32], NodeId>,
    code: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    canonical: ReadOnlyTable<u64, &'static [u8; 32]>,
}

impl StateTables {
    fn open(tx: &ReadTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            trie: tx.open_table(TRIE).map_err(db_err)?,
            trie_roots: tx.open_table(TRIE_ROOTS).map_err(db_err)?,
            code: tx.open_table(CODE).map_err(db_err)?,
            canonical: tx.open_table(CANONICAL).map_err(db_err)?,
        })
    }

    fn node(&self, id: NodeId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .trie
            .get(id)
            .map_err(db_err)?
            .map(|v| v.value().to_vec()))
    }

    fn root_id(&self, hash: &B256) -> Result<Option<NodeId>, StoreError> {
        Ok(self
            .trie_roots
            .get(&hash.0)
            .map_err(db_err)?
            .map(|v| v.value()))
    }

    /// The id the next stored node will get.
    fn next_node_id(&self) -> Result<NodeId, StoreError> {
        Ok(self
            .trie
            .last()
            .map_err(db_err)?
            .map_or(1, |(id, _)| id.value() + 1))
    }

    fn code(&self, code_hash: B256) -> Result<Bytes, StateError> {
        Ok(self
            .code
            .get(&code_hash.0)
            .map_err(state_err)?
            .map(|v| Bytes::copy_from_slice(v.value()))
            .unwrap_or_default())
    }

    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        Ok(self
            .canonical
            .get(number)
            .map_err(state_err)?
            .map(|h| B256::from(*h.value()))
            .unwrap_or_default())
    }
}

/// The latest state, read from the flat tables of one read snapshot.
pub struct LatestState {
    accounts: ReadOnlyTable<&'static [u8; 20], &'static [u8]>,
    storage: ReadOnlyTable<&'static [u8; 52], &'static [u8; 32]>,
    tables: StateTables,
    /// Changes of the snapshot's last blocks not yet in its flat tables.
    pending: Arc<Pending>,
}

impl LatestState {
    fn open(tx: ReadTransaction, pending: Arc<Pending>) -> Result<Self, StoreError> {
        Ok(Self {
            accounts: tx.open_table(ACCOUNTS).map_err(db_err)?,
            storage: tx.open_table(STORAGE).map_err(db_err)?,
            tables: StateTables::open(&tx)?,
            pending,
        })
    }
}

impl NodeSource for LatestState {
    fn node(&self, id: NodeId) -> Result<Option<Vec<u8>>, StoreError> {
        self.tables.node(id)
    }

    fn root_id(&self, hash: &B256) -> Result<Option<NodeId>, StoreError> {
        self.tables.root_id(hash)
    }
}

impl StateView for LatestState {
    fn account(&self, address: Address) -> Result<Option<AccountState>, StateError> {
        if let Found::Here(account) = self.pending.account(&address) {
            return Ok(account.map(account_state));
        }
        match self.accounts.get(&address.0.0).map_err(state_err)? {
            Some(raw) => decode_account(raw.value()).map(Some),
            None => Ok(None),
        }
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        if let Found::Here(value) = self.pending.storage(&address, &slot) {
            return Ok(value);
        }
        Ok(self
            .storage
            .get(&slot_key(&address, &slot))
            .map_err(state_err)?
            .map(|v| U256::from_be_bytes(*v.value()))
            .unwrap_or_default())
    }

    fn code(&self, code_hash: B256) -> Result<Bytes, StateError> {
        self.tables.code(code_hash)
    }

    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        self.tables.block_hash(number)
    }
}

/// The state under a given root, read through the trie: any block's state.
pub struct TrieState {
    tables: StateTables,
    root: B256,
}

impl NodeSource for TrieState {
    fn node(&self, id: NodeId) -> Result<Option<Vec<u8>>, StoreError> {
        self.tables.node(id)
    }

    fn root_id(&self, hash: &B256) -> Result<Option<NodeId>, StoreError> {
        self.tables.root_id(hash)
    }
}

impl StateView for TrieState {
    fn account(&self, address: Address) -> Result<Option<AccountState>, StateError> {
        match trie::get(self, self.root, &keccak256(address)).map_err(state_err)? {
            Some(raw) => decode_account(&raw).map(Some),
            None => Ok(None),
        }
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        let Some(account) = self.account(address)? else {
            return Ok(U256::ZERO);
        };
        let key = keccak256(slot.to_be_bytes::<32>());
        match trie::get(self, account.storage_root, &key).map_err(state_err)? {
            Some(raw) => U256::decode(&mut raw.as_slice()).map_err(state_err),
            None => Ok(U256::ZERO),
        }
    }

    fn code(&self, code_hash: B256) -> Result<Bytes, StateError> {
        self.tables.code(code_hash)
    }

    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        self.tables.block_hash(number)
    }
}

#[cfg(test)]
mod tests {
    use alloy_trie::{Nibbles, proof::verify_proof};
    use noesis_primitives::{AccountChange, EMPTY_CODE_HASH};

    use super::*;

    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("noesis-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn block(number: u64, state_root: B256) -> StoredBlock {
        let header = Header {
            number,
            state_root,
            ..Default::default()
        };
        StoredBlock {
            hash: header.hash_slow(),
            header,
            transactions: Vec::new(),
        }
    }

    /// Account `0xseed…` with balance `balance` and slots 1..=slots set.
    fn account(changes: &mut StateChanges, seed: u8, balance: u64, slots: u64) {
        let storage = (1..=slots)
            .map(|i| (U256::from(i), U256::from(i * 1000 + balance)))
            .collect();
        changes.accounts.insert(
            Address::repeat_byte(seed),
            AccountChange {
                account: Some((1, U256::from(balance), EMPTY_CODE_HASH)),
                storage_reset: false,
                storage,
            },
        );
    }

    fn commit(store: &Store, number: u64, parent: B256, changes: &StateChanges) -> B256 {
        let (root, prepared) = store.compute_state_root(parent, changes).unwrap();
        store
            .commit_block(&block(number, root), &[], &[], changes, prepared)
            .unwrap();
        root
    }

    #[test]
    fn every_past_root_stays_readable_and_provable() {
        let dir = fresh_dir("archive");
        let store = Store::open(&dir, B256::ZERO).unwrap();
        let mut genesis = StateChanges::default();
        for seed in 1..=40 {
            account(&mut genesis, seed, seed as u64, (seed % 4) as u64);
        }
        let root0 = commit(&store, 0, EMPTY_ROOT_HASH, &genesis);
        let mut next = StateChanges::default();
        account(&mut next, 3, 999, 5);
        let root1 = commit(&store, 1, root0, &next);
        assert_ne!(root0, root1);

        let (old, new) = (store.at_root(root0).unwrap(), store.latest().unwrap());
        let who = Address::repeat_byte(3);
        assert_eq!(old.account(who).unwrap().unwrap().balance, U256::from(3));
        assert_eq!(new.account(who).unwrap().unwrap().balance, U256::from(999));
        assert_eq!(old.storage(who, U256::from(5)).unwrap(), U256::ZERO);
        assert_eq!(
            new.storage(who, U256::from(5)).unwrap(),
            U256::from(5999u64)
        );
        // The trie read of the latest root agrees with the flat tables.
        let latest_by_trie = store.at_root(root1).unwrap();
        assert_eq!(
            latest_by_trie.storage(who, U256::from(2)).unwrap(),
            new.storage(who, U256::from(2)).unwrap()
        );
        // Proofs against either root verify independently.
        for (root, balance) in [(root0, 3u64), (root1, 999)] {
            let proof = store.proof(root, who, &[]).unwrap();
            let account = proof.account.unwrap();
            assert_eq!(account.balance, U256::from(balance));
            let expected = alloy_rlp::encode(TrieAccount {
                nonce: account.nonce,
                balance: account.balance,
                storage_root: account.storage_root,
                code_hash: account.code_hash,
            });
            verify_proof(
                root,
                Nibbles::unpack(keccak256(who)),
                Some(expected),
                &proof.account_proof,
            )
            .unwrap();
        }
        drop((old, new, latest_by_trie, store));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Every account and slot the test touches, read flat and through the trie.
    fn assert_flat_matches_trie(store: &Store, root: B256, seeds: u8, slots: u64) {
        let (flat, by_trie) = (store.latest().unwrap(), store.at_root(root).unwrap());
        for seed in 1..=seeds {
            let who = Address::repeat_byte(seed);
            assert_eq!(flat.account(who).unwrap(), by_trie.account(who).unwrap());
            for slot in 0..=slots {
                let slot = U256::from(slot);
                assert_eq!(
                    flat.storage(who, slot).unwrap(),
                    by_trie.storage(who, slot).unwrap(),
                    "account {seed} slot {slot}"
                );
            }
        }
    }

    #[test]
    fn flat_state_written_back_in_batches_survives_reopen() {
        let dir = fresh_dir("flat");
        let mut store = Store::open(&dir, B256::ZERO).unwrap();
        let mut root = commit(&store, 0, EMPTY_ROOT_HASH, &StateChanges::default());
        // A deterministic mix of writes, slot deletions, storage resets and
        // destructions over more blocks than two write-back batches.
        let blocks = crate::flat::FLUSH_BLOCKS as u64 * 2 + 5;
        for number in 1..=blocks {
            let mut changes = StateChanges::default();
            for seed in 1..=12u8 {
                let roll = (number * 7 + seed as u64 * 13) % 11;
                let change = match roll {
                    0 => AccountChange {
                        account: None,
                        storage_reset: true,
                        storage: Default::default(),
                    },
                    1 => AccountChange {
                        account: Some((number, U256::from(number), EMPTY_CODE_HASH)),
                        storage_reset: true,
                        storage: [(U256::from(seed % 3), U256::from(number))].into(),
                    },
                    2..=6 => AccountChange {
                        account: Some((number, U256::from(number + roll), EMPTY_CODE_HASH)),
                        storage_reset: false,
                        storage: [
                            (U256::from(roll), U256::from(number * roll)),
                            (U256::from(roll + 1), U256::ZERO),
                        ]
                        .into(),
                    },
                    _ => continue,
                };
                changes.accounts.insert(Address::repeat_byte(seed), change);
            }
            root = commit(&store, number, root, &changes);
            assert_flat_matches_trie(&store, root, 12, 8);
            // Reopen at points on both sides of a write-back: the journal is reloaded.
            if number % 7 == 0 || number == blocks {
                drop(store);
                store = Store::open(&dir, B256::ZERO).unwrap();
                assert_flat_matches_trie(&store, root, 12, 8);
            }
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_state_prepared_on_an_outdated_snapshot_is_refused() {
        let dir = fresh_dir("stale");
        let store = Store::open(&dir, B256::ZERO).unwrap();
        let mut genesis = StateChanges::default();
        account(&mut genesis, 1, 1, 1);
        let root0 = commit(&store, 0, EMPTY_ROOT_HASH, &genesis);
        // Two candidates for block 1 on the same parent: only one can be committed.
        let mut a = StateChanges::default();
        account(&mut a, 2, 2, 0);
        let mut b = StateChanges::default();
        account(&mut b, 3, 3, 0);
        let (root_a, prepared_a) = store.compute_state_root(root0, &a).unwrap();
        let (root_b, prepared_b) = store.compute_state_root(root0, &b).unwrap();
        store
            .commit_block(&block(1, root_a), &[], &[], &a, prepared_a)
            .unwrap();
        let err = store
            .commit_block(&block(1, root_b), &[], &[], &b, prepared_b)
            .unwrap_err();
        assert!(err.to_string().contains("stale"), "{err}");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
