//! Native modules: chain logic reached as precompiled contracts at reserved addresses
//! (see STYLE.md). Each module lives in its own folder with its Solidity interface,
//! state layout, logic and tests, and touches chain state only through
//! [`ModuleState`], so the same logic runs over revm's journal (where a revert undoes
//! it) and over [`MemoryState`] in tests.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, Bytes, U256};

pub mod journal;
pub mod subnets;

pub use journal::JournalState;

/// Why a module call failed. A module returns these for the caller's mistakes (the
/// call reverts with the message) and for faults of the state underneath.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// The call is not allowed or its arguments are wrong; the transaction reverts
    /// with this message.
    #[error("{0}")]
    Revert(String),
    /// The call ran out of gas.
    #[error("out of gas")]
    OutOfGas,
    /// The state could not be read or written.
    #[error("state fault: {0}")]
    Fault(String),
}

/// A log a module emits, as an Ethereum log of the module's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleLog {
    /// Topics, the event signature first.
    pub topics: Vec<B256>,
    /// ABI-encoded non-indexed fields.
    pub data: Bytes,
}

/// Everything a native module may do to chain state. Storage is the storage of the
/// module's own account, so it is part of the state root like any contract's.
pub trait ModuleState {
    /// Reads slot `slot` of the module's account.
    fn sload(&mut self, slot: U256) -> Result<U256, ModuleError>;
    /// Writes slot `slot` of the module's account.
    fn sstore(&mut self, slot: U256, value: U256) -> Result<(), ModuleError>;
    /// The native balance of `who`, in wei.
    fn balance(&mut self, who: Address) -> Result<U256, ModuleError>;
    /// Moves `amount` wei from `from` to `to`; reverts when `from` holds less.
    fn transfer(&mut self, from: Address, to: Address, amount: U256) -> Result<(), ModuleError>;
    /// Creates `amount` wei on `to` (emission).
    fn mint(&mut self, to: Address, amount: U256) -> Result<(), ModuleError>;
    /// Destroys `amount` wei held by `from` (burned registration costs); reverts when
    /// `from` holds less.
    fn burn(&mut self, from: Address, amount: U256) -> Result<(), ModuleError>;
    /// Emits a log from the module's address.
    fn log(&mut self, log: ModuleLog);
    /// The number of the block being executed.
    fn block_number(&self) -> u64;
}

/// An in-memory [`ModuleState`] for tests and simulations.
#[derive(Clone, Debug, Default)]
pub struct MemoryState {
    /// The module's storage.
    pub storage: BTreeMap<U256, U256>,
    /// Native balances.
    pub balances: BTreeMap<Address, U256>,
    /// Logs emitted, in order.
    pub logs: Vec<ModuleLog>,
    /// The current block number.
    pub block: u64,
    /// Wei created by `mint` minus wei destroyed by `burn` (for conservation checks).
    pub net_minted: i128,
}

impl ModuleState for MemoryState {
    fn sload(&mut self, slot: U256) -> Result<U256, ModuleError> {
        Ok(self.storage.get(&slot).copied().unwrap_or_default())
    }

    fn sstore(&mut self, slot: U256, value: U256) -> Result<(), ModuleError> {
        if value.is_zero() {
            self.storage.remove(&slot);
        } else {
            self.storage.insert(slot, value);
        }
        Ok(())
    }

    fn balance(&mut self, who: Address) -> Result<U256, ModuleError> {
        Ok(self.balances.get(&who).copied().unwrap_or_default())
    }

    fn transfer(&mut self, from: Address, to: Address, amount: U256) -> Result<(), ModuleError> {
        let available = self.balance(from)?;
        let rest = available
            .checked_sub(amount)
            .ok_or_else(|| ModuleError::Revert("insufficient balance".into()))?;
        self.balances.insert(from, rest);
        let credited = self.balance(to)?.saturating_add(amount);
        self.balances.insert(to, credited);
        Ok(())
    }

    fn mint(&mut self, to: Address, amount: U256) -> Result<(), ModuleError> {
        let credited = self.balance(to)?.saturating_add(amount);
        self.balances.insert(to, credited);
        self.net_minted = self
            .net_minted
            .saturating_add(i128::try_from(amount).unwrap_or(i128::MAX));
        Ok(())
    }

    fn burn(&mut self, from: Address, amount: U256) -> Result<(), ModuleError> {
        let rest = self
            .balance(from)?
            .checked_sub(amount)
            .ok_or_else(|| ModuleError::Revert("insufficient balance".into()))?;
        self.balances.insert(from, rest);
        self.net_minted = self
            .net_minted
            .saturating_sub(i128::try_from(amount).unwrap_or(i128::MAX));
        Ok(())
    }

    fn log(&mut self, log: ModuleLog) {
        self.logs.push(log);
    }

    fn block_number(&self) -> u64 {
        self.block
    }
}

/// A read-only [`ModuleState`] over a block's state, for RPC queries (metagraph,
/// neuron): reads the module account's storage; every write is refused.
pub struct ViewState<'a> {
    state: &'a dyn noesis_primitives::StateView,
    account: Address,
    block: u64,
}

impl<'a> ViewState<'a> {
    /// Reads module `account`'s storage in `state`, the state after block `block`.
    pub fn new(state: &'a dyn noesis_primitives::StateView, account: Address, block: u64) -> Self {
        Self {
            state,
            account,
            block,
        }
    }
}

fn read_only() -> ModuleError {
    ModuleError::Revert("read-only view".to_string())
}

impl ModuleState for ViewState<'_> {
    fn sload(&mut self, slot: U256) -> Result<U256, ModuleError> {
        self.state
            .storage(self.account, slot)
            .map_err(|e| ModuleError::Fault(e.to_string()))
    }

    fn sstore(&mut self, _slot: U256, _value: U256) -> Result<(), ModuleError> {
        Err(read_only())
    }

    fn balance(&mut self, who: Address) -> Result<U256, ModuleError> {
        Ok(self
            .state
            .account(who)
            .map_err(|e| ModuleError::Fault(e.to_string()))?
            .map(|a| a.balance)
            .unwrap_or_default())
    }

    fn transfer(&mut self, _from: Address, _to: Address, _amount: U256) -> Result<(), ModuleError> {
        Err(read_only())
    }

    fn mint(&mut self, _to: Address, _amount: U256) -> Result<(), ModuleError> {
        Err(read_only())
    }

    fn burn(&mut self, _from: Address, _amount: U256) -> Result<(), ModuleError> {
        Err(read_only())
    }

    fn log(&mut self, _log: ModuleLog) {}

    fn block_number(&self) -> u64 {
        self.block
    }
}
