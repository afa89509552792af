//! The per-subnet pool: a protocol-owned constant-product market between the native token
//! and the subnet's alpha (Subtensor's dynamic-TAO reserves, `SubnetTAO` / `SubnetAlphaIn`).
//!
//! Staking swaps native for alpha through it, unstaking alpha for native. A fee of
//! [`POOL_FEE_BPS`] basis points of the input stays in the pool. Every quotient rounds in the
//! pool's favour: the fee is rounded up, the output down, so `native_reserve *
//! alpha_reserve` never decreases and no unit is created by a swap. The price is native per
//! alpha scaled by [`PRICE_SCALE`] (`1e18` = one native per alpha).
//!
//! Limit prices follow Subtensor's `add_stake_limit` / `remove_stake_limit`: staking takes the
//! worst (highest) acceptable price *after* the swap, unstaking the lowest; with
//! `allow_partial` the largest amount that respects the limit is filled instead of reverting.

use alloy_primitives::{U256, U512};

use crate::modules::ModuleError;

/// Swap fee in basis points of the input amount (0.05%, Subtensor's default pool fee).
pub const POOL_FEE_BPS: u64 = 5;
/// Fixed-point scale of prices: native wei per alpha unit times `1e18`.
pub const PRICE_SCALE: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);
const BPS: U256 = U256::from_limbs([10_000, 0, 0, 0]);

/// Reserves of one pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pool {
    /// Native wei in the pool.
    pub native_reserve: U256,
    /// Alpha units in the pool.
    pub alpha_reserve: U256,
}

/// The outcome of a swap: what goes in, what comes out, and the fee kept by the pool
/// (included in `amount_in`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swap {
    /// Input actually taken (at most the amount asked for when filled partially).
    pub amount_in: U256,
    /// Output paid out.
    pub amount_out: U256,
    /// Part of `amount_in` kept by the pool as fee.
    pub fee: U256,
}

fn overflow() -> ModuleError {
    ModuleError::Revert("pool arithmetic overflow".into())
}

pub(crate) fn add(a: U256, b: U256) -> Result<U256, ModuleError> {
    a.checked_add(b).ok_or_else(overflow)
}

pub(crate) fn sub(a: U256, b: U256) -> Result<U256, ModuleError> {
    a.checked_sub(b).ok_or_else(overflow)
}

pub(crate) fn mul(a: U256, b: U256) -> Result<U256, ModuleError> {
    a.checked_mul(b).ok_or_else(overflow)
}

/// `a * b / d`, rounded down; `d` must be non-zero.
pub(crate) fn mul_div(a: U256, b: U256, d: U256) -> Result<U256, ModuleError> {
    mul(a, b)?.checked_div(d).ok_or_else(overflow)
}

/// `a * b / d`, rounded up; `d` must be non-zero.
fn mul_div_up(a: U256, b: U256, d: U256) -> Result<U256, ModuleError> {
    let p = mul(a, b)?;
    let q = p.checked_div(d).ok_or_else(overflow)?;
    let r = p.checked_rem(d).ok_or_else(overflow)?;
    if r.is_zero() {
        Ok(q)
    } else {
        add(q, U256::from(1))
    }
}

impl Pool {
    /// Native per alpha times [`PRICE_SCALE`], rounded down; zero for an empty pool.
    pub fn price(&self) -> U256 {
        if self.alpha_reserve.is_zero() {
            return U256::ZERO;
        }
        mul_div(self.native_reserve, PRICE_SCALE, self.alpha_reserve).unwrap_or(U256::MAX)
    }

    /// Whether this pool's exact price `native / alpha` is at most `limit / PRICE_SCALE`.
    fn price_at_most(&self, limit: U256) -> Result<bool, ModuleError> {
        // 512-bit products: any limit, up to U256::MAX ("no limit"), compares exactly.
        let (price, bound): (U512, U512) = (
            self.native_reserve.widening_mul(PRICE_SCALE),
            limit.widening_mul(self.alpha_reserve),
        );
        Ok(price <= bound)
    }

    /// Whether this pool's exact price is at least `limit / PRICE_SCALE`.
    fn price_at_least(&self, limit: U256) -> Result<bool, ModuleError> {
        let (price, bound): (U512, U512) = (
            self.native_reserve.widening_mul(PRICE_SCALE),
            limit.widening_mul(self.alpha_reserve),
        );
        Ok(price >= bound)
    }

    /// Quotes a swap of `amount_in` of one side for the other without changing the pool.
    /// `native_in` picks the direction (native → alpha when true).
    pub fn quote(&self, native_in: bool, amount_in: U256) -> Result<Swap, ModuleError> {
        let (reserve_in, reserve_out) = if native_in {
            (self.native_reserve, self.alpha_reserve)
        } else {
            (self.alpha_reserve, self.native_reserve)
        };
        let fee = mul_div_up(amount_in, U256::from(POOL_FEE_BPS), BPS)?;
        let net = amount_in.saturating_sub(fee);
        let denominator = add(reserve_in, net)?;
        let amount_out = if denominator.is_zero() {
            U256::ZERO
        } else {
            mul_div(reserve_out, net, denominator)?
        };
        Ok(Swap {
            amount_in,
            amount_out,
            fee,
        })
    }

    /// Applies a quoted swap to the reserves.
    fn apply(&mut self, native_in: bool, swap: &Swap) -> Result<(), ModuleError> {
        if native_in {
            self.native_reserve = add(self.native_reserve, swap.amount_in)?;
            self.alpha_reserve = sub(self.alpha_reserve, swap.amount_out)?;
        } else {
            self.alpha_reserve = add(self.alpha_reserve, swap.amount_in)?;
            self.native_reserve = sub(self.native_reserve, swap.amount_out)?;
        }
        Ok(())
    }

    /// Whether the pool after `swap` would respect `limit` (None = no limit).
    fn within_limit(
        &self,
        native_in: bool,
        swap: &Swap,
        limit: Option<U256>,
    ) -> Result<bool, ModuleError> {
        let Some(limit) = limit else { return Ok(true) };
        let mut after = *self;
        after.apply(native_in, swap)?;
        if native_in {
            after.price_at_most(limit)
        } else {
            after.price_at_least(limit)
        }
    }

    /// Swaps up to `amount_in` through the pool. With a `limit` price (the highest price
    /// after the swap for native → alpha, the lowest for alpha → native) the swap reverts
    /// when it would cross it, or, with `allow_partial`, fills the largest amount that does
    /// not (found by bisection over the exact swap, so the limit holds exactly). A swap that
    /// would pay out nothing reverts.
    pub fn swap(
        &mut self,
        native_in: bool,
        amount_in: U256,
        limit: Option<U256>,
        allow_partial: bool,
    ) -> Result<Swap, ModuleError> {
        if amount_in.is_zero() {
            return Err(ModuleError::Revert("amount is zero".into()));
        }
        let full = self.quote(native_in, amount_in)?;
        let swap = if self.within_limit(native_in, &full, limit)? {
            full
        } else if !allow_partial {
            return Err(ModuleError::Revert("price limit exceeded".into()));
        } else {
            // Largest input in [0, amount_in] whose swap respects the limit: the post-swap
            // price is monotone in the input, so bisection finds it exactly.
            let mut lo = U256::ZERO;
            let mut hi = amount_in;
            while lo < hi {
                let gap = sub(hi, lo)?;
                let mid = add(lo, add(gap, U256::from(1))?.wrapping_shr(1))?;
                let quote = self.quote(native_in, mid)?;
                if self.within_limit(native_in, &quote, limit)? {
                    lo = mid;
                } else {
                    hi = sub(mid, U256::from(1))?;
                }
            }
            self.quote(native_in, lo)?
        };
        if swap.amount_out.is_zero() {
            return Err(ModuleError::Revert(
                "swap output is zero (amount too small or price limit reached)".into(),
            ));
        }
        self.apply(native_in, &swap)?;
        Ok(swap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pool(n: u128, a: u128) -> Pool {
        Pool {
            native_reserve: U256::from(n),
            alpha_reserve: U256::from(a),
        }
    }

    #[test]
    fn price_is_native_per_alpha() {
        assert_eq!(pool(2, 1).price(), PRICE_SCALE * U256::from(2));
        assert_eq!(pool(0, 0).price(), U256::ZERO);
    }

    #[test]
    fn stake_raises_price_unstake_lowers_it() {
        let mut p = pool(1_000_000_000, 1_000_000_000);
        let before = p.price();
        let s = p.swap(true, U256::from(1_000_000u64), None, false).unwrap();
        assert!(s.amount_out < U256::from(1_000_000u64), "fee and slippage");
        assert!(p.price() > before);
        let mid = p.price();
        p.swap(false, U256::from(500_000u64), None, false).unwrap();
        assert!(p.price() < mid);
    }

    #[test]
    fn limit_reverts_without_partial_and_fills_up_to_it_with_partial() {
        let mut p = pool(1_000_000_000, 1_000_000_000);
        let limit = PRICE_SCALE * U256::from(11) / U256::from(10); // 1.1
        let amount = U256::from(500_000_000u64);
        let mut copy = p;
        let err = copy.swap(true, amount, Some(limit), false).unwrap_err();
        assert_eq!(err, ModuleError::Revert("price limit exceeded".into()));
        let s = p.swap(true, amount, Some(limit), true).unwrap();
        assert!(s.amount_in < amount && !s.amount_in.is_zero());
        assert!(p.price_at_most(limit).unwrap());
        // One more unit would cross the limit.
        let next = p.quote(true, U256::from(2)).unwrap();
        assert!(!p.within_limit(true, &next, Some(limit)).unwrap() || next.amount_out.is_zero());
    }

    #[test]
    fn unstake_limit_is_a_floor() {
        let mut p = pool(1_000_000_000, 1_000_000_000);
        let floor = PRICE_SCALE * U256::from(9) / U256::from(10);
        let mut copy = p;
        let err = copy
            .swap(false, U256::from(500_000_000u64), Some(floor), false)
            .unwrap_err();
        assert_eq!(err, ModuleError::Revert("price limit exceeded".into()));
        p.swap(false, U256::from(500_000_000u64), Some(floor), true)
            .unwrap();
        assert!(p.price_at_least(floor).unwrap());
    }

    #[test]
    fn zero_amount_and_dust_revert() {
        let mut p = pool(1_000_000_000, 1_000_000_000);
        assert!(p.swap(true, U256::ZERO, None, false).is_err());
        assert!(p.swap(true, U256::from(1), None, false).is_err());
        assert_eq!(p, pool(1_000_000_000, 1_000_000_000));
    }

    proptest! {
        /// Any sequence of swaps conserves units exactly (what the traders hold plus the
        /// reserves is constant on each side) and never decreases `k`.
        #[test]
        fn swaps_conserve_units(
            n0 in 1_000u128..1_000_000_000_000_000_000_000,
            a0 in 1_000u128..1_000_000_000_000_000_000_000,
            ops in proptest::collection::vec((any::<bool>(), 1u128..1_000_000_000_000_000_000_000, any::<bool>(), 0u128..3_000_000_000_000_000_000), 1..40),
        ) {
            let mut p = pool(n0, a0);
            let mut trader_native = U256::from(u128::MAX);
            let mut trader_alpha = U256::from(u128::MAX);
            let total_native = trader_native + p.native_reserve;
            let total_alpha = trader_alpha + p.alpha_reserve;
            for (native_in, amount, use_limit, limit) in ops {
                let k_before = p.native_reserve * p.alpha_reserve;
                let price_before = p.price();
                let amount = U256::from(amount);
                let limit = use_limit.then(|| U256::from(limit));
                if let Ok(s) = p.swap(native_in, amount, limit, true) {
                    prop_assert!(s.amount_in <= amount);
                    if native_in {
                        trader_native -= s.amount_in;
                        trader_alpha += s.amount_out;
                        prop_assert!(p.price() >= price_before);
                        if let Some(l) = limit { prop_assert!(p.price_at_most(l).unwrap()); }
                    } else {
                        trader_alpha -= s.amount_in;
                        trader_native += s.amount_out;
                        prop_assert!(p.price() <= price_before);
                        if let Some(l) = limit { prop_assert!(p.price_at_least(l).unwrap()); }
                    }
                }
                prop_assert!(p.native_reserve * p.alpha_reserve >= k_before);
                prop_assert_eq!(trader_native + p.native_reserve, total_native);
                prop_assert_eq!(trader_alpha + p.alpha_reserve, total_alpha);
            }
        }
    }
}
