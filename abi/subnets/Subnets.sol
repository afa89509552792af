// SPDX-License-Identifier: Apache-2.0
// Generated from crates/execution/src/modules/subnets/interface.rs by
// crates/execution/tests/subnets_abi.rs; do not edit. Regenerate with
// `NOESIS_UPDATE_ABI=1 cargo test -p noesis-execution --test subnets_abi`.
//
// Noesis subnets module: IMetagraph at 0x0000000000000000000000000000000000000802,
// ISubnet at 0x…0803, INeuron at 0x…0804, IStaking at 0x…0805; INoesisSubnets at all
// four. Any of them may emit the events of ISubnetsEvents.
pragma solidity ^0.8.0;

interface IMetagraph {
    struct AxonInfo {
        uint64 block;
        uint32 version;
        uint128 ip;
        uint16 port;
        uint8 ip_type;
        uint8 protocol;
    }

    function getAxon(uint16 netuid, uint16 uid) external view returns (AxonInfo memory);
    function getColdkey(uint16 netuid, uint16 uid) external view returns (bytes32);
    function getConsensus(uint16 netuid, uint16 uid) external view returns (uint16);
    function getDividends(uint16 netuid, uint16 uid) external view returns (uint16);
    function getEmission(uint16 netuid, uint16 uid) external view returns (uint64);
    function getHotkey(uint16 netuid, uint16 uid) external view returns (bytes32);
    function getIncentive(uint16 netuid, uint16 uid) external view returns (uint16);
    function getIsActive(uint16 netuid, uint16 uid) external view returns (bool);
    function getLastUpdate(uint16 netuid, uint16 uid) external view returns (uint64);
    function getRank(uint16 netuid, uint16 uid) external view returns (uint16);
    function getStake(uint16 netuid, uint16 uid) external view returns (uint64);
    function getTrust(uint16 netuid, uint16 uid) external view returns (uint16);
    function getUidCount(uint16 netuid) external view returns (uint16);
    function getValidatorStatus(uint16 netuid, uint16 uid) external view returns (bool);
    function getVtrust(uint16 netuid, uint16 uid) external view returns (uint16);
}

interface ISubnet {
    function getActivityCutoff(uint16 netuid) external view returns (uint16);
    function getAdjustmentAlpha(uint16 netuid) external view returns (uint64);
    function getAlphaValues(uint16 netuid) external view returns (uint16, uint16);
    function getBondsMovingAverage(uint16 netuid) external view returns (uint64);
    function getCommitRevealWeightsEnabled(uint16 netuid) external view returns (bool);
    function getCommitRevealWeightsInterval(uint16 netuid) external view returns (uint64);
    function getImmunityPeriod(uint16 netuid) external view returns (uint16);
    function getKappa(uint16 netuid) external view returns (uint16);
    function getLiquidAlphaEnabled(uint16 netuid) external view returns (bool);
    function getMaxBurn(uint16 netuid) external view returns (uint64);
    function getMaxWeightLimit(uint16 netuid) external view returns (uint16);
    function getMinAllowedWeights(uint16 netuid) external view returns (uint16);
    function getMinBurn(uint16 netuid) external view returns (uint64);
    function getNetworkRegistrationAllowed(uint16 netuid) external view returns (bool);
    function getWeightsSetRateLimit(uint16 netuid) external view returns (uint64);
    function getWeightsVersionKey(uint16 netuid) external view returns (uint64);
    function getYuma3Enabled(uint16 netuid) external view returns (bool);
    function registerNetwork(bytes32 hotkey) external payable;
    function registerNetwork(bytes32 hotkey, string memory subnetName, string memory githubRepo, string memory subnetContact, string memory subnetUrl, string memory discord, string memory description, string memory additional) external payable;
    function setActivityCutoff(uint16 netuid, uint16 activityCutoff) external payable;
    function setAdjustmentAlpha(uint16 netuid, uint64 adjustmentAlpha) external payable;
    function setAlphaValues(uint16 netuid, uint16 alphaLow, uint16 alphaHigh) external payable;
    function setBondsMovingAverage(uint16 netuid, uint64 bondsMovingAverage) external payable;
    function setCommitRevealWeightsEnabled(uint16 netuid, bool commitRevealWeightsEnabled) external payable;
    function setCommitRevealWeightsInterval(uint16 netuid, uint64 commitRevealWeightsInterval) external payable;
    function setImmunityPeriod(uint16 netuid, uint64 immunityPeriod) external payable;
    function setKappa(uint16 netuid, uint16 kappa) external payable;
    function setLiquidAlphaEnabled(uint16 netuid, bool liquidAlphaEnabled) external payable;
    function setMaxBurn(uint16 netuid, uint64 maxBurn) external payable;
    function setMaxWeightLimit(uint16 netuid, uint16 maxWeightLimit) external payable;
    function setMinAllowedWeights(uint16 netuid, uint16 minAllowedWeights) external payable;
    function setMinBurn(uint16 netuid, uint64 minBurn) external payable;
    function setNetworkRegistrationAllowed(uint16 netuid, bool networkRegistrationAllowed) external payable;
    function setWeightsSetRateLimit(uint16 netuid, uint64 weightsSetRateLimit) external payable;
    function setWeightsVersionKey(uint16 netuid, uint64 weightsVersionKey) external payable;
    function setYuma3Enabled(uint16 netuid, bool yuma3Enabled) external payable;
}

interface INeuron {
    function burnedRegister(uint16 netuid, bytes32 hotkey) external payable;
    function commitWeights(uint16 netuid, bytes32 commitHash) external payable;
    function revealWeights(uint16 netuid, uint16[] memory uids, uint16[] memory values, uint16[] memory salt, uint64 versionKey) external payable;
    function serveAxon(uint16 netuid, uint32 version, uint128 ip, uint16 port, uint8 ipType, uint8 protocol, uint8 placeholder1, uint8 placeholder2) external payable;
    function setWeights(uint16 netuid, uint16[] memory dests, uint16[] memory weights, uint64 versionKey) external payable;
}

interface IStaking {
    function addStake(bytes32 hotkey, uint256 amount, uint256 netuid) external payable;
    function addStakeLimit(bytes32 hotkey, uint256 amount, uint256 limit_price, bool allow_partial, uint256 netuid) external payable;
    function getStake(bytes32 hotkey, bytes32 coldkey, uint256 netuid) external view returns (uint256);
    function getTotalAlphaStaked(bytes32 hotkey, uint256 netuid) external view returns (uint256);
    function getTotalColdkeyStake(bytes32 coldkey) external view returns (uint256);
    function getTotalHotkeyStake(bytes32 hotkey) external view returns (uint256);
    function removeStake(bytes32 hotkey, uint256 amount, uint256 netuid) external;
    function removeStakeLimit(bytes32 hotkey, uint256 amount, uint256 limit_price, bool allow_partial, uint256 netuid) external;
}

interface INoesisSubnets {
    function addStakeWei(bytes32 hotkey, uint16 netuid, uint256 limitPrice, bool allowPartial) external payable;
    function getBurn(uint16 netuid) external view returns (uint256);
    function getCommit(uint16 netuid, uint16 uid) external view returns (bytes32 hash, uint64 blockNumber);
    function getEmissionWei(uint16 netuid, uint16 uid) external view returns (uint256);
    function getHyperparameter(uint16 netuid, uint8 param) external view returns (uint256);
    function getLockCost() external view returns (uint256);
    function getPool(uint16 netuid) external view returns (uint256 nativeReserve, uint256 alphaReserve, uint256 price);
    function getPrunedAt(uint16 netuid, bytes32 hotkey) external view returns (uint64);
    function getReason(uint16 netuid, uint16 uid) external view returns (uint8);
    function getRegistrationBlock(uint16 netuid, uint16 uid) external view returns (uint64);
    function getSubnetOwner(uint16 netuid) external view returns (address);
    function networkCount() external view returns (uint16);
    function removeStakeWei(bytes32 hotkey, uint16 netuid, uint256 alpha, uint256 limitPrice, bool allowPartial) external;
    function setHyperparameter(uint16 netuid, uint8 param, uint256 value) external;
}

interface ISubnetsEvents {
    event AxonServed(uint16 indexed netuid, uint16 uid, uint128 ip, uint16 port);
    event EpochEmission(uint16 indexed netuid, uint64 blockNumber, uint256 ownerCut, uint256 minerAlpha, uint256 validatorAlpha, uint256 carried);
    event HyperparameterSet(uint16 indexed netuid, uint8 indexed param, uint256 value);
    event NetworkRegistered(uint16 indexed netuid, address indexed owner, bytes32 hotkey, uint256 lockCost);
    event NeuronEmission(uint16 indexed netuid, uint16 indexed uid, bytes32 hotkey, uint256 incentiveAlpha, uint256 dividendAlpha);
    event NeuronPruned(uint16 indexed netuid, uint16 uid, bytes32 indexed hotkey);
    event NeuronRegistered(uint16 indexed netuid, uint16 uid, bytes32 indexed hotkey, address coldkey, uint256 burn);
    event StakeAdded(address indexed coldkey, bytes32 indexed hotkey, uint16 netuid, uint256 nativeIn, uint256 alphaOut);
    event StakeRemoved(address indexed coldkey, bytes32 indexed hotkey, uint16 netuid, uint256 alphaIn, uint256 nativeOut);
    event WeightsCommitted(uint16 indexed netuid, uint16 indexed uid, bytes32 hash);
    event WeightsRevealed(uint16 indexed netuid, uint16 indexed uid);
    event WeightsSet(uint16 indexed netuid, uint16 indexed uid);
}
