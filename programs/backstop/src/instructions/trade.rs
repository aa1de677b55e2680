use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::accounting::{check_invariants, check_zero_sum, now, transfer_from_exchange};
use crate::constants::PAUSE_TRADING;
use crate::error::BackstopError;
use crate::events::TradeFilled;
use crate::math::health::Health;
use crate::math::safe::{cast, SafeMath};
use crate::math::trade::{is_risk_reducing, taker_fee, taker_quote, within_band};
use crate::oracle::{read_price, PriceCache};
use crate::state::{Exchange, MarginAccount, PerpMarket};

/// A bilateral trade the exchange novates: taker and maker both sign. `base_qty` is the
/// taker's side (positive: the taker buys), `price` a fixed-point price within the
/// market's band around the oracle. Each side must meet initial margin afterwards, or
/// reduce its position in this market without becoming less healthy. The taker fee goes
/// to the insurance fund.
///
/// Remaining accounts: a (market, oracle) pair for every *other* market either account
/// holds a position in.
#[derive(Accounts)]
pub struct Trade<'info> {
    pub taker: Signer<'info>,
    pub maker: Signer<'info>,
    #[account(
        mut,
        constraint = !exchange.is_paused(PAUSE_TRADING) @ BackstopError::Paused,
        constraint = !exchange.epoch.in_round() @ BackstopError::WrongEpochPhase
    )]
    pub exchange: Account<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        constraint = taker_account.owner == taker.key() @ BackstopError::NotAccountOwner
    )]
    pub taker_account: Account<'info, MarginAccount>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        constraint = maker_account.owner == maker.key() @ BackstopError::NotAccountOwner,
        constraint = maker_account.key() != taker_account.key() @ BackstopError::SelfTrade
    )]
    pub maker_account: Account<'info, MarginAccount>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        has_one = oracle @ BackstopError::WrongOracle,
        constraint = !market.paused @ BackstopError::MarketPaused
    )]
    pub market: Account<'info, PerpMarket>,
    /// CHECK: must equal `market.oracle` (has_one); decoded and guarded by `oracle::read_price`.
    pub oracle: UncheckedAccount<'info>,
    #[account(mut, address = exchange.vault @ BackstopError::WrongVault)]
    pub vault: Account<'info, TokenAccount>,
    #[account(mut, address = exchange.insurance_vault @ BackstopError::WrongInsuranceVault)]
    pub insurance_vault: Account<'info, TokenAccount>,
    pub token_program: Program<'info, Token>,
}

/// A side may end below initial margin only by reducing its position here and ending at
/// least as healthy (maintenance) as it started.
fn check_side(before: &Health, after: &Health, base_before: i64, base_after: i64) -> Result<()> {
    if after.meets_initial_margin()? {
        return Ok(());
    }
    require!(
        is_risk_reducing(base_before, base_after),
        BackstopError::InitialMarginViolated
    );
    require!(
        after.maintenance_health()? >= before.maintenance_health()?,
        BackstopError::HealthDecreased
    );
    Ok(())
}

pub fn handler<'info>(ctx: Context<'info, Trade<'info>>, base_qty: i64, price: u64) -> Result<()> {
    require!(
        base_qty != 0 && base_qty != i64::MIN,
        BackstopError::ZeroAmount
    );
    require!(price > 0, BackstopError::ZeroAmount);
    let now = now()?;
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let ex: &mut Exchange = &mut a.exchange;
    let seeds = ex.seeds();
    let market: &mut PerpMarket = &mut a.market;
    let oracle_price = read_price(
        &a.oracle.to_account_info(),
        market,
        ex.collateral_decimals,
        now,
    )?;
    require!(
        within_band(
            price,
            oracle_price.price,
            market.params.max_trade_deviation_bps
        )?,
        BackstopError::PriceOutsideBand
    );
    let mut cache = PriceCache::load(
        &exchange_info.key(),
        ex.collateral_decimals,
        ctx.remaining_accounts,
        now,
    )?;
    cache.insert(market, oracle_price);

    let taker = &mut a.taker_account;
    let maker = &mut a.maker_account;
    let idx = market.index;
    let taker_before = cache.health(taker)?;
    let maker_before = cache.health(maker)?;
    let taker_base_before = taker.position(idx).map_or(0, |p| p.base_qty);
    let maker_base_before = maker.position(idx).map_or(0, |p| p.base_qty);

    let quote = taker_quote(base_qty, price)?;
    let fee = taker_fee(base_qty, price, market.params.taker_fee_bps)?;
    let warmup = ex.params.pnl_warmup_secs;
    taker.apply_fill(
        idx,
        base_qty,
        quote,
        &mut ex.total_basis,
        &mut ex.total_pnl,
        &mut market.long_open_interest,
        &mut market.short_open_interest,
        now,
        warmup,
    )?;
    maker.apply_fill(
        idx,
        base_qty.checked_neg().ok_or(BackstopError::MathOverflow)?,
        quote.checked_neg().ok_or(BackstopError::MathOverflow)?,
        &mut ex.total_basis,
        &mut ex.total_pnl,
        &mut market.long_open_interest,
        &mut market.short_open_interest,
        now,
        warmup,
    )?;
    taker.add_pnl(-cast::<u64, i64>(fee)?, &mut ex.total_pnl, now, warmup)?;

    check_side(
        &taker_before,
        &cache.health(taker)?,
        taker_base_before,
        taker.position(idx).map_or(0, |p| p.base_qty),
    )?;
    check_side(
        &maker_before,
        &cache.health(maker)?,
        maker_base_before,
        maker.position(idx).map_or(0, |p| p.base_qty),
    )?;
    check_zero_sum(market)?;

    ex.vault_balance = ex.vault_balance.safe_sub(fee)?;
    ex.insurance_balance = ex.insurance_balance.safe_add(fee)?;
    transfer_from_exchange(
        &a.token_program,
        &a.vault,
        a.insurance_vault.to_account_info(),
        exchange_info.clone(),
        &seeds,
        fee,
    )?;
    check_invariants(ex, &mut a.vault, &mut a.insurance_vault)?;
    crate::events::emit(TradeFilled {
        market_index: idx,
        taker: taker.key(),
        maker: maker.key(),
        base_qty,
        price,
        oracle_price: oracle_price.price,
        quote,
        taker_fee: fee,
    });
    Ok(())
}
