//! The block as consensus carries it: a [`ProposedBlock`] (header and signed
//! transactions) under the commonware block traits.
//!
//! The consensus digest is the Ethereum block hash (keccak256 of the header RLP), held
//! in commonware's 32-byte digest type: one identifier for a block everywhere, in
//! votes, in marshal's archives and over JSON-RPC.

use std::sync::Arc;

use alloy_primitives::B256;
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write, varint::UInt};
use commonware_consensus::{BoundedBlock, Heightable, types::Height};
use commonware_cryptography::{Digested, Digestible, sha256::Digest};
use noesis_primitives::ProposedBlock;

/// A block under consensus: the decoded block, its hash and its canonical encoding.
#[derive(Clone, Debug)]
pub struct Block {
    proposed: Arc<ProposedBlock>,
    hash: B256,
    encoded: Arc<[u8]>,
}

impl PartialEq for Block {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
    }
}

impl Eq for Block {}

impl Block {
    /// Wraps a proposed block, encoding it once.
    pub fn new(proposed: ProposedBlock) -> Self {
        let hash = proposed.hash();
        let encoded = proposed.encode().into();
        Self {
            proposed: Arc::new(proposed),
            hash,
            encoded,
        }
    }

    /// The block with its digest, as marshal takes it.
    pub fn digested(self) -> Digested<Self> {
        let digest = to_digest(self.hash);
        Digested::precomputed(self, digest)
    }

    /// The header and transactions.
    pub fn proposed(&self) -> &ProposedBlock {
        &self.proposed
    }

    /// The Ethereum block hash.
    pub fn hash(&self) -> B256 {
        self.hash
    }

    /// The block number.
    pub fn number(&self) -> u64 {
        self.proposed.header.number
    }

    /// Its canonical encoding (RLP of the header and the transactions).
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

/// The consensus digest of a block hash.
pub fn to_digest(hash: B256) -> Digest {
    Digest(hash.0)
}

/// The block hash of a consensus digest.
pub fn to_hash(digest: &Digest) -> B256 {
    B256::from(digest.0)
}

impl Write for Block {
    fn write(&self, writer: &mut impl BufMut) {
        UInt(self.encoded.len() as u32).write(writer);
        writer.put_slice(&self.encoded);
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        UInt(self.encoded.len() as u32).encode_size() + self.encoded.len()
    }
}

impl Read for Block {
    /// The largest encoded block accepted, in bytes.
    type Cfg = usize;

    fn read_cfg(reader: &mut impl Buf, max_size: &usize) -> Result<Self, CodecError> {
        let len: u32 = UInt::read(reader)?.into();
        let len = len as usize;
        if len > *max_size {
            return Err(CodecError::Invalid("Block", "block larger than the limit"));
        }
        if reader.remaining() < len {
            return Err(CodecError::EndOfBuffer);
        }
        let mut raw = vec![0u8; len];
        reader.copy_to_slice(&mut raw);
        // `ProposedBlock::decode` accepts only the canonical encoding (it re-encodes and
        // compares), so the bytes read are the block's encoding as they stand.
        let proposed = ProposedBlock::decode(&raw, *max_size)
            .map_err(|_| CodecError::Invalid("Block", "not a canonical block encoding"))?;
        let block = Self {
            hash: proposed.hash(),
            proposed: Arc::new(proposed),
            encoded: raw.into(),
        };
        Ok(block)
    }
}

impl Digestible for Block {
    type Digest = Digest;

    fn digest(&self) -> Digest {
        to_digest(self.hash)
    }
}

impl Heightable for Block {
    fn height(&self) -> Height {
        Height::new(self.number())
    }
}

impl commonware_consensus::Block for Block {
    fn parent(&self) -> Digest {
        to_digest(self.proposed.header.parent_hash)
    }
}

impl BoundedBlock for Block {
    fn max_encode_size(max_size: &usize) -> usize {
        UInt(u32::MAX).encode_size() + *max_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::Header;
    use commonware_codec::{Decode, Encode};

    fn sample() -> Block {
        Block::new(ProposedBlock {
            header: Header {
                number: 7,
                gas_limit: 30_000_000,
                ..Default::default()
            },
            transactions: vec![],
        })
    }

    #[test]
    fn round_trips_through_the_codec() {
        let block = sample();
        let bytes = block.encode();
        let decoded = Block::decode_cfg(bytes, &(1 << 20)).expect("decodes");
        assert_eq!(decoded.hash(), block.hash());
        assert_eq!(decoded.height(), Height::new(7));
    }

    #[test]
    fn rejects_oversized_and_truncated_blocks() {
        let bytes = sample().encode();
        assert!(Block::decode_cfg(bytes.clone(), &10).is_err());
        assert!(Block::decode_cfg(bytes.slice(..bytes.len() - 1), &(1 << 20)).is_err());
    }
}
