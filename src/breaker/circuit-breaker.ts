import native = require('../native.js');
import { CircuitOpenError } from '../errors.js';
import { metricsFor } from '../metrics.js';
import { defaultIsFailure, type FailureVerdict } from './classify.js';
import { Listeners, type Disposable } from './events.js';
import { nativeBreakerOptions, type BreakerSnapshot, type BreakerState, type CircuitBreakerOptions } from './options.js';
import { FAILURE, IGNORE, Permit, SUCCESS, type PermitSink } from './permit.js';

type NativeBreaker = InstanceType<typeof native.NativeBreaker>;
const nativeHandle = Symbol('nativeHandle');
type InternalOptions = CircuitBreakerOptions & { [nativeHandle]?: NativeBreaker };

const STATE_INDEX: Readonly<Record<BreakerState, number>> = { closed: 0, open: 1, 'half-open': 2, isolated: 3 };
/** The core's state word is read as two little-endian 32-bit halves (every target napi builds for is). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A change of state, in whichever thread it happened (for a shared breaker). */
export interface StateChange {
  from: BreakerState;
  to: BreakerState;
  /** `failures`, `slow-calls`, `open-elapsed`, `probe-failed`, `probes-succeeded`, `isolated`, `isolation-released`, `reset`. */
  reason: string;
  /** The generation the change started; each change adds one. */
  generation: number;
}

/** A call the breaker refused. */
export interface Rejection {
  state: 'open' | 'half-open' | 'isolated';
  retryAfterMs: number;
}

/** What `fn` gets from `execute`. */
export interface BreakerCallContext {
  signal?: AbortSignal;
  attempt: number;
}

/**
 * A circuit breaker in the Rust core: closed, it counts outcomes by its trip rule; open, it
 * refuses every call at once with `CircuitOpenError`; half-open, it lets `probes` calls
 * through and closes when they all succeed. `CircuitBreaker.shared(name, opts)` is one breaker
 * for every worker thread.
 */
export class CircuitBreaker {
  readonly name: string;
  readonly #native: NativeBreaker;
  readonly #slot: number;
  /** The core's `generation << 2 | state` word, when the runtime maps it (see `#acquire`). */
  readonly #word: Uint32Array | undefined;
  readonly #isFailure: (error: unknown, signal?: AbortSignal) => FailureVerdict;
  readonly #timed: boolean;
  readonly #stateChanges = new Listeners<StateChange>();
  readonly #rejections = new Listeners<Rejection>();
  readonly #sink: PermitSink;
  /** The last generation whose transitions this handle has reported. */
  #seen: number;

  constructor(options: CircuitBreakerOptions = {}) {
    this.name = options.name ?? 'default';
    if (typeof this.name !== 'string' || this.name === '') throw new TypeError('a breaker name must be a non-empty string');
    this.#native =
      (options as InternalOptions)[nativeHandle] ??
      create(() => new native.NativeBreaker(nativeBreakerOptions(options), options.initialState));
    this.#slot = this.#native.slot;
    const word = LITTLE_ENDIAN ? this.#native.stateWord() : null;
    this.#word = word === null ? undefined : new Uint32Array(word);
    const custom = options.isFailure;
    this.#isFailure = custom ? (error) => custom(error) : defaultIsFailure;
    this.#timed = options.slowCalls !== undefined;
    this.#seen = this.#native.generation;
    this.#sink = { record: (generation, startNs, outcome) => this.#sync(native.breakerRecord(this.#slot, generation, startNs, outcome)) };
    const self = new WeakRef(this);
    metricsFor(options.registry).watchBreaker(this.name, () => {
      const handle = self.deref();
      if (handle === undefined) return undefined;
      const breaker = handle.#native;
      return { state: STATE_INDEX[breaker.state as BreakerState], calls: breaker.calls(), transitions: breaker.transitionCounts() };
    });
  }

  /** The process-wide breaker `name`. The first creation wins; other options later throw. */
  static shared(name: string, options: Omit<CircuitBreakerOptions, 'name'> = {}): CircuitBreaker {
    const opts = options as CircuitBreakerOptions;
    const handle = create(() => native.NativeBreaker.shared(name, nativeBreakerOptions(opts), opts.initialState));
    return new CircuitBreaker({ ...opts, name, [nativeHandle]: handle } as InternalOptions);
  }

  /** A breaker on a clock that moves only by `setClockMs` (it starts at 0), for tests and simulations. */
  static withManualClock(options: CircuitBreakerOptions = {}): CircuitBreaker & { setClockMs(ms: number): void } {
    const handle = create(() => native.NativeBreaker.withManualClock(nativeBreakerOptions(options), options.initialState));
    const breaker = new CircuitBreaker({ ...options, [nativeHandle]: handle } as InternalOptions);
    return Object.assign(breaker, { setClockMs: (ms: number) => handle.setClockMs(ms) });
  }

  /** Where the breaker stands now (in every thread, for a shared one). */
  get state(): BreakerState {
    this.#sync(this.#native.generation);
    return this.#native.state as BreakerState;
  }

  /** Called on every change of state, including those another thread caused on a shared breaker (reported on this thread's next call). */
  onStateChange(listener: (change: StateChange) => void): Disposable {
    return this.#stateChanges.add(listener);
  }

  /** Called for every call the breaker refuses. */
  onReject(listener: (rejection: Rejection) => void): Disposable {
    return this.#rejections.add(listener);
  }

  /** A permit for one call, or `null` when the breaker refuses it. Report the call's end on the permit. */
  tryAcquire(): Permit | null {
    const result = this.#acquire();
    if (result < 0) {
      this.#reject(result);
      return null;
    }
    this.#sync(result);
    return new Permit(this.#sink, result, this.#timed ? this.#native.nowNs() : -1);
  }

  /**
   * Runs `fn` if the breaker admits it, or throws `CircuitOpenError` at once. Its result is a
   * success; its error is judged by `isFailure`. `fn` gets the caller's signal and `attempt`
   * (passed through from an enclosing retry, default 1).
   */
  async execute<T>(
    fn: (context: BreakerCallContext) => T | Promise<T>,
    options: { signal?: AbortSignal; attempt?: number } = {},
  ): Promise<T> {
    const { signal } = options;
    signal?.throwIfAborted();
    const result = this.#acquire();
    if (result < 0) throw this.#reject(result);
    this.#sync(result);
    const startNs = this.#timed ? this.#native.nowNs() : -1;
    let value: T;
    try {
      value = await fn({ signal, attempt: options.attempt ?? 1 });
    } catch (error) {
      // A classifier that throws counts the call as a failure: the permit must be ended either
      // way, or a half-open probe would hold its place for good.
      let outcome = FAILURE;
      try {
        const verdict = this.#isFailure(error, signal);
        outcome = verdict === 'ignore' ? IGNORE : verdict ? FAILURE : SUCCESS;
      } finally {
        this.#sink.record(result, startNs, outcome);
      }
      throw error;
    }
    this.#sink.record(result, startNs, SUCCESS);
    return value;
  }

  /**
   * Holds the breaker open (every call refused) until the returned handle is disposed.
   * Refcounted: it closes, with empty counts, when the last isolation is released.
   */
  isolate(): Disposable {
    this.#native.isolate();
    this.#sync(this.#native.generation);
    let held = true;
    return {
      dispose: () => {
        if (!held) return;
        held = false;
        this.#native.releaseIsolation();
        this.#sync(this.#native.generation);
      },
    };
  }

  /** Closes the breaker with empty counts and the first open period (an isolated breaker stays isolated). */
  reset(): void {
    this.#native.reset();
    this.#sync(this.#native.generation);
  }

  /** The state to persist and pass back as `initialState`. */
  toJSON(): BreakerSnapshot {
    const s = this.#native.snapshot();
    return {
      state: s.state as BreakerState,
      generation: s.generation,
      openRemainingMs: s.openRemainingMs,
      halfOpenFailures: s.halfOpenFailures,
    };
  }

  /**
   * What the core's `try_acquire` returns: the generation, or a refusal (< 0). A closed breaker
   * admits without side effects, so that case is read from the state word here, without a call
   * into the addon; every other state asks the core.
   */
  #acquire(): number {
    const word = this.#word;
    if (word !== undefined) {
      const low = Atomics.load(word, 0);
      if ((low & 3) === 0) {
        const high = Atomics.load(word, 1);
        // A change between the two halves shows in the low half (the generation moved on).
        if (Atomics.load(word, 0) === low) return high * 2 ** 30 + (low >>> 2);
      }
    }
    return native.breakerTryAcquire(this.#slot);
  }

  #reject(result: number): CircuitOpenError {
    const isolated = result === -Infinity;
    const retryAfterMs = isolated ? Infinity : -1 - result;
    const state = isolated ? 'isolated' : this.#native.state === 'half-open' ? 'half-open' : 'open';
    if (this.#stateChanges.size > 0) this.#sync(this.#native.generation);
    this.#rejections.emit({ state, retryAfterMs });
    return new CircuitOpenError(this.name, state, retryAfterMs);
  }

  /** Reports the transitions up to `generation` that this handle has not reported yet. */
  #sync(generation: number): void {
    if (generation === this.#seen) return;
    const since = this.#seen;
    this.#seen = Math.max(this.#seen, generation);
    if (this.#stateChanges.size === 0) return;
    for (const t of this.#native.transitionsSince(since)) {
      if (t.generation > generation) break;
      this.#stateChanges.emit({ from: t.from as BreakerState, to: t.to as BreakerState, reason: t.reason, generation: t.generation });
    }
  }
}

/** Native option errors become `RangeError`s; a shared name taken with other options stays an `Error`. */
function create(make: () => NativeBreaker): NativeBreaker {
  try {
    return make();
  } catch (error) {
    if (error instanceof Error && (error as { code?: unknown }).code === 'InvalidArg') throw new RangeError(error.message);
    throw error;
  }
}
