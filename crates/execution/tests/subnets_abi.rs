//! The subnets module's ABI files under `abi/subnets/` (repository root) are rendered from
//! the one source of its Solidity interface, the `sol!` declarations in
//! `crates/execution/src/modules/subnets/interface.rs`. This test fails when a committed
//! file differs from what the declarations render; to rewrite them:
//!
//! ```sh
//! NOESIS_UPDATE_ABI=1 cargo test -p noesis-execution --test subnets_abi
//! ```
//!
//! One JSON ABI per interface (`IMetagraph.json`, `ISubnet.json`, `INeuron.json`,
//! `IStaking.json`, `INoesisSubnets.json`), the module's events in `SubnetsEvents.json`
//! (any of the four module addresses may emit any of them, so they belong to no one
//! interface), and all of it as Solidity in `Subnets.sol`.

use std::{fs, path::PathBuf};

use alloy_json_abi::{Event, InternalType, JsonAbi, Param};
use alloy_sol_types::{JsonAbiExt, SolStruct};
use noesis_execution::modules::subnets::interface::{
    AxonInfo, IMetagraph, INeuron, INoesisSubnets, IStaking, ISubnet, events,
};

/// The name under which the module's events are rendered.
const EVENTS: &str = "SubnetsEvents";

fn abi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../abi/subnets")
}

fn events_abi() -> JsonAbi {
    let all: [Event; 12] = [
        events::NetworkRegistered::abi(),
        events::HyperparameterSet::abi(),
        events::NeuronRegistered::abi(),
        events::NeuronPruned::abi(),
        events::AxonServed::abi(),
        events::StakeAdded::abi(),
        events::StakeRemoved::abi(),
        events::WeightsSet::abi(),
        events::WeightsCommitted::abi(),
        events::WeightsRevealed::abi(),
        events::NeuronEmission::abi(),
        events::EpochEmission::abi(),
    ];
    let mut abi = JsonAbi::new();
    for e in all {
        abi.events.entry(e.name.clone()).or_default().push(e);
    }
    abi
}

/// alloy's `#[sol(abi)]` leaves `internalType` out, so a struct is a bare `tuple` and
/// `to_sol` could only print it as an (invalid) anonymous tuple type. Names every tuple
/// whose fields are those of a struct declared beside the interfaces, as solc would.
fn name_structs(params: &mut [Param]) {
    // (name, `Name(type field,...)`) of every struct declared in interface.rs.
    let structs = [(AxonInfo::NAME, AxonInfo::eip712_encode_type())];
    for p in params {
        name_structs(&mut p.components);
        let Some(suffix) = p.ty.strip_prefix("tuple") else {
            continue;
        };
        let fields: Vec<String> = p
            .components
            .iter()
            .map(|c| format!("{} {}", c.ty, c.name))
            .collect();
        let found = structs
            .iter()
            .find(|(name, encoded)| *encoded == format!("{name}({})", fields.join(",")));
        if let Some((name, _)) = found {
            p.internal_type = Some(InternalType::Struct {
                contract: None,
                ty: format!("{name}{suffix}"),
            });
        }
    }
}

fn with_struct_names(mut abi: JsonAbi) -> JsonAbi {
    for f in abi.functions.values_mut().flatten() {
        name_structs(&mut f.inputs);
        name_structs(&mut f.outputs);
    }
    abi
}

/// Every ABI the module publishes, by name, in the order `Subnets.sol` lists them.
fn abis() -> Vec<(&'static str, JsonAbi)> {
    vec![
        ("IMetagraph", IMetagraph::abi::contract()),
        ("ISubnet", ISubnet::abi::contract()),
        ("INeuron", INeuron::abi::contract()),
        ("IStaking", IStaking::abi::contract()),
        ("INoesisSubnets", INoesisSubnets::abi::contract()),
        (EVENTS, events_abi()),
    ]
    .into_iter()
    .map(|(name, abi)| (name, with_struct_names(abi)))
    .collect()
}

/// The files under `abi/subnets/`, by file name, as the declarations render them.
fn rendered() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut sol = String::from(
        "// SPDX-License-Identifier: Apache-2.0\n\
         // Generated from crates/execution/src/modules/subnets/interface.rs by\n\
         // crates/execution/tests/subnets_abi.rs; do not edit. Regenerate with\n\
         // `NOESIS_UPDATE_ABI=1 cargo test -p noesis-execution --test subnets_abi`.\n\
         //\n\
         // Noesis subnets module: IMetagraph at 0x0000000000000000000000000000000000000802,\n\
         // ISubnet at 0x…0803, INeuron at 0x…0804, IStaking at 0x…0805; INoesisSubnets at all\n\
         // four. Any of them may emit the events of ISubnetsEvents.\n\
         pragma solidity ^0.8.0;\n",
    );
    for (name, abi) in abis() {
        let mut json = serde_json::to_string_pretty(&abi).expect("a JSON ABI serializes");
        json.push('\n');
        files.push((format!("{name}.json"), json));
        let sol_name = if name == EVENTS {
            "ISubnetsEvents"
        } else {
            name
        };
        sol.push('\n');
        sol.push_str(&abi.to_sol(sol_name, None));
        if !sol.ends_with('\n') {
            sol.push('\n');
        }
    }
    files.push(("Subnets.sol".to_string(), sol));
    files
}

#[test]
fn abi_files_match_the_sol_declarations() {
    let dir = abi_dir();
    let update = std::env::var("NOESIS_UPDATE_ABI").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (file, want) in rendered() {
        let path = dir.join(&file);
        let have = fs::read_to_string(&path).ok();
        if have.as_deref() == Some(want.as_str()) {
            continue;
        }
        if update {
            fs::create_dir_all(&dir).expect("create abi/subnets");
            fs::write(&path, want).expect("write an ABI file");
        } else {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "abi/subnets/ is out of date with interface.rs: {stale:?}; rewrite with \
         NOESIS_UPDATE_ABI=1 cargo test -p noesis-execution --test subnets_abi"
    );
}

#[test]
fn rendered_json_parses_back_to_the_same_abi() {
    for (name, abi) in abis() {
        let json = serde_json::to_string(&abi).expect("a JSON ABI serializes");
        let back: JsonAbi = serde_json::from_str(&json).expect("a JSON ABI parses");
        assert_eq!(back, abi, "{name} does not round-trip through JSON");
    }
}

#[test]
fn struct_outputs_carry_their_struct_name() {
    let abi = with_struct_names(IMetagraph::abi::contract());
    let axon = abi.function("getAxon").and_then(|f| f.first());
    let internal = axon.and_then(|f| f.outputs.first()?.internal_type.clone());
    assert_eq!(
        internal,
        Some(InternalType::Struct {
            contract: None,
            ty: "AxonInfo".into()
        })
    );
}

#[test]
fn events_abi_holds_every_module_event() {
    let abi = events_abi();
    assert_eq!(abi.events().count(), 12);
    let selector = abi
        .events
        .get("NeuronEmission")
        .and_then(|v| v.first())
        .map(Event::selector);
    assert_eq!(
        selector,
        Some(<events::NeuronEmission as alloy_sol_types::SolEvent>::SIGNATURE_HASH)
    );
}
