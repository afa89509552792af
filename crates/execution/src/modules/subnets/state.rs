//! Storage layout of the subnets module: typed accessors over the module account's slots.
//!
//! Every slot is derived like a Solidity mapping entry: `keccak256(k1 ‖ k2 ‖ … ‖ tag)`, each
//! part a 32-byte big-endian word (numbers left-padded, addresses left-padded to 32 bytes,
//! hotkeys as their 32 bytes). The tag names the table, and the last key of the per-field
//! tables is the field's index, so no two entries can share a slot short of a keccak
//! collision.
//!
//! | tag | keys                                | value                                         |
//! |-----|-------------------------------------|-----------------------------------------------|
//! | 1   | field ([`Global`])                   | network counter, last lock cost, its block    |
//! | 2   | netuid, field ([`Subnet`])           | owner, owner hotkey, uid count, burn, pool…   |
//! | 3   | netuid, param ([`Param`])            | hyperparameter value                          |
//! | 4   | netuid, uid, field ([`Neuron`])      | hotkey, coldkey, axon, blocks, epoch outputs  |
//! | 5   | netuid, hotkey                       | uid + 1 (0 = not registered)                  |
//! | 6   | hotkey, coldkey, netuid              | alpha staked by coldkey on hotkey             |
//! | 7   | netuid, hotkey                       | total alpha staked on hotkey in the subnet    |
//! | 8   | coldkey                              | alpha staked by coldkey, summed over subnets  |
//! | 9   | hotkey                               | alpha staked on hotkey, summed over subnets   |
//! | 10  | netuid, uid                          | number of entries of the weight row           |
//! | 11  | netuid, uid, chunk                   | weight row entries, 8 per word (see below)    |
//! | 12  | netuid, uid                          | number of entries of the bond row             |
//! | 13  | netuid, uid, chunk                   | bond row entries, 8 per word                  |
//! | 14  | netuid, hotkey                       | block at which the hotkey was pruned          |
//!
//! Sparse rows hold `(uid, value)` pairs of two `u16`s; entry `k` is bits `32 (k mod 8) ..
//! 32 (k mod 8) + 32` of chunk `k / 8` (uid in the high half). The axon is packed into one
//! word: `block (64) ‖ version (32) ‖ ip (128) ‖ port (16) ‖ ip_type (8) ‖ protocol (8)`,
//! most significant first.

use alloy_primitives::{Address, B256, U256, keccak256};

use crate::modules::{ModuleError, ModuleState};

const TAG_GLOBAL: u64 = 1;
const TAG_SUBNET: u64 = 2;
const TAG_PARAM: u64 = 3;
const TAG_NEURON: u64 = 4;
const TAG_HOTKEY_UID: u64 = 5;
const TAG_STAKE: u64 = 6;
const TAG_HOTKEY_ALPHA: u64 = 7;
const TAG_COLDKEY_TOTAL: u64 = 8;
const TAG_HOTKEY_TOTAL: u64 = 9;
const TAG_WEIGHTS_LEN: u64 = 10;
const TAG_WEIGHTS: u64 = 11;
const TAG_BONDS_LEN: u64 = 12;
const TAG_BONDS: u64 = 13;
const TAG_PRUNED: u64 = 14;

/// Longest sparse row stored (a subnet's uid cap).
pub const MAX_ROW: usize = 4096;

/// A 32-byte key word.
pub fn word(v: u64) -> B256 {
    B256::from(U256::from(v))
}

/// An address as a key word (left-padded, as Solidity's `bytes32(uint256(uint160(a)))`).
pub fn addr_word(a: Address) -> B256 {
    a.into_word()
}

/// `keccak256(keys ‖ tag)`.
pub fn slot(tag: u64, keys: &[B256]) -> U256 {
    let mut buf = Vec::with_capacity(keys.len().saturating_add(1).saturating_mul(32));
    for k in keys {
        buf.extend_from_slice(k.as_slice());
    }
    buf.extend_from_slice(word(tag).as_slice());
    U256::from_be_bytes(keccak256(&buf).0)
}

fn to_u64(v: U256) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Global fields (tag 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// Highest netuid created so far.
    NetworkCount = 0,
    /// Lock cost paid by the last network registration.
    LastLockCost = 1,
    /// Block of the last network registration.
    LastLockBlock = 2,
}

/// Per-subnet fields (tag 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subnet {
    /// Owner address (as a word); non-zero iff the subnet exists.
    Owner = 0,
    /// The owner's hotkey (receives the owner cut as stake).
    OwnerHotkey = 1,
    /// Number of uids in use.
    N = 2,
    /// Current burn registration cost, in wei.
    Burn = 3,
    /// Registrations since the last burn adjustment.
    RegsThisInterval = 4,
    /// Pool native reserve.
    NativeReserve = 5,
    /// Pool alpha reserve.
    AlphaReserve = 6,
    /// Alpha emitted since the last epoch, waiting to be distributed.
    PendingAlpha = 7,
    /// Block of the last epoch.
    LastEpochBlock = 8,
    /// Lock cost paid at registration.
    Lock = 9,
    /// Alpha held as stake by all keys (outstanding alpha outside the pool).
    TotalAlphaStaked = 10,
}

/// Per-uid fields (tag 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Neuron {
    /// Hotkey (bytes32).
    Hotkey = 0,
    /// Coldkey: the EVM address that registered the uid.
    Coldkey = 1,
    /// Packed axon endpoint.
    Axon = 2,
    /// Block of registration.
    RegistrationBlock = 3,
    /// Block of the last weights set or revealed.
    LastUpdate = 4,
    /// Rank (u16 proportion).
    Rank = 5,
    /// Trust (u16 proportion; not computed by the epoch at the reference commit, kept 0).
    Trust = 6,
    /// Consensus (u16 proportion).
    Consensus = 7,
    /// Incentive (u16 proportion).
    Incentive = 8,
    /// Dividends (u16 proportion).
    Dividends = 9,
    /// Alpha emitted to the uid in the last epoch (wei units of alpha).
    Emission = 10,
    /// Validator permit (0/1).
    ValidatorPermit = 11,
    /// Validator trust (u16 proportion).
    ValidatorTrust = 12,
    /// Pruning score (the last epoch's emission, in `1e9` alpha units, saturating u64).
    PruningScore = 13,
    /// [`Reason`] code for the last epoch.
    Reason = 14,
    /// Hash of the pending weight commit (zero = none).
    CommitHash = 15,
    /// Block of the pending weight commit.
    CommitBlock = 16,
    /// Active at the last epoch (0/1).
    Active = 17,
}

/// Why a uid earned nothing in the last epoch (stored per uid; `Pruned` per hotkey).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// Earned a non-zero emission.
    Earned = 0,
    /// Its weights are older than the activity cutoff.
    Inactive = 1,
    /// It set weights but holds no validator permit, and no validator weighted it.
    NoValidatorPermit = 2,
    /// It validates, but its weights were all clipped away by consensus.
    WeightsClippedToZero = 3,
    /// It committed weights that were not revealed.
    CommitNotRevealed = 4,
    /// The hotkey was pruned (replaced by a new registration).
    Pruned = 5,
    /// No validator weighted it (miner without incentive).
    NotWeighted = 6,
}

impl Reason {
    /// Decodes a stored code.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Earned,
            1 => Self::Inactive,
            2 => Self::NoValidatorPermit,
            3 => Self::WeightsClippedToZero,
            4 => Self::CommitNotRevealed,
            5 => Self::Pruned,
            6 => Self::NotWeighted,
            _ => return None,
        })
    }
}

/// Owner-settable hyperparameters (tag 3), written with their defaults when the subnet is
/// created. Values are stored as words; bounds are checked by [`Param::bounds`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Blocks per epoch (Subtensor default 360).
    Tempo = 0,
    /// Consensus quantile, `/ 65535` (default 32767).
    Kappa = 1,
    /// Uid cap (default 256).
    MaxUids = 2,
    /// Blocks after registration during which a uid cannot be pruned (default 4096).
    ImmunityPeriod = 3,
    /// Blocks without weights after which a uid is inactive (default 5000).
    ActivityCutoff = 4,
    /// Validator permits per subnet (default 128).
    MaxValidators = 5,
    /// Fewest weights a non-self weight vector may hold (default 1).
    MinAllowedWeights = 6,
    /// Largest normalized weight, `/ 65535` (default 65535 = no limit).
    MaxWeightLimit = 7,
    /// Blocks between two weight updates of one uid (default 100).
    WeightsRateLimit = 8,
    /// Lowest accepted weights version key (default 0).
    WeightsVersionKey = 9,
    /// Commit-reveal weights (default on).
    CommitRevealEnabled = 10,
    /// Epochs between a commit and its reveal (default 1).
    RevealPeriod = 11,
    /// Yuma3 (default on).
    Yuma3Enabled = 12,
    /// Liquid alpha (default off).
    LiquidAlphaEnabled = 13,
    /// Liquid alpha lower bound, `/ 65535` (default 45875).
    AlphaLow = 14,
    /// Liquid alpha upper bound, `/ 65535` (default 58982).
    AlphaHigh = 15,
    /// Bonds EMA memory in millionths (default 900000).
    BondsMovingAverage = 16,
    /// Bonds penalty, `/ 65535` (default 65535).
    BondsPenalty = 17,
    /// Lowest burn cost, wei (default 0.0005 native).
    MinBurn = 18,
    /// Highest burn cost, wei (default 100 native).
    MaxBurn = 19,
    /// Burn adjustment smoothing, `/ 2^64` (default 0).
    AdjustmentAlpha = 20,
    /// Target registrations per adjustment interval (default 2).
    TargetRegsPerInterval = 21,
    /// Blocks per burn adjustment interval (default 100).
    AdjustmentInterval = 22,
    /// Whether burned registration is open (default true).
    RegistrationAllowed = 23,
    /// Liquid alpha sigmoid steepness (default 1000).
    AlphaSigmoidSteepness = 24,
}

/// Every parameter, in index order.
pub const PARAMS: [Param; 25] = [
    Param::Tempo,
    Param::Kappa,
    Param::MaxUids,
    Param::ImmunityPeriod,
    Param::ActivityCutoff,
    Param::MaxValidators,
    Param::MinAllowedWeights,
    Param::MaxWeightLimit,
    Param::WeightsRateLimit,
    Param::WeightsVersionKey,
    Param::CommitRevealEnabled,
    Param::RevealPeriod,
    Param::Yuma3Enabled,
    Param::LiquidAlphaEnabled,
    Param::AlphaLow,
    Param::AlphaHigh,
    Param::BondsMovingAverage,
    Param::BondsPenalty,
    Param::MinBurn,
    Param::MaxBurn,
    Param::AdjustmentAlpha,
    Param::TargetRegsPerInterval,
    Param::AdjustmentInterval,
    Param::RegistrationAllowed,
    Param::AlphaSigmoidSteepness,
];

const NATIVE: u128 = 1_000_000_000_000_000_000;

impl Param {
    /// The default for a new subnet.
    pub fn default_value(self) -> U256 {
        let v: u128 = match self {
            Self::Tempo => 360,
            Self::Kappa => 32_767,
            Self::MaxUids => 256,
            Self::ImmunityPeriod => 4096,
            Self::ActivityCutoff => 5000,
            Self::MaxValidators => 128,
            Self::MinAllowedWeights => 1,
            Self::MaxWeightLimit => 65_535,
            Self::WeightsRateLimit => 100,
            Self::WeightsVersionKey => 0,
            Self::CommitRevealEnabled => 1,
            Self::RevealPeriod => 1,
            Self::Yuma3Enabled => 1,
            Self::LiquidAlphaEnabled => 0,
            Self::AlphaLow => 45_875,
            Self::AlphaHigh => 58_982,
            Self::BondsMovingAverage => 900_000,
            Self::BondsPenalty => 65_535,
            Self::MinBurn => NATIVE / 2000,
            Self::MaxBurn => NATIVE.saturating_mul(100),
            Self::AdjustmentAlpha => 0,
            Self::TargetRegsPerInterval => 2,
            Self::AdjustmentInterval => 100,
            Self::RegistrationAllowed => 1,
            Self::AlphaSigmoidSteepness => 1000,
        };
        U256::from(v)
    }

    /// Inclusive bounds an owner may set (cross-parameter checks are in the logic).
    pub fn bounds(self) -> (U256, U256) {
        let (lo, hi): (u128, u128) = match self {
            Self::Tempo => (1, 7200),
            Self::Kappa => (0, 65_535),
            Self::MaxUids => (1, 4096),
            Self::ImmunityPeriod => (0, 65_535),
            Self::ActivityCutoff => (1, 65_535),
            Self::MaxValidators => (1, 4096),
            Self::MinAllowedWeights => (0, 4096),
            Self::MaxWeightLimit => (0, 65_535),
            Self::WeightsRateLimit => (0, 1_000_000),
            Self::WeightsVersionKey => (0, u64::MAX as u128),
            Self::CommitRevealEnabled
            | Self::Yuma3Enabled
            | Self::LiquidAlphaEnabled
            | Self::RegistrationAllowed => (0, 1),
            Self::RevealPeriod => (1, 100),
            Self::AlphaLow => (1, 65_535),
            Self::AlphaHigh => (52_428, 65_535),
            Self::BondsMovingAverage => (0, 975_000),
            Self::BondsPenalty => (0, 65_535),
            Self::MinBurn => (0, NATIVE.saturating_mul(1_000_000)),
            Self::MaxBurn => (1, NATIVE.saturating_mul(1_000_000)),
            Self::AdjustmentAlpha => (0, u64::MAX as u128),
            Self::TargetRegsPerInterval => (1, 4096),
            Self::AdjustmentInterval => (1, 65_535),
            Self::AlphaSigmoidSteepness => (0, 32_767),
        };
        (U256::from(lo), U256::from(hi))
    }
}

/// Reads a global field.
pub fn global<S: ModuleState>(s: &mut S, f: Global) -> Result<U256, ModuleError> {
    s.sload(slot(TAG_GLOBAL, &[word(f as u64)]))
}

/// Writes a global field.
pub fn set_global<S: ModuleState>(s: &mut S, f: Global, v: U256) -> Result<(), ModuleError> {
    s.sstore(slot(TAG_GLOBAL, &[word(f as u64)]), v)
}

/// Reads a subnet field.
pub fn subnet<S: ModuleState>(s: &mut S, netuid: u16, f: Subnet) -> Result<U256, ModuleError> {
    s.sload(slot(TAG_SUBNET, &[word(netuid.into()), word(f as u64)]))
}

/// Writes a subnet field.
pub fn set_subnet<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    f: Subnet,
    v: U256,
) -> Result<(), ModuleError> {
    s.sstore(slot(TAG_SUBNET, &[word(netuid.into()), word(f as u64)]), v)
}

/// Number of uids in use in `netuid` (saturating at `u16::MAX`).
pub fn uid_count<S: ModuleState>(s: &mut S, netuid: u16) -> Result<u16, ModuleError> {
    subnet(s, netuid, Subnet::N).map(|v| u16::try_from(v).unwrap_or(u16::MAX))
}

/// Reads a hyperparameter.
pub fn param<S: ModuleState>(s: &mut S, netuid: u16, p: Param) -> Result<U256, ModuleError> {
    s.sload(slot(TAG_PARAM, &[word(netuid.into()), word(p as u64)]))
}

/// Reads a hyperparameter as `u64` (saturating).
pub fn param_u64<S: ModuleState>(s: &mut S, netuid: u16, p: Param) -> Result<u64, ModuleError> {
    param(s, netuid, p).map(to_u64)
}

/// Reads a hyperparameter as `u16` (saturating).
pub fn param_u16<S: ModuleState>(s: &mut S, netuid: u16, p: Param) -> Result<u16, ModuleError> {
    param(s, netuid, p).map(|v| u16::try_from(v).unwrap_or(u16::MAX))
}

/// Writes a hyperparameter (no bounds check: see the logic's `set_param`).
pub fn set_param<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    p: Param,
    v: U256,
) -> Result<(), ModuleError> {
    s.sstore(slot(TAG_PARAM, &[word(netuid.into()), word(p as u64)]), v)
}

/// Reads a uid field.
pub fn neuron<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    uid: u16,
    f: Neuron,
) -> Result<U256, ModuleError> {
    s.sload(slot(
        TAG_NEURON,
        &[word(netuid.into()), word(uid.into()), word(f as u64)],
    ))
}

/// Reads a uid field as `u64` (saturating).
pub fn neuron_u64<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    uid: u16,
    f: Neuron,
) -> Result<u64, ModuleError> {
    neuron(s, netuid, uid, f).map(to_u64)
}

/// Writes a uid field.
pub fn set_neuron<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    uid: u16,
    f: Neuron,
    v: U256,
) -> Result<(), ModuleError> {
    s.sstore(
        slot(
            TAG_NEURON,
            &[word(netuid.into()), word(uid.into()), word(f as u64)],
        ),
        v,
    )
}

/// The uid of `hotkey` in `netuid`, if registered.
pub fn uid_of<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    hotkey: B256,
) -> Result<Option<u16>, ModuleError> {
    let v = s.sload(slot(TAG_HOTKEY_UID, &[word(netuid.into()), hotkey]))?;
    Ok(u16::try_from(v).ok().and_then(|v| v.checked_sub(1)))
}

/// Records (or with `None` clears) the uid of `hotkey`.
pub fn set_uid_of<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    hotkey: B256,
    uid: Option<u16>,
) -> Result<(), ModuleError> {
    let v = uid.map_or(U256::ZERO, |u| U256::from(u).saturating_add(U256::from(1)));
    s.sstore(slot(TAG_HOTKEY_UID, &[word(netuid.into()), hotkey]), v)
}

/// Block at which `hotkey` was last pruned from `netuid` (0 = never).
pub fn pruned_at<S: ModuleState>(s: &mut S, netuid: u16, hotkey: B256) -> Result<u64, ModuleError> {
    s.sload(slot(TAG_PRUNED, &[word(netuid.into()), hotkey]))
        .map(to_u64)
}

/// Records that `hotkey` was pruned at `block`.
pub fn set_pruned_at<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    hotkey: B256,
    block: u64,
) -> Result<(), ModuleError> {
    s.sstore(
        slot(TAG_PRUNED, &[word(netuid.into()), hotkey]),
        U256::from(block),
    )
}

/// Alpha staked by `coldkey` on `hotkey` in `netuid`.
pub fn stake<S: ModuleState>(
    s: &mut S,
    hotkey: B256,
    coldkey: Address,
    netuid: u16,
) -> Result<U256, ModuleError> {
    s.sload(slot(
        TAG_STAKE,
        &[hotkey, addr_word(coldkey), word(netuid.into())],
    ))
}

/// Total alpha staked on `hotkey` in `netuid`.
pub fn hotkey_alpha<S: ModuleState>(
    s: &mut S,
    netuid: u16,
    hotkey: B256,
) -> Result<U256, ModuleError> {
    s.sload(slot(TAG_HOTKEY_ALPHA, &[word(netuid.into()), hotkey]))
}

/// Alpha staked by `coldkey`, summed over subnets.
pub fn coldkey_total<S: ModuleState>(s: &mut S, coldkey: Address) -> Result<U256, ModuleError> {
    s.sload(slot(TAG_COLDKEY_TOTAL, &[addr_word(coldkey)]))
}

/// Alpha staked on `hotkey`, summed over subnets.
pub fn hotkey_total<S: ModuleState>(s: &mut S, hotkey: B256) -> Result<U256, ModuleError> {
    s.sload(slot(TAG_HOTKEY_TOTAL, &[hotkey]))
}

fn adjust<S: ModuleState>(
    s: &mut S,
    key: U256,
    delta: U256,
    credit: bool,
) -> Result<(), ModuleError> {
    let v = s.sload(key)?;
    let next = if credit {
        v.checked_add(delta)
    } else {
        v.checked_sub(delta)
    }
    .ok_or_else(|| ModuleError::Revert("not enough stake".into()))?;
    s.sstore(key, next)
}

/// Credits (`credit`) or debits alpha stake of `(hotkey, coldkey, netuid)`, keeping the
/// per-hotkey, per-coldkey and per-subnet totals in step. Debiting more than is staked
/// reverts.
pub fn change_stake<S: ModuleState>(
    s: &mut S,
    hotkey: B256,
    coldkey: Address,
    netuid: u16,
    alpha: U256,
    credit: bool,
) -> Result<(), ModuleError> {
    let n = word(netuid.into());
    adjust(
        s,
        slot(TAG_STAKE, &[hotkey, addr_word(coldkey), n]),
        alpha,
        credit,
    )?;
    adjust(s, slot(TAG_HOTKEY_ALPHA, &[n, hotkey]), alpha, credit)?;
    adjust(
        s,
        slot(TAG_COLDKEY_TOTAL, &[addr_word(coldkey)]),
        alpha,
        credit,
    )?;
    adjust(s, slot(TAG_HOTKEY_TOTAL, &[hotkey]), alpha, credit)?;
    adjust(
        s,
        slot(TAG_SUBNET, &[n, word(Subnet::TotalAlphaStaked as u64)]),
        alpha,
        credit,
    )
}

/// Which sparse matrix a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    /// Weights (u16, row-max-scaled).
    Weights,
    /// Bonds (u16).
    Bonds,
}

impl Matrix {
    fn tags(self) -> (u64, u64) {
        match self {
            Self::Weights => (TAG_WEIGHTS_LEN, TAG_WEIGHTS),
            Self::Bonds => (TAG_BONDS_LEN, TAG_BONDS),
        }
    }
}

/// Reads a sparse row.
pub fn row<S: ModuleState>(
    s: &mut S,
    m: Matrix,
    netuid: u16,
    uid: u16,
) -> Result<Vec<(u16, u16)>, ModuleError> {
    let (len_tag, tag) = m.tags();
    let keys = [word(netuid.into()), word(uid.into())];
    let len = usize::try_from(s.sload(slot(len_tag, &keys))?)
        .unwrap_or(MAX_ROW)
        .min(MAX_ROW);
    let mut out = Vec::with_capacity(len);
    let mut chunk = U256::ZERO;
    for k in 0..len {
        if k % 8 == 0 {
            let [a, b] = keys;
            chunk = s.sload(slot(tag, &[a, b, word((k / 8) as u64)]))?;
        }
        let shift = 224usize.saturating_sub((k % 8).saturating_mul(32));
        let entry = chunk
            .wrapping_shr(shift)
            .as_limbs()
            .first()
            .copied()
            .unwrap_or(0);
        let uid_part = u16::try_from((entry >> 16) & 0xFFFF).unwrap_or(0);
        let value = u16::try_from(entry & 0xFFFF).unwrap_or(0);
        out.push((uid_part, value));
    }
    Ok(out)
}

/// Writes a sparse row (an empty row clears it, zeroing the old chunks).
pub fn set_row<S: ModuleState>(
    s: &mut S,
    m: Matrix,
    netuid: u16,
    uid: u16,
    entries: &[(u16, u16)],
) -> Result<(), ModuleError> {
    let (len_tag, tag) = m.tags();
    let keys = [word(netuid.into()), word(uid.into())];
    let [a, b] = keys;
    let old_len = usize::try_from(s.sload(slot(len_tag, &keys))?)
        .unwrap_or(MAX_ROW)
        .min(MAX_ROW);
    let entries = entries.get(..entries.len().min(MAX_ROW)).unwrap_or(&[]);
    for (c, chunk) in entries.chunks(8).enumerate() {
        let mut packed = U256::ZERO;
        for (k, &(j, v)) in chunk.iter().enumerate() {
            let entry = U256::from((u64::from(j) << 16) | u64::from(v));
            packed |= entry.wrapping_shl(224usize.saturating_sub(k.saturating_mul(32)));
        }
        s.sstore(slot(tag, &[a, b, word(c as u64)]), packed)?;
    }
    let new_chunks = entries.len().div_ceil(8);
    for c in new_chunks..old_len.div_ceil(8) {
        s.sstore(slot(tag, &[a, b, word(c as u64)]), U256::ZERO)?;
    }
    s.sstore(slot(len_tag, &keys), U256::from(entries.len()))
}

/// The packed axon endpoint of a uid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Axon {
    /// Block at which it was served.
    pub block: u64,
    /// Axon version.
    pub version: u32,
    /// IP address (v4 or v6) as an integer.
    pub ip: u128,
    /// Port.
    pub port: u16,
    /// 4 or 6.
    pub ip_type: u8,
    /// Protocol code.
    pub protocol: u8,
}

impl Axon {
    /// Packs into one word.
    pub fn pack(&self) -> U256 {
        U256::from(self.block).wrapping_shl(192)
            | U256::from(self.version).wrapping_shl(160)
            | U256::from(self.ip).wrapping_shl(32)
            | U256::from(self.port).wrapping_shl(16)
            | U256::from(self.ip_type).wrapping_shl(8)
            | U256::from(self.protocol)
    }

    /// Unpacks a word written by [`Axon::pack`].
    pub fn unpack(v: U256) -> Self {
        let bits = |shift: usize, width: usize| -> U256 {
            v.wrapping_shr(shift)
                & U256::from(1)
                    .wrapping_shl(width)
                    .saturating_sub(U256::from(1))
        };
        Self {
            block: u64::try_from(bits(192, 64)).unwrap_or(0),
            version: u32::try_from(bits(160, 32)).unwrap_or(0),
            ip: u128::try_from(bits(32, 128)).unwrap_or(0),
            port: u16::try_from(bits(16, 16)).unwrap_or(0),
            ip_type: u8::try_from(bits(8, 8)).unwrap_or(0),
            protocol: u8::try_from(bits(0, 8)).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::MemoryState;

    #[test]
    fn rows_round_trip_and_shrink_clears_old_chunks() {
        let mut s = MemoryState::default();
        let long: Vec<(u16, u16)> = (0..20).map(|i| (i, 65_535 - i)).collect();
        set_row(&mut s, Matrix::Weights, 1, 3, &long).unwrap();
        assert_eq!(row(&mut s, Matrix::Weights, 1, 3).unwrap(), long);
        assert!(row(&mut s, Matrix::Bonds, 1, 3).unwrap().is_empty());
        set_row(&mut s, Matrix::Weights, 1, 3, &[(7, 9)]).unwrap();
        assert_eq!(row(&mut s, Matrix::Weights, 1, 3).unwrap(), vec![(7, 9)]);
        set_row(&mut s, Matrix::Weights, 1, 3, &[]).unwrap();
        assert!(
            s.storage.is_empty(),
            "a cleared row leaves no storage behind"
        );
    }

    #[test]
    fn axon_packs_losslessly() {
        let a = Axon {
            block: u64::MAX - 1,
            version: 7,
            ip: u128::MAX - 5,
            port: 8091,
            ip_type: 6,
            protocol: 4,
        };
        assert_eq!(Axon::unpack(a.pack()), a);
    }

    #[test]
    fn slots_differ_by_tag_and_key() {
        assert_ne!(slot(1, &[word(1)]), slot(2, &[word(1)]));
        assert_ne!(slot(1, &[word(1)]), slot(1, &[word(2)]));
        assert_ne!(slot(1, &[word(1), word(2)]), slot(1, &[word(2), word(1)]));
    }

    #[test]
    fn stake_totals_follow_and_overdraw_reverts() {
        let mut s = MemoryState::default();
        let hk = B256::repeat_byte(1);
        let ck = Address::repeat_byte(2);
        change_stake(&mut s, hk, ck, 1, U256::from(10), true).unwrap();
        change_stake(&mut s, hk, ck, 2, U256::from(5), true).unwrap();
        assert_eq!(stake(&mut s, hk, ck, 1).unwrap(), U256::from(10));
        assert_eq!(hotkey_total(&mut s, hk).unwrap(), U256::from(15));
        assert_eq!(coldkey_total(&mut s, ck).unwrap(), U256::from(15));
        assert_eq!(hotkey_alpha(&mut s, 2, hk).unwrap(), U256::from(5));
        assert!(change_stake(&mut s, hk, ck, 2, U256::from(6), false).is_err());
    }
}
