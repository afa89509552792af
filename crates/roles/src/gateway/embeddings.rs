//! `POST /v1/embeddings`, OpenAI's shape, served by the gateway's own sentence-embedding
//! model (ADR 0011: embeddings carry no proof of inference yet, so they are not routed to
//! miners). Vectors come back as floats or, with `encoding_format: "base64"` (what the
//! OpenAI SDKs ask for by default), as base64 of little-endian `f32`s.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use noesis_ai::embed::Embedder;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Gateway;
use crate::openai::ApiError;

/// Most inputs in one request (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// The embedding model a gateway serves, and the ids it answers to.
pub struct EmbeddingModel {
    /// The loaded model.
    pub embedder: Arc<Embedder>,
    /// Its public id (e.g. `all-minilm-l6-v2`); its sha256 is accepted too.
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingsRequest {
    model: String,
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    user: Option<String>,
}

/// The texts of an `input`: a string or an array of strings.
fn texts(input: &Value) -> Result<Vec<String>, ApiError> {
    let invalid = |m: &str| ApiError::invalid("input", m);
    let texts = match input {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.is_empty() => {
            return Err(invalid("`input` must not be an empty array"));
        }
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Number(_) | Value::Array(_) => Err(invalid(
                    "token arrays are not supported (they are another tokenizer's ids): send text",
                )),
                _ => Err(invalid("`input` must be a string or an array of strings")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid("`input` must be a string or an array of strings")),
    };
    if texts.len() > MAX_INPUTS {
        return Err(invalid(&format!(
            "at most {MAX_INPUTS} inputs per request, got {}",
            texts.len()
        )));
    }
    if texts.iter().any(String::is_empty) {
        return Err(invalid("`input` must not contain empty strings"));
    }
    Ok(texts)
}

pub(super) async fn embeddings(State(gateway): State<Arc<Gateway>>, body: Bytes) -> Response {
    match embed(&gateway, &body).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// An embeddings request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The model asked for.
    pub model: String,
    /// The texts, in order.
    pub texts: Vec<String>,
    /// Whether vectors go back as base64.
    pub base64: bool,
    /// `dimensions`, when given.
    pub dimensions: Option<u64>,
}

/// Decodes and checks the body of `POST /v1/embeddings` (the model is checked against
/// what the gateway serves later).
pub fn decode(body: &[u8]) -> Result<Decoded, ApiError> {
    let request: EmbeddingsRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("invalid request body: {e}")))?;
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("encoding_format must be \"float\" or \"base64\", not {other:?}"),
            ));
        }
    };
    Ok(Decoded {
        texts: texts(&request.input)?,
        model: request.model,
        base64,
        dimensions: request.dimensions,
    })
}

async fn embed(gateway: &Gateway, body: &[u8]) -> Result<Value, ApiError> {
    let request = decode(body)?;
    let Some(model) = &gateway.embedding else {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "The model `{}` does not exist: this gateway serves no embedding model",
                request.model
            ),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: "model_not_found",
            retry_after: None,
        });
    };
    let sha = &model.embedder.info.sha256;
    if request.model != model.id && request.model != *sha && request.model != format!("0x{sha}") {
        return Err(ApiError::unknown_model(&request.model, &model.id));
    }
    let dim = model.embedder.dim();
    if let Some(d) = request.dimensions
        && d != dim as u64
    {
        return Err(ApiError::invalid(
            "dimensions",
            format!("{} makes {dim}-dimensional vectors only", model.id),
        ));
    }
    let (base64, texts) = (request.base64, request.texts);
    let embedder = model.embedder.clone();
    let (vectors, tokens) = tokio::task::spawn_blocking(move || {
        let tokens: usize = texts
            .iter()
            .map(|t| embedder.tokenize(t).map(|ids| ids.len()))
            .sum::<Result<usize, _>>()?;
        embedder.embed_batch(&texts).map(|v| (v, tokens))
    })
    .await
    .map_err(|e| ApiError::internal(format!("embedding task failed: {e}")))?
    .map_err(|e| ApiError::internal(format!("cannot embed: {e}")))?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model.id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_strings_or_arrays_of_strings() {
        assert_eq!(texts(&json!("a")).unwrap(), vec!["a"]);
        assert_eq!(texts(&json!(["a", "b"])).unwrap(), vec!["a", "b"]);
        for bad in [
            json!([]),
            json!(""),
            json!([1, 2]),
            json!([[1]]),
            json!(3),
            json!(null),
        ] {
            let e = texts(&bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(e.param.as_deref(), Some("input"));
        }
        let many = Value::Array(vec![json!("x"); MAX_INPUTS + 1]);
        assert!(texts(&many).is_err());
    }
}
