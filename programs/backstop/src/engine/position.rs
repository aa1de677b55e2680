//! Position changes: one fill function for every instruction that moves a position
//! (`trade`, `liquidate`) and for the keeper's simulation of a takeover, and the
//! mark-to-price that `settle_pnl` performs.

use anchor_lang::prelude::*;

use crate::error::BackstopError;
use crate::math::fixed::value_floor;
use crate::math::safe::{cast, SafeMath};
use crate::math::trade;
use crate::state::{Books, MarginAccount, PerpMarket, PnlClock, Position};

/// One side of a fill: `base_delta` base atoms (positive: bought) for `quote_delta`
/// quote atoms added to the position's basis (positive: paid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub market_index: u16,
    pub base_delta: i64,
    pub quote_delta: i64,
}

impl Fill {
    /// The other side of this fill (the counterparty's).
    pub fn opposite(&self) -> Result<Fill> {
        Ok(Fill {
            market_index: self.market_index,
            base_delta: self
                .base_delta
                .checked_neg()
                .ok_or(BackstopError::MathOverflow)?,
            quote_delta: self
                .quote_delta
                .checked_neg()
                .ok_or(BackstopError::MathOverflow)?,
        })
    }
}

/// Applies `fill` to `account` in `market`: updates the position slot (opening a free
/// one if needed, freeing it when the position goes flat), the market's open interest,
/// the books' Σ basis, and — when the position closes — realizes the basis into pnl.
/// Refuses a fill for another market.
pub fn fill(
    account: &mut MarginAccount,
    market: &mut PerpMarket,
    books: &mut Books,
    fill: Fill,
    clock: PnlClock,
) -> Result<()> {
    require!(
        fill.market_index == market.index,
        BackstopError::WrongMarket
    );
    let slot = account.position_slot(fill.market_index)?;
    let (old_base, old_basis) = (slot.base_qty, slot.quote_basis);
    let r = trade::apply_fill(old_base, old_basis, fill.base_delta, fill.quote_delta)?;
    let long_oi = market
        .long_open_interest
        .safe_sub(trade::long_oi(old_base))?
        .safe_add(trade::long_oi(r.base_qty))?;
    let short_oi = market
        .short_open_interest
        .safe_sub(trade::short_oi(old_base))?
        .safe_add(trade::short_oi(r.base_qty))?;
    let total_basis = books
        .total_basis
        .safe_sub(i128::from(old_basis))?
        .safe_add(i128::from(r.quote_basis))?;
    *slot = if r.base_qty == 0 {
        Position::default()
    } else {
        Position {
            base_qty: r.base_qty,
            quote_basis: r.quote_basis,
            ..*slot
        }
    };
    market.long_open_interest = long_oi;
    market.short_open_interest = short_oi;
    books.total_basis = total_basis;
    account.add_pnl(r.realized, books, clock)
}

/// Both sides of one fill: `taker` gets `taker_fill`, `maker` its opposite.
pub fn fill_pair(
    taker: &mut MarginAccount,
    maker: &mut MarginAccount,
    market: &mut PerpMarket,
    books: &mut Books,
    taker_fill: Fill,
    clock: PnlClock,
) -> Result<()> {
    fill(taker, market, books, taker_fill, clock)?;
    fill(maker, market, books, taker_fill.opposite()?, clock)
}

/// Marks position slot `slot` of `account` to `price`: its basis becomes its value
/// (rounded down) and the difference moves into pnl. Σ(pnl − basis), and therefore I1,
/// is unchanged exactly. Returns the pnl delta.
pub fn mark_to_price(
    account: &mut MarginAccount,
    slot: usize,
    price: u64,
    books: &mut Books,
    clock: PnlClock,
) -> Result<i64> {
    let p = *account
        .positions
        .get(slot)
        .ok_or(BackstopError::MissingMarketAccounts)?;
    if !p.active {
        return Ok(0);
    }
    let value: i64 = cast(value_floor(p.base_qty, price)?)?;
    let delta = value.safe_sub(p.quote_basis)?;
    let total_basis = books.total_basis.safe_add(i128::from(delta))?;
    if let Some(pos) = account.positions.get_mut(slot) {
        pos.quote_basis = value;
    }
    books.total_basis = total_basis;
    account.add_pnl(delta, books, clock)?;
    Ok(delta)
}

/// I2: Σ base_qty = 0 in the market, i.e. long OI == short OI.
pub fn check_zero_sum(market: &PerpMarket) -> Result<()> {
    require!(
        market.long_open_interest == market.short_open_interest,
        BackstopError::ZeroSumViolated
    );
    Ok(())
}
