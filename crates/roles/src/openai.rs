//! The OpenAI chat-completions wire format, as the official SDKs send and read it.
//!
//! Requests map onto the runtime's [`ChatMessage`]s and [`SamplingParams`]; what the
//! runtime cannot honour (several choices, penalties, log-probabilities, tools, non-text
//! content) is a `400` naming the parameter rather than being silently ignored. Extra
//! fields the SDKs add (`user`, `metadata`, ...) are accepted and ignored. One extension:
//! `top_k`.
//!
//! Every answer carries a `noesis` object with the signed receipt
//! ([`noesis_ai::proof::receipt::ReceiptFile`]).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use noesis_ai::proof::receipt::ReceiptFile;
use noesis_ai::{ChatMessage, FinishReason, SamplingParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A seed for a request that names none: below 2^53, so that it survives JavaScript
/// clients (JSON numbers are doubles there) and the receipt's request hash still holds
/// after a round trip through them.
pub fn random_seed() -> u64 {
    rand::random::<u64>() >> 11
}

/// Completion tokens when the request names no limit.
pub const DEFAULT_MAX_TOKENS: u32 = 256;
/// OpenAI's documented default temperature.
pub const DEFAULT_TEMPERATURE: f32 = 1.0;

/// `POST /v1/chat/completions` body.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletionRequest {
    /// The model id.
    pub model: String,
    /// The conversation.
    pub messages: Vec<RequestMessage>,
    /// Most completion tokens (the newer name).
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    /// Most completion tokens (the older name).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// 0–2; default 1.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, (0, 1]; default 1.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Keep only the k most likely tokens (extension; 0: all).
    #[serde(default)]
    pub top_k: Option<u32>,
    /// Sampling seed; chosen by the server when absent (and recorded in the receipt).
    #[serde(default)]
    pub seed: Option<u64>,
    /// A stop sequence or up to four.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Stream options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Number of choices: only 1.
    #[serde(default)]
    pub n: Option<u32>,
    /// Must be 0 when present.
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    /// Must be 0 when present.
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    /// Must be false when present.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// Not supported when non-empty.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    /// Only `{"type": "text"}` is supported (no JSON mode or schemas).
    #[serde(default)]
    pub response_format: Option<Value>,
}

/// One message of a request.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// Text, or an array of content parts (only `text` parts).
    #[serde(default)]
    pub content: Option<Content>,
}

/// Message content: a string or content parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<ContentPart>),
}

/// A content part.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    /// Part type; only `text` is supported.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop sequence.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

impl ChatCompletionRequest {
    /// Whether the client asked for a stream.
    pub fn streaming(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether a stream ends with a `usage` chunk (`stream_options.include_usage`).
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }

    /// The runtime's messages and sampling parameters for this request (`seed` stands in
    /// when the request has none), or the OpenAI-style error that says what is wrong.
    pub fn to_runtime(&self, seed: u64) -> Result<(Vec<ChatMessage>, SamplingParams), ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::invalid(
                "messages",
                "`messages` must not be empty",
            ));
        }
        if let Some(n) = self.n.filter(|&n| n != 1) {
            return Err(ApiError::invalid(
                "n",
                format!("n = {n} is not supported: one choice per request"),
            ));
        }
        for (name, value) in [
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ] {
            if value.is_some_and(|v| v != 0.0) {
                return Err(ApiError::invalid(
                    name,
                    format!("`{name}` is not supported (only 0)"),
                ));
            }
        }
        if self.logprobs == Some(true) {
            return Err(ApiError::invalid("logprobs", "`logprobs` is not supported"));
        }
        if let Some(format) = &self.response_format
            && format.get("type").and_then(Value::as_str) != Some("text")
        {
            return Err(ApiError::invalid(
                "response_format",
                "only response_format {\"type\": \"text\"} is supported (no JSON mode or schemas)",
            ));
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(ApiError::invalid("tools", "tool calls are not supported"));
        }
        let mut messages = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.iter().enumerate() {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(ApiError::invalid(
                        format!("messages[{i}].role"),
                        format!("unsupported role `{other}` (system, developer, user, assistant)"),
                    ));
                }
            };
            let content = match &m.content {
                None => String::new(),
                Some(Content::Text(t)) => t.clone(),
                Some(Content::Parts(parts)) => {
                    let mut text = String::new();
                    for (j, p) in parts.iter().enumerate() {
                        match (p.kind.as_str(), &p.text) {
                            ("text", Some(t)) => text.push_str(t),
                            _ => {
                                return Err(ApiError::invalid(
                                    format!("messages[{i}].content[{j}]"),
                                    format!(
                                        "content part of type `{}` is not supported (text only)",
                                        p.kind
                                    ),
                                ));
                            }
                        }
                    }
                    text
                }
            };
            messages.push(ChatMessage::new(role, content));
        }
        let temperature = self.temperature.unwrap_or(DEFAULT_TEMPERATURE);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid(
                "temperature",
                format!("temperature {temperature} is outside [0, 2]"),
            ));
        }
        let top_p = self.top_p.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ApiError::invalid(
                "top_p",
                format!("top_p {top_p} is outside (0, 1]"),
            ));
        }
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stop.len() > 4 || stop.iter().any(String::is_empty) {
            return Err(ApiError::invalid(
                "stop",
                "`stop` takes up to 4 non-empty sequences",
            ));
        }
        let (name, asked) = match (self.max_completion_tokens, self.max_tokens) {
            (Some(n), _) => ("max_completion_tokens", n),
            (None, Some(n)) => ("max_tokens", n),
            (None, None) => ("max_tokens", i64::from(DEFAULT_MAX_TOKENS)),
        };
        let max_tokens = u32::try_from(asked)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                ApiError::invalid(
                    name,
                    format!("{name} must be a positive integer (at most 2^32 - 1), got {asked}"),
                )
            })?;
        let params = SamplingParams {
            temperature,
            top_k: self.top_k.unwrap_or(0),
            top_p,
            seed: self.seed.unwrap_or(seed),
            max_tokens,
            stop,
        };
        params
            .validate()
            .map_err(|e| ApiError::invalid("sampling", e.to_string()))?;
        Ok((messages, params))
    }
}

/// OpenAI's `finish_reason` for the runtime's.
pub fn finish_reason(finish: FinishReason) -> &'static str {
    match finish {
        FinishReason::Eos | FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

/// The `x-noesis-receipt` header value: the receipt's signed fields and signature as
/// compact JSON (the full receipt, with the output, stays in the body).
pub fn receipt_header(receipt: &ReceiptFile) -> Result<HeaderValue, ApiError> {
    let compact = serde_json::json!({ "receipt": receipt.receipt, "signature": receipt.signature });
    HeaderValue::from_str(&compact.to_string())
        .map_err(|e| ApiError::internal(format!("receipt header: {e}")))
}

/// Token counts of an answer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens (the chat template applied).
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
}

impl Usage {
    /// Usage from the two counts.
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

/// What Noesis adds to an answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoesisExtension {
    /// The signed receipt with the request, the output and the proof of inference.
    pub receipt: ReceiptFile,
    /// Set by the gateway: what it checked before returning the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// Set by the gateway: the uid of the miner that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miner_uid: Option<u16>,
}

impl NoesisExtension {
    /// A miner's extension: the receipt alone.
    pub fn of(receipt: ReceiptFile) -> Self {
        Self {
            receipt,
            verdict: None,
            miner_uid: None,
        }
    }
}

/// A `chat.completion` object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model id.
    pub model: String,
    /// One choice.
    pub choices: Vec<Choice>,
    /// Token counts.
    pub usage: Usage,
    /// The receipt.
    pub noesis: NoesisExtension,
}

/// A choice of a `chat.completion`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Choice {
    /// 0.
    pub index: u32,
    /// The answer.
    pub message: AssistantMessage,
    /// `stop` or `length`.
    pub finish_reason: String,
    /// Always null (log-probabilities are not offered).
    pub logprobs: Option<Value>,
}

/// The assistant's message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// `assistant`.
    pub role: String,
    /// The completion text.
    pub content: String,
}

/// A `chat.completion.chunk` (one server-sent event of a stream).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// Same for every chunk of a stream.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model id.
    pub model: String,
    /// The delta (empty in the usage chunk).
    pub choices: Vec<ChunkChoice>,
    /// Only in the usage chunk that ends the stream when `stream_options.include_usage`
    /// (its `choices` are empty, as OpenAI sends it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// In the chunk with `finish_reason`: the receipt (and the gateway's verdict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noesis: Option<NoesisExtension>,
}

impl ChatCompletionChunk {
    /// The chunks that end a stream, after its last text: the chunk with `finish_reason`,
    /// carrying `noesis` (its `choices` are not empty, so clients that read `choices[0]`
    /// of every chunk keep working), then, when the client asked for it
    /// (`stream_options.include_usage`), the usage chunk with empty `choices`, as OpenAI
    /// sends it. `chunk` makes a chunk of this stream from its choices.
    pub fn ending(
        chunk: impl Fn(Vec<ChunkChoice>) -> Self,
        finish_reason: Option<String>,
        noesis: NoesisExtension,
        usage: Usage,
        include_usage: bool,
    ) -> Vec<Self> {
        let mut end = chunk(vec![ChunkChoice {
            index: 0,
            delta: Delta::default(),
            finish_reason,
        }]);
        end.noesis = Some(noesis);
        let mut chunks = vec![end];
        if include_usage {
            let mut last = chunk(Vec::new());
            last.usage = Some(usage);
            chunks.push(last);
        }
        chunks
    }
}

/// A choice of a chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// 0.
    pub index: u32,
    /// New text (and the role in the first chunk).
    pub delta: Delta,
    /// Set in the chunk that ends the choice.
    pub finish_reason: Option<String>,
}

/// A chunk's delta.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    /// `assistant` in the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `GET /v1/models` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelObject {
    /// The model id.
    pub id: String,
    /// `model`.
    pub object: String,
    /// Unix seconds (0: unknown).
    pub created: u64,
    /// Who serves it.
    pub owned_by: String,
}

/// An error in OpenAI's shape: `{"error":{"message","type","param","code"}}` with its
/// HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// `invalid_request_error`, `server_error`, ...
    pub kind: &'static str,
    /// The offending parameter, if any.
    pub param: Option<String>,
    /// Machine-readable code.
    pub code: &'static str,
    /// Seconds for `Retry-After` (on 429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// 404 for a path this server does not serve; `served` lists what it does.
    pub fn no_route(served: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("No such route (served: {served})"),
            kind: "invalid_request_error",
            param: None,
            code: "not_found",
            retry_after: None,
        }
    }

    /// 405 for a served path asked with another method.
    pub fn wrong_method() -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "Method not allowed on this route (GET for /v1/models, POST for the others)"
                .into(),
            kind: "invalid_request_error",
            param: None,
            code: "method_not_allowed",
            retry_after: None,
        }
    }

    /// 400 about one parameter.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param.into()),
            code: "invalid_request",
            retry_after: None,
        }
    }

    /// 400 for a body that is not a valid request.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: "invalid_json",
            retry_after: None,
        }
    }

    /// 404 for a model this server does not serve.
    pub fn unknown_model(model: &str, served: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "The model `{model}` does not exist or is not served here (served: {served})"
            ),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: "model_not_found",
            retry_after: None,
        }
    }

    /// 429: every generation slot is busy.
    pub fn busy(retry_after: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "All generation slots are busy; retry later".into(),
            kind: "rate_limit_error",
            param: None,
            code: "capacity_exceeded",
            retry_after: Some(retry_after),
        }
    }

    /// 500 for a failure inside the server.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: "internal_error",
            retry_after: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seeds_survive_javascript_numbers() {
        for _ in 0..10_000 {
            assert!(random_seed() < 1 << 53);
        }
    }

    #[test]
    fn defaults_are_openai_s() {
        let request: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m",
            "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "stop": "\n",
            "user": "ignored"
        }))
        .unwrap();
        let (messages, params) = request.to_runtime(9).unwrap();
        assert_eq!(messages[0].role, "system");
        assert_eq!(params.temperature, DEFAULT_TEMPERATURE);
        assert_eq!(params.top_p, 1.0);
        assert_eq!(params.max_tokens, DEFAULT_MAX_TOKENS);
        assert_eq!(params.seed, 9);
        assert_eq!(params.stop, vec!["\n".to_string()]);
    }

    #[test]
    fn token_limits_name_the_parameter() {
        let ask = |extra: Value| {
            let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let request: ChatCompletionRequest = serde_json::from_value(body).unwrap();
            request.to_runtime(1)
        };
        for (extra, param) in [
            (json!({"max_tokens": -1}), "max_tokens"),
            (json!({"max_tokens": 0}), "max_tokens"),
            (
                json!({"max_completion_tokens": 5_000_000_000i64}),
                "max_completion_tokens",
            ),
        ] {
            let e = ask(extra).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param));
        }
        assert_eq!(ask(json!({"max_tokens": 7})).unwrap().1.max_tokens, 7);
        assert_eq!(
            ask(json!({"max_tokens": 7, "max_completion_tokens": 9}))
                .unwrap()
                .1
                .max_tokens,
            9
        );
    }
}
