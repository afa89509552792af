//! API behaviour: malformed input is rejected with a clear error (never a panic), serde round
//! trips, edge cases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use noesis_yuma::{EpochState, Error, Hyperparams, Inputs, Outputs, epoch, run_vector_json};
use serde_json::{Value, json};

fn hyperparams() -> Value {
    json!({
        "kappa": 32767, "bonds_penalty": 65535, "bonds_moving_average": 900000,
        "yuma3_enabled": true, "liquid_alpha_enabled": false, "alpha_low": 45875,
        "alpha_high": 58982, "alpha_sigmoid_steepness": 1000, "max_allowed_validators": 64,
        "stake_threshold": 0, "tempo": 360, "activity_cutoff": 5000,
        "commit_reveal_enabled": false, "max_weight_limit": 65535
    })
}

fn state() -> Value {
    json!({
        "n": 4, "block": 10000, "last_mechanism_step_block": 9640,
        "stake": [600000000000u64, 400000000000u64, 0, 0],
        "last_update": [9950, 9900, 300, 300],
        "block_at_registration": [0, 0, 100, 200],
        "validator_permit": [true, true, false, false],
        "owner_uid": null,
        "weights": [[[2, 65535], [3, 28086]], [[2, 65535], [3, 43690]], [], []],
        "bonds_prev": [[[2, 9000], [3, 4000]], [[2, 7000], [3, 5000]], [], []],
        "commit_blocks": null,
        "rao_emission": 1000000000u64
    })
}

fn single(hp: Value, st: Value) -> String {
    json!({ "meta": { "kind": "single" }, "hyperparams": hp, "inputs": st }).to_string()
}

#[test]
fn runs_a_minimal_single_vector() {
    let out = run_vector_json(&single(hyperparams(), state())).unwrap();
    // Same case as tiny_2v2m_honest_y3.json.
    assert_eq!(
        out["outputs"]["emission"],
        json!([311946419, 188053580, 343751460, 156248539])
    );
    assert_eq!(
        out["outputs"]["bonds_new"],
        json!([[[2, 12687], [3, 5566]], [[2, 10232], [3, 6466]], [], []])
    );
    assert_eq!(out["outputs"]["trust"], Value::Null);
    assert_eq!(
        out["outputs"]["consensus"]["u16"],
        json!([0, 0, 45874, 19660])
    );
}

#[test]
fn runs_a_sequence_step_by_step() {
    let text = json!({
        "meta": { "kind": "sequence" },
        "steps": [
            { "step": 0, "hyperparams": hyperparams(), "inputs": state() },
            { "step": 1, "hyperparams": hyperparams(), "inputs": state() },
        ]
    })
    .to_string();
    let out = run_vector_json(&text).unwrap();
    let steps = out["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0], steps[1]);
}

#[test]
fn rejects_malformed_documents() {
    assert!(matches!(run_vector_json("{"), Err(Error::Json { .. })));
    assert!(matches!(
        run_vector_json("{}"),
        Err(Error::MissingField {
            field: "meta.kind",
            ..
        })
    ));
    let e = run_vector_json(r#"{"meta": {"kind": "double"}}"#).unwrap_err();
    assert!(matches!(e, Error::UnknownKind(_)));
    assert!(e.to_string().contains("double"));
    let e = run_vector_json(r#"{"meta": {"kind": "sequence"}}"#).unwrap_err();
    assert!(matches!(e, Error::MissingField { field: "steps", .. }));
    let e = run_vector_json(r#"{"meta": {"kind": "single"}, "inputs": {}}"#).unwrap_err();
    assert!(matches!(
        e,
        Error::MissingField {
            field: "hyperparams",
            ..
        }
    ));
}

#[test]
fn reports_missing_and_mistyped_fields() {
    let mut hp = hyperparams();
    hp.as_object_mut().unwrap().remove("kappa");
    let e = run_vector_json(&single(hp, state())).unwrap_err();
    assert!(e.to_string().contains("missing field `kappa`"), "{e}");

    let mut st = state();
    st["rao_emission"] = json!(-1);
    let e = run_vector_json(&single(hyperparams(), st)).unwrap_err();
    assert!(e.to_string().starts_with("vector.inputs:"), "{e}");

    let mut st = state();
    st["weights"][0][0] = json!([2, 70000]); // not a u16
    assert!(matches!(
        run_vector_json(&single(hyperparams(), st)),
        Err(Error::Json { .. })
    ));
}

#[test]
fn rejects_length_mismatches() {
    for field in [
        "stake",
        "last_update",
        "block_at_registration",
        "validator_permit",
        "weights",
        "bonds_prev",
    ] {
        let mut st = state();
        st[field].as_array_mut().unwrap().pop();
        let e = run_vector_json(&single(hyperparams(), st)).unwrap_err();
        match e {
            Error::LengthMismatch {
                field: f,
                expected: 4,
                actual: 3,
            } => assert_eq!(f, field),
            other => panic!("{field}: {other}"),
        }
    }
    let mut st = state();
    st["commit_blocks"] = json!([1, null]);
    assert!(matches!(
        run_vector_json(&single(hyperparams(), st)),
        Err(Error::LengthMismatch {
            field: "commit_blocks",
            ..
        })
    ));
}

#[test]
fn rejects_duplicate_columns() {
    let mut st = state();
    st["weights"][1] = json!([[3, 1], [2, 5], [3, 7]]);
    let e = run_vector_json(&single(hyperparams(), st)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DuplicateColumn {
                field: "weights",
                row: 1,
                column: 3
            }
        ),
        "{e}"
    );
}

#[test]
fn sequence_errors_name_the_step() {
    let mut bad = state();
    bad["n"] = json!(5);
    let text = json!({
        "meta": { "kind": "sequence" },
        "steps": [
            { "hyperparams": hyperparams(), "inputs": state() },
            { "hyperparams": hyperparams(), "inputs": bad },
        ]
    })
    .to_string();
    let e = run_vector_json(&text).unwrap_err();
    assert!(matches!(e, Error::Step { step: 1, .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("step 1: `stake` has 4 entries but n = 5"),
        "{e}"
    );
}

#[test]
fn tolerates_out_of_range_columns_and_owner() {
    // Columns >= n are ignored (as the chain does), an owner uid outside the subnet is inert.
    let mut st = state();
    st["weights"][0]
        .as_array_mut()
        .unwrap()
        .push(json!([9, 65535]));
    st["bonds_prev"][0]
        .as_array_mut()
        .unwrap()
        .push(json!([7, 100]));
    let with_extra = run_vector_json(&single(hyperparams(), st.clone())).unwrap();
    let plain = run_vector_json(&single(hyperparams(), state())).unwrap();
    assert_eq!(with_extra, plain);
    st["owner_uid"] = json!(40);
    assert_eq!(run_vector_json(&single(hyperparams(), st)).unwrap(), plain);
}

#[test]
fn empty_subnet() {
    let hp: Hyperparams = serde_json::from_value(hyperparams()).unwrap();
    let st = EpochState {
        n: 0,
        block: 5,
        last_mechanism_step_block: 0,
        stake: vec![],
        last_update: vec![],
        block_at_registration: vec![],
        validator_permit: vec![],
        owner_uid: None,
        weights: vec![],
        bonds_prev: vec![],
        commit_blocks: None,
        rao_emission: 1,
    };
    let out = epoch(&Inputs::new(hp, st).unwrap());
    assert!(out.emission.is_empty() && out.bonds_new.is_empty());
    assert_eq!(out.emission_sum.to_bits(), 0);
}

#[test]
fn serde_round_trips() {
    let doc = json!({ "hyperparams": hyperparams(), "inputs": state() });
    let inputs: Inputs = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(serde_json::to_value(&inputs).unwrap(), doc);
    let out = epoch(&inputs);
    let encoded = serde_json::to_value(&out).unwrap();
    let decoded: Outputs = serde_json::from_value(encoded).unwrap();
    assert_eq!(decoded, out);
    // Deserializing Inputs runs the same validation as Inputs::new.
    let mut bad = doc;
    bad["inputs"]["n"] = json!(3);
    let e = serde_json::from_value::<Inputs>(bad).unwrap_err();
    assert!(e.to_string().contains("n = 3"), "{e}");
}
