use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::accounting::{check_invariants, check_zero_sum, now, transfer_from_exchange};
use crate::constants::PAUSE_LIQUIDATIONS;
use crate::error::BackstopError;
use crate::events::Liquidated;
use crate::math::liquidation::{
    base_to_liquidate, discount_value, insurance_paid_fee, insurance_share, liquidation_price,
    LiquidationParams,
};
use crate::math::safe::{cast, SafeMath};
use crate::math::trade::taker_quote;
use crate::oracle::{read_price, PriceCache};
use crate::state::{Exchange, MarginAccount, PerpMarket};

/// Permissionless partial liquidation (DESIGN §4.1). The liquidator's own margin account
/// takes over part of the liquidatee's position in `market` at the oracle price moved by
/// `liquidation_fee_bps` in the liquidator's favour — only as much as brings the
/// liquidatee back to MM · (1 + buffer), and at most `max_base_qty`. The insurance share
/// of the discount moves to the insurance fund. When the liquidatee's equity is already
/// ≤ 0 the position moves at the oracle price and the insurance fund pays the liquidator's
/// fee instead (as far as it can). The liquidator must meet initial margin afterwards.
///
/// Remaining accounts: a (market, oracle) pair for every other market either account
/// holds a position in.
#[derive(Accounts)]
pub struct Liquidate<'info> {
    pub liquidator: Signer<'info>,
    #[account(
        mut,
        constraint = !exchange.is_paused(PAUSE_LIQUIDATIONS) @ BackstopError::Paused
    )]
    pub exchange: Account<'info, Exchange>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        constraint = liquidator_account.owner == liquidator.key() @ BackstopError::NotAccountOwner
    )]
    pub liquidator_account: Account<'info, MarginAccount>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        constraint = liquidatee_account.key() != liquidator_account.key() @ BackstopError::SelfLiquidation,
        constraint = liquidatee_account.owner != liquidator_account.owner @ BackstopError::SameOwnerLiquidation
    )]
    pub liquidatee_account: Account<'info, MarginAccount>,
    #[account(
        mut,
        has_one = exchange @ BackstopError::WrongExchange,
        has_one = oracle @ BackstopError::WrongOracle
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

pub fn handler<'info>(ctx: Context<'info, Liquidate<'info>>, max_base_qty: u64) -> Result<()> {
    require!(max_base_qty > 0, BackstopError::ZeroAmount);
    let now = now()?;
    let a = ctx.accounts;
    let exchange_info = a.exchange.to_account_info();
    let ex: &mut Exchange = &mut a.exchange;
    let seeds = ex.seeds();
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
    cache.insert(market, oracle);

    let liqee = &mut a.liquidatee_account;
    let liqor = &mut a.liquidator_account;
    let position = *liqee
        .position(idx)
        .ok_or(BackstopError::NoPositionInMarket)?;
    let before = cache.health(liqee)?;
    require!(before.is_liquidatable()?, BackstopError::NotLiquidatable);

    let discounted = before.equity > 0;
    let params = LiquidationParams {
        maintenance_margin_bps: market.params.maintenance_margin_bps,
        liquidation_fee_bps: market.params.liquidation_fee_bps,
        buffer_bps: ex.params.liquidation_buffer_bps,
        insurance_share_bps: market.params.insurance_share_bps,
    };
    let base = base_to_liquidate(
        &before,
        position.base_qty,
        oracle.price,
        &params,
        discounted,
        max_base_qty,
    )?;
    require!(base > 0, BackstopError::NothingToLiquidate);

    let was_long = position.base_qty > 0;
    let px = if discounted {
        liquidation_price(oracle.price, params.liquidation_fee_bps, was_long)?
    } else {
        oracle.price
    };
    // The liquidatee is the "taker" of the closing fill: rounding goes against it.
    let base_i: i64 = cast(base)?;
    let liqee_delta = if was_long { -base_i } else { base_i };
    let quote = taker_quote(liqee_delta, px)?;
    let warmup = ex.params.pnl_warmup_secs;
    liqee.apply_fill(
        idx,
        liqee_delta,
        quote,
        &mut ex.total_basis,
        &mut ex.total_pnl,
        &mut market.long_open_interest,
        &mut market.short_open_interest,
        now,
        warmup,
    )?;
    liqor.apply_fill(
        idx,
        -liqee_delta,
        -quote,
        &mut ex.total_basis,
        &mut ex.total_pnl,
        &mut market.long_open_interest,
        &mut market.short_open_interest,
        now,
        warmup,
    )?;

    let (mut insurance_fee, mut insurance_paid) = (0u64, 0u64);
    if discounted {
        let discount = discount_value(base, oracle.price, px)?;
        insurance_fee = insurance_share(discount, params.insurance_share_bps)?;
        liqor.add_pnl(
            -cast::<u64, i64>(insurance_fee)?,
            &mut ex.total_pnl,
            now,
            warmup,
        )?;
        ex.vault_balance = ex.vault_balance.safe_sub(insurance_fee)?;
        ex.insurance_balance = ex.insurance_balance.safe_add(insurance_fee)?;
        transfer_from_exchange(
            &a.token_program,
            &a.vault,
            a.insurance_vault.to_account_info(),
            exchange_info.clone(),
            &seeds,
            insurance_fee,
        )?;
    } else {
        insurance_paid = insurance_paid_fee(
            base,
            oracle.price,
            params.liquidation_fee_bps,
            params.insurance_share_bps,
        )?
        .min(ex.insurance_balance);
        liqor.add_pnl(cast(insurance_paid)?, &mut ex.total_pnl, now, warmup)?;
        ex.insurance_balance -= insurance_paid;
        ex.vault_balance = ex.vault_balance.safe_add(insurance_paid)?;
        transfer_from_exchange(
            &a.token_program,
            &a.insurance_vault,
            a.vault.to_account_info(),
            exchange_info.clone(),
            &seeds,
            insurance_paid,
        )?;
    }

    let liqor_after = cache.health(liqor)?;
    require!(
        liqor_after.meets_initial_margin()?,
        BackstopError::LiquidatorBelowInitialMargin
    );
    let after = cache.health(liqee)?;
    check_zero_sum(market)?;
    check_invariants(ex, &mut a.vault, &mut a.insurance_vault)?;
    crate::events::emit(Liquidated {
        market_index: idx,
        liquidator: liqor.key(),
        liquidatee: liqee.key(),
        base_qty: base,
        liquidatee_was_long: was_long,
        oracle_price: oracle.price,
        liquidation_price: px,
        equity_before: cast(before.equity)?,
        equity_after: cast(after.equity)?,
        maintenance_margin_after: cast(after.maintenance_margin)?,
        insurance_fee,
        insurance_paid,
    });
    Ok(())
}
