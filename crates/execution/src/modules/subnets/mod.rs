//! Subnets and their incentive market (Subtensor's semantics): registration, staking
//! through per-subnet pools, weights with commit-reveal, and the Yuma epoch every tempo.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::float_arithmetic,
    clippy::arithmetic_side_effects
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod pool;
pub mod state;
