//! `noesis testnet`: a local multi-validator network in one directory.
//!
//! `init` writes the dev chain spec with the new validator set (`genesis.json`), per
//! validator a consensus key and a node config with every validator's address, and per
//! follower a config naming the validators' JSON-RPC; `start` runs each node that is not
//! running as a detached `noesis node` process (pid file, appended log); `stop` ends
//! them; `status` asks each node over JSON-RPC for its head and finalized block.
//!
//! ```text
//! D/genesis.json
//! D/node-0/{config.toml, consensus.key, pid, node.log, data/}
//! D/node-1/…
//! ```

use std::{
    fs::OpenOptions,
    io::Write as _,
    os::unix::{fs::OpenOptionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::{Args, Subcommand};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use noesis_primitives::ChainSpec;
use serde_json::{Value, json};

use crate::{
    client::RpcClient,
    consensus::{ConsensusSection, ValidatorEntry, generate_key},
    follow::FollowSection,
    run::NodeConfig,
};

/// Most validators `init` writes.
const MAX_VALIDATORS: u64 = 64;
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long `status` waits for each node's answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// `noesis testnet …`.
#[derive(Subcommand, Debug)]
pub enum TestnetCommand {
    /// Write a testnet: the dev chain spec (genesis.json) and, per validator, a fresh
    /// consensus key and a node config listing every validator.
    Init(InitArgs),
    /// Start every node of the testnet that is not running (each a detached process
    /// logging to node-I/node.log); a node that died is restarted.
    Start(DirArgs),
    /// Stop the running nodes (SIGTERM, then SIGKILL after 10 s).
    Stop(DirArgs),
    /// Print each node's pid, RPC URL, head, finalized block and state root as JSON.
    Status(DirArgs),
}

/// `noesis testnet init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Number of validators (1 to 64).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_VALIDATORS))]
    pub validators: u64,
    /// Number of followers: full nodes that commit the validators' finalized blocks
    /// and serve JSON-RPC, without voting (0 to 64).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_VALIDATORS))]
    pub followers: u64,
    /// Directory of the testnet.
    #[arg(long)]
    pub dir: PathBuf,
    /// JSON-RPC port of node 0; node I listens on this + I.
    #[arg(long, default_value_t = 18545)]
    pub base_rpc_port: u16,
    /// p2p port of node 0; node I listens on this + I.
    #[arg(long, default_value_t = 30400)]
    pub base_p2p_port: u16,
    /// Replace an existing testnet in the directory (its nodes' data is deleted).
    #[arg(long)]
    pub force: bool,
}

/// The testnet directory.
#[derive(Args, Debug)]
pub struct DirArgs {
    /// Directory of the testnet (made by `noesis testnet init`).
    #[arg(long)]
    pub dir: PathBuf,
}

/// Runs a `noesis testnet` command.
pub async fn run(command: TestnetCommand) -> anyhow::Result<()> {
    match command {
        TestnetCommand::Init(args) => init(&args),
        TestnetCommand::Start(args) => start(&args.dir),
        TestnetCommand::Stop(args) => stop(&args.dir),
        TestnetCommand::Status(args) => status(&args.dir).await,
    }
}

fn init(args: &InitArgs) -> anyhow::Result<()> {
    let n = args.validators;
    let port = |base: u16, i: u64, what: &str| {
        u16::try_from(u64::from(base) + i)
            .ok()
            .with_context(|| format!("{what} {base} + {i} is past port 65535"))
    };
    let followers = args.followers;
    port(args.base_rpc_port, n + followers - 1, "--base-rpc-port")?;
    port(args.base_p2p_port, n - 1, "--base-p2p-port")?;
    let dir = &args.dir;
    let genesis = dir.join("genesis.json");
    let existing = nodes(dir).unwrap_or_default();
    if genesis.exists() || !existing.is_empty() {
        anyhow::ensure!(
            args.force,
            "{} already holds a testnet: `noesis testnet start --dir {0}` runs it, --force replaces it (deleting its data)",
            dir.display()
        );
        let running: Vec<usize> = existing
            .iter()
            .filter(|node| node.pid().is_some())
            .map(|node| node.index)
            .collect();
        anyhow::ensure!(
            running.is_empty(),
            "nodes {running:?} of {} are running: `noesis testnet stop --dir {0}` first",
            dir.display()
        );
        for node in &existing {
            std::fs::remove_dir_all(&node.dir)
                .with_context(|| format!("cannot remove {}", node.dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let keys: Vec<(String, String)> = (0..n).map(|_| generate_key()).collect();
    let mut spec = ChainSpec::dev();
    spec.validators = keys
        .iter()
        .map(|(_, public_key)| public_key.parse())
        .collect::<Result<_, _>>()
        .context("a generated public key is not 32 bytes of hex")?;
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&genesis, text + "\n")
        .with_context(|| format!("cannot write {}", genesis.display()))?;

    let validators: Vec<ValidatorEntry> = keys
        .iter()
        .zip(0..)
        .map(|((_, public_key), i)| {
            Ok(ValidatorEntry {
                public_key: public_key.clone(),
                address: format!("127.0.0.1:{}", port(args.base_p2p_port, i, "")?),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    for ((secret, _), i) in keys.iter().zip(0..) {
        let section = ConsensusSection {
            key_file: "consensus.key".into(),
            listen: validators[i as usize].address.clone(),
            validators: validators.clone(),
        };
        let http_port = port(args.base_rpc_port, i, "")?;
        let node_dir = write_node(dir, i, n, http_port, Some(section), None)?;
        let key_path = node_dir.join("consensus.key");
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .and_then(|mut f| writeln!(f, "{secret}"))
            .with_context(|| format!("cannot write {}", key_path.display()))?;
    }
    for i in n..n + followers {
        // Each follower asks a different validator first.
        let sources = (0..n)
            .map(|j| {
                let v = (i + j) % n;
                Ok(format!(
                    "http://127.0.0.1:{}",
                    port(args.base_rpc_port, v, "")?
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let http_port = port(args.base_rpc_port, i, "")?;
        write_node(dir, i, n, http_port, None, Some(FollowSection { sources }))?;
    }
    crate::say!(
        "Testnet of {n} validators and {followers} followers in {} (chain id {}, the 10 dev accounts funded)",
        dir.display(),
        noesis_primitives::DEV_CHAIN_ID
    );
    for i in 0..n {
        crate::say!(
            "node-{i}: JSON-RPC http://127.0.0.1:{}, p2p {}, public key {}",
            u64::from(args.base_rpc_port) + i,
            validators[i as usize].address,
            validators[i as usize].public_key
        );
    }
    for i in n..n + followers {
        crate::say!(
            "node-{i}: JSON-RPC http://127.0.0.1:{}, follower",
            u64::from(args.base_rpc_port) + i
        );
    }
    crate::say!(
        "Start it with: noesis testnet start --dir {}",
        dir.display()
    );
    Ok(())
}

/// Creates `node-I` in `dir` and writes its config: a validator (`consensus`) or a
/// follower (`follow`) of the `n`-validator testnet, JSON-RPC on `http_port`. Returns
/// the node's directory.
fn write_node(
    dir: &Path,
    i: u64,
    n: u64,
    http_port: u16,
    consensus: Option<ConsensusSection>,
    follow: Option<FollowSection>,
) -> anyhow::Result<PathBuf> {
    let node_dir = dir.join(format!("node-{i}"));
    std::fs::create_dir_all(&node_dir)
        .with_context(|| format!("cannot create {}", node_dir.display()))?;
    let role = if consensus.is_some() {
        "a validator"
    } else {
        "a follower"
    };
    let config = NodeConfig {
        datadir: "data".into(),
        chain: "../genesis.json".into(),
        http_addr: [127, 0, 0, 1].into(),
        http_port,
        block_time: 0,
        consensus,
        follow,
    };
    let text = format!(
        "# Node {i}, {role} of a {n}-validator testnet (`noesis testnet init`).\n{}",
        toml::to_string(&config)?
    );
    let path = node_dir.join("config.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(node_dir)
}

fn start(dir: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the noesis executable")?;
    let mut started = Vec::new();
    for node in testnet_nodes(dir)? {
        if let Some(pid) = node.pid() {
            crate::say!("node-{} already running (pid {pid})", node.index);
            continue;
        }
        let log_path = node.dir.join("node.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let child = Command::new(&exe)
            .arg("node")
            .arg("--config")
            .arg(node.config())
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C meant for this shell does not reach it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start node-{}", node.index))?;
        std::fs::write(node.pid_file(), format!("{}\n", child.id()))
            .with_context(|| format!("cannot write {}", node.pid_file().display()))?;
        started.push((node, child));
    }
    // A node with a bad config exits at once: say so rather than report it started.
    if !started.is_empty() {
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut failed = Vec::new();
    for (node, mut child) in started {
        match child.try_wait() {
            Ok(Some(status)) => {
                let _ = std::fs::remove_file(node.pid_file());
                failed.push(format!(
                    "node-{} exited at once ({status}); the end of {}:\n{}",
                    node.index,
                    node.dir.join("node.log").display(),
                    log_tail(&node.dir.join("node.log"), 10)
                ));
            }
            _ => crate::say!("node-{} started (pid {})", node.index, child.id()),
        }
    }
    anyhow::ensure!(failed.is_empty(), "{}", failed.join("\n"));
    Ok(())
}

fn stop(dir: &Path) -> anyhow::Result<()> {
    let mut stopping = Vec::new();
    for node in testnet_nodes(dir)? {
        match node.pid() {
            Some(pid) => {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                stopping.push((node, pid));
            }
            None => {
                let _ = std::fs::remove_file(node.pid_file());
                crate::say!("node-{} was not running", node.index);
            }
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline && stopping.iter().any(|(node, _)| node.pid().is_some()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (node, pid) in stopping {
        if node.pid().is_some() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            crate::say!(
                "node-{} killed (pid {pid}, still running after SIGTERM)",
                node.index
            );
        } else {
            crate::say!("node-{} stopped (pid {pid})", node.index);
        }
        let _ = std::fs::remove_file(node.pid_file());
    }
    Ok(())
}

async fn status(dir: &Path) -> anyhow::Result<()> {
    let mut queries = Vec::new();
    for node in testnet_nodes(dir)? {
        let text = std::fs::read_to_string(node.config())
            .with_context(|| format!("cannot read {}", node.config().display()))?;
        let config: NodeConfig = toml::from_str(&text)
            .with_context(|| format!("invalid config {}", node.config().display()))?;
        let rpc = format!("http://{}:{}", config.http_addr, config.http_port);
        let role = if config.follow.is_some() {
            "follower"
        } else {
            "validator"
        };
        let pid = node.pid();
        queries.push(tokio::spawn(async move {
            let client = RpcClient::new(&rpc);
            let latest = head_of(&client, "latest").await;
            let finalized = head_of(&client, "finalized").await;
            json!({
                "index": node.index,
                "role": role,
                "pid": pid,
                "rpc": rpc,
                "height": latest.as_ref().map(|b| b.0),
                "finalized": finalized.as_ref().map(|b| b.0),
                "hash": latest.as_ref().map(|b| b.1.clone()),
                "stateRoot": latest.as_ref().map(|b| b.2.clone()),
            })
        }));
    }
    let mut nodes = Vec::new();
    for query in queries {
        nodes.push(query.await?);
    }
    crate::say!(
        "{}",
        serde_json::to_string_pretty(&json!({ "nodes": nodes }))?
    );
    Ok(())
}

/// Number, hash and state root of the block `tag` names; `None` if the node does not
/// answer in time.
async fn head_of(client: &RpcClient, tag: &str) -> Option<(u64, Value, Value)> {
    let call = client.call("eth_getBlockByNumber", json!([tag, false]));
    let block = tokio::time::timeout(STATUS_TIMEOUT, call)
        .await
        .ok()?
        .ok()?;
    let number = block.get("number")?.as_str()?;
    let number = u64::from_str_radix(number.trim_start_matches("0x"), 16).ok()?;
    Some((
        number,
        block.get("hash")?.clone(),
        block.get("stateRoot")?.clone(),
    ))
}

/// One node directory of a testnet.
struct Node {
    index: usize,
    dir: PathBuf,
}

impl Node {
    fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }

    /// The pid of the node's process, if its pid file names a live `noesis node` of
    /// this config (not a zombie, nor another process that reused the pid).
    fn pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The state follows the command name, which is in parentheses.
        let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
        if matches!(state, 'Z' | 'X' | 'x') {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let config = self.config();
        let config = config.as_os_str().as_encoded_bytes();
        cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == config)
            .then_some(pid)
    }
}

/// The `node-I` directories of `dir`, by index; an error when there are none.
fn testnet_nodes(dir: &Path) -> anyhow::Result<Vec<Node>> {
    let nodes = nodes(dir)?;
    anyhow::ensure!(
        !nodes.is_empty(),
        "{} holds no testnet: create one with `noesis testnet init --validators N --dir {0}`",
        dir.display()
    );
    Ok(nodes)
}

fn nodes(dir: &Path) -> anyhow::Result<Vec<Node>> {
    // Absolute paths: they are what the pid check finds in a node's command line.
    let dir =
        std::fs::canonicalize(dir).with_context(|| format!("no directory {}", dir.display()))?;
    let mut nodes = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        let Some(index) = name
            .to_str()
            .and_then(|n| n.strip_prefix("node-"))
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        if entry.path().join("config.toml").is_file() {
            nodes.push(Node {
                index,
                dir: entry.path(),
            });
        }
    }
    nodes.sort_by_key(|n| n.index);
    Ok(nodes)
}

/// The last `lines` lines of a log file.
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_configs_that_node_reads_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let args = |force| InitArgs {
            validators: 3,
            followers: 1,
            dir: dir.path().join("net"),
            base_rpc_port: 18545,
            base_p2p_port: 30400,
            force,
        };
        init(&args(false)).unwrap();
        let spec = std::fs::read_to_string(dir.path().join("net/genesis.json")).unwrap();
        let spec = ChainSpec::from_json(&spec).unwrap();
        assert_eq!(spec.validators.len(), 3);
        assert_eq!(
            ChainSpec {
                validators: vec![],
                ..spec.clone()
            },
            ChainSpec::dev()
        );
        let nodes = testnet_nodes(&dir.path().join("net")).unwrap();
        assert_eq!(nodes.len(), 4);
        let mut keys = Vec::new();
        for node in &nodes[..3] {
            let text = std::fs::read_to_string(node.config()).unwrap();
            let config: NodeConfig = toml::from_str(&text).unwrap();
            assert_eq!(config.http_port, 18545 + node.index as u16);
            let section = config.consensus.unwrap();
            assert_eq!(section.listen, format!("127.0.0.1:{}", 30400 + node.index));
            assert_eq!(section.validators.len(), 3);
            let validator =
                crate::consensus::Validator::load(&section, &node.dir, &spec.validators).unwrap();
            keys.push(validator.public_key());
            let mode = std::fs::metadata(node.dir.join("consensus.key"))
                .unwrap()
                .permissions();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
                0o600
            );
            assert_eq!(node.pid(), None);
        }
        let text = std::fs::read_to_string(nodes[3].config()).unwrap();
        let config: NodeConfig = toml::from_str(&text).unwrap();
        assert!(config.consensus.is_none());
        let follow =
            crate::follow::FollowConfig::load(&config.follow.unwrap(), &spec.validators).unwrap();
        assert_eq!(follow.count(), 3);
        assert_eq!(follow.sources()[0], "http://127.0.0.1:18545");
        assert_eq!(follow.sources().len(), 3);
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 3, "every node has its own key");

        let err = init(&args(false)).unwrap_err().to_string();
        assert!(err.contains("already holds a testnet"), "{err}");
        init(&args(true)).unwrap();
    }
}
