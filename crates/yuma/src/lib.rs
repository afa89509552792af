//! # noesis-yuma: Yuma Consensus epoch
//!
//! A pure, deterministic, integer-only reimplementation of the epoch that Bittensor's Subtensor
//! runs for every subnet (`Pallet::epoch_mechanism` in `pallets/subtensor/src/epoch/run_epoch.rs`,
//! commit `14bc6f9f`), bit-exact with its `substrate-fixed` arithmetic.
//!
//! ## The protocol
//!
//! A subnet has `n` uids. Validators (uids holding a *validator permit*) submit weight rows
//! scoring the uids they evaluate (miners); all uids hold stake. Once per tempo the epoch turns
//! the stored state into rewards:
//!
//! 1. **Activity and stake.** A uid is active if it set weights within `activity_cutoff` blocks.
//!    Stake below `stake_threshold` (except the subnet owner's) is ignored; the rest is
//!    normalized (`S`). The top `max_allowed_validators` non-zero stakes get the next epoch's
//!    permits. Active stake `A` is `S` restricted to active, previously permitted uids.
//! 2. **Weights.** Rows of non-permitted uids, self-weights (except the owner's), weights set
//!    before the target uid registered and (with commit-reveal) weights committed before the
//!    target registered are removed; rows are normalized (`W`).
//! 3. **Consensus.** For every column, `C[j]` is the `kappa`-quantile of the scores `W[i][j]`
//!    weighted by the validators' active stake (a stake-weighted median for `kappa = 0.5`).
//!    Weights above consensus are clipped down to it (`Wc`); the row sums of `Wc` are the
//!    validators' *trust*.
//! 4. **Incentive.** Ranks `R[j] = sum_i A[i] * Wc[i][j]`, normalized, are the miners'
//!    incentive `I`.
//! 5. **Bonds and dividends.** Validators accumulate *bonds* to the miners they weight, an
//!    exponential moving average towards `Wb` (weights interpolated between `W` and `Wc` by
//!    `bonds_penalty`). Bonds to uids that registered since the previous epoch are reset.
//!    * *Yuma3* (`yuma3_enabled`): bonds are fractions in `[0, 1]`; the EMA rate is
//!      `1 - bonds_moving_average / 10^6`, or with *liquid alpha* a per-(validator, miner) rate
//!      from a sigmoid of how far the weight is from consensus (computed with the same
//!      truncated `exp` series as the chain). Dividends are
//!      `D[i] = A[i] * sum_j Bn[i][j] * I[j]` with column-normalized bonds `Bn`.
//!    * *Original Yuma*: bonds are column-normalized and move towards the column-normalized
//!      `A[i] * Wb[i][j]`; dividends `D[i] = sum_j B[i][j] * I[j]`; bonds are stored
//!      column-max-scaled.
//! 6. **Emission.** `rao_emission` is split in proportion to `I` (miners) and `D` (validators);
//!    if both are zero, validators receive it in proportion to active stake.
//!
//! ## Arithmetic
//!
//! All values are fixed-point ([`fixed::I32F32`], with [`fixed::I64F64`] for stake and an exact
//! `I96F32` product for the final scaling), reproducing substrate-fixed's rounding: products
//! round toward minus infinity, quotients truncate, the "safe" division yields 0 on a zero
//! divisor or overflow. There is no floating point in the computation (the only `f64` values
//! are the informational companions in the serialized output, built exactly from the bits).
//! Nothing iterates unordered collections, so the result is a pure function of the input.
//!
//! ## API
//!
//! * [`Inputs::new`] validates [`Hyperparams`] + [`EpochState`]; [`epoch`] computes
//!   [`Outputs`]. All three serialize in the `yuma-epoch-vector/1` encoding.
//! * [`epoch_with`] does the same with a caller-kept [`Workspace`] (scratch buffers reused
//!   across epochs; results are identical). [`epoch`] uses one kept per thread.
//! * [`run_vector_json`] runs a whole test-vector file (`single` or `sequence`).
//!
//! ## Performance
//!
//! Work is proportional to the number of stored weight and bond entries, not to `n * n` (the
//! reference's dense per-row accumulators are replaced by merges of sorted rows, its `n * n`
//! liquid-alpha matrix by evaluating only the cells the EMA reads, and its per-column median
//! over every validator by a quantile search over the column's non-zero scores, which provably
//! returns the same value). Rows not stored in ascending column order (possible on chain for
//! weights) are still handled exactly like the reference, through dense per-row fallbacks.
//!
//! For the chain's usual configuration (Yuma3, a fixed EMA rate, bonds penalty 0 or 1) the
//! epoch makes few passes over the weights: one reads, masks and normalizes them while
//! gathering each column's scores; one takes each column's quantile (value buckets, then the
//! reference's partition search on the few scores left); one clips the weights and builds the
//! bond EMA rows with their column sums; one turns those rows into stored bonds and
//! dividends. Divisions by a row or column total use exact precomputed reciprocals
//! ([`fixed::NarrowDivider`], [`fixed::Divisor`]), products by a factor in `[0, 1]` one
//! unsigned multiply ([`fixed::UnitFactor`]); sums of bounded non-negative values are exact in
//! 64 bits, where the reference's saturating additions never saturate. Scratch memory lives
//! in a [`Workspace`] ([`epoch`] keeps one per thread).
//! `cargo run --release -p noesis-yuma --example epoch_bench` times the large vectors.
//!
//! ## Input checks and deviations
//!
//! [`Inputs::new`] rejects per-uid arrays whose length is not `n` and sparse rows that list a
//! column twice (the chain never stores either). Everything else is accepted and treated as the
//! reference treats it: weight columns `>= n` are dropped, bond columns `>= n` are ignored, an
//! owner uid outside the subnet has no effect. Where the reference would panic (Yuma3 with a
//! fixed EMA rate and a `bonds_moving_average` above about `2.1e15`, where its
//! `I32F32::from_num` overflows) or wrap (plain sums, unreachable with real value ranges), this
//! crate saturates, as the reference's original-Yuma path does.

#![deny(
    clippy::float_arithmetic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

pub mod check;
mod epoch;
mod error;
pub mod fixed;
mod types;
mod vector;

pub use epoch::{Workspace, epoch, epoch_with};
pub use error::Error;
pub use types::{EpochState, Hyperparams, Inputs, Outputs, SparseRowU16};
pub use vector::{parse_inputs, run_vector_json};
