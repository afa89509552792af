//! The in-block state overlay: changes made by the block's transactions so far, on top
//! of a read-only [`StateView`]. It is revm's database during execution and becomes
//! the block's [`StateChanges`] at the end.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, Bytes, U256};
use noesis_primitives::{AccountChange, EMPTY_CODE_HASH, StateChanges, StateError, StateView};
use revm::{
    Database, DatabaseCommit,
    bytecode::Bytecode,
    database_interface::DBErrorMarker,
    primitives::{AddressMap, StorageKey, StorageValue},
    state::{Account, AccountInfo},
};

/// A state read failure as seen by revm.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DbError(#[from] pub StateError);

impl DBErrorMarker for DbError {}

/// Pending changes on top of a base state.
pub struct Overlay<'a> {
    base: &'a dyn StateView,
    accounts: BTreeMap<Address, AccountChange>,
    codes: BTreeMap<B256, Bytes>,
}

impl<'a> Overlay<'a> {
    /// An empty overlay over `base`.
    pub fn new(base: &'a dyn StateView) -> Self {
        Self {
            base,
            accounts: BTreeMap::new(),
            codes: BTreeMap::new(),
        }
    }

    /// The accumulated changes.
    pub fn into_changes(self) -> StateChanges {
        StateChanges {
            accounts: self.accounts,
            codes: self.codes,
        }
    }

    /// Applies a transaction's final account states (EIP-161 and EIP-6780 semantics).
    fn apply(&mut self, address: Address, account: Account) {
        if !account.is_touched() {
            return;
        }
        if account.is_selfdestructed() {
            self.accounts.insert(
                address,
                AccountChange {
                    account: None,
                    storage_reset: true,
                    storage: BTreeMap::new(),
                },
            );
            return;
        }
        let entry = self.accounts.entry(address).or_default();
        if account.is_created() {
            entry.storage_reset = true;
            entry.storage.clear();
        }
        for (slot, value) in account.storage.iter() {
            if value.is_changed() {
                entry.storage.insert(*slot, value.present_value());
            }
        }
        if account.is_empty() {
            // Touched empty accounts are removed (EIP-161).
            entry.account = None;
            return;
        }
        let info = &account.info;
        if info.code_hash != EMPTY_CODE_HASH
            && let Some(code) = &info.code
            && !self.codes.contains_key(&info.code_hash)
            && (account.is_created()
                || self
                    .base
                    .code(info.code_hash)
                    .map(|c| c.is_empty())
                    .unwrap_or(true))
        {
            // New code: a created contract, or an EIP-7702 delegation.
            self.codes.insert(info.code_hash, code.original_bytes());
        }
        entry.account = Some((info.nonce, info.balance, info.code_hash));
    }
}

impl Database for Overlay<'_> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let (nonce, balance, code_hash) = match self.accounts.get(&address) {
            Some(change) => match change.account {
                Some(fields) => fields,
                None => return Ok(None),
            },
            None => match self.base.account(address)? {
                Some(a) => (a.nonce, a.balance, a.code_hash),
                None => return Ok(None),
            },
        };
        // Code is loaded lazily through `code_by_hash`.
        let code = (code_hash == EMPTY_CODE_HASH).then(Bytecode::default);
        Ok(Some(AccountInfo {
            nonce,
            balance,
            code_hash,
            code,
            ..Default::default()
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == EMPTY_CODE_HASH {
            return Ok(Bytecode::default());
        }
        let bytes = match self.codes.get(&code_hash) {
            Some(code) => code.clone(),
            None => self.base.code(code_hash)?,
        };
        Ok(Bytecode::new_raw(bytes))
    }

    fn storage(
        &mut self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        if let Some(change) = self.accounts.get(&address) {
            if let Some(value) = change.storage.get(&index) {
                return Ok(*value);
            }
            if change.storage_reset || change.account.is_none() {
                return Ok(U256::ZERO);
            }
        }
        Ok(self.base.storage(address, index)?)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        Ok(self.base.block_hash(number)?)
    }
}

impl DatabaseCommit for Overlay<'_> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        // The order of application does not matter: each account is independent.
        for (address, account) in changes {
            self.apply(address, account);
        }
    }
}
