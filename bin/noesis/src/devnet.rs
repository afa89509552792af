//! The AI side of `noesis dev`: subnet 1 "text-generation" owned by dev account 0, honest
//! miners (dev accounts 1, 2, …), a validator (dev account 0, staked) and the gateway,
//! each an in-process task that reaches the chain only through its public JSON-RPC, as
//! separate `noesis miner|validator|gateway` processes would.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::U256;
use alloy_signer_local::PrivateKeySigner;
use anyhow::Context;
use noesis_ai::models;
use noesis_execution::modules::subnets::{
    SUBNET_ADDRESS, hotkey_of, interface::INoesisSubnets, state::Param,
};
use noesis_roles::chain::{
    SubnetIdentity, add_stake, create_subnet, send_call, set_hyperparameter, view,
};
use noesis_roles::gateway::{Gateway, GatewayConfig};
use noesis_roles::miner::{Miner, MinerConfig};
use noesis_roles::rpc::RpcClient;
use noesis_roles::validator::{Validator, ValidatorConfig};
use serde_json::json;

use crate::client::parse_amount;
use crate::market::join_subnet;

/// The subnet `noesis dev` runs.
pub const NETUID: u16 = 1;

/// What `noesis dev` starts beside the chain.
pub struct DevMarketOptions {
    /// Honest miners.
    pub miners: usize,
    /// Gateway address.
    pub gateway: SocketAddr,
    /// Tempo of a newly created subnet 1.
    pub tempo: u64,
    /// The subnet's model (id or file).
    pub model: String,
    /// Threads of the shared engine.
    pub threads: Option<usize>,
    /// Thousandths of answers the gateway re-verifies.
    pub verify_per_mille: u32,
}

/// The running market.
pub struct DevMarket {
    /// The gateway's address.
    pub gateway: SocketAddr,
    /// The validator (its scoreboard is served on the RPC port).
    pub validator: Arc<Validator>,
    /// The validator's uid.
    pub validator_uid: u16,
    /// Each miner's uid and address.
    pub miners: Vec<(u16, SocketAddr)>,
    /// The model id the miners serve.
    pub model_id: String,
    /// Subnet 1's tempo as the chain has it (set when the subnet was created).
    pub tempo: u64,
}

/// Fetches the models if needed, then starts subnet 1, its miners, the validator and the
/// gateway against the node at `rpc_url`.
pub async fn start(
    rpc_url: &str,
    datadir: &Path,
    options: DevMarketOptions,
) -> anyhow::Result<DevMarket> {
    let rpc = RpcClient::new(rpc_url);
    let keys: Vec<PrivateKeySigner> = noesis_primitives::dev_accounts(
        u32::try_from(options.miners.saturating_add(1)).context("too many miners")?,
    )
    .iter()
    .map(|a| PrivateKeySigner::from_bytes(&a.private_key))
    .collect::<Result<_, _>>()?;
    let owner = keys.first().context("no dev account")?.clone();

    // The models: the subnet's text model, and the gateway's embedding model.
    let (engine, embedder) = {
        let (datadir, model, threads) = (
            datadir.to_path_buf(),
            options.model.clone(),
            options.threads,
        );
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            if !Path::new(&model).is_file() {
                crate::ai::fetch_with_progress(&model, &datadir)?;
            }
            let engine = crate::ai::load(&crate::ai::ModelArgs {
                model: model.clone(),
                threads,
                data: crate::ai::DataArgs {
                    datadir: Some(datadir.clone()),
                },
            })?;
            let embedder = crate::ai::fetch_with_progress(models::EMBEDDING_MODEL, &datadir)
                .and_then(|_| crate::ai::load_embedder(models::EMBEDDING_MODEL, &datadir, threads));
            Ok((engine, embedder))
        })
        .await??
    };
    let engine = Arc::new(engine);
    let model_id = if Path::new(&options.model).is_file() {
        engine.info.sha256.clone()
    } else {
        options.model.clone()
    };

    // Subnet 1, owned by dev account 0, created once per chain.
    let count = view(&rpc, SUBNET_ADDRESS, INoesisSubnets::networkCountCall {}).await?;
    if count < NETUID {
        let identity = SubnetIdentity {
            name: "text-generation".into(),
            description: format!("Verified chat completions with {model_id}"),
        };
        create_subnet(&rpc, &owner, hotkey_of(owner.address()), Some(identity))
            .await
            .context("cannot create subnet 1")?;
        set_hyperparameter(
            &rpc,
            &owner,
            NETUID,
            Param::Tempo,
            U256::from(options.tempo),
        )
        .await?;
        set_hyperparameter(&rpc, &owner, NETUID, Param::WeightsRateLimit, U256::ZERO).await?;
    }

    // Miners: dev accounts 1..=N, funded from account 0 beyond the ten of genesis.
    let mut miners = Vec::new();
    for (i, key) in keys.iter().enumerate().skip(1) {
        if i >= 10 {
            let balance = rpc
                .quantity("eth_getBalance", json!([key.address(), "latest"]))
                .await?;
            if balance == 0 {
                send_call(
                    &rpc,
                    &owner,
                    key.address(),
                    parse_amount("100ether")?,
                    Vec::new(),
                )
                .await?;
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let uid = join_subnet(&rpc, key, NETUID, addr).await?;
        let miner = Arc::new(Miner::new(
            engine.clone(),
            key.clone(),
            MinerConfig {
                model_id: model_id.clone(),
                slots: 1,
                queue: 8,
                retry_after_secs: 1,
            },
        ));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, noesis_roles::miner::router(miner)).await {
                tracing::error!("miner {uid} stopped: {e}");
            }
        });
        miners.push((uid, addr));
    }

    // The validator: dev account 0, with stake for a validator permit.
    let validator_uid = noesis_roles::chain::ensure_registered(&rpc, &owner, NETUID).await?;
    let staked = view(
        &rpc,
        noesis_execution::modules::subnets::STAKING_ADDRESS,
        noesis_execution::modules::subnets::interface::IStaking::getTotalAlphaStakedCall {
            hotkey: hotkey_of(owner.address()),
            netuid: U256::from(NETUID),
        },
    )
    .await?;
    if staked.is_zero() {
        let (hotkey, amount) = (hotkey_of(owner.address()), parse_amount("100ether")?);
        add_stake(&rpc, &owner, hotkey, NETUID, amount, U256::MAX, false).await?;
    }
    let validator = Arc::new(Validator::new(
        rpc_url,
        owner,
        engine.clone(),
        ValidatorConfig {
            netuid: NETUID,
            model_id: model_id.clone(),
            challenges: 2,
            max_tokens: 32,
            timeout: Duration::from_secs(30),
            poll: Duration::from_secs(1),
        },
    ));
    tokio::spawn(validator.clone().run());

    // The gateway, re-verifying a sample of answers (one in ten by default).
    let gateway = Gateway::new(
        rpc_url,
        GatewayConfig {
            netuid: NETUID,
            attempts: 3,
            timeout: Duration::from_secs(60),
            discovery_timeout: Duration::from_secs(2),
            verify_per_mille: options.verify_per_mille,
            ban: Duration::from_secs(600),
        },
    )
    .with_verifier(engine.clone());
    let gateway = Arc::new(match embedder {
        Ok(embedder) => {
            gateway.with_embeddings(noesis_roles::gateway::embeddings::EmbeddingModel {
                embedder: Arc::new(embedder),
                id: models::EMBEDDING_MODEL.into(),
            })
        }
        Err(e) => {
            eprintln!("embeddings off: {e:#}");
            gateway
        }
    });
    gateway.refresh().await?;
    gateway.spawn_refresh(Duration::from_secs(2));
    let listener = tokio::net::TcpListener::bind(options.gateway)
        .await
        .with_context(|| {
            format!(
                "cannot serve the gateway on {} (is the port in use? try --gateway-port)",
                options.gateway
            )
        })?;
    let gateway_addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, noesis_roles::gateway::router(gateway)).await {
            tracing::error!("the gateway stopped: {e}");
        }
    });
    let tempo =
        u64::try_from(noesis_roles::chain::hyperparameter(&rpc, NETUID, Param::Tempo).await?)?;
    Ok(DevMarket {
        tempo,
        gateway: gateway_addr,
        validator,
        validator_uid,
        miners,
        model_id,
    })
}
