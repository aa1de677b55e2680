//! Token movements, invariant checks and epoch transitions shared by the instructions.

use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::error::BackstopError;
use crate::events::{EpochClosed, RoundEnded};
use crate::math::safe::{cast, SafeMath};
use crate::state::{EpochPhase, Exchange, ExchangeSeeds, PerpMarket};

pub fn now() -> Result<i64> {
    Ok(Clock::get()?.unix_timestamp)
}

/// Moves `amount` out of one of the exchange's token accounts (vault or insurance vault),
/// signed by the exchange PDA. A zero amount is a no-op.
pub fn transfer_from_exchange<'info>(
    token_program: &Program<'info, Token>,
    from: &Account<'info, TokenAccount>,
    to: AccountInfo<'info>,
    exchange_info: AccountInfo<'info>,
    seeds: &ExchangeSeeds,
    amount: u64,
) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    let seeds = seeds.as_slices();
    let signer: &[&[&[u8]]] = &[&seeds];
    token::transfer(
        CpiContext::new_with_signer(
            token_program.key(),
            Transfer {
                from: from.to_account_info(),
                to,
                authority: exchange_info,
            },
            signer,
        ),
        amount,
    )
}

/// Moves `amount` from a user's token account, signed by `authority`.
pub fn transfer_from_user<'info>(
    token_program: &Program<'info, Token>,
    from: AccountInfo<'info>,
    to: AccountInfo<'info>,
    authority: AccountInfo<'info>,
    amount: u64,
) -> Result<()> {
    token::transfer(
        CpiContext::new(
            token_program.key(),
            Transfer {
                from,
                to,
                authority,
            },
        ),
        amount,
    )
}

/// I1 on the books: vault_balance + deficit == Σ capital + Σ pnl − Σ quote_basis.
pub fn check_books(ex: &Exchange) -> Result<()> {
    let lhs = (ex.vault_balance as i128).safe_add(ex.deficit as i128)?;
    let rhs = cast::<u128, i128>(ex.total_capital)?
        .safe_add(ex.total_pnl)?
        .safe_sub(ex.total_basis)?;
    if lhs != rhs {
        crate::log!(
            "I1 violated: vault {} + deficit {} != capital {} + pnl {} - basis {}",
            ex.vault_balance,
            ex.deficit,
            ex.total_capital,
            ex.total_pnl,
            ex.total_basis
        );
        return err!(BackstopError::ConservationViolated);
    }
    Ok(())
}

/// I1 and I3 against the real token balances, after the instruction's transfers:
/// the books balance, and neither vault holds less than the books say. (A vault may hold
/// *more* only through a direct donation, which `sweep_surplus` books; tests assert
/// equality.)
pub fn check_invariants(
    ex: &Exchange,
    vault: &mut Account<TokenAccount>,
    insurance_vault: &mut Account<TokenAccount>,
) -> Result<()> {
    vault.reload()?;
    insurance_vault.reload()?;
    check_books(ex)?;
    require!(
        vault.amount >= ex.vault_balance,
        BackstopError::VaultMismatch
    );
    require!(
        insurance_vault.amount >= ex.insurance_balance,
        BackstopError::InsuranceMismatch
    );
    Ok(())
}

/// I2: Σ base_qty = 0 in the market, i.e. long OI == short OI.
pub fn check_zero_sum(market: &PerpMarket) -> Result<()> {
    require!(
        market.long_open_interest == market.short_open_interest,
        BackstopError::ZeroSumViolated
    );
    Ok(())
}

/// Deficit is zero: the epoch closes and the exchange returns to `Normal`.
pub fn close_epoch(ex: &mut Exchange, exchange_key: Pubkey) {
    let e = &mut ex.epoch;
    crate::events::emit(EpochClosed {
        exchange: exchange_key,
        epoch_id: e.epoch_id,
        rounds: e.rounds_in_epoch,
        deficit_opened: e.epoch_deficit_opened,
        clawed_back: e.epoch_charged,
        covered: e.epoch_covered,
    });
    e.phase = EpochPhase::Normal;
    e.epoch_id += 1;
    e.rounds_in_epoch = 0;
    e.epoch_deficit_opened = 0;
    e.epoch_charged = 0;
    e.epoch_covered = 0;
}

/// Ends the current round: `Normal` if the deficit is gone, otherwise back to `BadDebt`
/// with a cooldown before the next round.
pub fn end_round(ex: &mut Exchange, exchange_key: Pubkey, now: i64) -> Result<()> {
    let cooldown_until = now.safe_add(ex.params.round_cooldown_secs as i64)?;
    crate::events::emit(RoundEnded {
        exchange: exchange_key,
        epoch_id: ex.epoch.epoch_id,
        round: ex.epoch.round_seq,
        charged: ex.epoch.round_charged,
        to_insurance: ex.epoch.round_to_insurance,
        deficit_after: ex.deficit,
        cooldown_until,
    });
    if ex.deficit == 0 {
        close_epoch(ex, exchange_key);
    } else {
        ex.epoch.phase = EpochPhase::BadDebt;
        ex.epoch.cooldown_until = cooldown_until;
    }
    Ok(())
}
