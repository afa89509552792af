//! A minimal JSON-RPC client for the roles and the CLI: they reach the chain only through
//! its public JSON-RPC.

use anyhow::Context;
use serde_json::{Value, json};

/// The node answered a call with a JSON-RPC error (it was reached and judged the call),
/// as opposed to a transport failure; find it with `anyhow::Error::downcast_ref`.
#[derive(Debug, thiserror::Error)]
#[error("{method} failed: {message}")]
pub struct NodeRefused {
    /// The method called.
    pub method: String,
    /// The node's error message.
    pub message: String,
}

/// A minimal JSON-RPC client.
#[derive(Clone, Debug)]
pub struct RpcClient {
    url: String,
    http: reqwest::Client,
}

impl RpcClient {
    /// A client for `url`.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Calls `method` and returns its result.
    pub async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response: Value = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the node at {} (is it running? see --rpc)",
                    self.url
                )
            })?
            .json()
            .await
            .with_context(|| format!("{method}: the node's answer is not JSON-RPC"))?;
        if let Some(error) = response.get("error") {
            return Err(NodeRefused {
                method: method.to_string(),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
            }
            .into());
        }
        Ok(response.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Calls `method` and parses its hex quantity result.
    pub async fn quantity(&self, method: &str, params: Value) -> anyhow::Result<u128> {
        let v = self.call(method, params).await?;
        let s = v
            .as_str()
            .with_context(|| format!("{method}: expected a hex quantity"))?;
        u128::from_str_radix(s.trim_start_matches("0x"), 16)
            .with_context(|| format!("{method}: bad quantity {s}"))
    }
}
