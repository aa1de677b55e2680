use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::constants::PAUSE_TRADING;
use crate::engine::position::{check_zero_sum, fill_pair, Fill};
use crate::engine::round::touch;
use crate::engine::{bankruptcy, now, pnl_clock, track};
use crate::error::BackstopError;
use crate::events::TradeFilled;
use crate::math::safe::{negative, SafeMath};
use crate::math::trade::{
    at_oracle_or_better, check_side, open_interest_allowed, price_allowed, taker_fee, taker_quote,
};
use crate::oracle::{read_price, PriceCache};
use crate::state::{Exchange, MarginAccount, PerpMarket};

/// A bilateral trade the exchange novates: taker and maker both sign. `base_qty` is the
/// taker's side (positive: the taker buys), `price` a fixed-point price within the
/// market's band around the oracle — exactly the oracle price while a deficit is open, so
/// no value can move between accounts while a loss is being shared (docs/DESIGN.md §6.3).
/// Works in every phase: a round in progress tallies or charges both sides first. Each side must meet initial margin afterwards, or
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
        has_one = vault @ BackstopError::WrongVault,
        has_one = insurance_vault @ BackstopError::WrongInsuranceVault,
    )]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        constraint = taker_account.owner == taker.key() @ BackstopError::NotAccountOwner
    )]
    pub taker_account: Box<Account<'info, MarginAccount>>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        constraint = maker_account.owner == maker.key() @ BackstopError::NotAccountOwner,
        constraint = maker_account.key() != taker_account.key() @ BackstopError::SelfTrade
    )]
    pub maker_account: Box<Account<'info, MarginAccount>>,
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
    let clock = pnl_clock(ex, now);
    let market: &mut PerpMarket = &mut a.market;
    // A pause (exchange-wide or of this market) freezes open interest: no trade may grow it.
    let exchange_paused = ex.is_paused(PAUSE_TRADING, now);
    let market_paused = market.pause_in_force(ex.params.max_pause_secs, now);
    let oracle_price = read_price(
        &a.oracle.to_account_info(),
        market,
        ex.collateral_decimals,
        now,
    )?;
    if let Some(refusal) = price_allowed(
        price,
        oracle_price.price,
        market.params.max_trade_deviation_bps,
        ex.books.deficit,
    )? {
        return Err(BackstopError::from(refusal).into());
    }
    market.accept_price(oracle_price.price, now)?;
    let mut cache = PriceCache::load(
        &exchange_info.key(),
        ex.collateral_decimals,
        ctx.remaining_accounts,
        now,
    )?;
    cache.set(market, oracle_price);

    let (exchange_key, taker_key, maker_key) = (
        exchange_info.key(),
        a.taker_account.key(),
        a.maker_account.key(),
    );
    let taker: &mut MarginAccount = &mut a.taker_account;
    let maker: &mut MarginAccount = &mut a.maker_account;
    // Touch first: a round in progress records (or charges) both sides as they stood.
    let mut excess = touch(ex, exchange_key, taker_key, taker, clock)?;
    excess = excess.safe_add(touch(ex, exchange_key, maker_key, maker, clock)?)?;
    let idx = market.index;
    let taker_before = cache.health(taker)?;
    let maker_before = cache.health(maker)?;
    let (taker_standing, maker_standing) = (taker.standing(), maker.standing());
    let taker_base_before = taker.base_in(idx);
    let maker_base_before = maker.base_in(idx);

    let quote = taker_quote(base_qty, price)?;
    let fee = taker_fee(base_qty, price, market.params.taker_fee_bps)?;
    let books = &mut ex.books;
    let long_oi_before = market.long_open_interest;
    let taker_fill = Fill {
        market_index: idx,
        base_delta: base_qty,
        quote_delta: quote,
    };
    fill_pair(taker, maker, market, books, taker_fill, clock)?;
    taker.add_pnl(negative(fee)?, books, clock)?;

    // Under a pause a position can still be closed against anyone — a counterparty who
    // reduces, or one who takes the position over (open interest unchanged) — so no pause
    // traps a user; only trades that add open interest are refused.
    let oi_grows = market.long_open_interest > long_oi_before;
    if oi_grows && (exchange_paused || market_paused) {
        return Err(if exchange_paused {
            BackstopError::Paused
        } else {
            BackstopError::MarketPaused
        }
        .into());
    }
    if !open_interest_allowed(
        long_oi_before,
        market.long_open_interest,
        market.params.max_open_interest,
    ) {
        return Err(BackstopError::OpenInterestCapExceeded.into());
    }
    let taker_buys = base_qty > 0;
    for (side, before, base_before, buys) in [
        (&*taker, &taker_before, taker_base_before, taker_buys),
        (&*maker, &maker_before, maker_base_before, !taker_buys),
    ] {
        if let Some(refusal) = check_side(
            before,
            &cache.health(side)?,
            base_before,
            side.base_in(idx),
            at_oracle_or_better(buys, price, oracle_price.price),
        )? {
            return Err(BackstopError::from(refusal).into());
        }
    }
    check_zero_sum(market)?;
    track(ex, taker_standing, taker.standing())?;
    track(ex, maker_standing, maker.standing())?;

    let treasury = crate::treasury!(a, exchange_info, ex);
    treasury.vault_to_insurance(&mut ex.books, fee.safe_add(excess)?)?;
    // A side left flat with negative equity is written up now, opening its epoch in this
    // instruction (no profit can be converted before the loss is booked).
    for (key, side) in [(taker_key, taker), (maker_key, maker)] {
        if side.is_bankrupt() {
            bankruptcy::resolve(ex, exchange_key, key, side, &treasury, clock)?;
        }
    }
    treasury.finish(&ex.books)?;
    crate::events::emit(TradeFilled {
        market_index: idx,
        taker: a.taker_account.key(),
        maker: a.maker_account.key(),
        base_qty,
        price,
        oracle_price: oracle_price.price,
        quote,
        taker_fee: fee,
    });
    Ok(())
}
