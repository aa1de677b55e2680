//! Packing batched instructions (`tally`, `clawback`) into transactions.
//!
//! A legacy transaction is at most 1 232 bytes (the IPv6 MTU minus headers). Each margin
//! account costs 33 bytes (its 32-byte key in the message plus its 1-byte index in the
//! instruction), so the limit is set by size, not by compute, for these instructions.

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;

/// Max serialized size of a transaction.
pub const PACKET_DATA_SIZE: usize = 1_232;

/// The compute-budget program.
pub const COMPUTE_BUDGET_PROGRAM_ID: Pubkey =
    anchor_lang::pubkey!("ComputeBudget111111111111111111111111111111");

/// `SetComputeUnitLimit(units)`.
pub fn set_compute_unit_limit(units: u32) -> Instruction {
    let mut data = vec![2u8];
    data.extend_from_slice(&units.to_le_bytes());
    Instruction {
        program_id: COMPUTE_BUDGET_PROGRAM_ID,
        accounts: vec![],
        data,
    }
}

/// `SetComputeUnitPrice(micro_lamports)`.
pub fn set_compute_unit_price(micro_lamports: u64) -> Instruction {
    let mut data = vec![3u8];
    data.extend_from_slice(&micro_lamports.to_le_bytes());
    Instruction {
        program_id: COMPUTE_BUDGET_PROGRAM_ID,
        accounts: vec![],
        data,
    }
}

fn short_vec_len(n: usize) -> usize {
    match n {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        _ => 3,
    }
}

/// Serialized size of a legacy transaction with these instructions, one signature per
/// distinct signer (the payer included).
pub fn legacy_tx_size(payer: &Pubkey, ixs: &[Instruction]) -> usize {
    let mut keys: Vec<Pubkey> = vec![*payer];
    let mut signers = 1usize;
    for ix in ixs {
        for m in &ix.accounts {
            if !keys.contains(&m.pubkey) {
                keys.push(m.pubkey);
                if m.is_signer {
                    signers += 1;
                }
            }
        }
        if !keys.contains(&ix.program_id) {
            keys.push(ix.program_id);
        }
    }
    let ix_bytes: usize = ixs
        .iter()
        .map(|ix| {
            1 + short_vec_len(ix.accounts.len())
                + ix.accounts.len()
                + short_vec_len(ix.data.len())
                + ix.data.len()
        })
        .sum();
    short_vec_len(signers)
        + 64 * signers
        + 3
        + short_vec_len(keys.len())
        + 32 * keys.len()
        + 32
        + short_vec_len(ixs.len())
        + ix_bytes
}

/// The largest `n` for which `build(n)` (plus the compute-budget pair) fits one legacy
/// transaction, searching up to `max`.
pub fn max_batch(payer: &Pubkey, max: usize, build: impl Fn(usize) -> Instruction) -> usize {
    let budget = [set_compute_unit_limit(1_400_000), set_compute_unit_price(1)];
    (1..=max)
        .take_while(|n| {
            let mut ixs = budget.to_vec();
            ixs.push(build(*n));
            legacy_tx_size(payer, &ixs) <= PACKET_DATA_SIZE
        })
        .last()
        .unwrap_or(0)
}
