// Faults on incoming HTTP requests: node:http / https servers (`wrapHandler`) and
// Connect/Express (`httpMiddleware`). Fastify has its own plugin (./fastify.ts) over the
// same `actOnRequest`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Decision, Engine, HeaderBag } from '../engine.js';
import { clientClosed, decide, serveLatency } from './contract.js';

/** What an interceptor does once the decision has been acted out. */
export type Verdict = 'proceed' | 'answered' | 'dropped' | 'client-closed';

// Node builds `req.headers` on first access, and most requests never need it: only policies
// with `match_headers` look at headers. The engine gets this stand-in, which reads the
// request's headers only when asked (`decide` is synchronous, so one per thread suffices).
let headersOf: IncomingMessage | null = null;
const lazyHeaders: HeaderBag = new Proxy(
  {},
  {
    get: (_target, name) => (typeof name === 'string' ? headersOf?.headers[name] : undefined),
  },
);

/** Decides one incoming request; `url` is the path as the application's routes see it. */
export function decideRequest(engine: Engine, url: string | undefined, req: IncomingMessage): Decision | null {
  headersOf = req;
  try {
    return decide(engine, 'http', url ?? '/', lazyHeaders);
  } finally {
    headersOf = null;
  }
}

/**
 * Destroys the connection with a TCP reset, so the client sees `ECONNRESET` rather than a
 * clean end of stream or a response.
 */
function resetSocket(socket: Socket | null | undefined): void {
  if (!socket || socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

/** The JSON body of an injected error: the policy's `error_body`, else a description. */
export function errorBody(decision: Decision): string {
  if (decision.error?.body) return decision.error.body;
  return JSON.stringify({ error: 'fault injected by havoc', policy: decision.policy, status: decision.error?.code ?? 500 });
}

/**
 * Acts out `decision` on a node:http request: serves the latency on a timer (watching for
 * the client going away), then drops the connection or answers with the error. Resolves to
 * `'proceed'` when the application's handler should run.
 */
export async function actOnRequest(engine: Engine, decision: Decision, req: IncomingMessage, res: ServerResponse): Promise<Verdict> {
  if (decision.latencyMs > 0) {
    const gone = new AbortController();
    const onClose = (): void => {
      if (!res.writableEnded) gone.abort();
    };
    res.once('close', onClose);
    // The client may have left before the request was even handled.
    if (req.socket.destroyed) gone.abort();
    const served = await serveLatency(decision.latencyMs, gone.signal);
    res.off('close', onClose);
    if (!served || req.socket.destroyed) {
      clientClosed(engine, decision, 'http');
      return 'client-closed';
    }
  }
  if (decision.drop) {
    resetSocket(req.socket);
    return 'dropped';
  }
  if (decision.error) {
    const body = errorBody(decision);
    if (!res.headersSent) {
      res.writeHead(decision.error.code, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
    }
    res.end(body);
    return 'answered';
  }
  return 'proceed';
}

/**
 * Wraps a node:http / https request handler: matching requests get their faults, every
 * other request goes straight to `handler` (one call into the engine, nothing allocated).
 */
export function wrapHandler<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  engine: Engine,
  handler: (req: Req, res: Res) => void,
): (req: Req, res: Res) => void {
  return function havocHandler(req: Req, res: Res): void {
    const decision = decideRequest(engine, req.url, req);
    if (decision === null) {
      handler(req, res);
      return;
    }
    actOnRequest(engine, decision, req, res).then(
      (verdict) => {
        if (verdict === 'proceed') handler(req, res);
      },
      (error: unknown) => res.destroy(error instanceof Error ? error : new Error(String(error))),
    );
  };
}

type Next = (error?: unknown) => void;

/** Connect / Express middleware: faults first, then `next()` for the application. */
export function httpMiddleware(engine: Engine): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  return function havocMiddleware(req: IncomingMessage, res: ServerResponse, next: Next): void {
    // Under a mount point Express rewrites `req.url`; policies name the full path.
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url;
    const decision = decideRequest(engine, url, req);
    if (decision === null) {
      next();
      return;
    }
    actOnRequest(engine, decision, req, res).then((verdict) => {
      // Connect-style middleware continues through its callback; Express catches what next() throws.
      // oxlint-disable-next-line promise/no-callback-in-promise
      if (verdict === 'proceed') next();
    }, next);
  };
}
