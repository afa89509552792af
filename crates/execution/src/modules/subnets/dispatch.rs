//! ABI dispatch of calls to the module's addresses (see [`super::interface`]).
//!
//! `value` was credited to the called address by the caller's transfer; it is moved to the
//! custody account [`STAKING_ADDRESS`] first. Functions that take no value revert when
//! some is sent. The payable Bittensor functions take their cost from `msg.value` when it
//! is non-zero, else from the caller's balance (as Subtensor's precompiles do).

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::{SolInterface, SolValue};

use super::interface::{
    AxonInfo, IMetagraph::IMetagraphCalls, INeuron::INeuronCalls,
    INoesisSubnets::INoesisSubnetsCalls, IStaking::IStakingCalls, ISubnet::ISubnetCalls,
};
use super::logic::{self, ensure_subnet};
use super::state::{self, Axon, Neuron, PARAMS, Param, Subnet};
use super::weights;
use super::{METAGRAPH_ADDRESS, NEURON_ADDRESS, RAO, STAKING_ADDRESS, SUBNET_ADDRESS, revert};
use crate::modules::{ModuleError, ModuleState};

fn rao() -> U256 {
    U256::from(RAO)
}

fn to_rao_u64(v: U256) -> u64 {
    u64::try_from(v.checked_div(rao()).unwrap_or_default()).unwrap_or(u64::MAX)
}

fn from_rao(v: U256) -> Result<U256, ModuleError> {
    v.checked_mul(rao())
        .ok_or_else(|| revert("amount too large"))
}

fn netuid_of(v: U256) -> Result<u16, ModuleError> {
    u16::try_from(v).map_err(|_| revert("netuid out of range"))
}

fn out<T: SolValue>(v: T) -> Result<Bytes, ModuleError> {
    Ok(Bytes::from(v.abi_encode()))
}

fn done() -> Result<Bytes, ModuleError> {
    Ok(Bytes::new())
}

/// Takes `needed` wei: from `value` (already in custody, must then equal `needed`) or
/// else from the caller's balance.
fn take<S: ModuleState>(
    s: &mut S,
    caller: Address,
    value: U256,
    needed: U256,
) -> Result<U256, ModuleError> {
    if value.is_zero() {
        s.transfer(caller, STAKING_ADDRESS, needed)?;
        Ok(needed)
    } else {
        Ok(value)
    }
}

fn no_value(value: U256) -> Result<(), ModuleError> {
    if value.is_zero() {
        Ok(())
    } else {
        Err(revert("function does not take value"))
    }
}

fn param_of(code: u8) -> Result<Param, ModuleError> {
    PARAMS
        .get(usize::from(code))
        .copied()
        .ok_or_else(|| revert("unknown hyperparameter"))
}

/// Serves one call to `address` (one of the four module addresses). Returns the ABI-encoded
/// result; unknown selectors and wrong arguments revert.
pub fn dispatch<S: ModuleState>(
    address: Address,
    caller: Address,
    value: U256,
    input: &[u8],
    s: &mut S,
) -> Result<Bytes, ModuleError> {
    if ![
        METAGRAPH_ADDRESS,
        SUBNET_ADDRESS,
        NEURON_ADDRESS,
        STAKING_ADDRESS,
    ]
    .contains(&address)
    {
        return Err(revert("not a subnets module address"));
    }
    if !value.is_zero() && address != STAKING_ADDRESS {
        s.transfer(address, STAKING_ADDRESS, value)?;
    }
    if let Ok(call) = INoesisSubnetsCalls::abi_decode(input) {
        return extension(s, caller, value, call);
    }
    match address {
        a if a == METAGRAPH_ADDRESS => {
            no_value(value)?;
            let call =
                IMetagraphCalls::abi_decode(input).map_err(|_| revert("unknown metagraph call"))?;
            metagraph(s, call)
        }
        a if a == SUBNET_ADDRESS => {
            let call =
                ISubnetCalls::abi_decode(input).map_err(|_| revert("unknown subnet call"))?;
            subnet(s, caller, value, call)
        }
        a if a == NEURON_ADDRESS => {
            let call =
                INeuronCalls::abi_decode(input).map_err(|_| revert("unknown neuron call"))?;
            neuron(s, caller, value, call)
        }
        _ => {
            let call =
                IStakingCalls::abi_decode(input).map_err(|_| revert("unknown staking call"))?;
            staking(s, caller, value, call)
        }
    }
}

fn metagraph<S: ModuleState>(s: &mut S, call: IMetagraphCalls) -> Result<Bytes, ModuleError> {
    use IMetagraphCalls as C;
    let field = |s: &mut S, netuid: u16, uid: u16, f: Neuron| -> Result<U256, ModuleError> {
        ensure_subnet(s, netuid)?;
        let n = state::subnet(s, netuid, Subnet::N)?;
        if U256::from(uid) >= n {
            return Err(revert("uid does not exist"));
        }
        state::neuron(s, netuid, uid, f)
    };
    let u16v = |v: U256| u16::try_from(v).unwrap_or(u16::MAX);
    match call {
        C::getUidCount(c) => {
            ensure_subnet(s, c.netuid)?;
            out(u16v(state::subnet(s, c.netuid, Subnet::N)?))
        }
        C::getStake(c) => {
            let hk = B256::from(field(s, c.netuid, c.uid, Neuron::Hotkey)?);
            out(to_rao_u64(state::hotkey_alpha(s, c.netuid, hk)?))
        }
        C::getRank(c) => out(u16v(field(s, c.netuid, c.uid, Neuron::Rank)?)),
        C::getTrust(c) => out(u16v(field(s, c.netuid, c.uid, Neuron::Trust)?)),
        C::getConsensus(c) => out(u16v(field(s, c.netuid, c.uid, Neuron::Consensus)?)),
        C::getIncentive(c) => out(u16v(field(s, c.netuid, c.uid, Neuron::Incentive)?)),
        C::getDividends(c) => out(u16v(field(s, c.netuid, c.uid, Neuron::Dividends)?)),
        C::getEmission(c) => out(to_rao_u64(field(s, c.netuid, c.uid, Neuron::Emission)?)),
        C::getVtrust(c) => out(u16v(field(s, c.netuid, c.uid, Neuron::ValidatorTrust)?)),
        C::getValidatorStatus(c) => {
            out(!field(s, c.netuid, c.uid, Neuron::ValidatorPermit)?.is_zero())
        }
        C::getLastUpdate(c) => {
            out(u64::try_from(field(s, c.netuid, c.uid, Neuron::LastUpdate)?).unwrap_or(u64::MAX))
        }
        C::getIsActive(c) => out(!field(s, c.netuid, c.uid, Neuron::Active)?.is_zero()),
        C::getAxon(c) => {
            let a = Axon::unpack(field(s, c.netuid, c.uid, Neuron::Axon)?);
            out(AxonInfo {
                block: a.block,
                version: a.version,
                ip: a.ip,
                port: a.port,
                ip_type: a.ip_type,
                protocol: a.protocol,
            })
        }
        C::getHotkey(c) => out(B256::from(field(s, c.netuid, c.uid, Neuron::Hotkey)?)),
        C::getColdkey(c) => out(B256::from(field(s, c.netuid, c.uid, Neuron::Coldkey)?)),
    }
}

fn subnet<S: ModuleState>(
    s: &mut S,
    caller: Address,
    value: U256,
    call: ISubnetCalls,
) -> Result<Bytes, ModuleError> {
    use ISubnetCalls as C;
    let get = |s: &mut S, netuid: u16, p: Param| -> Result<U256, ModuleError> {
        ensure_subnet(s, netuid)?;
        state::param(s, netuid, p)
    };
    let u64v = |v: U256| u64::try_from(v).unwrap_or(u64::MAX);
    let u16v = |v: U256| u16::try_from(v).unwrap_or(u16::MAX);
    let register = |s: &mut S, hotkey: B256| -> Result<Bytes, ModuleError> {
        let cost = logic::lock_cost(s)?;
        let paid = take(s, caller, value, cost)?;
        logic::register_network(s, caller, hotkey, paid)?;
        done()
    };
    if !matches!(call, C::registerNetwork_0(_) | C::registerNetwork_1(_)) {
        no_value(value)?;
    }
    let set = |s: &mut S, netuid: u16, p: Param, v: U256| -> Result<Bytes, ModuleError> {
        logic::set_hyperparameter(s, caller, netuid, p, v)?;
        done()
    };
    match call {
        C::registerNetwork_0(c) => register(s, c.hotkey),
        C::registerNetwork_1(c) => register(s, c.hotkey),
        C::getWeightsVersionKey(c) => out(u64v(get(s, c.netuid, Param::WeightsVersionKey)?)),
        C::setWeightsVersionKey(c) => set(
            s,
            c.netuid,
            Param::WeightsVersionKey,
            U256::from(c.weightsVersionKey),
        ),
        C::getWeightsSetRateLimit(c) => out(u64v(get(s, c.netuid, Param::WeightsRateLimit)?)),
        C::setWeightsSetRateLimit(c) => set(
            s,
            c.netuid,
            Param::WeightsRateLimit,
            U256::from(c.weightsSetRateLimit),
        ),
        C::getAdjustmentAlpha(c) => out(u64v(get(s, c.netuid, Param::AdjustmentAlpha)?)),
        C::setAdjustmentAlpha(c) => set(
            s,
            c.netuid,
            Param::AdjustmentAlpha,
            U256::from(c.adjustmentAlpha),
        ),
        C::getMaxWeightLimit(c) => out(u16v(get(s, c.netuid, Param::MaxWeightLimit)?)),
        C::setMaxWeightLimit(c) => set(
            s,
            c.netuid,
            Param::MaxWeightLimit,
            U256::from(c.maxWeightLimit),
        ),
        C::getImmunityPeriod(c) => out(u16v(get(s, c.netuid, Param::ImmunityPeriod)?)),
        C::setImmunityPeriod(c) => set(
            s,
            c.netuid,
            Param::ImmunityPeriod,
            U256::from(c.immunityPeriod),
        ),
        C::getMinAllowedWeights(c) => out(u16v(get(s, c.netuid, Param::MinAllowedWeights)?)),
        C::setMinAllowedWeights(c) => set(
            s,
            c.netuid,
            Param::MinAllowedWeights,
            U256::from(c.minAllowedWeights),
        ),
        C::getKappa(c) => out(u16v(get(s, c.netuid, Param::Kappa)?)),
        C::setKappa(c) => set(s, c.netuid, Param::Kappa, U256::from(c.kappa)),
        C::getActivityCutoff(c) => out(u16v(get(s, c.netuid, Param::ActivityCutoff)?)),
        C::setActivityCutoff(c) => set(
            s,
            c.netuid,
            Param::ActivityCutoff,
            U256::from(c.activityCutoff),
        ),
        C::getNetworkRegistrationAllowed(c) => {
            out(!get(s, c.netuid, Param::RegistrationAllowed)?.is_zero())
        }
        C::setNetworkRegistrationAllowed(c) => set(
            s,
            c.netuid,
            Param::RegistrationAllowed,
            U256::from(u8::from(c.networkRegistrationAllowed)),
        ),
        C::getMinBurn(c) => out(to_rao_u64(get(s, c.netuid, Param::MinBurn)?)),
        C::setMinBurn(c) => set(
            s,
            c.netuid,
            Param::MinBurn,
            from_rao(U256::from(c.minBurn))?,
        ),
        C::getMaxBurn(c) => out(to_rao_u64(get(s, c.netuid, Param::MaxBurn)?)),
        C::setMaxBurn(c) => set(
            s,
            c.netuid,
            Param::MaxBurn,
            from_rao(U256::from(c.maxBurn))?,
        ),
        C::getBondsMovingAverage(c) => out(u64v(get(s, c.netuid, Param::BondsMovingAverage)?)),
        C::setBondsMovingAverage(c) => set(
            s,
            c.netuid,
            Param::BondsMovingAverage,
            U256::from(c.bondsMovingAverage),
        ),
        C::getCommitRevealWeightsEnabled(c) => {
            out(!get(s, c.netuid, Param::CommitRevealEnabled)?.is_zero())
        }
        C::setCommitRevealWeightsEnabled(c) => set(
            s,
            c.netuid,
            Param::CommitRevealEnabled,
            U256::from(u8::from(c.commitRevealWeightsEnabled)),
        ),
        C::getLiquidAlphaEnabled(c) => out(!get(s, c.netuid, Param::LiquidAlphaEnabled)?.is_zero()),
        C::setLiquidAlphaEnabled(c) => set(
            s,
            c.netuid,
            Param::LiquidAlphaEnabled,
            U256::from(u8::from(c.liquidAlphaEnabled)),
        ),
        C::getYuma3Enabled(c) => out(!get(s, c.netuid, Param::Yuma3Enabled)?.is_zero()),
        C::setYuma3Enabled(c) => set(
            s,
            c.netuid,
            Param::Yuma3Enabled,
            U256::from(u8::from(c.yuma3Enabled)),
        ),
        C::getAlphaValues(c) => {
            let lo = u16v(get(s, c.netuid, Param::AlphaLow)?);
            let hi = u16v(get(s, c.netuid, Param::AlphaHigh)?);
            Ok(Bytes::from((lo, hi).abi_encode_params()))
        }
        C::setAlphaValues(c) => {
            // Order the two writes so the low < high rule holds in between.
            let cur_high = get(s, c.netuid, Param::AlphaHigh)?;
            if U256::from(c.alphaLow) < cur_high {
                set(s, c.netuid, Param::AlphaLow, U256::from(c.alphaLow))?;
                set(s, c.netuid, Param::AlphaHigh, U256::from(c.alphaHigh))
            } else {
                set(s, c.netuid, Param::AlphaHigh, U256::from(c.alphaHigh))?;
                set(s, c.netuid, Param::AlphaLow, U256::from(c.alphaLow))
            }
        }
        C::getCommitRevealWeightsInterval(c) => out(u64v(get(s, c.netuid, Param::RevealPeriod)?)),
        C::setCommitRevealWeightsInterval(c) => set(
            s,
            c.netuid,
            Param::RevealPeriod,
            U256::from(c.commitRevealWeightsInterval),
        ),
    }
}

fn neuron<S: ModuleState>(
    s: &mut S,
    caller: Address,
    value: U256,
    call: INeuronCalls,
) -> Result<Bytes, ModuleError> {
    use INeuronCalls as C;
    if !matches!(call, C::burnedRegister(_)) {
        no_value(value)?;
    }
    match call {
        C::burnedRegister(c) => {
            ensure_subnet(s, c.netuid)?;
            let burn = state::subnet(s, c.netuid, Subnet::Burn)?;
            let paid = take(s, caller, value, burn)?;
            logic::burned_register(s, c.netuid, c.hotkey, caller, paid)?;
        }
        C::serveAxon(c) => logic::serve_axon(
            s,
            c.netuid,
            caller,
            Axon {
                block: 0,
                version: c.version,
                ip: c.ip,
                port: c.port,
                ip_type: c.ipType,
                protocol: c.protocol,
            },
        )?,
        C::setWeights(c) => {
            weights::set_weights(s, c.netuid, caller, &c.dests, &c.weights, c.versionKey)?
        }
        C::commitWeights(c) => weights::commit_weights(s, c.netuid, caller, c.commitHash)?,
        C::revealWeights(c) => weights::reveal_weights(
            s,
            c.netuid,
            caller,
            &c.uids,
            &c.values,
            &c.salt,
            c.versionKey,
        )?,
    }
    done()
}

fn coldkey_of(word: B256) -> Option<Address> {
    word.0
        .get(..12)
        .is_some_and(|p| p.iter().all(|b| *b == 0))
        .then(|| Address::from_word(word))
}

fn staking<S: ModuleState>(
    s: &mut S,
    caller: Address,
    value: U256,
    call: IStakingCalls,
) -> Result<Bytes, ModuleError> {
    use IStakingCalls as C;
    let price = |p: U256| -> Result<Option<U256>, ModuleError> {
        Ok(Some(
            p.checked_mul(rao())
                .ok_or_else(|| revert("limit price too large"))?,
        ))
    };
    let stake_in = |s: &mut S,
                    hotkey: B256,
                    amount: U256,
                    netuid: U256,
                    limit: Option<U256>,
                    partial: bool|
     -> Result<Bytes, ModuleError> {
        let netuid = netuid_of(netuid)?;
        let wei = from_rao(amount)?;
        if !value.is_zero() && value != wei {
            return Err(revert("msg.value must be zero or equal the amount"));
        }
        let paid = take(s, caller, value, wei)?;
        logic::add_stake(s, caller, hotkey, netuid, paid, limit, partial)?;
        done()
    };
    if !matches!(call, C::addStake(_) | C::addStakeLimit(_)) {
        no_value(value)?;
    }
    match call {
        C::addStake(c) => stake_in(s, c.hotkey, c.amount, c.netuid, None, false),
        C::addStakeLimit(c) => stake_in(
            s,
            c.hotkey,
            c.amount,
            c.netuid,
            price(c.limit_price)?,
            c.allow_partial,
        ),
        C::removeStake(c) => {
            let netuid = netuid_of(c.netuid)?;
            logic::remove_stake(
                s,
                caller,
                c.hotkey,
                netuid,
                from_rao(c.amount)?,
                None,
                false,
            )?;
            done()
        }
        C::removeStakeLimit(c) => {
            let netuid = netuid_of(c.netuid)?;
            let limit = price(c.limit_price)?;
            let alpha = from_rao(c.amount)?;
            logic::remove_stake(s, caller, c.hotkey, netuid, alpha, limit, c.allow_partial)?;
            done()
        }
        C::getTotalColdkeyStake(c) => match coldkey_of(c.coldkey) {
            Some(ck) => out(U256::from(to_rao_u64(state::coldkey_total(s, ck)?))),
            None => out(U256::ZERO),
        },
        C::getTotalHotkeyStake(c) => out(U256::from(to_rao_u64(state::hotkey_total(s, c.hotkey)?))),
        C::getStake(c) => {
            let netuid = netuid_of(c.netuid)?;
            match coldkey_of(c.coldkey) {
                Some(ck) => out(U256::from(to_rao_u64(state::stake(
                    s, c.hotkey, ck, netuid,
                )?))),
                None => out(U256::ZERO),
            }
        }
        C::getTotalAlphaStaked(c) => {
            let netuid = netuid_of(c.netuid)?;
            out(U256::from(to_rao_u64(state::hotkey_alpha(
                s, netuid, c.hotkey,
            )?)))
        }
    }
}

fn extension<S: ModuleState>(
    s: &mut S,
    caller: Address,
    value: U256,
    call: INoesisSubnetsCalls,
) -> Result<Bytes, ModuleError> {
    use INoesisSubnetsCalls as C;
    if !matches!(call, C::addStakeWei(_)) {
        no_value(value)?;
    }
    let u64v = |v: U256| u64::try_from(v).unwrap_or(u64::MAX);
    match call {
        C::networkCount(_) => {
            out(u16::try_from(state::global(s, state::Global::NetworkCount)?).unwrap_or(u16::MAX))
        }
        C::getLockCost(_) => out(logic::lock_cost(s)?),
        C::getBurn(c) => {
            ensure_subnet(s, c.netuid)?;
            out(state::subnet(s, c.netuid, Subnet::Burn)?)
        }
        C::getSubnetOwner(c) => out(ensure_subnet(s, c.netuid)?),
        C::getPool(c) => {
            ensure_subnet(s, c.netuid)?;
            let p = logic::pool(s, c.netuid)?;
            Ok(Bytes::from(
                (p.native_reserve, p.alpha_reserve, p.price()).abi_encode_params(),
            ))
        }
        C::getHyperparameter(c) => {
            ensure_subnet(s, c.netuid)?;
            out(state::param(s, c.netuid, param_of(c.param)?)?)
        }
        C::setHyperparameter(c) => {
            logic::set_hyperparameter(s, caller, c.netuid, param_of(c.param)?, c.value)?;
            done()
        }
        // A uint8 encodes as one word, like a uint256 of the same value.
        C::getReason(c) => out(U256::from(logic::reason(s, c.netuid, c.uid)? as u8)),
        C::getPrunedAt(c) => out(state::pruned_at(s, c.netuid, c.hotkey)?),
        C::getRegistrationBlock(c) => out(u64v(state::neuron(
            s,
            c.netuid,
            c.uid,
            Neuron::RegistrationBlock,
        )?)),
        C::getCommit(c) => {
            let h = B256::from(state::neuron(s, c.netuid, c.uid, Neuron::CommitHash)?);
            let b = u64v(state::neuron(s, c.netuid, c.uid, Neuron::CommitBlock)?);
            Ok(Bytes::from((h, b).abi_encode_params()))
        }
        C::getEmissionWei(c) => out(state::neuron(s, c.netuid, c.uid, Neuron::Emission)?),
        C::addStakeWei(c) => {
            let limit = (!c.limitPrice.is_zero()).then_some(c.limitPrice);
            logic::add_stake(s, caller, c.hotkey, c.netuid, value, limit, c.allowPartial)?;
            done()
        }
        C::removeStakeWei(c) => {
            let limit = (!c.limitPrice.is_zero()).then_some(c.limitPrice);
            logic::remove_stake(
                s,
                caller,
                c.hotkey,
                c.netuid,
                c.alpha,
                limit,
                c.allowPartial,
            )?;
            done()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::MemoryState;
    use alloy_sol_types::SolCall;

    use super::super::hotkey_of;
    use super::super::interface::{IMetagraph, INeuron, INoesisSubnets, IStaking, ISubnet};

    fn who(i: u8) -> Address {
        Address::repeat_byte(i)
    }

    #[test]
    fn register_stake_and_read_back_through_abi() {
        let mut s = MemoryState::default();
        let lock = super::super::NETWORK_MIN_LOCK;
        s.balances.insert(who(1), lock * U256::from(3));
        let call = ISubnet::registerNetwork_0Call {
            hotkey: hotkey_of(who(1)),
        };
        dispatch(
            SUBNET_ADDRESS,
            who(1),
            U256::ZERO,
            &call.abi_encode(),
            &mut s,
        )
        .unwrap();
        assert_eq!(
            s.balances[&who(1)],
            lock * U256::from(2),
            "lock taken from balance"
        );
        // Registration paid with msg.value: credited to the neuron address first.
        s.balances
            .insert(NEURON_ADDRESS, U256::from(10u64).pow(U256::from(18)));
        let reg = INeuron::burnedRegisterCall {
            netuid: 1,
            hotkey: hotkey_of(who(2)),
        };
        let value = U256::from(10u64).pow(U256::from(18));
        dispatch(NEURON_ADDRESS, who(2), value, &reg.abi_encode(), &mut s).unwrap();
        assert_eq!(
            s.balances[&NEURON_ADDRESS],
            U256::ZERO,
            "value moved to custody"
        );
        let count = IMetagraph::getUidCountCall { netuid: 1 };
        let r = dispatch(
            METAGRAPH_ADDRESS,
            who(9),
            U256::ZERO,
            &count.abi_encode(),
            &mut s,
        )
        .unwrap();
        assert_eq!(
            IMetagraph::getUidCountCall::abi_decode_returns(&r).unwrap(),
            1
        );
        // Stake 5 native (in rao) from the caller's balance.
        s.balances
            .insert(who(3), U256::from(10u64).pow(U256::from(19)));
        let stake = IStaking::addStakeCall {
            hotkey: hotkey_of(who(2)),
            amount: U256::from(5_000_000_000u64),
            netuid: U256::from(1),
        };
        dispatch(
            STAKING_ADDRESS,
            who(3),
            U256::ZERO,
            &stake.abi_encode(),
            &mut s,
        )
        .unwrap();
        let get = IStaking::getStakeCall {
            hotkey: hotkey_of(who(2)),
            coldkey: who(3).into_word(),
            netuid: U256::from(1),
        };
        let r = dispatch(
            STAKING_ADDRESS,
            who(3),
            U256::ZERO,
            &get.abi_encode(),
            &mut s,
        )
        .unwrap();
        let staked = IStaking::getStakeCall::abi_decode_returns(&r).unwrap();
        // 5 native into a 100/100 pool: 100 * 4.9975 / 104.9975 alpha after the fee.
        assert!(staked > U256::from(4_759_000_000u64) && staked < U256::from(4_760_000_000u64));
        let pool = INoesisSubnets::getPoolCall { netuid: 1 };
        let r = dispatch(
            SUBNET_ADDRESS,
            who(3),
            U256::ZERO,
            &pool.abi_encode(),
            &mut s,
        )
        .unwrap();
        let p = INoesisSubnets::getPoolCall::abi_decode_returns(&r).unwrap();
        assert_eq!(
            p.nativeReserve,
            lock + U256::from(5u64) * super::super::NATIVE
        );
        assert_eq!(s.balances[&STAKING_ADDRESS], p.nativeReserve);
    }

    #[test]
    fn wrong_calls_revert() {
        let mut s = MemoryState::default();
        let e = dispatch(SUBNET_ADDRESS, who(1), U256::ZERO, &[1, 2, 3, 4], &mut s).unwrap_err();
        assert_eq!(e, ModuleError::Revert("unknown subnet call".into()));
        let e = dispatch(who(7), who(1), U256::ZERO, &[], &mut s).unwrap_err();
        assert_eq!(
            e,
            ModuleError::Revert("not a subnets module address".into())
        );
        let k = ISubnet::getKappaCall { netuid: 1 };
        let e = dispatch(SUBNET_ADDRESS, who(1), U256::ZERO, &k.abi_encode(), &mut s).unwrap_err();
        assert_eq!(e, ModuleError::Revert("subnet does not exist".into()));
        s.balances.insert(METAGRAPH_ADDRESS, U256::from(1));
        let c = IMetagraph::getUidCountCall { netuid: 1 };
        let e = dispatch(
            METAGRAPH_ADDRESS,
            who(1),
            U256::from(1),
            &c.abi_encode(),
            &mut s,
        )
        .unwrap_err();
        assert_eq!(
            e,
            ModuleError::Revert("function does not take value".into())
        );
    }
}
