//! The well-known dev accounts: the same keys anvil and hardhat print.

use alloy_primitives::{Address, B256};
use alloy_signer_local::{MnemonicBuilder, coins_bip39::English};

/// The test mnemonic used by anvil, hardhat and Noesis dev mode.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// A dev account: address and private key.
#[derive(Clone, Debug)]
pub struct DevAccount {
    /// The account address.
    pub address: Address,
    /// Its secp256k1 private key.
    pub private_key: B256,
}

/// Derives the first `count` dev accounts at m/44'/60'/0'/0/i.
pub fn dev_accounts(count: u32) -> Vec<DevAccount> {
    (0..count)
        .filter_map(|i| {
            let signer = MnemonicBuilder::<English>::default()
                .phrase(DEV_MNEMONIC)
                .index(i)
                .ok()?
                .build()
                .ok()?;
            Some(DevAccount {
                address: signer.address(),
                private_key: B256::from_slice(&signer.to_bytes()[..]),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_dev_account_matches_anvil() {
        let accounts = dev_accounts(2);
        assert_eq!(
            accounts[0].address.to_string(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        assert_eq!(
            accounts[1].address.to_string(),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        );
    }
}
