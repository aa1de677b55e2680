//! Account decoding (discriminator-checked) and `getProgramAccounts` filters.

use anchor_lang::{AccountDeserialize, Discriminator};
use backstop::state::{Exchange, MarginAccount, OracleFeed, PerpMarket};

/// Decodes an Anchor account of type `T`, checking its discriminator.
pub fn account<T: AccountDeserialize>(data: &[u8]) -> anchor_lang::Result<T> {
    T::try_deserialize(&mut &data[..])
}

pub fn exchange(data: &[u8]) -> anchor_lang::Result<Exchange> {
    account(data)
}
pub fn market(data: &[u8]) -> anchor_lang::Result<PerpMarket> {
    account(data)
}
pub fn margin_account(data: &[u8]) -> anchor_lang::Result<MarginAccount> {
    account(data)
}
pub fn oracle_feed(data: &[u8]) -> anchor_lang::Result<OracleFeed> {
    account(data)
}

/// Byte offset of `MarginAccount.exchange` (right after the discriminator): memcmp on it
/// and on the discriminator selects one exchange's margin accounts.
pub const MARGIN_ACCOUNT_EXCHANGE_OFFSET: usize = 8;

pub fn margin_account_discriminator() -> &'static [u8] {
    MarginAccount::DISCRIMINATOR
}
