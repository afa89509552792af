//! Deterministic simulation of a four-validator network: commonware's deterministic
//! runtime and simulated network, the real executor and store on every node, random
//! transfers between the dev accounts. Each scenario checks that every node's
//! committed blocks agree at every height (no fork) and that the chain makes the
//! progress the scenario allows.
//!
//! `NOESIS_SIM_SEEDS=N` (default 10 per scenario: 50 runs) sets how many seeds each
//! scenario runs, for a longer sweep:
//! `NOESIS_SIM_SEEDS=200 cargo nextest run -p noesis-consensus --test simulation`.

use std::{
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::Duration,
};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use commonware_consensus::{
    simplex::{
        elector::RoundRobin,
        mocks::{conflicter, equivocator, nuller, relay::Relay},
    },
    types::Epoch,
};
use commonware_cryptography::{
    Signer,
    ed25519::{PrivateKey, PublicKey},
    sha256::Sha256,
};
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::{Clock, Quota, Runner, Spawner, Supervisor, deterministic};
use commonware_utils::{NZU32, NZUsize, ordered::Set, probability};
use noesis_consensus::{
    Archive, Channels, Executor, Follower, Running, Scheme, Timeouts, ValidatorConfig, channel,
    start_validator,
};
use noesis_node::Chain;
use noesis_primitives::{ChainSpec, DEV_CHAIN_ID, dev_accounts};
use rand::{Rng, SeedableRng, rngs::StdRng};

const VALIDATORS: usize = 4;
const NAMESPACE: &[u8] = b"noesis-sim";
const GWEI: u128 = 1_000_000_000;

fn seeds() -> u64 {
    std::env::var("NOESIS_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

fn dev_keys() -> &'static [PrivateKeySigner] {
    static KEYS: OnceLock<Vec<PrivateKeySigner>> = OnceLock::new();
    KEYS.get_or_init(|| {
        dev_accounts(10)
            .iter()
            .map(|a| PrivateKeySigner::from_bytes(&a.private_key).expect("dev key"))
            .collect()
    })
}

fn transfer(from: usize, nonce: u64, to: Address, value: u128) -> TxEnvelope {
    let tx = TxEip1559 {
        chain_id: DEV_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Call(to),
        value: U256::from(value),
        ..Default::default()
    };
    let signature = dev_keys()[from]
        .sign_hash_sync(&tx.signature_hash())
        .expect("signs");
    tx.into_signed(signature).into()
}

/// One validator of the simulation.
struct Node {
    key: PrivateKey,
    dir: PathBuf,
    chain: Option<Arc<Chain>>,
    /// The task the validator runs under; aborting it stops all of the validator.
    running: Option<commonware_runtime::Handle<()>>,
    /// Its finalized blocks and certificates, once it has started.
    archive: Arc<parking_lot::Mutex<Option<Archive>>>,
}

struct Sim {
    context: deterministic::Context,
    oracle: Oracle<PublicKey, deterministic::Context>,
    validators: Set<PublicKey>,
    nodes: Vec<Node>,
    rng: StdRng,
    seed: u64,
}

fn timeouts() -> Timeouts {
    Timeouts {
        leader: Duration::from_secs(1),
        certification: Duration::from_secs(2),
        retry: Duration::from_secs(3),
        skip: Duration::from_secs(5),
        fetch: Duration::from_secs(1),
    }
}

impl Sim {
    async fn new(context: deterministic::Context, seed: u64, scenario: &str) -> Self {
        let keys: Vec<PrivateKey> = (0..VALIDATORS as u64).map(PrivateKey::from_seed).collect();
        let validators = Set::from_iter_dedup(keys.iter().map(|k| k.public_key()));
        let (network, oracle) = Network::new_with_peers(
            context.child("network"),
            simulated::Config {
                max_size: 8 << 20,
                max_peers_per_set: NZUsize!(VALIDATORS),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(1),
            },
            validators.iter().cloned(),
        )
        .await;
        network.start();
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let dir = std::env::temp_dir().join(format!(
                    "noesis-sim-{scenario}-{seed}-{i}-{}",
                    std::process::id()
                ));
                let _ = std::fs::remove_dir_all(&dir);
                Node {
                    key,
                    dir,
                    chain: None,
                    running: None,
                    archive: Arc::default(),
                }
            })
            .collect();
        Self {
            context,
            oracle,
            validators,
            nodes,
            rng: StdRng::seed_from_u64(seed),
            seed,
        }
    }

    async fn link_all(&mut self, link: Link) {
        for a in self.validators.iter() {
            for b in self.validators.iter() {
                if a != b {
                    let _ = self.oracle.remove_link(a.clone(), b.clone()).await;
                    self.oracle
                        .add_link(a.clone(), b.clone(), link.clone())
                        .await
                        .expect("link");
                }
            }
        }
    }

    /// Cuts every link between the two groups (by index).
    async fn partition(&mut self, left: &[usize]) {
        let keys: Vec<PublicKey> = self.validators.iter().cloned().collect();
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                if left.contains(&i) != left.contains(&j) {
                    let _ = self.oracle.remove_link(a.clone(), b.clone()).await;
                }
            }
        }
    }

    async fn channels(
        &mut self,
        me: &PublicKey,
    ) -> Channels<
        simulated::Sender<PublicKey, deterministic::Context>,
        simulated::Receiver<PublicKey>,
    > {
        let control = self.oracle.control(me.clone());
        let quota = Quota::per_second(NZU32!(100_000));
        let register = async |c: u64| control.register(c, quota).await.expect("channel");
        Channels {
            backfill: register(channel::BACKFILL).await,
            blocks: register(channel::BLOCKS).await,
            votes: register(channel::VOTES).await,
            certificates: register(channel::CERTIFICATES).await,
            resolver: register(channel::RESOLVER).await,
            transactions: register(channel::TRANSACTIONS).await,
        }
    }

    /// Starts (or restarts) validator `i` on its store.
    async fn start(&mut self, i: usize) {
        let chain = Chain::open(&self.nodes[i].dir, ChainSpec::dev(), 10_000).expect("chain opens");
        let key = self.nodes[i].key.clone();
        let me = key.public_key();
        let channels = self.channels(&me).await;
        let config = ValidatorConfig {
            key,
            validators: self.validators.clone(),
            namespace: NAMESPACE.to_vec(),
            partition_prefix: format!("validator-{i}"),
            max_block_size: 4 << 20,
            timeouts: timeouts(),
            addresses: Vec::new(),
        };
        let executor = Executor::new(chain.clone());
        let peers = self.oracle.manager();
        let blocker = self.oracle.control(me);
        let archive = self.nodes[i].archive.clone();
        let task = self
            .context
            .child("validator")
            .with_attribute("index", i)
            .spawn(move |context| async move {
                let running: Running =
                    start_validator(context, config, executor, peers, blocker, channels)
                        .await
                        .expect("validator starts");
                *archive.lock() = Some(running.archive.clone());
                // The validator's tasks are children of this one: keep it alive.
                futures::future::join_all(running.handles).await;
            });
        self.nodes[i].chain = Some(chain);
        self.nodes[i].running = Some(task);
    }

    /// Stops validator `i` abruptly and closes its store.
    async fn crash(&mut self, i: usize) {
        if let Some(task) = self.nodes[i].running.take() {
            task.abort();
            let _ = task.await;
        }
        self.nodes[i].chain = None;
        // Let aborted tasks drop what they hold (the store among them).
        self.context.sleep(Duration::from_millis(10)).await;
    }

    /// Runs Byzantine validator `i` as one of commonware's Byzantine mocks: conflicting
    /// votes, nullify votes only, or equivocating proposals when it leads.
    async fn start_byzantine(&mut self, i: usize, kind: Byzantine) {
        let key = self.nodes[i].key.clone();
        let me = key.public_key();
        let scheme = Scheme::signer(NAMESPACE, self.validators.clone(), key).expect("member");
        let control = self.oracle.control(me);
        let quota = Quota::per_second(NZU32!(100_000));
        let votes = control
            .register(channel::VOTES, quota)
            .await
            .expect("channel");
        let context = self.context.child("byzantine");
        let task = match kind {
            Byzantine::Equivocator => {
                let certificates = control
                    .register(channel::CERTIFICATES, quota)
                    .await
                    .expect("channel");
                equivocator::Equivocator::<_, _, _, Sha256>::new(
                    context,
                    equivocator::Config {
                        scheme,
                        elector: RoundRobin::<Sha256>::default(),
                        epoch: Epoch::zero(),
                        relay: Arc::new(Relay::new()),
                    },
                )
                .start(votes, certificates)
            }
            Byzantine::Conflicter => {
                conflicter::Conflicter::<_, _, Sha256>::new(context, conflicter::Config { scheme })
                    .start(votes)
            }
            Byzantine::Nuller => {
                nuller::Nuller::<_, _, Sha256>::new(context, nuller::Config { scheme }).start(votes)
            }
        };
        self.nodes[i].running = Some(task);
    }

    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].chain.is_some())
            .collect()
    }

    fn height(&self, i: usize) -> u64 {
        self.nodes[i]
            .chain
            .as_ref()
            .map(|c| c.head().header.number)
            .unwrap_or(0)
    }

    /// Submits a few random transfers to random live nodes.
    fn send_traffic(&mut self) {
        let live = self.live();
        if live.is_empty() {
            return;
        }
        for _ in 0..self.rng.gen_range(1..=3) {
            let node = live[self.rng.gen_range(0..live.len())];
            let from = self.rng.gen_range(0..dev_keys().len());
            let to = Address::repeat_byte(self.rng.r#gen());
            let chain = self.nodes[node].chain.as_ref().expect("live");
            let nonce = chain
                .pending_nonce(dev_keys()[from].address())
                .expect("nonce");
            let _ = chain.submit(transfer(from, nonce, to, self.rng.gen_range(1..1_000_000)));
        }
    }

    /// Sends traffic for `duration` of simulated time.
    async fn run_for(&mut self, duration: Duration) {
        let steps = duration.as_millis() / 100;
        for _ in 0..steps {
            self.send_traffic();
            self.context.sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends traffic until every node in `nodes` has committed `height`; panics after
    /// `limit` of simulated time.
    async fn until_height(&mut self, nodes: &[usize], height: u64, limit: Duration) {
        let start = self.context.current();
        while nodes.iter().any(|&i| self.height(i) < height) {
            let waited = self
                .context
                .current()
                .duration_since(start)
                .unwrap_or_default();
            assert!(
                waited < limit,
                "nodes {nodes:?} did not reach height {height} in {limit:?}: heights {:?}",
                nodes.iter().map(|&i| self.height(i)).collect::<Vec<_>>()
            );
            self.send_traffic();
            self.context.sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every pair of live nodes has the same block at every height both committed.
    fn assert_agreement(&self) {
        let live = self.live();
        let Some(&first) = live.first() else {
            return;
        };
        let reference = self.nodes[first].chain.as_ref().expect("live");
        for &i in &live[1..] {
            let other = self.nodes[i].chain.as_ref().expect("live");
            let common = self.height(first).min(self.height(i));
            for number in 0..=common {
                let a = reference.store().hash_by_number(number).expect("read");
                let b = other.store().hash_by_number(number).expect("read");
                assert_eq!(a, b, "nodes {first} and {i} differ at height {number}");
            }
        }
    }

    /// A follower replays node 0's finalized chain from its archive (every run checked
    /// against the validator set's certificates and re-executed) and reaches the same
    /// blocks.
    async fn assert_follower_replays(&self) -> u64 {
        let archive = self.nodes[0]
            .archive
            .lock()
            .clone()
            .expect("node 0 started");
        let dir = self.nodes[0].dir.join("follower");
        let chain = Chain::open(&dir, ChainSpec::dev(), 1_000).expect("chain opens");
        let follower = Follower::new(chain, NAMESPACE, self.validators.clone());
        let latest = archive.latest().await.unwrap_or(0);
        while follower.chain().head().header.number < latest {
            let from = follower.chain().head().header.number + 1;
            let run = archive.range(from, 16).await;
            assert!(!run.is_empty(), "node 0's archive lacks block {from}");
            let committed = follower
                .apply(&run)
                .expect("node 0's finalized blocks check out");
            if committed == 0 {
                break; // the newest blocks wait for their certificate
            }
        }
        let reached = follower.chain().head().header.number;
        assert!(
            reached > 0,
            "the follower committed nothing (latest {latest})"
        );
        let node = self.nodes[0].chain.as_ref().expect("node 0 live");
        let common = reached.min(self.height(0));
        assert_eq!(
            follower
                .chain()
                .store()
                .header_by_number(common)
                .expect("read"),
            node.store().header_by_number(common).expect("read"),
            "the follower and node 0 differ at height {common}"
        );
        reached
    }

    fn max_height(&self) -> u64 {
        self.live()
            .iter()
            .map(|&i| self.height(i))
            .max()
            .unwrap_or(0)
    }

    fn transactions_committed(&self, i: usize) -> usize {
        let chain = self.nodes[i].chain.as_ref().expect("live");
        (1..=self.height(i))
            .map(|n| {
                chain
                    .block_with_receipts(n)
                    .expect("read")
                    .map(|b| b.block.transactions.len())
                    .unwrap_or(0)
            })
            .sum()
    }
}

#[derive(Clone, Copy, Debug)]
enum Byzantine {
    Conflicter,
    Nuller,
    Equivocator,
}

const FAST: Link = Link {
    latency: Duration::from_millis(10),
    jitter: Duration::from_millis(2),
    success_rate: probability!(1.0),
};

const LOSSY: Link = Link {
    latency: Duration::from_millis(50),
    jitter: Duration::from_millis(10),
    success_rate: probability!(0.95),
};

fn simulate<F>(scenario: &'static str, body: F)
where
    F: Fn(Sim) -> futures::future::BoxFuture<'static, Sim> + Copy + Send + 'static,
{
    for seed in 0..seeds() {
        let runner = deterministic::Runner::new(
            deterministic::Config::new()
                .with_seed(seed)
                .with_timeout(Some(Duration::from_secs(600))),
        );
        let dirs = runner.start(move |context| async move {
            let mut sim = Sim::new(context, seed, scenario).await;
            sim.link_all(FAST).await;
            for i in 0..VALIDATORS {
                sim.start(i).await;
            }
            let sim = body(sim).await;
            sim.assert_agreement();
            let followed = sim.assert_follower_replays().await;
            let live = sim.live();
            println!(
                "{scenario} seed {seed}: heights {:?}, follower {followed}, transactions committed {}, simulated {:?}",
                live.iter().map(|&i| sim.height(i)).collect::<Vec<_>>(),
                live.first()
                    .map(|&i| sim.transactions_committed(i))
                    .unwrap_or(0),
                sim.context
                    .current()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default(),
            );
            let dirs: Vec<PathBuf> = sim.nodes.iter().map(|n| n.dir.clone()).collect();
            dirs
        });
        for dir in dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn one_validator_crashed_the_chain_continues() {
    simulate("crash", |mut sim| {
        Box::pin(async move {
            sim.until_height(&[0, 1, 2, 3], 3, Duration::from_secs(30))
                .await;
            sim.crash(3).await;
            let before = sim.max_height();
            sim.until_height(&[0, 1, 2], before + 10, Duration::from_secs(120))
                .await;
            assert!(
                sim.transactions_committed(0) > 0,
                "no transfer was committed"
            );
            sim
        })
    });
}

#[test]
fn a_two_two_partition_halts_without_forking_then_heals() {
    simulate("partition", |mut sim| {
        Box::pin(async move {
            sim.until_height(&[0, 1, 2, 3], 3, Duration::from_secs(30))
                .await;
            sim.partition(&[0, 1]).await;
            // Blocks already certified may still finalize; then nothing.
            sim.run_for(Duration::from_secs(10)).await;
            let stalled = sim.max_height();
            sim.run_for(Duration::from_secs(30)).await;
            assert_eq!(sim.max_height(), stalled, "a 2/2 partition made progress");
            sim.assert_agreement();
            sim.link_all(FAST).await;
            sim.until_height(&[0, 1, 2, 3], stalled + 5, Duration::from_secs(180))
                .await;
            sim
        })
    });
}

#[test]
fn a_restarted_validator_catches_up_to_the_same_state() {
    simulate("restart", |mut sim| {
        Box::pin(async move {
            sim.until_height(&[0, 1, 2, 3], 3, Duration::from_secs(30))
                .await;
            sim.crash(2).await;
            let before = sim.max_height();
            sim.until_height(&[0, 1, 3], before + 10, Duration::from_secs(120))
                .await;
            sim.start(2).await;
            let target = sim.max_height() + 3;
            sim.until_height(&[0, 1, 2, 3], target, Duration::from_secs(180))
                .await;
            // Same block and state root at the height all reached.
            let height = target;
            let restarted = sim.nodes[2].chain.as_ref().expect("live");
            let other = sim.nodes[0].chain.as_ref().expect("live");
            let root = |chain: &Chain| {
                chain
                    .store()
                    .header_by_number(height)
                    .expect("read")
                    .map(|h| h.state_root)
            };
            assert!(root(restarted).is_some());
            assert_eq!(root(restarted), root(other));
            sim
        })
    });
}

#[test]
fn lossy_slow_links_still_finalize() {
    simulate("lossy", |mut sim| {
        Box::pin(async move {
            sim.link_all(LOSSY).await;
            sim.until_height(&[0, 1, 2, 3], 10, Duration::from_secs(240))
                .await;
            sim
        })
    });
}

#[test]
fn a_byzantine_validator_breaks_no_safety() {
    simulate("byzantine", |mut sim| {
        Box::pin(async move {
            sim.until_height(&[0, 1, 2, 3], 2, Duration::from_secs(30))
                .await;
            sim.crash(3).await;
            let kind = [
                Byzantine::Conflicter,
                Byzantine::Nuller,
                Byzantine::Equivocator,
            ][(sim.seed % 3) as usize];
            sim.start_byzantine(3, kind).await;
            let before = sim.max_height();
            sim.until_height(&[0, 1, 2], before + 10, Duration::from_secs(180))
                .await;
            sim
        })
    });
}
