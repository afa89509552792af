//! The precompile boundary: Noesis's native modules answer at reserved addresses,
//! wrapped around Ethereum's standard precompiles.
//!
//! A module answers "not mine" for any address it does not own, and the call falls
//! through to the standard set. Reverts and out-of-gas are ordinary results.

use revm::{
    context::Cfg,
    context_interface::ContextTr,
    handler::{EthPrecompiles, PrecompileProvider},
    interpreter::{CallInputs, InterpreterResult},
    primitives::{Address, AddressSet, hardfork::SpecId},
};

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
        let warm = standard.warm_addresses().clone();
        Self { standard, warm }
    }
}

impl<CTX: ContextTr> PrecompileProvider<CTX> for NoesisPrecompiles {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: <CTX::Cfg as Cfg>::Spec) -> bool {
        let changed =
            <EthPrecompiles as PrecompileProvider<CTX>>::set_spec(&mut self.standard, spec);
        if changed {
            self.warm = self.standard.warm_addresses().clone();
        }
        changed
    }

    fn run(
        &mut self,
        context: &mut CTX,
        inputs: &CallInputs,
    ) -> Result<Option<Self::Output>, String> {
        // Native modules are consulted first once they exist; none claims an address yet.
        self.standard.run(context, inputs)
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.warm
    }

    fn contains(&self, address: &Address) -> bool {
        self.warm.contains(address)
    }
}
