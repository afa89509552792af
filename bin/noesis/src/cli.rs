//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Noesis: an AI-native, Ethereum-compatible blockchain node.
#[derive(Parser, Debug)]
#[command(name = "noesis", version, about, long_about = None)]
pub struct Cli {
    /// More logging (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a local dev chain with funded dev accounts (automine by default).
    Dev(DevArgs),
    /// Run a node from a TOML config file (no dev accounts).
    Node(NodeArgs),
    /// Manage encrypted local keys.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Send native tokens and wait for the receipt.
    Send(SendArgs),
    /// Print the status of a running node as JSON.
    Status(RpcArgs),
    /// Yuma Consensus: run or check test vectors.
    #[command(subcommand)]
    Yuma(YumaCommand),
}

/// `noesis yuma …`.
#[derive(Subcommand, Debug)]
pub enum YumaCommand {
    /// Run the epoch of a vector file (`single` or `sequence`, the schema of
    /// shared/testvectors/yuma/README.md) and print its outputs as JSON on stdout.
    Epoch {
        /// The vector file.
        file: PathBuf,
    },
    /// Run vector files (or every `*.json` in a directory) and compare each epoch's
    /// outputs with the expected ones, exactly; exits non-zero on any difference.
    Check {
        /// Vector files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Options of the JSON-RPC server.
#[derive(Args, Debug, Clone)]
pub struct HttpArgs {
    /// Port for JSON-RPC over HTTP and WebSocket.
    #[arg(long, default_value_t = 8545)]
    pub http_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub http_addr: std::net::IpAddr,
}

/// `noesis dev`.
#[derive(Args, Debug)]
pub struct DevArgs {
    /// Data directory [default: ~/.noesis/dev].
    #[arg(long)]
    pub datadir: Option<PathBuf>,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Seal a block every SECS seconds instead of on every transaction.
    #[arg(long, value_name = "SECS")]
    pub block_time: Option<u64>,
    /// Block gas limit of a new dev chain.
    #[arg(long)]
    pub gas_limit: Option<u64>,
}

/// `noesis node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// TOML config file (format in README.md: datadir, chain, http_addr, http_port, block_time).
    #[arg(long)]
    pub config: PathBuf,
}

/// `noesis account ...`.
#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Create a new key, encrypted in the keystore.
    New(KeystoreArgs),
    /// List the keystore's accounts.
    List(KeystoreArgs),
    /// Import a private key (hex) into the keystore.
    Import {
        /// File holding the private key as hex ("-" reads standard input).
        #[arg(long)]
        key_file: PathBuf,
        #[command(flatten)]
        keystore: KeystoreArgs,
    },
}

/// Where keys live and how they are unlocked.
#[derive(Args, Debug)]
pub struct KeystoreArgs {
    /// Keystore directory [default: ~/.noesis/keystore].
    #[arg(long)]
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password (or set NOESIS_PASSWORD).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// Which node to talk to.
#[derive(Args, Debug)]
pub struct RpcArgs {
    /// JSON-RPC URL of the node.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    pub rpc: String,
}

/// `noesis send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// Recipient address.
    #[arg(long)]
    pub to: alloy_primitives::Address,
    /// Amount: wei, or with a unit (1.5ether, 20gwei).
    #[arg(long)]
    pub value: String,
    /// Sender's private key as hex [default: dev account 0].
    #[arg(long, conflicts_with = "from")]
    pub key: Option<String>,
    /// Sender address in the keystore (unlocked with --password-file or NOESIS_PASSWORD).
    #[arg(long)]
    pub from: Option<alloy_primitives::Address>,
    #[command(flatten)]
    pub keystore: KeystoreArgs,
    #[command(flatten)]
    pub rpc: RpcArgs,
}

/// Runs a command.
pub async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Dev(args) => crate::run::dev(args).await,
        Command::Node(args) => crate::run::node(args).await,
        Command::Account(cmd) => crate::account::run(cmd),
        Command::Send(args) => crate::client::send(args).await,
        Command::Status(args) => crate::client::status(args).await,
        Command::Yuma(cmd) => crate::yuma::run(cmd),
    }
}

/// `~/.noesis`.
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".noesis")
}
