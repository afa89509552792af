//! Tests of registry, staking, weights and the epoch over [`MemoryState`].

use alloy_primitives::{Address, B256, U256};
use proptest::prelude::*;

use super::logic::{self, add_stake, burned_register, register_network, remove_stake};
use super::pool::PRICE_SCALE;
use super::state::{self, Matrix, Neuron, Param, Reason, Subnet};
use super::weights::{commit_hash, commit_weights, reveal_weights, set_weights};
use super::*;
use crate::modules::{MemoryState, ModuleError, ModuleState};

fn who(i: u8) -> Address {
    Address::repeat_byte(i)
}

fn native(x: u64) -> U256 {
    U256::from(x) * NATIVE
}

/// Credits `amount` to custody as a payable call would.
fn pay(s: &mut MemoryState, amount: U256) -> U256 {
    s.mint(STAKING_ADDRESS, amount).unwrap();
    amount
}

fn rev(r: Result<impl std::fmt::Debug, ModuleError>) -> String {
    match r {
        Err(ModuleError::Revert(m)) => m,
        other => panic!("expected a revert, got {other:?}"),
    }
}

/// A subnet with the given tempo, commit-reveal off, no rate limit, owner `who(1)`.
fn subnet_with(s: &mut MemoryState, tempo: u64, commit_reveal: bool) -> u16 {
    let lock = logic::lock_cost(s).unwrap();
    let paid = pay(s, lock);
    let netuid = register_network(s, who(1), hotkey_of(who(1)), paid).unwrap();
    let set = |s: &mut MemoryState, p, v: u64| {
        logic::set_hyperparameter(s, who(1), netuid, p, U256::from(v)).unwrap()
    };
    set(s, Param::Tempo, tempo);
    set(s, Param::CommitRevealEnabled, u64::from(commit_reveal));
    set(s, Param::WeightsRateLimit, 0);
    netuid
}

fn register(s: &mut MemoryState, netuid: u16, i: u8) -> u16 {
    let burn = state::subnet(s, netuid, Subnet::Burn).unwrap();
    let paid = pay(s, burn);
    burned_register(s, netuid, hotkey_of(who(i)), who(i), paid).unwrap()
}

fn stake(s: &mut MemoryState, netuid: u16, i: u8, amount: U256) {
    let paid = pay(s, amount);
    add_stake(s, who(i), hotkey_of(who(i)), netuid, paid, None, false).unwrap();
}

fn step(s: &mut MemoryState) {
    end_block(s).unwrap();
    s.block += 1;
}

fn alpha_of(s: &mut MemoryState, netuid: u16, i: u8) -> U256 {
    state::stake(s, hotkey_of(who(i)), who(i), netuid).unwrap()
}

#[test]
fn register_network_takes_lock_seeds_pool_and_refunds() {
    let mut s = MemoryState::default();
    let lock = logic::lock_cost(&mut s).unwrap();
    assert_eq!(lock, NETWORK_MIN_LOCK);
    let paid = pay(&mut s, lock + U256::from(7));
    let netuid = register_network(&mut s, who(1), hotkey_of(who(1)), paid).unwrap();
    assert_eq!(netuid, 1);
    assert_eq!(s.balances[&who(1)], U256::from(7));
    let p = logic::pool(&mut s, netuid).unwrap();
    assert_eq!(p.native_reserve, lock);
    assert_eq!(p.price(), PRICE_SCALE);
    assert_eq!(s.balances[&STAKING_ADDRESS], lock);
    // Defaults.
    assert_eq!(state::param_u64(&mut s, 1, Param::Tempo).unwrap(), 360);
    assert_eq!(state::param_u64(&mut s, 1, Param::Kappa).unwrap(), 32_767);
    assert_eq!(state::param_u64(&mut s, 1, Param::MaxUids).unwrap(), 256);
    assert_eq!(
        state::param_u64(&mut s, 1, Param::CommitRevealEnabled).unwrap(),
        1
    );
    assert_eq!(state::param_u64(&mut s, 1, Param::Yuma3Enabled).unwrap(), 1);
    // The next lock costs twice as much.
    assert_eq!(logic::lock_cost(&mut s).unwrap(), lock * U256::from(2));
    let short = pay(&mut s, lock);
    let msg = rev(register_network(&mut s, who(2), hotkey_of(who(2)), short));
    assert!(msg.contains("lock cost"), "{msg}");
}

#[test]
fn hyperparameters_owner_only_and_bounded() {
    let mut s = MemoryState::default();
    let n = subnet_with(&mut s, 10, false);
    let msg = rev(logic::set_hyperparameter(
        &mut s,
        who(2),
        n,
        Param::Kappa,
        U256::from(1),
    ));
    assert!(msg.contains("owner"), "{msg}");
    let msg = rev(logic::set_hyperparameter(
        &mut s,
        who(1),
        n,
        Param::Tempo,
        U256::ZERO,
    ));
    assert!(msg.contains("bounds"), "{msg}");
    let msg = rev(logic::set_hyperparameter(
        &mut s,
        who(1),
        n,
        Param::MaxValidators,
        U256::from(300),
    ));
    assert!(msg.contains("conflicts"), "{msg}");
    logic::set_hyperparameter(&mut s, who(1), n, Param::Kappa, U256::from(40_000)).unwrap();
    assert_eq!(state::param_u64(&mut s, n, Param::Kappa).unwrap(), 40_000);
    assert!(
        rev(logic::set_hyperparameter(
            &mut s,
            who(1),
            9,
            Param::Kappa,
            U256::ZERO
        ))
        .contains("does not exist")
    );
}

#[test]
fn burned_register_burns_and_reverts() {
    let mut s = MemoryState::default();
    let n = subnet_with(&mut s, 10, false);
    let burn = state::subnet(&mut s, n, Subnet::Burn).unwrap();
    let before = s.net_minted;
    assert_eq!(register(&mut s, n, 10), 0);
    assert_eq!(s.net_minted, before, "the burn destroys what was paid");
    assert_eq!(
        state::uid_of(&mut s, n, hotkey_of(who(10))).unwrap(),
        Some(0)
    );
    let paid = pay(&mut s, burn);
    assert!(
        rev(burned_register(
            &mut s,
            n,
            hotkey_of(who(10)),
            who(10),
            paid
        ))
        .contains("already registered")
    );
    let paid = pay(&mut s, burn - U256::from(1));
    assert!(
        rev(burned_register(
            &mut s,
            n,
            hotkey_of(who(11)),
            who(11),
            paid
        ))
        .contains("burn cost")
    );
    logic::set_hyperparameter(&mut s, who(1), n, Param::RegistrationAllowed, U256::ZERO).unwrap();
    assert!(
        rev(burned_register(
            &mut s,
            n,
            hotkey_of(who(11)),
            who(11),
            burn
        ))
        .contains("closed")
    );
}

#[test]
fn burn_rises_with_demand_and_decays_without() {
    let mut s = MemoryState::default();
    let n = subnet_with(&mut s, 1000, false);
    let b0 = state::subnet(&mut s, n, Subnet::Burn).unwrap();
    for i in 10..16 {
        register(&mut s, n, i);
    }
    s.block = 100;
    step(&mut s);
    let b1 = state::subnet(&mut s, n, Subnet::Burn).unwrap();
    assert_eq!(
        b1,
        b0 * U256::from(6 + 2) / U256::from(4),
        "6 regs vs target 2"
    );
    s.block = 200;
    step(&mut s);
    let b2 = state::subnet(&mut s, n, Subnet::Burn).unwrap();
    assert_eq!(b2, b1 / U256::from(2), "no registrations halves the burn");
    for k in 3..40 {
        s.block = 100 * k;
        step(&mut s);
    }
    assert_eq!(
        state::subnet(&mut s, n, Subnet::Burn).unwrap(),
        Param::MinBurn.default_value()
    );
}

#[test]
fn stake_round_trip_with_limits() {
    let mut s = MemoryState::default();
    let n = subnet_with(&mut s, 10, false);
    register(&mut s, n, 10);
    let paid = pay(&mut s, native(10));
    let sw = add_stake(&mut s, who(10), hotkey_of(who(10)), n, paid, None, false).unwrap();
    assert_eq!(alpha_of(&mut s, n, 10), sw.amount_out);
    assert!(logic::pool(&mut s, n).unwrap().price() > PRICE_SCALE);
    // Limit below the post-swap price: reverts, or fills partially and refunds the rest.
    let limit = Some(logic::pool(&mut s, n).unwrap().price() + U256::from(1_000));
    let paid = pay(&mut s, native(10));
    assert!(
        rev(add_stake(
            &mut s,
            who(10),
            hotkey_of(who(10)),
            n,
            paid,
            limit,
            false
        ))
        .contains("limit")
    );
    let bal = s.balance(who(10)).unwrap();
    let sw2 = add_stake(&mut s, who(10), hotkey_of(who(10)), n, paid, limit, true).unwrap();
    assert!(sw2.amount_in < paid);
    assert_eq!(s.balance(who(10)).unwrap() - bal, paid - sw2.amount_in);
    // Unstake everything: the pool keeps the fees, the staker gets less than paid in.
    let all = alpha_of(&mut s, n, 10);
    assert!(
        rev(remove_stake(
            &mut s,
            who(10),
            hotkey_of(who(10)),
            n,
            all + U256::from(1),
            None,
            false
        ))
        .contains("not enough stake")
    );
    let out = remove_stake(&mut s, who(10), hotkey_of(who(10)), n, all, None, false).unwrap();
    assert!(alpha_of(&mut s, n, 10).is_zero());
    assert!(out.amount_out < native(10) + sw2.amount_in);
    assert!(
        rev(add_stake(
            &mut s,
            who(10),
            hotkey_of(who(99)),
            n,
            paid,
            None,
            false
        ))
        .contains("not registered")
    );
}

#[test]
fn serve_axon_stores_endpoint() {
    let mut s = MemoryState::default();
    let n = subnet_with(&mut s, 10, false);
    let uid = register(&mut s, n, 10);
    let axon = state::Axon {
        block: 0,
        version: 1,
        ip: 0x7f00_0001,
        port: 8091,
        ip_type: 4,
        protocol: 4,
    };
    s.block = 5;
    logic::serve_axon(&mut s, n, who(10), axon).unwrap();
    let stored = state::Axon::unpack(state::neuron(&mut s, n, uid, Neuron::Axon).unwrap());
    assert_eq!(stored, state::Axon { block: 5, ..axon });
    assert!(
        rev(logic::serve_axon(
            &mut s,
            n,
            who(10),
            state::Axon { port: 0, ..axon }
        ))
        .contains("port")
    );
    assert!(rev(logic::serve_axon(&mut s, n, who(11), axon)).contains("not registered"));
}

#[test]
fn set_weights_checks() {
    let mut s = MemoryState::default();
    let n = subnet_with(&mut s, 10, false);
    for i in 10..13 {
        register(&mut s, n, i);
    }
    s.block = 1;
    set_weights(&mut s, n, who(10), &[1, 2], &[1, 3], 0).unwrap();
    assert_eq!(
        state::row(&mut s, Matrix::Weights, n, 0).unwrap(),
        vec![(1, 21_845), (2, 65_535)]
    );
    assert!(rev(set_weights(&mut s, n, who(10), &[1], &[1, 2], 0)).contains("length"));
    assert!(rev(set_weights(&mut s, n, who(10), &[1, 1], &[1, 2], 0)).contains("duplicate"));
    assert!(rev(set_weights(&mut s, n, who(10), &[7], &[1], 0)).contains("out of range"));
    assert!(rev(set_weights(&mut s, n, who(99), &[1], &[1], 0)).contains("not registered"));
    let set = |s: &mut MemoryState, p, v: u64| {
        logic::set_hyperparameter(s, who(1), n, p, U256::from(v)).unwrap()
    };
    set(&mut s, Param::WeightsVersionKey, 5);
    assert!(rev(set_weights(&mut s, n, who(10), &[1], &[1], 4)).contains("version key"));
    set(&mut s, Param::MinAllowedWeights, 2);
    assert!(rev(set_weights(&mut s, n, who(10), &[1], &[1], 5)).contains("min allowed"));
    set_weights(&mut s, n, who(10), &[0], &[1], 5).unwrap(); // a lone self-weight is allowed
    set(&mut s, Param::MaxWeightLimit, 40_000);
    assert!(rev(set_weights(&mut s, n, who(10), &[1, 2], &[1, 3], 5)).contains("max weight"));
    set_weights(&mut s, n, who(10), &[1, 2], &[1, 1], 5).unwrap();
    set(&mut s, Param::WeightsRateLimit, 10);
    assert!(rev(set_weights(&mut s, n, who(10), &[1, 2], &[1, 1], 5)).contains("rate limit"));
    s.block += 10;
    set_weights(&mut s, n, who(10), &[1, 2], &[1, 1], 5).unwrap();
    set(&mut s, Param::CommitRevealEnabled, 1);
    assert!(rev(set_weights(&mut s, n, who(10), &[1, 2], &[1, 1], 5)).contains("commit-reveal"));
}

#[test]
fn commit_reveal_window() {
    let mut s = MemoryState::default();
    let n = subnet_with(&mut s, 9, true); // epochs of 10 blocks; index = (b + 2) / 10
    register(&mut s, n, 10);
    register(&mut s, n, 11);
    s.block = 10; // index 1
    assert!(rev(set_weights(&mut s, n, who(10), &[1], &[1], 0)).contains("commit-reveal"));
    let h = commit_hash(who(10), n, &[1], &[9], &[42], 0);
    assert!(
        rev(reveal_weights(&mut s, n, who(10), &[1], &[9], &[42], 0)).contains("no weight commit")
    );
    commit_weights(&mut s, n, who(10), h).unwrap();
    assert!(rev(commit_weights(&mut s, n, who(10), h)).contains("already pending"));
    assert!(rev(reveal_weights(&mut s, n, who(10), &[1], &[9], &[42], 0)).contains("too early"));
    s.block = 18; // index 2
    assert!(rev(reveal_weights(&mut s, n, who(10), &[1], &[9], &[43], 0)).contains("match"));
    reveal_weights(&mut s, n, who(10), &[1], &[9], &[42], 0).unwrap();
    assert_eq!(
        state::row(&mut s, Matrix::Weights, n, 0).unwrap(),
        vec![(1, 65_535)]
    );
    // A commit left past its window expires.
    commit_weights(&mut s, n, who(10), h).unwrap();
    s.block = 38; // index 4 > 2 + 1
    assert!(rev(reveal_weights(&mut s, n, who(10), &[1], &[9], &[42], 0)).contains("expired"));
    commit_weights(&mut s, n, who(10), h).unwrap(); // an expired commit can be replaced
}

/// Registers validators `vals` (with stakes) and miners `miners` on a fresh subnet.
fn market(
    s: &mut MemoryState,
    tempo: u64,
    commit_reveal: bool,
    vals: &[(u8, u64)],
    miners: &[u8],
) -> u16 {
    let n = subnet_with(s, tempo, commit_reveal);
    for &(v, amount) in vals {
        register(s, n, v);
        stake(s, n, v, native(amount));
    }
    for &m in miners {
        register(s, n, m);
    }
    n
}

fn run_to_epoch(s: &mut MemoryState, netuid: u16) {
    let tempo = state::param_u64(s, netuid, Param::Tempo).unwrap();
    loop {
        let due = (s.block + u64::from(netuid) + 1).is_multiple_of(tempo + 1);
        step(s);
        if due {
            break;
        }
    }
}

#[test]
fn epoch_pays_miners_and_validators_and_records_reasons() {
    let mut s = MemoryState::default();
    let n = market(&mut s, 9, false, &[(10, 100), (11, 100)], &[20, 21]);
    // Miners are uids 2 and 3.
    set_weights(&mut s, n, who(10), &[2], &[1], 0).unwrap();
    set_weights(&mut s, n, who(11), &[2], &[1], 0).unwrap();
    run_to_epoch(&mut s, n); // first epoch grants validator permits
    s.block += 1;
    set_weights(&mut s, n, who(10), &[2], &[1], 0).unwrap();
    set_weights(&mut s, n, who(11), &[2], &[1], 0).unwrap();
    let m0 = alpha_of(&mut s, n, 20);
    let v0 = alpha_of(&mut s, n, 10);
    run_to_epoch(&mut s, n);
    assert!(alpha_of(&mut s, n, 20) > m0, "the weighted miner earns");
    assert!(alpha_of(&mut s, n, 10) > v0, "validators earn dividends");
    assert_eq!(alpha_of(&mut s, n, 21), U256::ZERO);
    assert_eq!(logic::reason(&mut s, n, 3).unwrap(), Reason::NotWeighted);
    assert_eq!(logic::reason(&mut s, n, 2).unwrap(), Reason::Earned);
    assert_eq!(
        state::neuron_u64(&mut s, n, 0, Neuron::ValidatorPermit).unwrap(),
        1
    );
    assert!(state::neuron_u64(&mut s, n, 2, Neuron::Incentive).unwrap() > 60_000);
    assert!(s.logs.len() > 10);
}

#[test]
fn colluding_minority_cannot_lift_its_miner() {
    let mut s = MemoryState::default();
    // Honest majority 10, 11 (stake 300 each) back miner 20; colluder 12 (stake 100) backs 21.
    let n = market(
        &mut s,
        9,
        false,
        &[(10, 300), (11, 300), (12, 100)],
        &[20, 21],
    );
    let (honest, cartel) = (3u16, 4u16);
    for _ in 0..4 {
        set_weights(&mut s, n, who(10), &[honest], &[1], 0).unwrap();
        set_weights(&mut s, n, who(11), &[honest], &[1], 0).unwrap();
        set_weights(&mut s, n, who(12), &[cartel], &[1], 0).unwrap();
        run_to_epoch(&mut s, n);
        s.block += 1;
    }
    assert_eq!(
        state::neuron_u64(&mut s, n, cartel, Neuron::Consensus).unwrap(),
        0
    );
    assert_eq!(
        state::neuron_u64(&mut s, n, cartel, Neuron::Incentive).unwrap(),
        0
    );
    assert_eq!(
        alpha_of(&mut s, n, 21),
        U256::ZERO,
        "the cartel's miner earns nothing"
    );
    assert!(alpha_of(&mut s, n, 20) > U256::ZERO);
    assert_eq!(
        logic::reason(&mut s, n, 2).unwrap(),
        Reason::WeightsClippedToZero
    );
}

#[test]
fn copied_weights_earn_nothing_under_commit_reveal() {
    let mut s = MemoryState::default();
    // Honest validators 10, 11 and a copier 12; the best miner alternates every tempo.
    let n = market(
        &mut s,
        9,
        true,
        &[(10, 300), (11, 300), (12, 100)],
        &[20, 21],
    );
    let miners = [3u16, 4u16];
    let mut last_revealed: Option<Vec<u16>> = None;
    let mut honest_pending: Option<(u16, u16)> = None; // (miner, salt)
    let mut copier_pending: Option<Vec<u16>> = None;
    let mut copier_before = U256::ZERO;
    let mut honest_before = U256::ZERO;
    for e in 0..10u16 {
        if e == 4 {
            // From here on every validator has a permit and revealed weights in place
            // (before that, emission with no incentive goes to validators by stake).
            copier_before = alpha_of(&mut s, n, 12);
            honest_before = alpha_of(&mut s, n, 10);
        }
        // Reveal what was committed last tempo.
        if let Some((m, salt)) = honest_pending.take() {
            for v in [10u8, 11] {
                reveal_weights(&mut s, n, who(v), &[m], &[1], &[salt], 0).unwrap();
            }
            last_revealed = Some(vec![m]);
        }
        if let Some(w) = copier_pending.take() {
            reveal_weights(&mut s, n, who(12), &w, &[1], &[7], 0).unwrap();
        }
        // Commit: honest validators score this tempo's best miner; the copier can only
        // copy what was revealed (the previous tempo's scores).
        let best = miners[usize::from(e % 2)];
        for v in [10u8, 11] {
            let h = commit_hash(who(v), n, &[best], &[1], &[e], 0);
            commit_weights(&mut s, n, who(v), h).unwrap();
        }
        honest_pending = Some((best, e));
        if let Some(w) = last_revealed.clone() {
            let h = commit_hash(who(12), n, &w, &[1], &[7], 0);
            commit_weights(&mut s, n, who(12), h).unwrap();
            copier_pending = Some(w);
        }
        run_to_epoch(&mut s, n);
    }
    assert!(
        alpha_of(&mut s, n, 10) > honest_before,
        "honest validators earn"
    );
    assert_eq!(
        alpha_of(&mut s, n, 12),
        copier_before,
        "the copier earns nothing"
    );
}

#[test]
fn registration_spam_inherits_nothing_from_a_pruned_uid() {
    let mut s = MemoryState::default();
    let n = subnet_with(&mut s, 9, false);
    for (p, v) in [
        (Param::MaxValidators, 3u64),
        (Param::MaxUids, 3),
        (Param::ImmunityPeriod, 0),
    ] {
        logic::set_hyperparameter(&mut s, who(1), n, p, U256::from(v)).unwrap();
    }
    register(&mut s, n, 10);
    stake(&mut s, n, 10, native(100));
    register(&mut s, n, 20);
    register(&mut s, n, 21);
    set_weights(&mut s, n, who(10), &[1, 2], &[1, 1], 0).unwrap();
    set_weights(&mut s, n, who(21), &[1], &[1], 0).unwrap();
    for _ in 0..3 {
        run_to_epoch(&mut s, n);
        s.block += 1;
        set_weights(&mut s, n, who(10), &[1], &[1], 0).unwrap();
    }
    // uid 2 (hotkey 21) earns nothing and is pruned by the next registration.
    assert_eq!(logic::uid_to_prune(&mut s, n).unwrap(), Some(2));
    assert!(!state::row(&mut s, Matrix::Bonds, n, 0).unwrap().is_empty());
    let uid = register(&mut s, n, 30);
    assert_eq!(uid, 2);
    assert_eq!(state::uid_of(&mut s, n, hotkey_of(who(21))).unwrap(), None);
    assert_eq!(
        state::pruned_at(&mut s, n, hotkey_of(who(21))).unwrap(),
        s.block
    );
    assert!(
        state::row(&mut s, Matrix::Weights, n, 2)
            .unwrap()
            .is_empty()
    );
    for r in 0..3 {
        for m in [Matrix::Weights, Matrix::Bonds] {
            let row = state::row(&mut s, m, n, r).unwrap();
            assert!(
                row.iter().all(|&(j, _)| j != 2),
                "column 2 cleared in {m:?} row {r}"
            );
        }
    }
    for f in [
        Neuron::Emission,
        Neuron::Incentive,
        Neuron::PruningScore,
        Neuron::CommitHash,
    ] {
        assert!(state::neuron(&mut s, n, 2, f).unwrap().is_zero());
    }
    assert!(alpha_of(&mut s, n, 30).is_zero());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Each epoch distributes exactly the pending alpha (owner cut + miners + validators +
    /// carried remainder), and native minted equals what the pools received.
    #[test]
    fn emission_is_conserved(
        stakes in proptest::collection::vec(1u64..1_000, 1..5),
        weights in proptest::collection::vec(0u16..=u16::MAX, 3),
        tempo in 2u64..12,
        epochs in 1usize..4,
    ) {
        let mut s = MemoryState::default();
        let vals: Vec<(u8, u64)> = stakes.iter().enumerate().map(|(i, &a)| (10 + i as u8, a)).collect();
        let n = market(&mut s, tempo, false, &vals, &[40, 41, 42]);
        let miners: Vec<u16> = (0..3).map(|k| vals.len() as u16 + k).collect();
        let total = |s: &mut MemoryState| {
            state::subnet(s, n, Subnet::TotalAlphaStaked).unwrap()
                + state::subnet(s, n, Subnet::PendingAlpha).unwrap()
        };
        for _ in 0..epochs {
            for &(v, _) in &vals {
                let _ = set_weights(&mut s, n, who(v), &miners, &weights, 0);
            }
            let before = total(&mut s);
            let minted_before = s.net_minted;
            let blocks_before = s.block;
            run_to_epoch(&mut s, n);
            let blocks = U256::from(s.block - blocks_before);
            prop_assert_eq!(total(&mut s), before + blocks * ALPHA_BLOCK_EMISSION);
            prop_assert_eq!(
                U256::from((s.net_minted - minted_before) as u128),
                blocks * NATIVE_BLOCK_EMISSION
            );
            let ev = s.logs.last().unwrap().clone();
            prop_assert_eq!(ev.topics.len(), 2); // EpochEmission(netuid indexed, ...)
            s.block += 1;
        }
        // Custody holds exactly the pool's native reserve.
        let p = logic::pool(&mut s, n).unwrap();
        prop_assert_eq!(s.balances[&STAKING_ADDRESS], p.native_reserve);
        prop_assert!(!B256::from(state::subnet(&mut s, n, Subnet::OwnerHotkey).unwrap()).is_zero());
    }
}
