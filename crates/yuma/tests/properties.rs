//! Invariants of the epoch on random subnets (normalization, emission accounting, clipping).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use common::{GenOptions, Rng, random_inputs};
use noesis_yuma::epoch;
use noesis_yuma::fixed::I32F32;

/// Sum of raw bits.
fn total(v: &[I32F32]) -> i128 {
    v.iter().map(|x| i128::from(x.to_bits())).sum()
}

/// A normalized vector sums to 1 minus at most one unit in the last place per element (each
/// quotient is truncated), or is all zero.
fn assert_normalized(name: &str, v: &[I32F32], case: usize) {
    let one = i128::from(I32F32::ONE.to_bits());
    let s = total(v);
    assert!(
        v.iter().all(|x| x.to_bits() >= 0),
        "case {case}: {name} has a negative entry"
    );
    if s != 0 {
        assert!(
            s <= one && s >= one - v.len() as i128,
            "case {case}: {name} sums to {s}"
        );
    }
}

#[test]
fn normalization_and_emission_invariants() {
    let mut rng = Rng(7);
    for case in 0..1500 {
        let inputs = random_inputs(
            &mut rng,
            GenOptions {
                max_n: 40,
                unsorted: true,
                heavy: false,
                original: false,
            },
        );
        let st = inputs.state();
        let hp = inputs.hyperparams();
        let out = epoch(&inputs);
        let n = usize::from(st.n);

        assert_normalized("stake_normalized", &out.stake_normalized, case);
        assert_normalized("active_stake", &out.active_stake, case);
        assert_normalized("incentive", &out.incentive, case);
        assert_normalized("dividends", &out.dividends, case);
        assert_normalized(
            "normalized_combined_emission",
            &out.normalized_combined_emission,
            case,
        );

        // Incentive is the normalized rank vector: zero exactly where the rank is zero.
        for (r, i) in out.ranks.iter().zip(&out.incentive) {
            assert_eq!(
                r.to_bits() == 0,
                i.to_bits() == 0 || total(&out.ranks) == 0,
                "case {case}"
            );
        }

        // emission_sum is the sum of incentive + dividends; the server and validator shares are
        // I and D divided by it, so together they never exceed 1.
        let sum_id = total(&out.incentive) + total(&out.dividends);
        assert_eq!(
            i128::from(out.emission_sum.to_bits()),
            sum_id,
            "case {case}"
        );
        let shares =
            total(&out.normalized_server_emission) + total(&out.normalized_validator_emission);
        assert!(
            shares <= i128::from(I32F32::ONE.to_bits()),
            "case {case}: shares {shares}"
        );

        // No more than rao_emission is ever handed out, per vector and for miners + validators.
        let rao = u128::from(st.rao_emission);
        let sum = |v: &[u64]| v.iter().map(|&x| u128::from(x)).sum::<u128>();
        assert!(sum(&out.emission) <= rao, "case {case}");
        assert!(
            sum(&out.server_emission) + sum(&out.validator_emission) <= rao,
            "case {case}"
        );
        // If anything is emitted, the undistributed remainder is only rounding (< 1 rao per uid
        // and per truncated share).
        if sum_id != 0 || total(&out.normalized_combined_emission) != 0 {
            assert!(
                rao - sum(&out.emission) <= 2 * n as u128 * (1 + rao / (1 << 32)) + 2,
                "case {case}"
            );
        }

        // Clipped weights of a validator sum to at most its normalized weight row (<= 1).
        for t in &out.validator_trust {
            assert!(
                (0..=I32F32::ONE.to_bits()).contains(&t.to_bits()),
                "case {case}"
            );
        }

        // Bonds are stored only for uids with a new permit; permits need stake (or ownership)
        // and there are at most max_allowed_validators of them beyond the owner.
        let permits = out.new_validator_permit.iter().filter(|&&p| p).count();
        let owner_in_range = st.owner_uid.is_some_and(|o| usize::from(o) < n);
        assert!(
            n < usize::from(hp.max_allowed_validators)
                || permits <= usize::from(hp.max_allowed_validators) + usize::from(owner_in_range),
            "case {case}"
        );
        for (i, (row, &p)) in out
            .bonds_new
            .iter()
            .zip(&out.new_validator_permit)
            .enumerate()
        {
            assert!(
                p || row.is_empty(),
                "case {case}: uid {i} stores bonds without a permit"
            );
            assert!(row.iter().all(|&(j, _)| usize::from(j) < n), "case {case}");
            assert!(row.windows(2).all(|w| w[0].0 != w[1].0), "case {case}");
        }
        for (i, (&s, &p)) in out
            .stake_normalized
            .iter()
            .zip(&out.new_validator_permit)
            .enumerate()
        {
            assert!(
                !p || s.to_bits() != 0 || st.owner_uid == Some(i as u16),
                "case {case}"
            );
        }

        // Determinism.
        assert!(epoch(&inputs) == out, "case {case}");
    }
}

/// Consensus is always one of the scores of its column (or 0), and validator trust can only
/// shrink when kappa moves the consensus down.
#[test]
fn consensus_is_a_column_score() {
    let mut rng = Rng(11);
    for case in 0..500 {
        let inputs = random_inputs(
            &mut rng,
            GenOptions {
                max_n: 30,
                unsorted: false,
                heavy: false,
                original: false,
            },
        );
        let out = epoch(&inputs);
        // Scores are W (normalized weights), which the outputs do not carry; use the fact that
        // consensus never exceeds 1 and is 0 for columns no active validator scores.
        for c in &out.consensus {
            assert!(
                (0..=I32F32::ONE.to_bits()).contains(&c.to_bits()),
                "case {case}"
            );
        }
        let mut hp = inputs.hyperparams().clone();
        let st = inputs.state().clone();
        hp.kappa = 65535; // majority = everything: the consensus is the smallest score
        let strict = epoch(&noesis_yuma::Inputs::new(hp.clone(), st.clone()).unwrap());
        hp.kappa = 0; // the largest score
        let lax = epoch(&noesis_yuma::Inputs::new(hp, st).unwrap());
        for ((s, m), l) in strict
            .consensus
            .iter()
            .zip(&out.consensus)
            .zip(&lax.consensus)
        {
            assert!(s <= m && m <= l, "case {case}: {s:?} {m:?} {l:?}");
        }
        for (s, l) in strict.validator_trust.iter().zip(&lax.validator_trust) {
            assert!(s <= l, "case {case}");
        }
    }
}
