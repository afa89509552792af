//! Following the chain without voting (a full node, ADR 0013): validators serve their
//! finalized blocks with the certificates that finalized them ([`Archive`]); a
//! follower checks each run of blocks against the validator set and commits it
//! ([`Follower`]).
//!
//! A source is trusted for nothing but liveness. A run is committed only up to a block
//! whose finalization certificate carries a quorum of the validators' signatures over
//! that block's hash; the blocks below it are covered by the parent hashes that link
//! them to it, and every block is re-executed, its header compared field by field.
//! Heights finalized only through a descendant (their view was notarized and a later
//! view finalized) have no certificate of their own and are covered the same way.

use std::sync::Arc;

use commonware_codec::{Decode, Encode};
use commonware_consensus::{
    marshal::{Identifier, core::Mailbox, standard::Standard},
    simplex::types::Finalization,
    types::{Epoch, Height},
};
use commonware_cryptography::{certificate::Verifier, ed25519::PublicKey, sha256::Digest};
use commonware_parallel::Sequential;
use commonware_utils::ordered::Set;
use noesis_node::{BlockError, Chain, CommitOutcome, NodeError};
use noesis_primitives::ProposedBlock;
use parking_lot::Mutex;
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};

use crate::{
    Scheme,
    block::{Block, to_hash},
};

/// Most blocks one request returns.
pub const MAX_BLOCKS_PER_REQUEST: usize = 64;
/// Encoded bytes after which a response stops adding blocks (it holds at least one).
pub const MAX_BYTES_PER_REQUEST: usize = 16 << 20;

/// A finalized block as validators serve it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certified {
    /// The block's encoding (RLP of the header and the transactions).
    pub block: Vec<u8>,
    /// The finalization certificate of this very block, when its view was finalized
    /// (commonware's encoding: the proposal and the validators' signatures).
    pub finalization: Option<Vec<u8>>,
}

/// Finalized blocks by height, read from a validator's consensus storage (marshal's
/// archives).
#[derive(Clone)]
pub struct Archive {
    marshal: Mailbox<Scheme, Standard<Block>>,
}

impl Archive {
    pub(crate) fn new(marshal: Mailbox<Scheme, Standard<Block>>) -> Self {
        Self { marshal }
    }

    /// Height of the newest finalized block this validator stores.
    pub async fn latest(&self) -> Option<u64> {
        let (height, _) = self.marshal.get_info(Identifier::Latest).await?;
        Some(height.get())
    }

    /// The finalized blocks from `from` on, up to the first height not stored, at most
    /// `limit` (and [`MAX_BLOCKS_PER_REQUEST`]) of them and about
    /// [`MAX_BYTES_PER_REQUEST`] bytes.
    pub async fn range(&self, from: u64, limit: usize) -> Vec<Certified> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let limit = limit.min(MAX_BLOCKS_PER_REQUEST);
        let mut height = from;
        while out.len() < limit && bytes < MAX_BYTES_PER_REQUEST {
            let Some(block) = self
                .marshal
                .get_block(Identifier::Height(Height::new(height)))
                .await
            else {
                break;
            };
            let finalization = self
                .marshal
                .get_finalization(Height::new(height))
                .await
                .map(|f| f.encode().to_vec());
            bytes += block.inner().encoded().len() + finalization.as_ref().map_or(0, Vec::len);
            out.push(Certified {
                block: block.inner().encoded().to_vec(),
                finalization,
            });
            let Some(next) = height.checked_add(1) else {
                break;
            };
            height = next;
        }
        out
    }
}

/// Why a run of blocks from a source was not committed. Every variant but
/// [`FollowError::Internal`] and [`FollowError::Execution`] is the source's fault.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// A block is not a canonical block encoding.
    #[error("block {index} of the response is not a valid block encoding: {reason}")]
    BadBlock {
        /// Its position in the run.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The blocks are not the consecutive heights asked for.
    #[error("block {index} of the response has number {got}, expected {expected}")]
    NotConsecutive {
        /// Its position in the run.
        index: usize,
        /// The height asked for at that position.
        expected: u64,
        /// The block's number.
        got: u64,
    },
    /// A block's parent hash is not the hash of the block before it (or of the head).
    #[error(
        "block {number} does not extend block {parent_number} (parent hash mismatch: is the source on another chain or genesis?)"
    )]
    NotLinked {
        /// The block's number.
        number: u64,
        /// The number of the block it should extend.
        parent_number: u64,
    },
    /// A finalization certificate does not decode.
    #[error("the finalization of block {number} does not decode: {reason}")]
    BadCertificate {
        /// The block it came with.
        number: u64,
        /// Why.
        reason: String,
    },
    /// A certificate is for another block than the one it came with.
    #[error("the finalization served with block {number} finalizes another block")]
    WrongBlock {
        /// The block it came with.
        number: u64,
    },
    /// A certificate is not from this chain's single epoch.
    #[error("the finalization of block {number} is for epoch {epoch}, not 0")]
    WrongEpoch {
        /// The block it came with.
        number: u64,
        /// Its epoch.
        epoch: u64,
    },
    /// A certificate's signatures are not a quorum of the validator set.
    #[error("the finalization of block {number} is not signed by a quorum of the validator set")]
    Unsigned {
        /// The block it came with.
        number: u64,
    },
    /// A finalized block does not re-execute to its header: this node and the
    /// validators disagree on execution (different software or chain spec).
    #[error("finalized block {number} does not execute here: {source}")]
    Execution {
        /// The block.
        number: u64,
        /// What differed.
        source: BlockError,
    },
    /// The store failed, or another block is committed at a height.
    #[error(transparent)]
    Internal(#[from] NodeError),
}

impl FollowError {
    /// Whether the source served something false or malformed (try another one).
    pub fn is_source_fault(&self) -> bool {
        !matches!(self, Self::Internal(_) | Self::Execution { .. })
    }
}

/// Commits finalized blocks from sources after checking them against the validator
/// set.
pub struct Follower {
    chain: Arc<Chain>,
    verifier: Scheme,
    max_block_size: usize,
    rng: Mutex<ChaCha20Rng>,
}

impl Follower {
    /// A follower of the validators `validators` whose signatures are under
    /// `namespace`, committing to `chain`.
    pub fn new(chain: Arc<Chain>, namespace: &[u8], validators: Set<PublicKey>) -> Self {
        Self {
            chain,
            verifier: Scheme::verifier(namespace, validators),
            max_block_size: crate::network::MAX_BLOCK_SIZE,
            // Batch verification weighs signatures by random scalars a source must
            // not predict.
            rng: Mutex::new(ChaCha20Rng::from_seed(rand::random())),
        }
    }

    /// The chain it commits to.
    pub fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// Checks `run`, the finalized blocks just above the committed head in height
    /// order, and commits every block up to the highest one that carries a valid
    /// finalization certificate. Returns how many blocks were committed (0 when no
    /// block of the run carries one: the source has not stored it yet). Nothing is
    /// committed when the run is malformed, mislinked or falsely certified.
    pub fn apply(&self, run: &[Certified]) -> Result<usize, FollowError> {
        let Some(last) = run.iter().rposition(|c| c.finalization.is_some()) else {
            return Ok(0);
        };
        let head = self.chain.head();
        let mut blocks = Vec::with_capacity(last + 1);
        let (mut parent_hash, mut parent_number) = (head.hash, head.header.number);
        for (index, certified) in run[..=last].iter().enumerate() {
            let block =
                ProposedBlock::decode(&certified.block, self.max_block_size).map_err(|e| {
                    FollowError::BadBlock {
                        index,
                        reason: e.to_string(),
                    }
                })?;
            let number = block.header.number;
            let expected = parent_number.saturating_add(1);
            if number != expected {
                return Err(FollowError::NotConsecutive {
                    index,
                    expected,
                    got: number,
                });
            }
            if block.header.parent_hash != parent_hash {
                return Err(FollowError::NotLinked {
                    number,
                    parent_number,
                });
            }
            parent_hash = block.hash();
            parent_number = number;
            blocks.push(block);
        }
        let finalization = run[last].finalization.as_deref().unwrap_or_default();
        self.check_finalization(finalization, parent_number, parent_hash)?;
        let mut committed = 0;
        for block in blocks {
            let number = block.header.number;
            let executed = self
                .chain
                .execute_block(&[], block.header, block.transactions)
                .map_err(|source| match source {
                    BlockError::Internal(e) => FollowError::Internal(e),
                    source => FollowError::Execution { number, source },
                })?;
            if let CommitOutcome::Committed(_) = self.chain.commit_executed(&executed)? {
                committed += 1;
            }
        }
        Ok(committed)
    }

    /// Checks that `encoded` is a finalization of block `hash` (at `number`) signed by
    /// a quorum of the validators.
    fn check_finalization(
        &self,
        encoded: &[u8],
        number: u64,
        hash: alloy_primitives::B256,
    ) -> Result<(), FollowError> {
        let finalization = decode_finalization(encoded, &self.verifier)
            .map_err(|reason| FollowError::BadCertificate { number, reason })?;
        if to_hash(&finalization.proposal.payload) != hash {
            return Err(FollowError::WrongBlock { number });
        }
        let epoch = finalization.proposal.round.epoch();
        if epoch != Epoch::zero() {
            return Err(FollowError::WrongEpoch {
                number,
                epoch: epoch.get(),
            });
        }
        if !finalization.verify(&mut *self.rng.lock(), &self.verifier, &Sequential) {
            return Err(FollowError::Unsigned { number });
        }
        Ok(())
    }
}

/// Decodes a finalization certificate as served with a block, bounded by the size of
/// `verifier`'s validator set; trailing bytes are refused. Nothing is verified.
pub fn decode_finalization(
    encoded: &[u8],
    verifier: &Scheme,
) -> Result<Finalization<Scheme, Digest>, String> {
    Finalization::<Scheme, Digest>::decode_cfg(
        bytes::Bytes::copy_from_slice(encoded),
        &verifier.certificate_codec_config(),
    )
    .map_err(|e| e.to_string())
}
