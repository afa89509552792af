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

/// Reads the first line a child prints as JSON.
fn first_line(child: &mut Child) -> Value {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("printed {line:?}: {e}"))
}

/// Starts a miner and returns it with the JSON line it prints once serving.
fn start_miner(rpc: &str, netuid: &str, key: u32, port: u16) -> (Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_noesis"))
        .args(["miner", "--rpc", rpc, "--netuid", netuid, "--threads", "2"])
        .args(["--key", &key_hex(key)])
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
    let (mut miner, announced) = start_miner(&node.url, &netuid, 3, port);
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
    let (mut again, announced) = start_miner(&node.url, &netuid, 3, port);
    assert_eq!(announced["uid"].as_u64(), Some(uid));
    let after = node.quantity("eth_getBalance", json!([dev_signer(3).address(), "latest"]));
    assert!(
        balance - after < 10u128.pow(16),
        "a restart paid a registration again"
    );
    again.kill().unwrap();
    again.wait().unwrap();
}

fn ask(gateway: u16, body: Value) -> (u16, Value) {
    let (status, text) = post_bytes(
        &format!("http://127.0.0.1:{gateway}/v1/chat/completions"),
        body.to_string().into_bytes(),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The gateway in front of two honest miners and one whose endpoint answers with
/// receipts signed by another key (it announces the first miner's port): every answer
/// comes from an honest miner with a receipt `noesis ai verify` accepts; when a miner is
/// killed the gateway answers from the other; errors have OpenAI's shape.
#[test]
fn the_gateway_routes_to_honest_miners_and_survives_faults() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(dir.path(), &[]);
    let created = noesis(&["subnet", "create", "--rpc", &node.url]);
    assert!(created.status.success(), "{created:?}");
    let netuid = serde_json::from_slice::<Value>(&created.stdout).unwrap()["netuid"].to_string();
    let (port_a, port_b) = (free_port(), free_port());
    let (mut a, a_line) = start_miner(&node.url, &netuid, 3, port_a);
    let (mut b, b_line) = start_miner(&node.url, &netuid, 4, port_b);
    let honest_uids = [a_line["uid"].clone(), b_line["uid"].clone()];
    // Key 5 (from a key file) registers and announces miner A's endpoint: its answers are
    // signed by key 3.
    let keyfile = dir.path().join("impostor.key");
    std::fs::write(&keyfile, format!("{}\n", key_hex(5))).unwrap();
    let keyfile = keyfile.to_str().unwrap().to_string();
    for args in [
        vec!["neuron", "register", "--netuid", &netuid],
        vec!["neuron", "serve", "--netuid", &netuid, "--ip", "127.0.0.1"],
    ] {
        let port = port_a.to_string();
        let mut args = args.clone();
        if args[1] == "serve" {
            args.extend(["--port", &port]);
        }
        args.extend(["--rpc", &node.url, "--keyfile", &keyfile]);
        let out = noesis(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let gateway_port = free_port();
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_noesis"))
        .args(["gateway", "--rpc", &node.url, "--netuid", &netuid])
        .args([
            "--listen",
            &format!("127.0.0.1:{gateway_port}"),
            "--attempts",
            "3",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gateway");
    let started = first_line(&mut gateway);
    assert_eq!(started["miners"], 3, "{started}");

    let metagraph = node.call("noesis_metagraph", json!([netuid.parse::<u16>().unwrap()]));
    let impostor_hotkey = format!("{:#x}", dev_signer(5).address().into_word());
    // The impostor is a registered miner with an endpoint.
    let impostor_uid = metagraph["neurons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["hotkey"].as_str() == Some(impostor_hotkey.as_str()))
        .filter(|n| n["axon"]["port"] == port_a)
        .expect("the impostor's uid, announcing miner A's port")["uid"]
        .clone();

    let question = |seed: u64| {
        json!({
            "model": "smollm2-135m-instruct-q4_1",
            "messages": [{"role": "user", "content": "Name a planet."}],
            "max_tokens": 8,
            "temperature": 0.9,
            "seed": seed
        })
    };
    let mut answered_by = std::collections::BTreeSet::new();
    let impostor_rejections = || {
        let records: Value = serde_json::from_str(
            &ureq::get(&format!("http://127.0.0.1:{gateway_port}/noesis/miners"))
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap(),
        )
        .unwrap();
        let signer = format!("{:#x}", dev_signer(5).address());
        records["miners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["signer"].as_str().map(str::to_lowercase) == Some(signer.clone()))
            .map(|m| m["record"].clone())
            .unwrap()
    };
    let mut seed = 0;
    // Ask until the gateway has tried the impostor at least once (a third of the picks).
    while seed < 8 || impostor_rejections()["rejected"] == 0 {
        assert!(seed < 60, "the impostor was never tried");
        let (status, answer) = ask(gateway_port, question(seed));
        assert_eq!(status, 200, "{answer}");
        let receipt = &answer["noesis"]["receipt"];
        // The impostor's answers are miner A's (signed by key 3): the gateway must never
        // return one as the impostor's uid.
        let uid = answer["noesis"]["miner_uid"].clone();
        assert_ne!(uid, impostor_uid, "an answer attributed to the impostor");
        answered_by.insert(uid.to_string());
        if seed == 0 {
            let path = dir.path().join("gateway-receipt.json");
            std::fs::write(&path, receipt.to_string()).unwrap();
            let verified = noesis(&["ai", "verify", path.to_str().unwrap()]);
            assert!(verified.status.success(), "{verified:?}");
        }
        seed += 1;
    }
    let impostor = impostor_rejections();
    assert_eq!(impostor["answered"], 0, "{impostor}");
    assert!(
        impostor["last_rejection"]
            .as_str()
            .unwrap()
            .contains("not by the miner's hotkey"),
        "{impostor}"
    );
    let honest: std::collections::BTreeSet<String> =
        honest_uids.iter().map(Value::to_string).collect();
    assert!(
        answered_by.is_subset(&honest),
        "{answered_by:?} ⊄ {honest:?}"
    );

    // Errors in OpenAI's shape.
    let (status, body) = ask(
        gateway_port,
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");
    let (status, body) = ask(gateway_port, json!({"model": "smollm2-135m-instruct-q4_1"}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // Miner A dies: every request is still answered, by B.
    a.kill().unwrap();
    a.wait().unwrap();
    for seed in 10..14 {
        let (status, answer) = ask(gateway_port, question(seed));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["noesis"]["receipt"]["receipt"]["signer"]
                .as_str()
                .unwrap()
                .to_lowercase(),
            format!("{:#x}", dev_signer(4).address())
        );
    }
    // B dies too: 503 with OpenAI's shape, not a hang.
    b.kill().unwrap();
    b.wait().unwrap();
    let (status, body) = ask(gateway_port, question(20));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "no_miner_available");
    gateway.kill().unwrap();
    gateway.wait().unwrap();
}
