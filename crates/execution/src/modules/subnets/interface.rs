//! The Solidity interface of the subnets module, declared once with alloy's `sol!`.

use alloy_sol_types::sol;

/// Events the module emits (as logs of the address that was called).
pub mod events {
    use super::sol;

    sol! {
        #![sol(abi)]
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

sol! {
    #![sol(abi)]
    /// Axon endpoint as the metagraph precompile returns it.
    struct AxonInfo { uint64 block; uint32 version; uint128 ip; uint16 port; uint8 ip_type; uint8 protocol; }

    /// Bittensor EVM metagraph precompile (0x…0802). Stake and emission in rao (`1e9` wei).
    interface IMetagraph {
        function getUidCount(uint16 netuid) external view returns (uint16);
        function getStake(uint16 netuid, uint16 uid) external view returns (uint64);
        function getRank(uint16 netuid, uint16 uid) external view returns (uint16);
        function getTrust(uint16 netuid, uint16 uid) external view returns (uint16);
        function getConsensus(uint16 netuid, uint16 uid) external view returns (uint16);
        function getIncentive(uint16 netuid, uint16 uid) external view returns (uint16);
        function getDividends(uint16 netuid, uint16 uid) external view returns (uint16);
        function getEmission(uint16 netuid, uint16 uid) external view returns (uint64);
        function getVtrust(uint16 netuid, uint16 uid) external view returns (uint16);
        function getValidatorStatus(uint16 netuid, uint16 uid) external view returns (bool);
        function getLastUpdate(uint16 netuid, uint16 uid) external view returns (uint64);
        function getIsActive(uint16 netuid, uint16 uid) external view returns (bool);
        function getAxon(uint16 netuid, uint16 uid) external view returns (AxonInfo memory);
        function getHotkey(uint16 netuid, uint16 uid) external view returns (bytes32);
        function getColdkey(uint16 netuid, uint16 uid) external view returns (bytes32);
    }

    /// Bittensor EVM subnet precompile (0x…0803), the supported subset. Burns in rao.
    interface ISubnet {
        function registerNetwork(bytes32 hotkey) external payable;
        function registerNetwork(bytes32 hotkey, string subnetName, string githubRepo, string subnetContact, string subnetUrl, string discord, string description, string additional) external payable;
        function getWeightsVersionKey(uint16 netuid) external view returns (uint64);
        function setWeightsVersionKey(uint16 netuid, uint64 weightsVersionKey) external payable;
        function getWeightsSetRateLimit(uint16 netuid) external view returns (uint64);
        function setWeightsSetRateLimit(uint16 netuid, uint64 weightsSetRateLimit) external payable;
        function getAdjustmentAlpha(uint16 netuid) external view returns (uint64);
        function setAdjustmentAlpha(uint16 netuid, uint64 adjustmentAlpha) external payable;
        function getMaxWeightLimit(uint16 netuid) external view returns (uint16);
        function setMaxWeightLimit(uint16 netuid, uint16 maxWeightLimit) external payable;
        function getImmunityPeriod(uint16 netuid) external view returns (uint16);
        function setImmunityPeriod(uint16 netuid, uint64 immunityPeriod) external payable;
        function getMinAllowedWeights(uint16 netuid) external view returns (uint16);
        function setMinAllowedWeights(uint16 netuid, uint16 minAllowedWeights) external payable;
        function getKappa(uint16 netuid) external view returns (uint16);
        function setKappa(uint16 netuid, uint16 kappa) external payable;
        function getActivityCutoff(uint16 netuid) external view returns (uint16);
        function setActivityCutoff(uint16 netuid, uint16 activityCutoff) external payable;
        function getNetworkRegistrationAllowed(uint16 netuid) external view returns (bool);
        function setNetworkRegistrationAllowed(uint16 netuid, bool networkRegistrationAllowed) external payable;
        function getMinBurn(uint16 netuid) external view returns (uint64);
        function setMinBurn(uint16 netuid, uint64 minBurn) external payable;
        function getMaxBurn(uint16 netuid) external view returns (uint64);
        function setMaxBurn(uint16 netuid, uint64 maxBurn) external payable;
        function getBondsMovingAverage(uint16 netuid) external view returns (uint64);
        function setBondsMovingAverage(uint16 netuid, uint64 bondsMovingAverage) external payable;
        function getCommitRevealWeightsEnabled(uint16 netuid) external view returns (bool);
        function setCommitRevealWeightsEnabled(uint16 netuid, bool commitRevealWeightsEnabled) external payable;
        function getLiquidAlphaEnabled(uint16 netuid) external view returns (bool);
        function setLiquidAlphaEnabled(uint16 netuid, bool liquidAlphaEnabled) external payable;
        function getYuma3Enabled(uint16 netuid) external view returns (bool);
        function setYuma3Enabled(uint16 netuid, bool yuma3Enabled) external payable;
        function getAlphaValues(uint16 netuid) external view returns (uint16, uint16);
        function setAlphaValues(uint16 netuid, uint16 alphaLow, uint16 alphaHigh) external payable;
        function getCommitRevealWeightsInterval(uint16 netuid) external view returns (uint64);
        function setCommitRevealWeightsInterval(uint16 netuid, uint64 commitRevealWeightsInterval) external payable;
    }

    /// Bittensor EVM neuron precompile (0x…0804), without Prometheus and TLS axons.
    interface INeuron {
        function burnedRegister(uint16 netuid, bytes32 hotkey) external payable;
        function serveAxon(uint16 netuid, uint32 version, uint128 ip, uint16 port, uint8 ipType, uint8 protocol, uint8 placeholder1, uint8 placeholder2) external payable;
        function setWeights(uint16 netuid, uint16[] dests, uint16[] weights, uint64 versionKey) external payable;
        function commitWeights(uint16 netuid, bytes32 commitHash) external payable;
        function revealWeights(uint16 netuid, uint16[] uids, uint16[] values, uint16[] salt, uint64 versionKey) external payable;
    }

    /// Bittensor EVM staking V2 precompile (0x…0805). Amounts in rao (`1e9` wei, of native
    /// or alpha), limit prices in rao per alpha; staked native is taken from the caller's
    /// balance (or from `msg.value`, which must then equal the amount).
    interface IStaking {
        function addStake(bytes32 hotkey, uint256 amount, uint256 netuid) external payable;
        function removeStake(bytes32 hotkey, uint256 amount, uint256 netuid) external;
        function addStakeLimit(bytes32 hotkey, uint256 amount, uint256 limit_price, bool allow_partial, uint256 netuid) external payable;
        function removeStakeLimit(bytes32 hotkey, uint256 amount, uint256 limit_price, bool allow_partial, uint256 netuid) external;
        function getTotalColdkeyStake(bytes32 coldkey) external view returns (uint256);
        function getTotalHotkeyStake(bytes32 hotkey) external view returns (uint256);
        function getStake(bytes32 hotkey, bytes32 coldkey, uint256 netuid) external view returns (uint256);
        function getTotalAlphaStaked(bytes32 hotkey, uint256 netuid) external view returns (uint256);
    }

    /// Noesis extensions, served at every module address beside the Bittensor interfaces.
    /// Amounts in wei, prices in wei per alpha scaled by 1e18.
    interface INoesisSubnets {
        function networkCount() external view returns (uint16);
        function getLockCost() external view returns (uint256);
        function getBurn(uint16 netuid) external view returns (uint256);
        function getSubnetOwner(uint16 netuid) external view returns (address);
        function getPool(uint16 netuid) external view returns (uint256 nativeReserve, uint256 alphaReserve, uint256 price);
        function getHyperparameter(uint16 netuid, uint8 param) external view returns (uint256);
        function setHyperparameter(uint16 netuid, uint8 param, uint256 value) external;
        function getReason(uint16 netuid, uint16 uid) external view returns (uint8);
        function getPrunedAt(uint16 netuid, bytes32 hotkey) external view returns (uint64);
        function getRegistrationBlock(uint16 netuid, uint16 uid) external view returns (uint64);
        function getCommit(uint16 netuid, uint16 uid) external view returns (bytes32 hash, uint64 blockNumber);
        function getEmissionWei(uint16 netuid, uint16 uid) external view returns (uint256);
        function addStakeWei(bytes32 hotkey, uint16 netuid, uint256 limitPrice, bool allowPartial) external payable;
        function removeStakeWei(bytes32 hotkey, uint16 netuid, uint256 alpha, uint256 limitPrice, bool allowPartial) external;
    }
}
