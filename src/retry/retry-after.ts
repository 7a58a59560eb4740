// How long a server (or havoc's own refusal) asked the caller to wait before retrying.

/** The server said not to retry at all (a negative `grpc-retry-pushback-ms`). */
export const STOP = -1;

type HeaderSource = { get(name: string): string | null } | Record<string, unknown>;

function header(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  const value =
    typeof (headers as { get?: unknown }).get === 'function'
      ? (headers as { get(name: string): unknown }).get(name)
      : (headers as Record<string, unknown>)[name];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' || typeof first === 'number' ? String(first) : undefined;
}

/** `retry-after` as milliseconds: delay-seconds or an HTTP date (`nowMs` the wall clock); undefined if malformed. */
export function parseRetryAfter(value: string, nowMs: number = Date.now()): number | undefined {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * The delay `error` asks for, in milliseconds: its `retryAfterMs` (havoc's refusals), then
 * `retry-after` from a Response (the error itself, or its `response`) or its `headers`, then
 * gRPC's `grpc-retry-pushback-ms` in its `metadata`. `STOP` when told not to retry; undefined
 * when nothing says.
 */
export function requestedDelayMs(error: unknown, nowMs?: number): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { retryAfterMs?: unknown; headers?: HeaderSource; response?: { headers?: HeaderSource }; metadata?: unknown };
  if (typeof e.retryAfterMs === 'number' && e.retryAfterMs >= 0) return Number.isFinite(e.retryAfterMs) ? e.retryAfterMs : STOP;
  const retryAfter = header(e.headers, 'retry-after') ?? header(e.response?.headers, 'retry-after');
  if (retryAfter !== undefined) {
    const ms = parseRetryAfter(retryAfter, nowMs);
    if (ms !== undefined) return ms;
  }
  const metadata = e.metadata as { get?: (key: string) => unknown[] } | undefined;
  if (typeof metadata?.get === 'function') {
    const pushback = metadata.get('grpc-retry-pushback-ms')[0];
    if (typeof pushback === 'string' && /^-?\d+$/.test(pushback.trim())) {
      const ms = Number(pushback);
      return ms < 0 ? STOP : ms;
    }
  }
  return undefined;
}
