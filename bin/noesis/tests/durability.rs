//! A committed block survives SIGKILL: same head, same state root, every mined
//! transaction intact. A damaged store is refused with a clear message.

mod common;

use std::process::Command;

use alloy_primitives::Address;
use common::*;
use serde_json::{Value, json};

#[test]
fn sigkill_mid_stream_loses_nothing_that_was_mined() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = DevNode::start(dir.path(), &[]);
    let senders: Vec<_> = (1..5).map(dev_signer).collect();
    let mut mined: Vec<(String, Value)> = Vec::new();
    let mut sent = Vec::new();
    // Send in waves; SIGKILL while the last wave is still being mined.
    for wave in 0..6u64 {
        for (i, signer) in senders.iter().enumerate() {
            for k in 0..10u64 {
                let nonce = wave * 10 + k;
                let to = Address::repeat_byte(0x10 + i as u8);
                let hash = node.call(
                    "eth_sendRawTransaction",
                    json!([transfer(signer, nonce, to, 1 + nonce)]),
                );
                sent.push(hash.as_str().unwrap().to_string());
            }
        }
        if wave < 5 {
            for hash in &sent[mined.len()..] {
                let receipt = node.receipt(hash);
                mined.push((hash.clone(), receipt));
            }
        }
    }
    let head_before = node.call("eth_getBlockByNumber", json!(["latest", false]));
    node.kill();

    let node = DevNode::start(dir.path(), &[]);
    let head_after = node.call("eth_getBlockByNumber", json!(["latest", false]));
    let n = |b: &Value| {
        u64::from_str_radix(b["number"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    };
    assert!(n(&head_after) >= n(&head_before), "head went back");
    // Every receipt seen before the kill is still there, in the same block.
    for (hash, receipt) in &mined {
        let again = node.call("eth_getTransactionReceipt", json!([hash]));
        assert_eq!(again["blockHash"], receipt["blockHash"], "{hash}");
        assert_eq!(again["status"], "0x1");
    }
    // The block seen as head before the kill is unchanged, state root included.
    let same = node.call(
        "eth_getBlockByNumber",
        json!([head_before["number"], false]),
    );
    assert_eq!(same["hash"], head_before["hash"]);
    assert_eq!(same["stateRoot"], head_before["stateRoot"]);
    // Nonces continue from the chain: the node keeps working.
    let signer = &senders[0];
    let nonce = node.quantity(
        "eth_getTransactionCount",
        json!([signer.address(), "latest"]),
    ) as u64;
    assert!(nonce >= 50);
    let hash = node.call(
        "eth_sendRawTransaction",
        json!([transfer(signer, nonce, Address::repeat_byte(9), 1)]),
    );
    node.receipt(hash.as_str().unwrap());
    // Balances are consistent with the mined transfers: recipient i got 1+nonce for each.
    for (i, _) in senders.iter().enumerate() {
        let to = Address::repeat_byte(0x10 + i as u8);
        let balance = node.quantity("eth_getBalance", json!([to, "latest"]));
        let count = node.quantity(
            "eth_getTransactionCount",
            json!([senders[i].address(), "latest"]),
        ) as u64;
        let count = if i == 0 { count - 1 } else { count };
        let expected: u64 = (0..count).map(|nonce| 1 + nonce).sum();
        assert_eq!(balance, expected as u128, "recipient {i}");
    }
}

fn start_fails(dir: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_noesis"))
        .args(["dev", "--no-ai", "--datadir"])
        .arg(dir)
        .args(["--http-port", &free_port().to_string()])
        .output()
        .unwrap();
    assert!(!output.status.success(), "a damaged store must not load");
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn damaged_stores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let node = DevNode::start(dir.path(), &[]);
        let signer = dev_signer(1);
        for nonce in 0..20 {
            let hash = node.call(
                "eth_sendRawTransaction",
                json!([transfer(&signer, nonce, Address::repeat_byte(7), 1)]),
            );
            node.receipt(hash.as_str().unwrap());
        }
    }
    let file = dir.path().join("chain.redb");
    let bytes = std::fs::read(&file).unwrap();

    // Truncated.
    std::fs::write(&file, &bytes[..bytes.len() / 3]).unwrap();
    let err = start_fails(dir.path());
    assert!(err.contains("corrupt"), "{err}");

    // A damaged file header.
    let mut damaged = bytes.clone();
    for b in &mut damaged[..512] {
        *b ^= 0x5a;
    }
    std::fs::write(&file, &damaged).unwrap();
    let err = start_fails(dir.path());
    assert!(err.contains("corrupt"), "{err}");

    // Damage anywhere else: live pages are checksummed, so the store is either refused
    // or (damage in free space) served with every mined transaction intact. Never a
    // panic, never wrong data.
    for fraction in [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95] {
        let mut damaged = bytes.clone();
        let at = (damaged.len() as f64 * fraction) as usize;
        let end = (at + 4096).min(damaged.len());
        for b in &mut damaged[at..end] {
            *b ^= 0x5a;
        }
        std::fs::write(&file, &damaged).unwrap();
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_noesis"))
            .args(["dev", "--no-ai", "--datadir"])
            .arg(dir.path())
            .args(["--http-port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                assert!(!status.success());
                assert!(
                    stderr.contains("corrupt") && !stderr.contains("panicked"),
                    "{stderr}"
                );
                break;
            }
            let probe = DevNodeProbe(format!("http://127.0.0.1:{port}"));
            if let Some(nonce) = probe.nonce(dev_signer(1).address()) {
                assert_eq!(nonce, 20, "damage at {fraction} served wrong data");
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "neither refused nor served"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    // Never a panic: the original bytes load again.
    std::fs::write(&file, &bytes).unwrap();
    let node = DevNode::start(dir.path(), &[]);
    assert_eq!(
        node.quantity(
            "eth_getTransactionCount",
            json!([dev_signer(1).address(), "latest"])
        ),
        20
    );
}

/// Asks a node that may or may not be up for a nonce.
struct DevNodeProbe(String);

impl DevNodeProbe {
    fn nonce(&self, address: Address) -> Option<u64> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionCount", "params": [address, "latest"]});
        let mut response = ureq::post(&self.0).send_json(&body).ok()?;
        let v: Value = response.body_mut().read_json().ok()?;
        u64::from_str_radix(v["result"].as_str()?.trim_start_matches("0x"), 16).ok()
    }
}
