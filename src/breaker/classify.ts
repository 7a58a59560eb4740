import { isTimeout } from '../limit/adaptive-limiter.js';
import {
  BulkheadFullError,
  CircuitOpenError,
  DeadlineExceededError,
  LoadShedError,
  RateLimitExceededError,
  RateLimitStoreError,
} from '../errors.js';

/** havoc's own refusals: decisions made here, before the dependency was asked. */
const LOCAL_REFUSALS = [
  RateLimitExceededError,
  LoadShedError,
  BulkheadFullError,
  CircuitOpenError,
  DeadlineExceededError,
  RateLimitStoreError,
];

/** What an error says about the dependency: `true` a failure, `false` a success, `'ignore'` nothing. */
export type FailureVerdict = boolean | 'ignore';

/** gRPC codes that blame the request, not the server (INVALID_ARGUMENT … UNAUTHENTICATED). */
const PERMANENT_GRPC = new Set([3, 5, 6, 7, 9, 11, 12, 16]);

/** An HTTP status that blames the request: 4xx except 408 (timeout) and 429 (overload). */
function permanentStatus(status: unknown): boolean {
  return typeof status === 'number' && status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/**
 * Whether `error` is a client error that a healthy dependency also returns: HTTP 4xx but 408
 * and 429 (`status`, `statusCode` or `response.status`), the gRPC codes that blame the request,
 * PostgreSQL classes 22 (data) and 23 (integrity).
 */
export function isPermanentClientError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { status?: unknown; statusCode?: unknown; response?: { status?: unknown }; code?: unknown; metadata?: unknown };
  if (permanentStatus(e.status) || permanentStatus(e.statusCode) || permanentStatus(e.response?.status)) return true;
  // grpc-js errors carry a numeric code and metadata; Node's own errors have string codes.
  if (typeof e.code === 'number' && e.metadata !== undefined && PERMANENT_GRPC.has(e.code)) return true;
  return typeof e.code === 'string' && /^2[23][0-9A-Z]{3}$/.test(e.code);
}

/**
 * The default classifier. Ignored: the caller's own abort (unless its reason is a timeout),
 * permanent client errors, and havoc's local refusals (rate limit, shed, full bulkhead, open
 * breaker, deadline) — none says anything about the dependency. Timeouts and every other
 * error, faults havoc injects included (a dropped connection, an injected 503), are failures.
 */
export function defaultIsFailure(error: unknown, signal?: AbortSignal): FailureVerdict {
  if (isTimeout(error)) return true;
  if (signal?.aborted && !isTimeout(signal.reason)) return 'ignore';
  if (LOCAL_REFUSALS.some((refusal) => error instanceof refusal)) return 'ignore';
  if (isPermanentClientError(error)) return 'ignore';
  return true;
}
