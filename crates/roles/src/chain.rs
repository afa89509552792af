//! The chain actions the roles take, each a signed transaction or a view call over the
//! node's public JSON-RPC: register a hotkey, announce an endpoint, stake, create a
//! subnet, set or commit and reveal weights.

use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use anyhow::{Context, bail};
use noesis_execution::modules::subnets::{
    NEURON_ADDRESS, STAKING_ADDRESS, SUBNET_ADDRESS, hotkey_of,
    interface::{INeuron, INoesisSubnets, ISubnet},
    state::Param,
    weights::commit_hash,
};
use serde_json::{Value, json};

use crate::rpc::RpcClient;

/// Signs and sends a call (gas estimated, so a revert is reported with its reason
/// before anything is sent) and waits for its receipt; fails unless it succeeded.
pub async fn send_call(
    rpc: &RpcClient,
    signer: &PrivateKeySigner,
    to: Address,
    value: U256,
    data: Vec<u8>,
) -> anyhow::Result<Value> {
    let data = Bytes::from(data);
    let chain_id = rpc.quantity("eth_chainId", json!([])).await? as u64;
    let nonce = rpc
        .quantity(
            "eth_getTransactionCount",
            json!([signer.address(), "pending"]),
        )
        .await? as u64;
    let gas = rpc
        .quantity(
            "eth_estimateGas",
            json!([{"from": signer.address(), "to": to, "value": value, "data": data}]),
        )
        .await? as u64;
    let gas_price = rpc.quantity("eth_gasPrice", json!([])).await?;
    let tip = rpc.quantity("eth_maxPriorityFeePerGas", json!([])).await?;
    let tx = TxEip1559 {
        chain_id,
        nonce,
        // Headroom over the estimate, as wallets add.
        gas_limit: gas.saturating_add(gas / 5),
        max_fee_per_gas: gas_price * 2,
        max_priority_fee_per_gas: tip.min(gas_price * 2),
        to: TxKind::Call(to),
        value,
        input: data,
        ..Default::default()
    };
    let signature = signer.sign_hash_sync(&tx.signature_hash())?;
    let envelope: TxEnvelope = tx.into_signed(signature).into();
    let raw = format!(
        "0x{}",
        alloy_primitives::hex::encode(envelope.encoded_2718())
    );
    let hash = rpc.call("eth_sendRawTransaction", json!([raw])).await?;
    let started = Instant::now();
    loop {
        let receipt = rpc.call("eth_getTransactionReceipt", json!([hash])).await?;
        if !receipt.is_null() {
            if receipt.get("status").and_then(Value::as_str) != Some("0x1") {
                bail!("transaction {hash} failed");
            }
            return Ok(receipt);
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("transaction {hash} was not mined within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls a view function and decodes its result.
pub async fn view<C: SolCall>(rpc: &RpcClient, to: Address, call: C) -> anyhow::Result<C::Return> {
    let out = rpc
        .call(
            "eth_call",
            json!([{"to": to, "data": Bytes::from(call.abi_encode())}, "latest"]),
        )
        .await?;
    let bytes: Bytes = serde_json::from_value(out).context("eth_call: not hex bytes")?;
    C::abi_decode_returns(&bytes).map_err(|e| anyhow::anyhow!("cannot decode the answer: {e}"))
}

/// A hotkey's registration on a subnet.
pub struct Registration {
    /// Its UID (`None` if the metagraph does not list it, e.g. pruned at once).
    pub uid: Option<u64>,
    /// The hotkey (the signer's address as bytes32).
    pub hotkey: B256,
    /// The burn paid (zero when it was already registered).
    pub burn: U256,
}

/// The UID of `hotkey` on `netuid`, if registered.
pub async fn uid_of(rpc: &RpcClient, netuid: u16, hotkey: B256) -> anyhow::Result<Option<u64>> {
    let metagraph = rpc.call("noesis_metagraph", json!([netuid])).await?;
    Ok(metagraph["neurons"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["hotkey"] == json!(hotkey)))
        .and_then(|n| n["uid"].as_u64()))
}

/// Registers the signer's hotkey on `netuid` by burning the current registration cost.
pub async fn register(
    rpc: &RpcClient,
    key: &PrivateKeySigner,
    netuid: u16,
) -> anyhow::Result<Registration> {
    let burn = view(rpc, SUBNET_ADDRESS, INoesisSubnets::getBurnCall { netuid }).await?;
    let hotkey = hotkey_of(key.address());
    let call = INeuron::burnedRegisterCall { netuid, hotkey };
    send_call(rpc, key, NEURON_ADDRESS, burn, call.abi_encode()).await?;
    Ok(Registration {
        uid: uid_of(rpc, netuid, hotkey).await?,
        hotkey,
        burn,
    })
}

/// The signer's UID on `netuid`, registering it first when it has none.
pub async fn ensure_registered(
    rpc: &RpcClient,
    key: &PrivateKeySigner,
    netuid: u16,
) -> anyhow::Result<u16> {
    let hotkey = hotkey_of(key.address());
    let uid = match uid_of(rpc, netuid, hotkey).await? {
        Some(uid) => Some(uid),
        None => register(rpc, key, netuid).await?.uid,
    };
    let uid = uid.with_context(|| {
        format!("hotkey {hotkey} was registered on subnet {netuid} but holds no uid (pruned?)")
    })?;
    u16::try_from(uid).context("uid out of range")
}

/// Announces the signer's endpoint on `netuid` (`serveAxon`).
pub async fn serve_axon(
    rpc: &RpcClient,
    key: &PrivateKeySigner,
    netuid: u16,
    ip: std::net::IpAddr,
    port: u16,
) -> anyhow::Result<()> {
    let (ip, ip_type) = match ip {
        std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)), 4u8),
        std::net::IpAddr::V6(v6) => (u128::from(v6), 6u8),
    };
    let call = INeuron::serveAxonCall {
        netuid,
        version: 1,
        ip,
        port,
        ipType: ip_type,
        protocol: 0,
        placeholder1: 0,
        placeholder2: 0,
    };
    send_call(rpc, key, NEURON_ADDRESS, U256::ZERO, call.abi_encode()).await?;
    Ok(())
}

/// What a subnet is called and what it is for (`registerNetwork`'s identity fields).
pub struct SubnetIdentity {
    /// `subnetName`.
    pub name: String,
    /// `description`.
    pub description: String,
}

/// A subnet just created.
pub struct NewSubnet {
    /// Its netuid.
    pub netuid: u16,
    /// The lock cost paid, wei.
    pub lock_cost: U256,
    /// The creating transaction's receipt.
    pub receipt: Value,
}

/// Creates a subnet owned by the signer with `hotkey` as its owner hotkey, paying the
/// current lock cost; with `identity`, its name and description are recorded too.
pub async fn create_subnet(
    rpc: &RpcClient,
    key: &PrivateKeySigner,
    hotkey: B256,
    identity: Option<SubnetIdentity>,
) -> anyhow::Result<NewSubnet> {
    let lock_cost = view(rpc, SUBNET_ADDRESS, INoesisSubnets::getLockCostCall {}).await?;
    let data = match identity {
        None => ISubnet::registerNetwork_0Call { hotkey }.abi_encode(),
        Some(identity) => ISubnet::registerNetwork_1Call {
            hotkey,
            subnetName: identity.name,
            githubRepo: String::new(),
            subnetContact: String::new(),
            subnetUrl: String::new(),
            discord: String::new(),
            description: identity.description,
            additional: String::new(),
        }
        .abi_encode(),
    };
    let receipt = send_call(rpc, key, SUBNET_ADDRESS, lock_cost, data).await?;
    let netuid = view(rpc, SUBNET_ADDRESS, INoesisSubnets::networkCountCall {}).await?;
    Ok(NewSubnet {
        netuid,
        lock_cost,
        receipt,
    })
}

/// Reads a hyperparameter of `netuid`.
pub async fn hyperparameter(rpc: &RpcClient, netuid: u16, param: Param) -> anyhow::Result<U256> {
    let call = INoesisSubnets::getHyperparameterCall {
        netuid,
        param: param as u8,
    };
    view(rpc, SUBNET_ADDRESS, call).await
}

/// Sets a hyperparameter of `netuid` (the signer must own the subnet).
pub async fn set_hyperparameter(
    rpc: &RpcClient,
    key: &PrivateKeySigner,
    netuid: u16,
    param: Param,
    value: U256,
) -> anyhow::Result<()> {
    let call = INoesisSubnets::setHyperparameterCall {
        netuid,
        param: param as u8,
        value,
    };
    send_call(rpc, key, SUBNET_ADDRESS, U256::ZERO, call.abi_encode()).await?;
    Ok(())
}

/// Stakes `amount` wei of the signer's native on `hotkey` on `netuid` through the
/// subnet's pool, at a price no worse than `limit_price` (wei per alpha, scaled by 1e18;
/// `U256::MAX` for none), all or nothing unless `allow_partial`.
pub async fn add_stake(
    rpc: &RpcClient,
    key: &PrivateKeySigner,
    hotkey: B256,
    netuid: u16,
    amount: U256,
    limit_price: U256,
    allow_partial: bool,
) -> anyhow::Result<()> {
    let call = INoesisSubnets::addStakeWeiCall {
        hotkey,
        netuid,
        limitPrice: limit_price,
        allowPartial: allow_partial,
    };
    send_call(rpc, key, STAKING_ADDRESS, amount, call.abi_encode()).await?;
    Ok(())
}

/// A weight vector as the neuron precompile takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightVector {
    /// Destination uids, ascending.
    pub uids: Vec<u16>,
    /// Their weights (`u16`, the chain normalizes).
    pub values: Vec<u16>,
    /// The weights version key.
    pub version_key: u64,
}

/// Sets weights directly (subnets with commit-reveal off).
pub async fn set_weights(
    rpc: &RpcClient,
    key: &PrivateKeySigner,
    netuid: u16,
    weights: &WeightVector,
) -> anyhow::Result<()> {
    let call = INeuron::setWeightsCall {
        netuid,
        dests: weights.uids.clone(),
        weights: weights.values.clone(),
        versionKey: weights.version_key,
    };
    send_call(rpc, key, NEURON_ADDRESS, U256::ZERO, call.abi_encode()).await?;
    Ok(())
}

/// Commits the hash of `weights` with `salt` (reveal later with the same salt).
pub async fn commit_weights(
    rpc: &RpcClient,
    key: &PrivateKeySigner,
    netuid: u16,
    weights: &WeightVector,
    salt: &[u16],
) -> anyhow::Result<()> {
    let hash = commit_hash(
        key.address(),
        netuid,
        &weights.uids,
        &weights.values,
        salt,
        weights.version_key,
    );
    let call = INeuron::commitWeightsCall {
        netuid,
        commitHash: hash,
    };
    send_call(rpc, key, NEURON_ADDRESS, U256::ZERO, call.abi_encode()).await?;
    Ok(())
}

/// Reveals weights committed with [`commit_weights`].
pub async fn reveal_weights(
    rpc: &RpcClient,
    key: &PrivateKeySigner,
    netuid: u16,
    weights: &WeightVector,
    salt: &[u16],
) -> anyhow::Result<()> {
    let call = INeuron::revealWeightsCall {
        netuid,
        uids: weights.uids.clone(),
        values: weights.values.clone(),
        salt: salt.to_vec(),
        versionKey: weights.version_key,
    };
    send_call(rpc, key, NEURON_ADDRESS, U256::ZERO, call.abi_encode()).await?;
    Ok(())
}
