//! `noesis dev` and `noesis node`: open the chain, start block production and the
//! RPC server, and run until interrupted.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use alloy_signer_local::PrivateKeySigner;
use anyhow::Context;
use noesis_node::{Chain, SealMode, spawn_dev_sealer};
use noesis_primitives::{ChainSpec, dev_accounts};
use noesis_rpc::EthRpc;
use serde::Deserialize;

use crate::cli::{DevArgs, NodeArgs, home_dir};

/// Pool capacity (transactions).
const POOL_CAPACITY: usize = 200_000;

/// `noesis dev`.
pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let datadir = args.datadir.unwrap_or_else(|| home_dir().join("dev"));
    let mut spec = ChainSpec::dev();
    if let Some(gas_limit) = args.gas_limit {
        spec.gas_limit = gas_limit;
    }
    let accounts = dev_accounts(10);
    let signers: Vec<PrivateKeySigner> = accounts
        .iter()
        .filter_map(|a| PrivateKeySigner::from_bytes(&a.private_key).ok())
        .collect();
    let mode = seal_mode(args.block_time);
    let addr = SocketAddr::new(args.http.http_addr, args.http.http_port);
    let (chain, local) = launch(&datadir, spec, mode, addr, signers).await?;

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
    wait_for_shutdown().await;
    Ok(())
}

/// The config file of `noesis node`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeConfig {
    /// Data directory.
    datadir: PathBuf,
    /// Chain spec JSON file (relative paths are relative to the config file).
    chain: PathBuf,
    #[serde(default = "default_addr")]
    http_addr: std::net::IpAddr,
    #[serde(default = "default_port")]
    http_port: u16,
    /// Seconds between blocks; 0 seals on every transaction.
    #[serde(default)]
    block_time: u64,
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
    let mode = seal_mode((config.block_time > 0).then_some(config.block_time));
    let addr = SocketAddr::new(config.http_addr, config.http_port);
    let (chain, local) = launch(&datadir, spec, mode, addr, Vec::new()).await?;
    crate::say!(
        "Noesis node (chain id {}), JSON-RPC on http://{local}, head {}",
        chain.chain_id(),
        chain.head().header.number
    );
    wait_for_shutdown().await;
    Ok(())
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
    }
}

async fn launch(
    datadir: &std::path::Path,
    spec: ChainSpec,
    mode: SealMode,
    addr: SocketAddr,
    signers: Vec<PrivateKeySigner>,
) -> anyhow::Result<(Arc<Chain>, SocketAddr)> {
    let chain = Chain::open(datadir, spec, POOL_CAPACITY)?;
    let sealer = spawn_dev_sealer(chain.clone(), mode);
    let on_submit: Arc<dyn Fn() + Send + Sync> = Arc::new(move || sealer.notify());
    let eth = EthRpc::new(chain.clone(), signers, on_submit);
    let metrics_chain = chain.clone();
    let pages: Vec<(&'static str, noesis_rpc::Page)> = vec![
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
    let (handle, local) = noesis_rpc::start(addr, eth, pages).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot serve JSON-RPC on {addr}: {e} (is the port in use? try --http-port)"
        )
    })?;
    // The server runs until the process exits.
    std::mem::forget(handle);
    Ok((chain, local))
}

async fn wait_for_shutdown() {
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("shutting down");
}
