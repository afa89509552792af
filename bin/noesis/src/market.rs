//! The inference market's roles as commands, talking to the chain only through its public
//! JSON-RPC. `noesis miner` registers the signer on a subnet if it is not yet, announces
//! its endpoint on chain (`serveAxon`), and serves the model through
//! `noesis_roles::miner`; `noesis gateway` serves `noesis_roles::gateway` in front of the
//! subnet's miners.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use noesis_execution::modules::subnets::hotkey_of;
use noesis_roles::miner::{Miner, MinerConfig, router};
use serde_json::json;

use crate::ai::ModelArgs;
use crate::cli::SignerArgs;
use crate::client::RpcClient;
use crate::subnets::{register, serve_axon, uid_of};

/// `noesis miner`.
#[derive(Args, Debug)]
pub struct MinerArgs {
    /// The subnet to mine on.
    #[arg(long, default_value_t = 1)]
    pub netuid: u16,
    /// Address the inference server listens on (and announces on chain).
    #[arg(long, default_value = "127.0.0.1:8100")]
    pub listen: SocketAddr,
    /// Generations served at once; more requests get 429 with Retry-After.
    #[arg(long, default_value_t = 1)]
    pub slots: usize,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// Runs the miner until interrupted.
pub async fn run(args: MinerArgs) -> anyhow::Result<()> {
    let key = args.signer.signer()?;
    let rpc = RpcClient::new(&args.signer.rpc.rpc);
    let model = args.model.model.clone();
    let engine = {
        let model_args = args.model;
        tokio::task::spawn_blocking(move || crate::ai::load(&model_args)).await??
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let hotkey = hotkey_of(key.address());
    let uid = match uid_of(&rpc, args.netuid, hotkey).await? {
        Some(uid) => Some(uid),
        None => register(&rpc, &key, args.netuid).await?.uid,
    };
    serve_axon(
        &rpc,
        &key,
        args.netuid,
        args.listen.ip(),
        args.listen.port(),
    )
    .await?;
    let model_id = if std::path::Path::new(&model).is_file() {
        engine.info.sha256.clone()
    } else {
        model
    };
    say!(
        "{}",
        json!({
            "netuid": args.netuid,
            "uid": uid,
            "hotkey": hotkey,
            "endpoint": format!("http://{}/v1", args.listen),
            "model": model_id,
            "model_sha256": engine.info.sha256,
        })
    );
    let miner = Arc::new(Miner::new(
        Arc::new(engine),
        key,
        MinerConfig {
            model_id,
            slots: args.slots,
            retry_after_secs: 1,
        },
    ));
    axum::serve(listener, router(miner))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the inference server stopped")
}

/// `noesis gateway`.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// The subnet whose miners serve requests.
    #[arg(long, default_value_t = 1)]
    pub netuid: u16,
    /// Address the OpenAI-compatible API listens on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Miners tried per request before answering 503.
    #[arg(long, default_value_t = 3)]
    pub attempts: usize,
    /// Seconds allowed for one miner's answer.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    /// Seconds between re-reads of the metagraph and the miners' models.
    #[arg(long, default_value_t = 10)]
    pub refresh_secs: u64,
    /// Share of answers whose proof is re-verified with --model before they are returned
    /// (0 to 1; 0 loads no model and checks receipts only).
    #[arg(long, default_value_t = 0.1)]
    pub verify_sample: f64,
    /// The model the subnet asks for (receipts must name it; sampled proofs run on it).
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub rpc: crate::cli::RpcArgs,
}

/// Runs the gateway until interrupted.
pub async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    use noesis_roles::gateway::{Gateway, GatewayConfig};
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.verify_sample),
        "--verify-sample must be between 0 and 1 (a share of answers)"
    );
    let verify_per_mille = (args.verify_sample * 1000.0).round() as u32;
    let gateway = Gateway::new(
        &args.rpc.rpc,
        GatewayConfig {
            netuid: args.netuid,
            attempts: args.attempts,
            timeout: std::time::Duration::from_secs(args.timeout_secs),
            discovery_timeout: std::time::Duration::from_secs(2),
            verify_per_mille,
        },
    );
    let gateway = Arc::new(if verify_per_mille > 0 {
        let model_args = args.model;
        let engine = tokio::task::spawn_blocking(move || crate::ai::load(&model_args)).await??;
        gateway.with_verifier(Arc::new(engine))
    } else {
        gateway
    });
    let miners = gateway.refresh().await?;
    gateway.spawn_refresh(std::time::Duration::from_secs(args.refresh_secs.max(1)));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    say!(
        "{}",
        json!({
            "netuid": args.netuid,
            "endpoint": format!("http://{}/v1", args.listen),
            "miners": miners,
        })
    );
    axum::serve(listener, noesis_roles::gateway::router(gateway))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the gateway stopped")
}
