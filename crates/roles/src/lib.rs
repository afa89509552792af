//! Noesis's off-chain roles. They talk to the chain only through its public JSON-RPC,
//! as a third party would.
//!
//! - [`openai`]: the OpenAI chat-completions wire format (requests, responses, stream
//!   chunks, errors) and its mapping onto the runtime's chat messages and sampling
//!   parameters;
//! - [`miner`]: the miner's inference server: `POST /v1/chat/completions` (also
//!   streaming) on a loaded model, every answer carrying its signed receipt and proof of
//!   inference (`noesis_ai::proof`), a bounded number of concurrent generations with
//!   `429` + `Retry-After` beyond it;
//! - [`gateway`]: the public OpenAI-compatible entry point: finds the miners serving a
//!   model in a subnet's metagraph, routes each request to one at random weighted by
//!   incentive, checks the receipt of every answer, retries another miner on error,
//!   timeout or a bad receipt;
//! - [`validator`]: challenges every served miner each epoch with prompts seeded from the
//!   chain, verifies the answers' proofs with the real model, turns verdicts, latency and
//!   throughput into weights and commits then reveals them;
//! - [`check`]: the checks of a miner's answer that the gateway and the validator share;
//! - [`chain`]: the transactions and view calls they send (register, serve, stake, weights);
//! - [`rpc`]: the JSON-RPC client they share with the CLI.

pub mod chain;
pub mod check;
pub mod gateway;
pub mod miner;
pub mod openai;
pub mod rpc;
pub mod validator;
