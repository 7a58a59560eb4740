// Throughput of HTTP servers with havoc against the same servers without it, measured in the
// same run with autocannon on loopback (interleaved rounds, median), then heap and RSS growth
// of a server after 1,000,000 requests through a matching, firing policy.
// Run: npm run bench:http   (HAVOC_BENCH_SECONDS, HAVOC_BENCH_ROUNDS, HAVOC_BENCH_MEMORY_REQUESTS to adjust)
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';

const SECONDS = Number(process.env.HAVOC_BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.HAVOC_BENCH_ROUNDS ?? 3);
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
  if (result.errors > 0 || result.timeouts > 0) throw new Error(`load on port ${port}: ${result.errors} errors, ${result.timeouts} timeouts`);
  return result;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mb = (bytes: number): number => Number((bytes / 1024 / 1024).toFixed(2));

async function main(): Promise<void> {
  const child = fork(path.join(__dirname, 'http-server.js'), [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const { ports } = await ask<{ ports: Record<string, number> }>(child);
    const throughputCases = Object.keys(ports).filter((name) => !name.startsWith('memory'));
    const samples = new Map<string, number[]>(throughputCases.map((name) => [name, []]));
    for (const name of throughputCases) await load(ports[name]!, { duration: 1 }); // warm up every server
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const name of throughputCases) {
        const result = await load(ports[name]!, { duration: SECONDS });
        samples.get(name)!.push(result.requests.average);
        console.error(`round ${round + 1}/${ROUNDS} ${name}: ${Math.round(result.requests.average)} req/s`);
      }
    }
    const reqs = (name: string): number => median(samples.get(name)!);
    const baselineOf = (name: string): string => (name.startsWith('express') ? 'express bare' : 'node:http bare');
    const rows = throughputCases.map((name) => ({
      server: name,
      'req/s (median)': Math.round(reqs(name)),
      'x baseline': Number((reqs(name) / reqs(baselineOf(name))).toFixed(3)),
    }));
    console.table(rows);

    const memoryPort = ports['memory: node:http + wrapHandler, matching policy firing 10%']!;
    await load(memoryPort, { amount: 20_000 });
    const before = await ask<Memory>(child, 'memory');
    const started = Date.now();
    const result = await autocannon({ url: `http://127.0.0.1:${memoryPort}${PATH}`, connections: CONNECTIONS, amount: MEMORY_REQUESTS });
    const after = await ask<Memory>(child, 'memory');
    const memory = {
      requests: result.requests.total,
      errorResponses: result.non2xx,
      seconds: Math.round((Date.now() - started) / 1000),
      heapBeforeMb: mb(before.heapUsed),
      heapAfterMb: mb(after.heapUsed),
      heapGrowthMb: mb(after.heapUsed - before.heapUsed),
      rssBeforeMb: mb(before.rss),
      rssAfterMb: mb(after.rss),
      rssGrowthMb: mb(after.rss - before.rss),
    };
    console.table([memory]);
    const out = path.join(__dirname, '..', '..', 'bench-results');
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'http.json'), JSON.stringify({ node: process.version, seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS, rows, memory }, null, 2));
  } finally {
    child.kill();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
