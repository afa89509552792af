//! One validator: simplex (votes and certificates) + marshal (block dissemination,
//! backfill, ordered delivery of finalized blocks) + the node's [`Executor`] + the
//! transaction gossip, wired over any commonware runtime and network — the
//! deterministic runtime with the simulated network in tests, tokio with
//! authenticated p2p in `noesis node`.

use std::{net::SocketAddr, num::NonZeroUsize, sync::Arc, time::Duration};

use commonware_broadcast::buffered;
use commonware_consensus::{
    Reporters,
    marshal::{self, Start, core::Actor, resolver::p2p as marshal_resolver, standard::Inline},
    simplex::{
        self,
        config::{ForwardPolicy, SkipBudget, SkipPolicy},
        elector::RoundRobin,
    },
    types::{Epoch, FixedEpocher, ViewDelta},
};
use commonware_cryptography::{
    Signer,
    certificate::{ConstantProvider, Verifier},
    ed25519::{PrivateKey, PublicKey},
    sha256::Sha256,
};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{
    Clock, Handle, Metrics, Spawner, Storage, Supervisor, buffer::paged::CacheRef,
};
use commonware_storage::archive::immutable;
use commonware_utils::{NZDuration, NZU16, NZU64, NZUsize, ordered::Set};
use rand_core::CryptoRng;

use crate::{
    Scheme,
    application::Executor,
    block::Block,
    follow::Archive,
    gossip,
    status::{Status, StatusReporter},
};

/// The network channels a validator uses, each a sender and receiver pair.
pub struct Channels<S, R> {
    /// Marshal's backfill requests and responses.
    pub backfill: (S, R),
    /// Whole blocks from their proposers.
    pub blocks: (S, R),
    /// Simplex votes.
    pub votes: (S, R),
    /// Simplex certificates.
    pub certificates: (S, R),
    /// Simplex's fetches of missing certificates.
    pub resolver: (S, R),
    /// Pooled transactions.
    pub transactions: (S, R),
}

/// Channel numbers, the same on every node.
pub mod channel {
    /// Marshal backfill.
    pub const BACKFILL: u64 = 1;
    /// Block broadcast.
    pub const BLOCKS: u64 = 2;
    /// Votes.
    pub const VOTES: u64 = 3;
    /// Certificates.
    pub const CERTIFICATES: u64 = 4;
    /// Certificate fetches.
    pub const RESOLVER: u64 = 5;
    /// Transaction gossip.
    pub const TRANSACTIONS: u64 = 6;
}

/// Consensus timing.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// How long to wait for the leader's proposal.
    pub leader: Duration,
    /// How long to wait for a notarized view to certify before nullifying it.
    pub certification: Duration,
    /// How often to rebroadcast a nullify vote while stuck.
    pub retry: Duration,
    /// How long a leader may be silent before its term is skipped.
    pub skip: Duration,
    /// How long to wait for a peer's answer to a fetch.
    pub fetch: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            leader: Duration::from_millis(1_000),
            certification: Duration::from_millis(2_000),
            retry: Duration::from_millis(3_000),
            skip: Duration::from_millis(5_000),
            fetch: Duration::from_millis(1_000),
        }
    }
}

/// What a validator needs besides its chain and network.
#[derive(Clone, Debug)]
pub struct ValidatorConfig {
    /// Its consensus key.
    pub key: PrivateKey,
    /// Every validator's public key (the chain spec's static set).
    pub validators: Set<PublicKey>,
    /// Namespace of every consensus signature (binds votes to one chain).
    pub namespace: Vec<u8>,
    /// Prefix of the storage partitions consensus keeps (its journal and archives).
    pub partition_prefix: String,
    /// Largest encoded block accepted, in bytes.
    pub max_block_size: usize,
    /// Consensus timing.
    pub timeouts: Timeouts,
    /// The validators' network addresses in set order, when known (for status only).
    pub addresses: Vec<Option<SocketAddr>>,
}

/// A running validator: its tasks and its status.
pub struct Running {
    /// The tasks.
    pub handles: Vec<Handle<()>>,
    /// What RPC reports of consensus.
    pub status: Arc<Status>,
    /// The finalized blocks and certificates it stores, for followers.
    pub archive: Archive,
}

const MAILBOX: NonZeroUsize = NZUsize!(1024);

fn archive<C>(prefix: &str, name: &str, codec: C, page_cache: &CacheRef) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: 1024,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 1024,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_target_size: 64 * 1024 * 1024,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: NZU64!(4096),
        codec_config: codec,
        replay_buffer: NZUsize!(1 << 20),
        freezer_key_write_buffer: NZUsize!(1 << 16),
        freezer_value_write_buffer: NZUsize!(1 << 16),
        ordinal_write_buffer: NZUsize!(1 << 16),
    }
}

/// Starts a validator: marshal, the block buffer, simplex and the transaction gossip.
///
/// Fails when `config.key` is not one of `config.validators`, or when consensus
/// storage cannot be opened.
pub async fn start_validator<E, S, R, P, B>(
    context: E,
    config: ValidatorConfig,
    executor: Executor,
    peers: P,
    blocker: B,
    channels: Channels<S, R>,
) -> Result<Running, String>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    let me = config.key.public_key();
    let scheme = Scheme::signer(&config.namespace, config.validators.clone(), config.key)
        .ok_or("this node's consensus key is not in the validator set")?;
    let prefix = config.partition_prefix;
    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(1024));
    let mut handles = Vec::new();

    let resolver = marshal_resolver::init(
        context.child("backfill"),
        marshal_resolver::Config {
            public_key: me.clone(),
            peer_provider: peers.clone(),
            blocker: blocker.clone(),
            mailbox_size: MAILBOX,
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );
    let (buffer_engine, buffer) = buffered::Engine::new(
        context.child("blocks"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: MAILBOX,
            deque_size: 64,
            priority: false,
            codec_config: config.max_block_size,
            peer_provider: peers.clone(),
            strategy: Sequential,
        },
    );
    handles.push(buffer_engine.start(channels.blocks));

    let certificates = <Scheme as Verifier>::certificate_codec_config_unbounded();
    let finalizations = immutable::Archive::init(
        context.child("finalizations"),
        archive(&prefix, "finalizations", certificates, &page_cache),
    )
    .await
    .map_err(|e| format!("cannot open the finalizations archive: {e}"))?;
    let blocks = immutable::Archive::init(
        context.child("finalized_blocks"),
        archive(&prefix, "blocks", config.max_block_size, &page_cache),
    )
    .await
    .map_err(|e| format!("cannot open the finalized blocks archive: {e}"))?;

    // One epoch for the whole chain: the validator set is static.
    let epocher = FixedEpocher::new(NZU64!(u64::MAX));
    let genesis = genesis_block(&executor)?;
    let (actor, mailbox, _floor) = Actor::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::new(scheme.clone()),
            epocher: epocher.clone(),
            start: Start::Genesis(genesis.clone().digested()),
            partition_prefix: prefix.clone(),
            mailbox_size: MAILBOX,
            view_retention: ViewDelta::new(64),
            max_repair: NZUsize!(64),
            max_pending_acks: NZUsize!(16),
            block_codec_config: config.max_block_size,
            prunable_items_per_section: NZU64!(64),
            replay_buffer: NZUsize!(1 << 20),
            key_write_buffer: NZUsize!(1 << 16),
            value_write_buffer: NZUsize!(1 << 16),
            page_cache: page_cache.clone(),
            strategy: Sequential,
        },
    )
    .await;
    handles.push(actor.start(executor.clone(), buffer, resolver));
    let archive = Archive::new(mailbox.clone());

    let wrapper = Inline::new(
        context.child("executor"),
        executor.clone(),
        mailbox,
        epocher,
    );
    let status = Arc::new(Status::new(
        &config.validators,
        config.addresses,
        me.clone(),
        executor.progress(),
    ));
    let reporter: Reporters<_, _> = (wrapper.clone(), StatusReporter(status.clone())).into();
    let t = config.timeouts;
    let engine = simplex::Engine::new(
        context.child("simplex"),
        simplex::config::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker,
            automaton: wrapper.clone(),
            relay: wrapper.clone(),
            reporter,
            strategy: Sequential,
            partition: format!("{prefix}-simplex"),
            mailbox_size: MAILBOX,
            epoch: Epoch::zero(),
            floor: simplex::config::Floor::Genesis(commonware_cryptography::Digestible::digest(
                &genesis,
            )),
            replay_buffer: NZUsize!(1 << 20),
            write_buffer: NZUsize!(1 << 16),
            page_cache,
            leader_timeout: t.leader,
            certification_timeout: t.certification,
            timeout_retry: t.retry,
            view_retention: ViewDelta::new(64),
            skip: SkipPolicy::Enabled {
                timeout: t.skip,
                budget: SkipBudget::Participants,
            },
            fetch_timeout: NZDuration!(t.fetch),
            fetch_retry_delay: Duration::from_millis(100),
            forward: ForwardPolicy::SilentLeader,
            track_historical_votes: false,
        },
    );
    handles.push(engine.start(channels.votes, channels.certificates, channels.resolver));
    handles.extend(gossip::start(
        context.child("tx_gossip"),
        executor.chain().clone(),
        channels.transactions,
    ));
    Ok(Running {
        handles,
        status,
        archive,
    })
}

/// The genesis block as consensus sees it (height 0, no transactions).
fn genesis_block(executor: &Executor) -> Result<Block, String> {
    let header = executor
        .chain()
        .store()
        .header_by_number(0)
        .map_err(|e| format!("cannot read the genesis block: {e}"))?
        .ok_or("the store has no genesis block")?;
    Ok(Block::new(noesis_primitives::ProposedBlock {
        header,
        transactions: vec![],
    }))
}
