//! Test support: start a real `noesis` process on a temporary data dir and talk to it
//! over its public JSON-RPC, exactly as a third-party client would.

#![allow(dead_code)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use serde_json::{Value, json};

/// Chain id of the dev chain.
pub const CHAIN_ID: u64 = 7337;

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `noesis dev` process.
pub struct DevNode {
    pub child: Child,
    pub url: String,
    pub port: u16,
    pub datadir: PathBuf,
}

impl DevNode {
    /// Starts `noesis dev --no-ai` (the chain alone) on `datadir` and waits until it
    /// answers.
    pub fn start(datadir: &Path, extra: &[&str]) -> DevNode {
        let node = Self::spawn(datadir, &[&["--no-ai"], extra].concat(), Stdio::null());
        let started = Instant::now();
        while node.try_call("eth_chainId", json!([])).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "node did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    /// Starts `noesis dev` with its market (subnet 1, miners, validator, gateway) on
    /// `datadir` and waits until it prints where everything listens; returns the node and
    /// the gateway's OpenAI base URL.
    pub fn start_market(datadir: &Path, extra: &[&str]) -> (DevNode, String) {
        use std::io::{BufRead, BufReader};
        let mut node = Self::spawn(datadir, extra, Stdio::piped());
        let mut lines = BufReader::new(node.child.stdout.take().expect("stdout")).lines();
        let mut gateway = None;
        for line in lines.by_ref() {
            let line = line.expect("read noesis dev's output");
            if let Some(rest) = line.strip_prefix("Gateway:") {
                gateway = rest.split_whitespace().next().map(str::to_string);
            }
            if line.starts_with("Dashboard:") {
                break;
            }
        }
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let gateway = gateway.expect("noesis dev printed no gateway address");
        (node, gateway)
    }

    fn spawn(datadir: &Path, extra: &[&str], stdout: Stdio) -> DevNode {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_noesis"))
            .args(["dev", "--datadir"])
            .arg(datadir)
            .args(["--http-port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn noesis");
        DevNode {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            datadir: datadir.to_path_buf(),
        }
    }

    /// Sends a JSON-RPC request; returns the raw response object.
    pub fn raw(&self, body: &Value) -> Result<Value, String> {
        let mut response = ureq::post(&self.url)
            .send_json(body)
            .map_err(|e| e.to_string())?;
        response
            .body_mut()
            .read_json::<Value>()
            .map_err(|e| e.to_string())
    }

    /// Calls `method`; Err holds the JSON-RPC error object.
    pub fn try_call(&self, method: &str, params: Value) -> Result<Value, Value> {
        let response = self
            .raw(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .map_err(|e| json!({"transport": e}))?;
        match response.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(response.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    /// Calls `method` and expects success.
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.try_call(method, params.clone())
            .unwrap_or_else(|e| panic!("{method}({params}) failed: {e}"))
    }

    /// A hex quantity result as u128.
    pub fn quantity(&self, method: &str, params: Value) -> u128 {
        let v = self.call(method, params);
        u128::from_str_radix(v.as_str().expect("hex").trim_start_matches("0x"), 16)
            .expect("quantity")
    }

    /// Waits for the receipt of `hash`.
    pub fn receipt(&self, hash: &str) -> Value {
        let started = Instant::now();
        loop {
            let receipt = self.call("eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                return receipt;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no receipt for {hash}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Dev account `i` (the well-known test mnemonic).
pub fn dev_signer(i: u32) -> PrivateKeySigner {
    let accounts = noesis_primitives::dev_accounts(i + 1);
    PrivateKeySigner::from_bytes(&accounts[i as usize].private_key).expect("dev key")
}

/// A transaction template: EIP-1559 with generous fees.
pub fn eip1559(
    nonce: u64,
    to: Option<Address>,
    value: U256,
    input: Bytes,
    gas_limit: u64,
) -> TxEip1559 {
    TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: to.map_or(TxKind::Create, TxKind::Call),
        value,
        input,
        ..Default::default()
    }
}

/// Signs any signable transaction and returns its raw hex.
pub fn sign<T: SignableTransaction<alloy_primitives::Signature>>(
    signer: &PrivateKeySigner,
    tx: T,
) -> String
where
    TxEnvelope: From<alloy_consensus::Signed<T>>,
{
    let signature = signer.sign_hash_sync(&tx.signature_hash()).expect("sign");
    let envelope: TxEnvelope = tx.into_signed(signature).into();
    format!(
        "0x{}",
        alloy_primitives::hex::encode(envelope.encoded_2718())
    )
}

/// A transfer of `value` wei from `signer` with `nonce`.
pub fn transfer(signer: &PrivateKeySigner, nonce: u64, to: Address, value: u64) -> String {
    sign(
        signer,
        eip1559(nonce, Some(to), U256::from(value), Bytes::new(), 21_000),
    )
}

/// POSTs raw bytes; returns the HTTP status and body.
pub fn post_bytes(url: &str, body: Vec<u8>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(&body[..])
        .expect("http");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// Announces a body of `length` bytes, sends only its start, and returns the HTTP
/// status the server answers with (servers reject oversized bodies from the header).
pub fn status_for_announced_length(port: u16, length: usize) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(&vec![b' '; 64 * 1024]);
    let mut response = [0u8; 64];
    let n = stream.read(&mut response).unwrap_or(0);
    let text = String::from_utf8_lossy(&response[..n]);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
