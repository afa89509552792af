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
    /// Run a node from a TOML config file (no dev accounts); a `[consensus]` section
    /// makes it a validator.
    Node(NodeArgs),
    /// A local multi-validator network: init, start, stop, status.
    #[command(subcommand)]
    Testnet(crate::testnet::TestnetCommand),
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
    /// Subnets: create, list, hyperparameters, metagraph.
    #[command(subcommand)]
    Subnet(SubnetCommand),
    /// Neurons: register on a subnet, serve an endpoint.
    #[command(subcommand)]
    Neuron(NeuronCommand),
    /// Stake: add or remove through a subnet's pool.
    #[command(subcommand)]
    Stake(StakeCommand),
    /// Weights: set, or commit then reveal (commit-reveal is on by default).
    #[command(subcommand)]
    Weights(WeightsCommand),
    /// Models: fetch a known model (pinned by sha256) or list the installed ones.
    #[command(subcommand)]
    Model(crate::ai::ModelCommand),
    /// AI runtime: generate text with a local GGUF model, embed sentences.
    #[command(subcommand)]
    Ai(crate::ai::AiCommand),
    /// Mine on a subnet: register if needed, announce the endpoint, serve the model
    /// (OpenAI-compatible, every answer with a signed receipt and proof of inference).
    Miner(crate::market::MinerArgs),
    /// Validate a subnet: challenge every miner each epoch with prompts seeded from the
    /// chain, re-run their proofs, score them, commit and reveal weights.
    Validator(crate::market::ValidatorArgs),
    /// The inference gateway: an OpenAI-compatible API in front of a subnet's miners,
    /// routing by incentive and checking every answer's receipt.
    Gateway(crate::market::GatewayArgs),
    /// Ask the gateway a question; prints the answer and the receipt's verdict.
    Chat(crate::market::ChatArgs),
}

/// Who signs a transaction, and which node gets it.
#[derive(Args, Debug)]
pub struct SignerArgs {
    /// Private key as hex [default: dev account 0].
    #[arg(long, conflicts_with_all = ["from", "keyfile"])]
    pub key: Option<String>,
    /// File holding the private key as hex (one line).
    #[arg(long, conflicts_with = "from")]
    pub keyfile: Option<PathBuf>,
    /// Address in the keystore (unlocked with --password-file or NOESIS_PASSWORD).
    #[arg(long)]
    pub from: Option<alloy_primitives::Address>,
    #[command(flatten)]
    pub keystore: KeystoreArgs,
    #[command(flatten)]
    pub rpc: RpcArgs,
}

/// `noesis subnet …`.
#[derive(Subcommand, Debug)]
pub enum SubnetCommand {
    /// Create a subnet, paying the current lock cost; prints its netuid.
    Create {
        /// Owner hotkey (bytes32) [default: the signer's address as a hotkey].
        #[arg(long)]
        hotkey: Option<alloy_primitives::B256>,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// List subnets with owner, tempo, size, burn and pool.
    List {
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Print a subnet's hyperparameters.
    Hyperparams {
        /// The subnet.
        #[arg(long)]
        netuid: u16,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Set a hyperparameter (subnet owner only; bounds are checked on chain).
    Set {
        /// The subnet.
        #[arg(long)]
        netuid: u16,
        /// Name, as `noesis subnet hyperparams` prints it (e.g. tempo, kappa).
        #[arg(long)]
        param: String,
        /// New value (an integer).
        #[arg(long)]
        value: alloy_primitives::U256,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Print the metagraph: per uid stake, consensus, incentive, dividends, trust,
    /// emission, and why a uid earned nothing.
    Metagraph {
        /// The subnet.
        #[arg(long)]
        netuid: u16,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

/// `noesis neuron …`.
#[derive(Subcommand, Debug)]
pub enum NeuronCommand {
    /// Register the signer's hotkey on a subnet, paying the current burn.
    Register {
        /// The subnet.
        #[arg(long)]
        netuid: u16,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Announce the signer's endpoint on a subnet.
    Serve {
        /// The subnet.
        #[arg(long)]
        netuid: u16,
        /// IP address (v4 or v6).
        #[arg(long)]
        ip: std::net::IpAddr,
        /// Port.
        #[arg(long)]
        port: u16,
        #[command(flatten)]
        signer: SignerArgs,
    },
}

/// `noesis stake …`.
#[derive(Subcommand, Debug)]
pub enum StakeCommand {
    /// Stake native tokens on a hotkey (swapped to the subnet's alpha).
    Add {
        /// The subnet.
        #[arg(long)]
        netuid: u16,
        /// Hotkey (bytes32) [default: the signer's].
        #[arg(long)]
        hotkey: Option<alloy_primitives::B256>,
        /// Amount: wei, or with a unit (1.5ether).
        #[arg(long)]
        amount: String,
        /// Highest price accepted (native wei per alpha, scaled by 1e18) [default: none].
        #[arg(long)]
        limit_price: Option<alloy_primitives::U256>,
        /// Fill up to the limit price instead of failing.
        #[arg(long)]
        allow_partial: bool,
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Unstake alpha from a hotkey (swapped back to native tokens).
    Remove {
        /// The subnet.
        #[arg(long)]
        netuid: u16,
        /// Hotkey (bytes32) [default: the signer's].
        #[arg(long)]
        hotkey: Option<alloy_primitives::B256>,
        /// Alpha to unstake (integer units).
        #[arg(long)]
        alpha: alloy_primitives::U256,
        /// Lowest price accepted (scaled by 1e18) [default: none].
        #[arg(long)]
        limit_price: Option<alloy_primitives::U256>,
        /// Fill down to the limit price instead of failing.
        #[arg(long)]
        allow_partial: bool,
        #[command(flatten)]
        signer: SignerArgs,
    },
}

/// `noesis weights …`.
#[derive(Subcommand, Debug)]
pub enum WeightsCommand {
    /// Set weights directly (only when the subnet has commit-reveal off).
    Set(WeightsArgs),
    /// Commit to weights (their hash with --salt); reveal them in the reveal epoch.
    Commit(WeightsArgs),
    /// Reveal committed weights (same --uids, --weights, --salt, --version-key).
    Reveal(WeightsArgs),
}

/// The weights of a `noesis weights` command.
#[derive(Args, Debug)]
pub struct WeightsArgs {
    /// The subnet.
    #[arg(long)]
    pub netuid: u16,
    /// Comma-separated uids.
    #[arg(long, value_delimiter = ',', required = true)]
    pub uids: Vec<u16>,
    /// Comma-separated weights (u16), one per uid.
    #[arg(long, value_delimiter = ',', required = true)]
    pub weights: Vec<u16>,
    /// Comma-separated u16 salt (commit and reveal).
    #[arg(long, value_delimiter = ',')]
    pub salt: Vec<u16>,
    /// The subnet's weights version key.
    #[arg(long, default_value_t = 0)]
    pub version_key: u64,
    #[command(flatten)]
    pub signer: SignerArgs,
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
    /// The chain alone: no subnet, miners, validator, gateway or models.
    #[arg(long)]
    pub no_ai: bool,
    /// Honest miners of subnet 1, each a dev account (1, 2, …) serving the model.
    #[arg(long, default_value_t = 2)]
    pub miners: usize,
    /// Port of the OpenAI-compatible gateway (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub gateway_port: u16,
    /// Blocks per epoch of subnet 1 when it is created (1 to 7200).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=7200))]
    pub tempo: u64,
    /// Share of answers whose proof the gateway re-runs before returning them (0 to 1).
    #[arg(long, default_value_t = 0.1)]
    pub verify_sample: f64,
    /// The model subnet 1 asks for (fetched when missing).
    #[arg(long, default_value = noesis_ai::models::DEFAULT_MODEL)]
    pub model: String,
    /// CPU threads of the shared model [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `noesis node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// TOML config file (format in README.md: datadir, chain, http_addr, http_port,
    /// block_time, and [consensus] for a validator).
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
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// Runs a command.
pub async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Dev(args) => crate::run::dev(args).await,
        Command::Node(args) => crate::run::node(args).await,
        Command::Testnet(cmd) => crate::testnet::run(cmd).await,
        Command::Account(cmd) => crate::account::run(cmd),
        Command::Send(args) => crate::client::send(args).await,
        Command::Status(args) => crate::client::status(args).await,
        Command::Yuma(cmd) => crate::yuma::run(cmd),
        Command::Subnet(cmd) => crate::subnets::subnet(cmd).await,
        Command::Neuron(cmd) => crate::subnets::neuron(cmd).await,
        Command::Stake(cmd) => crate::subnets::stake(cmd).await,
        Command::Weights(cmd) => crate::subnets::weights(cmd).await,
        Command::Model(cmd) => crate::ai::model(cmd),
        Command::Ai(cmd) => crate::ai::run(cmd),
        Command::Miner(args) => crate::market::run(args).await,
        Command::Validator(args) => crate::market::validator(args).await,
        Command::Gateway(args) => crate::market::gateway(args).await,
        Command::Chat(args) => crate::market::chat(args).await,
    }
}

/// `~/.noesis`.
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".noesis")
}
