// Fleet propagation: from the call of publishFleet to the set being applied in each of three
// member processes, over PUBLISHES publishes, against the same-run baseline of a raw Redis
// PUBLISH reaching a plain subscriber in the same three processes (the floor: one pub/sub hop).
// Publishes alternate with baseline messages so both see the same machine. Times are wall-clock
// instants comparable across processes (performance.timeOrigin + now).
// Run: npm run bench:fleet (needs the Redis of .ci/services.sh).
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { publishFleet } from 'havoc';

const url = process.env.HAVOC_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PUBLISHES = Number(process.env.FLEET_BENCH_PUBLISHES ?? 300);
const MEMBERS = 3;
const now = (): number => performance.timeOrigin + performance.now();

interface Report {
  ready?: boolean;
  version?: number;
  raw?: number;
  at: number;
}

const quantile = (xs: number[], q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
};

function config(i: number): string {
  return `version: 1\npolicies:\n  - name: bench-${i}\n    type: http\n    target: /bench/${i}\n    error_chance: 0.5\n`;
}

async function main(): Promise<void> {
  const channel = `havoc-bench:fleet:${process.pid}`;
  const rawChannel = `${channel}:raw`;
  const children: ChildProcess[] = [];
  /** Who is waiting for which event: `v<version>` or `r<n>`, and how many members have reported it. */
  const waiting = new Map<string, { left: number; resolve: (latest: number[]) => void; ats: number[] }>();
  const expect = (key: string): Promise<number[]> => new Promise((resolve) => waiting.set(key, { left: MEMBERS, resolve, ats: [] }));
  const arrived = (key: string, at: number): void => {
    const entry = waiting.get(key);
    if (entry === undefined) return;
    entry.ats.push(at);
    if (--entry.left === 0) {
      waiting.delete(key);
      entry.resolve(entry.ats);
    }
  };
  const ready = expect('ready');
  for (let i = 0; i < MEMBERS; i++) {
    const child = fork(join(__dirname, 'fleet-member.js'), [url, channel, rawChannel, `m${i}`]);
    child.on('message', (report: Report) => {
      if (report.ready) arrived('ready', report.at);
      if (report.version !== undefined) arrived(`v${report.version}`, report.at);
      if (report.raw !== undefined) arrived(`r${report.raw}`, report.at);
    });
    children.push(child);
  }
  await ready;
  const publisher = new Redis(url);
  const fleetMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 1; i <= PUBLISHES; i++) {
    const applied = expect(`v${i}`);
    const started = now();
    const { version } = await publishFleet(publisher, config(i), { channel });
    if (version !== i) throw new Error(`expected version ${i}, got ${version}`);
    for (const at of await applied) fleetMs.push(at - started);

    const delivered = expect(`r${i}`);
    const sent = now();
    await publisher.publish(rawChannel, String(i));
    for (const at of await delivered) rawMs.push(at - sent);
    if (i % 50 === 0) process.stderr.write(`fleet: ${i}/${PUBLISHES} publishes\n`);
  }
  for (const child of children) child.send('close');
  await Promise.all(children.map((child) => new Promise((resolve) => child.once('exit', resolve))));
  await publisher.del(`${channel}:set`, `${channel}:version`, `${channel}:members`);
  publisher.disconnect();

  const show = (ms: number): string => `${ms.toFixed(2)} ms`;
  const rows = [
    ['raw PUBLISH -> message (baseline)', rawMs],
    ['publishFleet -> applied', fleetMs],
  ] as const;
  console.log(`\nPropagation to ${MEMBERS} member processes over ${PUBLISHES} publishes (${fleetMs.length} deliveries each):`);
  for (const [label, xs] of rows)
    console.log(`  ${label.padEnd(36)} p50 ${show(quantile(xs, 0.5))}   p99 ${show(quantile(xs, 0.99))}   max ${show(Math.max(...xs))}`);
  const p50 = quantile(fleetMs, 0.5) / quantile(rawMs, 0.5);
  const p99 = quantile(fleetMs, 0.99) / quantile(rawMs, 0.99);
  console.log(`  fleet / baseline: p50 ${p50.toFixed(1)}x, p99 ${p99.toFixed(1)}x`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
