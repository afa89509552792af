//! Read-only views for RPC (`noesis_metagraph`, `noesis_neuron`): everything a subnet
//! participant needs to see why a uid was or was not paid.

use alloy_primitives::{Address, B256, U256};

use super::state::{
    self, Axon, Neuron, Param, Reason, Subnet, hotkey_alpha, neuron, neuron_u64, param_u64,
};
use crate::modules::{ModuleError, ModuleState};

/// One uid of a subnet as the last epoch left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeuronView {
    /// The uid.
    pub uid: u16,
    /// Its hotkey.
    pub hotkey: B256,
    /// The address that registered it.
    pub coldkey: Address,
    /// Alpha staked on the hotkey in this subnet.
    pub stake: U256,
    /// Rank, consensus, incentive, dividends, trust, validator trust (`/ 65535`).
    pub rank: u16,
    /// Consensus (`/ 65535`).
    pub consensus: u16,
    /// Incentive (`/ 65535`).
    pub incentive: u16,
    /// Dividends (`/ 65535`).
    pub dividends: u16,
    /// Trust (`/ 65535`).
    pub trust: u16,
    /// Validator trust (`/ 65535`).
    pub validator_trust: u16,
    /// Alpha emitted to it in the last epoch.
    pub emission: U256,
    /// Holds a validator permit.
    pub validator_permit: bool,
    /// Active at the last epoch.
    pub active: bool,
    /// Block of its last weights.
    pub last_update: u64,
    /// Block it registered at.
    pub registration_block: u64,
    /// Still inside the immunity period (cannot be pruned).
    pub immune: bool,
    /// Pruning score.
    pub pruning_score: u64,
    /// Why it earned nothing in the last epoch (`Earned` when it did).
    pub reason: Reason,
    /// Its served endpoint, if any.
    pub axon: Option<Axon>,
}

/// A subnet's metagraph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetagraphView {
    /// The subnet.
    pub netuid: u16,
    /// Its owner.
    pub owner: Address,
    /// Blocks per epoch.
    pub tempo: u64,
    /// Block of the last epoch.
    pub last_epoch_block: u64,
    /// Current registration burn, in wei.
    pub burn: U256,
    /// Pool reserves (native wei, alpha).
    pub native_reserve: U256,
    /// Pool alpha reserve.
    pub alpha_reserve: U256,
    /// Every uid, in order.
    pub neurons: Vec<NeuronView>,
}

/// The metagraph of `netuid`, or `None` when no such subnet exists.
pub fn metagraph<S: ModuleState>(
    s: &mut S,
    netuid: u16,
) -> Result<Option<MetagraphView>, ModuleError> {
    let owner = state::subnet(s, netuid, Subnet::Owner)?;
    if owner.is_zero() {
        return Ok(None);
    }
    let n = state::uid_count(s, netuid)?;
    let mut neurons = Vec::with_capacity(usize::from(n));
    for uid in 0..n {
        if let Some(view) = neuron_view(s, netuid, uid)? {
            neurons.push(view);
        }
    }
    Ok(Some(MetagraphView {
        netuid,
        owner: Address::from_word(B256::from(owner)),
        tempo: param_u64(s, netuid, Param::Tempo)?,
        last_epoch_block: u64::try_from(state::subnet(s, netuid, Subnet::LastEpochBlock)?)
            .unwrap_or(u64::MAX),
        burn: state::subnet(s, netuid, Subnet::Burn)?,
        native_reserve: state::subnet(s, netuid, Subnet::NativeReserve)?,
        alpha_reserve: state::subnet(s, netuid, Subnet::AlphaReserve)?,
        neurons,
    }))
}

/// One uid of `netuid`, or `None` when the subnet or the uid does not exist.
pub fn neuron_view<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    uid: u16,
) -> Result<Option<NeuronView>, ModuleError> {
    if state::subnet(s, netuid, Subnet::Owner)?.is_zero() {
        return Ok(None);
    }
    let n = state::uid_count(s, netuid)?;
    if uid >= n {
        return Ok(None);
    }
    let proportion = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
    let hotkey = B256::from(neuron(s, netuid, uid, Neuron::Hotkey)?);
    let registration_block = neuron_u64(s, netuid, uid, Neuron::RegistrationBlock)?;
    let immunity = param_u64(s, netuid, Param::ImmunityPeriod)?;
    let axon = neuron(s, netuid, uid, Neuron::Axon)?;
    Ok(Some(NeuronView {
        uid,
        hotkey,
        coldkey: Address::from_word(B256::from(neuron(s, netuid, uid, Neuron::Coldkey)?)),
        stake: hotkey_alpha(s, netuid, hotkey)?,
        rank: proportion(neuron_u64(s, netuid, uid, Neuron::Rank)?),
        consensus: proportion(neuron_u64(s, netuid, uid, Neuron::Consensus)?),
        incentive: proportion(neuron_u64(s, netuid, uid, Neuron::Incentive)?),
        dividends: proportion(neuron_u64(s, netuid, uid, Neuron::Dividends)?),
        trust: proportion(neuron_u64(s, netuid, uid, Neuron::Trust)?),
        validator_trust: proportion(neuron_u64(s, netuid, uid, Neuron::ValidatorTrust)?),
        emission: neuron(s, netuid, uid, Neuron::Emission)?,
        validator_permit: !neuron(s, netuid, uid, Neuron::ValidatorPermit)?.is_zero(),
        active: !neuron(s, netuid, uid, Neuron::Active)?.is_zero(),
        last_update: neuron_u64(s, netuid, uid, Neuron::LastUpdate)?,
        registration_block,
        immune: s.block_number() < registration_block.saturating_add(immunity),
        pruning_score: neuron_u64(s, netuid, uid, Neuron::PruningScore)?,
        reason: Reason::from_code(neuron_u64(s, netuid, uid, Neuron::Reason)?)
            .unwrap_or(Reason::Earned),
        axon: (!axon.is_zero()).then(|| Axon::unpack(axon)),
    }))
}
