//! The chain spec: chain id, block gas limit and the genesis allocation, read from JSON.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::dev::dev_accounts;

/// Chain id of Noesis dev and local networks (0x1ca9). Wallets must be pointed at it.
pub const DEV_CHAIN_ID: u64 = 7337;
/// Default block gas limit: 30 million, like geth and anvil.
pub const DEFAULT_GAS_LIMIT: u64 = 30_000_000;
/// Base fee of the genesis block (1 gwei, as in EIP-1559's launch).
pub const INITIAL_BASE_FEE: u64 = 1_000_000_000;

/// An account in the genesis allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Starting nonce.
    #[serde(default)]
    pub nonce: u64,
    /// Runtime bytecode, if the account is a contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Bytes>,
    /// Initial storage slots.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<B256, B256>,
}

/// What defines a chain before its first block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainSpec {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Block gas limit.
    #[serde(default = "default_gas_limit")]
    pub gas_limit: u64,
    /// Base fee of the genesis block, in wei.
    #[serde(default = "default_base_fee")]
    pub initial_base_fee: u64,
    /// Timestamp of the genesis block, in seconds.
    #[serde(default)]
    pub genesis_timestamp: u64,
    /// Genesis allocation.
    #[serde(default)]
    pub alloc: BTreeMap<Address, GenesisAccount>,
    /// The validator set of a multi-validator network: their ed25519 public keys
    /// (ADR 0013). Empty on a dev chain, which one sealer runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validators: Vec<B256>,
}

fn default_gas_limit() -> u64 {
    DEFAULT_GAS_LIMIT
}
fn default_base_fee() -> u64 {
    INITIAL_BASE_FEE
}

/// A chain spec that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ChainSpecError {
    /// The JSON did not parse.
    #[error("invalid chain spec JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A value is out of its allowed range.
    #[error("invalid chain spec: {0}")]
    Invalid(&'static str),
}

impl ChainSpec {
    /// The dev chain: chain id 7337, 30M gas, and the 10 well-known dev accounts funded
    /// with 10,000 ETH each.
    pub fn dev() -> Self {
        let balance = U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64));
        let alloc = dev_accounts(10)
            .into_iter()
            .map(|a| {
                (
                    a.address,
                    GenesisAccount {
                        balance,
                        ..Default::default()
                    },
                )
            })
            .collect();
        Self {
            chain_id: DEV_CHAIN_ID,
            gas_limit: DEFAULT_GAS_LIMIT,
            initial_base_fee: INITIAL_BASE_FEE,
            genesis_timestamp: 0,
            alloc,
            validators: Vec::new(),
        }
    }

    /// Parses and checks a chain spec from JSON.
    pub fn from_json(text: &str) -> Result<Self, ChainSpecError> {
        let spec: Self = serde_json::from_str(text)?;
        if spec.chain_id == 0 {
            return Err(ChainSpecError::Invalid("chainId must be non-zero"));
        }
        if spec.gas_limit < 5_000 {
            return Err(ChainSpecError::Invalid("gasLimit must be at least 5000"));
        }
        let mut keys = spec.validators.clone();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(ChainSpecError::Invalid(
                "validators lists a public key twice",
            ));
        }
        Ok(spec)
    }

    /// A hash identifying this spec, stored with the data dir so a node refuses to
    /// open a data dir made for another chain.
    pub fn hash(&self) -> B256 {
        alloy_primitives::keccak256(serde_json::to_vec(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_spec_round_trips_through_json() {
        let spec = ChainSpec::dev();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(ChainSpec::from_json(&json).unwrap(), spec);
        assert_eq!(spec.alloc.len(), 10);
    }

    #[test]
    fn validators_are_optional_and_unique() {
        // A spec without validators hashes as before they existed.
        let dev = ChainSpec::dev();
        assert!(!serde_json::to_string(&dev).unwrap().contains("validators"));
        let key = "0x2191aa3d8e5bd1a3f6a3b0c1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b";
        let other = "0x57f3d4fc8e5bd1a3f6a3b0c1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b";
        let spec = ChainSpec::from_json(&format!(
            r#"{{"chainId": 5, "validators": ["{key}", "{other}"]}}"#
        ))
        .unwrap();
        assert_eq!(spec.validators.len(), 2);
        assert_ne!(
            spec.hash(),
            ChainSpec {
                validators: vec![],
                ..spec.clone()
            }
            .hash()
        );
        let err = ChainSpec::from_json(&format!(
            r#"{{"chainId": 5, "validators": ["{key}", "{key}"]}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("twice"), "{err}");
        assert!(ChainSpec::from_json(r#"{"chainId": 5, "validators": ["0x12"]}"#).is_err());
    }

    #[test]
    fn zero_chain_id_is_refused() {
        let err = ChainSpec::from_json(r#"{"chainId":0}"#).unwrap_err();
        assert!(err.to_string().contains("chainId"));
    }
}
