//! Weights: direct setting (when commit-reveal is off) and commit-reveal (on by default).
//!
//! A caller acts as the hotkey [`hotkey_of`]`(caller)`. Weights are checked as Subtensor's
//! `do_set_weights` checks them (lengths, version key, rate limit, duplicate and
//! out-of-range uids, min allowed weights, max weight limit; a lone self-weight is always
//! allowed), then stored sorted by uid and max-upscaled to `u16` (`w * 65535 / max`,
//! rounded half up).
//!
//! **Commit-reveal.** The epoch index of block `b` is `(b + netuid + 1) / (tempo + 1)`; the
//! epoch of a subnet runs in the first block of each index. A commit made in index `e` may
//! be revealed only in index `e + reveal_period`; after that it has expired (a new commit
//! replaces it). One commit per uid is pending at a time. The commit hash is
//!
//! ```text
//! keccak256(abi.encode(address caller, uint16 netuid, uint16[] uids, uint16[] values,
//!                      uint16[] salt, uint64 versionKey))
//! ```
//!
//! (Solidity's `abi.encode` of the six values; see [`commit_hash`]).

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolValue;

use super::interface::events;
use super::logic::{emit, ensure_subnet};
use super::state::{self, Matrix, Neuron, Param, param, param_u16, param_u64, set_neuron};
use super::{hotkey_of, revert};
use crate::modules::{ModuleError, ModuleState};

/// The commit hash of a weight vector (see the module docs).
pub fn commit_hash(
    caller: Address,
    netuid: u16,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> B256 {
    keccak256(
        (
            caller,
            netuid,
            uids.to_vec(),
            values.to_vec(),
            salt.to_vec(),
            version_key,
        )
            .abi_encode_params(),
    )
}

/// The commit-reveal epoch index of `block` on `netuid`.
pub fn epoch_index(netuid: u16, tempo: u64, block: u64) -> u64 {
    block
        .saturating_add(u64::from(netuid))
        .saturating_add(1)
        .checked_div(tempo.saturating_add(1))
        .unwrap_or(0)
}

fn caller_uid<S: ModuleState>(s: &mut S, netuid: u16, caller: Address) -> Result<u16, ModuleError> {
    state::uid_of(s, netuid, hotkey_of(caller))?
        .ok_or_else(|| revert("caller's hotkey is not registered on this subnet"))
}

/// Sets weights directly; refused while commit-reveal is on.
pub fn set_weights<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    caller: Address,
    uids: &[u16],
    values: &[u16],
    version_key: u64,
) -> Result<(), ModuleError> {
    ensure_subnet(s, netuid)?;
    if !param(s, netuid, Param::CommitRevealEnabled)?.is_zero() {
        return Err(revert(
            "commit-reveal is enabled on this subnet: use commitWeights and revealWeights",
        ));
    }
    let uid = caller_uid(s, netuid, caller)?;
    let last = state::neuron_u64(s, netuid, uid, Neuron::LastUpdate)?;
    let reg = state::neuron_u64(s, netuid, uid, Neuron::RegistrationBlock)?;
    let limit = param_u64(s, netuid, Param::WeightsRateLimit)?;
    if last != reg && s.block_number().saturating_sub(last) < limit {
        return Err(revert("weights rate limit: setting weights too often"));
    }
    store_weights(s, netuid, uid, uids, values, version_key)?;
    emit(s, &events::WeightsSet { netuid, uid });
    Ok(())
}

/// Commits a weight hash for the caller's uid.
pub fn commit_weights<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    caller: Address,
    hash: B256,
) -> Result<(), ModuleError> {
    ensure_subnet(s, netuid)?;
    if param(s, netuid, Param::CommitRevealEnabled)?.is_zero() {
        return Err(revert(
            "commit-reveal is disabled on this subnet: use setWeights",
        ));
    }
    if hash.is_zero() {
        return Err(revert("commit hash is zero"));
    }
    let uid = caller_uid(s, netuid, caller)?;
    if pending_commit(s, netuid, uid)?.is_some() {
        return Err(revert("a weight commit is already pending"));
    }
    set_neuron(
        s,
        netuid,
        uid,
        Neuron::CommitHash,
        U256::from_be_bytes(hash.0),
    )?;
    set_neuron(
        s,
        netuid,
        uid,
        Neuron::CommitBlock,
        U256::from(s.block_number()),
    )?;
    emit(s, &events::WeightsCommitted { netuid, uid, hash });
    Ok(())
}

/// The block of `uid`'s unexpired commit, if any.
pub fn pending_commit<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    uid: u16,
) -> Result<Option<u64>, ModuleError> {
    if state::neuron(s, netuid, uid, Neuron::CommitHash)?.is_zero() {
        return Ok(None);
    }
    let at = state::neuron_u64(s, netuid, uid, Neuron::CommitBlock)?;
    let tempo = param_u64(s, netuid, Param::Tempo)?;
    let period = param_u64(s, netuid, Param::RevealPeriod)?;
    let due = epoch_index(netuid, tempo, at).saturating_add(period);
    let now = epoch_index(netuid, tempo, s.block_number());
    Ok((now <= due).then_some(at))
}

/// Reveals the caller's pending commit and stores the weights.
#[allow(clippy::too_many_arguments)]
pub fn reveal_weights<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    caller: Address,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> Result<(), ModuleError> {
    ensure_subnet(s, netuid)?;
    if param(s, netuid, Param::CommitRevealEnabled)?.is_zero() {
        return Err(revert(
            "commit-reveal is disabled on this subnet: use setWeights",
        ));
    }
    let uid = caller_uid(s, netuid, caller)?;
    let stored = B256::from(state::neuron(s, netuid, uid, Neuron::CommitHash)?);
    if stored.is_zero() {
        return Err(revert("no weight commit to reveal"));
    }
    let at = state::neuron_u64(s, netuid, uid, Neuron::CommitBlock)?;
    let tempo = param_u64(s, netuid, Param::Tempo)?;
    let period = param_u64(s, netuid, Param::RevealPeriod)?;
    let due = epoch_index(netuid, tempo, at).saturating_add(period);
    let now = epoch_index(netuid, tempo, s.block_number());
    if now < due {
        return Err(revert("reveal too early: wait for the reveal epoch"));
    }
    if now > due {
        return Err(revert("weight commit expired"));
    }
    if commit_hash(caller, netuid, uids, values, salt, version_key) != stored {
        return Err(revert("revealed weights do not match the commit hash"));
    }
    set_neuron(s, netuid, uid, Neuron::CommitHash, U256::ZERO)?;
    set_neuron(s, netuid, uid, Neuron::CommitBlock, U256::ZERO)?;
    store_weights(s, netuid, uid, uids, values, version_key)?;
    emit(s, &events::WeightsRevealed { netuid, uid });
    Ok(())
}

/// Checks a weight vector for `uid` and stores it (sorted, max-upscaled), updating
/// `LastUpdate`.
fn store_weights<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    uid: u16,
    uids: &[u16],
    values: &[u16],
    version_key: u64,
) -> Result<(), ModuleError> {
    if uids.len() != values.len() {
        return Err(revert("uids and weights differ in length"));
    }
    if version_key < param_u64(s, netuid, Param::WeightsVersionKey)? {
        return Err(revert("incorrect weights version key"));
    }
    let n = state::uid_count(s, netuid)?;
    let mut pairs: Vec<(u16, u16)> = uids.iter().copied().zip(values.iter().copied()).collect();
    pairs.sort_unstable();
    if pairs
        .windows(2)
        .any(|w| matches!(w, [(a, _), (b, _)] if a == b))
    {
        return Err(revert("duplicate uids in weights"));
    }
    if pairs.iter().any(|&(j, _)| j >= n) {
        return Err(revert("weight uid out of range"));
    }
    let self_only = matches!(pairs.as_slice(), [(j, _)] if *j == uid);
    let min_weights = usize::from(param_u16(s, netuid, Param::MinAllowedWeights)?.min(n));
    if !self_only && pairs.len() < min_weights {
        return Err(revert(
            "fewer weights than the subnet's min allowed weights",
        ));
    }
    let limit = param_u16(s, netuid, Param::MaxWeightLimit)?;
    let sum: u64 = pairs.iter().map(|&(_, v)| u64::from(v)).sum();
    let max = pairs.iter().map(|&(_, v)| u64::from(v)).max().unwrap_or(0);
    if !self_only && limit != u16::MAX && sum > 0 {
        // Normalized to sum to 65535 (Subtensor's `normalize_weights`), then compared.
        let top = max.saturating_mul(65_535).checked_div(sum).unwrap_or(0);
        if top > u64::from(limit) {
            return Err(revert("a weight exceeds the subnet's max weight limit"));
        }
    }
    let stored: Vec<(u16, u16)> = pairs
        .iter()
        .map(|&(j, v)| {
            let up = u64::from(v)
                .saturating_mul(65_535)
                .saturating_add(max / 2)
                .checked_div(max)
                .unwrap_or(0);
            (j, u16::try_from(up).unwrap_or(u16::MAX))
        })
        .collect();
    state::set_row(s, Matrix::Weights, netuid, uid, &stored)?;
    set_neuron(
        s,
        netuid,
        uid,
        Neuron::LastUpdate,
        U256::from(s.block_number()),
    )
}
