//! Four validators on loopback against one dev node, same workload, same run.
//!
//! Both modes run in this process on their own stores: the dev node seals with
//! automine (a block as soon as transactions are pending); the network is four
//! `noesis-consensus` validators over authenticated TCP on 127.0.0.1. The workload is
//! ETH transfers submitted to one node (the network gossips them):
//!
//! - **throughput**: `--transfers` pre-signed transfers from `--senders` accounts
//!   submitted at once; finalized transfers per second until the last is committed;
//! - **latency**: one transfer every `--interval-ms`, `--samples` times; submit to
//!   committed (finalized, for the network) per transfer, p50 and p99.
//!
//! `cargo build --release -p noesis-bench && target/release/consensus-bench`

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, B256, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use clap::Parser;
use commonware_cryptography::{Signer, ed25519::PrivateKey};
use noesis_consensus::{
    Timeouts,
    network::{NetworkConfig, spawn_validator},
};
use noesis_node::{Chain, SealMode, spawn_dev_sealer};
use noesis_primitives::{ChainSpec, DEV_CHAIN_ID};
use rayon::prelude::*;

#[derive(Parser, Debug)]
struct Args {
    /// Transfers in the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    transfers: usize,
    /// Sending accounts (funded in the benchmark's genesis).
    #[arg(long, default_value_t = 200)]
    senders: usize,
    /// Transfers timed one by one in the latency phase.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Milliseconds between latency samples.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Validators in the network.
    #[arg(long, default_value_t = 4)]
    validators: usize,
}

/// A chain spec funding `senders` benchmark accounts (deterministic keys).
fn spec(senders: &[PrivateKeySigner]) -> ChainSpec {
    let mut spec = ChainSpec::dev();
    for s in senders {
        spec.alloc.insert(
            s.address(),
            noesis_primitives::GenesisAccount {
                balance: U256::from(10u128.pow(24)),
                nonce: 0,
                code: None,
                storage: Default::default(),
            },
        );
    }
    spec
}

fn signer(i: usize) -> PrivateKeySigner {
    let secret = keccak256(format!("consensus-bench-sender-{i}"));
    PrivateKeySigner::from_bytes(&secret).expect("a valid key")
}

fn transfer(key: &PrivateKeySigner, nonce: u64) -> TxEnvelope {
    let tx = TxEip1559 {
        chain_id: DEV_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::repeat_byte(0x42)),
        value: U256::from(1u64),
        ..Default::default()
    };
    let signature = key.sign_hash_sync(&tx.signature_hash()).expect("signs");
    tx.into_signed(signature).into()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Records when each transaction was committed, from the chain's block feed.
fn watch(chain: &Arc<Chain>) -> Arc<parking_lot::Mutex<BTreeMap<B256, Instant>>> {
    let committed: Arc<parking_lot::Mutex<BTreeMap<B256, Instant>>> = Arc::default();
    let mut blocks = chain.subscribe_blocks();
    let chain = chain.clone();
    let seen = committed.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            while let Ok(block) = blocks.recv().await {
                let now = Instant::now();
                if let Ok(Some(full)) = chain.block_with_receipts(block.header.number) {
                    let mut seen = seen.lock();
                    for (_, tx) in &full.block.transactions {
                        seen.insert(*tx.tx_hash(), now);
                    }
                }
            }
        });
    });
    committed
}

struct Mode {
    name: &'static str,
    /// Where transactions are submitted.
    entry: Arc<Chain>,
    /// Where commits are observed (the entry node).
    committed: Arc<parking_lot::Mutex<BTreeMap<B256, Instant>>>,
    /// Wakes the dev sealer (none for the network).
    notify: Option<noesis_node::SealerHandle>,
}

impl Mode {
    fn submit(&self, tx: TxEnvelope) -> B256 {
        let hash = self.entry.submit(tx).expect("pooled");
        if let Some(sealer) = &self.notify {
            sealer.notify();
        }
        hash
    }

    fn wait(&self, hashes: &[B256], limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            {
                let seen = self.committed.lock();
                if hashes.iter().all(|h| seen.contains_key(h)) {
                    return hashes.iter().filter_map(|h| seen.get(h)).max().copied();
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn throughput(mode: &Mode, batches: &[Vec<TxEnvelope>]) -> f64 {
    let started = Instant::now();
    let mut hashes = Vec::new();
    for batch in batches {
        for tx in batch {
            hashes.push(mode.submit(tx.clone()));
        }
    }
    let done = mode
        .wait(&hashes, Duration::from_secs(300))
        .expect("every transfer committed within 300 s");
    hashes.len() as f64 / (done - started).as_secs_f64()
}

fn latency(mode: &Mode, txs: Vec<TxEnvelope>, interval: Duration) -> (f64, f64) {
    let mut sent = Vec::new();
    for tx in txs {
        let at = Instant::now();
        sent.push((mode.submit(tx), at));
        std::thread::sleep(interval);
    }
    let hashes: Vec<B256> = sent.iter().map(|(h, _)| *h).collect();
    mode.wait(&hashes, Duration::from_secs(120))
        .expect("every sample committed");
    let seen = mode.committed.lock();
    let mut ms: Vec<f64> = sent
        .iter()
        .map(|(h, at)| (seen[h] - *at).as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (pick(0.5), pick(0.99))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let senders: Vec<PrivateKeySigner> = (0..args.senders).map(signer).collect();
    let spec = spec(&senders);
    // One directory for every run, cleared here: the validators' threads still write to
    // it when the process exits, so it is not removed at the end.
    let base = std::env::temp_dir().join("noesis-consensus-bench");
    let _ = std::fs::remove_dir_all(&base);

    // The dev node.
    let dev_chain = Chain::open(&base.join("dev"), spec.clone(), 1 << 20)?;
    let sealer = spawn_dev_sealer(dev_chain.clone(), SealMode::Automine);
    let dev = Mode {
        name: "dev (one node, automine)",
        committed: watch(&dev_chain),
        entry: dev_chain,
        notify: Some(sealer),
    };

    // The network.
    let keys: Vec<PrivateKey> = (0..args.validators as u64)
        .map(|i| PrivateKey::from_seed(1000 + i))
        .collect();
    let validators: Vec<_> = keys
        .iter()
        .map(|k| {
            (
                k.public_key(),
                SocketAddr::from(([127, 0, 0, 1], free_port())),
            )
        })
        .collect();
    let mut chains = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let dir = base.join(format!("validator-{i}"));
        let chain = Chain::open(&dir.join("chain"), spec.clone(), 1 << 20)?;
        spawn_validator(
            NetworkConfig {
                key: key.clone(),
                listen: validators[i].1,
                validators: validators.clone(),
                namespace: b"noesis-bench".to_vec(),
                storage_dir: dir.join("consensus"),
                timeouts: Timeouts::default(),
            },
            chain.clone(),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        chains.push(chain);
    }
    let network = Mode {
        name: "network (4 validators, loopback)",
        committed: watch(&chains[0]),
        entry: chains[0].clone(),
        notify: None,
    };
    // Let the validators connect and finalize a few empty blocks.
    let warm = Instant::now();
    while chains.iter().any(|c| c.head().header.number < 3) {
        anyhow::ensure!(
            warm.elapsed() < Duration::from_secs(60),
            "the network did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Pre-sign: per mode the same transfers (separate stores, so the same nonces).
    let per_sender = args.transfers.div_ceil(args.senders);
    let sign_all = |first_nonce: u64, count: usize| -> Vec<Vec<TxEnvelope>> {
        (0..count)
            .map(|k| {
                senders
                    .par_iter()
                    .map(|s| transfer(s, first_nonce + k as u64))
                    .collect()
            })
            .collect()
    };
    eprintln!("signing {} transfers", per_sender * args.senders);
    let batches = sign_all(0, per_sender);
    let samples: Vec<TxEnvelope> = (0..args.samples)
        .map(|k| {
            transfer(
                &senders[k % senders.len()],
                (per_sender + k / senders.len()) as u64,
            )
        })
        .collect();

    println!(
        "{} transfers from {} senders; latency: {} transfers, one every {} ms",
        per_sender * args.senders,
        args.senders,
        args.samples,
        args.interval_ms
    );
    let mut results = Vec::new();
    for mode in [&dev, &network] {
        let tps = throughput(mode, &batches);
        let (p50, p99) = latency(
            mode,
            samples.clone(),
            Duration::from_millis(args.interval_ms),
        );
        println!(
            "{:34} {:>9.0} transfers/s   submit→committed p50 {:>7.1} ms  p99 {:>7.1} ms",
            mode.name, tps, p50, p99
        );
        results.push((tps, p50, p99));
    }
    println!(
        "network / dev throughput: {:.2}   (goal ≥ 0.50; network p50 goal < 50 ms)",
        results[1].0 / results[0].0
    );
    // Heads differ while the last blocks finalize; compare at the lowest.
    let heights: Vec<u64> = chains.iter().map(|c| c.head().header.number).collect();
    let common = heights.iter().copied().min().unwrap_or(0);
    let hashes: Vec<Option<B256>> = chains
        .iter()
        .map(|c| c.store().hash_by_number(common).ok().flatten())
        .collect();
    println!(
        "validator heights {heights:?}; same block at height {common}: {}",
        hashes.windows(2).all(|w| w[0] == w[1])
    );
    std::process::exit(0);
}
