//! The account record and the read-only view of state that execution runs against.

use alloy_primitives::{Address, B256, Bytes, U256, b256};

/// keccak256 of empty code.
pub const EMPTY_CODE_HASH: B256 =
    b256!("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");

/// An account as kept in state (Ethereum's four fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// Transactions sent (or contracts created) by this account.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// keccak256 of the runtime code.
    pub code_hash: B256,
    /// Root of the account's storage trie.
    pub storage_root: B256,
}

impl Default for AccountState {
    fn default() -> Self {
        Self {
            nonce: 0,
            balance: U256::ZERO,
            code_hash: EMPTY_CODE_HASH,
            storage_root: alloy_trie_empty_root(),
        }
    }
}

const fn alloy_trie_empty_root() -> B256 {
    b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
}

/// A failure to read state: the store is broken, not the input.
#[derive(Debug, thiserror::Error)]
#[error("state read failed: {0}")]
pub struct StateError(pub String);

/// Read access to one version of the world state. Implemented by the store (latest
/// state and historical state) and by execution overlays.
pub trait StateView {
    /// The account at `address`, or `None` if it does not exist.
    fn account(&self, address: Address) -> Result<Option<AccountState>, StateError>;
    /// A storage slot (zero when unset).
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError>;
    /// Code by its hash (empty when unknown).
    fn code(&self, code_hash: B256) -> Result<Bytes, StateError>;
    /// Hash of a canonical block by number, for the BLOCKHASH opcode.
    fn block_hash(&self, number: u64) -> Result<B256, StateError>;
}

/// An account's new value after a block: `None` deletes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// New nonce, balance and code hash (the storage root is recomputed), or `None`
    /// when the account was destroyed or became empty (EIP-161).
    pub account: Option<(u64, U256, B256)>,
    /// The account's storage was wiped before `storage` applies (created or destroyed).
    pub storage_reset: bool,
    /// Changed slots; a zero value deletes the slot.
    pub storage: std::collections::BTreeMap<U256, U256>,
}

/// Every change a block makes to state, in a deterministic order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// Changed accounts.
    pub accounts: std::collections::BTreeMap<Address, AccountChange>,
    /// Code deployed in the block, by hash.
    pub codes: std::collections::BTreeMap<B256, Bytes>,
}
