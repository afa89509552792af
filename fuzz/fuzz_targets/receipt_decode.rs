//! Inference receipts as they arrive from miners (`noesis ai verify`, and later the
//! chain's validators): `ReceiptFile::parse` and `check` must never panic, whatever the
//! bytes; a receipt that checks must survive a JSON round trip; the commitment decoder
//! must never panic and must re-encode what it accepts to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use noesis_ai::proof::commitment::Commitment;
use noesis_ai::proof::receipt::ReceiptFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(commitment) = Commitment::decode(data) {
        assert_eq!(commitment.encode(), data, "commitment encoding is not canonical");
    }
    let Ok(file) = ReceiptFile::parse(data) else { return };
    let json = serde_json::to_vec(&file).expect("a parsed receipt serializes");
    let again = ReceiptFile::parse(&json).expect("a serialized receipt parses");
    assert_eq!(again, file, "JSON round trip changed the receipt");
    let _ = file.check();
});
