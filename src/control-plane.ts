// The HTTP control plane: state, live policy changes on the `api` layer (optionally leased),
// halt, resume, rollback, plan, validate, a live event stream, Prometheus metrics, its own
// OpenAPI document and the web console. JSON in and out; safe to expose: constant-time token
// check, refuses a non-loopback bind without a token, 413 before any parsing, never a truncated
// body, bounded connections and header/request times. Only the console's static files are
// served without the token: they hold no data, and every call the page makes needs it.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { register as defaultRegistry, type Registry } from 'prom-client';
import { controlSharedBreaker, sharedBreakers } from './breaker/control.js';
import { sharedRetryBudgets } from './retry/budget.js';
import { API_LAYER, type Engine } from './engine.js';
import { HavocError } from './errors.js';
import { consoleAsset } from './console.js';
import { MAX_EVENT_CLIENTS, eventHub, type EventHub } from './events.js';
import { analyze, type RiskReport } from './guard.js';
import openapi from './openapi.json';
import type { Config } from './types.js';
import {
  API_HEADERS,
  HttpError,
  answerClientError,
  asHttpError,
  browserRefusal,
  isLoopback,
  readConfig,
  requestPath,
  requestUrl,
  sendAsset,
  sendJson,
  ttlOf,
} from './control-plane/http.js';

export { MAX_BODY_BYTES } from './control-plane/http.js';

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

/** What the console's live feed shows of the application thread's metrics. */
export interface LiveFigures {
  /** `havoc_faults_injected_total`, cumulative, per series. */
  faults: { policy: string; protocol: string; fault: string; count: number }[];
  /** `havoc_limiter_limit` and `havoc_limiter_inflight` of each adaptive limiter, when there are any. */
  limiters: { name: string; limit: number; inflight: number }[];
}

/** How a control plane running in a worker reaches the application thread's metrics. */
export interface MetricsBridge {
  metrics(): Promise<{ text: string; contentType: string }>;
  countReload(result: 'success' | 'error'): void;
  live(): Promise<LiveFigures>;
}

export interface ControlPlane {
  /** `http://host:port`. */
  url: string;
  close(): Promise<void>;
}

/** Open connections past this are closed at once, so that no client can exhaust the process's descriptors. */
export const MAX_CONNECTIONS = 256;
/** A client has this long to send its request line and headers (slowloris), and this long for the whole request. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** A connection with no traffic either way (a client that stops reading its response) is closed after this long. */
const IDLE_TIMEOUT_MS = 30_000;
/** The served OpenAPI document (src/openapi.json), serialized once. */
const OPENAPI_TEXT = JSON.stringify(openapi);

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** How `isolate: true` starts a control plane in a worker thread. */
export type IsolatedControlPlane = (engine: Engine, options: ControlPlaneOptions) => Promise<ControlPlane>;

// Dependencies run one way: ./isolate.ts runs this module in a worker, so it imports this
// module, never the reverse. It hands its starter in when it loads (src/index.ts loads it,
// so `isolate: true` works for everyone who imports the package).
let isolatedControlPlane: IsolatedControlPlane | undefined;

/** Called by ./isolate.ts when it loads: how `isolate: true` is served. */
export function provideIsolatedControlPlane(start: IsolatedControlPlane): void {
  isolatedControlPlane = start;
}

/**
 * Starts the control plane. Throws a `HavocError` (and binds nothing) when asked to listen on
 * a non-loopback address without a token.
 */
export async function startControlPlane(engine: Engine, options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  if (options.isolate) {
    if (isolatedControlPlane === undefined)
      throw new HavocError("isolate: true is wired by havoc's package entry: import 'havoc', not its internal modules");
    return isolatedControlPlane(engine, options);
  }
  const registry = options.registry ?? defaultRegistry;
  return serveControlPlane(engine, options, {
    async metrics() {
      engine.refreshMetrics();
      return { text: await registry.metrics(), contentType: registry.contentType };
    },
    countReload: (result) => engine.metrics.configReloads.labels('api', result).inc(),
    live: () => liveFigures(engine, registry),
  });
}

type Series = { labels: Partial<Record<string, string | number>>; value: number }[];

async function seriesOf(registry: Registry, name: string): Promise<Series> {
  const metric = registry.getSingleMetric(name);
  return metric === undefined ? [] : ((await metric.get()).values as Series);
}

/**
 * The fault counts the engine made (its own registry) and the adaptive limiters of the served
 * registry (or of the engine's, where they are not): nothing is created in either.
 */
export async function liveFigures(engine: Engine, registry: Registry): Promise<LiveFigures> {
  const faults = ((await engine.metrics.faultsInjected.get()).values as Series).map(({ labels, value }) => ({
    policy: String(labels.policy ?? ''),
    protocol: String(labels.protocol ?? ''),
    fault: String(labels.fault ?? ''),
    count: value,
  }));
  const limiterRegistry = registry.getSingleMetric('havoc_limiter_limit') === undefined ? undefined : registry;
  const limits = await seriesOf(limiterRegistry ?? engineRegistry(engine), 'havoc_limiter_limit');
  const inflight = await seriesOf(limiterRegistry ?? engineRegistry(engine), 'havoc_limiter_inflight');
  const inflightByName = new Map(inflight.map(({ labels, value }) => [String(labels.name ?? ''), value]));
  const limiters = limits.map(({ labels, value }) => {
    const name = String(labels.name ?? '');
    return { name, limit: value, inflight: inflightByName.get(name) ?? 0 };
  });
  return { faults, limiters };
}

/** A registry that holds only the engine's own limiter gauges (read through their `collect`). */
function engineRegistry(engine: Engine): Registry {
  const gauges = { havoc_limiter_limit: engine.metrics.limiterLimit, havoc_limiter_inflight: engine.metrics.limiterInflight };
  return { getSingleMetric: (name: string) => gauges[name as keyof typeof gauges] } as unknown as Registry;
}

/** The control plane's server in this thread, its metrics reached through `bridge`. */
export async function serveControlPlane(engine: Engine, options: ControlPlaneOptions, bridge: MetricsBridge): Promise<ControlPlane> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const token = options.token ?? process.env.HAVOC_TOKEN ?? '';
  if (!isLoopback(host) && token === '') {
    throw new HavocError(
      `refusing to expose the havoc control plane on ${host} without a token: set the token option or HAVOC_TOKEN, or bind to 127.0.0.1`,
    );
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

  const server = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      // How often the two timeouts above are checked (Node's default is every 30 s).
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      handle(req, res).catch((error: unknown) => {
        const failure = error instanceof HttpError ? error : new HttpError(500, error instanceof Error ? error.message : String(error));
        // A refused request whose body is still coming in is not drained: the connection closes.
        const headers = req.complete ? failure.headers : { ...failure.headers, connection: 'close' };
        sendJson(res, failure.status, { error: failure.message, ...failure.extra }, headers);
      });
    },
  );
  server.maxConnections = MAX_CONNECTIONS;
  server.maxHeadersCount = 100;
  // The two timeouts above cover connections that never finish (or never begin) a request; this
  // one covers the response side, a client that stops reading.
  server.setTimeout(IDLE_TIMEOUT_MS);
  server.on('clientError', answerClientError);

  const events = eventHub({
    mark: () => {
      const state = engine.state();
      return `${state.version}:${state.halted}`;
    },
    state: () => consoleStateOf(engine),
    live: async () => ({
      at: Date.now(),
      warmupRemainingMs: engine.warmupRemainingMs,
      sabotage: engine.sabotage(),
      ...(await bridge.live()),
    }),
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refusal = browserRefusal(req, expected === null);
    if (refusal !== undefined) {
      req.resume();
      throw new HttpError(403, refusal);
    }
    // The console's page and files are public (see ./console.ts); anything else they do not
    // name goes through the token check like every other path.
    if (req.method === 'GET' || req.method === 'HEAD') {
      const asset = consoleAsset(requestPath(req));
      if (asset !== undefined) {
        req.resume();
        sendAsset(res, req.method, asset);
        return;
      }
    }
    if (!authorized(req)) {
      req.resume();
      throw new HttpError(
        401,
        'missing or wrong token: send "Authorization: Bearer <token>" or "X-Havoc-Token: <token>"',
        {},
        { 'www-authenticate': 'Bearer realm="havoc"' },
      );
    }
    const url = requestUrl(req);
    const { route, params } = findRoute(url.pathname, req);
    if (route === undefined) {
      req.resume();
      throw new HttpError(404, `no such endpoint: ${req.method} ${url.pathname}`);
    }
    const method = req.method ?? 'GET';
    const action = Object.hasOwn(route, method) ? route[method] : undefined;
    if (action === undefined) {
      req.resume();
      throw new HttpError(405, `${req.method} is not allowed on ${url.pathname}`, {}, { allow: Object.keys(route).join(', ') });
    }
    await action({ req, res, url, engine, bridge, params, events });
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
        // Event streams end first, with their last frame written, then every socket goes.
        events.close();
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
  /** The `{name}` segments of a templated path, decoded. */
  params: Readonly<Record<string, string>>;
  events: EventHub;
}

/** The route for `pathname`: an exact path first, else a template whose `{x}` segments each match one non-empty segment. */
function findRoute(
  pathname: string,
  req: IncomingMessage,
): { route?: Readonly<Record<string, Action>>; params: Readonly<Record<string, string>> } {
  if (Object.hasOwn(ROUTES, pathname)) return { route: ROUTES[pathname], params: {} };
  const segments = pathname.split('/');
  for (const [template, route] of Object.entries(ROUTES)) {
    const parts = template.split('/');
    if (!template.includes('{') || parts.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const matches = parts.every((part, i) => {
      const segment = segments[i] ?? '';
      if (!(part.startsWith('{') && part.endsWith('}'))) return part === segment;
      if (segment === '') return false;
      try {
        params[part.slice(1, -1)] = decodeURIComponent(segment);
      } catch {
        req.resume();
        throw new HttpError(400, `bad percent-encoding in the path: ${JSON.stringify(segment.slice(0, 100))}`);
      }
      return true;
    });
    if (matches) return { route, params };
  }
  return { params: {} };
}

/** POST /havoc/breakers/{name}/(isolate|reset): the breaker's new status, or 404. */
function breakerAction(action: 'isolate' | 'reset'): Readonly<Record<string, Action>> {
  return {
    POST({ req, res, params }) {
      req.resume();
      const name = params.name ?? '';
      const status = controlSharedBreaker(name, action);
      if (status === undefined) throw new HttpError(404, `no shared circuit breaker named ${JSON.stringify(name)}`);
      sendJson(res, 200, status);
    },
  };
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
      // A bad ttl is the client's 400, not a missing lease's 409.
      const ttlMs = ttlOf(url);
      let remainingMs: number;
      try {
        remainingMs = engine.renewLease(API_LAYER, ttlMs);
      } catch (error) {
        throw new HttpError(409, (error as Error).message);
      }
      sendJson(res, 200, { layer: API_LAYER, remainingMs });
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
  '/havoc/validate': {
    async POST({ req, res, engine }) {
      let config: Config;
      try {
        config = await readConfig(req);
      } catch (error) {
        if (error instanceof HttpError && error.status === 422) {
          sendJson(res, 200, { valid: false, issues: error.extra.issues });
          return;
        }
        throw error;
      }
      const issues = conflictsOf(engine, config);
      sendJson(res, 200, issues.length > 0 ? { valid: false, issues } : { valid: true, issues: [], risk: analyze(config) });
    },
  },
  '/havoc/events': {
    GET({ req, res, events }) {
      req.resume();
      if (!events.open(res, API_HEADERS))
        throw new HttpError(503, `too many event streams open (at most ${MAX_EVENT_CLIENTS})`, {}, { 'retry-after': '5' });
    },
  },
  '/metrics': {
    async GET({ req, res, bridge }) {
      req.resume();
      const { text, contentType } = await bridge.metrics();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) }).end(text);
    },
  },
  '/havoc/resilience': {
    GET({ req, res }) {
      req.resume();
      sendJson(res, 200, { breakers: sharedBreakers(), budgets: sharedRetryBudgets() });
    },
  },
  '/havoc/breakers/{name}/isolate': breakerAction('isolate'),
  '/havoc/breakers/{name}/reset': breakerAction('reset'),
  '/havoc/openapi.json': {
    GET({ req, res }) {
      req.resume();
      res
        .writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(OPENAPI_TEXT),
          'cache-control': 'no-store',
        })
        .end(OPENAPI_TEXT);
    },
  },
};

/** Path → methods of the router, for tests that hold the OpenAPI document against it (not exported by the package). */
export const ROUTE_METHODS: Readonly<Record<string, readonly string[]>> = Object.fromEntries(
  Object.entries(ROUTES).map(([path, methods]) => [path, Object.keys(methods)]),
);

/**
 * The state as one consistent snapshot. The effective policies and the layers come from two
 * reads of the native set, between which another thread or a lease expiry may publish a new
 * version: they are read again until the version did not move (a few tries at most).
 */
function stateOf(engine: Engine): Record<string, unknown> {
  let state = engine.state();
  let config = engine.config();
  for (let tries = 0; tries < 5; tries += 1) {
    const after = engine.state();
    if (after.version === state.version) break;
    state = after;
    config = engine.config();
  }
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

/** The policies of `config` (as the `api` layer) that another layer already defines, as `applyLayer` would refuse them. */
function conflictsOf(engine: Engine, config: Config): { path: string; message: string }[] {
  const owners = new Map<string, string>();
  for (const layer of engine.state().layers) {
    if (layer.name === API_LAYER) continue;
    for (const policy of layer.config.policies) owners.set(policy.name, layer.name);
  }
  return config.policies.flatMap((policy, i) => {
    const owner = owners.get(policy.name);
    return owner === undefined
      ? []
      : [
          {
            path: `policies[${i}].name`,
            message: `policy ${JSON.stringify(policy.name)} of layer "${API_LAYER}" is already defined in layer ${JSON.stringify(owner)}; a policy name may be defined in one layer only`,
          },
        ];
  });
}

/** The state plus the guard's verdict on the effective set, for the console. */
function consoleStateOf(engine: Engine): Record<string, unknown> {
  const state = stateOf(engine);
  let risk: RiskReport | null = null;
  try {
    risk = analyze({ ...engine.config(), policies: state.policies as Config['policies'] });
  } catch {
    // An empty or unreadable set has no verdict.
  }
  return { ...state, risk };
}
