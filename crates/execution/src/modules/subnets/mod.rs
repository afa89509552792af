//! Subnets and their incentive market (Subtensor's semantics): registration, staking
//! through per-subnet pools, weights with commit-reveal, and the Yuma epoch every tempo.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::float_arithmetic,
    clippy::arithmetic_side_effects
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod dispatch;
pub mod epoch;
pub mod interface;
pub mod logic;
pub mod pool;
pub mod query;
pub mod state;
pub mod weights;

#[cfg(test)]
mod tests;

use alloy_primitives::{Address, B256, U256, address};

pub use dispatch::dispatch;
pub use epoch::end_block;

/// Bittensor EVM's metagraph precompile address.
pub const METAGRAPH_ADDRESS: Address = address!("0x0000000000000000000000000000000000000802");
/// Bittensor EVM's subnet precompile address.
pub const SUBNET_ADDRESS: Address = address!("0x0000000000000000000000000000000000000803");
/// Bittensor EVM's neuron precompile address.
pub const NEURON_ADDRESS: Address = address!("0x0000000000000000000000000000000000000804");
/// Bittensor EVM's staking (V2) precompile address. **This account holds all native in the
/// module's custody**: pool native reserves (seeded by network locks and emission) and
/// nothing else; value sent to any of the module's addresses is moved here first.
pub const STAKING_ADDRESS: Address = address!("0x0000000000000000000000000000000000000805");

/// One native token in wei.
pub const NATIVE: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);
/// `1e9` wei: the unit ("rao") of the Bittensor-compatible `uint64` amounts and of the
/// stake and emission the epoch works with.
pub const RAO: u64 = 1_000_000_000;
/// Native wei minted into each subnet's pool every block.
pub const NATIVE_BLOCK_EMISSION: U256 = U256::from_limbs([100_000_000_000_000_000, 0, 0, 0]);
/// Alpha accruing to each subnet's pending emission every block (one alpha, as Subtensor).
pub const ALPHA_BLOCK_EMISSION: U256 = NATIVE;
/// Subnet owner cut, `/ 65535` (Subtensor's default `SubnetOwnerCut`, 18%).
pub const OWNER_CUT_U16: u16 = 11_796;
/// Lowest network lock cost (100 native).
pub const NETWORK_MIN_LOCK: U256 = U256::from_limbs([0x6BC7_5E2D_6310_0000, 0x5, 0, 0]);
/// Blocks over which a doubled lock cost decays back (Subtensor: 14 days of 12 s blocks).
pub const LOCK_REDUCTION_INTERVAL: u64 = 14 * 7200;
/// Most subnets.
pub const MAX_NETWORKS: u16 = 1024;

/// The hotkey an EVM address acts as: `bytes32(uint256(uint160(address)))`, as Bittensor
/// EVM's neuron precompile acts for the caller's mirror account.
pub fn hotkey_of(a: Address) -> B256 {
    a.into_word()
}

pub(crate) fn revert(msg: &str) -> crate::modules::ModuleError {
    crate::modules::ModuleError::Revert(msg.to_string())
}
