//! Subnets and their incentive market (Subtensor's semantics): registration, staking
//! through per-subnet pools, weights with commit-reveal, and the Yuma epoch every tempo.
