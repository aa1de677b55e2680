//! The admin's powers, bounded (docs/DESIGN.md §11). No single transaction of the admin
//! can move a user's money:
//! - parameter changes are *queued*; anyone may apply one once `admin_delay_secs` has
//!   passed and no bad-debt epoch is open; the admin may cancel it before;
//! - each change moves every rate by at most one step, within absolute caps;
//! - pauses only stop new risk (open interest frozen, no new accounts) and may lapse after
//!   `max_pause_secs`;
//! - the admin key changes in two steps (propose, accept), so it may be a multisig.

use anchor_lang::prelude::*;

use crate::constants::{CHANGE_APPLY_WINDOW_SECS, PAUSE_ALL, PAUSE_TRADING};
use crate::engine::now;
use crate::error::BackstopError;
use crate::events::{
    AdminChanged, AdminProposed, ChangeCancelled, ChangeKind, ExchangeParamsQueued,
    ExchangeParamsUpdated, MarketParamsQueued, MarketParamsUpdated, MarketPausedSet, PausedSet,
};
use crate::math::safe::SafeMath;
use crate::state::{
    next_pause_start, EpochPhase, Exchange, ExchangeParams, MarketParams, PerpMarket,
    QueuedExchangeParams, QueuedMarketParams,
};

/// Admin-signed changes to the exchange.
#[derive(Accounts)]
pub struct UpdateExchange<'info> {
    pub admin: Signer<'info>,
    #[account(mut, has_one = admin @ BackstopError::NotAdmin)]
    pub exchange: Box<Account<'info, Exchange>>,
}

/// Permissionless: applies what the admin queued once it is due.
#[derive(Accounts)]
pub struct ApplyExchange<'info> {
    #[account(mut)]
    pub exchange: Box<Account<'info, Exchange>>,
}

/// When a change (or insurance withdrawal) queued at `now` on `exchange` may be applied.
pub(crate) fn ready_at(exchange: &Exchange, now: i64) -> Result<i64> {
    Ok(now.safe_add(i64::from(exchange.params.admin_delay_secs))?)
}

/// A queued item is applicable from `ready_at` for `CHANGE_APPLY_WINDOW_SECS`; before,
/// `TimelockPending`; after, it expired (a due change must not become an option to
/// exercise later).
pub(crate) fn check_window(ready_at: i64, now: i64) -> Result<()> {
    require!(now >= ready_at, BackstopError::TimelockPending);
    require!(
        now <= ready_at.saturating_add(CHANGE_APPLY_WINDOW_SECS),
        BackstopError::ChangeExpired
    );
    Ok(())
}

/// The rule every queued change meets before it applies:
/// - it is inside its window ([`check_window`]);
/// - no pause that concerns it is in force, and no pause was set or lifted during the last
///   `admin_delay_secs` (`last_pause_change`): a pause cannot hold users in place while a
///   change they would escape comes due;
/// - no bad-debt epoch is open (a change never reaches back into an open epoch: the
///   warmup, the clawback policy and rate cap, margins and fees in force when the deficit
///   opened stay until it closes).
fn check_due(
    exchange: &Exchange,
    ready_at: i64,
    paused: bool,
    last_pause_change: i64,
    now: i64,
) -> Result<()> {
    check_window(ready_at, now)?;
    let calm_since = last_pause_change.saturating_add(i64::from(exchange.params.admin_delay_secs));
    require!(
        !paused && (last_pause_change == 0 || now >= calm_since),
        BackstopError::PauseHoldsChanges
    );
    require!(
        exchange.epoch.phase == EpochPhase::Normal,
        BackstopError::WaitsForNormal
    );
    Ok(())
}

/// Queues new exchange parameters (bounded, each rate within one step of today's).
pub fn update_exchange_params(ctx: Context<UpdateExchange>, params: ExchangeParams) -> Result<()> {
    let now = now()?;
    let key = ctx.accounts.exchange.key();
    let ex = &mut ctx.accounts.exchange;
    require!(!ex.queued_params.active, BackstopError::ChangeAlreadyQueued);
    params.validate()?;
    params.validate_step(&ex.params)?;
    let ready_at = ready_at(ex, now)?;
    ex.queued_params = QueuedExchangeParams {
        active: true,
        params,
        queued_at: now,
        ready_at,
    };
    crate::events::emit(ExchangeParamsQueued {
        exchange: key,
        old: ex.params,
        new: params,
        ready_at,
    });
    Ok(())
}

/// Applies the queued exchange parameters once due.
pub fn apply_exchange_params(ctx: Context<ApplyExchange>) -> Result<()> {
    let now = now()?;
    let key = ctx.accounts.exchange.key();
    let ex = &mut ctx.accounts.exchange;
    let q = ex.queued_params;
    require!(q.active, BackstopError::NothingQueued);
    let paused = ex.is_paused(PAUSE_ALL, now);
    check_due(ex, q.ready_at, paused, ex.paused_at, now)?;
    let old = ex.params;
    ex.params = q.params;
    ex.queued_params = QueuedExchangeParams::default();
    crate::events::emit(ExchangeParamsUpdated {
        exchange: key,
        old,
        new: q.params,
    });
    Ok(())
}

/// The admin withdraws its queued exchange-parameter change.
pub fn cancel_exchange_params(ctx: Context<UpdateExchange>) -> Result<()> {
    let key = ctx.accounts.exchange.key();
    let ex = &mut ctx.accounts.exchange;
    require!(ex.queued_params.active, BackstopError::NothingQueued);
    ex.queued_params = QueuedExchangeParams::default();
    crate::events::emit(ChangeCancelled {
        exchange: key,
        target: key,
        kind: ChangeKind::ExchangeParams,
    });
    Ok(())
}

/// Sets the PAUSE_* bits at once: open interest frozen, no new accounts. Lifting a pause
/// is immediate too; a pause lapses after `max_pause_secs` when that is set.
pub fn set_paused(ctx: Context<UpdateExchange>, flags: u8) -> Result<()> {
    require!(flags & !PAUSE_ALL == 0, BackstopError::InvalidParameter);
    let now = now()?;
    let key = ctx.accounts.exchange.key();
    let ex = &mut ctx.accounts.exchange;
    ex.pause_started_at = next_pause_start(
        ex.paused != 0,
        ex.pause_started_at,
        flags != 0,
        ex.params.max_pause_secs,
        now,
    )?;
    ex.paused = flags;
    ex.paused_at = now;
    crate::events::emit(PausedSet {
        exchange: key,
        flags,
        max_pause_secs: ex.params.max_pause_secs,
    });
    Ok(())
}

/// First step of an admin change: names the next admin (a multisig address works; the
/// default key clears the proposal).
pub fn propose_admin(ctx: Context<UpdateExchange>, new_admin: Pubkey) -> Result<()> {
    let key = ctx.accounts.exchange.key();
    let ex = &mut ctx.accounts.exchange;
    ex.pending_admin = new_admin;
    crate::events::emit(AdminProposed {
        exchange: key,
        admin: ex.admin,
        proposed: new_admin,
    });
    Ok(())
}

/// Second step: the proposed admin signs and takes over.
#[derive(Accounts)]
pub struct AcceptAdmin<'info> {
    pub new_admin: Signer<'info>,
    #[account(
        mut,
        constraint = exchange.pending_admin == new_admin.key()
            && exchange.pending_admin != Pubkey::default() @ BackstopError::NotPendingAdmin
    )]
    pub exchange: Box<Account<'info, Exchange>>,
}

pub fn accept_admin(ctx: Context<AcceptAdmin>) -> Result<()> {
    let key = ctx.accounts.exchange.key();
    let ex = &mut ctx.accounts.exchange;
    let old = ex.admin;
    ex.admin = ex.pending_admin;
    ex.pending_admin = Pubkey::default();
    crate::events::emit(AdminChanged {
        exchange: key,
        old,
        new: ex.admin,
    });
    Ok(())
}

/// Admin-signed changes to one market.
#[derive(Accounts)]
pub struct UpdateMarket<'info> {
    pub admin: Signer<'info>,
    #[account(has_one = admin @ BackstopError::NotAdmin)]
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(mut, has_one = exchange @ BackstopError::WrongExchange)]
    pub market: Box<Account<'info, PerpMarket>>,
}

/// Permissionless: applies a market's queued change once due.
#[derive(Accounts)]
pub struct ApplyMarket<'info> {
    pub exchange: Box<Account<'info, Exchange>>,
    #[account(mut, has_one = exchange @ BackstopError::WrongExchange)]
    pub market: Box<Account<'info, PerpMarket>>,
}

/// Queues new market parameters (bounded, each rate within one step of today's).
pub fn update_market_params(ctx: Context<UpdateMarket>, params: MarketParams) -> Result<()> {
    let now = now()?;
    let ready_at = ready_at(&ctx.accounts.exchange, now)?;
    let quote_decimals = ctx.accounts.exchange.collateral_decimals;
    let market = &mut ctx.accounts.market;
    require!(
        !market.queued_params.active,
        BackstopError::ChangeAlreadyQueued
    );
    params.validate()?;
    params.validate_step(
        &market.params,
        crate::math::margin::imf_reference_atoms(
            market.base_decimals,
            quote_decimals,
            market.last_price,
        ),
    )?;
    market.queued_params = QueuedMarketParams {
        active: true,
        params,
        queued_at: now,
        ready_at,
    };
    crate::events::emit(MarketParamsQueued {
        market: market.key(),
        old: market.params,
        new: params,
        ready_at,
    });
    Ok(())
}

/// Applies a market's queued parameters once due.
pub fn apply_market_params(ctx: Context<ApplyMarket>) -> Result<()> {
    let now = now()?;
    let market = &mut ctx.accounts.market;
    let q = market.queued_params;
    require!(q.active, BackstopError::NothingQueued);
    let ex = &ctx.accounts.exchange;
    let paused =
        ex.is_paused(PAUSE_TRADING, now) || market.pause_in_force(ex.params.max_pause_secs, now);
    check_due(
        ex,
        q.ready_at,
        paused,
        ex.paused_at.max(market.paused_at),
        now,
    )?;
    let old = market.params;
    market.params = q.params;
    market.queued_params = QueuedMarketParams::default();
    crate::events::emit(MarketParamsUpdated {
        market: market.key(),
        old,
        new: q.params,
    });
    Ok(())
}

/// The admin withdraws a market's queued change.
pub fn cancel_market_params(ctx: Context<UpdateMarket>) -> Result<()> {
    let market = &mut ctx.accounts.market;
    require!(market.queued_params.active, BackstopError::NothingQueued);
    market.queued_params = QueuedMarketParams::default();
    crate::events::emit(ChangeCancelled {
        exchange: ctx.accounts.exchange.key(),
        target: market.key(),
        kind: ChangeKind::MarketParams,
    });
    Ok(())
}

/// Pauses a market at once (open interest frozen) or lifts its pause; the exchange's
/// `max_pause_secs` bounds how long it lasts.
pub fn set_market_paused(ctx: Context<UpdateMarket>, paused: bool) -> Result<()> {
    let now = now()?;
    let max_pause_secs = ctx.accounts.exchange.params.max_pause_secs;
    let market = &mut ctx.accounts.market;
    market.pause_started_at = next_pause_start(
        market.paused,
        market.pause_started_at,
        paused,
        max_pause_secs,
        now,
    )?;
    market.paused = paused;
    market.paused_at = now;
    crate::events::emit(MarketPausedSet {
        market: market.key(),
        paused,
        max_pause_secs,
    });
    Ok(())
}
