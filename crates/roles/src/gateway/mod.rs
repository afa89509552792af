//! The inference gateway: one OpenAI-compatible endpoint in front of a subnet's miners.
//!
//! - `GET /v1/models`: the models the subnet's reachable miners serve;
//! - `POST /v1/chat/completions`: picks a miner serving the model at random, weighted by
//!   on-chain incentive; sends it the request with a seed fixed by the gateway (so the
//!   receipt must name exactly this request); checks the answer's receipt — hash chain,
//!   signature, signer = the miner's hotkey, request = the one sent — and on an error, a
//!   timeout or a bad receipt tries another miner. The client gets the miner's answer with
//!   its receipt (and `x-noesis-miner: <uid>`). With a verifier model, receipts must name
//!   that model, and a configurable sample of proofs is re-run before answering; a miner
//!   caught cheating gets no traffic for a while. With `stream: true` the checked answer
//!   is sent as server-sent events (the text in one chunk: the gateway streams only what
//!   it has checked).
//!
//! Errors in OpenAI's shape: unknown model 404, malformed request 400, no miner able to
//! answer 503. The miner list is refreshed from the chain with [`Gateway::refresh`].
//! `GET /noesis/miners` shows each miner with the answers the gateway accepted from it and
//! the ones it rejected (and why, the last time).

pub mod directory;
pub mod embeddings;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use noesis_ai::proof::receipt::Request as ReceiptRequest;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::RwLock;

pub use directory::{MinerEndpoint, discover, pick};

use crate::check::{Refusal, ask_miner, verify_proof};
use crate::openai::{
    ApiError, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChunkChoice, Delta,
    ModelObject, receipt_header,
};
use crate::rpc::RpcClient;

/// Response header naming the UID of the miner that answered.
pub const MINER_HEADER: &str = "x-noesis-miner";

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The subnet whose miners serve requests.
    pub netuid: u16,
    /// Miners tried per request before giving up.
    pub attempts: usize,
    /// Time allowed for one miner's answer.
    pub timeout: Duration,
    /// Time allowed for a miner's `GET /v1/models` during a refresh.
    pub discovery_timeout: Duration,
    /// Share of answers whose proof the gateway re-verifies with its own copy of the model
    /// before returning them, in thousandths (needs [`Gateway::with_verifier`]).
    pub verify_per_mille: u32,
    /// How long a miner caught cheating (a rejected proof, a receipt that does not match
    /// its answer, its request or its key) gets no traffic.
    pub ban: Duration,
}

/// The gateway's state: the chain client and the current miners.
pub struct Gateway {
    rpc: RpcClient,
    http: reqwest::Client,
    config: GatewayConfig,
    miners: RwLock<Vec<MinerEndpoint>>,
    verifier: Option<Arc<noesis_ai::Engine>>,
    embedding: Option<embeddings::EmbeddingModel>,
    banned: std::sync::Mutex<std::collections::BTreeMap<u16, tokio::time::Instant>>,
    record: std::sync::Mutex<std::collections::BTreeMap<u16, MinerRecord>>,
}

/// What the gateway saw of one miner.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MinerRecord {
    /// Answers accepted.
    pub answered: u64,
    /// Answers rejected (error, timeout, bad receipt).
    pub rejected: u64,
    /// Why the last rejection happened.
    pub last_rejection: Option<String>,
    /// Seconds left of a ban for cheating (no traffic meanwhile).
    pub banned_for_secs: Option<u64>,
}

impl Gateway {
    /// A gateway reading the chain at `rpc_url`; call [`Gateway::refresh`] before serving.
    pub fn new(rpc_url: &str, config: GatewayConfig) -> Self {
        Self {
            rpc: RpcClient::new(rpc_url),
            http: reqwest::Client::new(),
            config,
            miners: RwLock::new(Vec::new()),
            verifier: None,
            embedding: None,
            banned: std::sync::Mutex::new(Default::default()),
            record: std::sync::Mutex::new(Default::default()),
        }
    }

    /// Re-verifies a sample of proofs ([`GatewayConfig::verify_per_mille`]) with `engine`,
    /// the model the subnet asks for: a rejected proof counts as a bad answer.
    pub fn with_verifier(mut self, engine: Arc<noesis_ai::Engine>) -> Self {
        self.verifier = Some(engine);
        self
    }

    /// Serves `POST /v1/embeddings` with `model` (listed by `GET /v1/models` too).
    pub fn with_embeddings(mut self, model: embeddings::EmbeddingModel) -> Self {
        self.embedding = Some(model);
        self
    }

    /// Replaces the miner list (what [`Gateway::refresh`] does from the chain).
    pub async fn set_miners(&self, miners: Vec<MinerEndpoint>) {
        *self.miners.write().await = miners;
    }

    /// Re-reads the metagraph and the miners' models; returns how many miners answer.
    pub async fn refresh(&self) -> anyhow::Result<usize> {
        let found = discover(
            &self.rpc,
            &self.http,
            self.config.netuid,
            self.config.discovery_timeout,
        )
        .await?;
        let n = found.len();
        *self.miners.write().await = found;
        Ok(n)
    }

    /// The miners known now.
    pub async fn miners(&self) -> Vec<MinerEndpoint> {
        self.miners.read().await.clone()
    }

    fn note(&self, uid: u16, outcome: Result<(), &str>) {
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        let r = record.entry(uid).or_default();
        match outcome {
            Ok(()) => r.answered += 1,
            Err(why) => {
                r.rejected += 1;
                r.last_rejection = Some(why.to_string());
            }
        }
    }

    /// Gives `uid` no traffic for [`GatewayConfig::ban`].
    fn ban(&self, uid: u16) {
        let until = tokio::time::Instant::now() + self.config.ban;
        self.banned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid, until);
    }

    /// The miners banned now, with the seconds left of each ban (expired bans dropped).
    fn bans(&self) -> std::collections::BTreeMap<u16, u64> {
        let now = tokio::time::Instant::now();
        let mut banned = self.banned.lock().unwrap_or_else(|e| e.into_inner());
        banned.retain(|_, until| *until > now);
        banned
            .iter()
            .map(|(uid, until)| (*uid, (*until - now).as_secs().max(1)))
            .collect()
    }

    /// Refreshes every `period` until the process ends (errors are logged and retried).
    pub fn spawn_refresh(self: &Arc<Self>, period: Duration) {
        let gateway = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                if let Err(e) = gateway.refresh().await {
                    tracing::warn!(error = %e, "gateway: cannot refresh the miner list");
                }
            }
        });
    }
}

/// The gateway's routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/noesis/miners", get(miner_records))
        .fallback(async || {
            ApiError::no_route(
                "GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions, \
                 POST /v1/embeddings, GET /noesis/miners",
            )
        })
        .method_not_allowed_fallback(async || ApiError::wrong_method())
        .layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([
                    axum::http::header::CONTENT_TYPE,
                    axum::http::header::AUTHORIZATION,
                ])
                .expose_headers([
                    axum::http::HeaderName::from_static(crate::miner::RECEIPT_HEADER),
                    axum::http::HeaderName::from_static(MINER_HEADER),
                ]),
        )
        .with_state(gateway)
}

async fn model(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    let listed = model_list(&gateway).await;
    match listed.iter().find(|m| m.id == id) {
        Some(m) => axum::Json(m).into_response(),
        None => {
            let ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
            ApiError::unknown_model(&id, &ids.join(", ")).into_response()
        }
    }
}

async fn models(State(gateway): State<Arc<Gateway>>) -> Response {
    let data = model_list(&gateway).await;
    axum::Json(json!({ "object": "list", "data": data })).into_response()
}

/// The chat models the miners serve, then the gateway's embedding model.
async fn model_list(gateway: &Gateway) -> Vec<ModelObject> {
    let ids: BTreeSet<String> = gateway
        .miners()
        .await
        .into_iter()
        .flat_map(|m| m.models)
        .collect();
    let mut data: Vec<ModelObject> = ids
        .into_iter()
        .map(|id| ModelObject {
            id,
            object: "model".into(),
            created: 0,
            owned_by: format!("noesis subnet {}", gateway.config.netuid),
        })
        .collect();
    if let Some(model) = &gateway.embedding {
        data.push(ModelObject {
            id: model.id.clone(),
            object: "model".into(),
            created: 0,
            owned_by: "noesis gateway".into(),
        });
    }
    data
}

async fn miner_records(State(gateway): State<Arc<Gateway>>) -> Response {
    let miners = gateway.miners().await;
    let record = gateway
        .record
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let bans = gateway.bans();
    let rows: Vec<Value> = miners
        .iter()
        .map(|m| {
            json!({
                "uid": m.uid,
                "url": m.url,
                "signer": m.signer,
                "incentive": m.incentive,
                "models": m.models,
                "record": MinerRecord {
                    banned_for_secs: bans.get(&m.uid).copied(),
                    ..record.get(&m.uid).cloned().unwrap_or_default()
                },
            })
        })
        .collect();
    axum::Json(json!({ "netuid": gateway.config.netuid, "miners": rows })).into_response()
}

async fn chat_completions(State(gateway): State<Arc<Gateway>>, body: Bytes) -> Response {
    match route(&gateway, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn route(gateway: &Gateway, body: &[u8]) -> Result<Response, ApiError> {
    let mut raw: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("invalid request body: {e}")))?;
    let request = ChatCompletionRequest::deserialize(&raw)
        .map_err(|e| ApiError::malformed(format!("invalid request body: {e}")))?;
    let (messages, params) = request.to_runtime(crate::openai::random_seed())?;
    let miners = gateway.miners().await;
    let listed: Vec<&MinerEndpoint> = miners
        .iter()
        .filter(|m| m.models.contains(&request.model))
        .collect();
    let bans = gateway.bans();
    let serving: Vec<&MinerEndpoint> = listed
        .iter()
        .copied()
        .filter(|m| !bans.contains_key(&m.uid))
        .collect();
    if serving.is_empty() && !listed.is_empty() {
        return Err(no_miner(
            "every miner serving this model is banned for cheating right now",
        ));
    }
    if serving.is_empty() {
        if miners.iter().any(|m| !m.models.is_empty()) {
            let known: BTreeSet<&str> = miners
                .iter()
                .flat_map(|m| m.models.iter().map(String::as_str))
                .collect();
            let known: Vec<&str> = known.into_iter().collect();
            return Err(ApiError::unknown_model(&request.model, &known.join(", ")));
        }
        return Err(no_miner("no miner is serving on this subnet right now"));
    }
    // The miner must answer exactly this request: the gateway fixes the seed.
    raw["seed"] = json!(params.seed);
    raw["stream"] = json!(false);
    raw.as_object_mut().map(|o| o.remove("stream_options"));
    let expected = ReceiptRequest::new(messages, &params);
    // Busy miners (429) are asked again after a short pause until the deadline; failures
    // (errors, timeouts, bad receipts) count against the attempts.
    let deadline = tokio::time::Instant::now() + gateway.config.timeout;
    let mut tried: Vec<String> = Vec::new();
    let mut remaining = serving;
    let mut busy: Vec<&MinerEndpoint> = Vec::new();
    let mut failures = 0;
    loop {
        let Some(miner) = pick(&remaining, rand::random::<f64>()) else {
            if busy.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(BUSY_PAUSE).await;
            remaining = std::mem::take(&mut busy);
            continue;
        };
        let uid = miner.uid;
        remaining.retain(|m| m.uid != uid);
        let why = match ask(gateway, miner, &raw, &expected).await {
            Ok((mut answer, reverified)) => {
                gateway.note(uid, Ok(()));
                answer.noesis.miner_uid = Some(uid);
                answer.noesis.verdict = Some(if reverified {
                    "accepted: receipt signature, request and model checked; proof re-verified"
                } else {
                    "accepted: receipt signature, request and model checked; proof not sampled for re-verification"
                }.to_string());
                return respond(answer, uid, request.streaming(), request.include_usage());
            }
            Err(Refusal::Busy) => {
                busy.push(miner);
                continue;
            }
            Err(Refusal::Cheated(why)) => {
                gateway.ban(uid);
                tracing::warn!(uid, reason = %why, "gateway: miner caught cheating, banned");
                why
            }
            Err(Refusal::Failed(why) | Refusal::Malformed(why)) => {
                tracing::info!(uid, reason = %why, "gateway: miner failed, trying another");
                why
            }
        };
        gateway.note(uid, Err(&why));
        tried.push(format!("uid {uid}: {why}"));
        failures += 1;
        if failures >= gateway.config.attempts.max(1) {
            break;
        }
    }
    if !busy.is_empty() && tried.is_empty() {
        return Err(no_miner(
            "every miner stayed busy until the gateway's timeout",
        ));
    }
    Err(no_miner(&format!(
        "no miner gave a valid answer ({})",
        tried.join("; ")
    )))
}

/// Pause before asking busy miners again.
const BUSY_PAUSE: Duration = Duration::from_millis(25);

fn no_miner(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: message.to_string(),
        kind: "server_error",
        param: None,
        code: "no_miner_available",
        retry_after: Some(1),
    }
}

/// Asks one miner and checks its answer; re-runs the proof on a sample.
async fn ask(
    gateway: &Gateway,
    miner: &MinerEndpoint,
    request: &Value,
    expected: &ReceiptRequest,
) -> Result<(ChatCompletion, bool), Refusal> {
    let model = gateway.verifier.as_ref().map(|e| e.info.sha256.as_str());
    let checked = ask_miner(
        &gateway.http,
        miner,
        request,
        expected,
        model,
        gateway.config.timeout,
    )
    .await?;
    if let Some(engine) = &gateway.verifier
        && rand::random::<u32>() % 1000 < gateway.config.verify_per_mille
    {
        verify_proof(engine.clone(), checked.receipt)
            .await
            .map_err(|why| {
                if why.starts_with("proof rejected") {
                    Refusal::Cheated(why)
                } else {
                    Refusal::Failed(why)
                }
            })?;
        return Ok((checked.answer, true));
    }
    Ok((checked.answer, false))
}

fn respond(
    answer: ChatCompletion,
    uid: u16,
    stream: bool,
    include_usage: bool,
) -> Result<Response, ApiError> {
    let header = receipt_header(&answer.noesis.receipt)?;
    if !stream {
        let mut response = axum::Json(answer).into_response();
        response
            .headers_mut()
            .insert(crate::miner::RECEIPT_HEADER, header);
        response
            .headers_mut()
            .insert(MINER_HEADER, HeaderValue::from(uid));
        return Ok(response);
    }
    let chunk = |choices: Vec<ChunkChoice>| ChatCompletionChunk {
        id: answer.id.clone(),
        object: "chat.completion.chunk".into(),
        created: answer.created,
        model: answer.model.clone(),
        choices,
        usage: None,
        noesis: None,
    };
    let choice = answer.choices.first();
    let text = choice
        .map(|c| c.message.content.clone())
        .unwrap_or_default();
    let finish = choice.map(|c| c.finish_reason.clone());
    let mut chunks = vec![chunk(vec![ChunkChoice {
        index: 0,
        delta: Delta {
            role: Some("assistant".into()),
            content: Some(text),
        },
        finish_reason: None,
    }])];
    chunks.extend(ChatCompletionChunk::ending(
        chunk,
        finish,
        answer.noesis.clone(),
        answer.usage,
        include_usage,
    ));
    let events: Vec<Result<Event, Infallible>> = chunks
        .iter()
        .map(|c| Ok(Event::default().data(serde_json::to_string(c).unwrap_or_default())))
        .chain(std::iter::once(Ok(Event::default().data("[DONE]"))))
        .collect();
    let mut response = Sse::new(futures::stream::iter(events)).into_response();
    response
        .headers_mut()
        .insert(MINER_HEADER, HeaderValue::from(uid));
    Ok(response)
}
