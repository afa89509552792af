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
