//! Subnet commands in btcli's vocabulary, over the node's public JSON-RPC and the
//! subnets module's precompiles: `subnet`, `neuron`, `stake`, `weights`.

use alloy_primitives::{B256, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use anyhow::{Context, bail};
use noesis_execution::modules::subnets::{
    STAKING_ADDRESS, SUBNET_ADDRESS, hotkey_of,
    interface::INoesisSubnets,
    state::{PARAMS, Param},
};
use serde_json::{Value, json};

use crate::{
    cli::{NeuronCommand, StakeCommand, SubnetCommand, WeightsCommand},
    client::{RpcClient, parse_amount, send_call},
};

/// A parameter's CLI name: `Tempo` → `tempo`, `MaxUids` → `max_uids`.
fn param_name(p: Param) -> String {
    let mut out = String::new();
    for (i, c) in format!("{p:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn param_by_name(name: &str) -> anyhow::Result<Param> {
    PARAMS
        .iter()
        .copied()
        .find(|p| param_name(*p) == name)
        .with_context(|| {
            let names: Vec<String> = PARAMS.iter().map(|p| param_name(*p)).collect();
            format!(
                "unknown hyperparameter {name:?}; one of: {}",
                names.join(", ")
            )
        })
}

fn hotkey_or_own(hotkey: Option<B256>, signer: &PrivateKeySigner) -> B256 {
    hotkey.unwrap_or_else(|| hotkey_of(signer.address()))
}

/// `noesis subnet …`.
pub async fn subnet(command: SubnetCommand) -> anyhow::Result<()> {
    match command {
        SubnetCommand::Create { hotkey, signer } => {
            let rpc = RpcClient::new(&signer.rpc.rpc);
            let key = signer.signer()?;
            let created = create_subnet(&rpc, &key, hotkey_or_own(hotkey, &key), None).await?;
            say!(
                "{}",
                json!({"netuid": created.netuid, "lockCost": created.lock_cost.to_string(), "transaction": created.receipt["transactionHash"]})
            );
            Ok(())
        }
        SubnetCommand::List { rpc } => {
            let rpc = RpcClient::new(&rpc.rpc);
            let count = view(&rpc, SUBNET_ADDRESS, INoesisSubnets::networkCountCall {}).await?;
            let mut subnets = Vec::new();
            for netuid in 1..=count {
                match rpc.call("noesis_metagraph", json!([netuid])).await {
                    Ok(m) => subnets.push(json!({
                        "netuid": netuid,
                        "owner": m["owner"],
                        "tempo": m["tempo"],
                        "neurons": m["neurons"].as_array().map_or(0, Vec::len),
                        "burn": m["burn"],
                        "pool": m["pool"],
                    })),
                    Err(_) => continue,
                }
            }
            say!("{}", serde_json::to_string_pretty(&subnets)?);
            Ok(())
        }
        SubnetCommand::Hyperparams { netuid, rpc } => {
            let rpc = RpcClient::new(&rpc.rpc);
            let mut out = serde_json::Map::new();
            for p in PARAMS {
                let call = INoesisSubnets::getHyperparameterCall {
                    netuid,
                    param: p as u8,
                };
                let value = view(&rpc, SUBNET_ADDRESS, call).await?;
                out.insert(param_name(p), Value::String(value.to_string()));
            }
            say!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        SubnetCommand::Set {
            netuid,
            param,
            value,
            signer,
        } => {
            let rpc = RpcClient::new(&signer.rpc.rpc);
            let key = signer.signer()?;
            set_hyperparameter(&rpc, &key, netuid, param_by_name(&param)?, value).await?;
            say!("{}", json!({"netuid": netuid, param: value.to_string()}));
            Ok(())
        }
        SubnetCommand::Metagraph { netuid, rpc } => {
            let rpc = RpcClient::new(&rpc.rpc);
            let m = rpc.call("noesis_metagraph", json!([netuid])).await?;
            say!("{}", serde_json::to_string_pretty(&m)?);
            Ok(())
        }
    }
}

use noesis_roles::chain::{
    WeightVector, add_stake, commit_weights, create_subnet, register, reveal_weights, serve_axon,
    set_hyperparameter, set_weights, view,
};

/// `noesis neuron …`.
pub async fn neuron(command: NeuronCommand) -> anyhow::Result<()> {
    match command {
        NeuronCommand::Register { netuid, signer } => {
            let rpc = RpcClient::new(&signer.rpc.rpc);
            let key = signer.signer()?;
            let registered = register(&rpc, &key, netuid).await?;
            say!(
                "{}",
                json!({"netuid": netuid, "uid": registered.uid, "hotkey": registered.hotkey, "burn": registered.burn.to_string()})
            );
            Ok(())
        }
        NeuronCommand::Serve {
            netuid,
            ip,
            port,
            signer,
        } => {
            let rpc = RpcClient::new(&signer.rpc.rpc);
            let key = signer.signer()?;
            serve_axon(&rpc, &key, netuid, ip, port).await?;
            say!("{}", json!({"netuid": netuid, "served": true}));
            Ok(())
        }
    }
}

/// `noesis stake …`.
pub async fn stake(command: StakeCommand) -> anyhow::Result<()> {
    match command {
        StakeCommand::Add {
            netuid,
            hotkey,
            amount,
            limit_price,
            allow_partial,
            signer,
        } => {
            let rpc = RpcClient::new(&signer.rpc.rpc);
            let key = signer.signer()?;
            let value = parse_amount(&amount)?;
            add_stake(
                &rpc,
                &key,
                hotkey_or_own(hotkey, &key),
                netuid,
                value,
                limit_price.unwrap_or(U256::MAX),
                allow_partial,
            )
            .await?;
            say!("{}", json!({"netuid": netuid, "staked": value.to_string()}));
            Ok(())
        }
        StakeCommand::Remove {
            netuid,
            hotkey,
            alpha,
            limit_price,
            allow_partial,
            signer,
        } => {
            let rpc = RpcClient::new(&signer.rpc.rpc);
            let key = signer.signer()?;
            let call = INoesisSubnets::removeStakeWeiCall {
                hotkey: hotkey_or_own(hotkey, &key),
                netuid,
                alpha,
                limitPrice: limit_price.unwrap_or(U256::ZERO),
                allowPartial: allow_partial,
            };
            send_call(&rpc, &key, STAKING_ADDRESS, U256::ZERO, call.abi_encode()).await?;
            say!(
                "{}",
                json!({"netuid": netuid, "unstaked": alpha.to_string()})
            );
            Ok(())
        }
    }
}

/// `noesis weights …`.
pub async fn weights(command: WeightsCommand) -> anyhow::Result<()> {
    let (name, args) = match &command {
        WeightsCommand::Set(a) => ("set", a),
        WeightsCommand::Commit(a) => ("commit", a),
        WeightsCommand::Reveal(a) => ("reveal", a),
    };
    if args.uids.len() != args.weights.len() {
        bail!(
            "--uids has {} entries but --weights has {}",
            args.uids.len(),
            args.weights.len()
        );
    }
    let rpc = RpcClient::new(&args.signer.rpc.rpc);
    let key = args.signer.signer()?;
    let netuid = args.netuid;
    let weights = WeightVector {
        uids: args.uids.clone(),
        values: args.weights.clone(),
        version_key: args.version_key,
    };
    match &command {
        WeightsCommand::Set(_) => set_weights(&rpc, &key, netuid, &weights).await?,
        WeightsCommand::Commit(_) => {
            if args.salt.is_empty() {
                bail!("--salt is required to commit (keep it: the reveal needs the same salt)");
            }
            commit_weights(&rpc, &key, netuid, &weights, &args.salt).await?;
        }
        WeightsCommand::Reveal(_) => {
            reveal_weights(&rpc, &key, netuid, &weights, &args.salt).await?;
        }
    }
    say!("{}", json!({"netuid": netuid, "weights": name}));
    Ok(())
}
