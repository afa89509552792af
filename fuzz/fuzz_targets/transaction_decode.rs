//! Raw signed transactions as they arrive from the network (`eth_sendRawTransaction`,
//! and later peers): `noesis_primitives::decode_transaction` must never panic, and
//! whatever it accepts must survive an EIP-2718 round trip unchanged.

#![no_main]

use alloy_consensus::transaction::SignerRecoverable;
use alloy_eips::eip2718::Encodable2718;
use libfuzzer_sys::fuzz_target;
use noesis_primitives::decode_transaction;

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = decode_transaction(data) else { return };

    // Re-encoding gives bytes that decode to the same envelope...
    let encoded = tx.encoded_2718();
    assert_eq!(encoded.len(), tx.encode_2718_len(), "encode_2718_len disagrees with encoded_2718");
    let again = decode_transaction(&encoded).expect("re-encoded transaction no longer decodes");
    assert_eq!(again, tx, "round trip changed the transaction");
    // ...and, the encoding being canonical, the very bytes that came in: otherwise two
    // byte strings would name one transaction under two hashes.
    assert_eq!(encoded, data, "accepted a non-canonical encoding");
    assert_eq!(*again.tx_hash(), *tx.tx_hash());

    // Signature recovery on attacker-chosen r, s, v: an error is fine, a panic is not.
    let _ = tx.recover_signer();
    let _ = tx.recover_signer_unchecked();
});
