// Resource sabotage against stress-ng doing the same load in the same run:
// - memory fill rate: how fast 1 GiB becomes resident (VmRSS), havoc's RAM policy vs
//   `stress-ng --vm 1 --vm-bytes 1G --vm-keep`;
// - CPU duty accuracy: one thread at 25/50/75%, process CPU from /proc/<pid>/stat, havoc's
//   CPU policy vs `stress-ng --cpu 1 --cpu-load P`.
// Run: npm run bench:sabotage
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Engine, type Config } from 'havoc';
import { CLOCK_TICKS, cpuOf } from './proc.js';
import { median } from './stats.js';

const MB = 1024 * 1024;
const FILL_MB = 1024;
/** The fill is timed between these two marks above the starting RSS, the same for both. */
const FILL_FROM_MB = 64;
const FILL_TO_MB = FILL_MB - 64;
const DUTY_SECONDS = 3;
const ROUNDS = 3;

function config(...policies: Record<string, unknown>[]): Config {
  return { version: 1, policies } as unknown as Config;
}

function rssOf(pid: number | 'self'): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0; // the process is gone
  }
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const task of safeList(`/proc/${pid}/task`)) {
    for (const child of safeRead(`/proc/${pid}/task/${task}/children`).split(' ').filter(Boolean).map(Number)) {
      out.push(child, ...descendants(child));
    }
  }
  return out;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Polls `rss()` every millisecond; returns GiB/s between the two marks above `base`. */
function timeFill(rss: () => number, base: number, timeoutMs = 30_000): number {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const t0 = performance.now();
  let from: number | undefined;
  while (performance.now() - t0 < timeoutMs) {
    const grown = rss() - base;
    const now = performance.now();
    if (from === undefined && grown >= FILL_FROM_MB * MB) from = now;
    if (from !== undefined && grown >= FILL_TO_MB * MB) return (FILL_TO_MB - FILL_FROM_MB) / 1024 / ((now - from) / 1000);
    Atomics.wait(pause, 0, 0, 1);
  }
  throw new Error('fill did not finish in time');
}

async function havocFill(): Promise<number> {
  const engine = new Engine({ name: 'bench-fill' });
  const base = rssOf('self');
  engine.update(config({ name: 'fill', type: 'resource', ram_max_mb: FILL_MB }));
  const rate = timeFill(() => rssOf('self'), base);
  engine.close();
  await sleep(200);
  return rate;
}

async function stressNgFill(): Promise<number> {
  const child = spawn('stress-ng', ['--vm', '1', '--vm-bytes', `${FILL_MB}M`, '--vm-keep', '--vm-method', 'write64', '--timeout', '20s'], {
    stdio: 'ignore',
  });
  const pid = child.pid!;
  // The memory is held by a forked descendant (stress-ng forks a worker, which forks an
  // OOM-able child): time the largest RSS among them, from the moment there is one.
  const rss = () => Math.max(0, ...descendants(pid).map(rssOf));
  const deadline = performance.now() + 5000;
  while (rss() === 0 && performance.now() < deadline) await sleep(1);
  const rate = timeFill(rss, rss());
  child.kill('SIGINT');
  await new Promise((resolve) => child.once('exit', resolve));
  return rate;
}

async function havocDuty(percent: number): Promise<number> {
  const engine = new Engine({ name: 'bench-duty' });
  engine.update(config({ name: 'duty', type: 'resource', cpu_cores: 1, cpu_percent: percent }));
  await sleep(100);
  const cpu0 = cpuOf('self');
  const t0 = performance.now();
  await sleep(DUTY_SECONDS * 1000);
  const achieved = ((cpuOf('self') - cpu0) / ((performance.now() - t0) / 1000)) * 100;
  engine.close();
  await sleep(100);
  return achieved;
}

/** stress-ng run under a shell that reads its own children's CPU once stress-ng has exited. */
async function stressNgDuty(percent: number): Promise<number> {
  const script = `stress-ng --cpu 1 --cpu-load ${percent} --timeout ${DUTY_SECONDS}s >/dev/null 2>&1; cat /proc/$$/stat`;
  const t0 = performance.now();
  const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await new Promise((resolve) => child.once('exit', resolve));
  const seconds = (performance.now() - t0) / 1000;
  const f = out
    .slice(out.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return (((f[13] ?? 0) + (f[14] ?? 0)) / CLOCK_TICKS / seconds) * 100;
}

async function main(): Promise<void> {
  const fill = { havoc: [] as number[], stressNg: [] as number[] };
  for (let round = 0; round < ROUNDS; round += 1) {
    fill.havoc.push(await havocFill());
    fill.stressNg.push(await stressNgFill());
  }
  const rows: Record<string, string>[] = [];
  const havocRate = median(fill.havoc);
  const stressRate = median(fill.stressNg);
  rows.push({
    measure: `fill ${FILL_MB} MiB to resident (GiB/s, median of ${ROUNDS})`,
    havoc: havocRate.toFixed(2),
    'stress-ng': stressRate.toFixed(2),
    'havoc / stress-ng': `${(havocRate / stressRate).toFixed(2)}x`,
  });
  for (const percent of [25, 50, 75]) {
    const havoc = await havocDuty(percent);
    const stressNg = await stressNgDuty(percent);
    rows.push({
      measure: `1 core at ${percent}%: CPU over ${DUTY_SECONDS} s (% of a core)`,
      havoc: `${havoc.toFixed(1)} (error ${(havoc - percent).toFixed(1)})`,
      'stress-ng': `${stressNg.toFixed(1)} (error ${(stressNg - percent).toFixed(1)})`,
      'havoc / stress-ng': `|error| ${Math.abs(havoc - percent).toFixed(1)} vs ${Math.abs(stressNg - percent).toFixed(1)} points`,
    });
  }
  console.table(rows);
  // Other processes share the cores: the duty rows are only as good as the idle CPU left.
  const loadavg = readFileSync('/proc/loadavg', 'utf8').trim();
  console.log(`load average during the run: ${loadavg}`);
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'sabotage.json'), JSON.stringify({ node: process.version, loadavg, fill, rows }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
