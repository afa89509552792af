//! End of block: emission injection, burn adjustment, and each subnet's Yuma epoch.
//!
//! Every block, for every subnet:
//! 1. [`NATIVE_BLOCK_EMISSION`] wei is minted into custody and added to the pool's native
//!    reserve, with alpha added at the pool price so the price is unchanged (dynamic TAO's
//!    `tao_in` / `alpha_in`), and [`ALPHA_BLOCK_EMISSION`] alpha accrues as pending
//!    emission (`alpha_out`);
//! 2. every `adjustment_interval` blocks the burn cost moves towards
//!    `burn * (regs + target) / (2 * target)`, smoothed by `adjustment_alpha / 2^64`, and is
//!    clamped to `[min_burn, max_burn]` (Subtensor's `upgraded_burn`);
//! 3. when `(block + netuid + 1) % (tempo + 1) == 0` the epoch runs: the owner takes
//!    `11796 / 65535` (18%) of the pending alpha, [`noesis_yuma::epoch`] splits the rest
//!    between miners (incentive) and validators (dividends), and each share is credited as
//!    alpha stake of the uid's hotkey under its coldkey. The epoch works in units of `1e9`
//!    alpha (Subtensor's rao); whatever rounding leaves undistributed stays pending for the
//!    next epoch, so pending + staked alpha is conserved exactly.

use alloy_primitives::{Address, B256, U256};
use noesis_yuma::{EpochState, Hyperparams, Inputs};

use super::interface::events;
use super::logic::{emit, pool, set_pool};
use super::pool::{add, mul_div, sub};
use super::state::{
    self, Global, Matrix, Neuron, Param, Reason, Subnet, change_stake, param_u16, param_u64,
    set_neuron, set_subnet, subnet,
};
use super::weights::pending_commit;
use super::{ALPHA_BLOCK_EMISSION, NATIVE_BLOCK_EMISSION, OWNER_CUT_U16, RAO, STAKING_ADDRESS};
use crate::modules::{ModuleError, ModuleState};

/// Runs the end-of-block step for every subnet (see the module docs).
pub fn end_block<S: ModuleState>(s: &mut S) -> Result<(), ModuleError> {
    let block = s.block_number();
    let count = u16::try_from(state::global(s, Global::NetworkCount)?).unwrap_or(u16::MAX);
    for netuid in 1..=count {
        if subnet(s, netuid, Subnet::Owner)?.is_zero() {
            continue;
        }
        inject_emission(s, netuid)?;
        let interval = param_u64(s, netuid, Param::AdjustmentInterval)?.max(1);
        if block.checked_rem(interval) == Some(0) {
            adjust_burn(s, netuid)?;
        }
        let tempo = param_u64(s, netuid, Param::Tempo)?;
        let due = block
            .saturating_add(u64::from(netuid))
            .saturating_add(1)
            .checked_rem(tempo.saturating_add(1));
        if due == Some(0) {
            run_epoch(s, netuid)?;
        }
    }
    Ok(())
}

fn inject_emission<S: ModuleState>(s: &mut S, netuid: u16) -> Result<(), ModuleError> {
    let mut p = pool(s, netuid)?;
    let native_in = NATIVE_BLOCK_EMISSION;
    let alpha_in = if p.native_reserve.is_zero() {
        native_in
    } else {
        mul_div(native_in, p.alpha_reserve, p.native_reserve)?
    };
    s.mint(STAKING_ADDRESS, native_in)?;
    p.native_reserve = add(p.native_reserve, native_in)?;
    p.alpha_reserve = add(p.alpha_reserve, alpha_in)?;
    set_pool(s, netuid, &p)?;
    let pending = subnet(s, netuid, Subnet::PendingAlpha)?;
    set_subnet(
        s,
        netuid,
        Subnet::PendingAlpha,
        add(pending, ALPHA_BLOCK_EMISSION)?,
    )
}

fn adjust_burn<S: ModuleState>(s: &mut S, netuid: u16) -> Result<(), ModuleError> {
    let burn = subnet(s, netuid, Subnet::Burn)?;
    let regs = subnet(s, netuid, Subnet::RegsThisInterval)?;
    let target = U256::from(param_u64(s, netuid, Param::TargetRegsPerInterval)?.max(1));
    let upgraded = mul_div(burn, add(regs, target)?, add(target, target)?)?;
    let alpha = U256::from(param_u64(s, netuid, Param::AdjustmentAlpha)?);
    let one = U256::from(u64::MAX);
    let smoothed = add(
        mul_div(burn, alpha, one)?,
        mul_div(upgraded, sub(one, alpha)?, one)?,
    )?;
    let min = state::param(s, netuid, Param::MinBurn)?;
    let max = state::param(s, netuid, Param::MaxBurn)?.max(min);
    set_subnet(s, netuid, Subnet::Burn, smoothed.clamp(min, max))?;
    set_subnet(s, netuid, Subnet::RegsThisInterval, U256::ZERO)
}

fn flag(b: bool) -> U256 {
    U256::from(u8::from(b))
}

fn at<T: Copy + Default>(v: &[T], i: usize) -> T {
    v.get(i).copied().unwrap_or_default()
}

/// Runs the epoch of `netuid` now and distributes its pending alpha.
pub fn run_epoch<S: ModuleState>(s: &mut S, netuid: u16) -> Result<(), ModuleError> {
    let block = s.block_number();
    let n = state::uid_count(s, netuid)?;
    let owner = Address::from_word(B256::from(subnet(s, netuid, Subnet::Owner)?));
    let owner_hotkey = B256::from(subnet(s, netuid, Subnet::OwnerHotkey)?);
    let pending = subnet(s, netuid, Subnet::PendingAlpha)?;
    let last_epoch = u64::try_from(subnet(s, netuid, Subnet::LastEpochBlock)?).unwrap_or(0);
    let commit_reveal = !state::param(s, netuid, Param::CommitRevealEnabled)?.is_zero();
    let rao = U256::from(RAO);

    let mut hotkeys = Vec::with_capacity(usize::from(n));
    let mut coldkeys = Vec::with_capacity(usize::from(n));
    let mut stake = Vec::with_capacity(usize::from(n));
    let mut last_update = Vec::with_capacity(usize::from(n));
    let mut registered = Vec::with_capacity(usize::from(n));
    let mut permit = Vec::with_capacity(usize::from(n));
    let mut weights = Vec::with_capacity(usize::from(n));
    let mut bonds = Vec::with_capacity(usize::from(n));
    let mut commits = Vec::with_capacity(usize::from(n));
    let mut owner_uid = None;
    for uid in 0..n {
        let hotkey = B256::from(state::neuron(s, netuid, uid, Neuron::Hotkey)?);
        if hotkey == owner_hotkey {
            owner_uid = Some(uid);
        }
        let alpha = state::hotkey_alpha(s, netuid, hotkey)?;
        stake.push(u64::try_from(alpha.checked_div(rao).unwrap_or_default()).unwrap_or(u64::MAX));
        hotkeys.push(hotkey);
        coldkeys.push(Address::from_word(B256::from(state::neuron(
            s,
            netuid,
            uid,
            Neuron::Coldkey,
        )?)));
        last_update.push(state::neuron_u64(s, netuid, uid, Neuron::LastUpdate)?);
        registered.push(state::neuron_u64(
            s,
            netuid,
            uid,
            Neuron::RegistrationBlock,
        )?);
        permit.push(!state::neuron(s, netuid, uid, Neuron::ValidatorPermit)?.is_zero());
        weights.push(state::row(s, Matrix::Weights, netuid, uid)?);
        bonds.push(state::row(s, Matrix::Bonds, netuid, uid)?);
        commits.push(if commit_reveal {
            pending_commit(s, netuid, uid)?
        } else {
            None
        });
    }

    let owner_cut = mul_div(pending, U256::from(OWNER_CUT_U16), U256::from(u16::MAX))?;
    let rest = sub(pending, owner_cut)?;
    let rao_emission = u64::try_from(rest.checked_div(rao).unwrap_or_default()).unwrap_or(u64::MAX);

    let hp = Hyperparams {
        kappa: param_u16(s, netuid, Param::Kappa)?,
        bonds_penalty: param_u16(s, netuid, Param::BondsPenalty)?,
        bonds_moving_average: param_u64(s, netuid, Param::BondsMovingAverage)?,
        yuma3_enabled: param_u64(s, netuid, Param::Yuma3Enabled)? != 0,
        liquid_alpha_enabled: param_u64(s, netuid, Param::LiquidAlphaEnabled)? != 0,
        alpha_low: param_u16(s, netuid, Param::AlphaLow)?,
        alpha_high: param_u16(s, netuid, Param::AlphaHigh)?,
        alpha_sigmoid_steepness: i16::try_from(param_u64(s, netuid, Param::AlphaSigmoidSteepness)?)
            .unwrap_or(i16::MAX),
        max_allowed_validators: param_u16(s, netuid, Param::MaxValidators)?,
        stake_threshold: 0,
        tempo: param_u16(s, netuid, Param::Tempo)?,
        activity_cutoff: param_u64(s, netuid, Param::ActivityCutoff)?,
        commit_reveal_enabled: commit_reveal,
        max_weight_limit: param_u16(s, netuid, Param::MaxWeightLimit)?,
    };
    let epoch_state = EpochState {
        n,
        block,
        last_mechanism_step_block: last_epoch,
        stake,
        last_update,
        block_at_registration: registered,
        validator_permit: permit.clone(),
        owner_uid,
        weights: weights.clone(),
        bonds_prev: bonds,
        commit_blocks: commit_reveal.then(|| commits.clone()),
        rao_emission,
    };
    let inputs = Inputs::new(hp, epoch_state)
        .map_err(|e| ModuleError::Fault(format!("epoch inputs: {e}")))?;
    let out = noesis_yuma::epoch(&inputs);

    let mut miners = U256::ZERO;
    let mut validators = U256::ZERO;
    for uid in 0..n {
        let i = usize::from(uid);
        let server = U256::from(at(&out.server_emission, i)).saturating_mul(rao);
        let validator = U256::from(at(&out.validator_emission, i)).saturating_mul(rao);
        let total = add(server, validator)?;
        miners = add(miners, server)?;
        validators = add(validators, validator)?;
        let hotkey = at(&hotkeys, i);
        if !total.is_zero() {
            change_stake(s, hotkey, at(&coldkeys, i), netuid, total, true)?;
            emit(
                s,
                &events::NeuronEmission {
                    netuid,
                    uid,
                    hotkey,
                    incentiveAlpha: server,
                    dividendAlpha: validator,
                },
            );
        }
        let u16_of = |v: &[noesis_yuma::fixed::I32F32]| {
            U256::from(v.get(i).map_or(0, |x| x.proportion_to_u16()))
        };
        set_neuron(s, netuid, uid, Neuron::Rank, u16_of(&out.ranks))?;
        set_neuron(s, netuid, uid, Neuron::Consensus, u16_of(&out.consensus))?;
        set_neuron(s, netuid, uid, Neuron::Incentive, u16_of(&out.incentive))?;
        set_neuron(s, netuid, uid, Neuron::Dividends, u16_of(&out.dividends))?;
        set_neuron(
            s,
            netuid,
            uid,
            Neuron::ValidatorTrust,
            u16_of(&out.validator_trust),
        )?;
        set_neuron(s, netuid, uid, Neuron::Emission, total)?;
        set_neuron(
            s,
            netuid,
            uid,
            Neuron::PruningScore,
            U256::from(at(&out.emission, i)),
        )?;
        let new_permit = at(&out.new_validator_permit, i);
        set_neuron(s, netuid, uid, Neuron::ValidatorPermit, flag(new_permit))?;
        let active = at(&out.active, i);
        set_neuron(s, netuid, uid, Neuron::Active, flag(active))?;
        let row = out.bonds_new.get(i).map(Vec::as_slice).unwrap_or(&[]);
        state::set_row(s, Matrix::Bonds, netuid, uid, row)?;
        let has_weights = weights.get(i).is_some_and(|w| !w.is_empty());
        let reason = if !total.is_zero() {
            Reason::Earned
        } else if at(&commits, i).is_some() {
            Reason::CommitNotRevealed
        } else if has_weights && !active {
            Reason::Inactive
        } else if has_weights && !at(&permit, i) {
            Reason::NoValidatorPermit
        } else if has_weights && out.validator_trust.get(i).is_none_or(|v| v.to_bits() == 0) {
            Reason::WeightsClippedToZero
        } else {
            Reason::NotWeighted
        };
        set_neuron(s, netuid, uid, Neuron::Reason, U256::from(reason as u8))?;
    }
    let distributed = add(miners, validators)?;
    if distributed > rest {
        return Err(ModuleError::Fault(
            "epoch distributed more than pending".into(),
        ));
    }
    if !owner_cut.is_zero() {
        change_stake(s, owner_hotkey, owner, netuid, owner_cut, true)?;
    }
    let carried = sub(rest, distributed)?;
    set_subnet(s, netuid, Subnet::PendingAlpha, carried)?;
    set_subnet(s, netuid, Subnet::LastEpochBlock, U256::from(block))?;
    emit(
        s,
        &events::EpochEmission {
            netuid,
            blockNumber: block,
            ownerCut: owner_cut,
            minerAlpha: miners,
            validatorAlpha: validators,
            carried,
        },
    );
    Ok(())
}
