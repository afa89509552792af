//! A validator process on the real network: commonware's tokio runtime (consensus
//! storage in a directory) and authenticated p2p (`lookup`: a static set of validators
//! at known addresses, encrypted and authenticated by their ed25519 keys), running the
//! same [`start_validator`] as the simulation, on its own thread beside the node's RPC.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use commonware_cryptography::{
    ChaCha20Poly1305, Signer,
    ed25519::{PrivateKey, PublicKey},
};
use commonware_p2p::{Address, AddressableManager, authenticated::lookup};
use commonware_runtime::{Quota, Runner, Supervisor, tokio as cw_tokio};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map, ordered::Set};
use noesis_node::Chain;

use crate::{
    Channels, Executor, Status, Timeouts, ValidatorConfig, channel, follow::Archive, gossip,
    start_validator,
};

/// Largest encoded block, in bytes.
pub const MAX_BLOCK_SIZE: usize = 16 << 20;

/// What a validator process needs to join the network.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Its consensus (and p2p identity) key.
    pub key: PrivateKey,
    /// Where it listens for peers.
    pub listen: SocketAddr,
    /// Every validator with its address, this one included.
    pub validators: Vec<(PublicKey, SocketAddr)>,
    /// Namespace of every signature and handshake (binds them to one chain).
    pub namespace: Vec<u8>,
    /// Directory of consensus storage (journal and archives).
    pub storage_dir: PathBuf,
    /// Consensus timing.
    pub timeouts: Timeouts,
}

/// A running validator.
pub struct NetworkHandle {
    /// What RPC reports of consensus.
    pub status: Arc<Status>,
    /// The finalized blocks and certificates it stores, for followers.
    pub archive: Archive,
}

/// Runs a validator for `chain` on its own thread. Returns once consensus has
/// started (its storage opened), or with the reason it could not.
pub fn spawn_validator(config: NetworkConfig, chain: Arc<Chain>) -> Result<NetworkHandle, String> {
    let me = config.key.public_key();
    let set = Set::from_iter_dedup(config.validators.iter().map(|(k, _)| k.clone()));
    if set.len() != config.validators.len() {
        return Err("a validator is listed twice".into());
    }
    if set.position(&me).is_none() {
        return Err(format!(
            "this node's consensus key {me} is not in the validator set"
        ));
    }
    std::fs::create_dir_all(&config.storage_dir).map_err(|e| {
        format!(
            "cannot create consensus storage {}: {e}",
            config.storage_dir.display()
        )
    })?;
    let (started_tx, started_rx) =
        std::sync::mpsc::channel::<Result<(Arc<Status>, Archive), String>>();
    std::thread::Builder::new()
        .name("consensus".into())
        .spawn(move || {
            let runtime = cw_tokio::Config::new()
                .with_worker_threads(2)
                .with_storage_directory(config.storage_dir.clone())
                .with_tcp_nodelay(Some(true));
            cw_tokio::Runner::new(runtime).start(|context| async move {
                match run(context, config, chain).await {
                    Ok((started, running)) => {
                        let _ = started_tx.send(Ok(started));
                        futures::future::join_all(running).await;
                        tracing::error!("consensus stopped");
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| format!("cannot start the consensus thread: {e}"))?;
    let (status, archive) = started_rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "consensus did not start within 60 s".to_string())??;
    Ok(NetworkHandle { status, archive })
}

async fn run(
    context: cw_tokio::Context,
    config: NetworkConfig,
    chain: Arc<Chain>,
) -> Result<((Arc<Status>, Archive), Vec<commonware_runtime::Handle<()>>), String> {
    let peers: Map<PublicKey, Address> = config
        .validators
        .iter()
        .map(|(k, a)| (k.clone(), Address::from(*a)))
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| "a validator is listed twice".to_string())?;
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: config.key.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    // Loopback and private addresses are allowed: test networks run on them.
    let p2p = lookup::Config::local(
        handshake,
        &config.namespace,
        config.listen,
        NZUsize!(config.validators.len().max(1)),
        (MAX_BLOCK_SIZE + gossip::MAX_MESSAGE) as u32,
        NZUsize!(4096),
    );
    let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p);
    let _ = oracle.track(0, peers);
    // Messages per second from each peer on each channel. Each channel's inbound
    // mailbox holds one second's burst from every peer, allocated up front: keep it
    // modest (a vote or block is one message; transactions travel in batches).
    let quota = Quota::per_second(NZU32!(2_000));
    let mut register = |c: u64| network.register(c, quota);
    let channels = Channels {
        backfill: register(channel::BACKFILL),
        blocks: register(channel::BLOCKS),
        votes: register(channel::VOTES),
        certificates: register(channel::CERTIFICATES),
        resolver: register(channel::RESOLVER),
        transactions: register(channel::TRANSACTIONS),
    };
    let network_handle = network.start();
    let validators = Set::from_iter_dedup(config.validators.iter().map(|(k, _)| k.clone()));
    let addresses = validators
        .iter()
        .map(|k| {
            config
                .validators
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, a)| *a)
        })
        .collect();
    let running = start_validator(
        context.child("validator"),
        ValidatorConfig {
            key: config.key,
            validators,
            namespace: config.namespace,
            partition_prefix: "noesis".into(),
            max_block_size: MAX_BLOCK_SIZE,
            timeouts: config.timeouts,
            addresses,
        },
        Executor::new(chain),
        oracle.clone(),
        oracle,
        channels,
    )
    .await?;
    let mut handles = running.handles;
    handles.push(network_handle);
    Ok(((running.status, running.archive), handles))
}
