//! Bad input gets geth's errors and the node keeps serving, losing nothing.

mod common;

use alloy_consensus::{TxEip1559, TxLegacy};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use common::*;
use serde_json::json;

fn message(err: &serde_json::Value) -> String {
    err.get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn mempool_errors_use_geth_words_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    // Interval mining so pooled transactions stay pending while we probe the pool.
    let node = DevNode::start(dir.path(), &["--block-time", "3600"]);
    let alice = dev_signer(1);
    let to = Address::repeat_byte(0x42);
    let send = |raw: String| node.try_call("eth_sendRawTransaction", json!([raw]));

    // A valid transaction enters the pool.
    let first = transfer(&alice, 0, to, 1);
    send(first.clone()).expect("valid transfer accepted");
    assert_eq!(message(&send(first).unwrap_err()), "already known");

    // Replacement needs a 10% bump of both fees.
    let mut bump = eip1559(0, Some(to), U256::from(2), Bytes::new(), 21_000);
    bump.max_fee_per_gas = 21_000_000_000;
    bump.max_priority_fee_per_gas = 1_050_000_000;
    assert_eq!(
        message(&send(sign(&alice, bump.clone())).unwrap_err()),
        "replacement transaction underpriced"
    );
    bump.max_fee_per_gas = 22_000_000_000;
    bump.max_priority_fee_per_gas = 1_100_000_000;
    send(sign(&alice, bump)).expect("replacement with a 10% bump accepted");

    // Nonce gaps are queued, not refused.
    send(transfer(&alice, 5, to, 1)).expect("gapped nonce is queued");
    assert_eq!(
        node.quantity(
            "eth_getTransactionCount",
            json!([alice.address(), "pending"])
        ),
        1
    );

    let cases: Vec<(&str, String)> = vec![
        ("insufficient funds for gas * price + value", {
            let poor = alloy_signer_local::PrivateKeySigner::random();
            transfer(&poor, 0, to, 1)
        }),
        (
            "intrinsic gas too low",
            sign(
                &alice,
                eip1559(1, Some(to), U256::ZERO, Bytes::new(), 20_000),
            ),
        ),
        (
            "exceeds block gas limit",
            sign(
                &alice,
                eip1559(1, Some(to), U256::ZERO, Bytes::new(), 40_000_000),
            ),
        ),
        (
            "invalid chain id",
            sign(
                &alice,
                TxEip1559 {
                    chain_id: 1,
                    ..eip1559(1, Some(to), U256::ZERO, Bytes::new(), 21_000)
                },
            ),
        ),
        (
            "only replay-protected (EIP-155) transactions allowed over RPC",
            sign(
                &alice,
                TxLegacy {
                    chain_id: None,
                    nonce: 1,
                    gas_price: 20_000_000_000,
                    gas_limit: 21_000,
                    to: TxKind::Call(to),
                    ..Default::default()
                },
            ),
        ),
        (
            "oversized data",
            sign(
                &alice,
                eip1559(
                    1,
                    None,
                    U256::ZERO,
                    Bytes::from(vec![1u8; 130 * 1024]),
                    15_000_000,
                ),
            ),
        ),
        (
            "transaction type not supported",
            "0x03f8".to_string() + &"00".repeat(40),
        ),
        (
            "max priority fee per gas higher than max fee per gas",
            sign(
                &alice,
                TxEip1559 {
                    max_priority_fee_per_gas: 30_000_000_000,
                    ..eip1559(1, Some(to), U256::ZERO, Bytes::new(), 21_000)
                },
            ),
        ),
    ];
    for (expected, raw) in cases {
        let err = send(raw).expect_err(expected);
        assert_eq!(message(&err), expected);
        assert_eq!(err["code"], -32000, "{expected}");
    }

    // Nonce too low once the first transaction is mined: restart-free check with a
    // mined nonce needs a block, so use a second node in automine mode below.
    let dir2 = tempfile::tempdir().unwrap();
    let auto = DevNode::start(dir2.path(), &[]);
    let hash = auto.call(
        "eth_sendRawTransaction",
        json!([transfer(&alice, 0, to, 1)]),
    );
    auto.receipt(hash.as_str().unwrap());
    let err = auto
        .try_call(
            "eth_sendRawTransaction",
            json!([transfer(&alice, 0, to, 7)]),
        )
        .unwrap_err();
    assert_eq!(message(&err), "nonce too low");

    // Garbage is a decode error, not a crash.
    let err = send("0xdeadbeef".into()).unwrap_err();
    assert_eq!(err["code"], -32000);
    // The node still serves and still holds the pooled transactions.
    assert_eq!(node.quantity("eth_chainId", json!([])), CHAIN_ID as u128);
    assert_eq!(
        node.quantity(
            "eth_getTransactionCount",
            json!([alice.address(), "pending"])
        ),
        1
    );
}

#[test]
fn malformed_and_oversized_requests() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path(), &[]);

    let (status, body) = post_bytes(&node.url, b"{\"jsonrpc\":\"2.0\",".to_vec());
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], -32700);

    assert_eq!(status_for_announced_length(node.port, 9 * 1024 * 1024), 413);

    let (_, body) = post_bytes(
        &node.url,
        br#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0xnothex"]}"#.to_vec(),
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], -32602);

    let (_, body) = post_bytes(
        &node.url,
        br#"{"jsonrpc":"2.0","id":1,"method":"eth_noSuchMethod","params":[]}"#.to_vec(),
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], -32601);

    // Still serving.
    assert_eq!(node.quantity("eth_chainId", json!([])), CHAIN_ID as u128);
}
