//! The Solidity interface of the subnets module, declared once with alloy's `sol!`.

use alloy_sol_types::sol;

/// Events the module emits (as logs of the address that was called).
pub mod events {
    use super::sol;

    sol! {
        /// A subnet was created.
        event NetworkRegistered(uint16 indexed netuid, address indexed owner, bytes32 hotkey, uint256 lockCost);
        /// An owner changed a hyperparameter.
        event HyperparameterSet(uint16 indexed netuid, uint8 indexed param, uint256 value);
        /// A hotkey took a uid.
        event NeuronRegistered(uint16 indexed netuid, uint16 uid, bytes32 indexed hotkey, address coldkey, uint256 burn);
        /// A uid's occupant was pruned to make room.
        event NeuronPruned(uint16 indexed netuid, uint16 uid, bytes32 indexed hotkey);
        /// An axon endpoint was published.
        event AxonServed(uint16 indexed netuid, uint16 uid, uint128 ip, uint16 port);
        /// Native was staked into alpha.
        event StakeAdded(address indexed coldkey, bytes32 indexed hotkey, uint16 netuid, uint256 nativeIn, uint256 alphaOut);
        /// Alpha was unstaked into native.
        event StakeRemoved(address indexed coldkey, bytes32 indexed hotkey, uint16 netuid, uint256 alphaIn, uint256 nativeOut);
        /// Weights were set directly.
        event WeightsSet(uint16 indexed netuid, uint16 indexed uid);
        /// A weight hash was committed.
        event WeightsCommitted(uint16 indexed netuid, uint16 indexed uid, bytes32 hash);
        /// Committed weights were revealed and stored.
        event WeightsRevealed(uint16 indexed netuid, uint16 indexed uid);
        /// A uid earned alpha in an epoch.
        event NeuronEmission(uint16 indexed netuid, uint16 indexed uid, bytes32 hotkey, uint256 incentiveAlpha, uint256 dividendAlpha);
        /// An epoch ran and distributed its emission.
        event EpochEmission(uint16 indexed netuid, uint64 blockNumber, uint256 ownerCut, uint256 minerAlpha, uint256 validatorAlpha, uint256 carried);
    }
}
