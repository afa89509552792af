//! Fixed-point arithmetic with the exact rounding behaviour of `substrate-fixed` 0.6.0.
//!
//! Only the handful of operations the epoch needs are provided, each documented with the
//! substrate-fixed call it reproduces:
//!
//! * [`I32F32`]: signed 64-bit, 32 fractional bits (`FixedI64<U32>`), the epoch's working type.
//! * [`I64F64`]: signed 128-bit, 64 fractional bits (`FixedI128<U64>`), used for stake
//!   normalization and the bonds moving average.
//! * `I96F32` is only ever used for `share * rao_emission` followed by a conversion to `u64`;
//!   [`share_of_rao`] computes that product exactly without materialising the type.
//!
//! Rounding rules (all checked against substrate-fixed's source):
//!
//! * multiplication forms the exact double-width product and shifts the surplus fraction bits
//!   out arithmetically, i.e. it rounds toward minus infinity;
//! * division computes `(lhs << frac) / rhs` with integer division, i.e. it truncates toward zero;
//! * narrowing a fixed-point value to fewer fraction bits shifts right (toward minus infinity);
//! * fixed-to-integer conversion drops the fraction (toward minus infinity) and saturates.
//!
//! Everything here is integer arithmetic; no floating point is involved.

use core::cmp::Ordering;

/// `2^32`, the scale of [`I32F32`].
const ONE_BITS: i64 = 0x1_0000_0000;

/// Signed fixed-point number with 32 integer and 32 fractional bits (`substrate_fixed::types::I32F32`).
///
/// The raw representation (`bits`) is the value times `2^32`, as a two's-complement `i64`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct I32F32(i64);

impl I32F32 {
    /// Number of fractional bits.
    pub const FRAC_BITS: u32 = 32;
    /// 0.
    pub const ZERO: Self = Self(0);
    /// 1.
    pub const ONE: Self = Self(ONE_BITS);
    /// 0.5 (the decimal constant `0.5` converted exactly).
    pub const HALF: Self = Self(0x8000_0000);
    /// 65535 (`u16::MAX` as a fixed-point integer).
    pub const U16_MAX: Self = Self(0xFFFF_0000_0000);
    /// Largest representable value.
    pub const MAX: Self = Self(i64::MAX);
    /// Smallest representable value.
    pub const MIN: Self = Self(i64::MIN);
    /// Euler's number as substrate-fixed's `transcendental::exp` returns it for an input of
    /// exactly 1: the `I9F23` constant `E` (truncated to 23 fractional bits) widened to `I32F32`.
    pub const E_I9F23: Self = Self(11_674_931_200);

    /// Builds a value from its raw bits (value = `bits / 2^32`).
    #[inline]
    pub const fn from_bits(bits: i64) -> Self {
        Self(bits)
    }

    /// The raw bits (value times `2^32`).
    #[inline]
    pub const fn to_bits(self) -> i64 {
        self.0
    }

    /// Exact conversion from a `u16` integer (`I32F32::saturating_from_num(u16)`).
    #[inline]
    pub const fn from_u16(v: u16) -> Self {
        // v < 2^16, so v * 2^32 < 2^48: the shift cannot overflow.
        Self((v as i64).wrapping_shl(32))
    }

    /// Exact conversion from an `i16` integer (`I32F32::saturating_from_num(i16)`).
    #[inline]
    pub const fn from_i16(v: i16) -> Self {
        Self((v as i64).wrapping_shl(32))
    }

    /// Exact conversion from an `i32` integer (`I32F32::from_num(i32)`).
    #[inline]
    pub const fn from_i32(v: i32) -> Self {
        Self((v as i64).wrapping_shl(32))
    }

    /// `I32F32::saturating_from_num(u64)`: exact when `v <= i32::MAX`, else [`I32F32::MAX`].
    #[inline]
    pub fn saturating_from_u64(v: u64) -> Self {
        match i32::try_from(v) {
            Ok(small) => Self::from_i32(small),
            Err(_) => Self::MAX,
        }
    }

    /// `u16::MAX` fraction of a stored `u16`: `I32F32::from_num(v) / 65535` with substrate-fixed's
    /// truncating division (`fixed_to_fixed_u16_proportion(u16_to_fixed(v))`).
    #[inline]
    pub const fn from_u16_proportion(v: u16) -> Self {
        // (v * 2^32 * 2^32) / (65535 * 2^32) == (v * 2^32) / 65535 exactly (common factor 2^32),
        // and all values are non-negative so truncation and flooring coincide.
        Self(((v as i64).wrapping_shl(32)).wrapping_div(65535))
    }

    /// `saturating_add`.
    #[inline]
    pub const fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }

    /// `saturating_sub`.
    #[inline]
    pub const fn saturating_sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }

    /// `checked_add`.
    #[inline]
    pub fn checked_add(self, rhs: Self) -> Option<Self> {
        self.0.checked_add(rhs.0).map(Self)
    }

    /// `checked_neg`.
    #[inline]
    pub fn checked_neg(self) -> Option<Self> {
        self.0.checked_neg().map(Self)
    }

    /// `checked_mul`: exact product rounded toward minus infinity, `None` when it does not fit.
    #[inline]
    pub fn checked_mul(self, rhs: Self) -> Option<Self> {
        // |a * b| <= 2^126 always fits in i128, so the wrapping multiply is exact.
        let prod = i128::from(self.0).wrapping_mul(i128::from(rhs.0));
        // Arithmetic shift: floor division by 2^32.
        i64::try_from(prod.wrapping_shr(32)).ok().map(Self)
    }

    /// `saturating_mul`: like [`I32F32::checked_mul`] but saturating on overflow, toward the
    /// sign of the exact product (substrate-fixed decides by the operand signs).
    #[inline]
    pub fn saturating_mul(self, rhs: Self) -> Self {
        if (self.0 | rhs.0) >= 0 {
            // Both non-negative (the epoch's usual case): the exact product is an unsigned
            // 64 x 64-bit one, its floor a plain shift, and only the upper bound can be hit.
            let prod = u128::from(self.0 as u64).wrapping_mul(u128::from(rhs.0 as u64));
            return Self(i64::try_from(prod.wrapping_shr(32)).unwrap_or(i64::MAX));
        }
        match self.checked_mul(rhs) {
            Some(v) => v,
            None => {
                if (self.0 < 0) != (rhs.0 < 0) {
                    Self::MIN
                } else {
                    Self::MAX
                }
            }
        }
    }

    /// `checked_div`: `(self << 32) / rhs` truncated toward zero; `None` for a zero divisor or a
    /// quotient that does not fit.
    #[inline]
    pub fn checked_div(self, rhs: Self) -> Option<Self> {
        if rhs.0 == 0 {
            return None;
        }
        let neg = (self.0 < 0) != (rhs.0 < 0);
        let q = div_mag(self.0.unsigned_abs(), rhs.0.unsigned_abs())?;
        apply_sign_i64(q, neg).map(Self)
    }

    /// `safe_div` from subtensor's `safe-math`: `checked_div`, or 0 on a zero divisor or overflow.
    #[inline]
    pub fn safe_div(self, rhs: Self) -> Self {
        self.checked_div(rhs).unwrap_or(Self::ZERO)
    }

    /// `saturating_div`: `checked_div`, saturating toward the sign of the quotient on overflow.
    ///
    /// substrate-fixed panics on a zero divisor; the epoch never divides by a zero constant
    /// here, and this implementation saturates (by the dividend's sign) instead of panicking.
    #[inline]
    pub fn saturating_div(self, rhs: Self) -> Self {
        match self.checked_div(rhs) {
            Some(v) => v,
            None => {
                if (self.0 < 0) != (rhs.0 < 0) {
                    Self::MIN
                } else {
                    Self::MAX
                }
            }
        }
    }

    /// `saturating_to_num::<u16>()`: drop the fraction (toward minus infinity), clamp to `[0, 65535]`.
    #[inline]
    pub fn to_u16_saturating(self) -> u16 {
        let int = self.0.wrapping_shr(32);
        u16::try_from(int.max(0)).unwrap_or(u16::MAX)
    }

    /// subtensor's `fixed_proportion_to_u16`: `(self * 65535)` then [`I32F32::to_u16_saturating`].
    #[inline]
    pub fn proportion_to_u16(self) -> u16 {
        if (0..=Self::ONE.0).contains(&self.0) {
            // 0 <= bits <= 2^32: bits * 65535 < 2^48 cannot overflow, and the floor is a shift.
            return u16::try_from(self.0.wrapping_mul(65535).wrapping_shr(32)).unwrap_or(u16::MAX);
        }
        self.saturating_mul(Self::U16_MAX).to_u16_saturating()
    }

    /// `I64F64::saturating_from_num(self)`: exact widening.
    #[inline]
    pub fn to_i64f64(self) -> I64F64 {
        I64F64(i128::from(self.0).wrapping_shl(32))
    }

    /// `min` as in `Ord::min` (used by `clamp_value`).
    #[inline]
    pub fn min_of(self, other: Self) -> Self {
        match self.cmp(&other) {
            Ordering::Greater => other,
            _ => self,
        }
    }

    /// `max` as in `Ord::max` (used by `clamp_value`).
    #[inline]
    pub fn max_of(self, other: Self) -> Self {
        match self.cmp(&other) {
            Ordering::Less => other,
            _ => self,
        }
    }
}

/// Magnitude of `(a << 32) / b`, truncated, if it fits in a `u64`.
#[inline]
fn div_mag(ua: u64, ub: u64) -> Option<u64> {
    if ub == 0 {
        return None;
    }
    if ua < (1u64 << 32) {
        // (ua << 32) fits in 64 bits: plain 64-bit division.
        return ua.wrapping_shl(32).checked_div(ub);
    }
    // Cancel common powers of two: (ua * 2^32) / (ub' * 2^tz) == (ua * 2^(32 - tz)) / ub'.
    let tz = ub.trailing_zeros().min(32);
    let ub_red = ub.wrapping_shr(tz);
    let shift = 32u32.wrapping_sub(tz);
    if ua.leading_zeros() >= shift {
        return ua.wrapping_shl(shift).checked_div(ub_red);
    }
    let q = u128::from(ua)
        .wrapping_shl(shift)
        .checked_div(u128::from(ub_red))?;
    u64::try_from(q).ok()
}

/// Applies a sign to a magnitude, `None` if the result does not fit in an `i64`.
#[inline]
fn apply_sign_i64(mag: u64, neg: bool) -> Option<i64> {
    if neg {
        if mag == 1u64 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(mag).ok().map(i64::wrapping_neg)
        }
    } else {
        i64::try_from(mag).ok()
    }
}

/// A factor in `[0, 1]` for many multiplications: [`UnitFactor::times`] is bit-identical to
/// [`I32F32::saturating_mul`] by the same factor.
///
/// For a non-negative operand `x` the product `f * x` (in bits `(f * x) >> 32` with
/// `f <= 2^32`) is at most `x`, so it never saturates: one unsigned multiply and a shift.
#[derive(Clone, Copy, Debug)]
pub struct UnitFactor(u64);

impl UnitFactor {
    /// 0.
    pub const ZERO: Self = Self(0);

    /// `Some` for a factor in `[0, 1]`.
    #[inline]
    pub fn new(f: I32F32) -> Option<Self> {
        u64::try_from(f.0)
            .ok()
            .filter(|&bits| bits <= ONE_BITS as u64)
            .map(Self)
    }

    /// [`UnitFactor::times`] of a non-negative operand, given as its bits (below `2^63`): the
    /// product is at most the operand.
    #[inline(always)]
    pub fn times_bits(self, x: u64) -> u64 {
        u128::from(self.0)
            .wrapping_mul(u128::from(x))
            .wrapping_shr(32) as u64
    }

    /// [`UnitFactor::times`] of an operand known to be non-negative.
    #[inline(always)]
    pub fn times_nonneg(self, x: I32F32) -> I32F32 {
        I32F32(self.times_bits(x.0 as u64) as i64)
    }

    /// `f.saturating_mul(x)`.
    #[inline]
    pub fn times(self, x: I32F32) -> I32F32 {
        if x.0 >= 0 {
            let prod = u128::from(self.0).wrapping_mul(u128::from(x.0 as u64));
            // At most x: fits.
            return I32F32(prod.wrapping_shr(32) as i64);
        }
        I32F32(self.0 as i64).saturating_mul(x)
    }
}

/// `f * u16_proportion(b)` for one factor `f` in `[0, 1]` and any stored `u16` `b`:
/// bit-identical to `f.saturating_mul(I32F32::from_u16_proportion(b))`, in 64-bit arithmetic.
///
/// Since `2^32 = 65537 * 65535 + 1`, the proportion `(b << 32) / 65535` is `b * 65537` for
/// `b < 65535` and `2^32` (1) for `b = 65535`; the product is then `(f * 65537 * b) >> 32`
/// (below `2^64`: `f <= 2^32`, `b <= 65534`), or `f`.
#[derive(Clone, Copy, Debug)]
pub struct ProportionScale {
    f: u64,
    /// `f * 65537`.
    m: u64,
}

impl ProportionScale {
    /// Prepares multiplications by `f`.
    #[inline]
    pub fn new(f: UnitFactor) -> Self {
        // f <= 2^32: the product is below 2^49.
        Self {
            f: f.0,
            m: f.0.wrapping_mul(65537),
        }
    }

    /// `f * u16_proportion(b)`.
    #[inline]
    pub fn times(&self, b: u16) -> I32F32 {
        let q = self.m.wrapping_mul(u64::from(b)).wrapping_shr(32);
        let bits = if b == u16::MAX { self.f } else { q };
        // At most 2^32.
        I32F32(bits as i64)
    }
}

/// An [`I32F32`] divisor prepared for many divisions: [`Divisor::safe_div`] is bit-identical to
/// [`I32F32::safe_div`] by the same divisor.
///
/// For a positive divisor `d = odd * 2^tz` and a non-negative dividend `x`, the quotient
/// `(x << 32) / d` equals `(x << (32 - tz)) / odd` (`tz` at most 32; for a power of two one
/// factor 2 is kept, so that the odd part is at least 2). When `x << (32 - tz)` fits in 64 bits
/// that is one branch-free multiply-high division ([`U64Divider`]'s "add" scheme, which serves
/// every divisor of at least 2), and the quotient (below `2^63`) cannot overflow. Anything else
/// falls back to the plain division.
#[derive(Clone, Copy, Debug)]
pub struct Divisor {
    raw: I32F32,
    /// Dividends (bits, read as unsigned) below this take the fast path; 0 when none does.
    limit: u64,
    pre_shift: u32,
    magic: u64,
    shift: u32,
}

impl Divisor {
    /// Prepares division by `d` (any value; 0 gives 0 like `safe_div`).
    #[inline]
    pub fn new(d: I32F32) -> Self {
        let slow = Self {
            raw: d,
            limit: 0,
            pre_shift: 0,
            magic: 0,
            shift: 0,
        };
        let Some(bits) = u64::try_from(d.0).ok().filter(|&b| b != 0) else {
            return slow;
        };
        let tz = bits.trailing_zeros().min(32);
        let (odd, pre_shift) = match bits.wrapping_shr(tz) {
            1 => (2, 33u32.wrapping_sub(tz)),
            odd => (odd, 32u32.wrapping_sub(tz)),
        };
        let Some((magic, shift)) = add_scheme(odd) else {
            return slow;
        };
        Self {
            raw: d,
            // pre_shift is 0..=33: x < 2^(64 - pre_shift) <=> x << pre_shift < 2^64, and every
            // non-negative x (below 2^63) for pre_shift 0.
            limit: if pre_shift == 0 {
                1u64 << 63
            } else {
                1u64.wrapping_shl(64u32.wrapping_sub(pre_shift))
            },
            pre_shift,
            magic,
            shift,
        }
    }

    /// `x.safe_div(divisor)`.
    #[inline]
    pub fn safe_div(&self, x: I32F32) -> I32F32 {
        // Negative dividends read as unsigned are at least 2^63 > limit.
        let ux = x.0 as u64;
        if ux < self.limit {
            let n = ux.wrapping_shl(self.pre_shift);
            let q = u128::from(n)
                .wrapping_mul(u128::from(self.magic))
                .wrapping_shr(64) as u64;
            let q = n
                .wrapping_sub(q)
                .wrapping_shr(1)
                .wrapping_add(q)
                .wrapping_shr(self.shift);
            // n < 2^64 and a divisor of at least 2: q < 2^63.
            return I32F32(q as i64);
        }
        slow_safe_div(x, self.raw)
    }
}

/// [`I32F32::safe_div`], kept out of line (the rare path of [`Divisor::safe_div`]).
#[cold]
#[inline(never)]
fn slow_safe_div(x: I32F32, d: I32F32) -> I32F32 {
    x.safe_div(d)
}

/// libdivide's branch-free unsigned scheme for `d >= 2`: `(magic, shift)` such that, with
/// `q = mulhi(n, magic)`, `n / d == (((n - q) >> 1) + q) >> shift` for every 64-bit `n`.
fn add_scheme(d: u64) -> Option<(u64, u32)> {
    if d < 2 {
        return None;
    }
    let floor_log2 = 63u32.wrapping_sub(d.leading_zeros());
    if d.is_power_of_two() {
        // q = 0: (n >> 1) >> (log2 d - 1).
        return Some((0, floor_log2.wrapping_sub(1)));
    }
    // proposed = floor(2^(64 + floor_log2) / d) < 2^64, rem = the remainder.
    let num = 1u128.wrapping_shl(64u32.wrapping_add(floor_log2));
    let dd = u128::from(d);
    let quot = num.checked_div(dd)?;
    let proposed = u64::try_from(quot).ok()?;
    let rem = u64::try_from(num.wrapping_sub(quot.wrapping_mul(dd))).ok()?;
    let mut magic = proposed.wrapping_add(proposed);
    let twice_rem = rem.wrapping_add(rem);
    if twice_rem >= d || twice_rem < rem {
        magic = magic.wrapping_add(1);
    }
    Some((magic.wrapping_add(1), floor_log2))
}

/// Exact unsigned 64-bit division by a run-time constant via multiply-high (libdivide's
/// unsigned scheme, with the "add" fix-up, powers of two and 1 selected without branches).
#[derive(Clone, Copy, Debug)]
pub struct U64Divider {
    magic: u64,
    shift: u32,
    /// All ones when the 65-bit-magic fix-up applies (also used for powers of two).
    add_mask: u64,
    /// All ones for a divisor of 1.
    one_mask: u64,
}

impl U64Divider {
    /// Division by 1.
    pub const IDENTITY: Self = Self {
        magic: 0,
        shift: 0,
        add_mask: 0,
        one_mask: u64::MAX,
    };

    /// Prepares division by `d` (`None` for 0).
    pub fn new(d: u64) -> Option<Self> {
        if d == 0 {
            return None;
        }
        if d == 1 {
            return Some(Self::IDENTITY);
        }
        let floor_log2 = 63u32.wrapping_sub(d.leading_zeros());
        if d.is_power_of_two() {
            // ((n - 0) >> 1 + 0) >> (s - 1) == n >> s.
            return Some(Self {
                magic: 0,
                shift: floor_log2.wrapping_sub(1),
                add_mask: u64::MAX,
                one_mask: 0,
            });
        }
        // proposed = floor(2^(64 + floor_log2) / d), rem = remainder (d is not a power of two,
        // so floor_log2 < 63 and the quotient fits in 64 bits).
        let num = 1u128.wrapping_shl(64u32.wrapping_add(floor_log2));
        let dd = u128::from(d);
        let quot = num.checked_div(dd)?;
        let proposed = u64::try_from(quot).ok()?;
        let rem = u64::try_from(num.wrapping_sub(quot.wrapping_mul(dd))).ok()?;
        let e = d.wrapping_sub(rem);
        if e < 1u64.wrapping_shl(floor_log2) {
            Some(Self {
                magic: proposed.wrapping_add(1),
                shift: floor_log2,
                add_mask: 0,
                one_mask: 0,
            })
        } else {
            let mut magic = proposed.wrapping_add(proposed);
            let twice_rem = rem.wrapping_add(rem);
            if twice_rem >= d || twice_rem < rem {
                magic = magic.wrapping_add(1);
            }
            Some(Self {
                magic: magic.wrapping_add(1),
                shift: floor_log2,
                add_mask: u64::MAX,
                one_mask: 0,
            })
        }
    }

    /// `n / d`, exactly.
    #[inline]
    pub fn div(&self, n: u64) -> u64 {
        let q = u128::from(self.magic)
            .wrapping_mul(u128::from(n))
            .wrapping_shr(64);
        let q = u64::try_from(q).unwrap_or(u64::MAX); // < 2^64 by construction
        let with_add = n
            .wrapping_sub(q)
            .wrapping_shr(1)
            .wrapping_add(q)
            .wrapping_shr(self.shift);
        let plain = q.wrapping_shr(self.shift);
        let r = (with_add & self.add_mask) | (plain & !self.add_mask);
        (n & self.one_mask) | (r & !self.one_mask)
    }
}

/// Exact `floor(x / d)` for numerators `x < 2^48` and divisors `1 <= d < 2^32`, by the high
/// half of one 64 x 64-bit multiply and a shift (no fix-up step).
///
/// For `d >= 2`, with `l = ceil(log2 d)` and `m = ceil(2^(63 + l) / d)` (below `2^64`, or
/// `2^63` for a power of two): the error `e = m * d - 2^(63 + l)` is below `d <= 2^l <=
/// 2^(63 + l - 48)`, which is the condition of Granlund and Montgomery's theorem (1994,
/// "Division by invariant integers using multiplication", 4.2) for
/// `floor(x * m / 2^(63 + l)) == floor(x / d)` on every `x < 2^48`; the quotient is the high
/// 64 bits of `x * m` shifted right by `l - 1`. `d = 1` is the identity.
#[derive(Clone, Copy, Debug)]
pub struct NarrowDivider {
    magic: u64,
    shift: u32,
    /// All ones for `d = 1`.
    one_mask: u64,
}

impl NarrowDivider {
    /// Gives 0 for every numerator (not a division; for entries known to be 0 or dropped).
    pub const ZERO: Self = Self {
        magic: 0,
        shift: 0,
        one_mask: 0,
    };

    /// Prepares division by `d` (`None` unless `1 <= d < 2^32`).
    pub fn new(d: u64) -> Option<Self> {
        if d == 0 || d >= 1 << 32 {
            return None;
        }
        if d == 1 {
            return Some(Self {
                magic: 0,
                shift: 0,
                one_mask: u64::MAX,
            });
        }
        // ceil(log2 d) >= 1.
        let l = 64u32.wrapping_sub(d.wrapping_sub(1).leading_zeros());
        let magic = 1u128
            .wrapping_shl(63u32.wrapping_add(l))
            .wrapping_add(u128::from(d).wrapping_sub(1))
            .checked_div(u128::from(d))?;
        Some(Self {
            magic: u64::try_from(magic).ok()?,
            shift: l.wrapping_sub(1),
            one_mask: 0,
        })
    }

    /// `x / d` for `x < 2^48` (larger numerators give unspecified, but non-panicking, results).
    #[inline]
    pub fn div(&self, x: u64) -> u64 {
        let high = u128::from(x)
            .wrapping_mul(u128::from(self.magic))
            .wrapping_shr(64);
        // The high half of a 64 x 64-bit product fits in 64 bits.
        let q = (high as u64).wrapping_shr(self.shift);
        (x & self.one_mask) | (q & !self.one_mask)
    }
}

/// Signed fixed-point number with 64 integer and 64 fractional bits (`substrate_fixed::types::I64F64`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct I64F64(i128);

impl I64F64 {
    /// 0.
    pub const ZERO: Self = Self(0);
    /// Largest representable value.
    pub const MAX: Self = Self(i128::MAX);
    /// Smallest representable value.
    pub const MIN: Self = Self(i128::MIN);

    /// Builds a value from its raw bits (value = `bits / 2^64`).
    #[inline]
    pub const fn from_bits(bits: i128) -> Self {
        Self(bits)
    }

    /// The raw bits.
    #[inline]
    pub const fn to_bits(self) -> i128 {
        self.0
    }

    /// `I64F64::saturating_from_num(u64)`: exact up to `i64::MAX`, else [`I64F64::MAX`].
    #[inline]
    pub fn saturating_from_u64(v: u64) -> Self {
        match i64::try_from(v) {
            Ok(small) => Self(i128::from(small).wrapping_shl(64)),
            Err(_) => Self::MAX,
        }
    }

    /// `saturating_add`.
    #[inline]
    pub const fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }

    /// `checked_div`: `(self << 64) / rhs` truncated toward zero (a 192-bit by 128-bit division);
    /// `None` for a zero divisor or when the quotient does not fit.
    pub fn checked_div(self, rhs: Self) -> Option<Self> {
        if rhs.0 == 0 {
            return None;
        }
        let neg = (self.0 < 0) != (rhs.0 < 0);
        let q = wide_div_shl64(self.0.unsigned_abs(), rhs.0.unsigned_abs())?;
        if neg {
            if q == 1u128 << 127 {
                Some(Self(i128::MIN))
            } else {
                i128::try_from(q).ok().map(|v| Self(v.wrapping_neg()))
            }
        } else {
            i128::try_from(q).ok().map(Self)
        }
    }

    /// `safe_div`: `checked_div` or 0.
    #[inline]
    pub fn safe_div(self, rhs: Self) -> Self {
        self.checked_div(rhs).unwrap_or(Self::ZERO)
    }

    /// `saturating_div` (a zero divisor saturates instead of panicking, see [`I32F32::saturating_div`]).
    pub fn saturating_div(self, rhs: Self) -> Self {
        match self.checked_div(rhs) {
            Some(v) => v,
            None => {
                if (self.0 < 0) != (rhs.0 < 0) {
                    Self::MIN
                } else {
                    Self::MAX
                }
            }
        }
    }

    /// `I32F32::saturating_from_num(self)`: drop 32 fraction bits (toward minus infinity), saturate.
    #[inline]
    pub fn to_i32f32_saturating(self) -> I32F32 {
        let shifted = self.0.wrapping_shr(32);
        match i64::try_from(shifted) {
            Ok(v) => I32F32(v),
            Err(_) => {
                if shifted < 0 {
                    I32F32::MIN
                } else {
                    I32F32::MAX
                }
            }
        }
    }

    /// `saturating_to_num::<u64>()`: drop the fraction, negative values become 0.
    #[inline]
    pub fn to_u64_saturating(self) -> u64 {
        if self.0 < 0 {
            return 0;
        }
        u64::try_from(self.0.wrapping_shr(64)).unwrap_or(u64::MAX)
    }
}

/// `floor(a * 2^64 / b)` for unsigned 128-bit `a`, `b` (`b != 0`), `None` if it needs more than
/// 128 bits. Long division in chunks as wide as `b`'s leading zeros allow.
fn wide_div_shl64(a: u128, b: u128) -> Option<u128> {
    // Cancel common powers of two: a * 2^64 / (b' * 2^tz) == a * 2^(64 - tz) / b'. When the
    // shifted dividend fits in 128 bits this is a single division (always the case for
    // integer-valued operands such as raw stakes).
    let tz = b.trailing_zeros().min(64);
    let shift = 64u32.wrapping_sub(tz);
    if b != 0 && a.leading_zeros() >= shift {
        return a.wrapping_shl(shift).checked_div(b.wrapping_shr(tz));
    }
    let mut q = a.checked_div(b)?;
    let mut r = a.checked_rem(b)?;
    let lz = b.leading_zeros();
    let mut remaining: u32 = 64;
    if lz == 0 {
        // b >= 2^127: one bit at a time with an explicit carry.
        while remaining > 0 {
            if q.leading_zeros() == 0 {
                return None;
            }
            let carry = r.leading_zeros() == 0;
            let r2 = r.wrapping_shl(1);
            q = q.wrapping_shl(1);
            if carry || r2 >= b {
                r = r2.wrapping_sub(b);
                q |= 1;
            } else {
                r = r2;
            }
            remaining = remaining.wrapping_sub(1);
        }
        return Some(q);
    }
    while remaining > 0 {
        let step = remaining.min(lz);
        if q.leading_zeros() < step {
            return None;
        }
        // r < b < 2^(128 - lz), so r << step < 2^128.
        let r2 = r.wrapping_shl(step);
        let digit = r2.checked_div(b)?;
        r = r2.checked_rem(b)?;
        q = q.wrapping_shl(step) | digit;
        remaining = remaining.wrapping_sub(step);
    }
    Some(q)
}

/// `I96F32::saturating_from_num(share).saturating_mul(I96F32::saturating_from_num(rao))
/// .saturating_to_num::<u64>()`.
///
/// The I96F32 product of `share` (32 fraction bits) and the integer `rao` is exactly
/// `share_bits * rao` in I96F32 bits (it always fits), so the result is
/// `floor(share_bits * rao / 2^32)`, saturated to `[0, u64::MAX]`.
#[inline]
pub fn share_of_rao(share: I32F32, rao: u64) -> u64 {
    let Ok(bits) = u64::try_from(share.0) else {
        return 0; // negative share: the floored product is negative, saturates to 0
    };
    let prod = u128::from(bits).wrapping_mul(u128::from(rao)); // < 2^127
    u64::try_from(prod.wrapping_shr(32)).unwrap_or(u64::MAX)
}

/// Reciprocals used by the exponential series: division of a non-negative `i64` term by the
/// small integer `i` (2..=31), computed as a multiply-high (identical to truncating division).
const SERIES_DIVIDERS: [U64Divider; 30] = series_dividers();

#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "compile-time table: an out-of-bounds index or overflow would be a compile error"
)]
const fn series_dividers() -> [U64Divider; 30] {
    let mut out = [U64Divider::IDENTITY; 30];
    let mut k = 0;
    while k < 30 {
        out[k] = const_divider(k as u64 + 2);
        k += 1;
    }
    out
}

/// `const` twin of [`U64Divider::new`] for the compile-time table (divisors >= 2).
#[allow(
    clippy::arithmetic_side_effects,
    reason = "only evaluated at compile time for d in 2..=31: an overflow would be a compile error"
)]
const fn const_divider(d: u64) -> U64Divider {
    let floor_log2 = 63 - d.leading_zeros();
    if d.is_power_of_two() {
        return U64Divider {
            magic: 0,
            shift: floor_log2 - 1,
            add_mask: u64::MAX,
            one_mask: 0,
        };
    }
    let num = 1u128 << (64 + floor_log2);
    let proposed = (num / d as u128) as u64;
    let rem = (num % d as u128) as u64;
    let e = d - rem;
    if e < (1u64 << floor_log2) {
        U64Divider {
            magic: proposed + 1,
            shift: floor_log2,
            add_mask: 0,
            one_mask: 0,
        }
    } else {
        let mut magic = proposed.wrapping_add(proposed);
        let twice_rem = rem.wrapping_add(rem);
        if twice_rem >= d || twice_rem < rem {
            magic = magic.wrapping_add(1);
        }
        U64Divider {
            magic: magic.wrapping_add(1),
            shift: floor_log2,
            add_mask: u64::MAX,
            one_mask: 0,
        }
    }
}

/// `substrate_fixed::transcendental::exp::<I32F32, I32F32>`, bit for bit.
///
/// * `exp(0) = 1`, `exp(1) = ` [`I32F32::E_I9F23`] (a truncated constant, not the series);
/// * for a negative input it evaluates `exp(-x)` and returns `1 / exp(-x)`;
/// * otherwise `1 + x + sum_{i=2}^{31} term_i` with `term_i = (term_{i-1} * x) / i`, every
///   product rounded toward minus infinity and every quotient truncated.
///
/// Returns `None` where the library returns `Err` (an overflow).
pub fn exp_series(x: I32F32) -> Option<I32F32> {
    if x == I32F32::ZERO {
        return Some(I32F32::ONE);
    }
    if x == I32F32::ONE {
        return Some(I32F32::E_I9F23);
    }
    let neg = x.0 < 0;
    let x = if neg { x.checked_neg()? } else { x };
    let mut result = x.checked_add(I32F32::ONE)?;
    let mut term = x;
    for divider in SERIES_DIVIDERS.iter() {
        term = term.checked_mul(x)?;
        // term >= 0 (x > 0), so truncating division equals the unsigned quotient.
        let t = u64::try_from(term.0).ok()?;
        term = I32F32(i64::try_from(divider.div(t)).ok()?);
        if term.0 == 0 {
            // Every later term is 0 * x / i = 0: the sum is final.
            break;
        }
        result = result.checked_add(term)?;
    }
    if neg {
        result = I32F32::ONE.checked_div(result)?;
    }
    Some(result)
}

/// subtensor's `exp_safe`: clamp the input to `[-20, 20]`, evaluate [`exp_series`]; on an
/// overflow error return 0 for non-positive inputs and [`I32F32::MAX`] otherwise.
pub fn exp_safe(input: I32F32) -> I32F32 {
    let min_input = I32F32::from_i32(-20);
    let max_input = I32F32::from_i32(20);
    let safe = if input < min_input {
        min_input
    } else if max_input < input {
        max_input
    } else {
        input
    };
    match exp_series(safe) {
        Some(v) => v,
        None => {
            if safe <= I32F32::ZERO {
                I32F32::ZERO
            } else {
                I32F32::MAX
            }
        }
    }
}

/// Exact `f64` image of raw fixed-point bits with `frac_bits` fraction bits (round-to-nearest-even
/// when more than 53 significant bits), built from integer operations only.
///
/// This is only used to render the informational `f64` companion arrays of the vector encoding;
/// no consensus value is ever computed from it.
pub fn bits_to_f64(bits: i64, frac_bits: u32) -> f64 {
    if bits == 0 {
        return f64::from_bits(0);
    }
    let sign: u64 = if bits < 0 { 1u64 << 63 } else { 0 };
    let mag = bits.unsigned_abs();
    let msb = 63u32.wrapping_sub(mag.leading_zeros());
    let mut exponent = i64::from(msb).wrapping_sub(i64::from(frac_bits));
    let mut mant: u64 = if msb <= 52 {
        mag.wrapping_shl(52u32.wrapping_sub(msb))
    } else {
        let shift = msb.wrapping_sub(52);
        let kept = mag.wrapping_shr(shift);
        let rem = mag & 1u64.wrapping_shl(shift).wrapping_sub(1);
        let half = 1u64.wrapping_shl(shift.wrapping_sub(1));
        if rem > half || (rem == half && kept & 1 == 1) {
            kept.wrapping_add(1)
        } else {
            kept
        }
    };
    if mant == 1u64 << 53 {
        mant = mant.wrapping_shr(1);
        exponent = exponent.wrapping_add(1);
    }
    // |value| is between 2^-64 and 2^63: always a normal double.
    let biased = u64::try_from(exponent.wrapping_add(1023)).unwrap_or(0);
    f64::from_bits(sign | biased.wrapping_shl(52) | (mant & ((1u64 << 52) - 1)))
}

#[cfg(test)]
#[allow(
    clippy::float_arithmetic,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    reason = "test code: compares against float and wide-integer references"
)]
mod tests {
    use super::*;

    /// SplitMix64, for reproducible random test inputs.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// Random value with a random magnitude (so that all size classes are exercised).
        fn wild(&mut self) -> u64 {
            let bits = self.next() % 65;
            if bits == 64 {
                self.next()
            } else {
                self.next() & ((1u64 << bits) - 1)
            }
        }
    }

    fn f(x: f64) -> I32F32 {
        I32F32::from_bits((x * 4294967296.0).round() as i64)
    }

    #[test]
    fn constants() {
        assert_eq!(I32F32::ONE.to_bits(), 1 << 32);
        assert_eq!(I32F32::HALF, f(0.5));
        assert_eq!(I32F32::U16_MAX, I32F32::from_u16(65535));
        assert_eq!(I32F32::from_i16(-100).to_bits(), -100 << 32);
        assert_eq!(I32F32::saturating_from_u64(u64::MAX), I32F32::MAX);
        assert_eq!(I32F32::saturating_from_u64(7), I32F32::from_i32(7));
    }

    #[test]
    fn mul_rounds_toward_minus_infinity() {
        // 1 ulp * 0.5 = 0.5 ulp -> 0; -1 ulp * 0.5 -> -1 ulp.
        let ulp = I32F32::from_bits(1);
        assert_eq!(ulp.saturating_mul(I32F32::HALF), I32F32::ZERO);
        assert_eq!(
            I32F32::from_bits(-1).saturating_mul(I32F32::HALF),
            I32F32::from_bits(-1)
        );
        assert_eq!(f(1.5).saturating_mul(f(2.0)), f(3.0));
        // Overflow saturates by operand signs.
        assert_eq!(I32F32::MAX.saturating_mul(f(2.0)), I32F32::MAX);
        assert_eq!(I32F32::MAX.saturating_mul(f(-2.0)), I32F32::MIN);
        assert_eq!(I32F32::MAX.checked_mul(f(2.0)), None);
        let mut rng = Rng(1);
        for _ in 0..100_000 {
            let a = rng.next() as i64 >> (rng.next() % 64);
            let b = rng.next() as i64 >> (rng.next() % 64);
            let exact = (a as i128) * (b as i128);
            let want = exact >> 32;
            let got = I32F32::from_bits(a).checked_mul(I32F32::from_bits(b));
            let sat = I32F32::from_bits(a).saturating_mul(I32F32::from_bits(b));
            if want >= i64::MIN as i128 && want <= i64::MAX as i128 {
                assert_eq!(got, Some(I32F32::from_bits(want as i64)));
                assert_eq!(sat, I32F32::from_bits(want as i64));
            } else {
                assert_eq!(got, None);
                assert_eq!(sat, if want < 0 { I32F32::MIN } else { I32F32::MAX });
            }
        }
    }

    #[test]
    fn unit_factor_matches_saturating_mul() {
        assert!(UnitFactor::new(I32F32::from_bits(-1)).is_none());
        assert!(UnitFactor::new(I32F32::from_bits((1 << 32) + 1)).is_none());
        let mut rng = Rng(9);
        for _ in 0..100_000 {
            let f = I32F32::from_bits((rng.next() % ((1 << 32) + 1)) as i64);
            let x = I32F32::from_bits((rng.wild() as i64).wrapping_mul(if rng.next() & 1 == 1 {
                -1
            } else {
                1
            }));
            for f in [f, I32F32::ZERO, I32F32::ONE] {
                assert_eq!(
                    UnitFactor::new(f).unwrap().times(x),
                    f.saturating_mul(x),
                    "{f:?} {x:?}"
                );
            }
        }
    }

    #[test]
    fn proportion_scale_matches_product() {
        let mut rng = Rng(10);
        let mut factors: Vec<i64> = vec![
            0,
            1,
            2,
            1 << 31,
            (1 << 32) - 1,
            1 << 32,
            429496730,
            3865470566,
        ];
        for _ in 0..200 {
            factors.push((rng.next() % ((1 << 32) + 1)) as i64);
        }
        for f in factors {
            let f = I32F32::from_bits(f);
            let scale = ProportionScale::new(UnitFactor::new(f).unwrap());
            for b in 0..=u16::MAX {
                assert_eq!(
                    scale.times(b),
                    f.saturating_mul(I32F32::from_u16_proportion(b)),
                    "{f:?} {b}"
                );
            }
        }
    }

    #[test]
    fn div_truncates_toward_zero() {
        assert_eq!(f(1.0).safe_div(f(3.0)).to_bits(), 1431655765);
        assert_eq!(f(-1.0).safe_div(f(3.0)).to_bits(), -1431655765);
        assert_eq!(f(1.0).safe_div(I32F32::ZERO), I32F32::ZERO);
        assert_eq!(Divisor::new(I32F32::ZERO).safe_div(f(1.0)), I32F32::ZERO);
        assert_eq!(Divisor::new(I32F32::ONE).safe_div(f(-3.25)), f(-3.25));
        assert_eq!(Divisor::new(I32F32::ONE).safe_div(I32F32::MAX), I32F32::MAX);
        for d in [
            1i64,
            2,
            3,
            1 << 31,
            1 << 32,
            (1 << 32) + 1,
            1 << 40,
            3 << 40,
            i64::MAX,
        ] {
            for x in [
                0i64,
                1,
                7,
                1 << 31,
                (1 << 32) - 1,
                1 << 32,
                1 << 40,
                i64::MAX,
                -1,
                -(1 << 33),
            ] {
                let (x, d) = (I32F32::from_bits(x), I32F32::from_bits(d));
                assert_eq!(Divisor::new(d).safe_div(x), x.safe_div(d), "{x:?} / {d:?}");
            }
        }
        // Powers of two (including 1 ulp and 1.0) and their neighbours, all dividend sizes.
        let mut rng = Rng(8);
        for e in 0..63 {
            for d in [
                1i64 << e,
                (1i64 << e) + 1,
                (1i64 << e) - 1,
                3i64 << e.min(61),
                (5i64 << 32).wrapping_shl(e.min(28)),
                (65535i64 * 37) << 32,
            ] {
                if d <= 0 {
                    continue;
                }
                let div = Divisor::new(I32F32::from_bits(d));
                for _ in 0..200 {
                    let x = (rng.next() >> (rng.next() % 64)) as i64;
                    for x in [x, x.wrapping_neg(), x >> 31, (x >> 31).wrapping_neg()] {
                        let x = I32F32::from_bits(x);
                        assert_eq!(
                            div.safe_div(x),
                            x.safe_div(I32F32::from_bits(d)),
                            "{x:?} / {d}"
                        );
                    }
                }
            }
        }
        // Integer-valued divisors (column sums of integer bonds) take the fast path for every
        // non-negative dividend.
        assert_eq!(Divisor::new(f(5.0)).limit, 1 << 63);
        assert_eq!(Divisor::new(f(6.0)).limit, 1 << 63);
        assert_eq!(Divisor::new(f(0.5)).limit, 1 << 62);
        // Overflow: safe_div gives 0, saturating_div saturates.
        assert_eq!(I32F32::MAX.safe_div(f(0.5)), I32F32::ZERO);
        assert_eq!(I32F32::MAX.saturating_div(f(0.5)), I32F32::MAX);
        assert_eq!(I32F32::MAX.saturating_div(f(-0.5)), I32F32::MIN);
        assert_eq!(f(-100.0).saturating_div(f(-100.0)), f(1.0));
        let mut rng = Rng(2);
        for _ in 0..200_000 {
            let a = rng.wild() as i64;
            let b = rng.wild() as i64;
            let a = if rng.next() & 1 == 1 {
                a.wrapping_neg()
            } else {
                a
            };
            let b = if rng.next() & 1 == 1 {
                b.wrapping_neg()
            } else {
                b
            };
            let got = I32F32::from_bits(a).checked_div(I32F32::from_bits(b));
            if b == 0 {
                assert_eq!(got, None);
                continue;
            }
            let want = ((a as i128) << 32) / (b as i128);
            if want >= i64::MIN as i128 && want <= i64::MAX as i128 {
                assert_eq!(got, Some(I32F32::from_bits(want as i64)), "{a} / {b}");
            } else {
                assert_eq!(got, None, "{a} / {b}");
            }
            let d = Divisor::new(I32F32::from_bits(b));
            assert_eq!(
                d.safe_div(I32F32::from_bits(a)),
                I32F32::from_bits(a).safe_div(I32F32::from_bits(b))
            );
        }
    }

    #[test]
    fn u64_divider_is_exact() {
        let mut rng = Rng(3);
        let mut divisors: Vec<u64> = (1..2000).collect();
        divisors.extend([
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
            (1 << 63) + 1,
            65535,
            1_000_000,
            3 << 40,
        ]);
        for _ in 0..2000 {
            divisors.push(rng.wild().max(1));
        }
        for &d in &divisors {
            let div = U64Divider::new(d).unwrap();
            for n in [
                0,
                1,
                d - 1,
                d,
                d.wrapping_add(1),
                u64::MAX,
                u64::MAX - 1,
                u64::MAX / 2,
            ] {
                assert_eq!(div.div(n), n / d, "{n} / {d}");
            }
            for _ in 0..50 {
                let n = rng.wild();
                assert_eq!(div.div(n), n / d, "{n} / {d}");
            }
        }
        for (k, div) in SERIES_DIVIDERS.iter().enumerate() {
            let d = k as u64 + 2;
            let rt = U64Divider::new(d).unwrap();
            assert_eq!(
                (div.magic, div.shift, div.add_mask, div.one_mask),
                (rt.magic, rt.shift, rt.add_mask, rt.one_mask)
            );
        }
    }

    #[test]
    fn narrow_divider_is_exact() {
        let mut rng = Rng(7);
        assert!(NarrowDivider::new(0).is_none());
        assert!(NarrowDivider::new(1 << 32).is_none());
        let mut divisors: Vec<u64> = (1..3000).collect();
        divisors.extend([
            (1 << 32) - 1,
            (1 << 31) + 1,
            1 << 31,
            65535,
            65535 * 4096,
            3 << 29,
        ]);
        for _ in 0..3000 {
            divisors.push((rng.next() >> (32 + rng.next() % 32)).max(1));
        }
        let max = (1u64 << 48) - 1;
        for &d in &divisors {
            let div = NarrowDivider::new(d).unwrap();
            for x in [
                0,
                1,
                d - 1,
                d,
                d + 1,
                max,
                max - 1,
                max - d,
                65535 << 32,
                (d - 1) << 16,
            ] {
                let x = x.min(max);
                assert_eq!(div.div(x), x / d, "{x} / {d}");
            }
            for _ in 0..50 {
                let x = rng.next() >> (16 + rng.next() % 48);
                assert_eq!(div.div(x), x / d, "{x} / {d}");
                // Multiples of d and their neighbours (where a wrong magic shows first).
                let q = x / d;
                for y in [q * d, (q * d).saturating_sub(1), q * d + d - 1] {
                    if y <= max {
                        assert_eq!(div.div(y), y / d, "{y} / {d}");
                    }
                }
            }
        }
    }

    #[test]
    fn u16_proportion() {
        for v in [0u16, 1, 2, 9000, 32767, 65534, 65535] {
            let want = I32F32::from_u16(v).safe_div(I32F32::U16_MAX);
            assert_eq!(I32F32::from_u16_proportion(v), want);
        }
        assert_eq!(I32F32::from_u16_proportion(9000).to_bits(), 589833000);
        assert_eq!(I32F32::from_u16_proportion(65535), I32F32::ONE);
    }

    #[test]
    fn u16_storage_conversion() {
        assert_eq!(I32F32::from_bits(2576980377).proportion_to_u16(), 39320);
        assert_eq!(I32F32::from_bits(4294967295).proportion_to_u16(), 65534);
        assert_eq!(I32F32::ONE.proportion_to_u16(), 65535);
        assert_eq!(f(2.0).proportion_to_u16(), 65535);
        assert_eq!(f(-0.1).proportion_to_u16(), 0);
        assert_eq!(I32F32::from_bits(-1).to_u16_saturating(), 0);
    }

    #[test]
    fn i64f64_division_matches_wide_reference() {
        // Small operands: compare against direct u128 arithmetic.
        let mut rng = Rng(4);
        for _ in 0..100_000 {
            let a = rng.wild() as i128;
            let b = rng.wild() as i128;
            let b = if b == 0 { 1 } else { b };
            let got = I64F64::from_bits(a).checked_div(I64F64::from_bits(b));
            let want = ((a as u128) << 64) / (b as u128);
            assert_eq!(
                got,
                i128::try_from(want).ok().map(I64F64::from_bits),
                "{a} / {b}"
            );
            let got = I64F64::from_bits(-a).checked_div(I64F64::from_bits(b));
            assert_eq!(
                got,
                i128::try_from(want).ok().map(|w| I64F64::from_bits(-w))
            );
        }
        // Large operands: check q * b <= a * 2^64 < (q + 1) * b with 256-bit arithmetic done in
        // two halves (q and b below 2^127 here).
        for _ in 0..20_000 {
            let a = (((rng.next() as u128) << 64) | rng.next() as u128) >> (1 + rng.next() % 120);
            let b = (((rng.next() as u128) << 64) | rng.next() as u128) >> (1 + rng.next() % 100);
            if b == 0 {
                continue;
            }
            match wide_div_shl64(a, b) {
                Some(q) => {
                    assert!(mul_cmp(q, b, a) != core::cmp::Ordering::Greater);
                    assert!(mul_cmp(q + 1, b, a) == core::cmp::Ordering::Greater);
                }
                None => {
                    // quotient >= 2^128  <=>  a * 2^64 >= b * 2^128  <=>  floor(a / 2^64) >= b
                    assert!(a >> 64 >= b);
                }
            }
        }
        assert_eq!(wide_div_shl64(5, 1 << 127), Some(0));
        assert_eq!(
            wide_div_shl64((1 << 127) - 1, (1 << 127) + 1).unwrap() >> 63,
            1
        );
    }

    /// Compares q * b with a * 2^64 (q, b < 2^128) using 256-bit schoolbook arithmetic.
    fn mul_cmp(q: u128, b: u128, a: u128) -> core::cmp::Ordering {
        let (qh, ql) = (q >> 64, q & u64::MAX as u128);
        let (bh, bl) = (b >> 64, b & u64::MAX as u128);
        let ll = ql * bl;
        let mid = qh * bl + (ll >> 64);
        let mid2 = ql * bh + (mid & u64::MAX as u128);
        let lo = (ll & u64::MAX as u128) | ((mid2 & u64::MAX as u128) << 64);
        let hi = qh * bh + (mid >> 64) + (mid2 >> 64);
        // a * 2^64 as (hi, lo)
        let (ahi, alo) = (a >> 64, a << 64);
        (hi, lo).cmp(&(ahi, alo))
    }

    #[test]
    fn i64f64_conversions() {
        let x = I64F64::saturating_from_u64(600_000_000_000);
        let y = I64F64::saturating_from_u64(1_000_000_000_000);
        let s = x.safe_div(y).to_i32f32_saturating();
        assert_eq!(s.to_bits(), 2576980377);
        assert_eq!(I64F64::saturating_from_u64(u64::MAX), I64F64::MAX);
        assert_eq!(
            I64F64::saturating_from_u64(12345).to_u64_saturating(),
            12345
        );
        assert_eq!(I64F64::from_bits(-5).to_u64_saturating(), 0);
        assert_eq!(
            I64F64::from_bits(-1).to_i32f32_saturating(),
            I32F32::from_bits(-1)
        );
        assert_eq!(I64F64::MAX.to_i32f32_saturating(), I32F32::MAX);
        let bma = I64F64::saturating_from_u64(900_000)
            .saturating_div(I64F64::saturating_from_u64(1_000_000));
        assert_eq!(
            I32F32::ONE
                .saturating_sub(bma.to_i32f32_saturating())
                .to_bits(),
            429496730
        );
    }

    #[test]
    fn share_of_rao_matches_i96f32() {
        assert_eq!(
            share_of_rao(I32F32::from_bits(1476401280), 1_000_000_000),
            343751460
        );
        assert_eq!(share_of_rao(I32F32::ONE, u64::MAX), u64::MAX);
        assert_eq!(share_of_rao(f(2.0), u64::MAX), u64::MAX);
        assert_eq!(share_of_rao(f(-0.5), 10), 0);
        assert_eq!(share_of_rao(I32F32::ZERO, 10), 0);
    }

    /// Straight transcription of substrate-fixed's loop with generic checked division.
    fn exp_reference(x: I32F32) -> Option<I32F32> {
        if x == I32F32::ZERO {
            return Some(I32F32::ONE);
        }
        if x == I32F32::ONE {
            return Some(I32F32::E_I9F23);
        }
        let neg = x < I32F32::ZERO;
        let x = if neg { x.checked_neg()? } else { x };
        let mut result = x.checked_add(I32F32::ONE)?;
        let mut term = x;
        for i in 2..32 {
            term = term.checked_mul(x)?;
            term = term.checked_div(I32F32::from_i32(i))?;
            result = result.checked_add(term)?;
        }
        if neg {
            result = I32F32::ONE.checked_div(result)?;
        }
        Some(result)
    }

    #[test]
    fn exp_matches_library_loop() {
        let mut rng = Rng(5);
        for _ in 0..20_000 {
            let x = I32F32::from_bits((rng.next() % (40u64 << 32)) as i64 - (20i64 << 32));
            assert_eq!(exp_series(x), exp_reference(x), "{x:?}");
        }
        for v in [-20i32, -1, 0, 1, 2, 5, 20] {
            let x = I32F32::from_i32(v);
            assert_eq!(exp_series(x), exp_reference(x));
        }
        assert_eq!(exp_safe(I32F32::ONE), I32F32::E_I9F23);
        // exp(-1) uses the series for 1 (the constant is only returned for exactly +1).
        assert_ne!(
            exp_safe(I32F32::from_i32(-1)),
            I32F32::ONE.safe_div(I32F32::E_I9F23)
        );
        // Clamp at +-20; the library's truncated series gives about 4.812e8 at 20.
        let e20 = exp_safe(I32F32::from_i32(100));
        assert_eq!(e20, exp_safe(I32F32::from_i32(20)));
        assert!((4.81e8..4.82e8).contains(&(e20.to_bits() as f64 / 4294967296.0)));
        let small = exp_safe(I32F32::from_i32(-5)).to_bits() as f64 / 4294967296.0;
        assert!((small - (-5f64).exp()).abs() < 1e-6);
    }

    #[test]
    fn f64_rendering_is_exact() {
        let mut rng = Rng(6);
        for _ in 0..100_000 {
            let b = (rng.wild() as i64).wrapping_mul(if rng.next() & 1 == 1 { -1 } else { 1 });
            let want = (b as f64) / 4294967296.0;
            assert_eq!(bits_to_f64(b, 32).to_bits(), want.to_bits(), "{b}");
        }
        for b in [
            0,
            1,
            -1,
            i64::MAX,
            i64::MIN,
            1 << 53,
            (1 << 53) + 1,
            (1 << 54) + 3,
        ] {
            assert_eq!(bits_to_f64(b, 32), (b as f64) / 4294967296.0);
        }
    }
}
