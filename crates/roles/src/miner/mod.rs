//! The miner's inference server: an OpenAI-compatible API over one loaded model whose
//! every answer carries a signed receipt with a proof of inference.
//!
//! - `GET /v1/models` lists the served model;
//! - `POST /v1/chat/completions` generates (`stream: true` for server-sent events); the
//!   receipt is in the body's `noesis.receipt` (in a stream: the last chunk before
//!   `[DONE]`) and, for a plain answer, its signed fields and signature in the
//!   `x-noesis-receipt` header;
//! - at most `slots` generations run at once; a request beyond that gets `429` with
//!   `Retry-After` at once instead of waiting.
//!
//! Generation runs on blocking threads (the model has its own compute pool); a stream
//! whose client goes away stops at the next token.

mod serve;

pub use serve::{Miner, MinerConfig, RECEIPT_HEADER, router};
