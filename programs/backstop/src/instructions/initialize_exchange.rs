use anchor_lang::prelude::*;
use anchor_spl::token::{Mint, Token, TokenAccount};

use crate::constants::*;
use crate::events::ExchangeInitialized;
use crate::state::{
    Books, EpochState, Exchange, ExchangeParams, QueuedExchangeParams, QueuedWithdrawal,
};

/// Creates an exchange for one collateral mint, with its collateral vault and insurance
/// vault (token accounts owned by the exchange PDA).
#[derive(Accounts)]
#[instruction(id: u16)]
pub struct InitializeExchange<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,
    #[account(
        init,
        payer = admin,
        space = 8 + Exchange::INIT_SPACE,
        seeds = [EXCHANGE_SEED, admin.key().as_ref(), &id.to_le_bytes()],
        bump
    )]
    pub exchange: Box<Account<'info, Exchange>>,
    pub collateral_mint: Box<Account<'info, Mint>>,
    #[account(
        init,
        payer = admin,
        seeds = [VAULT_SEED, exchange.key().as_ref()],
        bump,
        token::mint = collateral_mint,
        token::authority = exchange,
        token::token_program = token_program
    )]
    pub vault: Box<Account<'info, TokenAccount>>,
    #[account(
        init,
        payer = admin,
        seeds = [INSURANCE_SEED, exchange.key().as_ref()],
        bump,
        token::mint = collateral_mint,
        token::authority = exchange,
        token::token_program = token_program
    )]
    pub insurance_vault: Box<Account<'info, TokenAccount>>,
    pub token_program: Program<'info, Token>,
    pub system_program: Program<'info, System>,
}

pub fn handler(ctx: Context<InitializeExchange>, id: u16, params: ExchangeParams) -> Result<()> {
    params.validate()?;
    let exchange = &mut ctx.accounts.exchange;
    exchange.set_inner(Exchange {
        admin: ctx.accounts.admin.key(),
        collateral_mint: ctx.accounts.collateral_mint.key(),
        vault: ctx.accounts.vault.key(),
        insurance_vault: ctx.accounts.insurance_vault.key(),
        id,
        bump: ctx.bumps.exchange,
        collateral_decimals: ctx.accounts.collateral_mint.decimals,
        paused: 0,
        params,
        num_accounts: 0,
        num_markets: 0,
        num_oracle_feeds: 0,
        books: Books::default(),
        epoch: EpochState::default(),
        epoch_withdrawn_total: 0,
        withdrawn_epoch: 0,
        creator: ctx.accounts.admin.key(),
        pending_admin: Pubkey::default(),
        queued_params: QueuedExchangeParams::default(),
        queued_withdrawal: QueuedWithdrawal::default(),
        paused_at: 0,
        pause_started_at: 0,
        unresolved_bankruptcies: 0,
        profit_capable_accounts: 0,
        capital_accounts: 0,
        holdback_base: 0,
        holdback_epoch: 0,
        round_prices: [0; MAX_MARKETS as usize],
        reserved: [0; 48],
    });
    crate::events::emit(ExchangeInitialized {
        exchange: exchange.key(),
        admin: exchange.admin,
        collateral_mint: exchange.collateral_mint,
        vault: exchange.vault,
        insurance_vault: exchange.insurance_vault,
    });
    Ok(())
}
