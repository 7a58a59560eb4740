// The arithmetic of `havoc run`, on the built modules behind the package (not part of its API):
// error rate, nearest-rank percentiles, Apdex, and which objective a window breaks first.
import { dirname, join } from 'node:path';
import test from 'ava';

interface ProbeResult {
  at: number;
  ms: number;
  error: string | null;
  step: number;
}
interface Slo {
  windowMs: number;
  maxErrorRate?: number;
  maxP99Ms?: number;
  minApdex?: number;
  apdexTMs: number;
}
const dist = dirname(require.resolve('havoc'));
const { stats } = require(join(dist, 'cli', 'report.js')) as {
  stats(
    results: ProbeResult[],
    apdexTMs: number,
  ): { probes: number; errorRate: number; p50Ms: number; p95Ms: number; p99Ms: number; apdex: number };
};
const { check, MIN_WINDOW_PROBES } = require(join(dist, 'cli', 'run.js')) as {
  check(slo: Slo, window: ProbeResult[], step: string): { objective: string; message: string } | undefined;
  MIN_WINDOW_PROBES: number;
};

const probes = (latencies: number[], errors = 0): ProbeResult[] =>
  latencies.map((ms, i) => ({ at: i, ms, error: i < errors ? 'status 503' : null, step: 0 }));

test('percentiles are nearest-rank; Apdex counts satisfied 1, tolerating 1/2, errors 0', (t) => {
  const s = stats(probes(Array.from({ length: 100 }, (_, i) => i + 1)), 50);
  t.is(s.p50Ms, 50);
  t.is(s.p95Ms, 95);
  t.is(s.p99Ms, 99);
  // 1..50 satisfied, 51..100 tolerating (≤ 200): (50 + 25) / 100
  t.is(s.apdex, 0.75);
  const failing = stats(probes([10, 10, 10, 10], 2), 50);
  t.is(failing.errorRate, 0.5);
  t.is(failing.apdex, 0.5);
  t.is(stats(probes([1000]), 50).apdex, 0);
});

test('objectives are checked once the window holds enough probes, error rate first', (t) => {
  const slo: Slo = { windowMs: 1000, maxErrorRate: 0.1, maxP99Ms: 100, minApdex: 0.9, apdexTMs: 50 };
  t.is(check(slo, probes(Array(MIN_WINDOW_PROBES - 1).fill(500), 4), 's'), undefined);
  t.like(check(slo, probes(Array(MIN_WINDOW_PROBES).fill(500), 1), 'slow-db'), { objective: 'max_error_rate' });
  t.regex(check(slo, probes(Array(MIN_WINDOW_PROBES).fill(500)), 'slow-db')!.message, /^step "slow-db" broke max_p99: 500ms > 100ms/);
  t.like(check(slo, probes(Array(MIN_WINDOW_PROBES).fill(80)), 's'), { objective: 'min_apdex' });
  t.is(check(slo, probes(Array(MIN_WINDOW_PROBES).fill(10)), 's'), undefined);
});
