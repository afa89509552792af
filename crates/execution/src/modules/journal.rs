//! [`ModuleState`] over revm's journal: what a native module does inside a call is
//! part of the transaction — undone with it when the call reverts — and is charged gas
//! by the schedule below (a module call costs what the equivalent contract would).

use alloy_primitives::{Address, Log, LogData, U256};
use revm::context_interface::{
    JournalTr,
    journaled_state::{TransferError, account::JournaledAccountTr},
};

use super::{ModuleError, ModuleLog, ModuleState};

/// Gas of every module call, before its state accesses.
pub const CALL_GAS: u64 = 2_100;
/// Gas of one storage read (or a balance read).
pub const SLOAD_GAS: u64 = 800;
/// Gas of a storage write that makes a zero slot non-zero.
pub const SSTORE_SET_GAS: u64 = 20_000;
/// Gas of any other storage write.
pub const SSTORE_RESET_GAS: u64 = 2_900;
/// Gas of a native-token movement (transfer, mint or burn).
pub const TRANSFER_GAS: u64 = 9_000;
/// Gas of a log, plus [`LOG_TOPIC_GAS`] per topic and [`LOG_DATA_GAS`] per data byte.
pub const LOG_GAS: u64 = 375;
/// Gas per log topic.
pub const LOG_TOPIC_GAS: u64 = 375;
/// Gas per log data byte.
pub const LOG_DATA_GAS: u64 = 8;

/// A module's view of the journal during one call.
pub struct JournalState<'a, J: JournalTr> {
    journal: &'a mut J,
    /// The account whose storage the module owns.
    account: Address,
    /// The account that emits the module's logs.
    emitter: Address,
    block: u64,
    writable: bool,
    /// `(limit, used)`; `None` for unmetered system calls.
    gas: Option<(u64, u64)>,
    /// A state change was attempted in a static call (reported when the call ends).
    static_violation: bool,
}

impl<'a, J: JournalTr> JournalState<'a, J> {
    /// A view for one call. `gas_limit` of `None` means unmetered (system calls).
    /// Loads the module's account into the journal, which revm requires before any of
    /// its slots is read (it is not the called account when the call is to another of
    /// the module's addresses).
    pub fn new(
        journal: &'a mut J,
        account: Address,
        emitter: Address,
        block: u64,
        writable: bool,
        gas_limit: Option<u64>,
    ) -> Result<Self, ModuleError> {
        journal.load_account(account).map_err(fault)?;
        Ok(Self {
            journal,
            account,
            emitter,
            block,
            writable,
            gas: gas_limit.map(|limit| (limit, 0)),
            static_violation: false,
        })
    }

    /// Gas used so far.
    pub fn gas_used(&self) -> u64 {
        self.gas.map_or(0, |(_, used)| used)
    }

    /// Ends the call: out of gas, or a write attempted in a static call, become errors.
    pub fn finish(&self) -> Result<(), ModuleError> {
        if self.static_violation {
            return Err(ModuleError::Revert(
                "state change in a static call".to_string(),
            ));
        }
        match self.gas {
            Some((limit, used)) if used > limit => Err(ModuleError::OutOfGas),
            _ => Ok(()),
        }
    }

    /// Charges `gas`, failing once the limit is passed.
    pub fn charge(&mut self, gas: u64) -> Result<(), ModuleError> {
        if let Some((limit, used)) = &mut self.gas {
            *used = used.saturating_add(gas);
            if *used > *limit {
                return Err(ModuleError::OutOfGas);
            }
        }
        Ok(())
    }

    fn write_access(&mut self, gas: u64) -> Result<(), ModuleError> {
        if !self.writable {
            self.static_violation = true;
            return Err(ModuleError::Revert(
                "state change in a static call".to_string(),
            ));
        }
        self.charge(gas)
    }
}

fn fault(e: impl std::fmt::Display) -> ModuleError {
    ModuleError::Fault(e.to_string())
}

impl<J: JournalTr> ModuleState for JournalState<'_, J> {
    fn sload(&mut self, slot: U256) -> Result<U256, ModuleError> {
        self.charge(SLOAD_GAS)?;
        Ok(self.journal.sload(self.account, slot).map_err(fault)?.data)
    }

    fn sstore(&mut self, slot: U256, value: U256) -> Result<(), ModuleError> {
        self.write_access(0)?;
        // Priced from the value the write replaced (any failure reverts the call).
        let written = self
            .journal
            .sstore(self.account, slot, value)
            .map_err(fault)?
            .data;
        self.charge(if written.present_value.is_zero() && !value.is_zero() {
            SSTORE_SET_GAS
        } else {
            SSTORE_RESET_GAS
        })
    }

    fn balance(&mut self, who: Address) -> Result<U256, ModuleError> {
        self.charge(SLOAD_GAS)?;
        Ok(self
            .journal
            .load_account(who)
            .map_err(fault)?
            .data
            .info
            .balance)
    }

    fn transfer(&mut self, from: Address, to: Address, amount: U256) -> Result<(), ModuleError> {
        self.write_access(TRANSFER_GAS)?;
        match self.journal.transfer(from, to, amount).map_err(fault)? {
            None => Ok(()),
            Some(TransferError::OutOfFunds) => {
                Err(ModuleError::Revert("insufficient balance".to_string()))
            }
            Some(other) => Err(ModuleError::Revert(format!("transfer failed: {other:?}"))),
        }
    }

    fn mint(&mut self, to: Address, amount: U256) -> Result<(), ModuleError> {
        self.write_access(TRANSFER_GAS)?;
        self.journal.balance_incr(to, amount).map_err(fault)
    }

    fn burn(&mut self, from: Address, amount: U256) -> Result<(), ModuleError> {
        self.write_access(TRANSFER_GAS)?;
        let mut account = self.journal.load_account_mut(from).map_err(fault)?.data;
        if account.decr_balance(amount) {
            Ok(())
        } else {
            Err(ModuleError::Revert("insufficient balance".to_string()))
        }
    }

    fn log(&mut self, log: ModuleLog) {
        let gas = LOG_GAS
            .saturating_add(LOG_TOPIC_GAS.saturating_mul(log.topics.len() as u64))
            .saturating_add(LOG_DATA_GAS.saturating_mul(log.data.len() as u64));
        // A failure is remembered and reported by `finish`.
        if self.write_access(gas).is_err() {
            return;
        }
        self.journal.log(Log {
            address: self.emitter,
            data: LogData::new_unchecked(log.topics, log.data),
        });
    }

    fn block_number(&self) -> u64 {
        self.block
    }
}
