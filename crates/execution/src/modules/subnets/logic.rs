//! Registry and staking: networks, burned registration with pruning, axons, and stake
//! through the subnet pools.
//!
//! Native amounts passed in as `paid` are already in the module's custody account
//! ([`super::STAKING_ADDRESS`]); whatever is not used is refunded from there.

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolEvent;

use super::interface::events;
use super::pool::{Pool, Swap, add, mul_div, sub};
use super::state::{
    self, Axon, Global, Matrix, Neuron, PARAMS, Param, Reason, Subnet, change_stake, param,
    param_u16, param_u64, set_global, set_neuron, set_param, set_subnet, subnet,
};
use super::{
    LOCK_REDUCTION_INTERVAL, MAX_NETWORKS, NETWORK_MIN_LOCK, STAKING_ADDRESS, hotkey_of, revert,
};
use crate::modules::{ModuleError, ModuleLog, ModuleState};

pub(crate) fn emit<S: ModuleState, E: SolEvent>(s: &mut S, e: &E) {
    let data = e.encode_log_data();
    s.log(ModuleLog {
        topics: data.topics().to_vec(),
        data: data.data,
    });
}

/// Fails unless `netuid` exists; returns its owner.
pub fn ensure_subnet<S: ModuleState>(s: &mut S, netuid: u16) -> Result<Address, ModuleError> {
    let owner = subnet(s, netuid, Subnet::Owner)?;
    if owner.is_zero() {
        return Err(revert("subnet does not exist"));
    }
    Ok(Address::from_word(B256::from(owner)))
}

/// The pool of `netuid`.
pub fn pool<S: ModuleState>(s: &mut S, netuid: u16) -> Result<Pool, ModuleError> {
    Ok(Pool {
        native_reserve: subnet(s, netuid, Subnet::NativeReserve)?,
        alpha_reserve: subnet(s, netuid, Subnet::AlphaReserve)?,
    })
}

pub(crate) fn set_pool<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    p: &Pool,
) -> Result<(), ModuleError> {
    set_subnet(s, netuid, Subnet::NativeReserve, p.native_reserve)?;
    set_subnet(s, netuid, Subnet::AlphaReserve, p.alpha_reserve)
}

fn refund<S: ModuleState>(s: &mut S, to: Address, amount: U256) -> Result<(), ModuleError> {
    if amount.is_zero() {
        Ok(())
    } else {
        s.transfer(STAKING_ADDRESS, to, amount)
    }
}

/// The current network lock cost (Subtensor's `get_network_lock_cost`): twice the last
/// lock, decaying linearly over [`LOCK_REDUCTION_INTERVAL`] blocks, never below
/// [`NETWORK_MIN_LOCK`].
pub fn lock_cost<S: ModuleState>(s: &mut S) -> Result<U256, ModuleError> {
    let last = state::global(s, Global::LastLockCost)?;
    let last_block = u64::try_from(state::global(s, Global::LastLockBlock)?).unwrap_or(0);
    let elapsed = s.block_number().saturating_sub(last_block);
    let doubled = last.saturating_mul(U256::from(2));
    let decay = mul_div(
        last,
        U256::from(elapsed),
        U256::from(LOCK_REDUCTION_INTERVAL),
    )?;
    Ok(doubled.saturating_sub(decay).max(NETWORK_MIN_LOCK))
}

/// Creates a subnet owned by `owner` with the owner hotkey `hotkey`, taking the lock cost
/// out of `paid` (the rest is refunded). The lock seeds the subnet's pool at price 1
/// (`lock` native against `lock` alpha), as dynamic TAO does. Returns the new netuid.
pub fn register_network<S: ModuleState>(
    s: &mut S,
    owner: Address,
    hotkey: B256,
    paid: U256,
) -> Result<u16, ModuleError> {
    if owner.is_zero() {
        return Err(revert("owner is the zero address"));
    }
    let cost = lock_cost(s)?;
    if paid < cost {
        return Err(revert("not enough value for the network lock cost"));
    }
    let count = u16::try_from(state::global(s, Global::NetworkCount)?).unwrap_or(u16::MAX);
    if count >= MAX_NETWORKS {
        return Err(revert("network limit reached"));
    }
    let netuid = count.saturating_add(1);
    set_global(s, Global::NetworkCount, U256::from(netuid))?;
    set_global(s, Global::LastLockCost, cost)?;
    set_global(s, Global::LastLockBlock, U256::from(s.block_number()))?;
    set_subnet(
        s,
        netuid,
        Subnet::Owner,
        U256::from_be_bytes(owner.into_word().0),
    )?;
    set_subnet(
        s,
        netuid,
        Subnet::OwnerHotkey,
        U256::from_be_bytes(hotkey.0),
    )?;
    set_subnet(s, netuid, Subnet::Lock, cost)?;
    set_subnet(
        s,
        netuid,
        Subnet::LastEpochBlock,
        U256::from(s.block_number()),
    )?;
    for p in PARAMS {
        set_param(s, netuid, p, p.default_value())?;
    }
    // Subtensor's initial burn: 1 native, clamped to the bounds.
    let burn = U256::from(1_000_000_000_000_000_000u64).clamp(
        Param::MinBurn.default_value(),
        Param::MaxBurn.default_value(),
    );
    set_subnet(s, netuid, Subnet::Burn, burn)?;
    set_pool(
        s,
        netuid,
        &Pool {
            native_reserve: cost,
            alpha_reserve: cost,
        },
    )?;
    refund(s, owner, sub(paid, cost)?)?;
    emit(
        s,
        &events::NetworkRegistered {
            netuid,
            owner,
            hotkey,
            lockCost: cost,
        },
    );
    Ok(netuid)
}

/// Sets hyperparameter `p` of `netuid` to `value`; only the owner may, within
/// [`Param::bounds`] and the cross-parameter rules (max validators ≤ max uids, uid count ≤
/// max uids, min burn ≤ max burn, alpha low < alpha high).
pub fn set_hyperparameter<S: ModuleState>(
    s: &mut S,
    caller: Address,
    netuid: u16,
    p: Param,
    value: U256,
) -> Result<(), ModuleError> {
    let owner = ensure_subnet(s, netuid)?;
    if caller != owner {
        return Err(revert("only the subnet owner may set hyperparameters"));
    }
    let (lo, hi) = p.bounds();
    if value < lo || value > hi {
        return Err(revert("hyperparameter out of bounds"));
    }
    let other = |s: &mut S, q: Param| param(s, netuid, q);
    let ok = match p {
        Param::MaxValidators => value <= other(s, Param::MaxUids)?,
        Param::MaxUids => {
            value >= subnet(s, netuid, Subnet::N)? && value >= other(s, Param::MaxValidators)?
        }
        Param::MinBurn => value <= other(s, Param::MaxBurn)?,
        Param::MaxBurn => value >= other(s, Param::MinBurn)?,
        Param::AlphaLow => value < other(s, Param::AlphaHigh)?,
        Param::AlphaHigh => value > other(s, Param::AlphaLow)?,
        _ => true,
    };
    if !ok {
        return Err(revert("hyperparameter conflicts with another setting"));
    }
    set_param(s, netuid, p, value)?;
    if matches!(p, Param::MinBurn | Param::MaxBurn) {
        let burn = subnet(s, netuid, Subnet::Burn)?;
        let clamped = burn.clamp(
            other(s, Param::MinBurn)?,
            other(s, Param::MaxBurn)?.max(other(s, Param::MinBurn)?),
        );
        set_subnet(s, netuid, Subnet::Burn, clamped)?;
    }
    emit(
        s,
        &events::HyperparameterSet {
            netuid,
            param: p as u8,
            value,
        },
    );
    Ok(())
}

/// The uid `burned_register` would replace in a full subnet: the lowest pruning score
/// among uids outside the immunity period (ties: earliest registration, then lowest uid);
/// if every uid is immune, the lowest among all. The owner's uid is never pruned.
pub fn uid_to_prune<S: ModuleState>(s: &mut S, netuid: u16) -> Result<Option<u16>, ModuleError> {
    let n = state::uid_count(s, netuid)?;
    let immunity = param_u64(s, netuid, Param::ImmunityPeriod)?;
    let owner_hotkey = B256::from(subnet(s, netuid, Subnet::OwnerHotkey)?);
    let block = s.block_number();
    // (immune, score, registration block, uid): the minimum wins.
    let mut best: Option<(bool, u64, u64, u16)> = None;
    for uid in 0..n {
        let hotkey = B256::from(state::neuron(s, netuid, uid, Neuron::Hotkey)?);
        if hotkey == owner_hotkey {
            continue;
        }
        let reg = state::neuron_u64(s, netuid, uid, Neuron::RegistrationBlock)?;
        let score = state::neuron_u64(s, netuid, uid, Neuron::PruningScore)?;
        let immune = block < reg.saturating_add(immunity);
        let key = (immune, score, reg, uid);
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    Ok(best.map(|(_, _, _, uid)| uid))
}

/// Removes every trace of uid `uid`'s occupant (Subtensor #1787): its weight and bond rows,
/// the column `uid` in everyone else's rows, its commit, axon and epoch outputs. Stake is
/// kept per hotkey, so the new occupant inherits none of it either.
fn clear_uid<S: ModuleState>(s: &mut S, netuid: u16, uid: u16, n: u16) -> Result<(), ModuleError> {
    for m in [Matrix::Weights, Matrix::Bonds] {
        state::set_row(s, m, netuid, uid, &[])?;
        for other in 0..n {
            let row = state::row(s, m, netuid, other)?;
            if row.iter().any(|&(j, _)| j == uid) {
                let kept: Vec<(u16, u16)> = row.into_iter().filter(|&(j, _)| j != uid).collect();
                state::set_row(s, m, netuid, other, &kept)?;
            }
        }
    }
    for f in [
        Neuron::Axon,
        Neuron::LastUpdate,
        Neuron::Rank,
        Neuron::Trust,
        Neuron::Consensus,
        Neuron::Incentive,
        Neuron::Dividends,
        Neuron::Emission,
        Neuron::ValidatorPermit,
        Neuron::ValidatorTrust,
        Neuron::PruningScore,
        Neuron::Reason,
        Neuron::CommitHash,
        Neuron::CommitBlock,
        Neuron::Active,
    ] {
        set_neuron(s, netuid, uid, f, U256::ZERO)?;
    }
    Ok(())
}

/// Registers `hotkey` on `netuid` for `coldkey`, burning the current burn cost out of
/// `paid` (the rest is refunded). A full subnet replaces [`uid_to_prune`]. Returns the uid.
pub fn burned_register<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    hotkey: B256,
    coldkey: Address,
    paid: U256,
) -> Result<u16, ModuleError> {
    ensure_subnet(s, netuid)?;
    if param(s, netuid, Param::RegistrationAllowed)?.is_zero() {
        return Err(revert("registration is closed on this subnet"));
    }
    if hotkey.is_zero() {
        return Err(revert("hotkey is zero"));
    }
    if state::uid_of(s, netuid, hotkey)?.is_some() {
        return Err(revert("hotkey already registered on this subnet"));
    }
    let burn = subnet(s, netuid, Subnet::Burn)?;
    if paid < burn {
        return Err(revert("not enough value for the burn cost"));
    }
    s.burn(STAKING_ADDRESS, burn)?;
    refund(s, coldkey, sub(paid, burn)?)?;
    let regs = subnet(s, netuid, Subnet::RegsThisInterval)?;
    set_subnet(
        s,
        netuid,
        Subnet::RegsThisInterval,
        add(regs, U256::from(1))?,
    )?;

    let n = state::uid_count(s, netuid)?;
    let max = param_u16(s, netuid, Param::MaxUids)?;
    let block = s.block_number();
    let uid = if n < max {
        set_subnet(s, netuid, Subnet::N, U256::from(n.saturating_add(1)))?;
        n
    } else {
        let uid = uid_to_prune(s, netuid)?.ok_or_else(|| revert("no uid can be pruned"))?;
        let old = B256::from(state::neuron(s, netuid, uid, Neuron::Hotkey)?);
        state::set_uid_of(s, netuid, old, None)?;
        state::set_pruned_at(s, netuid, old, block)?;
        clear_uid(s, netuid, uid, n)?;
        emit(
            s,
            &events::NeuronPruned {
                netuid,
                uid,
                hotkey: old,
            },
        );
        uid
    };
    set_neuron(
        s,
        netuid,
        uid,
        Neuron::Hotkey,
        U256::from_be_bytes(hotkey.0),
    )?;
    set_neuron(
        s,
        netuid,
        uid,
        Neuron::Coldkey,
        U256::from_be_bytes(coldkey.into_word().0),
    )?;
    set_neuron(s, netuid, uid, Neuron::RegistrationBlock, U256::from(block))?;
    set_neuron(s, netuid, uid, Neuron::LastUpdate, U256::from(block))?;
    state::set_uid_of(s, netuid, hotkey, Some(uid))?;
    emit(
        s,
        &events::NeuronRegistered {
            netuid,
            uid,
            hotkey,
            coldkey,
            burn,
        },
    );
    Ok(uid)
}

/// Publishes the axon endpoint of the caller's uid (the caller acts as hotkey
/// [`hotkey_of`]`(caller)`).
pub fn serve_axon<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    caller: Address,
    mut axon: Axon,
) -> Result<(), ModuleError> {
    ensure_subnet(s, netuid)?;
    let uid = state::uid_of(s, netuid, hotkey_of(caller))?
        .ok_or_else(|| revert("caller's hotkey is not registered on this subnet"))?;
    if axon.port == 0 {
        return Err(revert("invalid port"));
    }
    if axon.ip_type != 4 && axon.ip_type != 6 {
        return Err(revert("invalid ip type"));
    }
    if axon.ip == 0 {
        return Err(revert("invalid ip address"));
    }
    axon.block = s.block_number();
    set_neuron(s, netuid, uid, Neuron::Axon, axon.pack())?;
    emit(
        s,
        &events::AxonServed {
            netuid,
            uid,
            ip: axon.ip,
            port: axon.port,
        },
    );
    Ok(())
}

/// Stakes `amount` native wei (already in custody) from `coldkey` on `hotkey` in `netuid`:
/// swaps it to alpha through the pool and credits the alpha to `(hotkey, coldkey,
/// netuid)`. `limit_price` is the highest acceptable pool price after the swap (native per
/// alpha, scaled by [`super::pool::PRICE_SCALE`]); with `allow_partial` the part above the
/// limit is refunded instead of reverting.
pub fn add_stake<S: ModuleState>(
    s: &mut S,
    coldkey: Address,
    hotkey: B256,
    netuid: u16,
    amount: U256,
    limit_price: Option<U256>,
    allow_partial: bool,
) -> Result<Swap, ModuleError> {
    ensure_subnet(s, netuid)?;
    if state::uid_of(s, netuid, hotkey)?.is_none() {
        return Err(revert("hotkey is not registered on this subnet"));
    }
    let mut p = pool(s, netuid)?;
    let swap = p.swap(true, amount, limit_price, allow_partial)?;
    set_pool(s, netuid, &p)?;
    refund(s, coldkey, sub(amount, swap.amount_in)?)?;
    change_stake(s, hotkey, coldkey, netuid, swap.amount_out, true)?;
    emit(
        s,
        &events::StakeAdded {
            coldkey,
            hotkey,
            netuid,
            nativeIn: swap.amount_in,
            alphaOut: swap.amount_out,
        },
    );
    Ok(swap)
}

/// Unstakes up to `alpha` of `(hotkey, coldkey, netuid)`: swaps it to native through the
/// pool and pays the native to `coldkey`. `limit_price` is the lowest acceptable price after
/// the swap; with `allow_partial` only the part above the limit is unstaked.
pub fn remove_stake<S: ModuleState>(
    s: &mut S,
    coldkey: Address,
    hotkey: B256,
    netuid: u16,
    alpha: U256,
    limit_price: Option<U256>,
    allow_partial: bool,
) -> Result<Swap, ModuleError> {
    ensure_subnet(s, netuid)?;
    if state::stake(s, hotkey, coldkey, netuid)? < alpha {
        return Err(revert("not enough stake"));
    }
    let mut p = pool(s, netuid)?;
    let swap = p.swap(false, alpha, limit_price, allow_partial)?;
    set_pool(s, netuid, &p)?;
    change_stake(s, hotkey, coldkey, netuid, swap.amount_in, false)?;
    refund(s, coldkey, swap.amount_out)?;
    emit(
        s,
        &events::StakeRemoved {
            coldkey,
            hotkey,
            netuid,
            alphaIn: swap.amount_in,
            nativeOut: swap.amount_out,
        },
    );
    Ok(swap)
}

/// The stored reason code of `uid` (see [`Reason`]).
pub fn reason<S: ModuleState>(s: &mut S, netuid: u16, uid: u16) -> Result<Reason, ModuleError> {
    let code = state::neuron_u64(s, netuid, uid, Neuron::Reason)?;
    Ok(Reason::from_code(code).unwrap_or(Reason::Earned))
}
