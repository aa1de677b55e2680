// The Backstop localnet driven by the official Anchor TypeScript client with nothing but
// the committed IDL (idl/backstop.json) and the addresses the localnet writes
// (test-ledger/backstop/localnet.json): accounts, deposits, a trade, a price crash, a
// liquidation that resolves the bankruptcy it finds, and a clawback round back to
// `Normal` — read back through Anchor's own EventParser, addEventListener (logsSubscribe),
// `.view()`, AnchorError and `account.*.all` with memcmp filters, and the
// websocket subscriptions a wallet uses (signature, account, program).
//
// Run by `cargo test -p backstop-localnet --test typescript` (which starts the localnet),
// or by hand against `./scripts/localnet.sh`:
//   npx --prefix tests/ts tsx tests/ts/e2e.ts test-ledger/backstop/localnet.json

import { readFileSync } from "node:fs";
import assert from "node:assert/strict";
import {
  AnchorError,
  AnchorProvider,
  EventParser,
  Program,
  Wallet,
  utils,
  type Idl,
} from "@anchor-lang/core";
// bn.js directly: Node's ESM loader does not see Anchor's CommonJS re-export of BN.
import BN from "bn.js";
import {
  type AccountMeta,
  Connection,
  Keypair,
  LAMPORTS_PER_SOL,
  PublicKey,
  type Signer,
  Transaction,
} from "@solana/web3.js";

// ------------------------------------------------------------------ set-up

const infoPath = process.argv[2];
if (!infoPath) {
  console.error("usage: tsx e2e.ts <path to localnet.json>");
  process.exit(2);
}
type Info = {
  rpc_url: string;
  ws_url: string;
  exchange: string;
  admin: { keypair: string };
  markets: { index: number; name: string; market: string; oracle: string }[];
  wallets: { pubkey: string; keypair: string; token_account: string }[];
};
const info: Info = JSON.parse(readFileSync(infoPath, "utf8"));
const idl: Idl = JSON.parse(
  readFileSync(new URL("../../idl/backstop.json", import.meta.url), "utf8"),
);
const loadKeypair = (path: string) =>
  Keypair.fromSecretKey(Uint8Array.from(JSON.parse(readFileSync(path, "utf8"))));

const connection = new Connection(info.rpc_url, {
  commitment: "confirmed",
  wsEndpoint: info.ws_url,
});

function step(what: string) {
  console.log(`-- ${what}`);
}

// A fresh fee payer, funded through requestAirdrop (the localnet runs a faucet).
step("requestAirdrop funds a new fee payer");
const payer = Keypair.generate();
{
  const sig = await connection.requestAirdrop(payer.publicKey, 10 * LAMPORTS_PER_SOL);
  const latest = await connection.getLatestBlockhash();
  await connection.confirmTransaction({ signature: sig, ...latest }, "confirmed");
  assert.equal(await connection.getBalance(payer.publicKey), 10 * LAMPORTS_PER_SOL);
}

const provider = new AnchorProvider(connection, new Wallet(payer), {
  commitment: "confirmed",
});
const program = new Program(idl, provider);
const parser = new EventParser(program.programId, program.coder);
// The account clients Anchor builds from the IDL (untyped here: the test reads the JSON
// IDL at run time, as a script without generated types would).
type Client = {
  fetch(key: PublicKey): Promise<any>;
  all(filters?: unknown[]): Promise<{ publicKey: PublicKey; account: any }[]>;
};
const account = program.account as unknown as Record<
  "exchange" | "marginAccount" | "oracleFeed" | "perpMarket",
  Client
>;

const exchange = new PublicKey(info.exchange);
const admin = loadKeypair(info.admin.keypair);
const sol = {
  market: new PublicKey(info.markets[0].market),
  oracle: new PublicKey(info.markets[0].oracle),
};
// The margin account's seeds, as the IDL states them: a constant, the exchange, the owner.
const marginSeed = (() => {
  const create = idl.instructions.find((i) => i.name === "create_margin_account")!;
  const account = create.accounts.find((a) => a.name === "margin_account") as {
    pda: { seeds: { kind: string; value?: number[] }[] };
  };
  assert.equal(account.pda.seeds[0].kind, "const");
  return Buffer.from(account.pda.seeds[0].value!);
})();
const [alice, bob, liq] = info.wallets.slice(0, 3).map((w) => ({
  kp: loadKeypair(w.keypair),
  token: new PublicKey(w.token_account),
  margin: PublicKey.findProgramAddressSync(
    [marginSeed, exchange.toBuffer(), new PublicKey(w.pubkey).toBuffer()],
    program.programId,
  )[0],
}));
const USDC = 1_000_000;
const ro = (pubkey: PublicKey): AccountMeta => ({ pubkey, isSigner: false, isWritable: false });
const rw = (pubkey: PublicKey): AccountMeta => ({ pubkey, isSigner: false, isWritable: true });
const byExchange = [{ memcmp: { offset: 8, bytes: exchange.toBase58() } }];

/// A landed transaction from the transaction history. A node may answer `getTransaction`
/// a little after `confirmed` (this validator did so only at the root, 15–30 s later,
/// until its crypto crates were optimized), so the history checks are collected while
/// the scenario runs and made at the end ([`later`]), polling as any client reading
/// history must.
async function landed(signature: string) {
  for (let i = 0; i < 1200; i++) {
    const tx = await connection.getTransaction(signature, {
      commitment: "confirmed",
      maxSupportedTransactionVersion: 0,
    });
    if (tx) return tx;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`getTransaction(${signature}) found nothing within 120 s`);
}

type Parsed = { name: string; data: any }[];
const historyChecks: { what: string; signature: string; check: (events: Parsed, logs: string[]) => void }[] = [];

/// Checks the events Anchor's EventParser reads from `signature`'s logs in the
/// transaction history, once it is there (see [`landed`]).
function later(what: string, signature: string, check: (events: Parsed, logs: string[]) => void) {
  historyChecks.push({ what, signature, check });
}

function names(events: { name: string }[]) {
  return events.map((e) => e.name);
}

/// Waits for `cond()` (set by a subscription callback), failing after `ms`.
async function eventually(what: string, cond: () => boolean, ms = 20_000) {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/// Signs `tx` with the fee payer and `signers`; returns it with its signature (known
/// before it is sent, so a subscription can be opened first).
async function signed(tx: Transaction, signers: Signer[]) {
  tx.feePayer = payer.publicKey;
  tx.recentBlockhash = (await connection.getLatestBlockhash()).blockhash;
  tx.sign(payer, ...signers);
  return { tx, signature: utils.bytes.bs58.encode(tx.signature!) };
}

type Trader = { kp: Keypair; margin: PublicKey };

/// The accounts of a SOL-PERP trade between `taker` and `maker` (the rest resolve from
/// the IDL: the oracle through the market, the vaults through the exchange).
function tradeAccounts(taker: Trader, maker: Trader) {
  return {
    taker: taker.kp.publicKey,
    maker: maker.kp.publicKey,
    exchange,
    takerAccount: taker.margin,
    makerAccount: maker.margin,
    market: sol.market,
  };
}

/// The accounts of a SOL-PERP liquidation of `liquidatee` by `liquidator`.
function liquidateAccounts(liquidator: Trader, liquidatee: Trader) {
  return {
    liquidator: liquidator.kp.publicKey,
    exchange,
    liquidatorAccount: liquidator.margin,
    liquidateeAccount: liquidatee.margin,
    market: sol.market,
  };
}

/// Waits until the validator has acknowledged every websocket subscription this
/// connection opened. web3.js sends subscribe requests in the background; a transaction
/// sent before the validator registered the subscription would never be notified.
/// (web3.js 1.x keeps each subscription's state in `_subscriptionsByHash`.)
async function subscribed() {
  const subs = () =>
    Object.values(
      (connection as unknown as { _subscriptionsByHash: Record<string, { state: string }> })
        ._subscriptionsByHash,
    );
  await eventually("the validator to acknowledge the subscriptions", () =>
    subs().every((s) => s.state === "subscribed"),
  );
  assert.ok(subs().length > 0, "subscriptions are tracked");
}

/// Expects `run()` to be refused with the program error `code`, as an AnchorError.
async function refused(code: string, run: () => Promise<unknown>) {
  try {
    await run();
  } catch (e) {
    assert.ok(e instanceof AnchorError, `expected AnchorError ${code}, got ${e}`);
    assert.equal(e.error.errorCode.code, code);
    console.log(`   refused: ${e.error.errorCode.code} (${e.error.errorCode.number})`);
    return;
  }
  assert.fail(`expected ${code}, but the transaction succeeded`);
}

/// The manual feed's price in its own units, and as the program's fixed point (quote
/// atoms per base atom × 10⁹) for a market with `baseDecimals` and 6-decimal collateral.
async function oraclePrice(oracle: PublicKey, baseDecimals: number) {
  const feed = await account.oracleFeed.fetch(oracle);
  const shift = feed.expo + 6 - baseDecimals + 9;
  const raw = BigInt(feed.price.toString());
  const fixed = shift >= 0 ? raw * 10n ** BigInt(shift) : raw / 10n ** BigInt(-shift);
  return { feed, fixed: new BN(fixed.toString()) };
}

// ------------------------------------------------------------------ subscriptions

// programSubscribe (memcmp on the exchange) and logsSubscribe (addEventListener) before
// anything happens, so the notifications below can only come from this run.
const programChanges = new Set<string>();
const programSub = connection.onProgramAccountChange(
  program.programId,
  (keyed) => programChanges.add(keyed.accountId.toBase58()),
  { commitment: "confirmed", filters: byExchange },
);
const deposited: { amount: BN; slot: number; signature: string }[] = [];
const listener = program.addEventListener("deposited", (event: any, slot: number, signature: string) =>
  deposited.push({ amount: event.amount, slot, signature }),
);

// ------------------------------------------------------------------ accounts

step("create three margin accounts (the PDA resolved from the IDL's seeds)");
for (const who of [alice, bob, liq]) {
  const sig = await program.methods
    .createMarginAccount()
    .accounts({ owner: who.kp.publicKey, exchange })
    .signers([who.kp])
    .rpc();
  later("create_margin_account", sig, (events) => {
    assert.deepEqual(names(events), ["marginAccountCreated"]);
    assert.ok(events[0].data.account.equals(who.margin));
  });
}
const mine = await account.marginAccount.all([
  ...byExchange,
  { memcmp: { offset: 8 + 32, bytes: alice.kp.publicKey.toBase58() } },
]);
assert.equal(mine.length, 1, "memcmp on exchange and owner finds alice's account");
assert.ok(mine[0].publicKey.equals(alice.margin));

step("deposit (vault and insurance vault resolved through the exchange)");
// accountSubscribe on alice's account, signatureSubscribe on her deposit, both opened
// before the transaction is sent.
let aliceCapital: BN | null = null;
const accountSub = connection.onAccountChange(
  alice.margin,
  (acct) => {
    aliceCapital = program.coder.accounts.decode("marginAccount", acct.data).capital;
  },
  { commitment: "confirmed" },
);
{
  const { tx, signature } = await signed(
    await program.methods
      .deposit(new BN(100 * USDC))
      .accounts({ owner: alice.kp.publicKey, marginAccount: alice.margin, source: alice.token })
      .transaction(),
    [alice.kp],
  );
  const status: { err: unknown }[] = [];
  connection.onSignature(signature, (result) => status.push(result), "confirmed");
  await subscribed();
  await connection.sendRawTransaction(tx.serialize());
  await eventually("signatureSubscribe", () => status.length > 0);
  assert.equal(status[0].err, null);
  await eventually("accountSubscribe", () => aliceCapital !== null);
  assert.equal(aliceCapital!.toNumber(), 100 * USDC);
}
for (const who of [bob, liq]) {
  await program.methods
    .deposit(new BN(1_000 * USDC))
    .accounts({ owner: who.kp.publicKey, marginAccount: who.margin, source: who.token })
    .signers([who.kp])
    .rpc();
}
await eventually("three `deposited` events through addEventListener", () => deposited.length >= 3);
assert.deepEqual(
  deposited.map((d) => d.amount.toNumber()).sort((a, b) => a - b),
  [100 * USDC, 1_000 * USDC, 1_000 * USDC],
);
await program.removeEventListener(listener);
await eventually("programSubscribe", () =>
  [alice, bob, liq].every((w) => programChanges.has(w.margin.toBase58())),
);
await connection.removeProgramAccountChangeListener(programSub);
await connection.removeAccountChangeListener(accountSub);

// ------------------------------------------------------------------ trade

step("alice buys 5 SOL from bob at the oracle price");
// Republish the start-up price, so a slow machine cannot leave it past its max age.
{
  const start = await account.oracleFeed.fetch(sol.oracle);
  await program.methods
    .setOraclePrice(start.price, start.conf)
    .accounts({ authority: admin.publicKey, feed: sol.oracle })
    .signers([admin])
    .rpc();
}
const { feed, fixed: px150 } = await oraclePrice(sol.oracle, 9);
{
  const sig = await program.methods
    .trade(new BN(5_000_000_000), px150)
    .accounts(tradeAccounts(alice, bob))
    .signers([alice.kp, bob.kp])
    .rpc();
  later("trade", sig, (events) => {
    assert.deepEqual(names(events), ["tradeFilled"]);
    assert.equal(events[0].data.baseQty.toString(), "5000000000");
  });
}

step("health through .view() (return data)");
const health = await program.methods
  .health()
  .accounts({ exchange, marginAccount: alice.margin })
  .remainingAccounts([ro(sol.market), ro(sol.oracle)])
  .view();
assert.equal(health.openPositions, 1);
assert.equal(health.liquidatable, false);
assert.ok(health.equity.gt(new BN(99 * USDC)), `equity ${health.equity}`);
console.log(`   alice: equity ${health.equity} atoms, maintenance ${health.maintenanceMargin}`);

step("refusal 1: a price outside the oracle band (preflight)");
await refused("PriceOutsideBand", () =>
  program.methods
    .trade(new BN(1_000_000_000), px150.muln(103).divn(100))
    .accounts(tradeAccounts(alice, bob))
    .signers([alice.kp, bob.kp])
    .rpc(),
);

// ------------------------------------------------------------------ crash

step("the SOL price falls 150 → 120");
{
  const crashed = new BN(feed.price.toString()).muln(4).divn(5);
  await program.methods
    .setOraclePrice(crashed, crashed.divn(10_000))
    .accounts({ authority: admin.publicKey, feed: sol.oracle })
    .signers([admin])
    .rpc();
}
const { fixed: px120 } = await oraclePrice(sol.oracle, 9);
const after = await program.methods
  .health()
  .accounts({ exchange, marginAccount: alice.margin })
  .remainingAccounts([ro(sol.market), ro(sol.oracle)])
  .view();
assert.ok(after.liquidatable && after.equity.ltn(0), `alice is under water: ${after.equity}`);

step("refusal 2: liquidating a healthy account, sent with skipPreflight");
{
  const { tx, signature } = await signed(
    await program.methods
      .liquidate(new BN(1))
      .accounts(liquidateAccounts(liq, bob))
      .transaction(),
    [liq.kp],
  );
  await connection.sendRawTransaction(tx.serialize(), { skipPreflight: true });
  const latest = await connection.getLatestBlockhash();
  const confirmed = await connection.confirmTransaction({ signature, ...latest }, "confirmed");
  assert.ok(confirmed.value.err, "the liquidation of a healthy account fails on chain");
  // The landed failure is in the transaction history, with the program's own error.
  later("the refused liquidation", signature, (events, logs) => {
    assert.deepEqual(events, []);
    // The AnchorError line sits inside Backstop's frame, right before its `failed:` line.
    const id = program.programId.toBase58();
    const failedAt = logs.findIndex((l) => l.startsWith(`Program ${id} failed:`));
    assert.ok(failedAt > 0, `${logs}`);
    assert.equal(logs[0], `Program ${id} invoke [1]`);
    assert.match(logs[failedAt - 2], /^Program log: AnchorError .*NotLiquidatable/);
    const parsed = AnchorError.parse(logs);
    assert.equal(parsed?.error.errorCode.code, "NotLiquidatable");
    console.log(`   refused: ${parsed!.error.errorCode.code} (read from getTransaction)`);
  });
}

step("liquidate alice: the liquidation resolves her bankruptcy and opens the epoch");
{
  const sig = await program.methods
    .liquidate(new BN(5_000_000_000))
    .accounts(liquidateAccounts(liq, alice))
    .signers([liq.kp])
    .rpc();
  later("liquidate", sig, (events) => {
    const got = names(events);
    for (const want of ["liquidated", "bankruptcyResolved", "epochOpened"]) {
      assert.ok(got.includes(want), `${want} in ${got}`);
    }
    const resolved = events.find((e) => e.name === "bankruptcyResolved")!;
    console.log(
      `   bankruptcy resolved by the liquidation: shortfall ${resolved.data.shortfall}, ` +
        `to the deficit ${resolved.data.deficitAdded}`,
    );
  });
}
let ex = await account.exchange.fetch(exchange);
assert.ok("badDebt" in ex.epoch.phase, `phase ${JSON.stringify(ex.epoch.phase)}`);
assert.ok(ex.books.deficit.gtn(0));

step("refusal 3: while the deficit is open, trades fill only at the oracle price");
await refused("PriceNotOracle", () =>
  program.methods
    .trade(new BN(1_000_000_000), px120.muln(101).divn(100))
    .accounts(tradeAccounts(liq, bob))
    .remainingAccounts([])
    .signers([liq.kp, bob.kp])
    .rpc(),
);

// ------------------------------------------------------------------ clawback round

type Marked = { publicKey: PublicKey; account: any };
const markets = (await account.perpMarket.all(byExchange)).sort(
  (a: Marked, b: Marked) => a.account.index - b.account.index,
);
const allPairs = markets.flatMap((m: Marked) => [ro(m.publicKey), ro(m.account.oracle)]);
const accounts = async () => account.marginAccount.all(byExchange);

for (let round = 1; ; round++) {
  ex = await account.exchange.fetch(exchange);
  if ("normal" in ex.epoch.phase) break;
  assert.ok(round <= 5, "the epoch closes within five rounds");
  step(`round ${round}: begin_clawback (price snapshot of every market)`);
  later(
    `round ${round}: begin_clawback`,
    await program.methods.beginClawback().accounts({ exchange }).remainingAccounts(allPairs).rpc(),
    (events) => assert.deepEqual(names(events), ["roundStarted"]),
  );
  ex = await account.exchange.fetch(exchange);
  const seq = ex.epoch.roundSeq as BN;

  const untallied = (await accounts()).filter(
    (a: Marked) => !a.account.clawback.tallyRound.eq(seq),
  );
  later(
    `round ${round}: tally`,
    await program.methods
      .tally()
      .accounts({ exchange })
      .remainingAccounts(untallied.map((a: Marked) => rw(a.publicKey)))
      .rpc(),
    (events) =>
      assert.equal(names(events).filter((n) => n === "tallyRecorded").length, untallied.length),
  );
  later(
    `round ${round}: finalize_tally`,
    await program.methods.finalizeTally().accounts({ exchange }).rpc(),
    (events) => assert.deepEqual(names(events), ["tallyFinalized"]),
  );
  ex = await account.exchange.fetch(exchange);
  const capital = "capital" in ex.epoch.basis;
  const owing = (await accounts()).filter((a: Marked) => {
    const c = a.account.clawback;
    const weight = capital ? new BN(c.capitalWeight) : new BN(c.profitWeight);
    return c.tallyRound.eq(seq) && !c.appliedRound.eq(seq) && weight.gtn(0);
  });
  assert.ok(owing.length > 0, "someone owes this round");
  const sig = await program.methods
    .clawback()
    .accounts({ exchange })
    .remainingAccounts(owing.map((a: Marked) => rw(a.publicKey)))
    .rpc();
  later(`round ${round}: clawback`, sig, (events) => {
    const charged = events.filter((e) => e.name === "clawbackApplied");
    assert.equal(charged.length, owing.length);
    for (const c of charged) {
      console.log(`   clawed back ${c.data.amount} atoms from ${c.data.account}`);
    }
    assert.ok(names(events).includes("roundEnded"), `${names(events)}`);
  });
}
ex = await account.exchange.fetch(exchange);
assert.ok(ex.books.deficit.eqn(0));
console.log(
  `   epoch ${ex.epoch.lastClosed.epochId} closed: opened ${ex.epoch.lastClosed.deficitOpened}, ` +
    `clawed back ${ex.epoch.lastClosed.clawedBack}, covered ${ex.epoch.lastClosed.covered}`,
);
assert.ok(ex.epoch.lastClosed.deficitOpened.gtn(0));
assert.ok(
  ex.epoch.lastClosed.clawedBack
    .add(ex.epoch.lastClosed.covered)
    .gte(ex.epoch.lastClosed.deficitOpened),
);

// ------------------------------------------------------------------ books

step("the books against the token balances and the accounts");
const vault = await connection.getTokenAccountBalance(ex.vault);
const insurance = await connection.getTokenAccountBalance(ex.insuranceVault);
assert.equal(vault.value.amount, ex.books.vaultBalance.toString());
assert.equal(insurance.value.amount, ex.books.insuranceBalance.toString());
const all = await accounts();
const sum = (f: (a: any) => BN) => all.reduce((s: BN, a: Marked) => s.add(f(a.account)), new BN(0));
assert.equal(sum((a) => new BN(a.capital)).toString(), ex.books.totalCapital.toString());
assert.equal(sum((a) => new BN(a.pnl)).toString(), ex.books.totalPnl.toString());

step(`the transaction history: ${historyChecks.length} transactions through EventParser`);
for (const h of historyChecks) {
  const tx = await landed(h.signature);
  const logs = tx.meta?.logMessages ?? [];
  assert.ok(logs.length > 0, `${h.what}: no logs in the history`);
  h.check([...parser.parseLogs(logs)] as Parsed, logs);
  console.log(`   ${h.what}: ok (slot ${tx.slot})`);
}

console.log("ok: the Anchor TypeScript client drove the localnet from the IDL alone");
process.exit(0);
