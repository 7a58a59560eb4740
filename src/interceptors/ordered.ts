import { serveLatency } from './contract.js';

/**
 * Per-connection ordering of delayed requests: a request issued while an earlier one is still
 * being delayed is sent after it, so injected latency never reorders a connection's traffic.
 */
export class OrderedDelays {
  #tail: Promise<void> | null = null;

  /** Whether a request with no fault must still wait behind a delayed one. */
  get busy(): boolean {
    return this.#tail !== null;
  }

  /** Runs `send` after everything deferred before it, plus `latencyMs`. `send` must not throw. */
  defer(latencyMs: number, send: () => void): void {
    const previous = this.#tail ?? Promise.resolve();
    const next = previous.then(() => serveLatency(latencyMs)).then(send, send);
    this.#tail = next;
    void next.then(() => {
      if (this.#tail === next) this.#tail = null;
    });
  }
}
