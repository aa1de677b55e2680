//! Bounded admin updates: exchange parameters, market parameters, pause flags.

use anchor_lang::prelude::*;

use crate::constants::PAUSE_ALL;
use crate::error::BackstopError;
use crate::events::{ExchangeParamsUpdated, MarketParamsUpdated, PausedSet};
use crate::state::{Exchange, ExchangeParams, MarketParams, PerpMarket};

#[derive(Accounts)]
pub struct UpdateExchange<'info> {
    pub admin: Signer<'info>,
    #[account(mut, has_one = admin @ BackstopError::NotAdmin)]
    pub exchange: Box<Account<'info, Exchange>>,
}

/// Replaces the exchange parameters. A round in progress keeps the policy and rate cap it
/// started with.
pub fn update_exchange_params(ctx: Context<UpdateExchange>, params: ExchangeParams) -> Result<()> {
    params.validate()?;
    ctx.accounts.exchange.params = params;
    crate::events::emit(ExchangeParamsUpdated {
        exchange: ctx.accounts.exchange.key(),
    });
    Ok(())
}

/// Sets the PAUSE_* bits (trading, deposits, withdrawals, liquidations).
pub fn set_paused(ctx: Context<UpdateExchange>, flags: u8) -> Result<()> {
    require!(flags & !PAUSE_ALL == 0, BackstopError::InvalidParameter);
    ctx.accounts.exchange.paused = flags;
    crate::events::emit(PausedSet {
        exchange: ctx.accounts.exchange.key(),
        flags,
    });
    Ok(())
}

#[derive(Accounts)]
pub struct UpdateMarket<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ BackstopError::NotAdmin)]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(mut, has_one = exchange @ BackstopError::WrongExchange)]
    pub market: Box<Account<'info, PerpMarket>>,
}

/// Replaces a market's risk parameters and its paused flag.
pub fn update_market_params(
    ctx: Context<UpdateMarket>,
    params: MarketParams,
    paused: bool,
) -> Result<()> {
    params.validate()?;
    let market = &mut ctx.accounts.market;
    market.params = params;
    market.paused = paused;
    crate::events::emit(MarketParamsUpdated {
        market: market.key(),
        paused,
    });
    Ok(())
}
