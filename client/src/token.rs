//! SPL token account set-up shared by every host (LiteSVM tests, the localnet, scripts):
//! the instruction lists only, so each host sends them its own way.

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_spl::token::spl_token;

/// Creates `mint` (a new keypair address, `rent` lamports from `payer`) with `authority`.
pub fn create_mint(
    payer: &Pubkey,
    mint: &Pubkey,
    rent: u64,
    authority: &Pubkey,
    decimals: u8,
) -> Vec<Instruction> {
    vec![
        solana_system_interface::instruction::create_account(
            payer,
            mint,
            rent,
            spl_token::state::Mint::LEN as u64,
            &spl_token::ID,
        ),
        spl_token::instruction::initialize_mint2(&spl_token::ID, mint, authority, None, decimals)
            .expect("valid initialize_mint2"),
    ]
}

/// Creates token account `account` of `mint` owned by `owner` and, when `amount > 0`,
/// mints `amount` into it (then `mint_authority` must sign).
pub fn create_token_account(
    payer: &Pubkey,
    account: &Pubkey,
    rent: u64,
    mint: &Pubkey,
    owner: &Pubkey,
    mint_authority: &Pubkey,
    amount: u64,
) -> Vec<Instruction> {
    let mut ixs = vec![
        solana_system_interface::instruction::create_account(
            payer,
            account,
            rent,
            spl_token::state::Account::LEN as u64,
            &spl_token::ID,
        ),
        spl_token::instruction::initialize_account3(&spl_token::ID, account, mint, owner)
            .expect("valid initialize_account3"),
    ];
    if amount > 0 {
        ixs.push(
            spl_token::instruction::mint_to(
                &spl_token::ID,
                mint,
                account,
                mint_authority,
                &[],
                amount,
            )
            .expect("valid mint_to"),
        );
    }
    ixs
}
