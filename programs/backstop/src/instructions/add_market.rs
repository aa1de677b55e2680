use anchor_lang::prelude::*;

use crate::constants::*;
use crate::error::BackstopError;
use crate::events::MarketAdded;
use crate::oracle::decode_oracle_kind;
use crate::state::{Exchange, MarketParams, OracleKind, PerpMarket, QueuedMarketParams};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct AddMarketArgs {
    /// Display name, UTF-8, zero padded.
    pub name: [u8; 16],
    pub oracle_kind: OracleKind,
    /// Pyth feed id (zeros for an `OracleFeed`).
    pub pyth_feed_id: [u8; 32],
    /// Decimals of the base asset's atoms (9 for SOL).
    pub base_decimals: u8,
    pub params: MarketParams,
}

/// Adds perpetual market number `exchange.num_markets`, priced by `oracle`.
#[derive(Accounts)]
pub struct AddMarket<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,
    #[account(mut, has_one = admin @ BackstopError::NotAdmin)]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(
        init,
        payer = admin,
        space = 8 + PerpMarket::INIT_SPACE,
        seeds = [MARKET_SEED, exchange.key().as_ref(), &exchange.num_markets.to_le_bytes()],
        bump
    )]
    pub market: Box<Account<'info, PerpMarket>>,
    /// CHECK: owner, type, exchange and feed id are checked by `oracle::decode_oracle_kind`.
    pub oracle: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

pub fn handler(ctx: Context<AddMarket>, args: AddMarketArgs) -> Result<()> {
    args.params.validate()?;
    require!(
        args.base_decimals <= MAX_BASE_DECIMALS,
        BackstopError::InvalidParameter
    );
    let exchange_key = ctx.accounts.exchange.key();
    decode_oracle_kind(
        &ctx.accounts.oracle.to_account_info(),
        args.oracle_kind,
        &exchange_key,
        &args.pyth_feed_id,
    )?;
    let exchange = &mut ctx.accounts.exchange;
    let index = exchange.num_markets;
    require!(index < MAX_MARKETS, BackstopError::TooManyMarkets);
    ctx.accounts.market.set_inner(PerpMarket {
        exchange: exchange_key,
        index,
        bump: ctx.bumps.market,
        paused: false,
        name: args.name,
        oracle: ctx.accounts.oracle.key(),
        oracle_kind: args.oracle_kind,
        pyth_feed_id: args.pyth_feed_id,
        base_decimals: args.base_decimals,
        params: args.params,
        long_open_interest: 0,
        short_open_interest: 0,
        queued_params: QueuedMarketParams::default(),
        paused_at: 0,
        pause_started_at: 0,
        last_price: 0,
        stable_price: 0,
        stable_price_at: 0,
        reserved: [0; 8],
    });
    exchange.num_markets = index.checked_add(1).ok_or(BackstopError::MathOverflow)?;
    crate::events::emit(MarketAdded {
        exchange: exchange_key,
        market: ctx.accounts.market.key(),
        index,
        oracle: ctx.accounts.oracle.key(),
    });
    Ok(())
}
