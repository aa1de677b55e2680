//! The manual `OracleFeed`: created by the exchange admin, priced by its authority.

use anchor_lang::prelude::*;

use crate::constants::*;
use crate::error::BackstopError;
use crate::events::{OracleFeedCreated, OraclePriceSet};
use crate::state::{Exchange, OracleFeed};

#[derive(Accounts)]
pub struct CreateOracleFeed<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,
    #[account(mut, has_one = admin @ BackstopError::NotAdmin)]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(
        init,
        payer = admin,
        space = 8 + OracleFeed::INIT_SPACE,
        seeds = [ORACLE_SEED, exchange.key().as_ref(), &exchange.num_oracle_feeds.to_le_bytes()],
        bump
    )]
    pub feed: Box<Account<'info, OracleFeed>>,
    pub system_program: Program<'info, System>,
}

fn validate_price(price: i64, conf: u64) -> Result<()> {
    require!(price > 0, BackstopError::OracleNonPositivePrice);
    require!(conf <= price as u64, BackstopError::OracleConfidenceTooWide);
    Ok(())
}

/// Creates feed number `exchange.num_oracle_feeds` with an initial price.
pub fn create_oracle_feed(
    ctx: Context<CreateOracleFeed>,
    authority: Pubkey,
    expo: i32,
    price: i64,
    conf: u64,
) -> Result<()> {
    validate_price(price, conf)?;
    require!(
        expo.unsigned_abs() <= MAX_ORACLE_EXPO.unsigned_abs(),
        BackstopError::InvalidParameter
    );
    let clock = Clock::get()?;
    let exchange = &mut ctx.accounts.exchange;
    let index = exchange.num_oracle_feeds;
    ctx.accounts.feed.set_inner(OracleFeed {
        exchange: exchange.key(),
        authority,
        index,
        bump: ctx.bumps.feed,
        price,
        conf,
        expo,
        publish_time: clock.unix_timestamp,
        publish_slot: clock.slot,
    });
    exchange.num_oracle_feeds = index.checked_add(1).ok_or(BackstopError::MathOverflow)?;
    crate::events::emit(OracleFeedCreated {
        feed: ctx.accounts.feed.key(),
        authority,
    });
    Ok(())
}

#[derive(Accounts)]
pub struct SetOraclePrice<'info> {
    pub authority: Signer<'info>,
    #[account(mut, has_one = authority @ BackstopError::NotOracleAuthority)]
    pub feed: Box<Account<'info, OracleFeed>>,
}

/// Publishes a new price, stamped with the cluster clock.
pub fn set_oracle_price(ctx: Context<SetOraclePrice>, price: i64, conf: u64) -> Result<()> {
    validate_price(price, conf)?;
    let clock = Clock::get()?;
    let feed = &mut ctx.accounts.feed;
    feed.price = price;
    feed.conf = conf;
    feed.publish_time = clock.unix_timestamp;
    feed.publish_slot = clock.slot;
    crate::events::emit(OraclePriceSet {
        feed: feed.key(),
        price,
        conf,
        expo: feed.expo,
        publish_time: feed.publish_time,
    });
    Ok(())
}
