import { isTimeout } from '../limit/adaptive-limiter.js';
import {
  BulkheadFullError,
  CircuitOpenError,
  DeadlineExceededError,
  LoadShedError,
  RateLimitExceededError,
  RateLimitStoreError,
  RetryExhaustedError,
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

/** Errors marked with `fatal(err)`: never retried. */
const FATAL = new WeakSet<object>();

/** Marks `error` as not worth retrying (a retry rethrows it at once) and returns it: `throw fatal(err)`. */
export function fatal<E>(error: E): E {
  if (typeof error === 'object' && error !== null) FATAL.add(error);
  return error;
}

/** Whether `error` was marked with `fatal(err)`. */
export function isFatal(error: unknown): boolean {
  return typeof error === 'object' && error !== null && FATAL.has(error);
}

/** A `TypeError` that fetch raises for a network failure (`fetch failed`, caused by an error with a system code like `ECONNRESET`). */
function isNetworkTypeError(error: TypeError): boolean {
  const cause = (error as { cause?: unknown }).cause;
  return typeof cause === 'object' && cause !== null && typeof (cause as { code?: unknown }).code === 'string';
}

/**
 * The default retry classifier: everything is retried but what retrying cannot fix — the
 * caller's abort, errors marked `fatal`, `DeadlineExceededError`, `CircuitOpenError`, an inner
 * retry's `RetryExhaustedError`, programming
 * errors (`TypeError` but fetch's network failures, `RangeError`, `SyntaxError`) and permanent
 * client errors (`isPermanentClientError`). Timeouts, connection resets, 5xx, 408, 429, gRPC
 * UNAVAILABLE, deadlocks and server shutdowns are retried.
 */
export function isRetryable(error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return false;
  if (isFatal(error)) return false;
  if (error instanceof DeadlineExceededError || error instanceof CircuitOpenError) return false;
  // An inner retry already gave up: retrying it again would multiply the calls (resile's 5 × 5).
  if (error instanceof RetryExhaustedError) return false;
  if (error instanceof TypeError) return isNetworkTypeError(error);
  if (error instanceof RangeError || error instanceof SyntaxError) return false;
  if (typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError') return false;
  return !isPermanentClientError(error);
}
