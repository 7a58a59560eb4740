// Faults on outgoing HTTP: a drop-in `fetch` and an undici dispatcher (for
// `setGlobalDispatcher`, which Node's built-in fetch also honours). Policies of type `http`
// match the outgoing URL's path (`/v1/users/*`) or the whole URL (`https://api.test/v1/*`).
import type { Dispatcher } from 'undici';
import type { Decision, Engine, HeaderBag } from '../engine.js';
import { HavocError, InjectedNetworkError } from '../errors.js';
import { clientClosed, decide, serveLatency } from './contract.js';
import { errorBody } from './http.js';

type Fetch = typeof globalThis.fetch;

function headerBag(headers: Headers): HeaderBag {
  const bag: HeaderBag = {};
  headers.forEach((value, name) => {
    bag[name] = value;
  });
  return bag;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * A drop-in `fetch` with faults: latency on a timer (the request's `signal` cuts it short),
 * a synthetic JSON error response, or a drop that rejects with `TypeError('fetch failed')`
 * caused by an `ECONNRESET`, as undici's fetch does on a reset.
 */
export function chaosFetch(engine: Engine, fetchImpl: Fetch = globalThis.fetch): Fetch {
  return async function havocFetch(input: Parameters<Fetch>[0], init?: Parameters<Fetch>[1]): Promise<Response> {
    // Read from the arguments rather than through `new Request()`, which would lock a
    // streamed body before `fetchImpl` gets it.
    const request = input instanceof Request ? input : undefined;
    const url = request ? request.url : input instanceof URL ? input.href : String(input);
    const headers = new Headers(init?.headers ?? request?.headers);
    const decision = decide(engine, 'http', url, headerBag(headers));
    if (decision === null) return fetchImpl(input, init);
    const signal = init?.signal ?? request?.signal ?? undefined;
    if (decision.latencyMs > 0 && !(await serveLatency(decision.latencyMs, signal))) {
      clientClosed(engine, decision, 'http');
      throw abortReason(signal!);
    }
    if (decision.drop) {
      throw new TypeError('fetch failed', { cause: new InjectedNetworkError(decision.policy, url) });
    }
    if (decision.error) return errorResponse(decision);
    return fetchImpl(input, init);
  };
}

function errorResponse(decision: Decision): Response {
  return new Response(errorBody(decision), {
    status: decision.error?.code ?? 500,
    headers: { 'content-type': 'application/json', 'x-havoc-policy': decision.policy },
  });
}

/**
 * An undici dispatcher with faults, wrapping `base` (default: undici's global dispatcher):
 * `setGlobalDispatcher(chaosDispatcher(engine))`. Needs the `undici` package.
 */
export function chaosDispatcher(engine: Engine, base?: Dispatcher): Dispatcher {
  let undici: typeof import('undici');
  try {
    undici = require('undici') as typeof import('undici');
  } catch (error) {
    throw new HavocError('chaosDispatcher needs the "undici" package: npm install undici', { cause: error });
  }
  const inner = base ?? undici.getGlobalDispatcher();

  class ChaosDispatcher extends undici.Dispatcher {
    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandlers): boolean {
      const url = new URL(options.path, options.origin ?? 'http://localhost').href;
      const decision = decide(engine, 'http', url, dispatchHeaders(options.headers));
      if (decision === null) return inner.dispatch(options, handler);
      void this.#act(decision, url, options, handler);
      return true;
    }

    async #act(decision: Decision, url: string, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandlers): Promise<void> {
      let aborted: unknown = null;
      const gone = new AbortController();
      handler.onConnect?.((reason?: Error) => {
        aborted = reason ?? new undici.errors.RequestAbortedError();
        gone.abort();
      });
      if (decision.latencyMs > 0 && !(await serveLatency(decision.latencyMs, gone.signal))) {
        clientClosed(engine, decision, 'http');
        handler.onError?.(aborted as Error);
        return;
      }
      if (aborted !== null) {
        handler.onError?.(aborted as Error);
      } else if (decision.drop) {
        handler.onError?.(
          new undici.errors.SocketError(`other side closed (connection dropped by havoc policy "${decision.policy}" for ${url})`),
        );
      } else if (decision.error) {
        const body = Buffer.from(errorBody(decision));
        const headers = [
          Buffer.from('content-type'),
          Buffer.from('application/json'),
          Buffer.from('content-length'),
          Buffer.from(String(body.length)),
          Buffer.from('x-havoc-policy'),
          Buffer.from(decision.policy),
        ];
        handler.onHeaders?.(decision.error.code, headers, () => undefined, 'Injected');
        handler.onData?.(body);
        handler.onComplete?.([]);
      } else {
        inner.dispatch(options, handler);
      }
    }

    override close(): Promise<void> {
      return inner.close();
    }

    override destroy(): Promise<void> {
      return inner.destroy();
    }
  }
  return new ChaosDispatcher();
}

function dispatchHeaders(headers: Dispatcher.DispatchOptions['headers']): HeaderBag {
  const bag: HeaderBag = {};
  if (headers == null) return bag;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) bag[String(headers[i]).toLowerCase()] = String(headers[i + 1]);
  } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [name, value] of headers as Iterable<[string, string | string[] | undefined]>) bag[name.toLowerCase()] = value;
  } else {
    for (const [name, value] of Object.entries(headers)) bag[name.toLowerCase()] = value as string | string[] | undefined;
  }
  return bag;
}
