//! The HTTP routes of the miner's inference server.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_signer_local::PrivateKeySigner;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use noesis_ai::proof::receipt::{Output, ReceiptFile};
use noesis_ai::{AiError, ChatMessage, Engine, Generation, SamplingParams, proof};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::openai::{
    ApiError, AssistantMessage, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice,
    ChunkChoice, Delta, ModelObject, NoesisExtension, Usage, finish_reason, receipt_header,
};

/// Response header with the receipt's signed fields and signature (compact JSON).
pub const RECEIPT_HEADER: &str = "x-noesis-receipt";

/// Largest request body accepted (bytes).
const MAX_BODY_BYTES: usize = 1 << 20;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct MinerConfig {
    /// The id clients name in `model` (the model's own sha256 is accepted too).
    pub model_id: String,
    /// Generations that may run at once.
    pub slots: usize,
    /// Requests that may wait, first come first served, for a slot; more get `429`.
    pub queue: usize,
    /// `Retry-After` seconds on `429`.
    pub retry_after_secs: u64,
}

/// A loaded model, the key that signs receipts, and the generation slots.
pub struct Miner {
    engine: Arc<Engine>,
    key: PrivateKeySigner,
    config: MinerConfig,
    slots: Arc<Semaphore>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl Miner {
    /// A miner serving `engine`, signing with `key`.
    pub fn new(engine: Arc<Engine>, key: PrivateKeySigner, config: MinerConfig) -> Self {
        let slots = Arc::new(Semaphore::new(config.slots.max(1)));
        Self {
            engine,
            key,
            config,
            slots,
            waiting: Arc::default(),
        }
    }

    /// The address receipts are signed by.
    pub fn signer(&self) -> alloy_primitives::Address {
        self.key.address()
    }

    fn serves(&self, model: &str) -> bool {
        model == self.config.model_id || model.eq_ignore_ascii_case(&self.engine.info.sha256)
    }

    fn check_model(&self, model: &str) -> Result<(), ApiError> {
        if self.serves(model) {
            Ok(())
        } else {
            Err(ApiError::unknown_model(model, &self.config.model_id))
        }
    }

    /// A generation slot: at once when one is free, else after the requests ahead of this
    /// one (FIFO) when fewer than `queue` wait; `429` otherwise.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let busy = || ApiError::busy(self.config.retry_after_secs);
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        // Leaves the queue however the wait ends (a slot, or the client going away).
        struct InLine(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for InLine {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _in_line = InLine(self.waiting.clone());
        if queued >= self.config.queue {
            return Err(busy());
        }
        self.slots.clone().acquire_owned().await.map_err(|_| busy())
    }
}

/// The server's routes.
pub fn router(miner: Arc<Miner>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/chat/completions", post(chat_completions))
        .fallback(async || {
            ApiError::no_route("GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions")
        })
        .method_not_allowed_fallback(async || ApiError::wrong_method())
        .with_state(miner)
}

fn model_object(miner: &Miner) -> ModelObject {
    ModelObject {
        id: miner.config.model_id.clone(),
        object: "model".into(),
        created: 0,
        owned_by: format!("{}", miner.signer()),
    }
}

async fn models(State(miner): State<Arc<Miner>>) -> Response {
    axum::Json(json!({ "object": "list", "data": [model_object(&miner)] })).into_response()
}

async fn model(State(miner): State<Arc<Miner>>, Path(id): Path<String>) -> Response {
    if miner.serves(&id) {
        axum::Json(model_object(&miner)).into_response()
    } else {
        ApiError::unknown_model(&id, &miner.config.model_id).into_response()
    }
}

async fn chat_completions(State(miner): State<Arc<Miner>>, body: Bytes) -> Response {
    match answer(miner, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn answer(miner: Arc<Miner>, body: Bytes) -> Result<Response, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::malformed(format!(
            "request body of {} bytes exceeds {MAX_BODY_BYTES}",
            body.len()
        )));
    }
    let request: ChatCompletionRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::malformed(format!("invalid request body: {e}")))?;
    miner.check_model(&request.model)?;
    let (messages, params) = request.to_runtime(crate::openai::random_seed())?;
    let permit = miner.slot().await?;
    let id = format!("chatcmpl-{:016x}", rand::random::<u64>());
    let created = unix_now();
    if request.streaming() {
        let include_usage = request.include_usage();
        Ok(stream(
            miner,
            messages,
            params,
            permit,
            (id, created),
            include_usage,
        ))
    } else {
        let worker = miner.clone();
        let (generation, receipt) = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            run(&worker, messages, params, &mut |_| {}, &|| false)
        })
        .await
        .map_err(|e| ApiError::internal(format!("generation task failed: {e}")))??;
        let usage = usage(&receipt);
        let header = receipt_header(&receipt)?;
        let completion = ChatCompletion {
            id,
            object: "chat.completion".into(),
            created,
            model: miner.config.model_id.clone(),
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant".into(),
                    content: generation.text.clone(),
                },
                finish_reason: finish_reason(generation.finish).into(),
                logprobs: None,
            }],
            usage,
            noesis: NoesisExtension::of(receipt),
        };
        let mut response = axum::Json(completion).into_response();
        response.headers_mut().insert(RECEIPT_HEADER, header);
        Ok(response)
    }
}

/// Generates, records the commitment and signs the receipt.
fn run(
    miner: &Miner,
    messages: Vec<ChatMessage>,
    params: SamplingParams,
    on_text: &mut dyn FnMut(&str),
    cancelled: &dyn Fn() -> bool,
) -> Result<(Generation, ReceiptFile), ApiError> {
    let (generation, commitment, _) =
        proof::generate_timed(&miner.engine, &messages, &params, on_text, cancelled)
            .map_err(runtime_error)?;
    let output = Output::from(&generation);
    let receipt = proof::sign_receipt(
        &miner.engine,
        messages,
        &params,
        generation.prompt_tokens.len(),
        output,
        commitment,
        &miner.key,
    )
    .map_err(|e| ApiError::internal(format!("cannot sign the receipt: {e}")))?;
    Ok((generation, receipt))
}

/// A runtime error as the client should see it.
fn runtime_error(e: AiError) -> ApiError {
    match e {
        AiError::ContextOverflow { .. } => ApiError {
            code: "context_length_exceeded",
            ..ApiError::invalid("messages", e.to_string())
        },
        AiError::Sampling(_) | AiError::Template(_) => ApiError::invalid("messages", e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

fn usage(receipt: &ReceiptFile) -> Usage {
    Usage::new(
        receipt.receipt.prompt_tokens,
        receipt.receipt.completion_tokens,
    )
}

/// What the generation thread sends to a stream.
enum StreamEvent {
    Text(String),
    Done(Box<Result<(Generation, ReceiptFile), ApiError>>),
}

fn stream(
    miner: Arc<Miner>,
    messages: Vec<ChatMessage>,
    params: SamplingParams,
    permit: OwnedSemaphorePermit,
    (id, created): (String, u64),
    include_usage: bool,
) -> Response {
    let (tx, rx) = mpsc::channel::<StreamEvent>(64);
    let model = miner.config.model_id.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let gone = AtomicBool::new(false);
        let result = run(
            &miner,
            messages,
            params,
            &mut |piece| {
                if tx
                    .blocking_send(StreamEvent::Text(piece.to_string()))
                    .is_err()
                {
                    gone.store(true, Ordering::Relaxed);
                }
            },
            &|| gone.load(Ordering::Relaxed) || tx.is_closed(),
        );
        let _ = tx.blocking_send(StreamEvent::Done(Box::new(result)));
    });
    let chunk = move |choices: Vec<ChunkChoice>| ChatCompletionChunk {
        id: id.clone(),
        object: "chat.completion.chunk".into(),
        created,
        model: model.clone(),
        choices,
        usage: None,
        noesis: None,
    };
    let first = chunk(vec![ChunkChoice {
        index: 0,
        delta: Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
        },
        finish_reason: None,
    }]);
    let events = futures::stream::once(async move { first.clone() })
        .map(|c| vec![sse(&c)])
        .chain(ReceiverStream::new(rx).map(move |event| match event {
            StreamEvent::Text(text) => vec![sse(&chunk(vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    role: None,
                    content: Some(text),
                },
                finish_reason: None,
            }]))],
            StreamEvent::Done(result) => match *result {
                Ok((generation, receipt)) => {
                    let counts = usage(&receipt);
                    ChatCompletionChunk::ending(
                        &chunk,
                        Some(finish_reason(generation.finish).into()),
                        NoesisExtension::of(receipt),
                        counts,
                        include_usage,
                    )
                    .iter()
                    .map(sse)
                    .chain(std::iter::once(Event::default().data("[DONE]")))
                    .collect()
                }
                // Headers are gone: the error travels as an event in OpenAI's shape.
                Err(e) => vec![Event::default().data(e.body().to_string())],
            },
        }))
        .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)));
    Sse::new(events).into_response()
}

fn sse<T: serde::Serialize>(value: &T) -> Event {
    Event::default().data(serde_json::to_string(value).unwrap_or_default())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
