//! Automine never stalls under load: 50,000 transfers from 100 senders, submitted as
//! fast as JSON-RPC batches allow, are all mined (anvil's automine stops after a few
//! thousand, foundry issue #10122).

mod common;

use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256, keccak256};
use alloy_signer_local::PrivateKeySigner;
use common::*;
use rayon::prelude::*;
use serde_json::{Value, json};

const SENDERS: usize = 100;
const PER_SENDER: usize = 500;

#[test]
fn fifty_thousand_transfers_are_all_mined() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path(), &[]);
    let senders: Vec<PrivateKeySigner> = (0..SENDERS)
        .map(|i| PrivateKeySigner::from_bytes(&keccak256(format!("load-{i}"))).unwrap())
        .collect();
    // Fund the senders from the dev accounts.
    let funding: Vec<Value> = senders
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let dev = dev_signer((i % 10) as u32);
            let raw = sign(
                &dev,
                eip1559(
                    (i / 10) as u64,
                    Some(s.address()),
                    U256::from(10u128.pow(18)),
                    Default::default(),
                    21_000,
                ),
            );
            json!({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]})
        })
        .collect();
    for r in node
        .raw(&Value::Array(funding))
        .unwrap()
        .as_array()
        .unwrap()
    {
        assert!(r.get("error").is_none(), "{r}");
    }
    let last_funding = dev_signer(9);
    let started = Instant::now();
    while node.quantity(
        "eth_getTransactionCount",
        json!([last_funding.address(), "latest"]),
    ) < (SENDERS / 10) as u128
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "funding not mined"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let raws: Vec<String> = (0..SENDERS * PER_SENDER)
        .into_par_iter()
        .map(|i| {
            let (s, nonce) = (i % SENDERS, (i / SENDERS) as u64);
            transfer(
                &senders[s],
                nonce,
                Address::from_word(keccak256((i as u64).to_be_bytes())),
                1,
            )
        })
        .collect();
    let started = Instant::now();
    for chunk in raws.chunks(1000) {
        let batch: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, raw)| json!({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]}))
            .collect();
        for r in node.raw(&Value::Array(batch)).unwrap().as_array().unwrap() {
            assert!(r.get("error").is_none(), "{r}");
        }
    }
    // Every sender's nonce reaches PER_SENDER: every transaction was mined.
    loop {
        let batch: Vec<Value> = senders
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionCount", "params": [s.address(), "latest"]}))
            .collect();
        let counts = node.raw(&Value::Array(batch)).unwrap();
        let mined: u64 = counts
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                u64::from_str_radix(r["result"].as_str().unwrap().trim_start_matches("0x"), 16)
                    .unwrap()
            })
            .sum();
        if mined as usize == SENDERS * PER_SENDER {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "automine stalled at {mined} mined transactions"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "50,000 transfers mined in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The pool is empty and the node still answers.
    let status = node.call("eth_getBlockByNumber", json!(["latest", false]));
    assert!(status["number"].is_string());
}
