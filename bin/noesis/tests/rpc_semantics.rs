//! JSON-RPC semantics beyond what the client suites exercise: state overrides,
//! historical reads, query limits and parameter errors.

mod common;

use alloy_primitives::Address;
use common::*;
use serde_json::json;

#[test]
fn state_overrides_historical_reads_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path(), &[]);
    let target = Address::repeat_byte(0x77);

    // eth_call with overridden code (returns 42) and balance.
    let code = "0x602a60005260206000f3";
    let out = node.call(
        "eth_call",
        json!([{"to": target}, "latest", {target.to_string(): {"code": code}}]),
    );
    assert_eq!(out, format!("0x{:064x}", 42));
    // BALANCE of an overridden account, read by code at another overridden address.
    let reader = Address::repeat_byte(0x78);
    // PUSH20 target BALANCE PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
    let balance_code = format!(
        "0x73{}3160005260206000f3",
        alloy_primitives::hex::encode(target)
    );
    let out = node.call(
        "eth_call",
        json!([{"to": reader}, "latest", {reader.to_string(): {"code": balance_code}, target.to_string(): {"balance": "0x1234"}}]),
    );
    assert_eq!(out, format!("0x{:064x}", 0x1234));
    // Without overrides the same call sees no code.
    assert_eq!(
        node.call("eth_call", json!([{"to": target}, "latest"])),
        "0x"
    );
    let err = node
        .try_call(
            "eth_call",
            json!([{"to": target}, "latest", {target.to_string(): {"state": {}, "stateDiff": {}}}]),
        )
        .unwrap_err();
    assert_eq!(err["code"], -32602);

    // Historical balance: block 1 vs block 2.
    let alice = dev_signer(3);
    for nonce in 0..2 {
        let hash = node.call(
            "eth_sendRawTransaction",
            json!([transfer(&alice, nonce, target, 1000)]),
        );
        node.receipt(hash.as_str().unwrap());
    }
    assert_eq!(
        node.quantity("eth_getBalance", json!([target, "0x1"])),
        1000
    );
    assert_eq!(
        node.quantity("eth_getBalance", json!([target, "latest"])),
        2000
    );
    assert_eq!(
        node.quantity("eth_getBalance", json!([target, "earliest"])),
        0
    );
    let err = node
        .try_call("eth_getBalance", json!([target, "0x99999"]))
        .unwrap_err();
    assert_eq!(err["message"], "header not found");

    // Estimates are exact for transfers.
    assert_eq!(
        node.quantity(
            "eth_estimateGas",
            json!([{"from": alice.address(), "to": target, "value": "0x1"}])
        ),
        21_000
    );

    // Parameter errors and limits.
    let err = node
        .try_call("eth_feeHistory", json!(["0x4", "latest", [90, 10]]))
        .unwrap_err();
    assert_eq!(err["code"], -32602);
    let err = node
        .try_call(
            "eth_getLogs",
            json!([{"fromBlock": "0x2", "toBlock": "0x1"}]),
        )
        .unwrap_err();
    assert_eq!(err["code"], -32602);
    let err = node
        .try_call("eth_getFilterChanges", json!(["0x999"]))
        .unwrap_err();
    assert_eq!(err["message"], "filter not found");
    // Subscriptions need a WebSocket: over HTTP they are an error, not a hang.
    assert!(node.try_call("eth_subscribe", json!(["newHeads"])).is_err());
}

#[test]
fn eth_send_transaction_signs_for_dev_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path(), &["--block-time", "3600"]);
    let from = dev_signer(4).address();
    // Several in a row without gas or nonce, before any is mined: nonces follow the pool.
    let mut hashes = Vec::new();
    for _ in 0..3 {
        hashes.push(node.call(
            "eth_sendTransaction",
            json!([{"from": from, "to": Address::repeat_byte(5), "value": "0x1"}]),
        ));
    }
    assert_eq!(
        node.quantity("eth_getTransactionCount", json!([from, "pending"])),
        3
    );
    // A creation: no "to".
    node.call(
        "eth_sendTransaction",
        json!([{"from": from, "data": "0x600a600c600039600a6000f3602a60005260206000f3"}]),
    );
    assert_eq!(
        node.quantity("eth_getTransactionCount", json!([from, "pending"])),
        4
    );
    // A revert surfaces as code 3 from the estimate.
    let err = node
        .try_call(
            "eth_sendTransaction",
            json!([{"from": from, "data": "0x60006000fd"}]),
        )
        .unwrap_err();
    assert_eq!(err["code"], 3);
    // Not a dev account.
    let err = node
        .try_call(
            "eth_sendTransaction",
            json!([{"from": Address::repeat_byte(1), "to": from}]),
        )
        .unwrap_err();
    assert_eq!(err["code"], -32602);
}
