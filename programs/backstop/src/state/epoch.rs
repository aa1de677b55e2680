//! The bad-debt epoch state machine (docs/DESIGN.md §6) as methods on its state.
//!
//! Every transition lives here — open, can-begin, begin round, record tally, finalize,
//! apply charge, end round, close — and returns the event it causes; handlers emit it.
//! The keeper and the test harness ask the same methods what is due next
//! (`can_begin`, `due_for_tally`, `due_for_clawback`), so no copy of a rule lives
//! outside the program. Each method changes nothing when it refuses.

use anchor_lang::prelude::*;

use crate::error::BackstopError;
use crate::events::{
    ClawbackApplied, EpochClosed, EpochOpened, RoundEnded, RoundStarted, TallyFinalized,
    TallyRecorded,
};
use crate::math::clawback::{round_rate, Basis, Policy, Rate, Weight};
use crate::math::safe::SafeMath;
use crate::state::{ClawbackRecord, ExchangeParams};

#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub enum ClawbackPolicy {
    #[default]
    ProfitProRata,
    LeverageWeighted,
}

impl From<ClawbackPolicy> for Policy {
    fn from(p: ClawbackPolicy) -> Self {
        match p {
            ClawbackPolicy::ProfitProRata => Policy::ProfitProRata,
            ClawbackPolicy::LeverageWeighted => Policy::LeverageWeighted,
        }
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub enum EpochPhase {
    /// No deficit.
    Normal,
    /// Deficit > 0: positive pnl frozen, capital withdrawals limited, insurance locked,
    /// trades only at the oracle price.
    BadDebt,
    /// A round's first pass: `tally` records weights at the round's price snapshot. Any
    /// instruction that changes an untallied account tallies it first (touch first);
    /// nothing else is refused.
    Tallying,
    /// A round's second pass: `clawback` charges each tallied account; any instruction
    /// that changes an account owing a charge applies that charge first.
    Applying,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub enum ClawbackBasis {
    Profit,
    Capital,
}

impl From<Basis> for ClawbackBasis {
    fn from(b: Basis) -> Self {
        match b {
            Basis::Profit => ClawbackBasis::Profit,
            Basis::Capital => ClawbackBasis::Capital,
        }
    }
}

/// The bad-debt epoch state machine (docs/DESIGN.md §6).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq, InitSpace)]
pub struct EpochState {
    pub phase: EpochPhase,
    /// Id of the current bad-debt epoch (or of the next one while `Normal`).
    pub epoch_id: u64,
    pub epoch_opened_at: i64,
    /// Global, never reused round counter: account tallies and receipts refer to it.
    pub round_seq: u64,
    /// Rounds run in the current epoch.
    pub rounds_in_epoch: u32,
    pub round_started_at: i64,
    /// `begin_clawback` is refused before this time (cooldown after a round).
    pub cooldown_until: i64,
    /// Policy and cap frozen for the round at `begin_clawback`.
    pub policy: ClawbackPolicy,
    pub rate_cap_bps: u16,
    /// Accounts that existed at `begin_clawback` and are not tallied yet: when it reaches
    /// zero the round may always finalize (the exit that needs no counter to be right).
    pub untallied: u32,
    /// Of those, the accounts able to carry profit weight at `begin_clawback` (open
    /// positions or positive pnl), and the accounts that had capital: a profit-basis
    /// round finalizes once the first reaches zero, a capital-basis round once both do.
    pub profit_pending: u32,
    pub capital_pending: u32,
    pub tallied: u32,
    pub profit_weight_total: u128,
    pub profit_weighted_accounts: u32,
    pub capital_weight_total: u128,
    pub capital_weighted_accounts: u32,
    /// Fixed at `finalize_tally`.
    pub basis: ClawbackBasis,
    pub deficit_at_finalize: u64,
    pub rate_num: u128,
    pub rate_den: u128,
    pub to_apply: u32,
    pub applied: u32,
    /// Charged in this round, and the part of it that went to the insurance fund.
    pub round_charged: u64,
    pub round_to_insurance: u64,
    /// Totals over the epoch.
    pub epoch_deficit_opened: u64,
    pub epoch_charged: u64,
    pub epoch_covered: u64,
    /// The totals of the last epoch that closed (what `EpochClosed` said), kept so users
    /// see how the last bad debt was settled after the counters above restart.
    pub last_closed: ClosedEpoch,
}

/// The counts a round's tallies are measured against, taken at `begin_clawback`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TallyCounts {
    pub accounts: u32,
    pub profit_capable: u32,
    pub with_capital: u32,
}

/// What an account counts as (`MarginAccount::standing`): kept in step with the
/// exchange's counters by `engine::track`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Flat with capital + pnl < 0.
    pub bankrupt: bool,
    /// An open position or positive pnl: the account can carry profit weight.
    pub profit_capable: bool,
    /// Capital > 0.
    pub has_capital: bool,
}

/// Summary of a closed bad-debt epoch.
#[derive(
    AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq, InitSpace,
)]
pub struct ClosedEpoch {
    pub epoch_id: u64,
    pub rounds: u32,
    pub deficit_opened: u64,
    pub clawed_back: u64,
    pub covered: u64,
}

impl EpochState {
    pub fn rate(&self) -> Rate {
        Rate {
            num: self.rate_num,
            den: self.rate_den,
        }
    }

    /// Whether a clawback round (Tallying or Applying) is in progress.
    pub fn in_round(&self) -> bool {
        matches!(self.phase, EpochPhase::Tallying | EpochPhase::Applying)
    }

    fn empty() -> Self {
        EpochState {
            phase: EpochPhase::Normal,
            epoch_id: 1,
            epoch_opened_at: 0,
            round_seq: 0,
            rounds_in_epoch: 0,
            round_started_at: 0,
            cooldown_until: 0,
            policy: ClawbackPolicy::ProfitProRata,
            rate_cap_bps: 0,
            untallied: 0,
            profit_pending: 0,
            capital_pending: 0,
            tallied: 0,
            profit_weight_total: 0,
            profit_weighted_accounts: 0,
            capital_weight_total: 0,
            capital_weighted_accounts: 0,
            basis: ClawbackBasis::Profit,
            deficit_at_finalize: 0,
            rate_num: 0,
            rate_den: 1,
            to_apply: 0,
            applied: 0,
            round_charged: 0,
            round_to_insurance: 0,
            epoch_deficit_opened: 0,
            epoch_charged: 0,
            epoch_covered: 0,
            last_closed: ClosedEpoch::default(),
        }
    }
}

impl Default for EpochState {
    fn default() -> Self {
        Self::empty()
    }
}

/// What ending a round led to: the round's summary, and the epoch's when it closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundOutcome {
    pub ended: RoundEnded,
    pub closed: Option<EpochClosed>,
}

impl EpochState {
    /// A loss of `added` atoms joined the deficit (now `deficit`). Counts it in the
    /// epoch's total and, if the exchange was `Normal`, opens a bad-debt epoch.
    pub fn open(
        &mut self,
        exchange: Pubkey,
        added: u64,
        deficit: u64,
        now: i64,
    ) -> Result<Option<EpochOpened>> {
        if added == 0 {
            return Ok(None);
        }
        self.epoch_deficit_opened = self.epoch_deficit_opened.safe_add(added)?;
        if self.phase != EpochPhase::Normal {
            return Ok(None);
        }
        self.phase = EpochPhase::BadDebt;
        self.epoch_opened_at = now;
        self.rounds_in_epoch = 0;
        self.cooldown_until = 0;
        Ok(Some(EpochOpened {
            exchange,
            epoch_id: self.epoch_id,
            deficit,
            opened_at: now,
        }))
    }

    /// Whether a round may begin at `now`: in `BadDebt` with a deficit, once the epoch is
    /// `min_epoch_secs` old and any cooldown after the previous round has passed. The
    /// error says which condition fails.
    pub fn can_begin(&self, deficit: u64, params: &ExchangeParams, now: i64) -> Result<()> {
        require!(
            self.phase == EpochPhase::BadDebt,
            BackstopError::WrongEpochPhase
        );
        require!(deficit > 0, BackstopError::NoDeficit);
        let ready_at = self
            .epoch_opened_at
            .safe_add(i64::from(params.min_epoch_secs))?;
        require!(
            now >= ready_at && now >= self.cooldown_until,
            BackstopError::EpochNotReady
        );
        Ok(())
    }

    /// `BadDebt → Tallying`: freezes the policy and rate cap for the round, and the
    /// tallies it needs — `counts` of the accounts that exist, that can carry profit
    /// weight and that have capital — and resets the round's totals. The caller records
    /// the round's price snapshot.
    pub fn begin_round(
        &mut self,
        exchange: Pubkey,
        deficit: u64,
        params: &ExchangeParams,
        counts: TallyCounts,
        now: i64,
    ) -> Result<RoundStarted> {
        self.can_begin(deficit, params, now)?;
        let round_seq = self.round_seq.safe_add(1)?;
        let rounds_in_epoch = self.rounds_in_epoch.safe_add(1)?;
        // Everything a round accumulates starts from zero; what the epoch carries over
        // (ids, opening time, epoch totals, cooldown) is kept.
        *self = EpochState {
            phase: EpochPhase::Tallying,
            round_seq,
            rounds_in_epoch,
            round_started_at: now,
            policy: params.clawback_policy,
            rate_cap_bps: params.clawback_rate_cap_bps,
            untallied: counts.accounts,
            profit_pending: counts.profit_capable,
            capital_pending: counts.with_capital,
            epoch_id: self.epoch_id,
            epoch_opened_at: self.epoch_opened_at,
            cooldown_until: self.cooldown_until,
            epoch_deficit_opened: self.epoch_deficit_opened,
            epoch_charged: self.epoch_charged,
            epoch_covered: self.epoch_covered,
            last_closed: self.last_closed,
            ..EpochState::empty()
        };
        Ok(RoundStarted {
            exchange,
            epoch_id: self.epoch_id,
            round: self.round_seq,
            deficit,
            accounts: counts.accounts,
            profit_accounts: counts.profit_capable,
            capital_accounts: counts.with_capital,
            rate_cap_bps: self.rate_cap_bps,
        })
    }

    /// Whether an account with clawback record `rec` is not tallied yet this round.
    pub fn due_for_tally(&self, rec: &ClawbackRecord) -> bool {
        self.phase == EpochPhase::Tallying && rec.tally_round != self.round_seq
    }

    /// Whether the round still needs this untallied account's tally to finalize: it can
    /// carry profit weight, or it has capital and no tallied account had profit weight
    /// yet. Keepers tally these (largest first); others may be tallied but need not be.
    pub fn needs_tally(&self, rec: &ClawbackRecord, standing: Standing) -> bool {
        self.due_for_tally(rec)
            && (standing.profit_capable || (standing.has_capital && self.profit_weight_total == 0))
    }

    /// The policy frozen for this round, as the math module's type.
    pub fn round_policy(&self) -> Policy {
        self.policy.into()
    }

    /// Records one account's weights: `profit` under the round's policy (with its cap,
    /// the positive PnL) and `capital` (the capital-basis weight), and counts the tally
    /// against what the round needs; `at_begin` is the account's standing at
    /// `begin_clawback` (touch first keeps an untallied account as it was then).
    pub fn record_tally(
        &mut self,
        account: Pubkey,
        rec: &mut ClawbackRecord,
        profit: Weight,
        capital: u64,
        at_begin: Standing,
    ) -> Result<TallyRecorded> {
        require!(
            self.phase == EpochPhase::Tallying,
            BackstopError::WrongEpochPhase
        );
        require!(
            rec.tally_round != self.round_seq,
            BackstopError::AlreadyTallied
        );
        // Every new total is computed before anything is written: a refusal changes nothing.
        let tallied = self.tallied.safe_add(1)?;
        let (mut pw_total, mut pw_count) =
            (self.profit_weight_total, self.profit_weighted_accounts);
        if profit.weight > 0 {
            pw_total = pw_total.safe_add(profit.weight)?;
            pw_count = pw_count.safe_add(1)?;
        }
        let (mut cw_total, mut cw_count) =
            (self.capital_weight_total, self.capital_weighted_accounts);
        if capital > 0 {
            cw_total = cw_total.safe_add(u128::from(capital))?;
            cw_count = cw_count.safe_add(1)?;
        }
        // Saturating: a miscount must never block a tally (the `untallied` exit stays).
        self.untallied = self.untallied.saturating_sub(1);
        if at_begin.profit_capable {
            self.profit_pending = self.profit_pending.saturating_sub(1);
        }
        if at_begin.has_capital {
            self.capital_pending = self.capital_pending.saturating_sub(1);
        }
        self.tallied = tallied;
        self.profit_weight_total = pw_total;
        self.profit_weighted_accounts = pw_count;
        self.capital_weight_total = cw_total;
        self.capital_weighted_accounts = cw_count;
        rec.tally_round = self.round_seq;
        rec.profit_weight = profit.weight;
        rec.profit_cap = profit.cap;
        rec.capital_weight = capital;
        Ok(TallyRecorded {
            account,
            round: self.round_seq,
            profit_weight: profit.weight,
            profit_cap: profit.cap,
            capital,
        })
    }

    /// Marks an account created during this round as tallied with no weight: it did not
    /// exist at `begin_clawback`, so it owes nothing this round.
    pub fn born_tallied(&self, rec: &mut ClawbackRecord) {
        if self.in_round() {
            rec.tally_round = self.round_seq;
        }
    }

    /// Every tally the round needs is in: all accounts that could carry profit weight
    /// and, when none of them has any, all accounts with capital — or simply every
    /// account that existed at `begin_clawback`.
    pub fn tally_complete(&self) -> bool {
        let profit_done = self.profit_pending == 0;
        let basis_known = self.profit_weight_total > 0 || self.capital_pending == 0;
        (profit_done && basis_known) || self.untallied == 0
    }

    /// `Tallying → Applying` once every counted account is tallied: fixes the basis
    /// (profit when any account has profit weight, else capital — principal last) and
    /// the exact rate r = min(rate_cap, deficit / Σw). With nothing to charge the round
    /// is complete at once ([`EpochState::round_complete`]) and the caller ends it.
    pub fn finalize(&mut self, exchange: Pubkey, deficit: u64) -> Result<TallyFinalized> {
        require!(
            self.phase == EpochPhase::Tallying,
            BackstopError::WrongEpochPhase
        );
        require!(self.tally_complete(), BackstopError::TallyIncomplete);
        let (basis, total, count) = if self.profit_weight_total > 0 {
            (
                ClawbackBasis::Profit,
                self.profit_weight_total,
                self.profit_weighted_accounts,
            )
        } else {
            (
                ClawbackBasis::Capital,
                self.capital_weight_total,
                self.capital_weighted_accounts,
            )
        };
        let rate = round_rate(deficit, total, self.rate_cap_bps)?;
        self.phase = EpochPhase::Applying;
        self.basis = basis;
        self.deficit_at_finalize = deficit;
        self.rate_num = rate.num;
        self.rate_den = rate.den;
        self.to_apply = if rate.num == 0 { 0 } else { count };
        self.applied = 0;
        Ok(TallyFinalized {
            exchange,
            epoch_id: self.epoch_id,
            round: self.round_seq,
            basis_is_capital: basis == ClawbackBasis::Capital,
            deficit,
            total_weight: total,
            rate_num: rate.num,
            rate_den: rate.den,
            accounts_to_apply: self.to_apply,
        })
    }

    /// The weight an account with record `rec` and `capital` now carries in this round's
    /// basis, with its cap (a capital charge never exceeds the capital still there).
    pub fn charge_weight(&self, rec: &ClawbackRecord, capital: u64) -> Weight {
        match self.basis {
            ClawbackBasis::Profit => Weight {
                weight: rec.profit_weight,
                cap: rec.profit_cap,
            },
            ClawbackBasis::Capital => Weight {
                weight: u128::from(rec.capital_weight),
                cap: rec.capital_weight.min(capital),
            },
        }
    }

    /// Whether an account with record `rec` still owes a charge in this round: tallied,
    /// weighted in the round's basis, not yet charged.
    pub fn due_for_clawback(&self, rec: &ClawbackRecord) -> bool {
        let weighted = match self.basis {
            ClawbackBasis::Profit => rec.profit_weight > 0,
            ClawbackBasis::Capital => rec.capital_weight > 0,
        };
        self.phase == EpochPhase::Applying
            && rec.tally_round == self.round_seq
            && weighted
            && rec.applied_round != self.round_seq
    }

    /// Whether an account with record `rec` owes, or may owe, a charge in the round in
    /// progress: tallied with weight (in the round's basis once it is fixed) and not
    /// charged yet. Such an account cannot close: the round counts on its charge.
    pub fn owes(&self, rec: &ClawbackRecord) -> bool {
        let weighted = match self.phase {
            EpochPhase::Tallying => rec.profit_weight > 0 || rec.capital_weight > 0,
            EpochPhase::Applying => match self.basis {
                ClawbackBasis::Profit => rec.profit_weight > 0,
                ClawbackBasis::Capital => rec.capital_weight > 0,
            },
            _ => false,
        };
        weighted && rec.tally_round == self.round_seq && rec.applied_round != self.round_seq
    }

    /// Checks that an account with record `rec` may be charged now and returns its
    /// weight; the error says why not.
    pub fn chargeable(&self, rec: &ClawbackRecord, capital: u64) -> Result<Weight> {
        require!(
            self.phase == EpochPhase::Applying,
            BackstopError::WrongEpochPhase
        );
        require!(rec.tally_round == self.round_seq, BackstopError::NotTallied);
        require!(
            rec.applied_round != self.round_seq,
            BackstopError::AlreadyClawedBack
        );
        let w = self.charge_weight(rec, capital);
        require!(w.weight > 0, BackstopError::NothingToClawBack);
        Ok(w)
    }

    /// Records a charge of `amount` on an account (weight `w`, record `rec`), of which
    /// `to_deficit` reduced the deficit and the rest went to the insurance fund: writes
    /// the receipt and the round's and epoch's totals.
    pub fn apply_charge(
        &mut self,
        account: Pubkey,
        owner: Pubkey,
        rec: &mut ClawbackRecord,
        w: Weight,
        amount: u64,
        to_deficit: u64,
    ) -> Result<ClawbackApplied> {
        let to_insurance = amount.safe_sub(to_deficit)?;
        let applied = self.applied.safe_add(1)?;
        let round_charged = self.round_charged.safe_add(amount)?;
        let round_to_insurance = self.round_to_insurance.safe_add(to_insurance)?;
        let epoch_charged = self.epoch_charged.safe_add(amount)?;
        let lifetime_total = rec.lifetime_total.safe_add(amount)?;
        let rate = self.rate();
        let capital_basis = self.basis == ClawbackBasis::Capital;
        *rec = ClawbackRecord {
            applied_round: self.round_seq,
            last_epoch: self.epoch_id,
            last_round: self.round_seq,
            last_basis_is_capital: capital_basis,
            last_weight: w.weight,
            last_rate_num: rate.num,
            last_rate_den: rate.den,
            last_amount: amount,
            lifetime_total,
            ..*rec
        };
        self.applied = applied;
        self.round_charged = round_charged;
        self.round_to_insurance = round_to_insurance;
        self.epoch_charged = epoch_charged;
        Ok(ClawbackApplied {
            account,
            owner,
            epoch_id: self.epoch_id,
            round: self.round_seq,
            basis_is_capital: capital_basis,
            weight: w.weight,
            rate_num: rate.num,
            rate_den: rate.den,
            amount,
            to_deficit,
            to_insurance,
        })
    }

    /// Every account the round charges has been charged.
    pub fn round_complete(&self) -> bool {
        self.phase == EpochPhase::Applying && self.applied == self.to_apply
    }

    /// Ends the current round: `Normal` if the deficit is gone, otherwise back to
    /// `BadDebt` with a cooldown of `cooldown_secs` before the next round.
    pub fn end_round(
        &mut self,
        exchange: Pubkey,
        deficit: u64,
        cooldown_secs: u32,
        now: i64,
    ) -> Result<RoundOutcome> {
        require!(self.in_round(), BackstopError::WrongEpochPhase);
        let cooldown_until = now.safe_add(i64::from(cooldown_secs))?;
        let ended = RoundEnded {
            exchange,
            epoch_id: self.epoch_id,
            round: self.round_seq,
            charged: self.round_charged,
            to_insurance: self.round_to_insurance,
            deficit_after: deficit,
            cooldown_until,
        };
        let closed = if deficit == 0 {
            Some(self.close(exchange)?)
        } else {
            self.phase = EpochPhase::BadDebt;
            self.cooldown_until = cooldown_until;
            None
        };
        Ok(RoundOutcome { ended, closed })
    }

    /// A deficit cover of `paid` atoms (the deficit is now `deficit`); closes the epoch,
    /// cancelling a round being tallied, when it reaches zero.
    pub fn covered(
        &mut self,
        exchange: Pubkey,
        paid: u64,
        deficit: u64,
    ) -> Result<Option<EpochClosed>> {
        require!(
            self.phase != EpochPhase::Applying,
            BackstopError::CoverDuringApplying
        );
        self.epoch_covered = self.epoch_covered.safe_add(paid)?;
        if deficit == 0 {
            Ok(Some(self.close(exchange)?))
        } else {
            Ok(None)
        }
    }

    /// The deficit is zero: the epoch closes and the exchange returns to `Normal`.
    pub fn close(&mut self, exchange: Pubkey) -> Result<EpochClosed> {
        let closed = EpochClosed {
            exchange,
            epoch_id: self.epoch_id,
            rounds: self.rounds_in_epoch,
            deficit_opened: self.epoch_deficit_opened,
            clawed_back: self.epoch_charged,
            covered: self.epoch_covered,
        };
        self.last_closed = ClosedEpoch {
            epoch_id: self.epoch_id,
            rounds: self.rounds_in_epoch,
            deficit_opened: self.epoch_deficit_opened,
            clawed_back: self.epoch_charged,
            covered: self.epoch_covered,
        };
        self.phase = EpochPhase::Normal;
        self.epoch_id = self.epoch_id.safe_add(1)?;
        self.rounds_in_epoch = 0;
        self.epoch_deficit_opened = 0;
        self.epoch_charged = 0;
        self.epoch_covered = 0;
        Ok(closed)
    }
}
