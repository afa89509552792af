//! Bytes a validator receives from its peers (ADR 0013): a block on the block and
//! backfill channels (commonware codec around `ProposedBlock`'s RLP), and a batch of
//! gossiped transactions; and what a follower receives from a source: a finalization
//! certificate. The first byte picks the decoder. Decoders must never panic;
//! whatever they accept must re-encode to exactly the input (one byte string per block,
//! so one digest per block).

#![no_main]

use commonware_codec::{Decode as _, Encode as _};
use libfuzzer_sys::fuzz_target;
use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use commonware_utils::ordered::Set;
use noesis_consensus::{Block, Scheme, follow, gossip};
use noesis_primitives::ProposedBlock;

const MAX_BLOCK: usize = 1 << 20;

/// A 4-validator set's verifier: it bounds how many signatures a certificate may hold.
static VERIFIER: std::sync::OnceLock<Scheme> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 4 {
        0 => {
            let input = bytes::Bytes::copy_from_slice(rest);
            if let Ok(block) = Block::decode_cfg(input, &MAX_BLOCK) {
                assert_eq!(block.encode().as_ref(), rest, "accepted a non-canonical block");
                assert_eq!(block.hash(), block.proposed().hash());
            }
        }
        1 => {
            if let Some(batch) = gossip::decode_batch(rest) {
                let raw: Vec<Vec<u8>> = batch.iter().map(|b| b.to_vec()).collect();
                assert_eq!(gossip::encode_batch(&raw), rest, "accepted a non-canonical batch");
            }
        }
        3 => {
            let verifier = VERIFIER.get_or_init(|| {
                let set = Set::from_iter_dedup((0..4).map(|i| PrivateKey::from_seed(i).public_key()));
                Scheme::verifier(b"noesis-fuzz", set)
            });
            if let Ok(finalization) = follow::decode_finalization(rest, verifier) {
                assert_eq!(finalization.encode().as_ref(), rest, "accepted a non-canonical certificate");
            }
        }
        _ => {
            if let Ok(block) = ProposedBlock::decode(rest, MAX_BLOCK) {
                assert_eq!(block.encode(), rest, "accepted a non-canonical block");
            }
        }
    }
});
