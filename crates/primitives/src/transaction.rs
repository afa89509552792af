//! Decoding of raw signed transactions as they arrive from the network, with the
//! checks that need nothing but the bytes.

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::{Decodable2718, Eip2718Error};

/// Largest transaction accepted, in encoded bytes (geth's limit).
pub const MAX_TX_SIZE: usize = 128 * 1024;

/// Why raw bytes are not an acceptable transaction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Larger than [`MAX_TX_SIZE`].
    #[error("oversized data")]
    Oversized,
    /// A transaction type this chain does not take (blob transactions, unknown types).
    #[error("transaction type not supported")]
    TypeNotSupported,
    /// Malformed encoding.
    #[error("rlp: {0}")]
    Rlp(String),
}

/// Decodes an EIP-2718 transaction (legacy, access-list, dynamic-fee or set-code).
/// Never panics, whatever the input.
pub fn decode_transaction(raw: &[u8]) -> Result<TxEnvelope, DecodeError> {
    if raw.len() > MAX_TX_SIZE {
        return Err(DecodeError::Oversized);
    }
    // Typed transactions other than 1, 2 and 4 are refused before decoding; blob
    // transactions (3) need sidecars this chain does not take.
    if let Some(&ty) = raw.first()
        && ty < 0x7f
        && !matches!(ty, 1 | 2 | 4)
    {
        return Err(DecodeError::TypeNotSupported);
    }
    let mut buf = raw;
    let tx = TxEnvelope::decode_2718(&mut buf).map_err(|e| match e {
        Eip2718Error::UnexpectedType(_) => DecodeError::TypeNotSupported,
        other => DecodeError::Rlp(other.to_string()),
    })?;
    if !buf.is_empty() {
        return Err(DecodeError::Rlp("trailing bytes after transaction".into()));
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for raw in [
            &[][..],
            &[0x00],
            &[0x02],
            &[0x03, 0xc0],
            &[0xf8, 0xff],
            &[0xc0],
            &[0x7f; 40],
        ] {
            assert!(decode_transaction(raw).is_err(), "{raw:?}");
        }
        assert_eq!(
            decode_transaction(&[0x03, 0x01]),
            Err(DecodeError::TypeNotSupported)
        );
        assert_eq!(
            decode_transaction(&vec![0u8; MAX_TX_SIZE + 1]),
            Err(DecodeError::Oversized)
        );
    }
}
