//! Every token movement of the program, each paired with its update of the books, so a
//! transfer and its bookkeeping can never be written apart. After the moves,
//! [`Treasury::finish`] checks I1 on the books and I3 (and the vault's side of I1)
//! against the real token balances.

use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::error::BackstopError;
use crate::math::safe::SafeMath;
use crate::state::{Books, Exchange, ExchangeSeeds};

/// `Treasury::new` over an instruction's `token_program`, `vault` and `insurance_vault`
/// (the field names every Accounts struct that moves tokens uses):
/// `treasury!(accounts, exchange_info, exchange)`.
#[macro_export]
macro_rules! treasury {
    ($accounts:expr, $exchange_info:expr, $exchange:expr) => {
        $crate::engine::treasury::Treasury::new(
            $exchange_info,
            $exchange,
            &$accounts.token_program,
            &mut $accounts.vault,
            &mut $accounts.insurance_vault,
        )
    };
}

/// The exchange's two token accounts and the authority to move tokens out of them.
pub struct Treasury<'a, 'info> {
    token_program: &'a Program<'info, Token>,
    vault: &'a mut Account<'info, TokenAccount>,
    insurance_vault: &'a mut Account<'info, TokenAccount>,
    exchange: AccountInfo<'info>,
    seeds: ExchangeSeeds,
}

impl<'a, 'info> Treasury<'a, 'info> {
    /// `exchange_info` is the exchange account (the vaults' authority), `exchange` its
    /// data. The vaults are the exchange's (checked by each instruction's constraints).
    pub fn new(
        exchange_info: AccountInfo<'info>,
        exchange: &Exchange,
        token_program: &'a Program<'info, Token>,
        vault: &'a mut Account<'info, TokenAccount>,
        insurance_vault: &'a mut Account<'info, TokenAccount>,
    ) -> Self {
        Treasury {
            token_program,
            vault,
            insurance_vault,
            exchange: exchange_info,
            seeds: exchange.seeds(),
        }
    }

    /// Fees and clawback excess: vault → insurance vault.
    pub fn vault_to_insurance(&self, books: &mut Books, amount: u64) -> Result<()> {
        books.vault_out(amount)?;
        books.insurance_in(amount)?;
        self.send_from_exchange(
            self.vault.to_account_info(),
            self.insurance_vault.to_account_info(),
            amount,
        )
    }

    /// Insurance payouts into the margin pool (bankruptcies, liquidator fees):
    /// insurance vault → vault.
    pub fn insurance_to_vault(&self, books: &mut Books, amount: u64) -> Result<()> {
        books.insurance_out(amount)?;
        books.vault_in(amount)?;
        self.send_from_exchange(
            self.insurance_vault.to_account_info(),
            self.vault.to_account_info(),
            amount,
        )
    }

    /// A user's tokens into the vault (deposits, deficit covers), signed by `authority`.
    pub fn user_to_vault(
        &self,
        books: &mut Books,
        source: AccountInfo<'info>,
        authority: AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        // The transfer first: a user who lacks the tokens is told so by the token program.
        self.send_from_user(source, self.vault.to_account_info(), authority, amount)?;
        books.vault_in(amount)
    }

    /// A user's tokens into the insurance vault (contributions), signed by `authority`.
    pub fn user_to_insurance(
        &self,
        books: &mut Books,
        source: AccountInfo<'info>,
        authority: AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        self.send_from_user(
            source,
            self.insurance_vault.to_account_info(),
            authority,
            amount,
        )?;
        books.insurance_in(amount)
    }

    /// Withdrawals: vault → a user's token account.
    pub fn vault_to_user(
        &self,
        books: &mut Books,
        destination: AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        books.vault_out(amount)?;
        self.send_from_exchange(self.vault.to_account_info(), destination, amount)
    }

    /// Insurance withdrawals: insurance vault → a token account.
    pub fn insurance_to_user(
        &self,
        books: &mut Books,
        destination: AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        books.insurance_out(amount)?;
        self.send_from_exchange(self.insurance_vault.to_account_info(), destination, amount)
    }

    /// Books tokens sent straight to either vault into the insurance fund: the vault's
    /// surplus moves to the insurance vault, and the insurance balance becomes what that
    /// vault holds. Returns (vault surplus, insurance surplus).
    pub fn sweep_surplus(&mut self, books: &mut Books) -> Result<(u64, u64)> {
        let vault_surplus = self.vault.amount.safe_sub(books.vault_balance)?;
        self.send_from_exchange(
            self.vault.to_account_info(),
            self.insurance_vault.to_account_info(),
            vault_surplus,
        )?;
        self.insurance_vault.reload()?;
        let held = self.insurance_vault.amount;
        let insurance_surplus = held
            .safe_sub(books.insurance_balance)?
            .safe_sub(vault_surplus)?;
        books.insurance_balance = held;
        Ok((vault_surplus, insurance_surplus))
    }

    /// I1 on the books, and both vaults hold at least what the books say (a vault may
    /// hold *more* only through a direct donation, which `sweep_surplus` books; the tests
    /// assert equality). Call after the instruction's last movement.
    pub fn finish(self, books: &Books) -> Result<()> {
        self.vault.reload()?;
        self.insurance_vault.reload()?;
        books.check()?;
        require!(
            self.vault.amount >= books.vault_balance,
            BackstopError::VaultMismatch
        );
        require!(
            self.insurance_vault.amount >= books.insurance_balance,
            BackstopError::InsuranceMismatch
        );
        Ok(())
    }

    /// Moves `amount` out of one of the exchange's token accounts, signed by the exchange
    /// PDA. A zero amount is a no-op.
    fn send_from_exchange(
        &self,
        from: AccountInfo<'info>,
        to: AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        if amount == 0 {
            return Ok(());
        }
        let seeds = self.seeds.as_slices();
        let signer: &[&[&[u8]]] = &[&seeds];
        token::transfer(
            CpiContext::new_with_signer(
                self.token_program.key(),
                Transfer {
                    from,
                    to,
                    authority: self.exchange.clone(),
                },
                signer,
            ),
            amount,
        )
    }

    /// Moves `amount` from a user's token account, signed by `authority`.
    fn send_from_user(
        &self,
        from: AccountInfo<'info>,
        to: AccountInfo<'info>,
        authority: AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        token::transfer(
            CpiContext::new(
                self.token_program.key(),
                Transfer {
                    from,
                    to,
                    authority,
                },
            ),
            amount,
        )
    }
}
