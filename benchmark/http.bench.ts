// Throughput of HTTP servers with havoc against the same servers without it, then heap and RSS
// growth of a server after 1,000,000 requests through a matching, firing policy, against a bare
// server's growth over as many.
//
// Throughput is paired: a case and its baseline, each alone in its process, serve autocannon
// load at the same time, both pinned to one core (the load generator has the other). The
// scheduler shares that core between them, so each serves requests at a rate inversely
// proportional to what a request costs it, and whatever the host does to the core's speed hits
// both alike: on a shared 2-core machine, back-to-back samples of one server swing by ±20%, the
// ratio of two servers sampled in the same second by a few percent. Which server's load starts
// first alternates between windows. A pair of processes also keeps a bias of its own for its
// lifetime (JIT and memory layout differ between two processes running the same code: a bare
// server against a bare server read 1.025 over 24 windows of one pair), so each comparison runs
// in several fresh pairs; a pair's ratio is its summed requests over its windows, and the median
// pair and the 95% confidence interval of that median are reported. A bare server against a
// second bare server shows what the method itself reads, and a calibration case (a fixed busy
// loop, its cost measured in this process) shows how small a cost it resolves. Each server's
// CPU time per request is read from /proc, and pairs below 0.9 are counted apart: now and then
// a fresh process serving havoc's per-request native call (with Express loaded) lands in a V8
// slow path in process.nextTick for its lifetime (README, "HTTP servers").
// Run: npm run bench:http   (HAVOC_BENCH_PAIRS process pairs per comparison, HAVOC_BENCH_ROUNDS
// windows of HAVOC_BENCH_SECONDS per pair, HAVOC_BENCH_MEMORY_REQUESTS to adjust;
// HAVOC_BENCH_ONLY=text runs only the cases whose name holds it, HAVOC_BENCH_VERBOSE=1 prints
// every window)
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { IncomingMessage, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { Bench } from 'tinybench';
import { Engine, validateConfig, wrapHandler } from 'havoc';
import { busyWork, CALIBRATION_ITERATIONS } from './calibration.js';
import { cpuOf } from './proc.js';
import { median, medianInterval } from './stats.js';
import { PATH, policies, type HttpCase } from './http-server.js';

const SECONDS = Number(process.env.HAVOC_BENCH_SECONDS ?? 1);
function count(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a whole number >= 1 (got ${process.env[name]})`);
  return value;
}

const PROCESS_PAIRS = count('HAVOC_BENCH_PAIRS', 10);
/** An even count starts each server's load first equally often. */
const WINDOWS = count('HAVOC_BENCH_ROUNDS', 4);
const WARMUP_WINDOWS = 2;
/** Runs only the comparisons whose case name contains this text. */
const ONLY = process.env.HAVOC_BENCH_ONLY;
const VERBOSE = process.env.HAVOC_BENCH_VERBOSE === '1';
const MEMORY_REQUESTS = Number(process.env.HAVOC_BENCH_MEMORY_REQUESTS ?? 1_000_000);
/** Per server: the pair shares the 32 connections the benchmark has always used. */
const CONNECTIONS = 16;

/** [baseline, case]: each comparison runs in PROCESS_PAIRS pairs of fresh processes. */
const PAIRS: [HttpCase, HttpCase][] = [
  ['node:http bare', 'node:http bare'],
  ['node:http bare', 'node:http + wrapHandler, 100 non-matching policies'],
  ['node:http bare', 'node:http + wrapHandler, 1 matching policy (chances 0)'],
  ['node:http bare', 'node:http + a fixed busy loop (calibration)'],
  ['express bare', 'express + httpMiddleware, 100 non-matching policies'],
  ['express bare', 'express + a no-op middleware'],
  ['express + a no-op middleware', 'express + httpMiddleware, 100 non-matching policies'],
];

interface Memory {
  heapUsed: number;
  rss: number;
}

/**
 * Pins this process to CPU 0 and returns how to start a server on CPU 1, or, where that cannot
 * be done (one CPU, no `taskset`), says so and runs unpinned.
 */
function pinning(): { execPath: string; execArgv: string[] } {
  const unpinned = { execPath: process.execPath, execArgv: ['--expose-gc'] };
  if (availableParallelism() < 2) {
    console.error('one CPU: the servers and the load generator run unpinned, and the pairs read noisier');
    return unpinned;
  }
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  } catch (error) {
    console.error(`taskset failed (${(error as Error).message}): running unpinned, and the pairs read noisier`);
    return unpinned;
  }
  return { execPath: 'taskset', execArgv: ['-c', '1', process.execPath, '--expose-gc'] };
}

const pin = pinning();

function ask<T>(child: ChildProcess, message?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const exited = (code: number | null): void => reject(new Error(`server exited (${code}) before answering`));
    child.once('exit', exited);
    child.once('message', (reply) => {
      child.off('exit', exited);
      resolve(reply as T);
    });
    if (message !== undefined) child.send(message);
  });
}

async function server(name: HttpCase): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(path.join(__dirname, 'http-server.js'), [name], {
    ...pin,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { port } = await ask<{ port: number }>(child);
  return { child, port };
}

async function load(port: number, options: { duration?: number; amount?: number }): Promise<autocannon.Result> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}${PATH}`, connections: CONNECTIONS, ...options });
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0)
    throw new Error(`load on port ${port}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`);
  return result;
}

interface PairResult {
  ratio: number;
  baselineRate: number;
  caseRate: number;
  /** CPU time (user + system) per request over the measured windows, µs, of each server. */
  baselineCpuUs: number;
  caseCpuUs: number;
}

/** A server's CPU time so far, in seconds; NaN where /proc cannot tell. */
function cpuSeconds(pid: number | undefined): number {
  try {
    return pid === undefined ? Number.NaN : cpuOf(pid);
  } catch {
    return Number.NaN;
  }
}

/** One pair of fresh processes under load together: WINDOWS windows after WARMUP_WINDOWS. */
async function runPair(baseline: HttpCase, name: HttpCase, label: string): Promise<PairResult> {
  const started = await Promise.allSettled([server(baseline), server(name)]);
  const servers = started.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const failed = started.find((outcome) => outcome.status === 'rejected');
  const [base, own] = servers;
  try {
    if (failed) throw failed.reason;
    let baseTotal = 0;
    let ownTotal = 0;
    let cpuAtStart: [number, number] = [0, 0];
    for (let window = -WARMUP_WINDOWS; window < WINDOWS; window += 1) {
      if (window === 0) cpuAtStart = [cpuSeconds(base!.child.pid), cpuSeconds(own!.child.pid)];
      const baseFirst = window % 2 === 0;
      const order = baseFirst ? [base!, own!] : [own!, base!];
      const [first, second] = await Promise.all(order.map(({ port }) => load(port, { duration: SECONDS })));
      const [baseResult, ownResult] = baseFirst ? [first!, second!] : [second!, first!];
      if (VERBOSE)
        console.error(
          `  window ${window}: ${baseResult.requests.total} / ${ownResult.requests.total} = ${(ownResult.requests.total / baseResult.requests.total).toFixed(3)}`,
        );
      if (window < 0) continue;
      baseTotal += baseResult.requests.total;
      ownTotal += ownResult.requests.total;
    }
    const ratio = ownTotal / baseTotal;
    const baselineCpuUs = ((cpuSeconds(base!.child.pid) - cpuAtStart[0]) * 1e6) / baseTotal;
    const caseCpuUs = ((cpuSeconds(own!.child.pid) - cpuAtStart[1]) * 1e6) / ownTotal;
    console.error(`${label}: ${ratio.toFixed(3)} (CPU per request: ${caseCpuUs.toFixed(1)} µs vs ${baselineCpuUs.toFixed(1)} µs)`);
    return { ratio, baselineRate: baseTotal / (WINDOWS * SECONDS), caseRate: ownTotal / (WINDOWS * SECONDS), baselineCpuUs, caseCpuUs };
  } finally {
    for (const { child } of servers) child.kill();
  }
}

async function throughputTable(): Promise<Record<string, number | string>[]> {
  const rows: Record<string, number | string>[] = [];
  for (const [baseline, name] of PAIRS) {
    if (ONLY !== undefined && !name.includes(ONLY)) continue;
    const label = baseline === name ? `${name} (a second process, control)` : name;
    const pairs: PairResult[] = [];
    for (let pair = 0; pair < PROCESS_PAIRS; pair += 1)
      pairs.push(await runPair(baseline, name, `${label}, pair ${pair + 1}/${PROCESS_PAIRS}`));
    const ratios = pairs.map((pair) => pair.ratio);
    const [low, high] = medianInterval(ratios);
    rows.push({
      server: label,
      baseline,
      'req/s (median of pairs; two servers share a core)': Math.round(median(pairs.map((pair) => pair.caseRate))),
      'baseline req/s': Math.round(median(pairs.map((pair) => pair.baselineRate))),
      'x baseline (median of pairs)': Number(median(ratios).toFixed(3)),
      '95% CI of the median': `${low.toFixed(3)}..${high.toFixed(3)}`,
      'min..max': `${Math.min(...ratios).toFixed(3)}..${Math.max(...ratios).toFixed(3)}`,
      // See the README: a fresh process now and then serves every request ~30% dearer for its lifetime.
      'pairs below 0.9': ratios.filter((ratio) => ratio < 0.9).length,
      'CPU µs/request (median of pairs)': `${median(pairs.map((pair) => pair.caseCpuUs)).toFixed(1)} vs ${median(pairs.map((pair) => pair.baselineCpuUs)).toFixed(1)}`,
    });
  }
  return rows;
}

/**
 * What `wrapHandler` and the calibration loop add to each request, measured in this process
 * without the network: the same real IncomingMessage through a no-op handler, bare and wrapped.
 */
async function hookCost(): Promise<{ bareNs: number; wrappedAddedNs: number; calibrationAddedNs: number }> {
  const engine = new Engine({ name: 'bench-http-hook', config: validateConfig({ version: 1, policies: policies() }), seed: 1 });
  const req = new IncomingMessage(new Socket());
  req.url = PATH;
  const res = null as unknown as ServerResponse; // the handlers never touch it
  let handled = 0;
  const handler = (): void => {
    handled += 1;
  };
  const wrapped = wrapHandler(engine, handler);
  const bench = new Bench({ time: 1000, warmup: true, warmupTime: 300 });
  bench
    .add('bare', () => handler())
    .add('wrapHandler, 100 non-matching policies', () => wrapped(req, res))
    .add('calibration loop', () => {
      busyWork();
      handler();
    });
  await bench.run();
  if (handled === 0) throw new Error('the handler never ran');
  const [bare, wrappedTask, calibration] = bench.tasks.map((task) => task.result!.latency.mean * 1e6);
  return {
    bareNs: Math.round(bare!),
    wrappedAddedNs: Math.round(wrappedTask! - bare!),
    calibrationAddedNs: Math.round(calibration! - bare!),
  };
}

const mb = (bytes: number): number => Number((bytes / 1024 / 1024).toFixed(2));

/** Heap and RSS of a fresh server process across MEMORY_REQUESTS requests, after a warmup. */
async function memoryRow(name: HttpCase): Promise<Record<string, number | string>> {
  const { child, port } = await server(name);
  try {
    // Warm up to a steady state first (young generation sized, allocator arenas grown), so growth means a leak.
    await autocannon({ url: `http://127.0.0.1:${port}${PATH}`, connections: 2 * CONNECTIONS, amount: 200_000 });
    const before = await ask<Memory>(child, 'memory');
    const result = await autocannon({ url: `http://127.0.0.1:${port}${PATH}`, connections: 2 * CONNECTIONS, amount: MEMORY_REQUESTS });
    const after = await ask<Memory>(child, 'memory');
    return {
      server: name,
      requests: result.requests.total,
      'non-2xx': result.non2xx,
      'heap growth MB': mb(after.heapUsed - before.heapUsed),
      'RSS before MB': mb(before.rss),
      'RSS growth MB': mb(after.rss - before.rss),
    };
  } finally {
    child.kill();
  }
}

async function main(): Promise<void> {
  const rows = await throughputTable();
  console.table(rows);
  // A server of a pair has about half a core: a bare request's CPU time is half a second over its rate.
  const bareRow = rows.find((row) => row.baseline === 'node:http bare');
  const bareRequestNs = bareRow === undefined ? Number.NaN : (0.5 * 1e9) / Number(bareRow['baseline req/s']);
  const hook = await hookCost();
  const implied = (addedNs: number): number => Number((bareRequestNs / (bareRequestNs + addedNs)).toFixed(3));
  const hookRow = {
    ...hook,
    calibrationIterations: CALIBRATION_ITERATIONS,
    'bare request (ns of CPU, from its req/s at half a core)': Math.round(bareRequestNs),
    'implied x baseline: wrapHandler': implied(hook.wrappedAddedNs),
    'implied x baseline: calibration': implied(hook.calibrationAddedNs),
  };
  console.table([hookRow]);
  const memory = [await memoryRow('node:http bare'), await memoryRow('node:http + wrapHandler, matching policy firing 10%')];
  console.table(memory);
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    path.join(out, 'http.json'),
    JSON.stringify(
      {
        node: process.version,
        pinned: pin.execPath === 'taskset',
        seconds: SECONDS,
        pairs: PROCESS_PAIRS,
        windows: WINDOWS,
        connections: CONNECTIONS,
        rows,
        hook: hookRow,
        memory,
      },
      null,
      2,
    ),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
