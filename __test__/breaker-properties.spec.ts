import test from 'ava';
import * as fc from 'fast-check';
import { CircuitBreaker } from 'havoc';

type Outcome = 'success' | 'failure' | 'ignore';
const outcomes = fc.array(fc.constantFrom<Outcome>('success', 'failure', 'ignore'), { maxLength: 200 });

/** Feeds `sequence` through tryAcquire permits; returns the index of the call that opened the breaker, or -1. */
function openedAt(breaker: CircuitBreaker, sequence: readonly Outcome[]): number {
  for (const [i, outcome] of sequence.entries()) {
    const permit = breaker.tryAcquire();
    if (permit === null) return -1;
    permit[outcome]();
    if (breaker.state === 'open') return i;
  }
  return -1;
}

test('consecutive n opens at the first run of n failures, ignored calls neither counting nor breaking the run', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), outcomes, (n, sequence) => {
      let run = 0;
      let expected = -1;
      for (const [i, outcome] of sequence.entries()) {
        if (outcome === 'failure') run++;
        else if (outcome === 'success') run = 0;
        if (run >= n) {
          expected = i;
          break;
        }
      }
      return openedAt(new CircuitBreaker({ consecutive: n }), sequence) === expected;
    }),
  );
  t.pass();
});

test('a count window opens at the first call where the last `size` counted calls reach the rate, once minCalls are in', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }).chain((size) => fc.tuple(fc.constant(size), fc.integer({ min: 0, max: size }))),
      fc.double({ min: 0.05, max: 1, noNaN: true }),
      outcomes,
      ([size, minCalls], rate, sequence) => {
        const window: boolean[] = [];
        let expected = -1;
        for (const [i, outcome] of sequence.entries()) {
          if (outcome === 'ignore') continue;
          window.push(outcome === 'failure');
          if (window.length > size) window.shift();
          const failures = window.filter(Boolean).length;
          if (window.length >= minCalls && failures / window.length >= rate) {
            expected = i;
            break;
          }
        }
        return openedAt(new CircuitBreaker({ window: 'count', size, minCalls, rate }), sequence) === expected;
      },
    ),
  );
  t.pass();
});
