//! `eth_getProof` answers verify independently against the block's state root.

mod common;

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::{Nibbles, TrieAccount, proof::verify_proof};
use common::*;
use serde_json::{Value, json};

fn hex_bytes(v: &Value) -> Vec<Bytes> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn account_and_storage_proofs_verify_against_the_state_root() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path(), &[]);
    let signer = dev_signer(2);
    // Init code that stores 0x2a at slot 0 and 0x07 at slot 5, then returns empty code.
    let init: Bytes = "0x602a600055600760055500".parse().unwrap();
    let hash = node.call(
        "eth_sendRawTransaction",
        json!([sign(&signer, eip1559(0, None, U256::ZERO, init, 200_000))]),
    );
    let receipt = node.receipt(hash.as_str().unwrap());
    assert_eq!(receipt["status"], "0x1");
    let contract: Address = receipt["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let block = node.call("eth_getBlockByNumber", json!(["latest", false]));
    let state_root: B256 = block["stateRoot"].as_str().unwrap().parse().unwrap();
    let slots = [B256::ZERO, B256::with_last_byte(5), B256::with_last_byte(9)];
    let proof = node.call("eth_getProof", json!([contract, slots, "latest"]));

    let storage_root: B256 = proof["storageHash"].as_str().unwrap().parse().unwrap();
    let account = TrieAccount {
        nonce: u64::from_str_radix(
            proof["nonce"].as_str().unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap(),
        balance: proof["balance"].as_str().unwrap().parse().unwrap(),
        storage_root,
        code_hash: proof["codeHash"].as_str().unwrap().parse().unwrap(),
    };
    let mut encoded = Vec::new();
    account.encode(&mut encoded);
    verify_proof(
        state_root,
        Nibbles::unpack(keccak256(contract)),
        Some(encoded),
        &hex_bytes(&proof["accountProof"]),
    )
    .expect("account proof verifies");

    let expected = [U256::from(0x2a), U256::from(7), U256::ZERO];
    for (i, entry) in proof["storageProof"].as_array().unwrap().iter().enumerate() {
        let value: U256 = entry["value"].as_str().unwrap().parse().unwrap();
        assert_eq!(value, expected[i]);
        let expected_leaf = (!value.is_zero()).then(|| alloy_rlp::encode(value));
        verify_proof(
            storage_root,
            Nibbles::unpack(keccak256(slots[i])),
            expected_leaf,
            &hex_bytes(&entry["proof"]),
        )
        .expect("storage proof verifies");
    }

    // An absent account proves its absence.
    let nobody = Address::repeat_byte(0xee);
    let proof = node.call("eth_getProof", json!([nobody, [], "latest"]));
    verify_proof(
        state_root,
        Nibbles::unpack(keccak256(nobody)),
        None,
        &hex_bytes(&proof["accountProof"]),
    )
    .expect("absence proof verifies");

    // A past block's proof verifies against that block's root.
    let sender_proof = node.call("eth_getProof", json!([signer.address(), [], "0x0"]));
    let genesis = node.call("eth_getBlockByNumber", json!(["0x0", false]));
    let genesis_root: B256 = genesis["stateRoot"].as_str().unwrap().parse().unwrap();
    let account = TrieAccount {
        nonce: 0,
        balance: sender_proof["balance"].as_str().unwrap().parse().unwrap(),
        storage_root: alloy_trie::EMPTY_ROOT_HASH,
        code_hash: alloy_trie::KECCAK_EMPTY,
    };
    verify_proof(
        genesis_root,
        Nibbles::unpack(keccak256(signer.address())),
        Some(alloy_rlp::encode(account)),
        &hex_bytes(&sender_proof["accountProof"]),
    )
    .expect("historical proof verifies");
}
