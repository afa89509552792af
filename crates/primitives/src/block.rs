//! The wire form of a proposed block: what a leader sends and validators receive.
//!
//! A [`ProposedBlock`] is the sealed header and the signed transactions, nothing
//! else: senders, receipts and state are recomputed by every validator when it
//! re-executes the block. Its encoding is canonical (one byte string per block), so a
//! digest of the bytes and the header hash identify the same block:
//!
//! ```text
//! rlp([header, [eip2718(tx_0), eip2718(tx_1), ...]])
//! ```
//!
//! Each transaction is its EIP-2718 encoding as an RLP byte string (legacy ones
//! included), exactly what `eth_sendRawTransaction` takes.

use alloy_consensus::{Header, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::B256;
use alloy_rlp::{Decodable, Encodable};

use crate::{DecodeError, decode_transaction};

/// A block as proposed on the wire: header and transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedBlock {
    /// The sealed header.
    pub header: Header,
    /// The signed transactions, in block order.
    pub transactions: Vec<TxEnvelope>,
}

impl ProposedBlock {
    /// The block hash: keccak256 of the header's RLP (the header commits to the
    /// transactions through its transactions root).
    pub fn hash(&self) -> B256 {
        self.header.hash_slow()
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let txs: Vec<Vec<u8>> = self
            .transactions
            .iter()
            .map(Encodable2718::encoded_2718)
            .collect();
        let txs_payload: usize = txs.iter().map(|tx| tx.as_slice().length()).sum();
        let txs_header = alloy_rlp::Header {
            list: true,
            payload_length: txs_payload,
        };
        let payload = self.header.length() + txs_header.length() + txs_payload;
        let outer = alloy_rlp::Header {
            list: true,
            payload_length: payload,
        };
        let mut out = Vec::with_capacity(outer.length() + payload);
        outer.encode(&mut out);
        self.header.encode(&mut out);
        txs_header.encode(&mut out);
        for tx in &txs {
            tx.as_slice().encode(&mut out);
        }
        out
    }

    /// Decodes a block of at most `max_size` bytes. Refuses trailing bytes, any
    /// encoding other than the canonical one, and transactions that
    /// [`decode_transaction`] refuses. Never panics, whatever the input.
    pub fn decode(raw: &[u8], max_size: usize) -> Result<Self, DecodeError> {
        if raw.len() > max_size {
            return Err(DecodeError::Oversized);
        }
        let rlp = |e: alloy_rlp::Error| DecodeError::Rlp(e.to_string());
        let mut buf = raw;
        let body = alloy_rlp::Header::decode_bytes(&mut buf, true).map_err(rlp)?;
        if !buf.is_empty() {
            return Err(DecodeError::Rlp("trailing bytes after block".into()));
        }
        let mut body_buf = body;
        let header = Header::decode(&mut body_buf).map_err(rlp)?;
        let mut txs_buf = alloy_rlp::Header::decode_bytes(&mut body_buf, true).map_err(rlp)?;
        if !body_buf.is_empty() {
            return Err(DecodeError::Rlp("trailing bytes in block body".into()));
        }
        let mut transactions = Vec::new();
        while !txs_buf.is_empty() {
            let raw_tx = alloy_rlp::Header::decode_bytes(&mut txs_buf, false).map_err(rlp)?;
            transactions.push(decode_transaction(raw_tx)?);
        }
        let block = Self {
            header,
            transactions,
        };
        // RLP admits a few encodings of the same values (a header's optional fields,
        // a legacy transaction's signature); only the one we produce is accepted.
        if block.encode() != raw {
            return Err(DecodeError::Rlp("non-canonical block encoding".into()));
        }
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{Signed, TxEip1559, TxLegacy};
    use alloy_primitives::{Address, Bytes, Signature, TxKind, U256};

    use super::*;

    fn block() -> ProposedBlock {
        let dynamic = TxEip1559 {
            chain_id: 7337,
            nonce: 3,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(Address::repeat_byte(0x11)),
            value: U256::from(5u64),
            ..Default::default()
        };
        let legacy = TxLegacy {
            chain_id: Some(7337),
            nonce: 4,
            gas_price: 2_000_000_000,
            gas_limit: 50_000,
            to: TxKind::Create,
            input: Bytes::from_static(&[0x60, 0x00]),
            ..Default::default()
        };
        let sig = Signature::test_signature();
        ProposedBlock {
            header: Header {
                number: 9,
                gas_limit: 30_000_000,
                base_fee_per_gas: Some(7),
                withdrawals_root: Some(B256::repeat_byte(1)),
                ..Default::default()
            },
            transactions: vec![
                Signed::new_unhashed(dynamic, sig).into(),
                Signed::new_unhashed(legacy, sig).into(),
            ],
        }
    }

    #[test]
    fn round_trips() {
        let block = block();
        let raw = block.encode();
        assert_eq!(ProposedBlock::decode(&raw, raw.len()).unwrap(), block);
        let empty = ProposedBlock {
            header: Header::default(),
            transactions: Vec::new(),
        };
        let raw = empty.encode();
        assert_eq!(ProposedBlock::decode(&raw, 1 << 20).unwrap(), empty);
    }

    #[test]
    fn refuses_oversized_trailing_and_non_canonical() {
        let raw = block().encode();
        assert_eq!(
            ProposedBlock::decode(&raw, raw.len() - 1),
            Err(DecodeError::Oversized)
        );
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(ProposedBlock::decode(&trailing, usize::MAX).is_err());
        // The same block with its outer list length written in a longer form.
        let body = &raw[1 + usize::from(raw[0] - 0xf7)..];
        let mut long = vec![0xf7 + 4];
        long.extend_from_slice(&(body.len() as u32).to_be_bytes());
        long.extend_from_slice(body);
        assert!(ProposedBlock::decode(&long, usize::MAX).is_err());
    }

    #[test]
    fn mutations_are_errors_or_other_blocks_never_panics() {
        let block = block();
        let raw = block.encode();
        for i in 0..raw.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = raw.clone();
                bad[i] ^= flip;
                if let Ok(decoded) = ProposedBlock::decode(&bad, usize::MAX) {
                    assert_ne!(decoded, block);
                    assert_eq!(decoded.encode(), bad);
                }
            }
            assert!(ProposedBlock::decode(&raw[..i], usize::MAX).is_err());
        }
    }
}
