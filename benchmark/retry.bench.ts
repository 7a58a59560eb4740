// The per-call cost of havoc's Retry and of wrap(Fallback, Retry, Timeout) on a succeeding
// function, against cockatiel's retry and cockatiel's wrap of the same three policies. The
// contenders run in interleaved rounds, in an order that rotates, and each ratio is the median
// of the rounds' same-round ratios, so machine noise hits them alike.
// Run: npm run bench:retry
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as cockatiel from 'cockatiel';
import { Fallback, Retry, Timeout, wrap } from 'havoc';
import { median } from './stats.js';

const ROUNDS = 15;
/** Calls per contender per round. */
const CALLS = 20_000;

interface Contender {
  name: string;
  run(): Promise<unknown>;
}

const succeed = async () => 1;

function contenders(): Contender[] {
  const retry = new Retry({ maxAttempts: 3 });
  // cockatiel's maxAttempts counts retries: 2 is the same 3 calls in all.
  const cRetry = cockatiel.retry(cockatiel.handleAll, { maxAttempts: 2, backoff: new cockatiel.ExponentialBackoff() });
  const wrapped = wrap(new Fallback(0), new Retry({ maxAttempts: 3 }), new Timeout(10_000));
  const cWrapped = cockatiel.wrap(
    cockatiel.fallback(cockatiel.handleAll, 0),
    cockatiel.retry(cockatiel.handleAll, { maxAttempts: 2, backoff: new cockatiel.ExponentialBackoff() }),
    cockatiel.timeout(10_000, cockatiel.TimeoutStrategy.Cooperative),
  );
  return [
    { name: 'havoc Retry.execute', run: () => retry.execute(succeed) },
    { name: 'cockatiel retry.execute', run: () => cRetry.execute(succeed) },
    { name: 'havoc wrap(Fallback, Retry, Timeout)', run: () => wrapped.execute(succeed) },
    { name: 'cockatiel wrap(fallback, retry, timeout)', run: () => cWrapped.execute(succeed) },
  ];
}

async function timeCalls(contender: Contender): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < CALLS; i++) await contender.run();
  return ((performance.now() - start) * 1e6) / CALLS; // ns per call
}

async function main() {
  const all = contenders();
  for (const c of all) await timeCalls(c); // warm-up round, not counted
  const ns: number[][] = all.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < all.length; k++) {
      const which = (round + k) % all.length;
      ns[which]!.push(await timeCalls(all[which]!));
    }
    process.stdout.write(`\rround ${round + 1}/${ROUNDS}`);
  }
  process.stdout.write('\n');
  const ratio = (a: number, b: number) => median(ns[a]!.map((x, i) => x / ns[b]![i]!));
  const rows = [
    { case: all[0]!.name, 'ns/call': median(ns[0]!), 'x cockatiel time': ratio(0, 1) },
    { case: all[1]!.name, 'ns/call': median(ns[1]!), 'x cockatiel time': 1 },
    { case: all[2]!.name, 'ns/call': median(ns[2]!), 'x cockatiel time': ratio(2, 3) },
    { case: all[3]!.name, 'ns/call': median(ns[3]!), 'x cockatiel time': 1 },
  ].map((r) => ({ ...r, 'ns/call': Math.round(r['ns/call']), 'x cockatiel time': Number(r['x cockatiel time'].toFixed(2)) }));
  console.table(rows);
  console.log(
    `Retry: ${rows[0]!['x cockatiel time']}× cockatiel's time per call; wrap: ${rows[2]!['x cockatiel time']}× (${(1 / rows[2]!['x cockatiel time']).toFixed(1)}× less time)`,
  );
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'retry.json'), JSON.stringify({ node: process.version, rounds: ROUNDS, calls: CALLS, rows }, null, 2));
}

void main();
