use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::engine::position::{check_zero_sum, fill_pair, Fill};
use crate::engine::round::touch;
use crate::engine::{bankruptcy, now, pnl_clock, track};
use crate::error::BackstopError;
use crate::events::Liquidated;
use crate::math::liquidation::liquidation_terms_sized;
use crate::math::safe::{cast, negative, SafeMath};
use crate::oracle::{read_price, PriceCache};
use crate::state::{Exchange, MarginAccount, PerpMarket};

/// Permissionless partial liquidation (docs/DESIGN.md §5.1). The liquidator's own margin account
/// takes over part of the liquidatee's position in `market` at the oracle price moved by
/// `liquidation_fee_bps` in the liquidator's favour — only as much as brings the
/// liquidatee back to MM · (1 + buffer), and at most `max_base_qty`. The insurance share
/// of the discount moves to the insurance fund. When the liquidatee's equity is already
/// ≤ 0 the position moves at the oracle price and the insurance fund pays the liquidator's
/// fee instead as far as it can; the rest of the fee is owed by the liquidatee (deepening
/// a shortfall the waterfall covers), so underwater accounts are always worth
/// liquidating. The discount never exceeds the liquidatee's equity: a liquidation never
/// creates bad debt. The liquidator must meet initial margin afterwards.
///
/// Remaining accounts: a (market, oracle) pair for every other market either account
/// holds a position in.
#[derive(Accounts)]
pub struct Liquidate<'info> {
    pub liquidator: Signer<'info>,
    /// No pause stops liquidations.
    #[account(
        mut,
        has_one = vault @ BackstopError::WrongVault,
        has_one = insurance_vault @ BackstopError::WrongInsuranceVault,
    )]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        constraint = liquidator_account.owner == liquidator.key() @ BackstopError::NotAccountOwner
    )]
    pub liquidator_account: Box<Account<'info, MarginAccount>>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        constraint = liquidatee_account.key() != liquidator_account.key() @ BackstopError::SelfLiquidation,
        constraint = liquidatee_account.owner != liquidator_account.owner @ BackstopError::SameOwnerLiquidation
    )]
    pub liquidatee_account: Box<Account<'info, MarginAccount>>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        has_one = oracle @ BackstopError::WrongOracle
    )]
    pub market: Box<Account<'info, PerpMarket>>,
    /// CHECK: must equal `market.oracle` (has_one); decoded and guarded by `oracle::read_price`.
    pub oracle: UncheckedAccount<'info>,
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Box<Account<'info, TokenAccount>>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Box<Account<'info, TokenAccount>>,
    pub token_program: Program<'info, Token>,
}

pub fn handler<'info>(ctx: Context<'info, Liquidate<'info>>, max_base_qty: u64) -> Result<()> {
    require!(max_base_qty > 0, BackstopError::ZeroAmount);
    let now = now()?;
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let ex: &mut Exchange = &mut a.exchange;
    let clock = pnl_clock(ex, now);
    let market: &mut PerpMarket = &mut a.market;
    let idx = market.index;
    let oracle = read_price(
        &a.oracle.to_account_info(),
        market,
        ex.collateral_decimals,
        now,
    )?;
    let mut cache = PriceCache::load(
        &exchange_info.key(),
        ex.collateral_decimals,
        ctx.remaining_accounts,
        now,
    )?;
    // The read is accepted first, so the cache carries the smoothed price it produced
    // (as in `trade`).
    market.accept_price(oracle.price, now)?;
    cache.set(market, oracle);

    let (exchange_key, liqee_key, liqor_key) = (
        exchange_info.key(),
        a.liquidatee_account.key(),
        a.liquidator_account.key(),
    );
    let liqee: &mut MarginAccount = &mut a.liquidatee_account;
    let liqor: &mut MarginAccount = &mut a.liquidator_account;
    // Touch first: a round in progress records (or charges) both accounts as they stood.
    let mut excess = touch(ex, exchange_key, liqee_key, liqee, clock)?;
    excess = excess.safe_add(touch(ex, exchange_key, liqor_key, liqor, clock)?)?;
    let position = *liqee
        .position(idx)
        .ok_or(BackstopError::NoPositionInMarket)?;
    let (liqee_standing, liqor_standing) = (liqee.standing(), liqor.standing());
    let before = cache.health(liqee)?;
    require!(before.is_liquidatable()?, BackstopError::NotLiquidatable);

    let params = market
        .params
        .liquidation_params(ex.params.liquidation_buffer_bps);
    let market_params = market.params;
    let terms = liquidation_terms_sized(
        &before,
        position.base_qty,
        oracle.price,
        &params,
        max_base_qty,
        |b| market_params.maintenance_rate(b),
    )?;
    require!(terms.base > 0, BackstopError::NothingToLiquidate);
    let books = &mut ex.books;
    let liquidatee_fill = Fill {
        market_index: idx,
        base_delta: terms.liquidatee_base_delta,
        quote_delta: terms.liquidatee_quote_delta,
    };
    fill_pair(liqee, liqor, market, books, liquidatee_fill, clock)?;

    let treasury = crate::treasury!(a, exchange_info, ex);
    treasury.vault_to_insurance(&mut ex.books, excess)?;
    // The liquidator pays the insurance share of its discount; then the insurance fund
    // pays what the liquidator is owed beyond the discount (its whole fee when the equity
    // was ≤ 0, the part the equity cap withheld otherwise), as far as its balance goes.
    liqor.add_pnl(negative(terms.insurance_fee)?, &mut ex.books, clock)?;
    treasury.vault_to_insurance(&mut ex.books, terms.insurance_fee)?;
    let insurance_paid = terms
        .insurance_paid_uncapped
        .min(ex.books.insurance_balance);
    liqor.add_pnl(cast(insurance_paid)?, &mut ex.books, clock)?;
    treasury.insurance_to_vault(&mut ex.books, insurance_paid)?;
    // An account already at equity ≤ 0 owes the rest of the fee itself: it deepens its
    // shortfall, which its write-up passes to the insurance fund and then the deficit —
    // so a liquidator is paid for every underwater account, even with the fund empty.
    // (Never for an account with equity: the discount cap keeps it at or above zero.)
    let unpaid = if terms.discounted {
        0
    } else {
        terms.insurance_paid_uncapped.safe_sub(insurance_paid)?
    };
    liqee.add_pnl(negative(unpaid)?, &mut ex.books, clock)?;
    liqor.add_pnl(cast(unpaid)?, &mut ex.books, clock)?;

    let liqor_after = cache.health(liqor)?;
    require!(
        liqor_after.meets_initial_margin()?,
        BackstopError::LiquidatorBelowInitialMargin
    );
    let after = cache.health(liqee)?;
    check_zero_sum(market)?;
    track(ex, liqee_standing, liqee.standing())?;
    track(ex, liqor_standing, liqor.standing())?;
    crate::events::emit(Liquidated {
        market_index: idx,
        liquidator: liqor_key,
        liquidatee: liqee_key,
        base_qty: terms.base,
        liquidatee_was_long: terms.liquidatee_was_long,
        oracle_price: oracle.price,
        liquidation_price: terms.price,
        equity_before: cast(before.equity)?,
        equity_after: cast(after.equity)?,
        maintenance_margin_after: cast(after.maintenance_margin)?,
        insurance_fee: terms.insurance_fee,
        insurance_paid,
    });
    // A liquidatee left flat with negative equity is written up now (insurance, then
    // deficit, then `BadDebt`): the bankruptcy opens its epoch in the instruction that
    // creates it, so no winner can convert profit before the loss is booked.
    if liqee.is_bankrupt() {
        bankruptcy::resolve(ex, exchange_key, liqee_key, liqee, &treasury, clock)?;
    }
    treasury.finish(&ex.books)
}
