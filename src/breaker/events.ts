/** A listener's handle: `dispose()` removes it. */
export interface Disposable {
  dispose(): void;
}

/** A list of listeners; one that throws is reported as a process warning and the others still run. */
export class Listeners<E> {
  readonly #listeners = new Set<(event: E) => void>();

  get size(): number {
    return this.#listeners.size;
  }

  add(listener: (event: E) => void): Disposable {
    // A wrapper per registration, so the same function added twice is called twice and disposed once each.
    const entry = (event: E) => listener(event);
    this.#listeners.add(entry);
    return { dispose: () => void this.#listeners.delete(entry) };
  }

  emit(event: E): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(error instanceof Error ? error : new Error(String(error)), 'HavocListenerError');
      }
    }
  }
}
