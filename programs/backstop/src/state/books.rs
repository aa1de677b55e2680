//! The exchange's books: every aggregate the conservation invariant I1 is stated over,
//! kept as one value so that no instruction can update one sum and forget another.
//!
//! Only the engine changes the books: margin-account changes go through
//! `MarginAccount::{add_pnl, add_capital}` (which take `&mut Books`), token movements
//! through `engine::treasury::Treasury` (which updates the books and performs the token
//! transfer together), deficit changes through the methods below.

use anchor_lang::prelude::*;

use crate::error::BackstopError;
use crate::math::safe::{cast, SafeMath};

/// Σ capital, Σ pnl, Σ quote basis, the balances both vaults should hold, and the
/// deficit (docs/DESIGN.md §7, I1 and I3). Field order is the on-chain layout.
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub struct Books {
    /// Σ capital over all margin accounts.
    pub total_capital: u128,
    /// Σ pnl over all margin accounts.
    pub total_pnl: i128,
    /// Σ quote_basis over all positions.
    pub total_basis: i128,
    /// Vault balance the books expect (the vault's token amount may only exceed it by
    /// direct donations, which `sweep_surplus` books into the insurance fund).
    pub vault_balance: u64,
    /// Insurance fund balance (I3).
    pub insurance_balance: u64,
    /// Loss not yet covered by insurance or clawback.
    pub deficit: u64,
}

impl Books {
    /// I1 on the books: vault_balance + deficit == Σ capital + Σ pnl − Σ quote_basis.
    pub fn check(&self) -> Result<()> {
        let lhs = i128::from(self.vault_balance).safe_add(i128::from(self.deficit))?;
        let rhs = cast::<u128, i128>(self.total_capital)?
            .safe_add(self.total_pnl)?
            .safe_sub(self.total_basis)?;
        if lhs != rhs {
            crate::log!(
                "I1 violated: vault {} + deficit {} != capital {} + pnl {} - basis {}",
                self.vault_balance,
                self.deficit,
                self.total_capital,
                self.total_pnl,
                self.total_basis
            );
            return err!(BackstopError::ConservationViolated);
        }
        Ok(())
    }

    /// A loss nobody could pay joins the deficit.
    pub fn add_deficit(&mut self, amount: u64) -> Result<()> {
        self.deficit = self.deficit.safe_add(amount)?;
        Ok(())
    }

    /// Reduces the deficit by at most `amount`; returns the part that reduced it (the
    /// rest, if any, is excess the caller must book elsewhere).
    pub fn reduce_deficit(&mut self, amount: u64) -> u64 {
        let taken = amount.min(self.deficit);
        // `taken ≤ deficit`: cannot underflow.
        self.deficit = self.deficit.saturating_sub(taken);
        taken
    }

    // Balance moves. Each pairs with exactly one token transfer in `Treasury`; they are
    // public so that off-chain simulations can replay an instruction's books exactly.

    /// Tokens entered the vault (a deposit, a deficit cover, an insurance payout).
    pub fn vault_in(&mut self, amount: u64) -> Result<()> {
        self.vault_balance = self.vault_balance.safe_add(amount)?;
        Ok(())
    }

    /// Tokens left the vault.
    pub fn vault_out(&mut self, amount: u64) -> Result<()> {
        self.vault_balance = self.vault_balance.safe_sub(amount)?;
        Ok(())
    }

    /// Tokens entered the insurance vault.
    pub fn insurance_in(&mut self, amount: u64) -> Result<()> {
        self.insurance_balance = self.insurance_balance.safe_add(amount)?;
        Ok(())
    }

    /// Tokens left the insurance vault; refused beyond its balance.
    pub fn insurance_out(&mut self, amount: u64) -> Result<()> {
        require!(
            amount <= self.insurance_balance,
            BackstopError::InsufficientInsurance
        );
        self.insurance_balance = self.insurance_balance.safe_sub(amount)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conservation_holds_and_a_one_atom_drift_is_caught() {
        let mut b = Books {
            total_capital: 1_000,
            total_pnl: -200,
            total_basis: 100,
            vault_balance: 650,
            insurance_balance: 0,
            deficit: 50,
        };
        assert!(b.check().is_ok());
        b.vault_balance += 1;
        assert!(b.check().is_err());
    }

    #[test]
    fn deficit_reduction_never_goes_below_zero() {
        let mut b = Books {
            deficit: 10,
            ..Books::default()
        };
        assert_eq!(b.reduce_deficit(4), 4);
        assert_eq!(b.reduce_deficit(9), 6);
        assert_eq!(b.deficit, 0);
        assert!(b.insurance_out(1).is_err());
    }
}
