//! Every price the program uses comes through here: owner check, decoding, the market's
//! oracle address, sign, age and confidence guards, then conversion to fixed point.

use anchor_lang::prelude::*;
use pyth_solana_receiver_sdk::price_update::{PriceUpdateV2, VerificationLevel};

use crate::error::BackstopError;
use crate::math::health::{clearly_above_maintenance, compute_health, Health, PositionMark};
use crate::math::oracle_price::{self, FixedPrice, RawPrice, ValuedPrice};
use crate::state::{MarginAccount, MarketParams, OracleFeed, OracleKind, PerpMarket, Position};

/// Decodes the oracle account of `market` without freshness checks: owner, type, exchange
/// (for feeds) and feed id (for Pyth).
pub fn decode_oracle(info: &AccountInfo, market: &PerpMarket) -> Result<RawPrice> {
    require_keys_eq!(info.key(), market.oracle, BackstopError::WrongOracle);
    decode_oracle_kind(
        info,
        market.oracle_kind,
        &market.exchange,
        &market.pyth_feed_id,
    )
}

/// Decodes an oracle account of the given kind (used by `add_market` before the market
/// exists, and by `decode_oracle`).
pub fn decode_oracle_kind(
    info: &AccountInfo,
    kind: OracleKind,
    exchange: &Pubkey,
    pyth_feed_id: &[u8; 32],
) -> Result<RawPrice> {
    let data = info.try_borrow_data()?;
    decode_oracle_data(info.owner, &data, kind, exchange, pyth_feed_id)
}

/// Decodes an oracle account from its owner and data — on-chain from the `AccountInfo`,
/// off-chain from an RPC answer: owner, type, exchange (feeds) and feed id and
/// verification level (Pyth). No freshness checks.
pub fn decode_oracle_data(
    owner: &Pubkey,
    data: &[u8],
    kind: OracleKind,
    exchange: &Pubkey,
    pyth_feed_id: &[u8; 32],
) -> Result<RawPrice> {
    match kind {
        OracleKind::Feed => {
            require_keys_eq!(*owner, crate::ID, BackstopError::OracleWrongOwner);
            let feed = OracleFeed::try_deserialize(&mut &data[..])
                .map_err(|_| error!(BackstopError::OracleInvalidData))?;
            require_keys_eq!(feed.exchange, *exchange, BackstopError::WrongExchange);
            Ok(RawPrice {
                price: feed.price,
                conf: feed.conf,
                expo: feed.expo,
                publish_time: feed.publish_time,
            })
        }
        OracleKind::PythPull => {
            require_keys_eq!(
                *owner,
                pyth_solana_receiver_sdk::ID,
                BackstopError::OracleWrongOwner
            );
            let update = PriceUpdateV2::try_deserialize(&mut &data[..])
                .map_err(|_| error!(BackstopError::OracleInvalidData))?;
            require!(
                update.verification_level == VerificationLevel::Full,
                BackstopError::OracleInvalidData
            );
            require!(
                update.price_message.feed_id == *pyth_feed_id,
                BackstopError::WrongOracle
            );
            let m = update.price_message;
            Ok(RawPrice {
                price: m.price,
                conf: m.conf,
                expo: m.exponent,
                publish_time: m.publish_time,
            })
        }
    }
}

/// Reads and guards the market's price at `now`.
pub fn read_price(
    info: &AccountInfo,
    market: &PerpMarket,
    quote_decimals: u8,
    now: i64,
) -> Result<FixedPrice> {
    let raw = decode_oracle(info, market)?;
    oracle_price::check(
        &raw,
        now,
        market.params.oracle_max_age_secs,
        market.params.oracle_max_conf_bps,
    )
    .map_err(BackstopError::from)?;
    oracle_price::to_fixed(&raw, quote_decimals, market.base_decimals)
        .map_err(|_| error!(BackstopError::OracleUnrepresentable))
}

/// Reads the market's price at `now` for valuing positions: a price that fails its guards
/// (stale, too uncertain, unusable) comes back `degraded` — the conservative stand-in of
/// `oracle_price::conservative` — instead of refusing, so one market's oracle problem
/// never blocks health, liquidations or risk-reducing actions elsewhere (docs/DESIGN.md
/// §8.2). The wrong oracle account, or one that cannot be decoded, is still refused.
pub fn read_valued_price(
    info: &AccountInfo,
    market: &PerpMarket,
    quote_decimals: u8,
    now: i64,
) -> Result<ValuedPrice> {
    let raw = decode_oracle(info, market)?;
    let p = &market.params;
    oracle_price::valued(
        &raw,
        now,
        p.oracle_max_age_secs,
        p.oracle_max_conf_bps,
        quote_decimals,
        market.base_decimals,
        market.last_price,
    )
    .map_err(|r| error!(BackstopError::from(r)))
}

/// A market's price and risk parameters.
#[derive(Debug, Clone, Copy)]
pub struct MarketPrice {
    pub index: u16,
    pub price: FixedPrice,
    pub params: MarketParams,
    /// The market's smoothed price (`PerpMarket::smoothed_price`; 0: none), for initial
    /// margin and settlement.
    pub stable_price: u64,
    /// The price failed a guard and is a conservative stand-in: positions are valued at
    /// its interval's edge against the holder, and nothing may trade or be liquidated in
    /// this market at it.
    pub degraded: bool,
    /// Degraded because old or a fallback (`ValuedPrice::stale`).
    pub stale: bool,
}

/// Prices of the markets an instruction needs, loaded once.
#[derive(Debug, Default)]
pub struct PriceCache {
    pub prices: Vec<MarketPrice>,
}

impl PriceCache {
    /// Loads (market, oracle) pairs from `accounts`, each market of `exchange`, each price
    /// read by [`read_valued_price`] (a stale or uncertain market is valued
    /// conservatively, not refused).
    pub fn load(
        exchange: &Pubkey,
        quote_decimals: u8,
        accounts: &[AccountInfo],
        now: i64,
    ) -> Result<Self> {
        let (pairs, rest) = accounts.as_chunks::<2>();
        require!(rest.is_empty(), BackstopError::InvalidRemainingAccounts);
        let mut cache = PriceCache::default();
        for pair in pairs {
            let market = load_market(&pair[0], exchange)?;
            if cache.get(market.index).is_some() {
                continue;
            }
            let price = read_valued_price(&pair[1], &market, quote_decimals, now)?;
            cache.insert_valued(&market, price);
        }
        Ok(cache)
    }

    /// Sets the price of the market an instruction trades or liquidates in (it passed
    /// every guard), replacing what the remaining accounts loaded for it: that copy of the
    /// market predates this instruction's read (its smoothed price, before `accept_price`).
    pub fn set(&mut self, market: &PerpMarket, price: FixedPrice) {
        self.prices.retain(|p| p.index != market.index);
        self.insert(market, price);
    }

    /// Adds a price that passed every guard, unless the market already has one.
    pub fn insert(&mut self, market: &PerpMarket, price: FixedPrice) {
        self.insert_valued(
            market,
            ValuedPrice {
                price,
                degraded: false,
                stale: false,
            },
        );
    }

    pub fn insert_valued(&mut self, market: &PerpMarket, price: ValuedPrice) {
        if self.get(market.index).is_none() {
            self.prices.push(MarketPrice {
                index: market.index,
                price: price.price,
                params: market.params,
                stable_price: market.smoothed_price(),
                degraded: price.degraded,
                stale: price.stale,
            });
        }
    }

    pub fn get(&self, index: u16) -> Option<&MarketPrice> {
        self.prices.iter().find(|p| p.index == index)
    }

    /// The mark of one position at the cached price, `None` when its market has none (or
    /// its size puts its margin rates out of range, which `margin_rates` cannot do).
    pub fn mark(&self, p: &Position) -> Option<PositionMark> {
        let m = self.get(p.market_index)?;
        let (initial_margin_bps, maintenance_margin_bps) =
            m.params.margin_rates(p.base_qty).ok()?;
        Some(PositionMark {
            base_qty: p.base_qty,
            quote_basis: p.quote_basis,
            price: m.price.price,
            conf: m.price.conf,
            initial_margin_bps,
            maintenance_margin_bps,
            stable_price: m.stable_price,
            unrealized_weight_bps: m.params.unrealized_weight_bps,
            degraded: m.degraded,
            stale: m.stale,
        })
    }

    /// Marks every open position of `account`; errors if a market's price is missing.
    pub fn marks(&self, account: &MarginAccount) -> Result<Vec<PositionMark>> {
        account
            .positions
            .iter()
            .filter(|p| p.active)
            .map(|p| {
                self.mark(p)
                    .ok_or_else(|| error!(BackstopError::MissingMarketAccounts))
            })
            .collect()
    }

    /// Health of `account` at the cached prices.
    pub fn health(&self, account: &MarginAccount) -> Result<Health> {
        let marks = self.marks(account)?;
        Ok(compute_health(account.capital, account.pnl, &marks)?)
    }

    /// The division-free screen ([`clearly_above_maintenance`]) at the cached prices:
    /// true only when `account` is certainly at or above maintenance margin.
    pub fn clearly_healthy(&self, account: &MarginAccount) -> bool {
        clearly_above_maintenance(
            account.capital,
            account.pnl,
            account
                .positions
                .iter()
                .filter(|p| p.active)
                .map(|p| self.mark(p)),
        )
    }
}

/// Views for clients (the CLI and the keeper), not needed on-chain.
#[cfg(feature = "client")]
impl PriceCache {
    /// The oracle price (fixed point) of `market_index` at which `account` becomes
    /// liquidatable (equity < maintenance margin) with every other price unchanged, found by
    /// bisection over the program's own health function. `None` when the account holds no
    /// position there, a price is missing, or no positive price makes it liquidatable (e.g.
    /// a fully collateralized long).
    pub fn liquidation_price(&self, account: &MarginAccount, market_index: u16) -> Option<u64> {
        let pos = account.position(market_index)?;
        if pos.base_qty == 0 {
            return None;
        }
        let current = self.get(market_index)?;
        let liquidatable_at = |price: u64| -> Option<bool> {
            let mut c = PriceCache::default();
            for p in &self.prices {
                let mut p = *p;
                if p.index == market_index {
                    p.price = FixedPrice { price, conf: 0 };
                    p.degraded = false;
                }
                c.prices.push(p);
            }
            c.health(account)
                .ok()?
                .maintenance_health()
                .ok()
                .map(|h| h < 0)
        };
        let long = pos.base_qty > 0;
        // Longs fail as the price falls, shorts as it rises: bisect between a price where the
        // account is healthy and one where it is liquidatable.
        let (mut ok, mut bad) = if long {
            if !liquidatable_at(1)? {
                return None;
            }
            (current.price.price.max(1), 1u64)
        } else {
            let mut hi = current.price.price.max(1);
            loop {
                if liquidatable_at(hi)? {
                    break;
                }
                hi = hi.checked_mul(2)?;
                if hi > crate::constants::MAX_PRICE {
                    return None;
                }
            }
            (current.price.price.max(1), hi)
        };
        if liquidatable_at(ok)? {
            return Some(current.price.price); // already liquidatable
        }
        while ok.abs_diff(bad) > 1 {
            let mid = ok.min(bad).checked_add(ok.abs_diff(bad).checked_div(2)?)?;
            if liquidatable_at(mid)? {
                bad = mid;
            } else {
                ok = mid;
            }
        }
        Some(bad)
    }
}

/// Deserializes a `PerpMarket` from an unchecked account (owner + discriminator) and checks
/// it belongs to `exchange`.
pub fn load_market(info: &AccountInfo, exchange: &Pubkey) -> Result<PerpMarket> {
    require_keys_eq!(
        *info.owner,
        crate::ID,
        BackstopError::InvalidRemainingAccounts
    );
    let data = info.try_borrow_data()?;
    let market = PerpMarket::try_deserialize(&mut &data[..])
        .map_err(|_| error!(BackstopError::InvalidRemainingAccounts))?;
    require_keys_eq!(market.exchange, *exchange, BackstopError::WrongExchange);
    Ok(market)
}
