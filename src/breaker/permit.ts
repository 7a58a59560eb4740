/** How a call ended, as the core numbers it. */
export const SUCCESS = 0;
export const FAILURE = 1;
export const IGNORE = 2;

/** The breaker side of a permit: records one outcome in the core. */
export interface PermitSink {
  record(generation: number, startNs: number, outcome: number): void;
}

/**
 * The right to make one call, from `CircuitBreaker.tryAcquire`. Report how the call ended
 * exactly once; later reports are ignored. A permit issued before the breaker changed state
 * never moves it.
 */
export class Permit {
  readonly #sink: PermitSink;
  readonly #generation: number;
  readonly #startNs: number;
  #done = false;

  /** @internal */
  constructor(sink: PermitSink, generation: number, startNs: number) {
    this.#sink = sink;
    this.#generation = generation;
    this.#startNs = startNs;
  }

  /** The dependency answered. */
  success(): void {
    this.#end(SUCCESS);
  }

  /** The dependency failed. */
  failure(): void {
    this.#end(FAILURE);
  }

  /** The call says nothing about the dependency (the caller gave up, a client error): not counted. */
  ignore(): void {
    this.#end(IGNORE);
  }

  #end(outcome: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#sink.record(this.#generation, this.#startNs, outcome);
  }
}
