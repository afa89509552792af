//! `docs/cli.md` is generated from `--help` and must not drift from it.
//! Regenerate with `NOESIS_UPDATE_DOCS=1 cargo test -p noesis --test cli_docs`.

use std::process::Command;

const COMMANDS: &[&[&str]] = &[
    &[],
    &["dev"],
    &["node"],
    &["testnet", "init"],
    &["testnet", "start"],
    &["testnet", "stop"],
    &["testnet", "status"],
    &["account", "new"],
    &["account", "list"],
    &["account", "import"],
    &["send"],
    &["status"],
    &["yuma", "epoch"],
    &["yuma", "check"],
    &["subnet", "create"],
    &["subnet", "list"],
    &["subnet", "hyperparams"],
    &["subnet", "set"],
    &["subnet", "metagraph"],
    &["neuron", "register"],
    &["neuron", "serve"],
    &["stake", "add"],
    &["stake", "remove"],
    &["weights", "set"],
    &["weights", "commit"],
    &["weights", "reveal"],
    &["model", "fetch"],
    &["model", "list"],
    &["ai", "generate"],
    &["ai", "prove"],
    &["ai", "verify"],
    &["ai", "bench"],
    &["ai", "embed"],
    &["miner"],
    &["validator"],
    &["gateway"],
    &["chat"],
];

fn render() -> String {
    let mut out = String::from(
        "# `noesis` command line\n\nGenerated from `--help` by `bin/noesis/tests/cli_docs.rs`; do not edit by hand.\n",
    );
    for args in COMMANDS {
        let output = Command::new(env!("CARGO_BIN_EXE_noesis"))
            .args(*args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(output.status.success());
        let title = if args.is_empty() {
            "noesis".to_string()
        } else {
            format!("noesis {}", args.join(" "))
        };
        out.push_str(&format!(
            "\n## `{title}`\n\n```text\n{}```\n",
            String::from_utf8_lossy(&output.stdout)
        ));
    }
    out
}

#[test]
fn cli_reference_matches_help() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md");
    let current = render();
    if std::env::var_os("NOESIS_UPDATE_DOCS").is_some() {
        std::fs::write(path, &current).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == current,
        "docs/cli.md is out of date: run NOESIS_UPDATE_DOCS=1 cargo test -p noesis --test cli_docs"
    );
}
