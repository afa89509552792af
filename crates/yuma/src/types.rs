//! Epoch input and output types, serialized in the `yuma-epoch-vector/1` encoding.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::fixed::{I32F32, bits_to_f64};

/// One stored sparse row: `(column uid, u16 value)` pairs in stored order.
pub type SparseRowU16 = Vec<(u16, u16)>;

/// Subnet hyperparameters, as stored on chain (the vector's `hyperparams` block).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hyperparams {
    /// Consensus majority, `kappa / 65535`.
    pub kappa: u16,
    /// How far bonds follow clipped instead of raw weights, `/ 65535`.
    pub bonds_penalty: u16,
    /// EMA memory in millionths; the fixed EMA rate is `1 - value / 10^6`.
    pub bonds_moving_average: u64,
    /// Yuma3 (fractional bonds, stake-weighted dividends) instead of the original Yuma.
    pub yuma3_enabled: bool,
    /// Per-cell liquid-alpha EMA rate (Yuma3 only).
    pub liquid_alpha_enabled: bool,
    /// Lower liquid-alpha bound, `/ 65535`.
    pub alpha_low: u16,
    /// Upper liquid-alpha bound, `/ 65535`.
    pub alpha_high: u16,
    /// Liquid-alpha sigmoid steepness.
    pub alpha_sigmoid_steepness: i16,
    /// `k` of the top-k validator permit rule.
    pub max_allowed_validators: u16,
    /// Minimum raw stake for a uid (other than the subnet owner) to count.
    pub stake_threshold: u64,
    /// Blocks per epoch (only used for the bond mask when no previous epoch is recorded).
    pub tempo: u16,
    /// Blocks after its last weight update until a uid counts as inactive.
    pub activity_cutoff: u64,
    /// Whether the commit-reveal column mask applies.
    pub commit_reveal_enabled: bool,
    /// Informational: enforced when weights are submitted, not inside the epoch.
    pub max_weight_limit: u16,
}

/// Subnet state at the start of an epoch (the vector's `inputs` block).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochState {
    /// Number of uids; every per-uid array has this length.
    pub n: u16,
    /// Current block.
    pub block: u64,
    /// Block of the previous successful epoch of this subnet; 0 = none recorded.
    pub last_mechanism_step_block: u64,
    /// Per-uid total stake (raw units).
    pub stake: Vec<u64>,
    /// Block at which each uid last set weights.
    pub last_update: Vec<u64>,
    /// Block at which the current occupant of each uid registered.
    pub block_at_registration: Vec<u64>,
    /// Validator permits from the previous epoch.
    pub validator_permit: Vec<bool>,
    /// Uid of the subnet owner's hotkey, if registered.
    #[serde(default)]
    pub owner_uid: Option<u16>,
    /// Stored weight rows (u16, row-max-scaled as set-weights stores them).
    pub weights: Vec<SparseRowU16>,
    /// Stored bond rows (u16).
    pub bonds_prev: Vec<SparseRowU16>,
    /// Per uid, block of its earliest unexpired weight commit (`None` = no commit);
    /// `None` as a whole when commit-reveal is off.
    #[serde(default)]
    pub commit_blocks: Option<Vec<Option<u64>>>,
    /// Alpha to distribute this epoch (raw units).
    pub rao_emission: u64,
}

/// A validated epoch input: hyperparameters plus state, with every per-uid array of length `n`
/// and no sparse row listing a column twice.
///
/// Construct it with [`Inputs::new`] (or by deserializing `{"hyperparams": ..., "inputs": ...}`,
/// which runs the same checks); [`crate::epoch`] can then never fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    hyperparams: Hyperparams,
    state: EpochState,
}

impl Inputs {
    /// Validates and bundles an epoch input.
    pub fn new(hyperparams: Hyperparams, state: EpochState) -> Result<Self, Error> {
        let n = usize::from(state.n);
        let check = |field: &'static str, actual: usize| {
            if actual == n {
                Ok(())
            } else {
                Err(Error::LengthMismatch {
                    field,
                    expected: n,
                    actual,
                })
            }
        };
        check("stake", state.stake.len())?;
        check("last_update", state.last_update.len())?;
        check("block_at_registration", state.block_at_registration.len())?;
        check("validator_permit", state.validator_permit.len())?;
        check("weights", state.weights.len())?;
        check("bonds_prev", state.bonds_prev.len())?;
        if let Some(commits) = &state.commit_blocks {
            check("commit_blocks", commits.len())?;
        }
        check_no_duplicates("weights", &state.weights)?;
        check_no_duplicates("bonds_prev", &state.bonds_prev)?;
        Ok(Self { hyperparams, state })
    }

    /// The hyperparameters.
    pub fn hyperparams(&self) -> &Hyperparams {
        &self.hyperparams
    }

    /// The subnet state.
    pub fn state(&self) -> &EpochState {
        &self.state
    }

    /// Gives the parts back.
    pub fn into_parts(self) -> (Hyperparams, EpochState) {
        (self.hyperparams, self.state)
    }
}

fn check_no_duplicates(field: &'static str, rows: &[SparseRowU16]) -> Result<(), Error> {
    let mut seen: Vec<bool> = Vec::new();
    for (row, entries) in rows.iter().enumerate() {
        let ascending = entries
            .windows(2)
            .all(|w| matches!(w, [(a, _), (b, _)] if a < b));
        if ascending {
            continue;
        }
        if seen.is_empty() {
            seen = vec![false; usize::from(u16::MAX).saturating_add(1)];
        }
        let mut dup = None;
        for &(j, _) in entries {
            if let Some(flag) = seen.get_mut(usize::from(j)) {
                if *flag {
                    dup = Some(j);
                    break;
                }
                *flag = true;
            }
        }
        for &(j, _) in entries {
            if let Some(flag) = seen.get_mut(usize::from(j)) {
                *flag = false;
            }
        }
        if let Some(column) = dup {
            return Err(Error::DuplicateColumn { field, row, column });
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct InputsRef<'a> {
    hyperparams: &'a Hyperparams,
    inputs: &'a EpochState,
}

#[derive(Deserialize)]
struct InputsOwned {
    hyperparams: Hyperparams,
    inputs: EpochState,
}

impl Serialize for Inputs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        InputsRef {
            hyperparams: &self.hyperparams,
            inputs: &self.state,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Inputs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = InputsOwned::deserialize(deserializer)?;
        Inputs::new(raw.hyperparams, raw.inputs).map_err(serde::de::Error::custom)
    }
}

/// Result of one epoch (the vector's `outputs` block).
///
/// Serialized in the vector encoding: I32F32 vectors as `{"bits": [...], "f64": [...]}` plus a
/// `"u16"` array (`floor(value * 65535)`, saturating) for the quantities the chain stores as u16;
/// `trust` and `pruning_scores` as `null` (not computed by the chain at the reference commit).
/// Deserialization reads the `bits` and ignores the derived `f64` / `u16` companions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outputs {
    /// `last_update + activity_cutoff >= block`.
    pub active: Vec<bool>,
    /// Validator permits after this epoch.
    pub new_validator_permit: Vec<bool>,
    /// Normalized stake S (stored as StakeWeight).
    pub stake_normalized: Vec<I32F32>,
    /// A: S restricted to active, previously permitted uids, renormalized.
    pub active_stake: Vec<I32F32>,
    /// C: stake-weighted median of each weight column.
    pub consensus: Vec<I32F32>,
    /// Row sums of the clipped weights.
    pub validator_trust: Vec<I32F32>,
    /// R before normalization.
    pub ranks: Vec<I32F32>,
    /// R normalized.
    pub incentive: Vec<I32F32>,
    /// D.
    pub dividends: Vec<I32F32>,
    /// Bond rows the chain stores (empty for uids without a new permit).
    pub bonds_new: Vec<SparseRowU16>,
    /// Sum of incentive + dividends.
    pub emission_sum: I32F32,
    /// Miner shares before scaling.
    pub normalized_server_emission: Vec<I32F32>,
    /// Validator shares before scaling.
    pub normalized_validator_emission: Vec<I32F32>,
    /// Combined shares before scaling.
    pub normalized_combined_emission: Vec<I32F32>,
    /// Raw alpha for each uid as miner.
    pub server_emission: Vec<u64>,
    /// Raw alpha for each uid as validator.
    pub validator_emission: Vec<u64>,
    /// Combined per-uid emission (the stored Emission vector).
    pub emission: Vec<u64>,
}

/// `{"bits": [...], "f64": [...]}` (+ optional `"u16"`).
#[derive(Serialize)]
struct FixedVecOut {
    bits: Vec<i64>,
    f64: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    u16: Option<Vec<u16>>,
}

impl FixedVecOut {
    fn new(values: &[I32F32], with_u16: bool) -> Self {
        Self {
            bits: values.iter().map(|v| v.to_bits()).collect(),
            f64: values
                .iter()
                .map(|v| bits_to_f64(v.to_bits(), I32F32::FRAC_BITS))
                .collect(),
            u16: with_u16.then(|| values.iter().map(|v| v.proportion_to_u16()).collect()),
        }
    }
}

#[derive(Serialize)]
struct FixedScalarOut {
    bits: i64,
    f64: f64,
}

#[derive(Deserialize)]
struct FixedVecIn {
    bits: Vec<i64>,
}

#[derive(Deserialize)]
struct FixedScalarIn {
    bits: i64,
}

#[derive(Serialize)]
struct OutputsOut<'a> {
    active: &'a [bool],
    new_validator_permit: &'a [bool],
    stake_normalized: FixedVecOut,
    active_stake: FixedVecOut,
    consensus: FixedVecOut,
    validator_trust: FixedVecOut,
    ranks: FixedVecOut,
    incentive: FixedVecOut,
    dividends: FixedVecOut,
    trust: (),
    pruning_scores: (),
    bonds_new: &'a [SparseRowU16],
    emission_sum: FixedScalarOut,
    normalized_server_emission: FixedVecOut,
    normalized_validator_emission: FixedVecOut,
    normalized_combined_emission: FixedVecOut,
    server_emission: &'a [u64],
    validator_emission: &'a [u64],
    emission: &'a [u64],
}

#[derive(Deserialize)]
struct OutputsIn {
    active: Vec<bool>,
    new_validator_permit: Vec<bool>,
    stake_normalized: FixedVecIn,
    active_stake: FixedVecIn,
    consensus: FixedVecIn,
    validator_trust: FixedVecIn,
    ranks: FixedVecIn,
    incentive: FixedVecIn,
    dividends: FixedVecIn,
    bonds_new: Vec<SparseRowU16>,
    emission_sum: FixedScalarIn,
    normalized_server_emission: FixedVecIn,
    normalized_validator_emission: FixedVecIn,
    normalized_combined_emission: FixedVecIn,
    server_emission: Vec<u64>,
    validator_emission: Vec<u64>,
    emission: Vec<u64>,
}

impl Serialize for Outputs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        OutputsOut {
            active: &self.active,
            new_validator_permit: &self.new_validator_permit,
            stake_normalized: FixedVecOut::new(&self.stake_normalized, true),
            active_stake: FixedVecOut::new(&self.active_stake, false),
            consensus: FixedVecOut::new(&self.consensus, true),
            validator_trust: FixedVecOut::new(&self.validator_trust, true),
            ranks: FixedVecOut::new(&self.ranks, false),
            incentive: FixedVecOut::new(&self.incentive, true),
            dividends: FixedVecOut::new(&self.dividends, true),
            trust: (),
            pruning_scores: (),
            bonds_new: &self.bonds_new,
            emission_sum: FixedScalarOut {
                bits: self.emission_sum.to_bits(),
                f64: bits_to_f64(self.emission_sum.to_bits(), I32F32::FRAC_BITS),
            },
            normalized_server_emission: FixedVecOut::new(&self.normalized_server_emission, false),
            normalized_validator_emission: FixedVecOut::new(
                &self.normalized_validator_emission,
                false,
            ),
            normalized_combined_emission: FixedVecOut::new(
                &self.normalized_combined_emission,
                false,
            ),
            server_emission: &self.server_emission,
            validator_emission: &self.validator_emission,
            emission: &self.emission,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Outputs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = OutputsIn::deserialize(deserializer)?;
        let fx = |v: FixedVecIn| v.bits.into_iter().map(I32F32::from_bits).collect();
        Ok(Self {
            active: raw.active,
            new_validator_permit: raw.new_validator_permit,
            stake_normalized: fx(raw.stake_normalized),
            active_stake: fx(raw.active_stake),
            consensus: fx(raw.consensus),
            validator_trust: fx(raw.validator_trust),
            ranks: fx(raw.ranks),
            incentive: fx(raw.incentive),
            dividends: fx(raw.dividends),
            bonds_new: raw.bonds_new,
            emission_sum: I32F32::from_bits(raw.emission_sum.bits),
            normalized_server_emission: fx(raw.normalized_server_emission),
            normalized_validator_emission: fx(raw.normalized_validator_emission),
            normalized_combined_emission: fx(raw.normalized_combined_emission),
            server_emission: raw.server_emission,
            validator_emission: raw.validator_emission,
            emission: raw.emission,
        })
    }
}
