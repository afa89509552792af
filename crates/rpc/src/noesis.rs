//! The `noesis_*` namespace: views of the native modules that Ethereum's methods do not
//! give. `noesis_metagraph` and `noesis_neuron` show each uid's stake, consensus,
//! incentive, dividends, trust, emission and, when it earned nothing in the last epoch,
//! why (ADR 0006 for where the state lives). `noesis_consensus` shows a validator's
//! consensus engine (ADR 0013).

use alloy_primitives::{Address, B256, U64, U256};
use alloy_rpc_types_eth::BlockId;
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use noesis_execution::{
    SUBNETS_STATE_ACCOUNT,
    modules::{
        ModuleError, ViewState,
        subnets::{
            query::{self, MetagraphView, NeuronView},
            state::{Axon, Reason},
        },
    },
};
use serde::Serialize;

use crate::{EthRpc, FinalizedBlocks, error::RpcError};

/// `noesis_*` methods.
#[rpc(server, namespace = "noesis")]
pub trait NoesisApi {
    /// A subnet's metagraph at a block (default `latest`).
    #[method(name = "metagraph")]
    fn metagraph(&self, netuid: u16, block: Option<BlockId>) -> RpcResult<Metagraph>;
    /// One uid of a subnet at a block (default `latest`).
    #[method(name = "neuron")]
    fn neuron(&self, netuid: u16, uid: u16, block: Option<BlockId>) -> RpcResult<NeuronInfo>;
    /// The consensus engine: view, leader, validators, peers heard from, finalized tip
    /// (an error on a dev node, which runs none).
    #[method(name = "consensus")]
    fn consensus(&self) -> RpcResult<serde_json::Value>;
    /// Finalized blocks from `from` on with their finalization certificates, for
    /// followers (validators only). `limit` defaults to and is capped at 64.
    #[method(name = "getFinalizedBlocks")]
    async fn get_finalized_blocks(
        &self,
        from: U64,
        limit: Option<U64>,
    ) -> RpcResult<FinalizedBlocks>;
}

/// A subnet's metagraph as RPC reports it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metagraph {
    /// The subnet.
    pub netuid: u16,
    /// The block the view is of.
    pub block: u64,
    /// Its owner.
    pub owner: Address,
    /// Blocks per epoch.
    pub tempo: u64,
    /// Block of the last epoch.
    pub last_epoch_block: u64,
    /// Registration burn, in wei.
    pub burn: U256,
    /// Pool reserves and price (native wei per alpha, scaled by 1e18).
    pub pool: Pool,
    /// Every uid.
    pub neurons: Vec<NeuronInfo>,
}

/// A subnet pool.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    /// Native reserve, wei.
    pub native_reserve: U256,
    /// Alpha reserve.
    pub alpha_reserve: U256,
}

/// One uid as RPC reports it. Proportions are `u16` over 65535, as on Bittensor.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NeuronInfo {
    /// The uid.
    pub uid: u16,
    /// Its hotkey.
    pub hotkey: B256,
    /// The address that registered it.
    pub coldkey: Address,
    /// Alpha staked on its hotkey in the subnet.
    pub stake: U256,
    /// Rank.
    pub rank: u16,
    /// Consensus.
    pub consensus: u16,
    /// Incentive.
    pub incentive: u16,
    /// Dividends.
    pub dividends: u16,
    /// Trust.
    pub trust: u16,
    /// Validator trust.
    pub validator_trust: u16,
    /// Alpha emitted to it in the last epoch.
    pub emission: U256,
    /// Holds a validator permit.
    pub validator_permit: bool,
    /// Active at the last epoch.
    pub active: bool,
    /// Block of its last weights.
    pub last_update: u64,
    /// Block it registered at.
    pub registration_block: u64,
    /// Inside its immunity period.
    pub immune: bool,
    /// Pruning score.
    pub pruning_score: u64,
    /// `earned`, or why it earned nothing in the last epoch: `inactive`,
    /// `no_validator_permit`, `weights_clipped_to_zero`, `commit_not_revealed`,
    /// `pruned`, `not_weighted`; `no_epoch_yet` for a uid no epoch has judged.
    pub reason: &'static str,
    /// Its served endpoint.
    pub axon: Option<AxonInfo>,
}

/// A served endpoint.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AxonInfo {
    /// IP address.
    pub ip: String,
    /// Port.
    pub port: u16,
    /// 4 or 6.
    pub ip_type: u8,
    /// Protocol code.
    pub protocol: u8,
    /// Version.
    pub version: u32,
    /// Block it was served at.
    pub block: u64,
}

fn reason_name(reason: Reason) -> &'static str {
    match reason {
        Reason::Earned => "earned",
        Reason::Inactive => "inactive",
        Reason::NoValidatorPermit => "no_validator_permit",
        Reason::WeightsClippedToZero => "weights_clipped_to_zero",
        Reason::CommitNotRevealed => "commit_not_revealed",
        Reason::Pruned => "pruned",
        Reason::NotWeighted => "not_weighted",
    }
}

fn axon_info(axon: Axon) -> AxonInfo {
    let ip = if axon.ip_type == 6 {
        std::net::Ipv6Addr::from(axon.ip).to_string()
    } else {
        std::net::Ipv4Addr::from(u32::try_from(axon.ip).unwrap_or(u32::MAX)).to_string()
    };
    AxonInfo {
        ip,
        port: axon.port,
        ip_type: axon.ip_type,
        protocol: axon.protocol,
        version: axon.version,
        block: axon.block,
    }
}

fn neuron_info(n: NeuronView) -> NeuronInfo {
    NeuronInfo {
        uid: n.uid,
        hotkey: n.hotkey,
        coldkey: n.coldkey,
        stake: n.stake,
        rank: n.rank,
        consensus: n.consensus,
        incentive: n.incentive,
        dividends: n.dividends,
        trust: n.trust,
        validator_trust: n.validator_trust,
        emission: n.emission,
        validator_permit: n.validator_permit,
        active: n.active,
        last_update: n.last_update,
        registration_block: n.registration_block,
        immune: n.immune,
        pruning_score: n.pruning_score,
        // A uid no epoch has judged yet keeps the stored default (`Earned`, code 0) with
        // no emission: say so instead of "earned".
        reason: if n.reason == Reason::Earned && n.emission.is_zero() {
            "no_epoch_yet"
        } else {
            reason_name(n.reason)
        },
        axon: n.axon.map(axon_info),
    }
}

fn module_error(e: ModuleError) -> RpcError {
    RpcError::Internal(format!("subnets state: {e}"))
}

#[jsonrpsee::core::async_trait]
impl NoesisApiServer for EthRpc {
    fn metagraph(&self, netuid: u16, block: Option<BlockId>) -> RpcResult<Metagraph> {
        let (number, state) = self.numbered_state(block)?;
        let mut view = ViewState::new(&*state, SUBNETS_STATE_ACCOUNT, number);
        let Some(m): Option<MetagraphView> =
            query::metagraph(&mut view, netuid).map_err(module_error)?
        else {
            return Err(RpcError::NotFound(format!("subnet {netuid} does not exist")).into());
        };
        Ok(Metagraph {
            netuid: m.netuid,
            block: number,
            owner: m.owner,
            tempo: m.tempo,
            last_epoch_block: m.last_epoch_block,
            burn: m.burn,
            pool: Pool {
                native_reserve: m.native_reserve,
                alpha_reserve: m.alpha_reserve,
            },
            neurons: m.neurons.into_iter().map(neuron_info).collect(),
        })
    }

    fn neuron(&self, netuid: u16, uid: u16, block: Option<BlockId>) -> RpcResult<NeuronInfo> {
        let (number, state) = self.numbered_state(block)?;
        let mut view = ViewState::new(&*state, SUBNETS_STATE_ACCOUNT, number);
        match query::neuron_view(&mut view, netuid, uid).map_err(module_error)? {
            Some(n) => Ok(neuron_info(n)),
            None => Err(
                RpcError::NotFound(format!("uid {uid} does not exist in subnet {netuid}")).into(),
            ),
        }
    }

    fn consensus(&self) -> RpcResult<serde_json::Value> {
        Ok(self.consensus_info()?.status())
    }

    async fn get_finalized_blocks(
        &self,
        from: U64,
        limit: Option<U64>,
    ) -> RpcResult<FinalizedBlocks> {
        let limit = limit.map_or(MAX_FINALIZED_BLOCKS, |l| {
            usize::try_from(l.to::<u64>())
                .unwrap_or(usize::MAX)
                .min(MAX_FINALIZED_BLOCKS)
        });
        let blocks = self
            .consensus_info()?
            .finalized_blocks(from.to::<u64>(), limit)
            .await;
        Ok(blocks.ok_or(RpcError::Unavailable(
            "this node stores no finalization certificates: ask a validator",
        ))?)
    }
}

/// Most blocks one `noesis_getFinalizedBlocks` call returns.
const MAX_FINALIZED_BLOCKS: usize = 64;
