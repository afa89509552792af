//! `chain-bench`: Noesis and anvil side by side, in one run, on the same workload.
//!
//! 1. Ingest: N pre-signed EIP-1559 transfers from 100 senders, submitted with
//!    `eth_sendRawTransaction` in JSON-RPC batches, timed until the blocks since the
//!    start hold every transaction, then every receipt is checked.
//! 2. Reads: `eth_getBalance` and `eth_call` requests per second at 16 connections.
//!
//! Reports both sides, the ratio, and each process's peak RSS.

use std::{
    collections::HashSet,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use anyhow::{Context, bail};
use clap::Parser;
use rayon::prelude::*;
use serde_json::{Value, json};

/// Benchmark Noesis against anvil.
#[derive(Parser, Debug)]
struct Args {
    /// The noesis binary.
    #[arg(long)]
    noesis: PathBuf,
    /// The anvil binary (npm @foundry-rs/anvil-linux-amd64); omit to run Noesis alone.
    #[arg(long)]
    anvil: Option<PathBuf>,
    /// Transfers in the ingest run.
    #[arg(long, default_value_t = 50_000)]
    txs: usize,
    /// Sending accounts.
    #[arg(long, default_value_t = 100)]
    senders: usize,
    /// Calls per JSON-RPC batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent connections for the read benchmark.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds of one read window (one method on one node).
    #[arg(long, default_value_t = 1)]
    read_seconds: u64,
    /// Read windows per method and node; the nodes alternate window by window (and which
    /// goes first alternates by round), so a change in the machine's load hits both.
    #[arg(long, default_value_t = 7)]
    read_rounds: usize,
    /// Write Noesis's block log (`RUST_LOG=noesis_node=info`) to this file.
    #[arg(long)]
    noesis_log: Option<PathBuf>,
}

struct Peer {
    name: &'static str,
    child: Child,
    url: String,
    chain_id: u64,
    _dir: Option<PathBuf>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self._dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Peer {
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// CPU seconds (user + system) the process has used so far.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime and stime
        // are the 12th and 13th, in clock ticks (100 per second on Linux).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        ticks(11)
            .zip(ticks(12))
            .map_or(0.0, |(u, s)| (u + s) / 100.0)
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Rpc {
    http: reqwest::Client,
    url: String,
}

impl Rpc {
    fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap_or_default(),
            url: url.into(),
        }
    }

    /// Posts a JSON body; returns the raw reply.
    async fn post(&self, body: Vec<u8>) -> anyhow::Result<Bytes> {
        let reply = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?
            .bytes()
            .await?;
        Ok(Bytes::from(reply))
    }

    async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let v: Value = serde_json::from_slice(&self.post(serde_json::to_vec(&body)?).await?)?;
        if let Some(e) = v.get("error") {
            bail!("{method}: {e}");
        }
        Ok(v["result"].clone())
    }

    /// Posts a serialized batch; returns how many of its calls failed.
    async fn raw_batch(&self, body: Vec<u8>) -> anyhow::Result<usize> {
        /// A reply, parsed no further than whether it is an error.
        #[derive(serde::Deserialize)]
        struct Reply {
            #[serde(default)]
            error: Option<serde::de::IgnoredAny>,
        }
        let replies: Vec<Reply> = serde_json::from_slice(&self.post(body).await?)?;
        Ok(replies.iter().filter(|r| r.error.is_some()).count())
    }

    async fn batch(&self, calls: &[(String, Value)]) -> anyhow::Result<Vec<Value>> {
        let body: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| json!({"jsonrpc": "2.0", "id": i, "method": m, "params": p}))
            .collect();
        let mut v: Vec<Value> =
            serde_json::from_slice(&self.post(serde_json::to_vec(&body)?).await?)?;
        v.sort_by_key(|r| r["id"].as_u64().unwrap_or(0));
        Ok(v)
    }
}

fn quantity(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}

async fn wait_ready(url: &str) -> anyhow::Result<u64> {
    let rpc = Rpc::new(url);
    let started = Instant::now();
    loop {
        if let Ok(id) = rpc.call("eth_chainId", json!([])).await {
            return Ok(quantity(&id));
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{url} did not answer within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Spawns a node on `port`, waits until it answers, and learns its chain id.
async fn launch(
    name: &'static str,
    mut command: Command,
    port: u16,
    dir: Option<PathBuf>,
) -> anyhow::Result<Peer> {
    let child = command
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    let mut peer = Peer {
        name,
        child,
        url: format!("http://127.0.0.1:{port}"),
        chain_id: 0,
        _dir: dir,
    };
    peer.chain_id = wait_ready(&peer.url).await?;
    Ok(peer)
}

async fn start_noesis(bin: &PathBuf, log: Option<&PathBuf>) -> anyhow::Result<Peer> {
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("noesis-bench-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut command = Command::new(bin);
    command
        .args(["dev", "--no-ai", "--datadir"])
        .arg(&dir)
        .args(["--http-port", &port.to_string()])
        // The same block gas limit as anvil's run below: the same workload on both.
        .args(["--gas-limit", "1000000000"])
        .env("RUST_LOG", "warn");
    match log {
        Some(log) => command
            .env("RUST_LOG", "noesis_node=info")
            .stderr(std::fs::File::create(log)?),
        None => command.stderr(Stdio::null()),
    };
    launch("noesis", command, port, Some(dir)).await
}

async fn start_anvil(bin: &PathBuf) -> anyhow::Result<Peer> {
    let port = free_port()?;
    let mut command = Command::new(bin);
    command
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--block-time",
            "1",
            "--gas-limit",
            "1000000000",
            "--hardfork",
            "osaka",
        ]);
    command.stderr(Stdio::null());
    launch("anvil", command, port, None).await
}

fn sign(signer: &PrivateKeySigner, tx: TxEip1559) -> String {
    let signature = signer
        .sign_hash_sync(&tx.signature_hash())
        .expect("signing cannot fail");
    let envelope: TxEnvelope = tx.into_signed(signature).into();
    format!(
        "0x{}",
        alloy_primitives::hex::encode(envelope.encoded_2718())
    )
}

fn transfer(chain_id: u64, nonce: u64, to: Address, value: U256) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value,
        input: Bytes::new(),
        ..Default::default()
    }
}

fn bench_senders(count: usize) -> Vec<PrivateKeySigner> {
    (0..count)
        .map(|i| {
            PrivateKeySigner::from_bytes(&keccak256(format!("noesis-bench-sender-{i}")))
                .expect("valid key")
        })
        .collect()
}

/// Funds the senders from the dev accounts and waits until they are funded.
async fn fund(peer: &Peer, senders: &[PrivateKeySigner]) -> anyhow::Result<()> {
    let rpc = Rpc::new(&peer.url);
    let dev = noesis_primitives::dev_accounts(10);
    let mut calls = Vec::new();
    for (i, sender) in senders.iter().enumerate() {
        let from = &dev[i % dev.len()];
        let signer = PrivateKeySigner::from_bytes(&from.private_key)?;
        let nonce = (i / dev.len()) as u64;
        let value = U256::from(10u64) * U256::from(10u64).pow(U256::from(18u64));
        calls.push((
            "eth_sendRawTransaction".to_string(),
            json!([sign(
                &signer,
                transfer(peer.chain_id, nonce, sender.address(), value)
            )]),
        ));
    }
    for r in rpc.batch(&calls).await? {
        if let Some(e) = r.get("error") {
            bail!("{}: funding failed: {e}", peer.name);
        }
    }
    let started = Instant::now();
    loop {
        let checks: Vec<(String, Value)> = senders
            .iter()
            .map(|s| ("eth_getBalance".to_string(), json!([s.address(), "latest"])))
            .collect();
        let funded = rpc
            .batch(&checks)
            .await?
            .iter()
            .all(|r| r["result"].as_str().is_some_and(|b| b != "0x0"));
        if funded {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("{}: senders were not funded within 120 s", peer.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct IngestResult {
    seconds: f64,
    tps: f64,
    /// The node's CPU seconds from the first submission to the last block.
    cpu_seconds: f64,
}

async fn ingest(peer: &Peer, args: &Args) -> anyhow::Result<IngestResult> {
    let senders = bench_senders(args.senders);
    fund(peer, &senders).await?;
    let per_sender = args.txs.div_ceil(args.senders);
    eprintln!(
        "[{}] signing {} transfers...",
        peer.name,
        per_sender * senders.len()
    );
    // Round-robin over senders so batches interleave accounts as real traffic does.
    let raws: Vec<String> = (0..per_sender * senders.len())
        .into_par_iter()
        .map(|i| {
            let (sender, nonce) = (i % senders.len(), (i / senders.len()) as u64);
            let to = Address::from_word(keccak256((i as u64).to_be_bytes()));
            sign(
                &senders[sender],
                transfer(peer.chain_id, nonce, to, U256::from(1 + i as u64)),
            )
        })
        .collect();
    // Request bodies are serialized before the clock starts, so the client spends as
    // little CPU as possible while the node (on the same cores) is measured.
    let batches: Vec<Vec<u8>> = raws
        .chunks(args.batch)
        .map(|c| {
            let calls: Vec<Value> = c
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    json!({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [r]})
                })
                .collect();
            serde_json::to_vec(&calls).unwrap_or_default()
        })
        .collect();
    let rpc = Arc::new(Rpc::new(&peer.url));
    eprintln!("[{}] submitting in {} batches...", peer.name, batches.len());
    let first_block = quantity(&rpc.call("eth_blockNumber", json!([])).await?) + 1;
    let started = Instant::now();
    let cpu_before = peer.cpu_seconds();
    // Four connections submit in parallel, each in order.
    let lanes = 4;
    let batches = Arc::new(batches);
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let rpc = rpc.clone();
        let batches = batches.clone();
        tasks.push(tokio::spawn(async move {
            let mut rejected = 0usize;
            for batch in batches.iter().skip(lane).step_by(lanes) {
                rejected += rpc.raw_batch(batch.clone()).await?;
            }
            anyhow::Ok(rejected)
        }));
    }
    let mut rejected = 0;
    for t in tasks {
        rejected += t.await??;
    }
    if rejected > 0 {
        bail!("{}: {rejected} transactions were rejected", peer.name);
    }
    let submitted = started.elapsed().as_secs_f64();
    // Mined when the blocks since the start hold every transfer: poll the head every
    // 10 ms and count each new block's transactions (a light load on either node,
    // unlike polling every sender's nonce).
    let mut mined = 0usize;
    let mut counted = first_block - 1;
    while mined < raws.len() {
        let head = quantity(&rpc.call("eth_blockNumber", json!([])).await?);
        while counted < head {
            counted += 1;
            let count = rpc
                .call(
                    "eth_getBlockTransactionCountByNumber",
                    json!([format!("{counted:#x}")]),
                )
                .await?;
            mined += quantity(&count) as usize;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "{}: only {mined} of {} transactions mined within 600 s (stalled?)",
                peer.name,
                raws.len()
            );
        }
        if mined < raws.len() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = peer.cpu_seconds() - cpu_before;
    eprintln!(
        "[{}] submitted in {submitted:.2} s, all mined at {seconds:.2} s using {cpu_seconds:.2} CPU s; checking receipts...",
        peer.name
    );
    // Every receipt must exist and succeed. Read block by block with
    // eth_getBlockReceipts: looking each one up by hash is quadratic in block size on
    // anvil (minutes for blocks of thousands of transactions).
    let mut expected: HashSet<B256> = raws
        .iter()
        .map(|r| keccak256(alloy_primitives::hex::decode(r).unwrap_or_default()))
        .collect();
    let head = quantity(&rpc.call("eth_blockNumber", json!([])).await?);
    for number in (first_block..=head).rev() {
        let receipts = rpc
            .call("eth_getBlockReceipts", json!([format!("{number:#x}")]))
            .await?;
        for r in receipts.as_array().into_iter().flatten() {
            let hash: B256 = serde_json::from_value(r["transactionHash"].clone())?;
            if expected.remove(&hash) && r["status"] != "0x1" {
                bail!("{}: a transfer failed: {r}", peer.name);
            }
        }
        if expected.is_empty() {
            break;
        }
    }
    if !expected.is_empty() {
        bail!("{}: {} receipts are missing", peer.name, expected.len());
    }
    Ok(IngestResult {
        seconds,
        tps: raws.len() as f64 / seconds,
        cpu_seconds,
    })
}

/// Requests per second of one method at `connections` concurrent connections.
async fn reads(
    peer: &Peer,
    args: &Args,
    method: &'static str,
    params: Value,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.read_seconds);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        // One client (one keep-alive connection) per worker.
        let rpc = Rpc {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?,
            url: peer.url.clone(),
        };
        let done = done.clone();
        let params = params.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                rpc.call(method, params.clone()).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Deploys a contract whose runtime returns 42, for the `eth_call` benchmark.
async fn deploy_reader(peer: &Peer) -> anyhow::Result<Address> {
    let rpc = Rpc::new(&peer.url);
    let dev = noesis_primitives::dev_accounts(10);
    let signer = PrivateKeySigner::from_bytes(&dev[9].private_key)?;
    let nonce = quantity(
        &rpc.call(
            "eth_getTransactionCount",
            json!([signer.address(), "pending"]),
        )
        .await?,
    );
    // Runtime: PUSH1 42 PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN; init copies it.
    let init: Bytes = "0x600a600c600039600a6000f3602a60005260206000f3".parse()?;
    let tx = TxEip1559 {
        to: TxKind::Create,
        input: init,
        gas_limit: 100_000,
        ..transfer(peer.chain_id, nonce, Address::ZERO, U256::ZERO)
    };
    rpc.call("eth_sendRawTransaction", json!([sign(&signer, tx)]))
        .await?;
    let address = signer.address().create(nonce);
    let started = Instant::now();
    while rpc
        .call("eth_getCode", json!([address, "latest"]))
        .await?
        .as_str()
        .unwrap_or("0x")
        .len()
        <= 2
    {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("{}: reader contract not deployed", peer.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(address)
}

/// A node after its ingest run, ready for the read rounds.
struct Measured {
    peer: Peer,
    ingest: IngestResult,
    /// The `eth_call` target (a contract returning a word).
    reader: Address,
}

async fn ingest_peer(peer: Peer, args: &Args) -> anyhow::Result<Measured> {
    let ingest = ingest(&peer, args).await?;
    let reader = deploy_reader(&peer).await?;
    Ok(Measured {
        peer,
        ingest,
        reader,
    })
}

/// Requests per second of one read per round: Noesis's and (when present) anvil's window
/// of each round back to back.
struct ReadRounds {
    noesis: Vec<f64>,
    anvil: Vec<f64>,
}

impl ReadRounds {
    fn median(values: &[f64]) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    /// Median of the per-round ratios Noesis / anvil.
    fn median_ratio(&self) -> Option<f64> {
        if self.anvil.is_empty() {
            return None;
        }
        let ratios: Vec<f64> = self
            .noesis
            .iter()
            .zip(&self.anvil)
            .map(|(n, a)| n / a)
            .collect();
        Some(Self::median(&ratios))
    }
}

/// One read method measured in alternating windows on both nodes.
async fn read_rounds(
    noesis: &Measured,
    anvil: Option<&Measured>,
    args: &Args,
    method: &'static str,
    params: impl Fn(&Measured) -> Value,
) -> anyhow::Result<ReadRounds> {
    let mut rounds = ReadRounds {
        noesis: Vec::new(),
        anvil: Vec::new(),
    };
    for round in 0..args.read_rounds {
        let noesis_first = round % 2 == 0;
        for turn in 0..2 {
            let on_noesis = (turn == 0) == noesis_first;
            match (on_noesis, anvil) {
                (true, _) => rounds
                    .noesis
                    .push(reads(&noesis.peer, args, method, params(noesis)).await?),
                (false, Some(a)) => rounds
                    .anvil
                    .push(reads(&a.peer, args, method, params(a)).await?),
                (false, None) => {}
            }
        }
    }
    eprintln!(
        "[reads] {method}: noesis {:.0?} req/s, anvil {:.0?} req/s",
        rounds.noesis, rounds.anvil
    );
    Ok(rounds)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let noesis = ingest_peer(
        start_noesis(&args.noesis, args.noesis_log.as_ref()).await?,
        &args,
    )
    .await?;
    let anvil = match &args.anvil {
        Some(bin) => Some(ingest_peer(start_anvil(bin).await?, &args).await?),
        None => None,
    };
    let who = bench_senders(1)[0].address();
    let chain_id =
        read_rounds(&noesis, anvil.as_ref(), &args, "eth_chainId", |_| json!([])).await?;
    let balance = read_rounds(&noesis, anvil.as_ref(), &args, "eth_getBalance", |_| {
        json!([who, "latest"])
    })
    .await?;
    let call = read_rounds(
        &noesis,
        anvil.as_ref(),
        &args,
        "eth_call",
        |m| json!([{"to": m.reader, "data": "0x"}, "latest"]),
    )
    .await?;
    let noesis_rss = noesis.peer.peak_rss_mib();
    let anvil_rss = anvil.as_ref().map(|a| a.peer.peak_rss_mib());
    println!("| metric | noesis | anvil | noesis / anvil |");
    println!("|---|---|---|---|");
    let row = |name: &str, n: f64, a: Option<f64>, unit: &str| match a {
        Some(a) => println!("| {name} | {n:.0} {unit} | {a:.0} {unit} | {:.2}x |", n / a),
        None => println!("| {name} | {n:.0} {unit} | - | - |"),
    };
    row(
        &format!("{} transfers mined, tx/s", args.txs),
        noesis.ingest.tps,
        anvil.as_ref().map(|a| a.ingest.tps),
        "tx/s",
    );
    row(
        "time to all receipts",
        noesis.ingest.seconds,
        anvil.as_ref().map(|a| a.ingest.seconds),
        "s",
    );
    // Formatted apart from `row`: CPU seconds need decimals.
    match &anvil {
        Some(a) => println!(
            "| node CPU during ingest | {:.2} s | {:.2} s | {:.2}x |",
            noesis.ingest.cpu_seconds,
            a.ingest.cpu_seconds,
            noesis.ingest.cpu_seconds / a.ingest.cpu_seconds
        ),
        None => println!(
            "| node CPU during ingest | {:.2} s | - | - |",
            noesis.ingest.cpu_seconds
        ),
    }
    let reads_row = |name: String, rounds: &ReadRounds| {
        let n = ReadRounds::median(&rounds.noesis);
        match rounds.median_ratio() {
            Some(ratio) => println!(
                "| {name} | {n:.0} req/s | {:.0} req/s | {ratio:.2}x (rounds: {}) |",
                ReadRounds::median(&rounds.anvil),
                rounds
                    .noesis
                    .iter()
                    .zip(&rounds.anvil)
                    .map(|(n, a)| format!("{:.2}", n / a))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            None => println!("| {name} | {n:.0} req/s | - | - |"),
        }
    };
    let c = args.connections;
    reads_row(
        format!("eth_chainId at {c} connections (server overhead only)"),
        &chain_id,
    );
    reads_row(format!("eth_getBalance at {c} connections"), &balance);
    reads_row(format!("eth_call at {c} connections"), &call);
    row("peak RSS", noesis_rss, anvil_rss, "MiB");
    Ok(())
}
