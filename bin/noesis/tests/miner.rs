//! `noesis miner` against a real `noesis dev`, through the public JSON-RPC only: it
//! registers on a fresh subnet, announces its endpoint (read back from
//! `noesis_metagraph`), answers an OpenAI-style chat completion with a receipt that
//! `noesis ai verify` accepts, and stays registered (no second burn) when restarted.
//! Needs the SmolLM2 model installed (`noesis model fetch`), as the AI tests do.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{DevNode, dev_signer, free_port, post_bytes};
use serde_json::{Value, json};

fn noesis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_noesis"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run noesis")
}

fn key_hex(i: u32) -> String {
    format!(
        "0x{}",
        alloy_primitives::hex::encode(dev_signer(i).to_bytes())
    )
}

/// Starts a miner and returns it with the JSON line it prints once serving.
fn start_miner(rpc: &str, netuid: &str, port: u16) -> (Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_noesis"))
        .args(["miner", "--rpc", rpc, "--netuid", netuid, "--threads", "2"])
        .args(["--key", &key_hex(3)])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn miner");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let announced: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("miner printed {line:?}: {e}"));
    (child, announced)
}

#[test]
fn a_miner_registers_announces_and_answers_with_a_verifiable_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path(), &[]);
    let created = noesis(&["subnet", "create", "--rpc", &node.url]);
    assert!(created.status.success(), "{created:?}");
    let netuid = serde_json::from_slice::<Value>(&created.stdout).unwrap()["netuid"].to_string();

    let port = free_port();
    let (mut miner, announced) = start_miner(&node.url, &netuid, port);
    let uid = announced["uid"].as_u64().expect("a uid");
    assert_eq!(announced["model"], "smollm2-135m-instruct-q4_1");

    let metagraph = node.call("noesis_metagraph", json!([netuid.parse::<u16>().unwrap()]));
    let neuron = metagraph["neurons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["uid"].as_u64() == Some(uid))
        .cloned()
        .expect("the miner's uid in the metagraph");
    assert_eq!(neuron["hotkey"], announced["hotkey"]);
    assert_eq!(neuron["axon"]["ip"], "127.0.0.1", "{neuron}");
    assert_eq!(neuron["axon"]["port"], port, "{neuron}");

    let (status, body) = post_bytes(
        &format!("http://127.0.0.1:{port}/v1/chat/completions"),
        json!({
            "model": "smollm2-135m-instruct-q4_1",
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 16,
            "temperature": 0
        })
        .to_string()
        .into_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let receipt_path = dir.path().join("receipt.json");
    std::fs::write(&receipt_path, answer["noesis"]["receipt"].to_string()).unwrap();
    let verified = noesis(&["ai", "verify", receipt_path.to_str().unwrap()]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let verdict: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(verdict["verdict"], "accept");
    // The receipt names the miner's key.
    assert_eq!(
        answer["noesis"]["receipt"]["receipt"]["signer"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        format!("{:#x}", dev_signer(3).address())
    );
    miner.kill().unwrap();
    miner.wait().unwrap();

    // A restart keeps the registration: same uid, no second burn.
    let balance = node.quantity("eth_getBalance", json!([dev_signer(3).address(), "latest"]));
    let port = free_port();
    let (mut again, announced) = start_miner(&node.url, &netuid, port);
    assert_eq!(announced["uid"].as_u64(), Some(uid));
    let after = node.quantity("eth_getBalance", json!([dev_signer(3).address(), "latest"]));
    assert!(
        balance - after < 10u128.pow(16),
        "a restart paid a registration again"
    );
    again.kill().unwrap();
    again.wait().unwrap();
}
