//! A 4-validator `noesis testnet` with a follower, all real processes: it finalizes
//! blocks with transfers sent to any node (the follower forwards its own), keeps going
//! with one validator and the follower killed, and both, restarted, catch up to the
//! same blocks and state.

mod common;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use alloy_primitives::Address;
use common::{dev_signer, transfer};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::{Value, json};

const VALIDATORS: usize = 4;
/// Node 4 is a follower.
const FOLLOWER: usize = 4;
const NODES: usize = VALIDATORS + 1;
/// The whole scenario must finish within this.
const BUDGET: Duration = Duration::from_secs(90);

/// A testnet directory whose nodes are SIGKILLed when the test ends, passed or not.
struct Testnet {
    dir: tempfile::TempDir,
    rpc: Vec<String>,
    started: Instant,
    agent: ureq::Agent,
}

impl Drop for Testnet {
    fn drop(&mut self) {
        for i in 0..NODES {
            if let Some(pid) = self.pid(i) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

impl Testnet {
    fn init() -> Testnet {
        let dir = tempfile::tempdir().expect("temp dir");
        let rpc_base = free_ports(NODES, 0);
        let p2p_base = free_ports(NODES, rpc_base);
        let net = Testnet {
            rpc: (0..NODES)
                .map(|i| format!("http://127.0.0.1:{}", rpc_base as usize + i))
                .collect(),
            dir,
            started: Instant::now(),
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(3)))
                .build()
                .into(),
        };
        net.cli(&[
            "init",
            "--validators",
            &VALIDATORS.to_string(),
            "--followers",
            "1",
            "--base-rpc-port",
            &rpc_base.to_string(),
            "--base-p2p-port",
            &p2p_base.to_string(),
        ]);
        net
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `noesis testnet <args> --dir D`; returns its stdout.
    fn cli(&self, args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_noesis"))
            .arg("testnet")
            .args(args)
            .arg("--dir")
            .arg(self.path())
            .env("RUST_LOG", "warn")
            .output()
            .expect("run noesis testnet");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "noesis testnet {args:?} failed:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// The pid in node `node`'s pid file, if that process still runs this testnet's
    /// node (so the guard never signals a process that reused the pid).
    fn pid(&self, node: usize) -> Option<i32> {
        let file = self.path().join(format!("node-{node}/pid"));
        let pid: i32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let config = format!("node-{node}/config.toml");
        String::from_utf8_lossy(&cmdline)
            .contains(&config)
            .then_some(pid)
    }

    fn try_call(&self, node: usize, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response: Value = self
            .agent
            .post(&self.rpc[node])
            .send_json(&body)
            .map_err(|e| e.to_string())?
            .body_mut()
            .read_json()
            .map_err(|e| e.to_string())?;
        match response.get("error") {
            Some(error) => Err(error.to_string()),
            None => Ok(response.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    fn call(&self, node: usize, method: &str, params: Value) -> Value {
        self.try_call(node, method, params.clone())
            .unwrap_or_else(|e| panic!("node {node}: {method}({params}) failed: {e}"))
    }

    fn height(&self, node: usize) -> Option<u64> {
        self.try_call(node, "eth_blockNumber", json!([]))
            .ok()
            .and_then(|v| quantity(&v))
    }

    /// Polls `done` until it holds; fails with `what` and every node's log tail when
    /// the test's budget runs out.
    fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        while !done() {
            if self.started.elapsed() > BUDGET {
                let heights: Vec<Option<u64>> = (0..NODES).map(|i| self.height(i)).collect();
                let logs: String = (0..NODES)
                    .map(|i| {
                        let log = self.path().join(format!("node-{i}/node.log"));
                        format!("--- node-{i}/node.log\n{}\n", tail(&log, 8))
                    })
                    .collect();
                panic!(
                    "timed out after {BUDGET:?} waiting until {what}; heights {heights:?}\n{logs}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends a transfer of `value` wei from dev account `from` with `nonce` to `to`
    /// through `node`; returns its hash.
    fn send(&self, node: usize, from: u32, nonce: u64, to: Address, value: u64) -> String {
        let raw = transfer(&dev_signer(from), nonce, to, value);
        let hash = self.call(node, "eth_sendRawTransaction", json!([raw]));
        hash.as_str().expect("hash").to_string()
    }

    /// Waits until `node` has the receipt of `hash`; returns its block number.
    fn mined(&self, node: usize, hash: &str) -> u64 {
        let mut block = None;
        self.wait_until(&format!("node {node} has the receipt of {hash}"), || {
            block = self
                .try_call(node, "eth_getTransactionReceipt", json!([hash]))
                .ok()
                .filter(|r| !r.is_null())
                .map(|r| {
                    assert_eq!(r["status"], "0x1", "transfer {hash} failed: {r}");
                    quantity(&r["blockNumber"]).expect("block number")
                });
            block.is_some()
        });
        block.unwrap_or_default()
    }

    fn balance(&self, node: usize, address: Address) -> u128 {
        let v = self.call(node, "eth_getBalance", json!([address, "latest"]));
        u128::from_str_radix(v.as_str().expect("hex").trim_start_matches("0x"), 16).unwrap()
    }

    /// Hash and state root of block `number` at `node`.
    fn block(&self, node: usize, number: u64) -> (Value, Value) {
        let b = self.call(
            node,
            "eth_getBlockByNumber",
            json!([format!("0x{number:x}"), false]),
        );
        (b["hash"].clone(), b["stateRoot"].clone())
    }
}

#[test]
fn four_validators_and_a_follower_finalize_survive_a_crash_and_catch_up() {
    let net = Testnet::init();
    let started = net.cli(&["start"]);
    assert_eq!(
        started.matches(" started (pid ").count(),
        NODES,
        "{started}"
    );
    net.wait_until("every node reaches height 3", || {
        (0..NODES).all(|i| net.height(i).is_some_and(|h| h >= 3))
    });

    // The RPC of a validator: its consensus view, and one head for every tag.
    let consensus = net.call(0, "noesis_consensus", json!([]));
    assert_eq!(
        consensus["validators"].as_array().map(Vec::len),
        Some(VALIDATORS),
        "{consensus}"
    );
    assert_eq!(consensus["role"], "validator");
    let following = net.call(FOLLOWER, "noesis_consensus", json!([]));
    assert_eq!(following["role"], "follower", "{following}");
    assert_eq!(
        following["validators"].as_array().map(Vec::len),
        Some(VALIDATORS)
    );
    // Validators serve finalized blocks with certificates; followers serve none.
    let served = net.call(2, "noesis_getFinalizedBlocks", json!(["0x1", "0x2"]));
    assert_eq!(
        served["blocks"].as_array().map(Vec::len),
        Some(2),
        "{served}"
    );
    let err = net
        .try_call(FOLLOWER, "noesis_getFinalizedBlocks", json!(["0x1"]))
        .expect_err("a follower stores no certificates");
    assert!(err.contains("ask a validator"), "{err}");
    let finalized = net.call(1, "eth_getBlockByNumber", json!(["finalized", false]));
    assert!(quantity(&finalized["number"]).is_some_and(|n| n >= 3));

    // Transfers through node 0 from three dev accounts reach every validator's pool.
    let to = Address::repeat_byte(0x77);
    let mut nonces = [0u64; 3];
    let mut expected = 0u128;
    let mut send = |net: &Testnet, node: usize, account: usize| {
        let hash = net.send(
            node,
            account as u32 + 1,
            nonces[account],
            to,
            1_000 + node as u64,
        );
        nonces[account] += 1;
        expected += 1_000 + node as u128;
        hash
    };
    let first: Vec<String> = (0..3).map(|a| send(&net, 0, a)).collect();
    for hash in &first {
        net.mined(0, hash);
    }
    // One through the follower: it forwards the transfer to a validator, and commits
    // the block that includes it.
    let forwarded = send(&net, FOLLOWER, 0);
    let block = net.mined(FOLLOWER, &forwarded);
    assert_eq!(net.mined(0, &forwarded), block);

    // Node 3 and the follower die: three of four validators still finalize.
    for node in [3, FOLLOWER] {
        let victim = net.pid(node).expect("pid");
        kill(Pid::from_raw(victim), Signal::SIGKILL).expect("SIGKILL");
    }
    let at_crash = net.height(0).expect("node 0 height");
    let mut hashes = Vec::new();
    for round in 0..2 {
        for node in 0..3 {
            hashes.push((node, send(&net, node, (node + round) % 3)));
        }
    }
    let mut last = 0;
    for (node, hash) in &hashes {
        last = last.max(net.mined(*node, hash));
    }
    assert!(last > at_crash, "the chain advanced without node 3");
    net.wait_until("nodes 0-2 have every transfer", || {
        (0..3).all(|i| net.height(i).is_some_and(|h| h >= last))
    });
    for node in 0..3 {
        assert_eq!(
            net.balance(node, to),
            expected,
            "node {node}'s balance of {to}"
        );
    }

    // `start` again restarts only node 3 and the follower, which catch up.
    let restarted = net.cli(&["start"]);
    assert_eq!(
        restarted.matches("already running").count(),
        3,
        "{restarted}"
    );
    assert!(restarted.contains("node-3 started"), "{restarted}");
    assert!(restarted.contains("node-4 started"), "{restarted}");
    let target = (0..3).filter_map(|i| net.height(i)).max().unwrap_or(last);
    net.wait_until(
        &format!("node 3 and the follower catch up to height {target}"),
        || {
            [3, FOLLOWER]
                .iter()
                .all(|&n| net.height(n).is_some_and(|h| h >= target))
        },
    );
    let reference = net.block(0, target);
    for node in 1..NODES {
        assert_eq!(
            net.block(node, target),
            reference,
            "node {node}'s block {target} (hash, state root) differs from node 0's"
        );
    }
    assert_eq!(net.balance(3, to), expected);
    assert_eq!(net.balance(FOLLOWER, to), expected);
    net.wait_until("node 3 and the follower are no longer syncing", || {
        [3, FOLLOWER]
            .iter()
            .all(|&n| net.try_call(n, "eth_syncing", json!([])).ok() == Some(json!(false)))
    });

    let status: Value = serde_json::from_str(&net.cli(&["status"])).expect("status JSON");
    let nodes = status["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), NODES);
    assert!(
        nodes.iter().all(|n| n["height"].as_u64() >= Some(target)),
        "{status}"
    );
    assert_eq!(nodes[FOLLOWER]["role"], "follower", "{status}");
    assert_eq!(nodes[0]["role"], "validator", "{status}");

    let stopped = net.cli(&["stop"]);
    assert_eq!(
        stopped.matches(" stopped (pid ").count() + stopped.matches(" killed (pid ").count(),
        NODES,
        "{stopped}"
    );
    assert!(
        (0..NODES).all(|i| net.pid(i).is_none()),
        "pid files removed"
    );
    assert!(
        net.started.elapsed() < BUDGET,
        "took {:?}",
        net.started.elapsed()
    );
}

fn quantity(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// The first of `count` consecutive free TCP ports on loopback, none within `count`
/// of `avoid`.
fn free_ports(count: usize, avoid: u16) -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as usize)
        .unwrap_or(0);
    let seed = std::process::id() as usize ^ nanos;
    for attempt in 0..1000usize {
        // Below Linux's ephemeral range (32768+), where outgoing connections take ports.
        let base = 20_000 + (seed.wrapping_mul(7919) + attempt * 104_729) % 12_000;
        let base = base as u16;
        if base.abs_diff(avoid) < 2 * count as u16 {
            continue;
        }
        let free =
            (0..count as u16).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no {count} consecutive free ports");
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
