//! Program-derived addresses.

use anchor_lang::prelude::Pubkey;
use backstop::constants::*;

pub fn exchange(admin: &Pubkey, id: u16) -> Pubkey {
    Pubkey::find_program_address(
        &[EXCHANGE_SEED, admin.as_ref(), &id.to_le_bytes()],
        &backstop::ID,
    )
    .0
}

pub fn vault(exchange: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[VAULT_SEED, exchange.as_ref()], &backstop::ID).0
}

pub fn insurance_vault(exchange: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[INSURANCE_SEED, exchange.as_ref()], &backstop::ID).0
}

pub fn market(exchange: &Pubkey, index: u16) -> Pubkey {
    Pubkey::find_program_address(
        &[MARKET_SEED, exchange.as_ref(), &index.to_le_bytes()],
        &backstop::ID,
    )
    .0
}

pub fn oracle_feed(exchange: &Pubkey, index: u16) -> Pubkey {
    Pubkey::find_program_address(
        &[ORACLE_SEED, exchange.as_ref(), &index.to_le_bytes()],
        &backstop::ID,
    )
    .0
}

pub fn margin_account(exchange: &Pubkey, owner: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(
        &[MARGIN_SEED, exchange.as_ref(), owner.as_ref()],
        &backstop::ID,
    )
    .0
}
