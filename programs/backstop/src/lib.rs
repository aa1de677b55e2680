//! Backstop: a margin-trading program whose bad debt is mutualized exactly.
//!
//! When a bankrupt account's loss exceeds the insurance fund, a bad-debt epoch opens and
//! `clawback` charges the deficit pro rata to positive PnL (principal last, with a
//! per-round cap), writing a receipt on every charged account. See docs/DESIGN.md.
//!
//! This file is thin: one line per instruction, delegating to `instructions/`.

// Every operation on money is checked (`math::safe`): a bare `+`, `-`, `*`, `/` or `%` on
// an integer is a compile error in the program (tests are exempt).
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use anchor_lang::prelude::*;

pub mod constants;
pub mod engine;
pub mod error;
pub mod events;
pub mod instructions;
pub mod math;
#[cfg(not(target_os = "solana"))]
pub mod native;
pub mod oracle;
pub mod state;

use events::HealthReport;
use instructions::*;
use state::{ExchangeParams, MarketParams};

declare_id!("BytU8UN8u1ELe8Lp3Uko37BLw9wfPg5FGz1dGhU2Uv4n");

/// The entry native hosts call (LiteSVM, the localnet validator's builtin; see
/// `backstop-native`): Anchor's `entry`, plus the `Instruction: <Name>` and
/// `AnchorError …` log lines that `msg!` writes on SBF but prints to stdout off it
/// ([`native`]). Build the native program with the `no-log-ix-name` feature so the name
/// is not also printed.
#[cfg(not(target_os = "solana"))]
pub fn native_entry<'info>(
    program_id: &'info Pubkey,
    accounts: &'info [AccountInfo<'info>],
    data: &'info [u8],
) -> anchor_lang::solana_program::entrypoint::ProgramResult {
    if *program_id == ID {
        if let Some(name) = native::instruction_name(data) {
            events::log(&format!("Instruction: {name}"));
        }
    }
    try_entry(program_id, accounts, data).map_err(|e| {
        native::log_error(&e);
        e.into()
    })
}

#[program]
pub mod backstop {
    use super::*;

    /// Creates an exchange, its collateral vault and its insurance vault.
    pub fn initialize_exchange(
        ctx: Context<InitializeExchange>,
        id: u16,
        params: ExchangeParams,
    ) -> Result<()> {
        instructions::initialize_exchange::handler(ctx, id, params)
    }

    /// Adds a perpetual market priced by an `OracleFeed` or a Pyth `PriceUpdateV2`.
    pub fn add_market(ctx: Context<AddMarket>, args: AddMarketArgs) -> Result<()> {
        instructions::add_market::handler(ctx, args)
    }

    /// Admin: queues new exchange parameters (bounds and one step per rate); anyone
    /// applies them with `apply_exchange_params` after `admin_delay_secs`.
    pub fn update_exchange_params(
        ctx: Context<UpdateExchange>,
        params: ExchangeParams,
    ) -> Result<()> {
        instructions::admin::update_exchange_params(ctx, params)
    }

    /// Anyone: applies queued exchange parameters once the delay has passed and no
    /// bad-debt epoch is open.
    pub fn apply_exchange_params(ctx: Context<ApplyExchange>) -> Result<()> {
        instructions::admin::apply_exchange_params(ctx)
    }

    /// Admin: cancels queued exchange parameters.
    pub fn cancel_exchange_params(ctx: Context<UpdateExchange>) -> Result<()> {
        instructions::admin::cancel_exchange_params(ctx)
    }

    /// Admin: queues new market parameters (bounds and one step per rate).
    pub fn update_market_params(ctx: Context<UpdateMarket>, params: MarketParams) -> Result<()> {
        instructions::admin::update_market_params(ctx, params)
    }

    /// Anyone: applies a market's queued parameters once due.
    pub fn apply_market_params(ctx: Context<ApplyMarket>) -> Result<()> {
        instructions::admin::apply_market_params(ctx)
    }

    /// Admin: cancels a market's queued parameters.
    pub fn cancel_market_params(ctx: Context<UpdateMarket>) -> Result<()> {
        instructions::admin::cancel_market_params(ctx)
    }

    /// Admin: pauses a market at once (its open interest may not grow) or lifts it.
    pub fn set_market_paused(ctx: Context<UpdateMarket>, paused: bool) -> Result<()> {
        instructions::admin::set_market_paused(ctx, paused)
    }

    /// Admin: sets the exchange's pause bits at once (PAUSE_TRADING: open interest frozen;
    /// PAUSE_NEW_ACCOUNTS). Deposits, withdrawals and liquidations are never paused.
    pub fn set_paused(ctx: Context<UpdateExchange>, flags: u8) -> Result<()> {
        instructions::admin::set_paused(ctx, flags)
    }

    /// Admin: proposes the next admin (two-step transfer).
    pub fn propose_admin(ctx: Context<UpdateExchange>, new_admin: Pubkey) -> Result<()> {
        instructions::admin::propose_admin(ctx, new_admin)
    }

    /// The proposed admin accepts.
    pub fn accept_admin(ctx: Context<AcceptAdmin>) -> Result<()> {
        instructions::admin::accept_admin(ctx)
    }

    /// Creates a manual price feed owned by this exchange.
    pub fn create_oracle_feed(
        ctx: Context<CreateOracleFeed>,
        authority: Pubkey,
        expo: i32,
        price: i64,
        conf: u64,
    ) -> Result<()> {
        instructions::oracle_feed::create_oracle_feed(ctx, authority, expo, price, conf)
    }

    /// Publishes a price on a manual feed (its authority only).
    pub fn set_oracle_price(ctx: Context<SetOraclePrice>, price: i64, conf: u64) -> Result<()> {
        instructions::oracle_feed::set_oracle_price(ctx, price, conf)
    }

    /// Opens the signer's margin account (in every phase: one created during a clawback
    /// round owes nothing to it).
    pub fn create_margin_account(ctx: Context<CreateMarginAccount>) -> Result<()> {
        instructions::margin_account::create(ctx)
    }

    /// Closes an empty margin account (refused with `ClawbackDue` while it owes a share of
    /// the round being applied: after that charge it is not empty).
    pub fn close_margin_account(ctx: Context<CloseMarginAccount>) -> Result<()> {
        instructions::margin_account::close(ctx)
    }

    /// Deposits `amount` collateral atoms (the mint's smallest unit) from `source` as
    /// capital. Needs no price; never paused; works in every phase.
    pub fn deposit(ctx: Context<Deposit>, amount: u64) -> Result<()> {
        instructions::deposit::handler(ctx, amount)
    }

    /// Withdraws `amount` collateral atoms of capital to `destination`; the account must
    /// meet initial margin afterwards, and while a deficit is open its share of it stays
    /// (docs/DESIGN.md §6.4).
    /// Remaining accounts: a (PerpMarket, oracle) pair, read-only, for every market the
    /// account holds a position in.
    pub fn withdraw<'info>(ctx: Context<'info, Withdraw<'info>>, amount: u64) -> Result<()> {
        instructions::withdraw::handler(ctx, amount)
    }

    /// Bilateral trade signed by taker and maker. `base_qty`: the taker's side in base atoms,
    /// positive when the taker buys (a long is a positive `base_qty`). `price`: quote atoms
    /// per base atom × 10⁹, within `max_trade_deviation_bps` of the oracle — and, while a
    /// deficit is open, exactly the oracle price (`PriceNotOracle` otherwise); the taker's
    /// quote basis changes by ⌈base_qty · price / 10⁹⌉, the maker's by the negative. A side
    /// left flat with negative equity is resolved in the same instruction. Works in every
    /// phase.
    /// Remaining accounts: a read-only (PerpMarket, oracle) pair for every *other* market
    /// the taker or the maker holds a position in (the traded market is passed by name).
    pub fn trade<'info>(
        ctx: Context<'info, Trade<'info>>,
        base_qty: i64,
        price: u64,
    ) -> Result<()> {
        instructions::trade::handler(ctx, base_qty, price)
    }

    /// Marks positions to oracle, realizes losses, converts vested profit to capital (only
    /// while no deficit is open and no bankruptcy is unresolved). Remaining accounts: a
    /// read-only (PerpMarket, oracle) pair for every market the account holds a position
    /// in.
    pub fn settle_pnl<'info>(ctx: Context<'info, SettlePnl<'info>>) -> Result<()> {
        instructions::settle_pnl::handler(ctx)
    }

    /// Pays `amount` collateral atoms into the insurance fund.
    pub fn contribute_insurance(ctx: Context<ContributeInsurance>, amount: u64) -> Result<()> {
        instructions::insurance::contribute(ctx, amount)
    }

    /// Admin: queues a withdrawal from the insurance fund to `destination`.
    pub fn withdraw_insurance(ctx: Context<WithdrawInsurance>, amount: u64) -> Result<()> {
        instructions::insurance::withdraw(ctx, amount)
    }

    /// Anyone: pays out the queued insurance withdrawal once due — never while a
    /// bad-debt epoch is open or a bankruptcy is unresolved.
    pub fn apply_insurance_withdrawal(ctx: Context<ApplyInsuranceWithdrawal>) -> Result<()> {
        instructions::insurance::apply_withdrawal(ctx)
    }

    /// Admin: cancels the queued insurance withdrawal.
    pub fn cancel_insurance_withdrawal(ctx: Context<UpdateExchange>) -> Result<()> {
        instructions::insurance::cancel_withdrawal(ctx)
    }

    /// Read-only health report (equity, margins, liquidatable, bankrupt) as return data.
    /// Remaining accounts: a read-only (PerpMarket, oracle) pair for every market the
    /// account holds a position in.
    pub fn health<'info>(ctx: Context<'info, Health<'info>>) -> Result<HealthReport> {
        instructions::health::handler(ctx)
    }

    /// Permissionless partial liquidation: the liquidator's account takes over at most
    /// `max_base_qty` base atoms of the liquidatee's position in `market`, only as much as
    /// brings it back to MM · (1 + buffer). A liquidatee left flat with negative equity is
    /// resolved in the same instruction (insurance, then deficit). Remaining accounts: a
    /// read-only
    /// (PerpMarket, oracle) pair for every *other* market the liquidatee or the liquidator
    /// holds a position in.
    pub fn liquidate<'info>(
        ctx: Context<'info, Liquidate<'info>>,
        max_base_qty: u64,
    ) -> Result<()> {
        instructions::liquidate::handler(ctx, max_base_qty)
    }

    /// Writes a bankrupt account up to zero: insurance first, the rest to the deficit.
    pub fn resolve_bankruptcy(ctx: Context<ResolveBankruptcy>) -> Result<()> {
        instructions::resolve_bankruptcy::handler(ctx)
    }

    /// Starts a clawback round (BadDebt → Tallying) and records its price snapshot.
    /// Remaining accounts: a read-only (PerpMarket, oracle) pair for every market of the
    /// exchange. A stale or too uncertain oracle contributes the price it holds; one that
    /// cannot be read, the market's last accepted price.
    pub fn begin_clawback<'info>(ctx: Context<'info, BeginClawback<'info>>) -> Result<()> {
        instructions::begin_clawback::handler(ctx)
    }

    /// Records weights at the round's price snapshot for a batch of margin accounts.
    /// Remaining accounts: 1 ..= MAX_TALLY_BATCH writable margin accounts not yet tallied
    /// this round, each at most once; no market or oracle account. The round needs every
    /// account with an open position or positive pnl, and — only when none of them has
    /// profit weight — every account with capital.
    pub fn tally<'info>(ctx: Context<'info, Tally<'info>>) -> Result<()> {
        instructions::tally::handler(ctx)
    }

    /// Fixes the round's basis and rate (Tallying → Applying) once the round's tallies are
    /// in (`TallyIncomplete` before).
    pub fn finalize_tally(ctx: Context<FinalizeTally>) -> Result<()> {
        instructions::finalize_tally::handler(ctx)
    }

    /// Charges a batch of tallied accounts and writes their receipts. Remaining accounts:
    /// 1 ..= MAX_CLAWBACK_BATCH writable margin accounts, each at most once, each tallied
    /// this round with weight in the round's basis and not charged yet (a zero-weight
    /// account is refused with `NothingToClawBack`, one already charged — by this crank or
    /// touch first — with `AlreadyClawedBack`: leave them out). No prices needed.
    pub fn clawback<'info>(ctx: Context<'info, Clawback<'info>>) -> Result<()> {
        instructions::clawback::handler(ctx)
    }

    /// Pays up to `amount` collateral atoms into the vault to reduce the deficit (at most
    /// the deficit is taken). Refused while a round is being applied.
    pub fn cover_deficit(ctx: Context<CoverDeficit>, amount: u64) -> Result<()> {
        instructions::insurance::cover_deficit(ctx, amount)
    }

    /// Books direct token donations to the vaults into the insurance fund.
    pub fn sweep_surplus(ctx: Context<SweepSurplus>) -> Result<()> {
        instructions::insurance::sweep_surplus(ctx)
    }
}
