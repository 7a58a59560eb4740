// Backoff between attempts: exponential, capped, with jitter (the AWS Architecture Blog's
// "Exponential Backoff and Jitter" variants).

/** What a jitter function gets to choose the delay before retry `retry` (1 for the first). */
export interface JitterInput {
  retry: number;
  baseMs: number;
  capMs: number;
  /** The delay before the previous retry (`baseMs` before the first). */
  previousMs: number;
  /** The retry's random source in [0, 1) (seeded when `seed` is given). */
  random: () => number;
}

export type JitterFunction = (input: JitterInput) => number;
export type Jitter = 'full' | 'equal' | 'decorrelated' | 'none' | JitterFunction;

export const JITTERS = ['full', 'equal', 'decorrelated', 'none'] as const;

/** `min(cap, base · 2^(retry − 1))`. */
export function exponentialMs(retry: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** (retry - 1));
}

/**
 * The delay before retry `input.retry`: `full` uniform in [0, exp), `equal` in [exp/2, exp),
 * `decorrelated` uniform in [base, 3 · previous) capped, `none` exp itself.
 */
export function backoffMs(jitter: Jitter, input: JitterInput): number {
  const { retry, baseMs, capMs, previousMs, random } = input;
  switch (jitter) {
    case 'full':
      return random() * exponentialMs(retry, baseMs, capMs);
    case 'equal': {
      const exp = exponentialMs(retry, baseMs, capMs);
      return exp / 2 + (random() * exp) / 2;
    }
    case 'decorrelated':
      return Math.min(capMs, baseMs + random() * Math.max(0, previousMs * 3 - baseMs));
    case 'none':
      return exponentialMs(retry, baseMs, capMs);
    default: {
      const ms = jitter(input);
      if (typeof ms !== 'number' || !(ms >= 0))
        throw new RangeError(`the jitter function returned ${String(ms)}: expected milliseconds >= 0`);
      return Math.min(ms, capMs);
    }
  }
}
