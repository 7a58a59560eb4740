// The HTTP control plane: state, live policy changes on the `api` layer (optionally leased),
// halt, resume, rollback, plan, and Prometheus metrics. JSON in and out; safe to expose:
// constant-time token check, refuses a non-loopback bind without a token, 413 before any
// parsing, never a truncated body.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { register as defaultRegistry, type Registry } from 'prom-client';
import { parseConfig } from './config.js';
import { parseDuration } from './duration.js';
import { API_LAYER, type Engine } from './engine.js';
import { ConfigError, HavocError } from './errors.js';
import { analyze } from './guard.js';
import type { Config } from './types.js';

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** Default `127.0.0.1`. Any other than a loopback address needs a token. */
  host?: string;
  /** Default 0: a free port (see `url`). */
  port?: number;
  /** Required on every request when set; default `process.env.HAVOC_TOKEN`. */
  token?: string;
  /** Registry served on `/metrics`; default prom-client's global registry. */
  registry?: Registry;
  /**
   * Serve from a worker thread, so that request parsing and traffic never stall the
   * application's event loop. The policy set is shared natively; `/metrics` and the reload
   * counters stay those of this thread's registry.
   */
  isolate?: boolean;
}

/** How a control plane running in a worker reaches the application thread's metrics. */
export interface MetricsBridge {
  metrics(): Promise<{ text: string; contentType: string }>;
  countReload(result: 'success' | 'error'): void;
}

export interface ControlPlane {
  /** `http://host:port`. */
  url: string;
  close(): Promise<void>;
}

/** Largest body accepted (pastaay's webhook limit). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Longest lease a `ttl` may ask for. */
const MAX_TTL_MS = 24 * 3_600_000;

/** An HTTP error answered as `{ "error": message, ...extra }`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Starts the control plane. Throws a `HavocError` (and binds nothing) when asked to listen on
 * a non-loopback address without a token.
 */
export async function startControlPlane(engine: Engine, options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  if (options.isolate) {
    const { isolated } = await import('./isolate.js');
    return isolated.controlPlane(engine, options);
  }
  const registry = options.registry ?? defaultRegistry;
  return serveControlPlane(engine, options, {
    async metrics() {
      engine.refreshMetrics();
      return { text: await registry.metrics(), contentType: registry.contentType };
    },
    countReload: (result) => engine.metrics.configReloads.labels('api', result).inc(),
  });
}

/** The control plane's server in this thread, its metrics reached through `bridge`. */
export async function serveControlPlane(engine: Engine, options: ControlPlaneOptions, bridge: MetricsBridge): Promise<ControlPlane> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const token = options.token ?? process.env.HAVOC_TOKEN ?? '';
  if (!isLoopback(host) && token === '') {
    throw new HavocError(`refusing to expose the havoc control plane on ${host} without a token: set the token option or HAVOC_TOKEN, or bind to 127.0.0.1`);
  }
  // Comparing fixed-length digests keeps the comparison constant-time whatever the lengths.
  const expected = token === '' ? null : digest(token);

  const authorized = (req: IncomingMessage): boolean => {
    if (expected === null) return true;
    const header = req.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
    const given = bearer ?? (req.headers['x-havoc-token'] as string | undefined);
    return given !== undefined && timingSafeEqual(digest(given), expected);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const failure = error instanceof HttpError ? error : new HttpError(500, error instanceof Error ? error.message : String(error));
      sendJson(res, failure.status, { error: failure.message, ...failure.extra }, failure.headers);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!authorized(req)) {
      req.resume();
      throw new HttpError(401, 'missing or wrong token: send "Authorization: Bearer <token>" or "X-Havoc-Token: <token>"', {}, { 'www-authenticate': 'Bearer realm="havoc"' });
    }
    const url = new URL(req.url ?? '/', 'http://control');
    const route = ROUTES[url.pathname];
    if (route === undefined) {
      req.resume();
      throw new HttpError(404, `no such endpoint: ${req.method} ${url.pathname}`);
    }
    const action = route[req.method ?? 'GET'];
    if (action === undefined) {
      req.resume();
      throw new HttpError(405, `${req.method} is not allowed on ${url.pathname}`, {}, { allow: Object.keys(route).join(', ') });
    }
    await action({ req, res, url, engine, bridge });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  engine: Engine;
  bridge: MetricsBridge;
}

type Action = (ctx: Context) => Promise<void> | void;

const ROUTES: Readonly<Record<string, Readonly<Record<string, Action>>>> = {
  '/havoc/state': { GET: ({ res, engine }) => sendJson(res, 200, stateOf(engine)) },
  '/havoc/policies': {
    async PUT({ req, res, url, engine, bridge }) {
      const ttlMs = ttlOf(url);
      const config = await readConfig(req);
      try {
        engine.applyLayer(API_LAYER, config, ttlMs === undefined ? {} : { ttlMs });
      } catch (error) {
        bridge.countReload('error');
        throw asHttpError(error);
      }
      bridge.countReload('success');
      sendJson(res, 200, { applied: API_LAYER, ...stateOf(engine) });
    },
    DELETE({ res, engine }) {
      const removed = engine.removeLayer(API_LAYER);
      sendJson(res, 200, { removed, ...stateOf(engine) });
    },
  },
  '/havoc/renew': {
    POST({ req, res, url, engine }) {
      req.resume();
      try {
        const remainingMs = engine.renewLease(API_LAYER, ttlOf(url));
        sendJson(res, 200, { layer: API_LAYER, remainingMs });
      } catch (error) {
        throw new HttpError(409, (error as Error).message);
      }
    },
  },
  '/havoc/halt': {
    POST({ req, res, engine }) {
      req.resume();
      engine.halt();
      sendJson(res, 200, stateOf(engine));
    },
  },
  '/havoc/resume': {
    POST({ req, res, engine }) {
      req.resume();
      engine.resume();
      sendJson(res, 200, stateOf(engine));
    },
  },
  '/havoc/rollback': {
    POST({ req, res, engine }) {
      req.resume();
      try {
        engine.rollback();
      } catch (error) {
        throw new HttpError(409, (error as Error).message);
      }
      sendJson(res, 200, stateOf(engine));
    },
  },
  '/havoc/plan': {
    async POST({ req, res }) {
      const config = await readConfig(req);
      sendJson(res, 200, analyze(config));
    },
  },
  '/metrics': {
    async GET({ req, res, bridge }) {
      req.resume();
      const { text, contentType } = await bridge.metrics();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) }).end(text);
    },
  },
};

function stateOf(engine: Engine): Record<string, unknown> {
  const state = engine.state();
  const config = engine.config();
  return {
    version: state.version,
    halted: state.halted,
    warmupRemainingMs: engine.warmupRemainingMs,
    policies: config.policies,
    layers: state.layers.map((layer) => ({ name: layer.name, policies: layer.config.policies.map((p) => p.name), lease: layer.lease })),
    leases: state.layers.filter((layer) => layer.lease !== null).map((layer) => ({ layer: layer.name, ...layer.lease })),
    history: state.history,
  };
}

function asHttpError(error: unknown): HttpError {
  if (error instanceof ConfigError) return new HttpError(422, error.message, { issues: error.issues });
  return new HttpError(500, error instanceof Error ? error.message : String(error));
}

function ttlOf(url: URL): number | undefined {
  const ttl = url.searchParams.get('ttl');
  if (ttl === null) return undefined;
  let ms: number;
  try {
    ms = parseDuration(ttl);
  } catch (error) {
    throw new HttpError(400, `ttl: ${(error as Error).message}`);
  }
  if (!(ms > 0 && ms <= MAX_TTL_MS)) throw new HttpError(400, `ttl must be more than 0 and at most 24h (got ${JSON.stringify(ttl)})`);
  return ms;
}

const CONFIG_TYPES: Readonly<Record<string, 'json' | 'yaml'>> = {
  'application/json': 'json',
  'application/yaml': 'yaml',
  'application/x-yaml': 'yaml',
  'text/yaml': 'yaml',
  'text/x-yaml': 'yaml',
};

/** Reads a YAML or JSON config body: 415 for another type, 413 past the limit (unparsed), 422 when invalid. */
async function readConfig(req: IncomingMessage): Promise<Config> {
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const format = CONFIG_TYPES[mediaType];
  if (format === undefined) {
    req.resume();
    throw new HttpError(415, `a config body must be sent as application/json or application/yaml (got ${mediaType === '' ? 'no content type' : JSON.stringify(mediaType)})`);
  }
  const text = await readBody(req);
  try {
    return parseConfig(text, { format, source: 'request body' });
  } catch (error) {
    throw asHttpError(error);
  }
}

function tooLarge(size: string): HttpError {
  return new HttpError(413, `body too large: ${size}; the limit is ${MAX_BODY_BYTES} bytes (1 MiB)`, {}, { connection: 'close' });
}

function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (declared > MAX_BODY_BYTES) {
    req.resume();
    return Promise.reject(tooLarge(`${declared} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // Stop keeping data at once; the rest is read and discarded so the client gets the 413.
        refused = true;
        chunks.length = 0;
        reject(tooLarge(`more than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' }).end(text);
}
