// Throughput of HTTP servers with havoc against the same servers without it, measured in the
// same run with autocannon on loopback, then heap and RSS growth of a server after 1,000,000
// requests through a matching, firing policy, against a bare server's growth over as many. The cases run in interleaved rounds; each ratio
// is taken within a round (against the baseline measured just before it) and the median of
// those is reported, so that load changes on a shared machine cancel out.
// Run: npm run bench:http   (HAVOC_BENCH_SECONDS, HAVOC_BENCH_ROUNDS, HAVOC_BENCH_MEMORY_REQUESTS to adjust)
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { IncomingMessage, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import path from 'node:path';
import autocannon from 'autocannon';
import { Bench } from 'tinybench';
import { Engine, validateConfig, wrapHandler } from 'havoc';

const SECONDS = Number(process.env.HAVOC_BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.HAVOC_BENCH_ROUNDS ?? 9);
const MEMORY_REQUESTS = Number(process.env.HAVOC_BENCH_MEMORY_REQUESTS ?? 1_000_000);
const CONNECTIONS = 32;
const PATH = '/bench/hello';

interface Memory {
  heapUsed: number;
  rss: number;
}

function ask<T>(child: ChildProcess, message?: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (reply) => resolve(reply as T));
    if (message !== undefined) child.send(message);
  });
}

async function load(port: number, options: { duration?: number; amount?: number }): Promise<autocannon.Result> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}${PATH}`, connections: CONNECTIONS, ...options });
  if (result.errors > 0 || result.timeouts > 0)
    throw new Error(`load on port ${port}: ${result.errors} errors, ${result.timeouts} timeouts`);
  return result;
}

/**
 * What `wrapHandler` adds to each request, measured in this process without the network: the
 * same real IncomingMessage through a no-op handler, bare and wrapped. Steadier than the
 * loopback runs on a shared machine.
 */
async function hookCost(): Promise<{ bareNs: number; wrappedNs: number; addedNs: number }> {
  const policies = Array.from({ length: 100 }, (_, i) => ({
    name: `p${i}`,
    type: 'http',
    target: i % 4 === 0 ? `/api/v1/service-${i}/*` : `/api/v1/resource-${i}`,
    error_chance: 0.5,
  }));
  const engine = new Engine({ name: 'bench-http-hook', config: validateConfig({ version: 1, policies }) });
  const req = new IncomingMessage(new Socket());
  req.url = PATH;
  const res = null as unknown as ServerResponse; // the handlers never touch it
  let handled = 0;
  const handler = (): void => {
    handled += 1;
  };
  const wrapped = wrapHandler(engine, handler);
  const bench = new Bench({ time: 1000, warmup: true, warmupTime: 300 });
  bench.add('bare', () => handler()).add('wrapHandler, 100 non-matching policies', () => wrapped(req, res));
  await bench.run();
  if (handled === 0) throw new Error('the handler never ran');
  const [bare, wrappedTask] = bench.tasks.map((task) => task.result!.latency.mean * 1e6);
  return { bareNs: Math.round(bare!), wrappedNs: Math.round(wrappedTask!), addedNs: Math.round(wrappedTask! - bare!) };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mb = (bytes: number): number => Number((bytes / 1024 / 1024).toFixed(2));

function server(mode: string): ChildProcess {
  return fork(path.join(__dirname, 'http-server.js'), [mode], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

async function throughputTable(): Promise<Record<string, number | string>[]> {
  const child = server('throughput');
  try {
    const { ports } = await ask<{ ports: Record<string, number> }>(child);
    const cases = Object.keys(ports);
    const samples = new Map<string, number[]>(cases.map((name) => [name, []]));
    for (const name of cases) await load(ports[name]!, { duration: 1 }); // warm up every server
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const name of cases) {
        const result = await load(ports[name]!, { duration: SECONDS });
        samples.get(name)!.push(result.requests.average);
        console.error(`round ${round + 1}/${ROUNDS} ${name}: ${Math.round(result.requests.average)} req/s`);
      }
    }
    const baselineOf = (name: string): string => (name.startsWith('express') ? 'express bare' : 'node:http bare');
    return cases.map((name) => {
      const own = samples.get(name)!;
      const base = samples.get(baselineOf(name))!;
      const ratios = own.map((value, round) => value / base[round]!);
      return {
        server: name,
        'req/s (median)': Math.round(median(own)),
        'x baseline (median of rounds)': Number(median(ratios).toFixed(3)),
        'min..max': `${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)}`,
      };
    });
  } finally {
    child.kill();
  }
}

/** Heap and RSS of a fresh server process across MEMORY_REQUESTS requests, after a warmup. */
async function memoryRow(mode: string): Promise<Record<string, number | string>> {
  const child = server(mode);
  try {
    const { ports } = await ask<{ ports: Record<string, number> }>(child);
    const [name, port] = Object.entries(ports)[0]!;
    // Warm up to a steady state first (young generation sized, allocator arenas grown), so growth means a leak.
    await load(port, { amount: 200_000 });
    const before = await ask<Memory>(child, 'memory');
    const result = await autocannon({ url: `http://127.0.0.1:${port}${PATH}`, connections: CONNECTIONS, amount: MEMORY_REQUESTS });
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
  const bareRequestNs = 1e9 / Number(rows.find((row) => row.server === 'node:http bare')!['req/s (median)']);
  const hook = await hookCost();
  const hookRow = {
    ...hook,
    'bare request (ns, from its req/s)': Math.round(bareRequestNs),
    'implied x baseline': Number((bareRequestNs / (bareRequestNs + hook.addedNs)).toFixed(3)),
  };
  console.table([hookRow]);
  const memory = [await memoryRow('memory-bare'), await memoryRow('memory-havoc')];
  console.table(memory);
  const out = path.join(__dirname, '..', '..', 'bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    path.join(out, 'http.json'),
    JSON.stringify(
      { node: process.version, seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS, rows, hook: hookRow, memory },
      null,
      2,
    ),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
