//! The precompile boundary: Noesis's native modules answer at reserved addresses,
//! wrapped around Ethereum's standard precompiles.
//!
//! A module answers "not mine" for any address it does not own, and the call falls
//! through to the standard set. Reverts and out-of-gas are ordinary results; only a
//! fault of the state underneath is an error (ADR 0006).

use alloy_primitives::{Bytes, U256};
use alloy_sol_types::{Revert, SolError};
use revm::{
    context::{Block, Cfg},
    context_interface::ContextTr,
    handler::{EthPrecompiles, PrecompileProvider, SYSTEM_ADDRESS},
    interpreter::{CallInputs, Gas, InstructionResult, InterpreterResult},
    primitives::{Address, AddressSet, hardfork::SpecId},
};

use crate::modules::{JournalState, ModuleError, journal::CALL_GAS, subnets};

/// Every address a native module answers at.
pub const MODULE_ADDRESSES: [Address; 4] = [
    subnets::METAGRAPH_ADDRESS,
    subnets::SUBNET_ADDRESS,
    subnets::NEURON_ADDRESS,
    subnets::STAKING_ADDRESS,
];

/// The code placed at every module address at genesis: `INVALID`, never run (the
/// precompile answers first). It makes the accounts non-empty, so EIP-161 never clears
/// them (and the module state in their storage), and Solidity's `extcodesize` check
/// before a call passes, as for any contract.
pub const MODULE_CODE: [u8; 1] = [0xfe];

/// The account whose storage holds the subnets module's state.
pub const SUBNETS_STATE_ACCOUNT: Address = subnets::SUBNET_ADDRESS;

/// Input of the end-of-block system call (the selector of `noesisEndBlock()`), accepted only from
/// [`SYSTEM_ADDRESS`].
pub const END_BLOCK_CALL: [u8; 4] = [0xf5, 0x9e, 0x89, 0xc4];

/// Ethereum's precompiles plus Noesis's native modules.
#[derive(Clone, Debug)]
pub struct NoesisPrecompiles {
    standard: EthPrecompiles,
    /// Addresses of standard precompiles and native modules, warm from the start of
    /// every transaction (EIP-2929).
    warm: AddressSet,
}

impl NoesisPrecompiles {
    /// The precompile set for `spec`.
    pub fn new(spec: SpecId) -> Self {
        let standard = EthPrecompiles::new(spec);
        let warm = warm_set(&standard);
        Self { standard, warm }
    }
}

fn warm_set(standard: &EthPrecompiles) -> AddressSet {
    let mut warm = standard.warm_addresses().clone();
    warm.extend(MODULE_ADDRESSES);
    warm
}

impl<CTX: ContextTr> PrecompileProvider<CTX> for NoesisPrecompiles {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: <CTX::Cfg as Cfg>::Spec) -> bool {
        let changed =
            <EthPrecompiles as PrecompileProvider<CTX>>::set_spec(&mut self.standard, spec);
        if changed {
            self.warm = warm_set(&self.standard);
        }
        changed
    }

    fn run(
        &mut self,
        context: &mut CTX,
        inputs: &CallInputs,
    ) -> Result<Option<Self::Output>, String> {
        if MODULE_ADDRESSES.contains(&inputs.bytecode_address) {
            return run_subnets(context, inputs).map(Some);
        }
        self.standard.run(context, inputs)
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.warm
    }

    fn contains(&self, address: &Address) -> bool {
        self.warm.contains(address)
    }
}

/// Runs one call of the subnets module over the journal.
fn run_subnets<CTX: ContextTr>(
    context: &mut CTX,
    inputs: &CallInputs,
) -> Result<InterpreterResult, String> {
    let mut gas = Gas::new(inputs.gas_limit);
    if inputs.target_address != inputs.bytecode_address {
        return Ok(reverted(gas, "native modules cannot be delegate-called"));
    }
    let input = inputs.input.bytes(context);
    let block = context.block().number().saturating_to::<u64>();
    let system = inputs.caller == SYSTEM_ADDRESS;
    let value: U256 = inputs.value.get();
    let address = inputs.bytecode_address;
    let mut state = JournalState::new(
        context.journal_mut(),
        SUBNETS_STATE_ACCOUNT,
        address,
        block,
        !inputs.is_static,
        (!system).then_some(inputs.gas_limit),
    )
    .map_err(|e| e.to_string())?;
    let outcome = state.charge(CALL_GAS).and_then(|()| {
        let output = if system && address == SUBNETS_STATE_ACCOUNT && input[..] == END_BLOCK_CALL {
            subnets::end_block(&mut state).map(|()| Bytes::new())
        } else {
            subnets::dispatch(address, inputs.caller, value, &input, &mut state)
        }?;
        state.finish()?;
        Ok(output)
    });
    let used = state.gas_used().min(inputs.gas_limit);
    Ok(match outcome {
        Ok(output) => {
            let _ = gas.record_regular_cost(used);
            InterpreterResult::new(InstructionResult::Return, output, gas)
        }
        Err(ModuleError::Revert(message)) => {
            let _ = gas.record_regular_cost(used);
            reverted(gas, &message)
        }
        Err(ModuleError::OutOfGas) => {
            gas.spend_all();
            InterpreterResult::new(InstructionResult::PrecompileOOG, Bytes::new(), gas)
        }
        Err(ModuleError::Fault(fault)) => return Err(fault),
    })
}

/// A revert carrying `Error(message)`, as Solidity's `revert("…")`.
fn reverted(gas: Gas, message: &str) -> InterpreterResult {
    let output = Revert::from(message).abi_encode();
    InterpreterResult::new(InstructionResult::Revert, output.into(), gas)
}
