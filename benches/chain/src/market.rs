//! The market benchmark: starts `noesis dev` (chain, subnet 1, miners, validator,
//! gateway), measures the time from start to the first answer through the gateway, then
//! runs the same chat requests (64-token answers) against the miners directly and through
//! the gateway, at each concurrency, alternating which goes first, and reports requests/s,
//! tokens/s and p50/p99 latency with the gateway's overhead as a ratio.
//!
//! ```text
//! market-bench --noesis target/release/noesis [--concurrency 1,4,16] [--rounds 2]
//! ```
//!
//! Direct clients treat a miner's 429 as the gateway does: try the next miner, pause
//! 25 ms after a full pass of busy ones.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};

/// Kills the child when dropped (every exit path).
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Parser, Debug)]
struct Args {
    /// The noesis binary.
    #[arg(long)]
    noesis: PathBuf,
    /// Concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    concurrency: Vec<usize>,
    /// Requests per phase (at least 4 per client).
    #[arg(long, default_value_t = 24)]
    requests: usize,
    /// Completion tokens asked per request.
    #[arg(long, default_value_t = 64)]
    max_tokens: u32,
    /// Direct/gateway pairs per concurrency.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Honest miners `noesis dev` starts.
    #[arg(long, default_value_t = 2)]
    miners: usize,
    /// Share of answers the gateway re-verifies (`noesis dev --verify-sample`).
    #[arg(long, default_value_t = 0.1)]
    verify_sample: f64,
}

const MODEL: &str = "smollm2-135m-instruct-q4_1";
const PROMPTS: &[&str] = &[
    "Write a long story about a dragon who learns to bake bread.",
    "Describe in detail how a steam engine works.",
    "Explain the history of the printing press at length.",
    "Write a detailed travel guide to an imaginary island.",
];

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One phase's results.
struct Phase {
    wall: Duration,
    latencies: Vec<Duration>,
    tokens: u64,
}

impl Phase {
    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
    fn tps(&self) -> f64 {
        self.tokens as f64 / self.wall.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> f64 {
        let mut l: Vec<f64> = self.latencies.iter().map(Duration::as_secs_f64).collect();
        l.sort_by(f64::total_cmp);
        let i = ((p * l.len() as f64).ceil() as usize).clamp(1, l.len()) - 1;
        l[i]
    }
}

fn body(i: usize, max_tokens: u32) -> Value {
    json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPTS[i % PROMPTS.len()]}],
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "seed": i,
    })
}

/// Sends request `i` to one of `urls` (chat completions base URLs), moving on from busy
/// ones; returns the completion tokens.
async fn ask(
    http: &reqwest::Client,
    urls: &[String],
    i: usize,
    max_tokens: u32,
) -> anyhow::Result<u64> {
    let request = body(i, max_tokens);
    let mut k = i;
    let mut busy_in_pass = 0;
    loop {
        let url = &urls[k % urls.len()];
        k += 1;
        let response = http
            .post(format!("{url}/chat/completions"))
            .json(&request)
            .send()
            .await?;
        let status = response.status();
        if status.as_u16() == 429 {
            busy_in_pass += 1;
            if busy_in_pass >= urls.len() {
                busy_in_pass = 0;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            continue;
        }
        let answer: Value = response.json().await?;
        if !status.is_success() {
            bail!("{url} answered {status}: {answer}");
        }
        return answer["usage"]["completion_tokens"]
            .as_u64()
            .context("no usage in the answer");
    }
}

async fn phase(
    urls: Arc<Vec<String>>,
    clients: usize,
    requests: usize,
    max_tokens: u32,
) -> anyhow::Result<Phase> {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, urls, next) = (http.clone(), urls.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return anyhow::Ok(out);
                }
                let t = Instant::now();
                let tokens = ask(&http, &urls, i, max_tokens).await?;
                out.push((t.elapsed(), tokens));
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut tokens = 0;
    for task in tasks {
        for (latency, t) in task.await?? {
            latencies.push(latency);
            tokens += t;
        }
    }
    Ok(Phase {
        wall: started.elapsed(),
        latencies,
        tokens,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (http_port, gateway_port) = (free_port()?, free_port()?);
    let datadir = std::env::temp_dir().join(format!("noesis-market-bench-{http_port}"));
    let _ = std::fs::remove_dir_all(&datadir);
    let started = Instant::now();
    let mut child = std::process::Command::new(&args.noesis)
        .args(["dev", "--datadir"])
        .arg(&datadir)
        .args(["--http-port", &http_port.to_string()])
        .args(["--gateway-port", &gateway_port.to_string()])
        .args(["--miners", &args.miners.to_string()])
        .args(["--verify-sample", &args.verify_sample.to_string()])
        // One validator round at the start, then none for two hours of blocks.
        .args(["--tempo", "7200"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start noesis dev")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let node = Node(child);
    let gateway = format!("http://127.0.0.1:{gateway_port}/v1");
    let miners = tokio::task::spawn_blocking(move || {
        let mut miners = Vec::new();
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("Miner:")
                && let Some(url) = rest.split_whitespace().find(|w| w.starts_with("http"))
            {
                miners.push(url.to_string());
            }
            if line.starts_with("Dashboard:") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        miners
    })
    .await?;
    anyhow::ensure!(!miners.is_empty(), "noesis dev printed no miners");
    let http = reqwest::Client::new();
    let first = loop {
        let ok = http
            .post(format!("{gateway}/chat/completions"))
            .json(&body(0, 8))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("no answer through the gateway within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "miners: {}, gateway re-verifies {} of answers",
        args.miners, args.verify_sample
    );
    println!(
        "time from `noesis dev` start to the first answer through the gateway: {:.2} s",
        first.as_secs_f64()
    );
    // Let the validator's first round finish before measuring.
    let scores = format!("http://127.0.0.1:{http_port}/validator.json");
    loop {
        let board: Value = http.get(&scores).send().await?.json().await?;
        if board["rounds"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let direct = Arc::new(miners);
    let through = Arc::new(vec![gateway]);
    println!(
        "\n| clients | pair | direct req/s | gateway req/s | gateway/direct | direct p50 / p99 s | gateway p50 / p99 s | direct tok/s | gateway tok/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &clients in &args.concurrency {
        let requests = args.requests.max(clients * 4);
        for round in 0..args.rounds {
            let (d, g) = if round % 2 == 0 {
                let d = phase(direct.clone(), clients, requests, args.max_tokens).await?;
                let g = phase(through.clone(), clients, requests, args.max_tokens).await?;
                (d, g)
            } else {
                let g = phase(through.clone(), clients, requests, args.max_tokens).await?;
                let d = phase(direct.clone(), clients, requests, args.max_tokens).await?;
                (d, g)
            };
            println!(
                "| {clients} | {} | {:.2} | {:.2} | {:.3} | {:.2} / {:.2} | {:.2} / {:.2} | {:.1} | {:.1} |",
                round + 1,
                d.rps(),
                g.rps(),
                g.rps() / d.rps(),
                d.percentile(0.5),
                d.percentile(0.99),
                g.percentile(0.5),
                g.percentile(0.99),
                d.tps(),
                g.tps(),
            );
        }
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&datadir);
    Ok(())
}
