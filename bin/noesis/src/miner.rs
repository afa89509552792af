//! `noesis miner`: registers the signer on a subnet if it is not yet, announces its
//! endpoint on chain (`serveAxon`), and serves the model through the OpenAI-compatible
//! inference server of `noesis_roles::miner`. Talks to the chain only through the
//! public JSON-RPC.

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
