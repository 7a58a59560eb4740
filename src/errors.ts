/** Base class of every error havoc throws on purpose, so callers can tell them from bugs. */
export class HavocError extends Error {
  static {
    // On the prototype, like the built-in errors: not an own enumerable property of each instance.
    this.prototype.name = 'HavocError';
  }

  /**
   * `instanceof HavocError` also holds for `RetryExhaustedError`, which must extend
   * `AggregateError` instead. Subclasses keep the ordinary prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    return this === HavocError && value instanceof RetryExhaustedError;
  }
}

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** Where the problem is, with the keys as the user spelled them: `policies[2].latency_duration`; `''` for the document itself. */
  path: string;
  /** 1-based; absent when the input was a plain object rather than text. */
  line?: number;
  /** 1-based, in UTF-16 code units. */
  column?: number;
  message: string;
}

/** Beyond this many issues the message summarises the rest; `issues` always holds them all. */
const MAX_LISTED_ISSUES = 100;

/** A configuration was refused. `issues` lists every problem found, not only the first. */
export class ConfigError extends HavocError {
  static {
    this.prototype.name = 'ConfigError';
  }

  readonly issues: ConfigIssue[];
  /** The file path or label of the configuration, when there is one. */
  declare readonly source?: string; // `declare`: no own `source: undefined` when there is none

  constructor(issues: readonly ConfigIssue[], source?: string, options?: ErrorOptions) {
    super(formatMessage(issues, source), options);
    this.issues = issues.map((issue) => ({ ...issue }));
    if (source !== undefined) this.source = source;
  }
}

/** `havoc.yaml:12:5 policies[2].latency_duration: must be ...` */
export function formatConfigIssue(issue: ConfigIssue, source?: string): string {
  let location = source ?? '';
  if (issue.line !== undefined) {
    location += `${location ? ':' : ''}${issue.line}`;
    if (issue.column !== undefined) location += `:${issue.column}`;
  }
  const subject = issue.path ? `${issue.path}: ${issue.message}` : issue.message;
  return location ? `${location} ${subject}` : subject;
}

function formatMessage(issues: readonly ConfigIssue[], source?: string): string {
  const lines = issues.slice(0, MAX_LISTED_ISSUES).map((issue) => formatConfigIssue(issue, source));
  if (issues.length > MAX_LISTED_ISSUES) lines.push(`... and ${issues.length - MAX_LISTED_ISSUES} more problems`);
  if (issues.length === 1) return lines[0] ?? '';
  const where = source === undefined ? 'the configuration' : source;
  return [`${issues.length} problems in ${where}:`, ...lines].join('\n');
}

/** A rate limiter refused a call. `retryAfterMs`: when the same call would be admitted (`Infinity`: never, its cost exceeds the burst). */
export class RateLimitExceededError extends HavocError {
  static {
    this.prototype.name = 'RateLimitExceededError';
  }

  readonly retryAfterMs: number;

  constructor(name: string, retryAfterMs: number) {
    super(
      Number.isFinite(retryAfterMs)
        ? `rate limit "${name}" exceeded: retry after ${retryAfterMs.toFixed(3)} ms`
        : `rate limit "${name}": the cost exceeds the burst, this call can never be admitted`,
    );
    this.retryAfterMs = retryAfterMs;
  }
}

/** An adaptive limiter or a priority bulkhead shed a call to protect the service. */
export class LoadShedError extends HavocError {
  static {
    this.prototype.name = 'LoadShedError';
  }
}

/** Every place of a bulkhead (and of its queue) was taken. */
export class BulkheadFullError extends HavocError {
  static {
    this.prototype.name = 'BulkheadFullError';
  }
}

/**
 * A circuit breaker refused a call without running it. `retryAfterMs`: open, the rest of the
 * open period; half-open with every probe place taken, the length of the last open period (what
 * a failing probe would reopen it for, at least); isolated by hand, `Infinity`.
 */
export class CircuitOpenError extends HavocError {
  static {
    this.prototype.name = 'CircuitOpenError';
  }

  readonly retryAfterMs: number;
  /** The breaker's name. */
  readonly breaker: string;
  /** `open`, `half-open` (every probe place taken) or `isolated`. */
  readonly state: 'open' | 'half-open' | 'isolated';

  constructor(breaker: string, state: 'open' | 'half-open' | 'isolated', retryAfterMs: number) {
    super(
      state === 'isolated'
        ? `circuit breaker "${breaker}" is isolated: call refused`
        : `circuit breaker "${breaker}" is ${state}: call refused, retry after ${retryAfterMs.toFixed(0)} ms`,
    );
    this.breaker = breaker;
    this.state = state;
    this.retryAfterMs = retryAfterMs;
  }
}

/** A cluster-wide limit could not be checked because its store failed (and `failOpen` is false). */
export class RateLimitStoreError extends HavocError {
  static {
    this.prototype.name = 'RateLimitStoreError';
  }
}

/** Too little of the deadline is left to start the work. */
export class DeadlineExceededError extends HavocError {
  static {
    this.prototype.name = 'DeadlineExceededError';
  }
}

/**
 * havoc failed an amqplib publish: thrown by `publish`/`sendToQueue` on a plain channel, passed
 * to the publish callback and `waitForConfirms` on a confirm channel. Nothing was sent.
 */
export class AmqpPublishError extends HavocError {
  static {
    this.prototype.name = 'AmqpPublishError';
  }

  /** The policy's `error_code` (an AMQP reply code of your choosing; 0 when unset). */
  readonly code: number;
  readonly exchange: string;
  readonly routingKey: string;

  constructor(message: string, code: number, exchange: string, routingKey: string) {
    super(message);
    this.code = code;
    this.exchange = exchange;
    this.routingKey = routingKey;
  }
}

/** The error a dropped outgoing request fails with, shaped like a real connection reset. */
export class InjectedNetworkError extends HavocError {
  static {
    this.prototype.name = 'InjectedNetworkError';
  }
  readonly code = 'ECONNRESET';
  readonly policy: string;

  constructor(policy: string, url: string) {
    super(`read ECONNRESET (connection dropped by havoc policy "${policy}" for ${url})`);
    this.policy = policy;
  }
}

/**
 * havoc failed a kafkajs `send`/`sendBatch` (nothing of it was written), or threw it from a
 * consumer's `eachMessage`/`eachBatch` in place of the handler. Shaped like kafkajs's own
 * `KafkaJSProtocolError`: `code` and `type` name a Kafka protocol error, and `retriable` is what
 * kafkajs reads to decide whether to retry or restart.
 */
export class KafkaInjectedError extends HavocError {
  static {
    this.prototype.name = 'KafkaInjectedError';
  }

  /** The Kafka protocol error code: the policy's `error_code`, or `DEFAULT_KAFKA_ERROR_CODE` when it is 0. */
  readonly code: number;
  /** The protocol error's name, as kafkajs spells it (`REQUEST_TIMED_OUT`); `KAFKAJS_UNKNOWN_ERROR_CODE` for a code kafkajs does not know. */
  readonly type: string;
  /** Whether kafkajs (and a well-behaved application) should retry: kafkajs's own flag for that code. */
  readonly retriable: boolean;
  readonly topic: string;
  /** The policy that injected it. */
  readonly policy: string;

  constructor(message: string, fields: { code: number; type: string; retriable: boolean; topic: string; policy: string }) {
    super(message);
    this.code = fields.code;
    this.type = fields.type;
    this.retriable = fields.retriable;
    this.topic = fields.topic;
    this.policy = fields.policy;
  }
}

/** A fleet operation failed: a publish or renewal that Redis refused, or bad fleet options. */
export class FleetError extends HavocError {
  static {
    this.prototype.name = 'FleetError';
  }
}

/**
 * Why a fleet member refused a set: its configuration, its signature, a record that is not one,
 * or a signed record older than the newest this member applied (a replay).
 */
export type FleetRejectionReason = 'config' | 'unsigned' | 'signature' | 'malformed' | 'stale';

/** A fleet member refused a published set (or a message); its last good set keeps running. */
export class FleetRejectionError extends HavocError {
  static {
    this.prototype.name = 'FleetRejectionError';
  }

  readonly reason: FleetRejectionReason;
  /** The version of the refused set, when the record named one. */
  declare readonly version?: number;

  constructor(reason: FleetRejectionReason, message: string, version?: number, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
    if (version !== undefined) this.version = version;
  }
}

/** Why a retry gave up: out of attempts, out of retry budget, out of time, or told to stop by the server. */
export type RetryGiveUpReason = 'attempts' | 'budget' | 'deadline' | 'retry-after';

/**
 * A retry gave up on errors that were all worth retrying. `errors` holds each attempt's error
 * in order, `cause` the last one. Also `instanceof HavocError`.
 */
export class RetryExhaustedError extends AggregateError {
  static {
    this.prototype.name = 'RetryExhaustedError';
  }

  /** Calls made. */
  readonly attempts: number;
  /** Milliseconds from the first failure to giving up. */
  readonly elapsedMs: number;
  readonly reason: RetryGiveUpReason;

  constructor(name: string, errors: readonly unknown[], reason: RetryGiveUpReason, attempts: number, elapsedMs: number) {
    const last = errors[errors.length - 1];
    const why = {
      attempts: `after ${attempts} attempts`,
      budget: `after ${attempts} attempts: the retry budget is spent`,
      deadline: `after ${attempts} attempts: the next try would end past the deadline`,
      'retry-after': `after ${attempts} attempts: the server asked not to retry (or later than maxRetryAfterMs)`,
    }[reason];
    super(errors, `retry "${name}" gave up ${why}: ${last instanceof Error ? last.message : String(last)}`, { cause: last });
    this.attempts = attempts;
    this.elapsedMs = elapsedMs;
    this.reason = reason;
  }
}

/** A `Timeout` ran out. `isTimeout` is true of it, so adaptive limiters count a drop and breakers a failure. */
export class TimeoutError extends HavocError {
  static {
    this.prototype.name = 'TimeoutError';
  }

  /** The limit, in milliseconds. */
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}
