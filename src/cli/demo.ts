/**
 * `havoc demo`: nothing to set up. A small shop service (a few routes over an in-memory store)
 * with havoc in its request path, an engine, the control plane on loopback, and a built-in
 * scenario (about 15 s) guarded by an SLO probe; then it keeps serving until Ctrl-C
 * (`--once`: exits after the report).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, type Command } from 'commander';
import { Registry } from 'prom-client';

import { startControlPlane } from '../control-plane.js';
import { Engine } from '../engine.js';
import { wrapHandler } from '../interceptors/http.js';
import { Client } from './client.js';
import { CliError, line, paint } from './output.js';
import { finish, progressWriter, runScenario } from './run.js';
import type { Scenario } from './scenario.js';

/**
 * The built-in scenario (13 s): a baseline, half the reads 150 ms slower (tolerating, so Apdex
 * drops to about 0.75), then 5% errors; all within its SLO, so the demo exits 0.
 */
export function demoScenario(serviceUrl: string): Scenario {
  const chaos = (policies: Record<string, unknown>[]) => ({
    text: JSON.stringify({ version: 1, policies }),
    format: 'json' as const,
    policies: policies.map((p) => String(p.name)),
  });
  return {
    probe: { url: `${serviceUrl}/items`, intervalMs: 100, timeoutMs: 2000 },
    slo: { windowMs: 3000, maxErrorRate: 0.25, maxP99Ms: 1500, minApdex: 0.5, apdexTMs: 100 },
    steps: [
      { name: 'baseline', durationMs: 3000 },
      {
        name: 'slow-reads',
        durationMs: 5000,
        chaos: chaos([{ name: 'slow-items', type: 'http', target: '/items*', latency_chance: 0.5, latency_duration: '150ms' }]),
      },
      {
        name: 'flaky-reads',
        durationMs: 5000,
        chaos: chaos([{ name: 'flaky-items', type: 'http', target: '/items*', error_chance: 0.05, error_code: 503 }]),
      },
    ],
  };
}

/** The demo service: GET /health, GET /items, GET /items/:id, POST /items (JSON), over a Map. */
function shop(engine: Engine): Server {
  const items = new Map<number, { id: number; name: string; price: number }>([
    [1, { id: 1, name: 'teapot', price: 18 }],
    [2, { id: 2, name: 'kettle', price: 35 }],
    [3, { id: 3, name: 'mug', price: 6 }],
  ]);
  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/health') return send(res, 200, { ok: true });
    if (path === '/items' && req.method === 'GET') return send(res, 200, [...items.values()]);
    if (path === '/items' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body = body.length < 10_000 ? body + chunk : body));
      req.on('end', () => {
        try {
          const { name, price } = JSON.parse(body) as { name?: unknown; price?: unknown };
          if (typeof name !== 'string' || typeof price !== 'number')
            return send(res, 400, { error: 'send { name: string, price: number }' });
          const id = Math.max(0, ...items.keys()) + 1;
          items.set(id, { id, name, price });
          send(res, 201, items.get(id));
        } catch {
          send(res, 400, { error: 'body must be JSON' });
        }
      });
      return undefined;
    }
    const match = /^\/items\/(\d+)$/.exec(path);
    if (match && req.method === 'GET') {
      const item = items.get(Number(match[1]));
      return item ? send(res, 200, item) : send(res, 404, { error: 'no such item' });
    }
    return send(res, 404, { error: 'not found' });
  };
  return createServer(wrapHandler(engine, handler));
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('a port from 0 to 65535');
  return port;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'nothing to set up: a demo service, an engine and the control plane on loopback, a built-in scenario with a report, then serve until Ctrl-C',
    )
    .option('--once', 'exit after the report')
    .option('--port <port>', 'demo service port (default: a free one)', parsePort, 0)
    .option('--control-port <port>', 'control plane port (default: a free one)', parsePort, 0)
    .option('--report <file>', 'also write the report: .md as Markdown, else JSON')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExamples:\n  $ havoc demo\n  $ havoc demo --once --report demo.md')
    .action(async (options: { once?: boolean; port: number; controlPort: number; report?: string; json?: boolean }) => {
      const registry = new Registry();
      const engine = new Engine({ name: `havoc-demo-${process.pid}`, registry, warmupMs: 0 });
      const service = shop(engine);
      const serviceUrl = await new Promise<string>((resolve, reject) => {
        service.once('error', (error) =>
          reject(new CliError(`demo service: cannot listen on 127.0.0.1:${options.port} (${error.message})`)),
        );
        service.listen(options.port, '127.0.0.1', () => resolve(`http://127.0.0.1:${(service.address() as AddressInfo).port}`));
      });
      const plane = await startControlPlane(engine, { host: '127.0.0.1', port: options.controlPort, token: '', registry }).catch(
        (error: Error) => {
          service.close();
          throw new CliError(`control plane: cannot listen on 127.0.0.1:${options.controlPort} (${error.message})`);
        },
      );
      const say = options.json ? (text: string) => process.stderr.write(`${text}\n`) : line;
      say(`demo service   ${serviceUrl}  (GET /health, GET /items, GET /items/:id, POST /items)`);
      say(`control plane  ${plane.url}  (try: HAVOC_URL=${plane.url} havoc status)`);
      if (await exists(`${plane.url}/havoc/console`)) say(`console        ${plane.url}/havoc/console`);
      say('');
      const close = async () => {
        await plane.close();
        const closed = new Promise<void>((resolve) => service.close(() => resolve()));
        service.closeAllConnections();
        await closed;
        engine.close();
      };
      const controller = new AbortController();
      const interrupt = () => controller.abort();
      process.once('SIGINT', interrupt);
      process.once('SIGTERM', interrupt);
      try {
        const report = await runScenario(demoScenario(serviceUrl), new Client({ url: plane.url, token: '' }), {
          name: 'built-in demo scenario',
          progress: progressWriter(),
          signal: controller.signal,
        });
        finish(report, options);
      } catch (error) {
        await close();
        throw error;
      } finally {
        process.off('SIGINT', interrupt);
        process.off('SIGTERM', interrupt);
      }
      if (options.once) return close();
      say('');
      say(paint('dim', `still serving: ${serviceUrl} and ${plane.url}; Ctrl-C stops`));
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      return close();
    });
}

async function exists(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}
