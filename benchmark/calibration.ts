// The calibration case of benchmark/http.bench.ts: a fixed amount of work added to each request,
// so that a run shows how small a cost its throughput ratios can resolve. Its cost in
// nanoseconds is measured in the bench process, beside the wrapper's.

/** Loop iterations per request: about 0.16 µs here, under 1% of a bare request; a run measures the cost. */
export const CALIBRATION_ITERATIONS = 40;

let sink = 0;

/** Runs the calibration loop once; the result goes to a module variable so that V8 keeps the loop. */
export function busyWork(): void {
  let x = sink;
  for (let i = 0; i < CALIBRATION_ITERATIONS; i += 1) x = (x * 31 + i) | 0;
  sink = x;
}
