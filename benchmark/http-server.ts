// One server of benchmark/http.bench.ts, alone in its process: the load generator shares no event
// loop with it, and two of these can share one core. argv[2] names the case. Reports its port,
// and its memory on request.
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import { Engine, httpMiddleware, validateConfig, wrapHandler } from 'havoc';
import { busyWork } from './calibration';

const POLICIES = 100;
/** The one path the benchmark requests. */
export const PATH = '/bench/hello';

/** 100 policies on paths the benchmark never requests (a mix of exact and wildcard targets). */
export function policies(extra: Record<string, unknown>[] = []): Record<string, unknown>[] {
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

/**
 * Express is loaded only by the processes that serve it: a node:http server has no reason to
 * hold it, and with it loaded havoc's cases land in a V8 slow path more often (README).
 */
async function expressApp(middleware?: express.RequestHandler): Promise<express.Express> {
  const { default: createApp } = await import('express');
  const app = createApp();
  if (middleware) app.use(middleware);
  app.get(PATH, hello);
  return app;
}

/** Every case, built only in the process that serves it. */
export const cases = {
  'node:http bare': async (): Promise<RequestListener> => hello,
  'node:http + wrapHandler, 100 non-matching policies': async (): Promise<RequestListener> =>
    wrapHandler(engine('bench-http-100', policies()), hello),
  'node:http + wrapHandler, 1 matching policy (chances 0)': async (): Promise<RequestListener> =>
    wrapHandler(
      engine('bench-http-match', policies([{ name: 'quiet', type: 'http', target: '/bench/*', error_chance: 0, latency_chance: 0 }])),
      hello,
    ),
  'node:http + a fixed busy loop (calibration)': async (): Promise<RequestListener> => (req, res) => {
    busyWork();
    hello(req, res);
  },
  'express bare': (): Promise<RequestListener> => expressApp(),
  // Any middleware costs Express a router layer and a next() per request: havoc's is compared with this.
  'express + a no-op middleware': (): Promise<RequestListener> => expressApp((_req, _res, next) => next()),
  'express + httpMiddleware, 100 non-matching policies': (): Promise<RequestListener> =>
    expressApp(httpMiddleware(engine('bench-http-100', policies()))),
  // For the memory run: the matching policy fires (1 in 10 requests gets a 503).
  'node:http + wrapHandler, matching policy firing 10%': async (): Promise<RequestListener> =>
    wrapHandler(
      engine('bench-http-firing', policies([{ name: 'firing', type: 'http', target: '/bench/*', error_chance: 0.1, error_code: 503 }])),
      hello,
    ),
} satisfies Record<string, () => Promise<RequestListener>>;

/** A case's name. */
export type HttpCase = keyof typeof cases;

async function main(name: string): Promise<void> {
  const build = (cases as Record<string, () => Promise<RequestListener>>)[name];
  if (build === undefined) throw new Error(`unknown case ${JSON.stringify(name)}; one of: ${Object.keys(cases).join(', ')}`);
  const server = createServer(await build());
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // The benchmark is gone (finished or killed): so is this server.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: string) => {
    if (message !== 'memory') return;
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc) for (let i = 0; i < 3; i += 1) gc();
    const { heapUsed, rss } = process.memoryUsage();
    process.send?.({ heapUsed, rss });
  });
  process.send?.({ port: (server.address() as AddressInfo).port });
}

if (require.main === module) void main(process.argv[2] ?? '');
