//! The inference market's roles as commands, talking to the chain only through its public
//! JSON-RPC. `noesis miner` registers the signer on a subnet if it is not yet, announces
//! its endpoint on chain (`serveAxon`), and serves the model through
//! `noesis_roles::miner`; `noesis validator` runs `noesis_roles::validator` (challenge,
//! verify, score, commit and reveal weights); `noesis gateway` serves
//! `noesis_roles::gateway` in front of the subnet's miners.

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
use noesis_roles::chain::{ensure_registered, serve_axon};

/// `noesis miner`.
#[derive(Args, Debug)]
pub struct MinerArgs {
    /// The subnet to mine on.
    #[arg(long, default_value_t = 1)]
    pub netuid: u16,
    /// Address the inference server listens on (and announces on chain).
    #[arg(long, default_value = "127.0.0.1:8100")]
    pub listen: SocketAddr,
    /// Generations served at once.
    #[arg(long, default_value_t = 1)]
    pub slots: usize,
    /// Requests that may wait for a slot, first come first served; more get 429 with
    /// Retry-After.
    #[arg(long, default_value_t = 8)]
    pub queue: usize,
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
    let engine = crate::ai::load_async(args.model).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let hotkey = hotkey_of(key.address());
    let uid = join_subnet(&rpc, &key, args.netuid, args.listen).await?;
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
            queue: args.queue,
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

/// Registers `key` on `netuid` when it holds no uid there and announces `endpoint` as its
/// axon; returns its uid.
pub async fn join_subnet(
    rpc: &RpcClient,
    key: &alloy_signer_local::PrivateKeySigner,
    netuid: u16,
    endpoint: SocketAddr,
) -> anyhow::Result<u16> {
    let uid = ensure_registered(rpc, key, netuid).await?;
    serve_axon(rpc, key, netuid, endpoint.ip(), endpoint.port()).await?;
    Ok(uid)
}

/// `noesis validator`.
#[derive(Args, Debug)]
pub struct ValidatorArgs {
    /// The subnet to validate.
    #[arg(long, default_value_t = 1)]
    pub netuid: u16,
    /// Challenges per miner per epoch.
    #[arg(long, default_value_t = 2)]
    pub challenges: u32,
    /// Completion tokens each challenge asks for.
    #[arg(long, default_value_t = 32)]
    pub max_tokens: u32,
    /// Seconds allowed for one answer (a slower one fails the challenge).
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Serve the latest scores as JSON at `http://ADDR/scores`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The model the subnet asks for: proofs are re-run on it.
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// Runs the validator until interrupted.
pub async fn validator(args: ValidatorArgs) -> anyhow::Result<()> {
    use noesis_roles::validator::{Validator, ValidatorConfig, router};
    let key = args.signer.signer()?;
    let rpc = RpcClient::new(&args.signer.rpc.rpc);
    let model_id = args.model.model.clone();
    let engine = crate::ai::load_async(args.model).await?;
    let uid = ensure_registered(&rpc, &key, args.netuid).await?;
    let row = rpc.call("noesis_neuron", json!([args.netuid, uid])).await?;
    if row["stake"].as_str().is_none_or(|s| s == "0x0") {
        eprintln!(
            "warning: uid {uid} has no stake on subnet {}: its weights count for nothing until \
             it stakes (noesis stake add --netuid {} --amount 10ether)",
            args.netuid, args.netuid
        );
    }
    let validator = Arc::new(Validator::new(
        &args.signer.rpc.rpc,
        key,
        Arc::new(engine),
        ValidatorConfig {
            netuid: args.netuid,
            model_id,
            challenges: args.challenges.max(1),
            max_tokens: args.max_tokens.max(1),
            timeout: std::time::Duration::from_secs(args.timeout_secs.max(1)),
            poll: std::time::Duration::from_secs(1),
        },
    ));
    let scores = match args.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let app = router(validator.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!("the scores server stopped: {e}");
                }
            });
            Some(format!("http://{addr}/scores"))
        }
        None => None,
    };
    say!(
        "{}",
        json!({"netuid": args.netuid, "uid": uid, "hotkey": validator.scoreboard().hotkey, "scores": scores})
    );
    tokio::select! {
        () = validator.run() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
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
    /// Seconds a miner caught cheating (a rejected proof or receipt) gets no traffic.
    #[arg(long, default_value_t = 600)]
    pub ban_secs: u64,
    /// Share of answers whose proof is re-verified with --model before they are returned
    /// (0 to 1; 0 loads no model and checks receipts only).
    #[arg(long, default_value_t = 0.1)]
    pub verify_sample: f64,
    /// The model the subnet asks for (receipts must name it; sampled proofs run on it).
    #[command(flatten)]
    pub model: ModelArgs,
    /// The embedding model served at /v1/embeddings (a folder or a fetched model's id);
    /// "none" turns embeddings off.
    #[arg(long, default_value = noesis_ai::models::EMBEDDING_MODEL)]
    pub embedding_model: String,
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
            ban: std::time::Duration::from_secs(args.ban_secs),
        },
    );
    let (datadir, threads) = (args.model.data.dir(), args.model.threads);
    let gateway = if verify_per_mille > 0 {
        let engine = crate::ai::load_async(args.model).await?;
        gateway.with_verifier(Arc::new(engine))
    } else {
        gateway
    };
    let gateway = Arc::new(if args.embedding_model == "none" {
        gateway
    } else {
        let spec = args.embedding_model.clone();
        let embedder =
            tokio::task::spawn_blocking(move || crate::ai::load_embedder(&spec, &datadir, threads))
                .await?
                .context("--embedding-model (\"none\" turns embeddings off)")?;
        gateway.with_embeddings(noesis_roles::gateway::embeddings::EmbeddingModel {
            embedder: Arc::new(embedder),
            id: embedding_id(&args.embedding_model),
        })
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

/// The public id of an embedding model given as `--embedding-model`: a known id as it is,
/// a folder by its name.
pub fn embedding_id(spec: &str) -> String {
    std::path::Path::new(spec)
        .file_name()
        .map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned())
}

/// `noesis chat`.
#[derive(Args, Debug)]
pub struct ChatArgs {
    /// The question.
    pub question: String,
    /// The gateway's OpenAI base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000/v1")]
    pub gateway: String,
    /// The model to ask.
    #[arg(long, default_value = noesis_ai::models::DEFAULT_MODEL)]
    pub model: String,
    /// Most tokens in the answer.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// Print the whole answer object (with its receipt) as JSON instead.
    #[arg(long)]
    pub json: bool,
}

/// Asks the gateway, checks the receipt's signature here too, prints answer and verdict.
pub async fn chat(args: ChatArgs) -> anyhow::Result<()> {
    let url = format!("{}/chat/completions", args.gateway.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .json(&json!({
            "model": args.model,
            "messages": [{"role": "user", "content": args.question}],
            "max_tokens": args.max_tokens,
        }))
        .send()
        .await
        .with_context(|| {
            format!("cannot reach the gateway at {url} (is `noesis dev` running? see --gateway)")
        })?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("the gateway's answer ({status}) is not JSON"))?;
    if !status.is_success() {
        anyhow::bail!(
            "the gateway answered {status}: {}",
            body["error"]["message"].as_str().unwrap_or("no message")
        );
    }
    let answer: noesis_roles::openai::ChatCompletion = serde_json::from_value(body.clone())
        .context("the gateway's answer is not a chat completion")?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let text = answer
        .choices
        .first()
        .map(|c| c.message.content.clone())
        .unwrap_or_default();
    say!("{text}");
    let receipt = answer.noesis.receipt.clone();
    let signature = match receipt.check() {
        Ok(checked) => format!("valid, signed by {}", checked.file.receipt.signer),
        Err(e) => format!("INVALID: {e}"),
    };
    say!(
        "\n-- receipt: miner uid {}, model {}, {} tokens; signature {signature}\n-- gateway: {}",
        answer
            .noesis
            .miner_uid
            .map_or_else(|| "?".to_string(), |u| u.to_string()),
        answer.noesis.receipt.receipt.model,
        answer.usage.completion_tokens,
        answer
            .noesis
            .verdict
            .as_deref()
            .unwrap_or("no verdict given")
    );
    Ok(())
}
