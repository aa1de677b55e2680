//! One builder per instruction. Account lists come from Anchor's generated
//! `backstop::accounts::*`, data from `backstop::instruction::*`, so they cannot drift from
//! the program.

use anchor_lang::prelude::{AccountMeta, Pubkey};
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::{system_program, InstructionData, ToAccountMetas};
use anchor_spl::token::ID as TOKEN_PROGRAM_ID;
use backstop::instructions::AddMarketArgs;
use backstop::state::{ExchangeParams, MarketParams};
use backstop::{accounts as acc, instruction as data};

use crate::pda;

fn build(accounts: impl ToAccountMetas, data: impl InstructionData) -> Instruction {
    Instruction {
        program_id: backstop::ID,
        accounts: accounts.to_account_metas(None),
        data: data.data(),
    }
}

fn with_remaining(mut ix: Instruction, remaining: &[AccountMeta]) -> Instruction {
    ix.accounts.extend_from_slice(remaining);
    ix
}

/// Read-only `(market, oracle)` pairs for the given markets, as remaining accounts.
pub fn market_pairs(pairs: &[(Pubkey, Pubkey)]) -> Vec<AccountMeta> {
    pairs
        .iter()
        .flat_map(|(m, o)| {
            [
                AccountMeta::new_readonly(*m, false),
                AccountMeta::new_readonly(*o, false),
            ]
        })
        .collect()
}

/// The exchange's addresses an instruction needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeKeys {
    pub exchange: Pubkey,
    pub vault: Pubkey,
    pub insurance_vault: Pubkey,
}

impl ExchangeKeys {
    /// The keys of exchange number `id` created by `admin`.
    pub fn new(admin: &Pubkey, id: u16) -> Self {
        Self::of(pda::exchange(admin, id))
    }

    /// The vault addresses of a known exchange.
    pub fn of(exchange: Pubkey) -> Self {
        ExchangeKeys {
            exchange,
            vault: pda::vault(&exchange),
            insurance_vault: pda::insurance_vault(&exchange),
        }
    }
}

pub fn initialize_exchange(
    admin: &Pubkey,
    id: u16,
    mint: &Pubkey,
    params: ExchangeParams,
) -> Instruction {
    let k = ExchangeKeys::new(admin, id);
    build(
        acc::InitializeExchange {
            admin: *admin,
            exchange: k.exchange,
            collateral_mint: *mint,
            vault: k.vault,
            insurance_vault: k.insurance_vault,
            token_program: TOKEN_PROGRAM_ID,
            system_program: system_program::ID,
        },
        data::InitializeExchange { id, params },
    )
}

pub fn add_market(
    admin: &Pubkey,
    exchange: &Pubkey,
    index: u16,
    oracle: &Pubkey,
    args: AddMarketArgs,
) -> Instruction {
    build(
        acc::AddMarket {
            admin: *admin,
            exchange: *exchange,
            market: pda::market(exchange, index),
            oracle: *oracle,
            system_program: system_program::ID,
        },
        data::AddMarket { args },
    )
}

pub fn update_exchange_params(
    admin: &Pubkey,
    exchange: &Pubkey,
    params: ExchangeParams,
) -> Instruction {
    build(
        acc::UpdateExchange {
            admin: *admin,
            exchange: *exchange,
        },
        data::UpdateExchangeParams { params },
    )
}

pub fn set_paused(admin: &Pubkey, exchange: &Pubkey, flags: u8) -> Instruction {
    build(
        acc::UpdateExchange {
            admin: *admin,
            exchange: *exchange,
        },
        data::SetPaused { flags },
    )
}

/// Queues new market parameters (applied by [`apply_market_params`] after the delay).
pub fn update_market_params(
    admin: &Pubkey,
    exchange: &Pubkey,
    market: &Pubkey,
    params: MarketParams,
) -> Instruction {
    build(
        acc::UpdateMarket {
            admin: *admin,
            exchange: *exchange,
            market: *market,
        },
        data::UpdateMarketParams { params },
    )
}

pub fn apply_market_params(exchange: &Pubkey, market: &Pubkey) -> Instruction {
    build(
        acc::ApplyMarket {
            exchange: *exchange,
            market: *market,
        },
        data::ApplyMarketParams {},
    )
}

pub fn cancel_market_params(admin: &Pubkey, exchange: &Pubkey, market: &Pubkey) -> Instruction {
    build(
        acc::UpdateMarket {
            admin: *admin,
            exchange: *exchange,
            market: *market,
        },
        data::CancelMarketParams {},
    )
}

pub fn set_market_paused(
    admin: &Pubkey,
    exchange: &Pubkey,
    market: &Pubkey,
    paused: bool,
) -> Instruction {
    build(
        acc::UpdateMarket {
            admin: *admin,
            exchange: *exchange,
            market: *market,
        },
        data::SetMarketPaused { paused },
    )
}

pub fn apply_exchange_params(exchange: &Pubkey) -> Instruction {
    build(
        acc::ApplyExchange {
            exchange: *exchange,
        },
        data::ApplyExchangeParams {},
    )
}

pub fn cancel_exchange_params(admin: &Pubkey, exchange: &Pubkey) -> Instruction {
    build(
        acc::UpdateExchange {
            admin: *admin,
            exchange: *exchange,
        },
        data::CancelExchangeParams {},
    )
}

pub fn propose_admin(admin: &Pubkey, exchange: &Pubkey, new_admin: &Pubkey) -> Instruction {
    build(
        acc::UpdateExchange {
            admin: *admin,
            exchange: *exchange,
        },
        data::ProposeAdmin {
            new_admin: *new_admin,
        },
    )
}

pub fn accept_admin(new_admin: &Pubkey, exchange: &Pubkey) -> Instruction {
    build(
        acc::AcceptAdmin {
            new_admin: *new_admin,
            exchange: *exchange,
        },
        data::AcceptAdmin {},
    )
}

pub fn create_oracle_feed(
    admin: &Pubkey,
    exchange: &Pubkey,
    index: u16,
    authority: &Pubkey,
    expo: i32,
    price: i64,
    conf: u64,
) -> Instruction {
    build(
        acc::CreateOracleFeed {
            admin: *admin,
            exchange: *exchange,
            feed: pda::oracle_feed(exchange, index),
            system_program: system_program::ID,
        },
        data::CreateOracleFeed {
            authority: *authority,
            expo,
            price,
            conf,
        },
    )
}

pub fn set_oracle_price(authority: &Pubkey, feed: &Pubkey, price: i64, conf: u64) -> Instruction {
    build(
        acc::SetOraclePrice {
            authority: *authority,
            feed: *feed,
        },
        data::SetOraclePrice { price, conf },
    )
}

pub fn create_margin_account(owner: &Pubkey, exchange: &Pubkey) -> Instruction {
    build(
        acc::CreateMarginAccount {
            owner: *owner,
            exchange: *exchange,
            margin_account: pda::margin_account(exchange, owner),
            system_program: system_program::ID,
        },
        data::CreateMarginAccount {},
    )
}

pub fn close_margin_account(owner: &Pubkey, exchange: &Pubkey) -> Instruction {
    build(
        acc::CloseMarginAccount {
            owner: *owner,
            exchange: *exchange,
            margin_account: pda::margin_account(exchange, owner),
        },
        data::CloseMarginAccount {},
    )
}

pub fn deposit(k: &ExchangeKeys, owner: &Pubkey, source: &Pubkey, amount: u64) -> Instruction {
    build(
        acc::Deposit {
            owner: *owner,
            exchange: k.exchange,
            margin_account: pda::margin_account(&k.exchange, owner),
            vault: k.vault,
            insurance_vault: k.insurance_vault,
            source: *source,
            token_program: TOKEN_PROGRAM_ID,
        },
        data::Deposit { amount },
    )
}

/// `pairs`: (market, oracle) for every open position of the account.
pub fn withdraw(
    k: &ExchangeKeys,
    owner: &Pubkey,
    destination: &Pubkey,
    amount: u64,
    pairs: &[(Pubkey, Pubkey)],
) -> Instruction {
    with_remaining(
        build(
            acc::Withdraw {
                owner: *owner,
                exchange: k.exchange,
                margin_account: pda::margin_account(&k.exchange, owner),
                vault: k.vault,
                insurance_vault: k.insurance_vault,
                destination: *destination,
                token_program: TOKEN_PROGRAM_ID,
            },
            data::Withdraw { amount },
        ),
        &market_pairs(pairs),
    )
}

/// A trade in `market` (priced by `oracle`); `other_pairs` covers every other market
/// either side holds.
#[allow(clippy::too_many_arguments)]
pub fn trade(
    k: &ExchangeKeys,
    taker: &Pubkey,
    maker: &Pubkey,
    market: &Pubkey,
    oracle: &Pubkey,
    base_qty: i64,
    price: u64,
    other_pairs: &[(Pubkey, Pubkey)],
) -> Instruction {
    with_remaining(
        build(
            acc::Trade {
                taker: *taker,
                maker: *maker,
                exchange: k.exchange,
                taker_account: pda::margin_account(&k.exchange, taker),
                maker_account: pda::margin_account(&k.exchange, maker),
                market: *market,
                oracle: *oracle,
                vault: k.vault,
                insurance_vault: k.insurance_vault,
                token_program: TOKEN_PROGRAM_ID,
            },
            data::Trade { base_qty, price },
        ),
        &market_pairs(other_pairs),
    )
}

/// `pairs`: (market, oracle) for every open position of the account.
pub fn settle_pnl(k: &ExchangeKeys, owner: &Pubkey, pairs: &[(Pubkey, Pubkey)]) -> Instruction {
    with_remaining(
        build(
            acc::SettlePnl {
                owner: *owner,
                exchange: k.exchange,
                margin_account: pda::margin_account(&k.exchange, owner),
                vault: k.vault,
                insurance_vault: k.insurance_vault,
                token_program: TOKEN_PROGRAM_ID,
            },
            data::SettlePnl {},
        ),
        &market_pairs(pairs),
    )
}

pub fn contribute_insurance(
    k: &ExchangeKeys,
    contributor: &Pubkey,
    source: &Pubkey,
    amount: u64,
) -> Instruction {
    build(
        acc::ContributeInsurance {
            contributor: *contributor,
            exchange: k.exchange,
            vault: k.vault,
            insurance_vault: k.insurance_vault,
            source: *source,
            token_program: TOKEN_PROGRAM_ID,
        },
        data::ContributeInsurance { amount },
    )
}

pub fn withdraw_insurance(
    k: &ExchangeKeys,
    admin: &Pubkey,
    destination: &Pubkey,
    amount: u64,
) -> Instruction {
    build(
        acc::WithdrawInsurance {
            admin: *admin,
            exchange: k.exchange,
            vault: k.vault,
            insurance_vault: k.insurance_vault,
            destination: *destination,
            token_program: TOKEN_PROGRAM_ID,
        },
        data::WithdrawInsurance { amount },
    )
}

/// Pays out the queued insurance withdrawal (anyone, once due).
pub fn apply_insurance_withdrawal(k: &ExchangeKeys, destination: &Pubkey) -> Instruction {
    build(
        acc::ApplyInsuranceWithdrawal {
            exchange: k.exchange,
            vault: k.vault,
            insurance_vault: k.insurance_vault,
            destination: *destination,
            token_program: TOKEN_PROGRAM_ID,
        },
        data::ApplyInsuranceWithdrawal {},
    )
}

pub fn cancel_insurance_withdrawal(admin: &Pubkey, exchange: &Pubkey) -> Instruction {
    build(
        acc::UpdateExchange {
            admin: *admin,
            exchange: *exchange,
        },
        data::CancelInsuranceWithdrawal {},
    )
}

pub fn health(
    exchange: &Pubkey,
    margin_account: &Pubkey,
    pairs: &[(Pubkey, Pubkey)],
) -> Instruction {
    with_remaining(
        build(
            acc::Health {
                exchange: *exchange,
                margin_account: *margin_account,
            },
            data::Health {},
        ),
        &market_pairs(pairs),
    )
}

#[allow(clippy::too_many_arguments)]
pub fn liquidate(
    k: &ExchangeKeys,
    liquidator: &Pubkey,
    liquidatee_account: &Pubkey,
    market: &Pubkey,
    oracle: &Pubkey,
    max_base_qty: u64,
    other_pairs: &[(Pubkey, Pubkey)],
) -> Instruction {
    with_remaining(
        build(
            acc::Liquidate {
                liquidator: *liquidator,
                exchange: k.exchange,
                liquidator_account: pda::margin_account(&k.exchange, liquidator),
                liquidatee_account: *liquidatee_account,
                market: *market,
                oracle: *oracle,
                vault: k.vault,
                insurance_vault: k.insurance_vault,
                token_program: TOKEN_PROGRAM_ID,
            },
            data::Liquidate { max_base_qty },
        ),
        &market_pairs(other_pairs),
    )
}

pub fn resolve_bankruptcy(k: &ExchangeKeys, margin_account: &Pubkey) -> Instruction {
    build(
        acc::ResolveBankruptcy {
            exchange: k.exchange,
            margin_account: *margin_account,
            vault: k.vault,
            insurance_vault: k.insurance_vault,
            token_program: TOKEN_PROGRAM_ID,
        },
        data::ResolveBankruptcy {},
    )
}

/// Starts a round; `pairs`: (market, oracle) for every market of the exchange (the
/// round's price snapshot).
pub fn begin_clawback(exchange: &Pubkey, pairs: &[(Pubkey, Pubkey)]) -> Instruction {
    with_remaining(
        build(
            acc::BeginClawback {
                exchange: *exchange,
            },
            data::BeginClawback {},
        ),
        &market_pairs(pairs),
    )
}

/// Tallies `accounts` (margin accounts not yet tallied this round) at the round's
/// snapshot; no market or oracle account is needed.
pub fn tally(exchange: &Pubkey, accounts: &[Pubkey]) -> Instruction {
    let remaining: Vec<AccountMeta> = accounts
        .iter()
        .map(|a| AccountMeta::new(*a, false))
        .collect();
    with_remaining(
        build(
            acc::Tally {
                exchange: *exchange,
            },
            data::Tally {},
        ),
        &remaining,
    )
}

pub fn finalize_tally(exchange: &Pubkey) -> Instruction {
    build(
        acc::FinalizeTally {
            exchange: *exchange,
        },
        data::FinalizeTally {},
    )
}

pub fn clawback(k: &ExchangeKeys, accounts: &[Pubkey]) -> Instruction {
    let remaining: Vec<AccountMeta> = accounts
        .iter()
        .map(|a| AccountMeta::new(*a, false))
        .collect();
    with_remaining(
        build(
            acc::Clawback {
                exchange: k.exchange,
                vault: k.vault,
                insurance_vault: k.insurance_vault,
                token_program: TOKEN_PROGRAM_ID,
            },
            data::Clawback {},
        ),
        &remaining,
    )
}

pub fn cover_deficit(
    k: &ExchangeKeys,
    payer: &Pubkey,
    source: &Pubkey,
    amount: u64,
) -> Instruction {
    build(
        acc::CoverDeficit {
            payer: *payer,
            exchange: k.exchange,
            vault: k.vault,
            insurance_vault: k.insurance_vault,
            source: *source,
            token_program: TOKEN_PROGRAM_ID,
        },
        data::CoverDeficit { amount },
    )
}

pub fn sweep_surplus(k: &ExchangeKeys) -> Instruction {
    build(
        acc::SweepSurplus {
            exchange: k.exchange,
            vault: k.vault,
            insurance_vault: k.insurance_vault,
            token_program: TOKEN_PROGRAM_ID,
        },
        data::SweepSurplus {},
    )
}
