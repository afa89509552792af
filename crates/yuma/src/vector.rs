//! Running whole `yuma-epoch-vector/1` files.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::epoch::epoch;
use crate::error::Error;
use crate::types::{EpochState, Hyperparams, Inputs};

/// Runs every epoch of a test-vector file and returns the computed outputs in the vector
/// encoding: `{"outputs": {...}}` for a `single` file, `{"steps": [{"outputs": {...}}, ...]}`
/// for a `sequence` file (each step computed from its own `hyperparams` and `inputs`).
///
/// Expected outputs and `debug` blocks in the file are ignored.
pub fn run_vector_json(text: &str) -> Result<Value, Error> {
    let doc: Value = serde_json::from_str(text).map_err(|source| Error::Json {
        context: "vector file is not valid JSON".to_owned(),
        source,
    })?;
    let kind = doc
        .get("meta")
        .and_then(|m| m.get("kind"))
        .ok_or(Error::MissingField {
            context: "vector file".to_owned(),
            field: "meta.kind",
        })?;
    match kind.as_str() {
        Some("single") => Ok(json!({ "outputs": run_step(&doc, "vector")? })),
        Some("sequence") => {
            let steps = doc
                .get("steps")
                .and_then(Value::as_array)
                .ok_or(Error::MissingField {
                    context: "sequence vector".to_owned(),
                    field: "steps",
                })?;
            let outputs = steps
                .iter()
                .enumerate()
                .map(|(k, step)| {
                    run_step(step, "step")
                        .map(|out| json!({ "outputs": out }))
                        .map_err(|e| Error::Step {
                            step: k,
                            source: Box::new(e),
                        })
                })
                .collect::<Result<Vec<Value>, Error>>()?;
            Ok(json!({ "steps": outputs }))
        }
        _ => Err(Error::UnknownKind(kind.to_string())),
    }
}

/// Parses `{"hyperparams": ..., "inputs": ...}` into validated [`Inputs`].
pub fn parse_inputs(obj: &Value) -> Result<Inputs, Error> {
    parse_inputs_in(obj, "vector")
}

fn parse_inputs_in(obj: &Value, context: &str) -> Result<Inputs, Error> {
    let hp = obj.get("hyperparams").ok_or_else(|| Error::MissingField {
        context: context.to_owned(),
        field: "hyperparams",
    })?;
    let hp = Hyperparams::deserialize(hp).map_err(|source| Error::Json {
        context: format!("{context}.hyperparams"),
        source,
    })?;
    let st = obj.get("inputs").ok_or_else(|| Error::MissingField {
        context: context.to_owned(),
        field: "inputs",
    })?;
    let st = EpochState::deserialize(st).map_err(|source| Error::Json {
        context: format!("{context}.inputs"),
        source,
    })?;
    Inputs::new(hp, st)
}

fn run_step(obj: &Value, context: &str) -> Result<Value, Error> {
    let inputs = parse_inputs_in(obj, context)?;
    serde_json::to_value(epoch(&inputs)).map_err(|source| Error::Json {
        context: format!("{context}: serializing outputs"),
        source,
    })
}
