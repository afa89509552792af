//! `noesis dev` and `noesis node`: open the chain, start block production (the dev
//! sealer, or consensus for a validator) and the RPC server, and run until interrupted.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::Duration,
};

use alloy_signer_local::PrivateKeySigner;
use anyhow::Context;
use noesis_node::{Chain, SealMode, spawn_dev_sealer};
use noesis_primitives::{ChainSpec, dev_accounts};
use noesis_rpc::EthRpc;
use serde::{Deserialize, Serialize};

use crate::cli::{DevArgs, NodeArgs, home_dir};

/// Pool capacity (transactions).
const POOL_CAPACITY: usize = 200_000;

/// `noesis dev`.
pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let datadir = args
        .datadir
        .clone()
        .unwrap_or_else(|| home_dir().join("dev"));
    let mut spec = ChainSpec::dev();
    if let Some(gas_limit) = args.gas_limit {
        spec.gas_limit = gas_limit;
    }
    let accounts = dev_accounts(10);
    let signers: Vec<PrivateKeySigner> = accounts
        .iter()
        .filter_map(|a| PrivateKeySigner::from_bytes(&a.private_key).ok())
        .collect();
    let mode = match (args.no_ai, args.block_time) {
        (true, block_time) => seal_mode(block_time),
        (false, Some(secs)) if secs > 0 => SealMode::Interval(Duration::from_secs(secs)),
        // Subnet epochs count blocks: an idle chain still makes one a second.
        (false, _) => SealMode::AutomineHeartbeat(Duration::from_secs(1)),
    };
    let addr = SocketAddr::new(args.http.http_addr, args.http.http_port);
    let validator: Arc<OnceLock<Arc<noesis_roles::validator::Validator>>> = Arc::default();
    let gateway_url: Arc<OnceLock<String>> = Arc::default();
    let pages = dashboard_pages(&args, spec.chain_id, validator.clone(), gateway_url.clone());
    let (chain, local) = launch(&datadir, spec, mode, addr, signers, pages).await?;

    crate::say!("Noesis dev chain (chain id {})", chain.chain_id());
    crate::say!("\nAvailable accounts (10,000 ETH each)\n==================");
    for (i, a) in accounts.iter().enumerate() {
        crate::say!("({i}) {}", a.address);
    }
    crate::say!("\nPrivate keys\n==================");
    for (i, a) in accounts.iter().enumerate() {
        crate::say!("({i}) {}", a.private_key);
    }
    crate::say!("\nMnemonic: {}", noesis_primitives::DEV_MNEMONIC);
    crate::say!("Derivation path: m/44'/60'/0'/0/");
    crate::say!("\nData dir:  {}", datadir.display());
    crate::say!("Mining:    {}", describe(mode));
    crate::say!("JSON-RPC:  http://{local}  (WebSocket: ws://{local})");
    crate::say!("Metrics:   http://{local}/metrics");
    if !args.no_ai {
        anyhow::ensure!(
            (0.0..=1.0).contains(&args.verify_sample),
            "--verify-sample must be between 0 and 1 (a share of answers)"
        );
        let options = crate::devnet::DevMarketOptions {
            verify_per_mille: (args.verify_sample * 1000.0).round() as u32,
            miners: args.miners,
            gateway: SocketAddr::new(args.http.http_addr, args.gateway_port),
            tempo: args.tempo,
            model: args.model.clone(),
            threads: args.threads,
        };
        let rpc_url = format!("http://{local}");
        // Models are shared by every dev chain: they live in the default data dir.
        let market = crate::devnet::start(&rpc_url, &home_dir().join("dev"), options)
            .await
            .context("cannot start the AI market (`--no-ai` runs the chain alone)")?;
        let _ = validator.set(market.validator.clone());
        let _ = gateway_url.set(format!("http://{}/v1", market.gateway));
        crate::say!(
            "Subnet:    {} \"text-generation\", model {}, tempo {} blocks",
            crate::devnet::NETUID,
            market.model_id,
            market.tempo
        );
        for (uid, addr) in &market.miners {
            crate::say!("Miner:     uid {uid} at http://{addr}/v1");
        }
        crate::say!(
            "Validator: uid {} (dev account 0), scores at http://{local}/validator.json",
            market.validator_uid
        );
        crate::say!("Gateway:   http://{}/v1  (OpenAI API)", market.gateway);
    }
    crate::say!("Dashboard: http://{local}/");
    wait_for_shutdown().await;
    Ok(())
}

/// The dashboard (`/`) and the JSON it reads beside JSON-RPC: `/dashboard.json` (where
/// the gateway is) and `/validator.json` (the in-process validator's latest round).
fn dashboard_pages(
    args: &DevArgs,
    chain_id: u64,
    validator: Arc<OnceLock<Arc<noesis_roles::validator::Validator>>>,
    gateway_url: Arc<OnceLock<String>>,
) -> Vec<(&'static str, noesis_rpc::Page)> {
    let model = args.model.clone();
    vec![
        (
            "/",
            (
                "text/html; charset=utf-8",
                Arc::new(|| DASHBOARD.to_string()),
            ),
        ),
        (
            "/dashboard.json",
            (
                "application/json",
                Arc::new(move || {
                    serde_json::json!({
                        "chainId": chain_id,
                        "netuids": [crate::devnet::NETUID],
                        "gateway": gateway_url.get(),
                        "model": model,
                    })
                    .to_string()
                }),
            ),
        ),
        (
            "/validator.json",
            (
                "application/json",
                Arc::new(move || match validator.get() {
                    Some(v) => serde_json::to_string(&v.scoreboard()).unwrap_or_default(),
                    None => "{\"running\":false}".to_string(),
                }),
            ),
        ),
    ]
}

/// The dashboard page: one static file, no runtime download.
const DASHBOARD: &str = include_str!("dashboard/index.html");

/// The config file of `noesis node`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Data directory.
    pub datadir: PathBuf,
    /// Chain spec JSON file (relative paths are relative to the config file).
    pub chain: PathBuf,
    /// Address JSON-RPC listens on.
    #[serde(default = "default_addr")]
    pub http_addr: std::net::IpAddr,
    /// Port of JSON-RPC (HTTP and WebSocket).
    #[serde(default = "default_port")]
    pub http_port: u16,
    /// Seconds between blocks; 0 seals on every transaction (dev sealer only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub block_time: u64,
    /// Validator mode: consensus produces and finalizes blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consensus: Option<crate::consensus::ConsensusSection>,
    /// Follower mode: commit the blocks validators finalized, checked against their
    /// certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow: Option<crate::follow::FollowSection>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn default_addr() -> std::net::IpAddr {
    std::net::IpAddr::from([127, 0, 0, 1])
}
fn default_port() -> u16 {
    8545
}

/// `noesis node --config FILE`.
pub async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read config {}", args.config.display()))?;
    let config: NodeConfig = toml::from_str(&text)
        .with_context(|| format!("invalid config {}", args.config.display()))?;
    let base = args.config.parent().map(PathBuf::from).unwrap_or_default();
    let chain_path = base.join(&config.chain);
    let spec_text = std::fs::read_to_string(&chain_path)
        .with_context(|| format!("cannot read chain spec {}", chain_path.display()))?;
    let spec =
        ChainSpec::from_json(&spec_text).with_context(|| format!("in {}", chain_path.display()))?;
    let datadir = base.join(&config.datadir);
    let addr = SocketAddr::new(config.http_addr, config.http_port);
    anyhow::ensure!(
        config.consensus.is_none() || config.follow.is_none(),
        "a node is a validator ([consensus]) or a follower ([follow]), not both: remove one section"
    );
    anyhow::ensure!(
        config.block_time == 0 || (config.consensus.is_none() && config.follow.is_none()),
        "block_time applies to the dev sealer only (consensus paces a validator's and a follower's blocks): remove it or the [consensus]/[follow] section"
    );
    if let Some(section) = &config.consensus {
        let validator = crate::consensus::Validator::load(section, &base, &spec.validators)
            .with_context(|| format!("in [consensus] of {}", args.config.display()))?;
        let (public_key, listen, count) = (
            validator.public_key(),
            validator.listen(),
            validator.count(),
        );
        let chain = Chain::open(&datadir, spec, POOL_CAPACITY)?;
        let network = validator.spawn(chain.clone(), datadir.join("consensus"))?;
        // Transactions reach the other validators by gossip.
        let status = Arc::new(crate::consensus::StatusView::new(&network));
        let local = serve_without_sealer(&chain, status, addr).await?;
        crate::say!(
            "Noesis validator (chain id {}), public key {public_key}, p2p on {listen}, {count} validators",
            chain.chain_id()
        );
        crate::say!(
            "JSON-RPC on http://{local}, head {} (blocks are committed once finalized)",
            chain.head().header.number
        );
        wait_for_shutdown().await;
        drop(network);
        return Ok(());
    }
    if let Some(section) = &config.follow {
        let follow = crate::follow::FollowConfig::load(section, &spec.validators)
            .with_context(|| format!("in [follow] of {}", args.config.display()))?;
        let (sources, count) = (follow.sources().join(", "), follow.count());
        let chain = Chain::open(&datadir, spec, POOL_CAPACITY)?;
        let status = follow.spawn(chain.clone());
        // Transactions are forwarded to a source.
        let local = serve_without_sealer(&chain, status, addr).await?;
        crate::say!(
            "Noesis follower (chain id {}) of {count} validators, blocks from {sources}",
            chain.chain_id()
        );
        crate::say!(
            "JSON-RPC on http://{local}, head {} (finalized blocks are checked against the validators' certificates)",
            chain.head().header.number
        );
        wait_for_shutdown().await;
        return Ok(());
    }
    let mode = seal_mode((config.block_time > 0).then_some(config.block_time));
    let (chain, local) = launch(&datadir, spec, mode, addr, Vec::new(), Vec::new()).await?;
    crate::say!(
        "Noesis node (chain id {}), JSON-RPC on http://{local}, head {}",
        chain.chain_id(),
        chain.head().header.number
    );
    wait_for_shutdown().await;
    Ok(())
}

/// JSON-RPC for a node whose blocks come from consensus (a validator or a follower):
/// no dev sealer to wake on a submission, `consensus` answering `noesis_consensus`,
/// `eth_syncing` and `noesis_getFinalizedBlocks`.
async fn serve_without_sealer(
    chain: &Arc<Chain>,
    consensus: Arc<dyn noesis_rpc::ConsensusInfo>,
    addr: SocketAddr,
) -> anyhow::Result<SocketAddr> {
    let eth = EthRpc::new(chain.clone(), Vec::new(), Arc::new(|| {})).with_consensus(consensus);
    serve(chain.clone(), eth, addr, Vec::new()).await
}

fn seal_mode(block_time: Option<u64>) -> SealMode {
    match block_time {
        Some(secs) if secs > 0 => SealMode::Interval(Duration::from_secs(secs)),
        _ => SealMode::Automine,
    }
}

fn describe(mode: SealMode) -> String {
    match mode {
        SealMode::Automine => "automine (a block as soon as transactions arrive)".into(),
        SealMode::Interval(d) => format!("a block every {}s", d.as_secs()),
        SealMode::AutomineHeartbeat(d) => format!(
            "automine, and an empty block after {}s without one (subnet epochs count blocks)",
            d.as_secs()
        ),
    }
}

async fn launch(
    datadir: &std::path::Path,
    spec: ChainSpec,
    mode: SealMode,
    addr: SocketAddr,
    signers: Vec<PrivateKeySigner>,
    extra_pages: Vec<(&'static str, noesis_rpc::Page)>,
) -> anyhow::Result<(Arc<Chain>, SocketAddr)> {
    let chain = Chain::open(datadir, spec, POOL_CAPACITY)?;
    let sealer = spawn_dev_sealer(chain.clone(), mode);
    let on_submit: Arc<dyn Fn() + Send + Sync> = Arc::new(move || sealer.notify());
    let eth = EthRpc::new(chain.clone(), signers, on_submit);
    let local = serve(chain.clone(), eth, addr, extra_pages).await?;
    Ok((chain, local))
}

/// Starts JSON-RPC with `/metrics`, `/health` and `extra_pages`; it runs until the
/// process exits.
async fn serve(
    chain: Arc<Chain>,
    eth: EthRpc,
    addr: SocketAddr,
    extra_pages: Vec<(&'static str, noesis_rpc::Page)>,
) -> anyhow::Result<SocketAddr> {
    let metrics_chain = chain;
    let mut pages: Vec<(&'static str, noesis_rpc::Page)> = vec![
        (
            "/metrics",
            (
                "text/plain; version=0.0.4",
                Arc::new(move || metrics_chain.metrics.render()),
            ),
        ),
        (
            "/health",
            (
                "application/json",
                Arc::new(|| "{\"status\":\"ok\"}".to_string()),
            ),
        ),
    ];
    pages.extend(extra_pages);
    let (handle, local) = noesis_rpc::start(addr, eth, pages).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot serve JSON-RPC on {addr}: {e} (is the port in use? try --http-port)"
        )
    })?;
    // The server runs until the process exits.
    std::mem::forget(handle);
    Ok(local)
}

/// Returns on Ctrl-C or SIGTERM (what `noesis testnet stop` and service managers send).
async fn wait_for_shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    eprintln!("shutting down");
}
