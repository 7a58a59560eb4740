import test from 'ava';
import { analyze, type Config } from 'havoc';

function config(policies: Record<string, unknown>[], extra: Record<string, unknown> = {}): Config {
  return { version: 1, policies, ...extra } as unknown as Config;
}

test('an empty configuration is SAFE', (t) => {
  const r = analyze(config([]));
  t.like(r, { score: 0, status: 'SAFE', totalRisk: 0 });
  t.deepEqual(r.issues, []);
});

test('turning default protection off costs 15 points', (t) => {
  const r = analyze(config([], { enable_default_ignored: false }));
  t.is(r.score, 15);
  t.regex(r.issues[0] ?? '', /enable_default_ignored is off/);
});

test('scope: a narrow target weighs 0.4, a catch-all 1.0', (t) => {
  t.is(analyze(config([{ name: 'n', type: 'http', target: '/pay', error_chance: 1 }])).score, 40);
  for (const target of ['all', '*', '']) {
    t.is(analyze(config([{ name: 'w', type: 'http', target, error_chance: 0.5 }])).score, 50, target);
  }
  t.is(analyze(config([{ name: 'db', type: 'sql', target: 'database', error_chance: 0.5 }])).score, 50);
});

test('scope: each repeat of the same type:target adds 0.2', (t) => {
  const r = analyze(
    config([
      { name: 'a', type: 'redis', target: 'GET', error_chance: 0.5 },
      { name: 'b', type: 'redis', target: 'GET', error_chance: 0.5 },
      { name: 'c', type: 'redis', target: 'GET', error_chance: 0.5 },
    ]),
  );
  t.deepEqual(
    r.policies.map((p) => Math.round(p.scope * 10) / 10),
    [0.4, 0.6, 0.8],
  );
  // survival = 0.8 × 0.7 × 0.6 = 0.336
  t.is(r.score, 66);
  t.is(r.status, 'HIGH');
});

test('severity: latency weighs 0.3 under 1 s, 0.6 from 1 s, 1.0 from 5 s', (t) => {
  const score = (latency_duration: string) =>
    analyze(config([{ name: 'l', type: 'http', target: 'all', latency_chance: 1, latency_duration }])).score;
  t.is(score('999ms'), 30);
  t.is(score('1s'), 60);
  t.is(score('5s'), 95);
});

test('severity: the worst fault of a policy counts', (t) => {
  const r = analyze(config([{ name: 'm', type: 'http', target: 'all', error_chance: 0.2, latency_chance: 0.5, latency_duration: '2s' }]));
  t.is(r.policies[0]?.severity, 0.5 * 0.6);
});

test('severity: a drop is 1.0 and risk is capped at 0.95', (t) => {
  const r = analyze(config([{ name: 'd', type: 'http', target: 'all', drop_connection: true }]));
  t.is(r.policies[0]?.risk, 0.95);
  t.like(r, { score: 95, status: 'CRITICAL' });
});

test('severity: resource RAM and CPU bands', (t) => {
  const score = (fields: Record<string, unknown>) => analyze(config([{ name: 'r', type: 'resource', ...fields }])).score;
  t.is(score({ ram_chunk_mb: 2048 }), 90);
  t.is(score({ ram_chunk_mb: 256 }), 50);
  t.is(score({ ram_chunk_mb: 16 }), 20);
  t.is(score({ throttle_threshold: 100000 }), 80);
  t.is(score({ throttle_threshold: 10 }), 40);
});

test('status bands at 25, 50 and 75', (t) => {
  t.is(analyze(config([{ name: 'a', type: 'http', target: 'all', error_chance: 0.24 }])).status, 'SAFE');
  t.is(analyze(config([{ name: 'a', type: 'http', target: 'all', error_chance: 0.25 }])).status, 'ELEVATED');
  t.is(analyze(config([{ name: 'a', type: 'http', target: 'all', error_chance: 0.5 }])).status, 'HIGH');
  t.is(analyze(config([{ name: 'a', type: 'http', target: 'all', error_chance: 0.75 }])).status, 'CRITICAL');
});

test('inactive policies add no risk', (t) => {
  t.is(analyze(config([{ name: 'idle', type: 'http', target: 'all' }])).score, 0);
});

test('findings pastaay misses: inert faults, unreachable policies, overlaps', (t) => {
  const r = analyze(
    config([
      { name: 'idle', type: 'http', target: '/a' },
      { name: 'no-duration', type: 'http', target: '/b', latency_chance: 1 },
      { name: 'health', type: 'grpc', target: '/grpc.health.v1.Health/*', error_chance: 1 },
      { name: 'redis-headers', type: 'redis', target: 'GET', error_chance: 1, match_headers: { 'x-a': '1' } },
      { name: 'ram-drop', type: 'resource', ram_chunk_mb: 8, drop_connection: true },
      { name: 'api', type: 'http', target: '/api/*', error_chance: 0.1 },
      { name: 'users', type: 'http', target: '/api/users/*', error_chance: 0.1 },
    ]),
  );
  const text = r.issues.join('\n');
  t.regex(text, /"idle" can never fire: every chance is 0/);
  t.regex(text, /"no-duration": latency_chance is set but latency_duration is 0/);
  t.regex(text, /"health" can never fire: its target .* is protected/);
  t.regex(text, /"redis-headers" can never fire: redis requests carry no headers/);
  t.regex(text, /"ram-drop": drop_connection has no effect on resource policies/);
  t.regex(text, /"api" and "users" overlap \(one wildcard target covers the other\)/);
});

test('analyze validates its input', (t) => {
  t.throws(() => analyze(config([{ name: 'x', type: 'http', error_chance: 2 }])), { name: 'ConfigError' });
});
