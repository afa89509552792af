//! The validator: every epoch of its subnet it challenges each miner that announces an
//! endpoint, checks every answer's receipt and re-runs its proof of inference on the real
//! model, measures latency and throughput, turns the round into weights ([`score`], ADR
//! 0012) and puts them on chain — committed, then revealed an epoch later when the subnet
//! uses commit-reveal (the default), set directly otherwise. It talks to the chain only
//! through the public JSON-RPC and keeps its latest round as a [`Scoreboard`] (served as
//! JSON by [`router`]).

pub mod challenge;
pub mod score;

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use noesis_ai::proof::receipt::Request as ReceiptRequest;
use noesis_execution::modules::subnets::{hotkey_of, state::Param, weights::epoch_index};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::RwLock;

use crate::chain::{WeightVector, commit_weights, hyperparameter, reveal_weights, set_weights};
use crate::check::{Refusal, ask_miner, verify_proof};
use crate::gateway::directory::{MinerEndpoint, announced, served_models};
use crate::openai::ChatCompletionRequest;
use crate::rpc::RpcClient;
use challenge::{challenge_request, challenge_seed};
use score::{Outcome, Tally};

/// How the validator runs.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// The subnet it validates.
    pub netuid: u16,
    /// The model id the subnet asks for (miners may also list it by its sha256).
    pub model_id: String,
    /// Challenges per miner per round.
    pub challenges: u32,
    /// Completion tokens each challenge asks for.
    pub max_tokens: u32,
    /// Time allowed for one answer; a slower one counts as a failure.
    pub timeout: Duration,
    /// How often the chain head is polled.
    pub poll: Duration,
}

/// One miner's line in the scoreboard.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MinerScore {
    /// Its uid.
    pub uid: u16,
    /// Its hotkey's address (receipts must be signed by it).
    pub hotkey: Address,
    /// Its announced API.
    pub endpoint: String,
    /// The round's summary (verdict, reason, latency, throughput).
    #[serde(flatten)]
    pub tally: Tally,
    /// Its score in `[0, 1]`.
    pub score: f64,
    /// The weight sent on chain (`u16`).
    pub weight: u16,
}

/// The latest round, as logged and served.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scoreboard {
    /// The validator's hotkey address.
    pub hotkey: Address,
    /// Its uid, once registered.
    pub uid: Option<u16>,
    /// The subnet.
    pub netuid: u16,
    /// Rounds completed.
    pub rounds: u64,
    /// The epoch index of the latest round.
    pub epoch: Option<u64>,
    /// The block whose hash seeded the latest round's challenges.
    pub block: Option<u64>,
    /// What happened to the latest weights on chain.
    pub weights: Option<String>,
    /// The latest round, one line per challenged miner, in uid order.
    pub miners: Vec<MinerScore>,
}

/// A commit waiting for its reveal epoch.
struct PendingCommit {
    reveal_epoch: u64,
    weights: WeightVector,
    salt: Vec<u16>,
}

/// The validator's state.
pub struct Validator {
    rpc: RpcClient,
    http: reqwest::Client,
    key: PrivateKeySigner,
    engine: Arc<noesis_ai::Engine>,
    config: ValidatorConfig,
    board: RwLock<Scoreboard>,
}

impl Validator {
    /// A validator signing with `key` and verifying proofs on `engine` (the subnet's model).
    pub fn new(
        rpc_url: &str,
        key: PrivateKeySigner,
        engine: Arc<noesis_ai::Engine>,
        config: ValidatorConfig,
    ) -> Self {
        let board = Scoreboard {
            hotkey: key.address(),
            netuid: config.netuid,
            ..Default::default()
        };
        Self {
            rpc: RpcClient::new(rpc_url),
            http: reqwest::Client::new(),
            key,
            engine,
            config,
            board: RwLock::new(board),
        }
    }

    /// The latest round.
    pub fn scoreboard(&self) -> Scoreboard {
        self.board.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn board_mut(&self) -> std::sync::RwLockWriteGuard<'_, Scoreboard> {
        self.board.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs rounds until the process ends: one per epoch, each committed (or set) on chain,
    /// each commit revealed in its reveal epoch. Chain errors are logged and retried.
    pub async fn run(self: Arc<Self>) {
        let mut last_round: Option<u64> = None;
        let mut pending: Option<PendingCommit> = None;
        loop {
            if let Err(e) = self.step(&mut last_round, &mut pending).await {
                tracing::warn!(error = %format!("{e:#}"), "validator: retrying");
                self.board_mut().weights = Some(format!("error: {e:#}"));
            }
            tokio::time::sleep(self.config.poll).await;
        }
    }

    async fn step(
        &self,
        last_round: &mut Option<u64>,
        pending: &mut Option<PendingCommit>,
    ) -> anyhow::Result<()> {
        let netuid = self.config.netuid;
        let tempo = u64::try_from(hyperparameter(&self.rpc, netuid, Param::Tempo).await?)?;
        let head = self.head().await?;
        let epoch = epoch_index(netuid, tempo, head);
        if let Some(commit) = pending.take() {
            if epoch < commit.reveal_epoch {
                *pending = Some(commit);
                return Ok(());
            }
            if epoch == commit.reveal_epoch {
                reveal_weights(&self.rpc, &self.key, netuid, &commit.weights, &commit.salt).await?;
                self.note_weights(format!(
                    "revealed in epoch {epoch} for {} uids",
                    commit.weights.uids.len()
                ))
            } else {
                tracing::warn!(epoch, "validator: a commit expired before its reveal");
            }
        }
        if *last_round == Some(epoch) {
            return Ok(());
        }
        let Some(weights) = self.round(epoch, head).await? else {
            *last_round = Some(epoch);
            return Ok(());
        };
        let commit_reveal = !hyperparameter(&self.rpc, netuid, Param::CommitRevealEnabled)
            .await?
            .is_zero();
        if commit_reveal {
            let period =
                u64::try_from(hyperparameter(&self.rpc, netuid, Param::RevealPeriod).await?)?;
            let salt: Vec<u16> = (0..8).map(|_| rand::random()).collect();
            commit_weights(&self.rpc, &self.key, netuid, &weights, &salt).await?;
            // The reveal epoch counts from the block the commit landed in.
            let committed_in = epoch_index(netuid, tempo, self.head().await?);
            *pending = Some(PendingCommit {
                reveal_epoch: committed_in.saturating_add(period),
                weights,
                salt,
            });
            self.note_weights(format!(
                "committed in epoch {committed_in}, to reveal in {}",
                committed_in.saturating_add(period)
            ));
        } else {
            set_weights(&self.rpc, &self.key, netuid, &weights).await?;
            self.note_weights(format!("set in epoch {epoch}"));
        }
        *last_round = Some(epoch);
        Ok(())
    }

    fn note_weights(&self, what: String) {
        tracing::info!(netuid = self.config.netuid, "validator: weights {what}");
        self.board_mut().weights = Some(what);
    }

    async fn head(&self) -> anyhow::Result<u64> {
        Ok(u64::try_from(
            self.rpc.quantity("eth_blockNumber", json!([])).await?,
        )?)
    }

    /// Challenges every announced miner once per configured challenge; returns the weights
    /// to put on chain (`None` when the validator holds no uid yet).
    async fn round(&self, epoch: u64, head: u64) -> anyhow::Result<Option<WeightVector>> {
        let netuid = self.config.netuid;
        let block = self
            .rpc
            .call(
                "eth_getBlockByNumber",
                json!([format!("0x{head:x}"), false]),
            )
            .await?;
        let block_hash: B256 = serde_json::from_value(block["hash"].clone())
            .map_err(|_| anyhow::anyhow!("block {head} has no hash"))?;
        let own = hotkey_of(self.key.address());
        let uid = crate::chain::uid_of(&self.rpc, netuid, own)
            .await?
            .and_then(|u| u16::try_from(u).ok());
        self.board_mut().uid = uid;
        let Some(own_uid) = uid else {
            tracing::warn!(
                netuid,
                "validator: not registered on the subnet, nothing to set"
            );
            return Ok(None);
        };
        let miners: Vec<MinerEndpoint> = announced(&self.rpc, netuid)
            .await?
            .into_iter()
            .filter(|m| m.uid != own_uid)
            .collect();
        let mut tallies = Vec::with_capacity(miners.len());
        for miner in &miners {
            let mut outcomes = Vec::new();
            match self.model_for(miner).await {
                Ok(model) => {
                    for index in 0..self.config.challenges {
                        let seed = challenge_seed(block_hash, self.key.address(), miner.uid, index);
                        let outcome = self.challenge(miner, &model, seed).await;
                        let stop = !matches!(outcome, Outcome::Passed { .. });
                        outcomes.push(outcome);
                        if stop {
                            break;
                        }
                    }
                }
                Err(outcome) => outcomes.push(outcome),
            }
            tallies.push(Tally::of(&outcomes));
        }
        let scores = score::scores(&tallies);
        let weights = score::weights(&scores);
        let lines: Vec<MinerScore> = miners
            .iter()
            .zip(tallies)
            .zip(scores.iter().zip(&weights))
            .map(|((m, tally), (score, weight))| MinerScore {
                uid: m.uid,
                hotkey: m.signer,
                endpoint: m.url.clone(),
                tally,
                score: *score,
                weight: *weight,
            })
            .collect();
        for line in &lines {
            tracing::info!(
                netuid,
                epoch,
                uid = line.uid,
                verdict = line.tally.verdict,
                reason = line.tally.reason.as_deref().unwrap_or(""),
                latency_ms = line.tally.latency_ms.round(),
                tokens_per_sec = (line.tally.tokens_per_sec * 10.0).round() / 10.0,
                weight = line.weight,
                "validator: scored"
            );
        }
        let mut vector = WeightVector {
            uids: Vec::new(),
            values: Vec::new(),
            version_key: 0,
        };
        for line in &lines {
            if line.weight > 0 {
                vector.uids.push(line.uid);
                vector.values.push(line.weight);
            }
        }
        if vector.uids.is_empty() {
            // Nobody earned: a lone self-weight (always allowed) pays no miner.
            vector.uids.push(own_uid);
            vector.values.push(u16::MAX);
        }
        {
            let mut board = self.board_mut();
            board.rounds += 1;
            board.epoch = Some(epoch);
            board.block = Some(head);
            board.miners = lines;
        }
        Ok(Some(vector))
    }

    /// The id under which `miner` serves the subnet's model, or why it cannot be challenged.
    async fn model_for(&self, miner: &MinerEndpoint) -> Result<String, Outcome> {
        let models = served_models(&self.http, &miner.url, self.config.timeout)
            .await
            .ok_or_else(|| Outcome::Unreachable("GET /v1/models failed".into()))?;
        let sha = &self.engine.info.sha256;
        models
            .into_iter()
            .find(|m| *m == self.config.model_id || m == sha || *m == format!("0x{sha}"))
            .ok_or_else(|| {
                Outcome::Refused(format!(
                    "does not serve the subnet's model {}",
                    self.config.model_id
                ))
            })
    }

    /// Sends one challenge and judges the answer.
    async fn challenge(&self, miner: &MinerEndpoint, model: &str, seed: B256) -> Outcome {
        let body = challenge_request(seed, model, self.config.max_tokens);
        let expected = match expected_receipt_request(&body) {
            Ok(r) => r,
            Err(e) => return Outcome::Unreachable(format!("bad challenge (a bug): {e}")),
        };
        let checked = ask_miner(
            &self.http,
            miner,
            &body,
            &expected,
            Some(&self.engine.info.sha256),
            self.config.timeout,
        )
        .await;
        let checked = match checked {
            Ok(checked) => checked,
            Err(Refusal::Busy) => return Outcome::Unreachable("HTTP 429 Too Many Requests".into()),
            Err(Refusal::Failed(why)) => return Outcome::Unreachable(why),
            Err(Refusal::Malformed(why) | Refusal::Cheated(why)) => return Outcome::Refused(why),
        };
        if let Err(why) = verify_proof(self.engine.clone(), checked.receipt).await {
            return Outcome::Refused(why);
        }
        Outcome::Passed {
            seconds: checked.seconds,
            tokens: checked.answer.usage.completion_tokens,
        }
    }
}

/// The receipt request a miner must attest for the chat request `body`.
fn expected_receipt_request(body: &Value) -> anyhow::Result<ReceiptRequest> {
    let request = ChatCompletionRequest::deserialize(body)?;
    let seed = body["seed"].as_u64().unwrap_or(0);
    let (messages, params) = request
        .to_runtime(seed)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(ReceiptRequest::new(messages, &params))
}

/// `GET /scores`: the latest round as JSON.
pub fn router(validator: Arc<Validator>) -> Router {
    Router::new()
        .route("/scores", get(scores))
        .with_state(validator)
}

async fn scores(State(validator): State<Arc<Validator>>) -> Response {
    axum::Json(validator.scoreboard()).into_response()
}
