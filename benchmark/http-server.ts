// The servers of benchmark/http.bench.ts, in their own process so that the load generator
// does not share an event loop with them. Reports its ports, and its memory on request.
// argv[2]: `throughput` (every throughput case), or one memory case alone in its process
// (`memory-bare`, `memory-havoc`) so that each has its own RSS.
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Engine, httpMiddleware, validateConfig, wrapHandler } from 'havoc';

const POLICIES = 100;

/** 100 policies on paths the benchmark never requests (a mix of exact and wildcard targets). */
function policies(extra: Record<string, unknown>[] = []): Record<string, unknown>[] {
  const list: Record<string, unknown>[] = Array.from({ length: POLICIES - extra.length }, (_, i) => ({
    name: `p${i}`,
    type: 'http',
    target: i % 4 === 0 ? `/api/v1/service-${i}/*` : `/api/v1/resource-${i}`,
    error_chance: 0.5,
    latency_chance: 0.5,
    latency_duration: '10ms',
  }));
  return [...extra, ...list];
}

function engine(name: string, list: Record<string, unknown>[]): Engine {
  return new Engine({ name, config: validateConfig({ version: 1, policies: list }), seed: 1 });
}

const hello = (_req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end('hello');
};

const nonMatching = engine('bench-http-100', policies());
const matchingQuiet = engine(
  'bench-http-match',
  policies([{ name: 'quiet', type: 'http', target: '/bench/*', error_chance: 0, latency_chance: 0 }]),
);
// For the memory run: the matching policy fires (1 in 10 requests gets a 503).
const matchingFiring = engine(
  'bench-http-firing',
  policies([{ name: 'firing', type: 'http', target: '/bench/*', error_chance: 0.1, error_code: 503 }]),
);

const expressBare = express();
expressBare.get('/bench/hello', hello);
const expressHavoc = express();
expressHavoc.use(httpMiddleware(nonMatching));
expressHavoc.get('/bench/hello', hello);

const throughput: Record<string, RequestListener> = {
  'node:http bare': hello,
  'node:http + wrapHandler, 100 non-matching policies': wrapHandler(nonMatching, hello),
  'node:http + wrapHandler, 1 matching policy (chances 0)': wrapHandler(matchingQuiet, hello),
  'express bare': expressBare,
  'express + httpMiddleware, 100 non-matching policies': expressHavoc,
};

const byMode: Record<string, Record<string, RequestListener>> = {
  throughput,
  'memory-bare': { 'node:http bare': hello },
  'memory-havoc': { 'node:http + wrapHandler, matching policy firing 10%': wrapHandler(matchingFiring, hello) },
};
const servers = byMode[process.argv[2] ?? 'throughput'];
if (servers === undefined) throw new Error(`unknown mode ${process.argv[2]}`);

async function main(): Promise<void> {
  const ports: Record<string, number> = {};
  for (const [name, listener] of Object.entries(servers)) {
    const server = createServer(listener);
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports[name] = (server.address() as AddressInfo).port;
  }
  // The benchmark is gone (finished or killed): so are its servers.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: string) => {
    if (message !== 'memory') return;
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc) for (let i = 0; i < 3; i += 1) gc();
    const { heapUsed, rss } = process.memoryUsage();
    process.send?.({ heapUsed, rss });
  });
  process.send?.({ ports });
}

void main();
