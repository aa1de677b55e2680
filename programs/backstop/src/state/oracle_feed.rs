use anchor_lang::prelude::*;

/// A price set by an authority, with the same shape as a Pyth price: `price · 10^expo`
/// quote units per whole base unit. For localnet, demos and tests; goes through the same
/// guards as Pyth.
#[account]
#[derive(InitSpace, Debug)]
pub struct OracleFeed {
    pub exchange: Pubkey,
    pub authority: Pubkey,
    pub index: u16,
    pub bump: u8,
    pub price: i64,
    pub conf: u64,
    pub expo: i32,
    pub publish_time: i64,
    pub publish_slot: u64,
}
