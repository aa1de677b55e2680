//! Loss-allocation simulator: one population, one price path, liquidations and
//! bankruptcies with the program's own math (`backstop::math`), then the resulting
//! deficit allocated under Backstop's clawback and under the industry's policies, with the
//! figures a risk manager compares (collected, overshoot, who paid, fairness).
//!
//! Money is integer atoms throughout (collateral and base with 6 decimals, prices in the
//! program's fixed point); only the fairness statistics (ratios) use floating point, and
//! they are reported as integer basis points so output is byte-for-byte reproducible.

pub mod compare;
pub mod engine;
pub mod policy;
pub mod population;
pub mod report;
pub mod svg;

/// Collateral atoms per USDC.
pub const USDC: u64 = 1_000_000;
/// Base atoms per base unit.
pub const BASE: i64 = 1_000_000;
/// Fixed-point price of one USDC per base unit (quote atoms per base atom · 10⁹, equal
/// decimals): `backstop::constants::PRICE_PRECISION`.
pub const ONE_USD: u64 = backstop::constants::PRICE_PRECISION as u64;

/// The market every simulated account trades (the localnet's PERP parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Market {
    pub initial_margin_bps: u16,
    pub maintenance_margin_bps: u16,
    pub liquidation_fee_bps: u16,
    pub insurance_share_bps: u16,
    pub liquidation_buffer_bps: u16,
    /// Size premium (`backstop::math::margin::size_scaled_rates`); 0: static margins.
    pub imf_factor: u32,
}

impl Market {
    /// The same market with the dynamic margins of `MarketParams::DYNAMIC_EXAMPLE`
    /// (rates grow past 10% above 250 base units).
    pub fn dynamic() -> Market {
        Market {
            imf_factor: backstop::state::MarketParams::DYNAMIC_EXAMPLE.imf_factor,
            ..Market::default()
        }
    }

    /// (initial, maintenance) margin rates of a position of `base_qty` atoms.
    pub fn rates(&self, base_qty: i64) -> backstop::math::safe::MathResult<(u16, u16)> {
        backstop::math::margin::size_scaled_rates(
            self.initial_margin_bps,
            self.maintenance_margin_bps,
            self.imf_factor,
            base_qty,
        )
    }
}

impl Default for Market {
    fn default() -> Self {
        Market {
            initial_margin_bps: 1_000,
            maintenance_margin_bps: 500,
            liquidation_fee_bps: 100,
            insurance_share_bps: 2_000,
            liquidation_buffer_bps: 1_000,
            imf_factor: 0,
        }
    }
}

/// A simulated margin account with one perp position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    pub id: u32,
    pub capital: u64,
    /// Realized PnL (atoms).
    pub pnl: i64,
    /// Signed base atoms (long > 0).
    pub base_qty: i64,
    /// Quote atoms paid (long, > 0) or received (short, < 0), the program's convention.
    pub quote_basis: i64,
}

/// Health of `a` at `price` with the program's own function (confidence 0).
pub fn health(
    a: &Account,
    price: u64,
    m: &Market,
) -> backstop::math::safe::MathResult<backstop::math::health::Health> {
    use backstop::math::health::{compute_health, PositionMark};
    let (im, mm) = m.rates(a.base_qty)?;
    let mark = PositionMark {
        base_qty: a.base_qty,
        quote_basis: a.quote_basis,
        price,
        conf: 0,
        initial_margin_bps: im,
        maintenance_margin_bps: mm,
        stable_price: 0,
        unrealized_weight_bps: 10_000,
        degraded: false,
        stale: false,
    };
    let positions: &[PositionMark] = if a.base_qty != 0 { &[mark] } else { &[] };
    compute_health(a.capital, a.pnl, positions)
}

/// Positive PnL (realized + unrealized at `price`), the clawback's profit basis.
pub fn positive_pnl(a: &Account, price: u64, m: &Market) -> anyhow::Result<u64> {
    let h = health(a, price, m).map_err(math)?;
    backstop::math::clawback::positive_pnl(a.pnl, h.unrealized).map_err(math)
}

/// Total PnL (realized + unrealized at `price`), signed.
pub fn total_pnl(a: &Account, price: u64, m: &Market) -> anyhow::Result<i128> {
    let h = health(a, price, m).map_err(math)?;
    Ok(a.pnl as i128 + h.unrealized)
}

pub(crate) fn math(e: backstop::math::safe::MathError) -> anyhow::Error {
    anyhow::anyhow!("arithmetic: {e:?} (an input is too large for exact integer math)")
}

/// A USDC amount for people: atoms with 2 decimals (rounded toward zero).
pub fn usd(atoms: i128) -> String {
    backstop_client::view::format_scaled(atoms, 6, 2)
}
