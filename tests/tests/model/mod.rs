//! The reference model: an independent, plain-integer model of one exchange, written from
//! docs/DESIGN.md (and the README's documented choices where it leaves one open: rounding
//! directions, the liquidation sizing rule, warmup re-basing, the capital-basis weight).
//! It imports nothing from the program — no Anchor types, none of the program's math — and
//! predicts, for every instruction, either the refusal (by error name) or the complete
//! state afterwards: every account's capital, pnl, position slots, warmup schedule and
//! clawback receipt, the exchange's books and epoch, open interest, the feeds, and every
//! token balance.
//!
//! Each instruction runs on a copy that is kept only if it succeeds, as the runtime does.

/// A predicted refusal: the program's error name (`"InitialMarginViolated"`), or
/// `"token:…"` for the SPL Token program's.
pub type Refusal = &'static str;
type R<T = ()> = Result<T, Refusal>;

/// Fixed-point price precision: quote atoms per base atom × 10⁹.
pub const ONE: i128 = 1_000_000_000;
const BPS: i128 = 10_000;
/// Feed prices are published with expo −6; with 6-decimal collateral and 6-decimal base
/// the fixed price is raw × 10^(−6 + 6 − 6 + 9) = raw × 1000.
const FIXED_PER_RAW: i128 = 1_000;

/// A feed's raw price (or confidence) in fixed point.
pub fn fixed(raw: i64) -> i128 {
    raw as i128 * FIXED_PER_RAW
}
const MAX_PRICE: i128 = i64::MAX as i128;
const MAX_WARMUP_SECS: u32 = 30 * 24 * 3600;

// -------------------------------------------------------------------- rounding helpers

/// ⌊a/b⌋ for b > 0.
fn floor(a: i128, b: i128) -> i128 {
    a.div_euclid(b)
}

/// ⌈a/b⌉ for b > 0.
fn ceil(a: i128, b: i128) -> i128 {
    -(-a).div_euclid(b)
}

fn i64_of(x: i128) -> R<i64> {
    i64::try_from(x).map_err(|_| "MathOverflow")
}

fn u64_of(x: i128) -> R<u64> {
    u64::try_from(x).map_err(|_| "MathOverflow")
}

// -------------------------------------------------------------------- state

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Normal,
    BadDebt,
    Tallying,
    Applying,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    pub market: u16,
    pub active: bool,
    pub base: i64,
    pub basis: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Warmup {
    pub started_at: i64,
    pub base: u64,
    pub carry: u64,
    pub converted: u64,
}

/// The clawback bookkeeping and the last receipt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    pub tally_round: u64,
    pub profit_weight: u128,
    pub profit_cap: u64,
    pub capital_weight: u64,
    pub applied_round: u64,
    pub last_epoch: u64,
    pub last_round: u64,
    pub last_capital: bool,
    pub last_weight: u128,
    pub last_rate: (u128, u128),
    pub last_amount: u64,
    pub lifetime: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// The owner's collateral wallet.
    pub wallet: u64,
    pub capital: u64,
    pub pnl: i64,
    pub slots: [Slot; 4],
    pub warmup: Warmup,
    pub receipt: Receipt,
    pub withdrawn: u64,
    pub withdrawn_epoch: u64,
    /// Capital deposited during epoch `deposited_epoch` (left out of LeverageWeighted
    /// leverage).
    pub deposited: u64,
    pub deposited_epoch: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketParams {
    pub im_bps: u16,
    pub mm_bps: u16,
    pub liq_fee_bps: u16,
    pub insurance_share_bps: u16,
    pub taker_fee_bps: u16,
    pub max_deviation_bps: u16,
    pub max_age_secs: u32,
    pub max_conf_bps: u16,
    /// Dynamic margin (docs/DESIGN.md §4.3).
    pub imf: u32,
    pub profit_weight_bps: u16,
    pub stable_window_secs: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Market {
    pub params: MarketParams,
    /// The feed: raw price (expo −6), raw confidence, publish time.
    pub raw: i64,
    pub conf: u64,
    pub published: i64,
    pub long_oi: u64,
    pub short_oi: u64,
    /// The last oracle price a trade or liquidation accepted (fixed point).
    pub last_price: i128,
    /// The smoothed price and when it moved (docs/DESIGN.md §4.3).
    pub stable_price: i128,
    pub stable_at: i64,
}

impl Market {
    /// A trade or liquidation accepted `price` at `now`: the smoothed price moves toward
    /// it by (elapsed, counted up to 60 s and up to the window) / window of the gap,
    /// truncated toward its old value; the first read, or no window, takes the price.
    fn accept(&mut self, price: i128, now: i64) {
        self.last_price = price;
        let w = self.params.stable_window_secs as i128;
        self.stable_price = if self.stable_price == 0 || w == 0 {
            price
        } else {
            let dt = ((now - self.stable_at) as i128).clamp(0, w.min(60));
            let gap = price - self.stable_price;
            // Truncation toward zero of the step = toward the old value.
            self.stable_price + gap * dt / w
        };
        self.stable_at = now;
    }
}

/// A position's (IM, MM) rates: the base rates, or — once larger — the size premium
/// imf·⌈√|b|⌉/10⁶ (rounded up, at most 100%), MM scaled with it by MM/IM (rounded up).
fn rates(mp: &MarketParams, base: i64) -> (i128, i128) {
    let n = base.unsigned_abs() as u128;
    let mut r = (n as f64).sqrt() as u128;
    while r * r < n {
        r += 1;
    }
    while r > 0 && (r - 1) * (r - 1) >= n {
        r -= 1;
    }
    let premium = (mp.imf as u128 * r).div_ceil(1_000_000) as i128;
    let im = premium.max(mp.im_bps as i128).min(BPS);
    if mp.imf == 0 {
        return (mp.im_bps as i128, mp.mm_bps as i128);
    }
    (im, ceil(im * mp.mm_bps as i128, mp.im_bps as i128))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub warmup_secs: u32,
    pub min_epoch_secs: u32,
    pub cooldown_secs: u32,
    pub rate_cap_bps: u16,
    pub leverage_weighted: bool,
    pub buffer_bps: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epoch {
    pub phase: Phase,
    pub epoch_id: u64,
    pub opened_at: i64,
    pub round_seq: u64,
    pub rounds_in_epoch: u32,
    pub round_started_at: i64,
    pub cooldown_until: i64,
    pub leverage_weighted: bool,
    pub rate_cap_bps: u16,
    /// Accounts that existed at begin and are not tallied; of those, the ones that could
    /// carry profit weight and the ones with capital (docs/DESIGN.md §6.2).
    pub untallied: u32,
    pub profit_pending: u32,
    pub capital_pending: u32,
    pub tallied: u32,
    pub profit_total: u128,
    pub profit_count: u32,
    pub capital_total: u128,
    pub capital_count: u32,
    pub capital_basis: bool,
    pub deficit_at_finalize: u64,
    pub rate: (u128, u128),
    pub to_apply: u32,
    pub applied: u32,
    pub round_charged: u64,
    pub round_to_insurance: u64,
    pub deficit_opened: u64,
    pub charged: u64,
    pub covered: u64,
}

impl Epoch {
    pub fn new() -> Self {
        Epoch {
            phase: Phase::Normal,
            epoch_id: 1,
            opened_at: 0,
            round_seq: 0,
            rounds_in_epoch: 0,
            round_started_at: 0,
            cooldown_until: 0,
            leverage_weighted: false,
            rate_cap_bps: 0,
            untallied: 0,
            profit_pending: 0,
            capital_pending: 0,
            tallied: 0,
            profit_total: 0,
            profit_count: 0,
            capital_total: 0,
            capital_count: 0,
            capital_basis: false,
            deficit_at_finalize: 0,
            rate: (0, 1),
            to_apply: 0,
            applied: 0,
            round_charged: 0,
            round_to_insurance: 0,
            deficit_opened: 0,
            charged: 0,
            covered: 0,
        }
    }
}

/// The exchange's own books (what it records, as opposed to the token balances).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Books {
    pub total_capital: u128,
    pub total_pnl: i128,
    pub total_basis: i128,
    pub vault_balance: u64,
    pub insurance_balance: u64,
    pub deficit: u64,
    pub withdrawn_total: u64,
    pub withdrawn_epoch: u64,
    pub num_accounts: u32,
    /// Accounts with an open position or positive pnl, with capital, and bankrupt ones
    /// (flat, capital + pnl < 0). The model recounts them after every instruction; the
    /// program keeps them incrementally.
    pub profit_capable: u32,
    pub with_capital: u32,
    pub unresolved: u32,
}

impl Books {
    /// Capital withdrawn by all accounts during `epoch`.
    fn withdrawn_in(&self, epoch: u64) -> u64 {
        if self.withdrawn_epoch == epoch {
            self.withdrawn_total
        } else {
            0
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub now: i64,
    pub params: Params,
    /// An exchange-parameter change the admin queued, with its ready time (the test
    /// exchange's delay is 0, so it is ready when queued).
    pub queued_params: Option<(Params, i64)>,
    pub markets: Vec<Market>,
    pub accounts: Vec<Account>,
    pub books: Books,
    pub epoch: Epoch,
    /// The round's price snapshot per market (fixed point).
    pub round_prices: Vec<i128>,
    /// The withdrawal hold-back base and the epoch it belongs to.
    pub holdback: (u128, u64),
    /// Token balances of the two vaults.
    pub vault_tokens: u64,
    pub insurance_tokens: u64,
}

// -------------------------------------------------------------------- health (docs/DESIGN.md §4)

#[derive(Clone, Copy, Debug, Default)]
struct Health {
    equity: i128,
    /// Equity with longs at P − conf and shorts at P + conf (initial-margin checks).
    equity_conservative: i128,
    /// Equity with degraded markets at their midpoint: who pays a liquidation.
    equity_mid: i128,
    unrealized: i128,
    notional: i128,
    im: i128,
    mm: i128,
    open: u32,
}

impl Health {
    fn meets_im(&self) -> bool {
        self.equity_conservative >= self.im
    }
    fn liquidatable(&self) -> bool {
        self.open > 0 && self.equity < self.mm
    }
}

/// How a price may be used (docs/DESIGN.md §8.2): it passed its guards; it is current but
/// too uncertain (valued at its interval's edge); or it is old or a fallback (also at the
/// edge, and initial margin takes ±50%).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quality {
    Fresh,
    Uncertain,
    Stale,
}

/// Prices the instruction has read, per market: (price, conf) in fixed point and quality.
type Prices = Vec<Option<(i128, i128, Quality)>>;

// -------------------------------------------------------------------- warmup (docs/DESIGN.md §6.9)

impl Warmup {
    /// What has vested of `positive` pnl by `now` and not yet been converted.
    fn vested(&self, positive: u64, now: i64, secs: u32) -> u64 {
        if secs == 0 {
            return positive;
        }
        let elapsed = (now - self.started_at).clamp(0, secs as i64) as u128;
        let linear = (self.base as u128 * elapsed / secs as u128) as u64;
        (self.carry + linear)
            .saturating_sub(self.converted)
            .min(positive)
    }

    /// Positive pnl changed from `old` to `new`: what had vested (up to `new`) stays
    /// vested, the rest warms up again from now.
    fn rebase(&mut self, old: u64, new: u64, now: i64, secs: u32) {
        if old == new {
            return;
        }
        let vested = self.vested(old, now, secs).min(new);
        *self = Warmup {
            started_at: now,
            base: new - vested,
            carry: vested,
            converted: 0,
        };
    }
}

impl Account {
    fn positive_pnl(&self) -> u64 {
        self.pnl.max(0) as u64
    }

    fn add_pnl(&mut self, delta: i64, books: &mut Books, now: i64, secs: u32) -> R {
        if delta == 0 {
            return Ok(());
        }
        let before = self.positive_pnl();
        self.pnl = self.pnl.checked_add(delta).ok_or("MathOverflow")?;
        books.total_pnl += delta as i128;
        let after = self.positive_pnl();
        self.warmup.rebase(before, after, now, secs);
        Ok(())
    }

    fn sub_capital(&mut self, amount: u64, books: &mut Books) -> R {
        if amount > self.capital {
            return Err("InsufficientCapital");
        }
        self.capital -= amount;
        books.total_capital -= amount as u128;
        Ok(())
    }

    fn add_capital(&mut self, amount: u64, books: &mut Books) -> R {
        self.capital = self.capital.checked_add(amount).ok_or("MathOverflow")?;
        books.total_capital += amount as u128;
        Ok(())
    }

    fn slot(&self, market: u16) -> Option<&Slot> {
        self.slots.iter().find(|s| s.active && s.market == market)
    }

    fn active(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.active)
    }

    fn withdrawn_in(&self, epoch: u64) -> u64 {
        if self.withdrawn_epoch == epoch {
            self.withdrawn
        } else {
            0
        }
    }

    /// The tallied weight and the charge cap in the round's basis: positive pnl, or
    /// capital + withdrawn this epoch with the charge capped at the capital left.
    fn charge_basis(&self, capital_basis: bool) -> (u128, u64) {
        if capital_basis {
            let w = self.receipt.capital_weight;
            (w as u128, w.min(self.capital))
        } else {
            (self.receipt.profit_weight, self.receipt.profit_cap)
        }
    }

    /// A fill of `base` for `quote` in `market`: a new position takes the first free slot;
    /// a position that closes realizes its basis into pnl and frees its slot.
    fn fill(
        &mut self,
        m: &mut Market,
        market: u16,
        base: i64,
        quote: i64,
        books: &mut Books,
        (now, secs): (i64, u32),
    ) -> R {
        let i = match self
            .slots
            .iter()
            .position(|s| s.active && s.market == market)
        {
            Some(i) => i,
            None => {
                let free = self
                    .slots
                    .iter()
                    .position(|s| !s.active)
                    .ok_or("TooManyPositions")?;
                self.slots[free] = Slot {
                    market,
                    active: true,
                    base: 0,
                    basis: 0,
                };
                free
            }
        };
        let old = self.slots[i];
        let new_base = old.base.checked_add(base).ok_or("MathOverflow")?;
        let new_basis = old.basis.checked_add(quote).ok_or("MathOverflow")?;
        let long = |b: i64| b.max(0) as u64;
        let short = |b: i64| (-(b.min(0) as i128)) as u64;
        m.long_oi = m.long_oi - long(old.base) + long(new_base);
        m.short_oi = m.short_oi - short(old.base) + short(new_base);
        books.total_basis -= old.basis as i128;
        let realized = if new_base == 0 {
            self.slots[i] = Slot::default();
            -new_basis
        } else {
            self.slots[i].base = new_base;
            self.slots[i].basis = new_basis;
            books.total_basis += new_basis as i128;
            0
        };
        self.add_pnl(realized, books, now, secs)
    }
}

// -------------------------------------------------------------------- the exchange

impl State {
    /// Runs `f` on a copy; keeps the copy only if `f` succeeds (a refused transaction
    /// changes nothing).
    pub fn apply(&mut self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut next = self.clone();
        f(&mut next)?;
        next.recount();
        *self = next;
        Ok(())
    }

    /// What an account counts as: (bankrupt, can carry profit weight, has capital).
    fn standing(&self, a: usize) -> (bool, bool, bool) {
        let x = &self.accounts[a];
        let open = x.active().next().is_some();
        (
            !open && (x.capital as i128 + x.pnl as i128) < 0,
            open || x.pnl > 0,
            x.capital > 0,
        )
    }

    fn recount(&mut self) {
        let all: Vec<_> = (0..self.accounts.len()).map(|a| self.standing(a)).collect();
        self.books.unresolved = all.iter().filter(|s| s.0).count() as u32;
        self.books.profit_capable = all.iter().filter(|s| s.1).count() as u32;
        self.books.with_capital = all.iter().filter(|s| s.2).count() as u32;
    }

    /// The fixed-point price of `market` as of now, through the oracle guards.
    fn read(&self, market: u16) -> R<(i128, i128)> {
        let m = &self.markets[market as usize];
        if m.raw <= 0 {
            return Err("OracleNonPositivePrice");
        }
        if self.now - m.published > m.params.max_age_secs as i64 {
            return Err("OracleStale");
        }
        if m.conf as i128 * BPS > m.raw as i128 * m.params.max_conf_bps as i128 {
            return Err("OracleConfidenceTooWide");
        }
        let price = fixed(m.raw);
        if price > MAX_PRICE {
            return Err("OracleUnrepresentable");
        }
        Ok((price, (m.conf as i128 * FIXED_PER_RAW).min(MAX_PRICE)))
    }

    /// The price positions in `market` are valued at: the guarded price, or — when a guard
    /// fails — a conservative stand-in (docs/DESIGN.md §8.2): too uncertain, the oracle's
    /// own interval; stale, the interval widened by the market's confidence limit plus 1%
    /// per started minute past its age (at most 50%); non-positive or unrepresentable, the
    /// last accepted price ± 50%, refused when there is none.
    fn read_valued(&self, market: u16) -> R<(i128, i128, Quality)> {
        let m = &self.markets[market as usize];
        let reason = match self.read(market) {
            Ok((p, c)) => return Ok((p, c, Quality::Fresh)),
            Err(r) => r,
        };
        let fallback = || {
            if m.last_price > 0 {
                Ok((
                    m.last_price,
                    ceil(m.last_price * 5_000, BPS),
                    Quality::Stale,
                ))
            } else {
                Err(reason)
            }
        };
        let price = fixed(m.raw);
        let conf = (m.conf as i128 * FIXED_PER_RAW).min(MAX_PRICE);
        // A stand-in interval is at most ±100% of its price.
        let cap = |p: i128, c: i128, q: Quality| (p, c.min(p), q);
        match reason {
            "OracleConfidenceTooWide" if price <= MAX_PRICE => {
                Ok(cap(price, conf, Quality::Uncertain))
            }
            "OracleStale" if m.raw > 0 && price <= MAX_PRICE => {
                let over = self.now - m.published - m.params.max_age_secs as i64;
                let minutes = (over.max(0) as i128 + 59) / 60;
                let haircut = (m.params.max_conf_bps as i128 + 100 * minutes).min(5_000);
                Ok(cap(
                    price,
                    (conf + ceil(price * haircut, BPS)).min(MAX_PRICE),
                    Quality::Stale,
                ))
            }
            _ => fallback(),
        }
    }

    /// The (market, oracle) pairs a client passes for `accounts`: each account's active
    /// slots in order, first occurrence kept, `except` left out.
    fn pairs(&self, accounts: &[usize], except: Option<u16>) -> Vec<u16> {
        let mut out = vec![];
        for &a in accounts {
            for s in self.accounts[a].active() {
                if Some(s.market) != except && !out.contains(&s.market) {
                    out.push(s.market);
                }
            }
        }
        out
    }

    fn load(&self, markets: &[u16], prices: &mut Prices) -> R {
        for &m in markets {
            if prices[m as usize].is_none() {
                prices[m as usize] = Some(self.read_valued(m)?);
            }
        }
        Ok(())
    }

    fn no_prices(&self) -> Prices {
        vec![None; self.markets.len()]
    }

    fn health(&self, a: usize, prices: &Prices) -> R<Health> {
        let acct = &self.accounts[a];
        let mut h = Health {
            equity: acct.capital as i128 + acct.pnl as i128,
            ..Health::default()
        };
        h.equity_conservative = h.equity;
        h.equity_mid = h.equity;
        for s in acct.active() {
            let (p, conf, quality) = prices[s.market as usize].ok_or("MissingMarketAccounts")?;
            let degraded = quality != Quality::Fresh;
            let mp = &self.markets[s.market as usize].params;
            let b = s.base as i128;
            // Value rounds down for both sides; notional and margins round up. A degraded
            // price values the position at its interval's edge against the holder, and
            // its margin at the interval's top.
            let cp = if b >= 0 { (p - conf).max(0) } else { p + conf };
            let (vp, np) = if degraded { (cp, p + conf) } else { (p, p) };
            let unrealized = floor(b * vp, ONE) - s.basis as i128;
            let notional = ceil(b.abs() * np, ONE);
            // Initial margin: the worse of the confidence edge and the smoothed price,
            // profit counted at the market's weight (rounded down).
            let market = &self.markets[s.market as usize];
            let stable = if mp.stable_window_secs == 0 {
                0
            } else {
                market.stable_price
            };
            // A stale market's IM edge is the widest stand-in interval, ±50%.
            let im_edge = if quality == Quality::Stale {
                let half = ceil(p * 5_000, BPS).max(conf);
                if b >= 0 {
                    (p - half).max(0)
                } else {
                    p + half
                }
            } else {
                cp
            };
            let sp = match (b >= 0, stable) {
                (_, 0) => im_edge,
                (true, st) => im_edge.min(st),
                (false, st) => im_edge.max(st),
            };
            let u_im = floor(b * sp, ONE) - s.basis as i128;
            let u_im = if u_im > 0 {
                u_im * mp.profit_weight_bps as i128 / BPS
            } else {
                u_im
            };
            let (im_bps, mm_bps) = rates(mp, s.base);
            h.unrealized += unrealized;
            h.equity += unrealized;
            h.equity_mid += floor(b * p, ONE) - s.basis as i128;
            h.equity_conservative += u_im;
            h.notional += notional;
            h.im += ceil(notional * im_bps, BPS);
            h.mm += ceil(notional * mm_bps, BPS);
            h.open += u32::from(s.base != 0);
        }
        Ok(h)
    }

    /// Balances move between the books and the tokens together.
    fn vault_out(&mut self, amount: u64) {
        self.books.vault_balance -= amount;
        self.vault_tokens -= amount;
    }
    fn vault_in(&mut self, amount: u64) {
        self.books.vault_balance += amount;
        self.vault_tokens += amount;
    }
    fn vault_to_insurance(&mut self, amount: u64) {
        self.vault_out(amount);
        self.books.insurance_balance += amount;
        self.insurance_tokens += amount;
    }
    fn insurance_to_vault(&mut self, amount: u64) {
        self.books.insurance_balance -= amount;
        self.insurance_tokens -= amount;
        self.vault_in(amount);
    }

    fn wallet_pay(&mut self, who: usize, amount: u64) -> R {
        let w = &mut self.accounts[who].wallet;
        if *w < amount {
            return Err("token:InsufficientFunds");
        }
        *w -= amount;
        Ok(())
    }

    // ---------------------------------------------------------------- owner instructions

    /// A new margin account for an owner with `wallet` tokens; during a round it is born
    /// tallied with no weight (it did not exist at the snapshot).
    pub fn create(&mut self, wallet: u64) -> R {
        let mut receipt = Receipt::default();
        if matches!(self.epoch.phase, Phase::Tallying | Phase::Applying) {
            receipt.tally_round = self.epoch.round_seq;
        }
        self.accounts.push(Account {
            wallet,
            receipt,
            ..Account::default()
        });
        self.books.num_accounts += 1;
        Ok(())
    }

    pub fn deposit(&mut self, who: usize, amount: u64) -> R {
        if amount == 0 {
            return Err("ZeroAmount");
        }
        self.touch(who)?;
        self.wallet_pay(who, amount)?;
        let mut books = self.books;
        self.accounts[who].add_capital(amount, &mut books)?;
        if self.epoch.phase != Phase::Normal {
            let epoch = self.epoch.epoch_id;
            let a = &mut self.accounts[who];
            a.deposited = if a.deposited_epoch == epoch {
                a.deposited
            } else {
                0
            } + amount;
            a.deposited_epoch = epoch;
        }
        self.books = books;
        self.vault_in(amount);
        Ok(())
    }

    pub fn withdraw(&mut self, who: usize, amount: u64) -> R {
        if amount == 0 {
            return Err("ZeroAmount");
        }
        self.touch(who)?;
        if amount > self.accounts[who].capital {
            return Err("InsufficientCapital");
        }
        if self.epoch.phase != Phase::Normal {
            // docs/DESIGN.md §6.4 holds back the account's share of the deficit; the share is
            // taken on capital + what left this epoch, against the smallest Σ(capital +
            // withdrawn) seen since the epoch opened (a ratchet no deposit can raise).
            let epoch = self.epoch.epoch_id;
            let a = &self.accounts[who];
            let mine = a.withdrawn_in(epoch);
            let all = self.books.withdrawn_in(epoch);
            let today = self.books.total_capital + all as u128;
            let total = if self.holdback.1 == epoch {
                self.holdback.0.min(today)
            } else {
                today
            };
            self.holdback = (total, epoch);
            let deficit = self.books.deficit;
            let limit = if deficit == 0 || total == 0 {
                a.capital
            } else {
                let share = ceil(
                    (a.capital as i128 + mine as i128) * deficit as i128,
                    total as i128,
                );
                a.capital - share.min(a.capital as i128) as u64
            };
            if amount > limit {
                return Err("BadDebtWithdrawalLimit");
            }
            self.accounts[who].withdrawn = mine + amount;
            self.accounts[who].withdrawn_epoch = epoch;
            self.books.withdrawn_total = all + amount;
            self.books.withdrawn_epoch = epoch;
        }
        let mut books = self.books;
        self.accounts[who].sub_capital(amount, &mut books)?;
        self.books = books;
        let mut prices = self.no_prices();
        self.load(&self.pairs(&[who], None), &mut prices)?;
        if !self.health(who, &prices)?.meets_im() {
            return Err("InitialMarginViolated");
        }
        self.vault_out(amount);
        self.accounts[who].wallet += amount;
        Ok(())
    }

    /// Taker `t` buys `qty` (sells if negative) from maker `m` at fixed price `px`.
    pub fn trade(&mut self, t: usize, m: usize, market: u16, qty: i64, px: u64) -> R {
        // One margin account on both sides is refused before any other check (Anchor's
        // duplicate-mutable-account rule; the program's own SelfTrade check backs it up).
        if t == m {
            return Err("ConstraintDuplicateMutableAccount");
        }
        if qty == 0 || qty == i64::MIN || px == 0 {
            return Err("ZeroAmount");
        }
        let (oracle, conf) = self.read(market)?;
        let mp = self.markets[market as usize].params;
        let px = px as i128;
        // docs/DESIGN.md §6.3: while a deficit is open only the oracle price fills.
        if self.books.deficit > 0 && px != oracle {
            return Err("PriceNotOracle");
        }
        if (px - oracle).abs() * BPS > oracle * mp.max_deviation_bps as i128 {
            return Err("PriceOutsideBand");
        }
        let now = self.now;
        self.markets[market as usize].accept(oracle, now);
        let mut prices = self.no_prices();
        self.load(&self.pairs(&[t, m], Some(market)), &mut prices)?;
        prices[market as usize] = Some((oracle, conf, Quality::Fresh));
        self.touch(t)?;
        self.touch(m)?;
        let (tb, mb) = (self.health(t, &prices)?, self.health(m, &prices)?);
        let base_of = |s: &State, a: usize| s.accounts[a].slot(market).map_or(0, |s| s.base);
        let (t0, m0) = (base_of(self, t), base_of(self, m));
        // The taker pays the rounding atom both ways: quote = ⌈qty·px⌉.
        let quote = i64_of(ceil(qty as i128 * px, ONE))?;
        let fee = u64_of(ceil(
            ceil(qty.unsigned_abs() as i128 * px, ONE) * mp.taker_fee_bps as i128,
            BPS,
        ))?;
        let (now, secs) = (self.now, self.params.warmup_secs);
        let mut books = self.books;
        let mut mk = self.markets[market as usize];
        self.accounts[t].fill(&mut mk, market, qty, quote, &mut books, (now, secs))?;
        self.accounts[m].fill(&mut mk, market, -qty, -quote, &mut books, (now, secs))?;
        self.accounts[t].add_pnl(-i64_of(fee as i128)?, &mut books, now, secs)?;
        self.books = books;
        self.markets[market as usize] = mk;
        for (a, before, b0, buys) in [(t, tb, t0, qty > 0), (m, mb, m0, qty < 0)] {
            let after = self.health(a, &prices)?;
            if after.meets_im() {
                continue;
            }
            let b1 = base_of(self, a);
            let reduces =
                b1.unsigned_abs() < b0.unsigned_abs() && (b1 == 0 || (b1 > 0) == (b0 > 0));
            if !reduces {
                return Err("InitialMarginViolated");
            }
            // Below IM: at the oracle or better for this side, never below zero equity.
            if (buys && px > oracle) || (!buys && px < oracle) {
                return Err("ReduceWorseThanOracle");
            }
            if after.equity < 0 && after.equity < before.equity {
                return Err("EquityBelowZero");
            }
            if after.equity - after.mm < before.equity - before.mm {
                return Err("HealthDecreased");
            }
        }
        self.vault_to_insurance(fee);
        // A side left flat with negative equity is written up in the same instruction.
        for a in [t, m] {
            if self.standing(a).0 {
                self.write_up(a)?;
            }
        }
        Ok(())
    }

    /// Marks every position to the oracle, absorbs losses into capital, and (in Normal)
    /// converts vested positive pnl to capital.
    pub fn settle(&mut self, who: usize) -> R {
        let mut prices = self.no_prices();
        self.load(&self.pairs(&[who], None), &mut prices)?;
        self.touch(who)?;
        // Conversion waits while any account is bankrupt and unresolved (its loss could
        // open an epoch the converted profit would escape).
        let convert = self.epoch.phase == Phase::Normal
            && (0..self.accounts.len()).all(|a| !self.standing(a).0);
        let (now, secs) = (self.now, self.params.warmup_secs);
        let mut books = self.books;
        let a = &mut self.accounts[who];
        for i in 0..a.slots.len() {
            let s = a.slots[i];
            if !s.active {
                continue;
            }
            let (p, _, quality) = prices[s.market as usize].ok_or("MissingMarketAccounts")?;
            if quality != Quality::Fresh {
                continue; // never realized at a stale or uncertain price
            }
            // Realized at the worse for the holder of the oracle and the smoothed price.
            let st = &self.markets[s.market as usize];
            let p = match (st.params.stable_window_secs, st.stable_price) {
                (0, _) | (_, 0) => p,
                (_, sp) if s.base > 0 => p.min(sp),
                (_, sp) => p.max(sp),
            };
            let value = i64_of(floor(s.base as i128 * p, ONE))?;
            let delta = value.checked_sub(s.basis).ok_or("MathOverflow")?;
            a.slots[i].basis = value;
            books.total_basis += delta as i128;
            a.add_pnl(delta, &mut books, now, secs)?;
        }
        if a.pnl < 0 {
            let loss = a.pnl.unsigned_abs().min(a.capital);
            a.sub_capital(loss, &mut books)?;
            a.add_pnl(loss as i64, &mut books, now, secs)?;
        }
        if convert {
            let v = a.warmup.vested(a.positive_pnl(), now, secs);
            if v > 0 {
                a.warmup.converted += v;
                a.pnl -= v as i64;
                books.total_pnl -= v as i128;
                a.add_capital(v, &mut books)?;
            }
        }
        self.books = books;
        Ok(())
    }

    // ---------------------------------------------------------------- oracle & time

    pub fn set_price(&mut self, market: u16, raw: i64, conf: u64) -> R {
        if raw <= 0 {
            return Err("OracleNonPositivePrice");
        }
        if conf > raw as u64 {
            return Err("OracleConfidenceTooWide");
        }
        let m = &mut self.markets[market as usize];
        m.raw = raw;
        m.conf = conf;
        m.published = self.now;
        Ok(())
    }

    pub fn advance(&mut self, secs: i64) {
        self.now += secs;
    }

    // ---------------------------------------------------------------- waterfall (docs/DESIGN.md §5)

    /// `liqor` takes over part of `liqee`'s position in `market`, at most `max` base.
    pub fn liquidate(&mut self, liqor: usize, liqee: usize, market: u16, max: u64) -> R {
        if liqor == liqee {
            return Err("ConstraintDuplicateMutableAccount");
        }
        if max == 0 {
            return Err("ZeroAmount");
        }
        let (p, conf) = self.read(market)?;
        let mut prices = self.no_prices();
        self.load(&self.pairs(&[liqor, liqee], Some(market)), &mut prices)?;
        prices[market as usize] = Some((p, conf, Quality::Fresh));
        let now = self.now;
        self.markets[market as usize].accept(p, now);
        self.touch(liqee)?;
        self.touch(liqor)?;
        let pos = *self.accounts[liqee]
            .slot(market)
            .ok_or("NoPositionInMarket")?;
        let before = self.health(liqee, &prices)?;
        if !before.liquidatable() {
            return Err("NotLiquidatable");
        }
        let mp = self.markets[market as usize].params;
        // The liquidator earns the fee only while the liquidatee still has equity;
        // otherwise the position moves at the oracle price and insurance pays the fee.
        // Who pays is decided at the midpoint of degraded markets: a haircut alone never
        // makes the insurance fund pay.
        let discounted = before.equity_mid > 0;
        let fee_bps = if discounted {
            mp.liq_fee_bps as i128
        } else {
            0
        };
        // Size (README "liquidation sizing"): the least notional n that brings equity up
        // to (1 + buffer)·MM, with slack for three rounding atoms:
        //   (1+b)·(MM − n·mm) ≤ equity − n·fee  ⇒  n ≥ ((1+b)·MM − equity + slack)/((1+b)·mm − fee)
        // all scaled by 10⁴; then base = ⌈n / P⌉, capped by the position and by `max`.
        let b = BPS + self.params.buffer_bps as i128;
        let gap = b * before.mm - BPS * before.equity;
        let size_at = |mm_rate: i128| -> R<i128> {
            if gap <= 0 {
                return Ok(0);
            }
            let need = gap + 2 * BPS + b;
            let per_notional = b * mm_rate - BPS * fee_bps;
            if per_notional <= 0 {
                return Err("MathOverflow");
            }
            let notional = ceil(BPS * need, per_notional);
            Ok(ceil(notional * ONE, p)
                .min(pos.base.unsigned_abs() as i128)
                .min(max as i128))
        };
        // Sized at the base rate, then (size-scaled markets) up to three times at the rate
        // of the size the last pass leaves, keeping the smaller while it shrinks.
        let mut rate = mp.mm_bps as i128;
        let mut size = size_at(rate)?;
        for _ in 0..3 {
            let left = pos.base.unsigned_abs() as i128 - size;
            let (_, mm_left) = rates(&mp, left as i64);
            if mm_left <= rate {
                break;
            }
            rate = mm_left;
            let next = size_at(rate)?;
            if next >= size {
                break;
            }
            size = next;
        }
        if size == 0 {
            return Err("NothingToLiquidate");
        }
        let long = pos.base > 0;
        // The price moves by the fee in the liquidator's favour, rounded against the
        // liquidatee.
        let full_px = if long {
            floor(p * (BPS - mp.liq_fee_bps as i128), BPS)
        } else {
            ceil(p * (BPS + mp.liq_fee_bps as i128), BPS)
        };
        let full_discount = ceil(size * (p - full_px).abs(), ONE);
        // The discount never exceeds the equity (less two atoms for rounding): the price
        // moves only as far as the equity pays for.
        let room = (before.equity_mid - 2).max(0);
        let px = if !discounted {
            p
        } else if full_discount <= room {
            full_px
        } else {
            let d = room * ONE / size;
            if long {
                p - d.min(p)
            } else {
                p + d
            }
        };
        let delta = if long { -(size as i64) } else { size as i64 };
        let quote = i64_of(ceil(delta as i128 * px, ONE))?;
        let (now, secs) = (self.now, self.params.warmup_secs);
        let mut books = self.books;
        let mut mk = self.markets[market as usize];
        self.accounts[liqee].fill(&mut mk, market, delta, quote, &mut books, (now, secs))?;
        self.accounts[liqor].fill(&mut mk, market, -delta, -quote, &mut books, (now, secs))?;
        self.markets[market as usize] = mk;
        let share = |x: i128| ceil(x * mp.insurance_share_bps as i128, BPS);
        let (insurance_fee, owed) = if discounted {
            // The liquidator pays the insurance share of its discount (rounded up); the
            // fund owes it what the equity cap withheld from its net fee.
            let discount = ceil(size * (p - px).abs(), ONE);
            let net_full = full_discount - share(full_discount);
            (
                share(discount),
                (net_full - (discount - share(discount))).max(0),
            )
        } else {
            // Its whole share of the fee (rounded down) is owed by the fund.
            let fee = floor(floor(size * p, ONE) * mp.liq_fee_bps as i128, BPS);
            (0, floor(fee * (BPS - mp.insurance_share_bps as i128), BPS))
        };
        let insurance_fee = u64_of(insurance_fee)?;
        self.accounts[liqor].add_pnl(-(insurance_fee as i64), &mut books, now, secs)?;
        self.books = books;
        self.vault_to_insurance(insurance_fee);
        let mut books = self.books;
        let paid = u64_of(owed)?.min(books.insurance_balance);
        self.accounts[liqor].add_pnl(paid as i64, &mut books, now, secs)?;
        // At equity ≤ 0 the liquidatee owes what the fund could not pay.
        let unpaid = if discounted { 0 } else { u64_of(owed)? - paid };
        self.accounts[liqee].add_pnl(-(unpaid as i64), &mut books, now, secs)?;
        self.accounts[liqor].add_pnl(unpaid as i64, &mut books, now, secs)?;
        self.books = books;
        self.insurance_to_vault(paid);
        if !self.health(liqor, &prices)?.meets_im() {
            return Err("LiquidatorBelowInitialMargin");
        }
        // Left flat with negative equity: written up in the same instruction.
        if self.standing(liqee).0 {
            self.write_up(liqee)?;
        }
        Ok(())
    }

    /// Writes a flat account with negative equity up to zero: insurance first, the rest
    /// becomes deficit and opens a bad-debt epoch.
    pub fn resolve(&mut self, who: usize) -> R {
        if !self.standing(who).0 {
            return Err("NotBankrupt");
        }
        self.touch(who)?;
        self.write_up(who)
    }

    /// The write-up itself (`resolve`, and liquidations and trades that leave an account
    /// bankrupt).
    fn write_up(&mut self, who: usize) -> R {
        let a = &self.accounts[who];
        let s = -(a.capital as i128 + a.pnl as i128);
        if a.active().next().is_some() || s <= 0 {
            return Err("NotBankrupt");
        }
        let shortfall = u64_of(s)?;
        let (now, secs) = (self.now, self.params.warmup_secs);
        let mut books = self.books;
        let a = &mut self.accounts[who];
        let loss = a.pnl.unsigned_abs().min(a.capital);
        a.sub_capital(loss, &mut books)?;
        a.add_pnl(loss as i64, &mut books, now, secs)?;
        let paid = shortfall.min(books.insurance_balance);
        let added = shortfall - paid;
        a.add_pnl(shortfall as i64, &mut books, now, secs)?;
        books.deficit += added;
        self.books = books;
        self.insurance_to_vault(paid);
        if added > 0 {
            self.epoch.deficit_opened += added;
            if self.epoch.phase == Phase::Normal {
                self.epoch.phase = Phase::BadDebt;
                self.epoch.opened_at = now;
                self.epoch.rounds_in_epoch = 0;
                self.epoch.cooldown_until = 0;
                self.holdback = (self.books.total_capital, self.epoch.epoch_id);
            }
        }
        Ok(())
    }

    pub fn contribute(&mut self, who: usize, amount: u64) -> R {
        if amount == 0 {
            return Err("ZeroAmount");
        }
        self.wallet_pay(who, amount)?;
        self.books.insurance_balance += amount;
        self.insurance_tokens += amount;
        Ok(())
    }

    pub fn cover(&mut self, who: usize, amount: u64) -> R {
        if self.books.deficit == 0 {
            return Err("NoDeficit");
        }
        if self.epoch.phase == Phase::Applying {
            return Err("CoverDuringApplying");
        }
        if amount == 0 {
            return Err("ZeroAmount");
        }
        let paid = amount.min(self.books.deficit);
        self.wallet_pay(who, paid)?;
        self.vault_in(paid);
        self.books.deficit -= paid;
        self.epoch.covered += paid;
        if self.books.deficit == 0 {
            self.close_epoch();
        }
        Ok(())
    }

    // ---------------------------------------------------------------- epochs (docs/DESIGN.md §6)

    fn close_epoch(&mut self) {
        let e = &mut self.epoch;
        e.phase = Phase::Normal;
        e.epoch_id += 1;
        e.rounds_in_epoch = 0;
        e.deficit_opened = 0;
        e.charged = 0;
        e.covered = 0;
    }

    fn end_round(&mut self) {
        if self.books.deficit == 0 {
            self.close_epoch();
        } else {
            self.epoch.phase = Phase::BadDebt;
            self.epoch.cooldown_until = self.now + self.params.cooldown_secs as i64;
        }
    }

    pub fn begin(&mut self) -> R {
        if self.epoch.phase != Phase::BadDebt {
            return Err("WrongEpochPhase");
        }
        if self.books.deficit == 0 {
            return Err("NoDeficit");
        }
        let e = self.epoch;
        if self.now < e.opened_at + self.params.min_epoch_secs as i64 || self.now < e.cooldown_until
        {
            return Err("EpochNotReady");
        }
        // The snapshot (docs/DESIGN.md §6.1): the feed's price whatever its age or
        // confidence; the market's last accepted price if the feed's is unusable.
        for i in 0..self.markets.len() {
            let m = &self.markets[i];
            let p = fixed(m.raw);
            self.round_prices[i] = if m.raw > 0 && p <= MAX_PRICE {
                p
            } else {
                m.last_price
            };
        }
        let counts: Vec<_> = (0..self.accounts.len()).map(|a| self.standing(a)).collect();
        // What a round carries over from the epoch; its totals, rate and counts start
        // empty.
        self.epoch = Epoch {
            phase: Phase::Tallying,
            epoch_id: e.epoch_id,
            opened_at: e.opened_at,
            round_seq: e.round_seq + 1,
            rounds_in_epoch: e.rounds_in_epoch + 1,
            round_started_at: self.now,
            cooldown_until: e.cooldown_until,
            leverage_weighted: self.params.leverage_weighted,
            rate_cap_bps: self.params.rate_cap_bps,
            untallied: self.books.num_accounts,
            profit_pending: counts.iter().filter(|s| s.1).count() as u32,
            capital_pending: counts.iter().filter(|s| s.2).count() as u32,
            deficit_opened: e.deficit_opened,
            charged: e.charged,
            covered: e.covered,
            ..Epoch::new()
        };
        Ok(())
    }

    /// Records each account's weights at the round's snapshot: positive pnl (× (1 +
    /// leverage) under LeverageWeighted, capped at the positive pnl), and — for an account
    /// with capital — capital + withdrawn this epoch for a capital-basis round.
    pub fn tally(&mut self, batch: &[usize]) -> R {
        if self.epoch.phase != Phase::Tallying {
            return Err("WrongEpochPhase");
        }
        if batch.is_empty() {
            return Err("InvalidRemainingAccounts");
        }
        for (i, &a) in batch.iter().enumerate() {
            if batch[..i].contains(&a) {
                return Err("DuplicateAccount");
            }
            self.tally_one(a)?;
        }
        Ok(())
    }

    /// One account's tally at the snapshot (the crank, and touch first).
    fn tally_one(&mut self, a: usize) -> R {
        let round = self.epoch.round_seq;
        if self.accounts[a].receipt.tally_round == round {
            return Err("AlreadyTallied");
        }
        let acct = &self.accounts[a];
        let (mut unrealized, mut notional) = (0i128, 0i128);
        for s in acct.active() {
            let p = self.round_prices[s.market as usize];
            let b = s.base as i128;
            unrealized += floor(b * p, ONE) - s.basis as i128;
            notional += ceil(b.abs() * p, ONE);
        }
        // LeverageWeighted measures leverage without capital deposited this epoch.
        let deposited = if acct.deposited_epoch == self.epoch.epoch_id {
            acct.deposited
        } else {
            0
        };
        let equity = acct.capital as i128 + acct.pnl as i128 + unrealized - deposited as i128;
        let positive = u64_of((acct.pnl as i128 + unrealized).max(0))?;
        let weight = if !self.epoch.leverage_weighted || positive == 0 || equity <= 0 {
            positive as u128
        } else {
            positive as u128 + positive as u128 * notional as u128 / equity as u128
        };
        let capital = if acct.capital > 0 {
            acct.capital + acct.withdrawn_in(self.epoch.epoch_id)
        } else {
            0
        };
        let (_, profit_capable, has_capital) = self.standing(a);
        let r = &mut self.accounts[a].receipt;
        r.tally_round = round;
        r.profit_weight = weight;
        r.profit_cap = positive;
        r.capital_weight = capital;
        let e = &mut self.epoch;
        e.tallied += 1;
        e.untallied = e.untallied.saturating_sub(1);
        if profit_capable {
            e.profit_pending = e.profit_pending.saturating_sub(1);
        }
        if has_capital {
            e.capital_pending = e.capital_pending.saturating_sub(1);
        }
        if weight > 0 {
            e.profit_total += weight;
            e.profit_count += 1;
        }
        if capital > 0 {
            e.capital_total += capital as u128;
            e.capital_count += 1;
        }
        Ok(())
    }

    /// Whether the round has every tally it needs.
    fn tally_complete(&self) -> bool {
        let e = &self.epoch;
        (e.profit_pending == 0 && (e.profit_total > 0 || e.capital_pending == 0))
            || e.untallied == 0
    }

    /// Touch first: before any change to an account, a round in `Tallying` tallies it at
    /// the snapshot, one in `Applying` charges what it owes (the excess goes to the
    /// insurance fund at once, ending the round if it was the last).
    fn touch(&mut self, a: usize) -> R {
        let round = self.epoch.round_seq;
        match self.epoch.phase {
            Phase::Tallying if self.accounts[a].receipt.tally_round != round => self.tally_one(a),
            Phase::Applying if self.owes(a) => {
                let excess = self.charge_one(a)?;
                self.vault_to_insurance(excess);
                if self.epoch.applied == self.epoch.to_apply {
                    self.end_round();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Tallied this round with weight in the round's basis and not charged yet.
    fn owes(&self, a: usize) -> bool {
        let acct = &self.accounts[a];
        let (w, _) = acct.charge_basis(self.epoch.capital_basis);
        let r = &acct.receipt;
        let round = self.epoch.round_seq;
        r.tally_round == round && r.applied_round != round && w > 0
    }

    /// Fixes the round's basis and rate r = min(cap, deficit/Σw) as an exact fraction.
    pub fn finalize(&mut self) -> R {
        if self.epoch.phase != Phase::Tallying {
            return Err("WrongEpochPhase");
        }
        if !self.tally_complete() {
            return Err("TallyIncomplete");
        }
        let deficit = self.books.deficit;
        let e = &mut self.epoch;
        let capital_basis = e.profit_total == 0;
        let (total, count) = if capital_basis {
            (e.capital_total, e.capital_count)
        } else {
            (e.profit_total, e.profit_count)
        };
        e.rate = if total == 0 || deficit == 0 {
            (0, 1)
        } else if deficit as u128 * BPS as u128 <= e.rate_cap_bps as u128 * total {
            (deficit as u128, total)
        } else {
            (e.rate_cap_bps as u128, BPS as u128)
        };
        e.capital_basis = capital_basis;
        e.deficit_at_finalize = deficit;
        e.to_apply = if e.rate.0 == 0 { 0 } else { count };
        e.applied = 0;
        if e.to_apply == 0 {
            self.end_round();
        } else {
            e.phase = Phase::Applying;
        }
        Ok(())
    }

    /// Charges each account c = min(⌈w·r⌉, cap); the part beyond the deficit goes to the
    /// insurance fund.
    pub fn clawback(&mut self, batch: &[usize]) -> R {
        if self.epoch.phase != Phase::Applying {
            return Err("WrongEpochPhase");
        }
        if batch.is_empty() {
            return Err("InvalidRemainingAccounts");
        }
        let mut excess = 0u64;
        for (i, &a) in batch.iter().enumerate() {
            if batch[..i].contains(&a) {
                return Err("DuplicateAccount");
            }
            excess += self.charge_one(a)?;
        }
        self.vault_to_insurance(excess);
        if self.epoch.applied == self.epoch.to_apply {
            self.end_round();
        }
        Ok(())
    }

    /// One account's charge c = min(⌈w·r⌉, cap); returns the part beyond the deficit.
    fn charge_one(&mut self, a: usize) -> R<u64> {
        let round = self.epoch.round_seq;
        let (num, den) = self.epoch.rate;
        let capital_basis = self.epoch.capital_basis;
        let (now, secs) = (self.now, self.params.warmup_secs);
        let acct = &self.accounts[a];
        if acct.receipt.tally_round != round {
            return Err("NotTallied");
        }
        if acct.receipt.applied_round == round {
            return Err("AlreadyClawedBack");
        }
        let (weight, cap) = acct.charge_basis(capital_basis);
        if weight == 0 {
            return Err("NothingToClawBack");
        }
        let amount = (weight * num).div_ceil(den).min(cap as u128) as u64;
        let mut books = self.books;
        let acct = &mut self.accounts[a];
        if capital_basis {
            acct.sub_capital(amount, &mut books)?;
        } else {
            acct.add_pnl(-(amount as i64), &mut books, now, secs)?;
        }
        let to_deficit = amount.min(books.deficit);
        books.deficit -= to_deficit;
        self.books = books;
        let epoch_id = self.epoch.epoch_id;
        let r = &mut self.accounts[a].receipt;
        r.applied_round = round;
        r.last_epoch = epoch_id;
        r.last_round = round;
        r.last_capital = capital_basis;
        r.last_weight = weight;
        r.last_rate = (num, den);
        r.last_amount = amount;
        r.lifetime += amount;
        let e = &mut self.epoch;
        e.applied += 1;
        e.round_charged += amount;
        e.round_to_insurance += amount - to_deficit;
        e.charged += amount;
        Ok(amount - to_deficit)
    }

    /// The admin queues a change (docs/DESIGN.md §11): one at a time, within bounds, each
    /// rate one step (rate cap 25 points, buffer 10 points) from today's.
    pub fn queue_params(&mut self, p: Params) -> R {
        if self.queued_params.is_some() {
            return Err("ChangeAlreadyQueued");
        }
        if p.rate_cap_bps == 0 || p.rate_cap_bps > 10_000 || p.warmup_secs > MAX_WARMUP_SECS {
            return Err("InvalidParameter");
        }
        let o = self.params;
        if p.rate_cap_bps.abs_diff(o.rate_cap_bps) > 2_500
            || p.buffer_bps.abs_diff(o.buffer_bps) > 1_000
            || p.warmup_secs < o.warmup_secs / 2
            || p.min_epoch_secs < o.min_epoch_secs / 2
            || p.cooldown_secs < o.cooldown_secs / 2
        {
            return Err("StepTooLarge");
        }
        self.queued_params = Some((p, self.now));
        Ok(())
    }

    /// Anyone applies the queued change (the delay is 0): never while an epoch is open.
    pub fn apply_params(&mut self) -> R {
        let Some((p, ready_at)) = self.queued_params else {
            return Err("NothingQueued");
        };
        if self.now > ready_at + 24 * 3600 {
            return Err("ChangeExpired");
        }
        if self.epoch.phase != Phase::Normal {
            return Err("WaitsForNormal");
        }
        self.params = p;
        self.queued_params = None;
        Ok(())
    }

    // ---------------------------------------------------------------- what a keeper sees

    /// Accounts the model finds below maintenance margin, and the markets they hold.
    pub fn liquidatable(&self) -> Vec<(usize, Vec<u16>)> {
        (0..self.accounts.len())
            .filter_map(|a| {
                let mut prices = self.no_prices();
                self.load(&self.pairs(&[a], None), &mut prices).ok()?;
                let h = self.health(a, &prices).ok()?;
                h.liquidatable()
                    .then(|| (a, self.accounts[a].active().map(|s| s.market).collect()))
            })
            .collect()
    }

    pub fn bankrupt(&self) -> Vec<usize> {
        (0..self.accounts.len())
            .filter(|&a| {
                let x = &self.accounts[a];
                x.active().next().is_none() && (x.capital as i128 + x.pnl as i128) < 0
            })
            .collect()
    }

    /// The next epoch instruction a keeper sends, with its batch (at most `n` accounts).
    pub fn next_crank(&self, n: usize) -> Option<(Crank, Vec<usize>)> {
        let round = self.epoch.round_seq;
        match self.epoch.phase {
            Phase::Normal => None,
            Phase::BadDebt => Some((Crank::Begin, vec![])),
            Phase::Tallying => {
                if self.tally_complete() {
                    return Some((Crank::Finalize, vec![]));
                }
                let untallied = |a: &usize| self.accounts[*a].receipt.tally_round != round;
                let mut todo: Vec<usize> = (0..self.accounts.len())
                    .filter(untallied)
                    .filter(|&a| {
                        let (_, profit, capital) = self.standing(a);
                        profit || (capital && self.epoch.profit_total == 0)
                    })
                    .take(n)
                    .collect();
                if todo.is_empty() {
                    todo = (0..self.accounts.len()).filter(untallied).take(n).collect();
                }
                Some(if todo.is_empty() {
                    (Crank::Finalize, vec![])
                } else {
                    (Crank::Tally, todo)
                })
            }
            Phase::Applying => {
                let todo: Vec<usize> = (0..self.accounts.len())
                    .filter(|&a| self.owes(a))
                    .take(n)
                    .collect();
                Some((Crank::Clawback, todo))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crank {
    Begin,
    Tally,
    Finalize,
    Clawback,
}
