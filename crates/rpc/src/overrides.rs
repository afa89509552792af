//! State overrides for `eth_call` and `eth_estimateGas` (geth's third parameter):
//! replace an account's balance, nonce, code, or storage for one simulation.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rpc_types_eth::state::StateOverride;
use noesis_primitives::{AccountState, EMPTY_CODE_HASH, StateError, StateView};

use crate::error::RpcError;

/// A state view with overrides applied on top.
pub struct OverriddenState<'a> {
    base: &'a dyn StateView,
    overrides: StateOverride,
}

impl<'a> OverriddenState<'a> {
    /// Applies `overrides` over `base`.
    pub fn new(base: &'a dyn StateView, overrides: StateOverride) -> Result<Self, RpcError> {
        for (address, o) in &overrides {
            if o.state.is_some() && o.state_diff.is_some() {
                return Err(RpcError::InvalidParams(format!(
                    "account {address} has both 'state' and 'stateDiff'"
                )));
            }
            if o.move_precompile_to.is_some() {
                return Err(RpcError::InvalidParams(
                    "movePrecompileToAddress is not supported".into(),
                ));
            }
        }
        Ok(Self { base, overrides })
    }
}

impl StateView for OverriddenState<'_> {
    fn account(&self, address: Address) -> Result<Option<AccountState>, StateError> {
        let base = self.base.account(address)?;
        let Some(o) = self.overrides.get(&address) else {
            return Ok(base);
        };
        let mut account = base.unwrap_or_default();
        if let Some(balance) = o.balance {
            account.balance = balance;
        }
        if let Some(nonce) = o.nonce {
            account.nonce = nonce;
        }
        if let Some(code) = &o.code {
            account.code_hash = if code.is_empty() {
                EMPTY_CODE_HASH
            } else {
                keccak256(code)
            };
        }
        Ok(Some(account))
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        if let Some(o) = self.overrides.get(&address) {
            let key = B256::from(slot);
            if let Some(state) = &o.state {
                return Ok(state
                    .get(&key)
                    .map(|v| U256::from_be_bytes(v.0))
                    .unwrap_or_default());
            }
            if let Some(value) = o.state_diff.as_ref().and_then(|d| d.get(&key)) {
                return Ok(U256::from_be_bytes(value.0));
            }
        }
        self.base.storage(address, slot)
    }

    fn code(&self, code_hash: B256) -> Result<Bytes, StateError> {
        for o in self.overrides.values() {
            if let Some(code) = &o.code
                && keccak256(code) == code_hash
            {
                return Ok(code.clone());
            }
        }
        self.base.code(code_hash)
    }

    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        self.base.block_hash(number)
    }
}
