import test from 'ava';
import { policy } from './fixtures/policies.js';
import type { ExecutionContext } from 'ava';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  HavocError,
  formatDuration,
  loadConfig,
  parseConfig,
  parseDuration,
  validateConfig,
  type Config,
  type ConfigIssue,
} from 'havoc';

/** Lines joined with newlines, so that line numbers in assertions can be counted. */
function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

function refused(t: ExecutionContext, fn: () => unknown): ConfigError {
  const error = t.throws(fn, { instanceOf: ConfigError });
  if (!error) throw new Error('expected a ConfigError');
  return error;
}

function issues(t: ExecutionContext, fn: () => unknown): ConfigIssue[] {
  return refused(t, fn).issues;
}

/** One policy with the given extra lines (each indented under the list item), policy at line 3. */
function onePolicy(...fields: string[]): string {
  return yaml('version: 1', 'policies:', '  - name: p', '    type: http', ...fields.map((f) => `    ${f}`));
}

const PASTAAY_YAML = yaml(
  '# a pastaay config, unchanged',
  'version: 1',
  'warmup_duration: 30s',
  'enable_default_ignored: false',
  'ignored_commands:',
  '  sql: ["SELECT 1", SHOW]',
  '  redis: [CLIENT]',
  'seed: 42',
  'policies:',
  '  - name: slow-users',
  '    type: http',
  '    target: /api/users/*',
  '    latency_chance: 0.5',
  '    latency_duration: 1500ms',
  '    match_headers:',
  '      X-Chaos-Test: "enabled"',
  '  - name: checkout-errors',
  '    type: http',
  '    target: /api/checkout',
  '    error_chance: 0.25',
  '    error_code: 503',
  `    error_body: '{"error":"injected"}'`,
  '    drop_connection: false',
  '  - name: grpc-flaky',
  '    type: grpc',
  '    target: /shop.Cart/*',
  '    error_chance: 0.1',
  '    error_code: 0',
  '    stream_roll_mode: per-frame',
  '  - name: slow-orders',
  '    type: sql',
  '    target: orders',
  '    latency_chance: 1',
  '    latency_duration: 250ms',
  '  - name: redis-drop',
  '    type: redis',
  '    target: GET',
  '    drop_connection: true',
  '    error_chance: 0.05',
  '  - name: mongo-latency',
  '    type: mongodb',
  '    target: find',
  '    latency_chance: 0.2',
  '    latency_duration: 1m',
  '  - name: kafka-consumer',
  '    type: kafka',
  '    target: orders.created',
  '    latency_chance: 0.3',
  '    latency_duration: 2s',
  '  - name: rabbit-drop',
  '    type: rabbitmq',
  '    target: billing',
  '    drop_connection: true',
  '  - name: burn',
  '    type: resource',
  '    latency_duration: 30m30s',
  '    throttle_threshold: 50000',
  '    ram_chunk_mb: 64',
  '    ram_interval: 0',
);

const PASTAAY_CONFIG: Config = {
  version: 1,
  warmupDuration: 30_000,
  enableDefaultIgnored: false,
  ignoredCommands: { sql: ['SELECT 1', 'SHOW'], redis: ['CLIENT'] },
  seed: 42,
  policies: [
    policy({
      name: 'slow-users',
      type: 'http',
      target: '/api/users/*',
      latencyChance: 0.5,
      latencyDuration: 1500,
      matchHeaders: { 'x-chaos-test': 'enabled' },
    }),
    policy({
      name: 'checkout-errors',
      type: 'http',
      target: '/api/checkout',
      errorChance: 0.25,
      errorCode: 503,
      errorBody: '{"error":"injected"}',
    }),
    policy({ name: 'grpc-flaky', type: 'grpc', target: '/shop.Cart/*', errorChance: 0.1, streamRollMode: 'per-frame' }),
    policy({ name: 'slow-orders', type: 'sql', target: 'orders', latencyChance: 1, latencyDuration: 250 }),
    policy({ name: 'redis-drop', type: 'redis', target: 'GET', dropConnection: true, errorChance: 0.05 }),
    policy({ name: 'mongo-latency', type: 'mongo', target: 'find', latencyChance: 0.2, latencyDuration: 60_000 }),
    policy({ name: 'kafka-consumer', type: 'kafka', target: 'orders.created', latencyChance: 0.3, latencyDuration: 2000 }),
    policy({ name: 'rabbit-drop', type: 'rabbitmq', target: 'billing', dropConnection: true }),
    policy({ name: 'burn', type: 'resource', latencyDuration: 1_830_000, throttleThreshold: 50_000, ramChunkMb: 64, ramInterval: 1000 }),
  ],
};

// --- loading good configurations -------------------------------------------------------------

test('a pastaay snake_case file loads unchanged into the camelCase Config', (t) => {
  t.deepEqual(parseConfig(PASTAAY_YAML, { source: 'pastaay.yaml' }), PASTAAY_CONFIG);
});

test('the same file in camelCase gives the same Config', (t) => {
  const camel = PASTAAY_YAML.replace(
    /^(\s*(?:- )?)([a-z]+(?:_[a-z]+)+):/gm,
    (_m, indent: string, key: string) => `${indent}${key.replace(/_([a-z])/g, (_l, c: string) => c.toUpperCase())}:`,
  );
  t.notRegex(camel, /^\s*(?:- )?[a-z]+_[a-z_]+:/m, 'every key was rewritten');
  t.regex(camel, /latencyDuration: 1500ms/);
  t.deepEqual(parseConfig(camel), PASTAAY_CONFIG);
});

test('JSON text loads with format: json', (t) => {
  const json = JSON.stringify(
    {
      version: 1,
      warmup_duration: 2500,
      ignoredCommands: { mongodb: ['ping'] },
      policies: [
        { name: 'a', type: 'http', latency_chance: 0.5, latencyDuration: '1.5s', matchHeaders: { 'X-Test': '1' } },
        { name: 'b', type: 'grpc', error_chance: 1, error_code: 14 },
      ],
    },
    null,
    2,
  );
  t.deepEqual(parseConfig(json, { format: 'json' }), {
    version: 1,
    warmupDuration: 2500,
    enableDefaultIgnored: true,
    ignoredCommands: { mongo: ['ping'] },
    policies: [
      policy({ name: 'a', type: 'http', latencyChance: 0.5, latencyDuration: 1500, matchHeaders: { 'x-test': '1' } }),
      policy({ name: 'b', type: 'grpc', errorChance: 1, errorCode: 14 }),
    ],
  });
});

test('defaults: default protection on, ramInterval 1s, target all, no warmup or seed keys', (t) => {
  const config = parseConfig(yaml('version: 1', 'policies:', '  - name: p', '    type: resource', '    target: ""'));
  t.deepEqual(config, { version: 1, enableDefaultIgnored: true, ignoredCommands: {}, policies: [policy({ name: 'p', type: 'resource' })] });
  t.false('warmupDuration' in config);
  t.false('seed' in config);
  t.deepEqual(parseConfig('version: 1\n'), { version: 1, enableDefaultIgnored: true, ignoredCommands: {}, policies: [] });
});

test('durations accept Go strings or numbers of milliseconds; ram_interval 0 becomes 1000', (t) => {
  const config = parseConfig(onePolicy('latency_duration: 1500', 'ram_interval: 250ms'));
  t.like(config.policies[0], { latencyDuration: 1500, ramInterval: 250 });
  t.is(parseConfig(onePolicy('ram_interval: 0s')).policies[0]?.ramInterval, 1000);
  t.is(parseConfig(onePolicy('ram_interval: 0')).policies[0]?.ramInterval, 1000);
  t.is(parseConfig('version: 1\nwarmup_duration: 24h\n').warmupDuration, 86_400_000);
});

test('an empty YAML value takes the default, as in pastaay', (t) => {
  const config = parseConfig(onePolicy('target:', 'latency_chance:', 'error_body: ~'));
  t.deepEqual(config.policies[0], policy({ name: 'p', type: 'http' }));
});

// --- one bad field at a time: exact path, line and column --------------------------------------

test('a string where a number is expected says so, at the value', (t) => {
  t.deepEqual(
    issues(t, () => parseConfig(onePolicy('latency_chance: "0.5"'))),
    [{ path: 'policies[0].latency_chance', line: 5, column: 21, message: 'must be a number in [0, 1] (got string "0.5")' }],
  );
});

test('chances outside [0, 1], NaN and infinity are refused', (t) => {
  const found = issues(t, () => parseConfig(onePolicy('latency_chance: 1.5', 'error_chance: .nan', 'latencyChance: 0.1')));
  t.deepEqual(
    found.map((i) => [i.path, i.line, i.message]),
    [
      ['policies[0].latency_chance', 5, 'must be a number in [0, 1] (got 1.5)'],
      ['policies[0].error_chance', 6, 'must be a number in [0, 1] (got NaN)'],
      ['policies[0].latencyChance', 7, '`latency_chance` and `latencyChance` are the same field; give it once'],
    ],
  );
  const js = issues(t, () => validateConfig({ version: 1, policies: [{ name: 'p', type: 'http', errorChance: Infinity }] }));
  t.deepEqual(js, [{ path: 'policies[0].errorChance', message: 'must be a number in [0, 1] (got Infinity)' }]);
});

test('a bad duration gets the example message with line and column', (t) => {
  const error = refused(t, () => parseConfig(onePolicy('latency_duration: fast'), { source: 'havoc.yaml' }));
  t.deepEqual(error.issues, [
    {
      path: 'policies[0].latency_duration',
      line: 5,
      column: 23,
      message: 'must be a duration such as "1500ms", "3s" or "1m" (got "fast")',
    },
  ]);
  t.is(error.message, 'havoc.yaml:5:23 policies[0].latency_duration: must be a duration such as "1500ms", "3s" or "1m" (got "fast")');
});

test('durations out of range: latency over 1h, negative, warmup over 24h, unit missing', (t) => {
  const found = issues(t, () =>
    parseConfig(
      yaml(
        'version: 1',
        'warmup_duration: 25h',
        'policies:',
        '  - name: p',
        '    type: http',
        '    latency_duration: 1h1s',
        '    ram_interval: -1s',
        '    latencyDuration: true',
        '  - name: q',
        '    type: http',
        '    latency_duration: "1500"',
      ),
    ),
  );
  t.deepEqual(
    found.map((i) => [i.path, i.line, i.message]),
    [
      ['warmup_duration', 2, 'must be a duration between 0 and 24h (got "25h")'],
      ['policies[0].latency_duration', 6, 'must be a duration between 0 and 1h (got "1h1s")'],
      ['policies[0].ram_interval', 7, 'must be a duration between 0 and 1h (got "-1s")'],
      ['policies[0].latencyDuration', 8, '`latency_duration` and `latencyDuration` are the same field; give it once'],
      [
        'policies[1].latency_duration',
        11,
        'must be a duration such as "1500ms", "3s" or "1m" (got "1500"); a number in quotes needs a unit, e.g. "1500ms"',
      ],
    ],
  );
});

test('error codes are checked per protocol; 0 stays 0', (t) => {
  const found = issues(t, () =>
    parseConfig(
      yaml(
        'version: 1',
        'policies:',
        '  - {name: a, type: http, error_code: 600}',
        '  - {name: b, type: http, error_code: 99}',
        '  - {name: c, type: grpc, error_code: 17}',
        '  - {name: d, type: redis, error_code: 70000}',
        '  - {name: e, type: http, error_code: 500.5}',
        '  - {name: f, type: http, error_code: "503"}',
      ),
    ),
  );
  t.deepEqual(
    found.map((i) => [i.path, i.line, i.message]),
    [
      ['policies[0].error_code', 3, 'must be 0 or an HTTP status code in [100, 599] (got 600)'],
      ['policies[1].error_code', 4, 'must be 0 or an HTTP status code in [100, 599] (got 99)'],
      ['policies[2].error_code', 5, 'must be a gRPC status code in [0, 16] (got 17)'],
      ['policies[3].error_code', 6, 'must be an integer in [0, 65535] (got 70000)'],
      ['policies[4].error_code', 7, 'must be 0 or an HTTP status code in [100, 599] (got 500.5)'],
      ['policies[5].error_code', 8, 'must be 0 or an HTTP status code in [100, 599] (got string "503")'],
    ],
  );
  const ok = parseConfig(
    yaml('version: 1', 'policies:', '  - {name: a, type: grpc, error_code: 0}', '  - {name: b, type: kafka, error_code: 65535}'),
  );
  t.deepEqual(
    ok.policies.map((p) => p.errorCode),
    [0, 65535],
  );
});

test('integer limits: throttle_threshold, ram_chunk_mb', (t) => {
  const found = issues(t, () => parseConfig(onePolicy('throttle_threshold: 10000001', 'ram_chunk_mb: 4097')));
  t.deepEqual(
    found.map((i) => [i.path, i.line, i.message]),
    [
      ['policies[0].throttle_threshold', 5, 'must be an integer in [0, 10000000] (got 10000001)'],
      ['policies[0].ram_chunk_mb', 6, 'must be an integer in [0, 4096] (got 4097)'],
    ],
  );
  t.like(parseConfig(onePolicy('throttle_threshold: 10000000', 'ramChunkMB: 4096')).policies[0], {
    throttleThreshold: 10_000_000,
    ramChunkMb: 4096,
  });
});

test('booleans, strings and stream_roll_mode are type-checked', (t) => {
  const found = issues(t, () =>
    parseConfig(onePolicy('drop_connection: yes', 'error_body: 42', 'stream_roll_mode: per_call', 'target: [a]')),
  );
  t.deepEqual(
    found.map((i) => [i.path, i.line, i.message]),
    [
      ['policies[0].drop_connection', 5, 'must be true or false (got string "yes")'],
      ['policies[0].error_body', 6, 'must be a string (got 42)'],
      [
        'policies[0].stream_roll_mode',
        7,
        'must be one of "", "per-call", "per-frame", "stream" (got string "per_call"); did you mean `per-call`?',
      ],
      ['policies[0].target', 8, 'must be a string (got a list)'],
    ],
  );
});

test('match_headers: names lowercased, non-string values refused with a hint to quote them', (t) => {
  t.deepEqual(parseConfig(onePolicy('match_headers: {X-User: "7", Accept: "json"}')).policies[0]?.matchHeaders, {
    'x-user': '7',
    accept: 'json',
  });
  const found = issues(t, () =>
    parseConfig(onePolicy('match_headers:', '  X-Retry: 042', '  X-Flag: true', '  x-retry: "1"', '  "bad name": x')),
  );
  t.deepEqual(found, [
    {
      path: 'policies[0].match_headers.X-Retry',
      line: 6,
      column: 16,
      message: 'must be a string (got 42); header values are compared as text, so quote it: "042"',
    },
    {
      path: 'policies[0].match_headers.X-Flag',
      line: 7,
      column: 15,
      message: 'must be a string (got boolean true); header values are compared as text, so quote it: "true"',
    },
    {
      path: 'policies[0].match_headers.x-retry',
      line: 8,
      column: 7,
      message: 'header `x-retry` is given twice (names are case-insensitive; first as `X-Retry`)',
    },
    { path: 'policies[0].match_headers["bad name"]', line: 9, column: 7, message: '"bad name" is not a valid HTTP header name' },
  ]);
  t.deepEqual(
    issues(t, () => parseConfig(onePolicy('match_headers: [a]'))).map((i) => i.message),
    ['must be a mapping of header name to value (got a list)'],
  );
});

test('name and type are required; a SQL database name is not a type', (t) => {
  const found = issues(t, () =>
    parseConfig(
      yaml(
        'version: 1',
        'policies:',
        '  - type: http',
        '  - name: ""',
        '    type: postgres',
        '  - name: c',
        '    type: htp',
        '  - name: d',
        '  - 5',
      ),
    ),
  );
  t.deepEqual(
    found.map((i) => [i.path, i.line, i.message]),
    [
      ['policies[0].name', 3, 'is required: every policy needs a unique name'],
      ['policies[1].name', 4, 'must be a non-empty string (got string "")'],
      ['policies[1].type', 5, 'unknown type "postgres"; use `sql` for every SQL database'],
      [
        'policies[2].type',
        7,
        'unknown type "htp"; expected one of http, grpc, sql, redis, rabbitmq, kafka, mongo, resource; did you mean `http`?',
      ],
      ['policies[3].type', 8, 'is required: one of http, grpc, sql, redis, rabbitmq, kafka, mongo, resource'],
      ['policies[4]', 9, 'must be a mapping with at least `name` and `type` (got 5)'],
    ],
  );
});

test('version must be the number 1', (t) => {
  t.deepEqual(
    issues(t, () => parseConfig('policies: []\n')),
    [{ path: 'version', line: 1, column: 1, message: 'is required and must be 1' }],
  );
  t.deepEqual(
    issues(t, () => parseConfig('version: 2\n')),
    [{ path: 'version', line: 1, column: 10, message: 'must be 1 (got 2)' }],
  );
  t.deepEqual(
    issues(t, () => parseConfig('version: "1"\n')).map((i) => i.message),
    ['must be the number 1 (got string "1")'],
  );
});

test('seed must be a non-negative safe integer', (t) => {
  t.is(parseConfig('version: 1\nseed: 7\n').seed, 7);
  for (const bad of ['-1', '1.5', '"42"', '9007199254740993']) {
    const [issue] = issues(t, () => parseConfig(`version: 1\nseed: ${bad}\n`));
    t.like(issue, { path: 'seed', line: 2, column: 7 }, bad);
  }
});

test('ignored_commands: protocols checked (mongodb is mongo), prefixes must be non-empty strings', (t) => {
  t.deepEqual(parseConfig(yaml('version: 1', 'ignoredCommands:', '  mongodb: [ping]', '  http: [/healthz]')).ignoredCommands, {
    mongo: ['ping'],
    http: ['/healthz'],
  });
  const found = issues(t, () =>
    parseConfig(
      yaml('version: 1', 'ignored_commands:', '  redsi: [PING]', '  sql: ["", 5]', '  kafka: topic', '  mongo: []', '  mongodb: []'),
    ),
  );
  t.deepEqual(
    found.map((i) => [i.path, i.line, i.column, i.message]),
    [
      [
        'ignored_commands.redsi',
        3,
        3,
        'unknown protocol "redsi"; expected one of http, grpc, sql, redis, rabbitmq, kafka, mongo, resource; did you mean `redis`?',
      ],
      ['ignored_commands.sql[0]', 4, 9, 'must be a non-empty string (got string "")'],
      ['ignored_commands.sql[1]', 4, 13, 'must be a non-empty string (got 5)'],
      ['ignored_commands.kafka', 5, 10, 'must be a list of command prefixes (got string "topic")'],
      ['ignored_commands.mongodb', 7, 3, '`mongo` and `mongodb` are the same protocol; give it once'],
    ],
  );
});

// --- keys ------------------------------------------------------------------------------------

test('an unknown snake_case key is an error at the key, with a snake_case suggestion', (t) => {
  t.deepEqual(
    issues(t, () => parseConfig(onePolicy('latency_chanse: 0.1'))),
    [{ path: 'policies[0].latency_chanse', line: 5, column: 5, message: 'unknown key `latency_chanse`; did you mean `latency_chance`?' }],
  );
});

test('an unknown camelCase key gets a camelCase suggestion; hopeless keys get none', (t) => {
  const found = issues(t, () =>
    parseConfig(
      yaml(
        'version: 1',
        'enableDefaultIgnore: true',
        'policies:',
        '  - name: p',
        '    type: http',
        '    errCode: 500',
        '    frobnicate: 1',
      ),
    ),
  );
  t.deepEqual(
    found.map((i) => [i.path, i.line, i.column, i.message]),
    [
      ['enableDefaultIgnore', 2, 1, 'unknown key `enableDefaultIgnore`; did you mean `enableDefaultIgnored`?'],
      ['policies[0].errCode', 6, 5, 'unknown key `errCode`; did you mean `errorCode`?'],
      ['policies[0].frobnicate', 7, 5, 'unknown key `frobnicate`'],
    ],
  );
});

test('a key at the wrong level says where it belongs', (t) => {
  const found = issues(t, () =>
    parseConfig(yaml('version: 1', 'latency_chance: 0.5', 'policies:', '  - name: p', '    type: http', '    seed: 1')),
  );
  t.deepEqual(
    found.map((i) => i.message),
    [
      'unknown key `latency_chance`: it is a policy field, not a top-level one',
      'unknown key `seed`: it is a top-level field, not a policy one',
    ],
  );
});

test('duplicate policy names name both positions', (t) => {
  const found = issues(t, () =>
    parseConfig(
      yaml('version: 1', 'policies:', '  - name: x', '    type: http', '  - name: y', '    type: sql', '  - name: x', '    type: redis'),
    ),
  );
  t.deepEqual(found, [
    { path: 'policies[2].name', line: 7, column: 11, message: 'duplicate policy name "x" (first defined at policies[0], line 3)' },
  ]);
  const plain = issues(t, () =>
    validateConfig({
      version: 1,
      policies: [
        { name: 'x', type: 'http' },
        { name: 'x', type: 'http' },
      ],
    }),
  );
  t.deepEqual(plain, [{ path: 'policies[1].name', message: 'duplicate policy name "x" (first defined at policies[0])' }]);
});

test('duplicate keys in a YAML mapping are refused', (t) => {
  t.deepEqual(
    issues(t, () => parseConfig(onePolicy('latency_chance: 0.1', 'latency_chance: 0.2'))),
    [{ path: 'policies[0].latency_chance', line: 6, column: 5, message: 'duplicate key `latency_chance` (first at line 5)' }],
  );
});

test('every problem is reported at once, in document order, each on its own line', (t) => {
  const error = refused(t, () =>
    parseConfig(
      yaml(
        'version: 1',
        'policies:',
        '  - name: a',
        '    type: http',
        '    latency_chance: 2',
        '    error_code: 42',
        '  - name: b',
        '    type: grpc',
        '    latency_duration: forever',
        '    matchHeader: {}',
      ),
      { source: 'havoc.yaml' },
    ),
  );
  t.deepEqual(
    error.issues.map((i) => `${i.line}:${i.path}`),
    ['5:policies[0].latency_chance', '6:policies[0].error_code', '9:policies[1].latency_duration', '10:policies[1].matchHeader'],
  );
  t.deepEqual(error.message.split('\n'), [
    '4 problems in havoc.yaml:',
    'havoc.yaml:5:21 policies[0].latency_chance: must be a number in [0, 1] (got 2)',
    'havoc.yaml:6:17 policies[0].error_code: must be 0 or an HTTP status code in [100, 599] (got 42)',
    'havoc.yaml:9:23 policies[1].latency_duration: must be a duration such as "1500ms", "3s" or "1m" (got "forever")',
    'havoc.yaml:10:5 policies[1].matchHeader: unknown key `matchHeader`; did you mean `matchHeaders`?',
  ]);
});

test('at most 1024 policies', (t) => {
  const many = (n: number): string =>
    `version: 1\npolicies:\n${Array.from({ length: n }, (_, i) => `  - {name: p${i}, type: http}\n`).join('')}`;
  t.is(parseConfig(many(1024)).policies.length, 1024);
  t.deepEqual(
    issues(t, () => parseConfig(many(1025))),
    [{ path: 'policies', line: 2, column: 1, message: 'has 1025 policies; at most 1024 are allowed' }],
  );
});

// --- hostile or broken text ------------------------------------------------------------------

test('aliases are refused at the first alias: no billion laughs', (t) => {
  const bomb = yaml(
    'version: 1',
    'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
    'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
  );
  const found = issues(t, () => parseConfig(bomb));
  t.is(found.length, 1);
  t.like(found[0], { path: '', line: 3, column: 8 });
  t.regex(found[0]?.message ?? '', /aliases .* are not accepted/);
  t.like(issues(t, () => parseConfig(yaml('version: 1', 'policies:', '  - &p {name: a, type: http}', '  - *p')))[0], {
    line: 4,
    column: 5,
  });
});

test('text over 5 MiB is refused before parsing', (t) => {
  const text = `version: 1\n#${'x'.repeat(5 * 1024 * 1024)}\n`;
  const found = issues(t, () => parseConfig(text));
  t.deepEqual(found, [{ path: '', message: 'config is too large: 5.0 MiB (5242893 bytes); the limit is 5 MiB (5242880 bytes)' }]);
  // The limit is in bytes, not characters: 2.7 M two-byte characters are over it.
  t.is(issues(t, () => parseConfig(`# ${'é'.repeat(2_700_000)}`, { format: 'json' })).length, 1);
});

test('a second YAML document is refused', (t) => {
  t.deepEqual(
    issues(t, () => parseConfig(yaml('version: 1', '---', 'version: 1'))),
    [{ path: '', line: 2, column: 1, message: 'config contains more than one YAML document (a `---` separator); put everything in one' }],
  );
});

test('a YAML syntax error carries its line and the parser message', (t) => {
  t.deepEqual(
    issues(t, () => parseConfig(yaml('version: 1', 'policies:', '  - name: a', '   type: http'))),
    [{ path: '', line: 4, column: 1, message: 'Sequence item without - indicator' }],
  );
  t.deepEqual(
    issues(t, () => parseConfig('version: 1\n\tseed: 1\n')),
    [{ path: '', line: 2, column: 1, message: 'Tabs are not allowed as indentation' }],
  );
  const flow = issues(t, () => parseConfig('version: 1\npolicies: [\n'));
  t.like(flow[0], { path: '', line: 3, column: 1 });
});

test('deep nesting is refused early instead of hanging or exhausting the heap', (t) => {
  // A parser driven into the deep structure would hang or run out of heap: the test's timeout.
  for (const text of [`a: ${'['.repeat(200_000)}`, `${'- '.repeat(200_000)}x`, `a: ${'? '.repeat(200_000)}`]) {
    const [issue] = issues(t, () => parseConfig(text));
    t.regex(issue?.message ?? '', /nesting is deeper than 64 levels/);
  }
});

test('an empty document, a scalar or a list at the top level is refused', (t) => {
  t.deepEqual(
    issues(t, () => parseConfig('')),
    [{ path: '', line: 1, column: 1, message: 'config is empty; it needs at least `version: 1`' }],
  );
  t.deepEqual(
    issues(t, () => parseConfig('# only a comment\n')).map((i) => i.message),
    ['config is empty; it needs at least `version: 1`'],
  );
  t.deepEqual(
    issues(t, () => parseConfig('- version: 1\n')),
    [{ path: '', line: 1, column: 1, message: 'config must be a mapping with at least `version: 1` (got a list)' }],
  );
  t.deepEqual(
    issues(t, () => validateConfig('version: 1')),
    [{ path: '', message: 'config must be a mapping with at least `version: 1` (got string "version: 1")' }],
  );
});

test('unknown YAML tags are refused', (t) => {
  t.like(issues(t, () => parseConfig('version: 1\nseed: !secret 3\n'))[0], { path: '', line: 2, column: 7 });
});

test('JSON syntax errors have a line and column', (t) => {
  const text = '{\n  "version": 1,\n  "policies": [\n    {"name": "a", "type": "http",}\n  ]\n}';
  t.deepEqual(
    issues(t, () => parseConfig(text, { format: 'json', source: 'havoc.json' })),
    [{ path: '', line: 4, column: 34, message: 'invalid JSON: expected a property name in double quotes, found "}"' }],
  );
  t.like(issues(t, () => parseConfig('{"version": 1', { format: 'json' }))[0], {
    line: 1,
    column: 14,
    message: 'invalid JSON: unexpected end of input',
  });
});

test('valid JSON still gets positions for validation problems and duplicate keys', (t) => {
  const text = '{\n  "version": 1,\n  "policies": [\n    {"name": "a", "type": "http", "latency_chance": "high", "name": "b"}\n  ]\n}';
  t.deepEqual(
    issues(t, () => parseConfig(text, { format: 'json' })),
    [
      { path: 'policies[0].latency_chance', line: 4, column: 53, message: 'must be a number in [0, 1] (got string "high")' },
      { path: 'policies[0].name', line: 4, column: 61, message: 'duplicate key `name` (first at line 4)' },
    ],
  );
});

// --- files ----------------------------------------------------------------------------------

test('loadConfig reads YAML and JSON files and names the file in errors', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'havoc-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const yamlFile = join(dir, 'havoc.yaml');
  writeFileSync(yamlFile, PASTAAY_YAML);
  t.deepEqual(loadConfig(yamlFile), PASTAAY_CONFIG);

  const jsonFile = join(dir, 'havoc.JSON');
  writeFileSync(jsonFile, JSON.stringify({ version: 1, policies: [{ name: 'a', type: 'sql', latency_chance: 2 }] }));
  const error = refused(t, () => loadConfig(jsonFile));
  t.is(error.source, jsonFile);
  t.is(error.message, `${jsonFile}:1:68 policies[0].latency_chance: must be a number in [0, 1] (got 2)`);

  const missing = refused(t, () => loadConfig(join(dir, 'nope.yaml')));
  t.regex(missing.message, /cannot open config file: ENOENT/);
});

test('loadConfig refuses a file over 5 MiB without parsing it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'havoc-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'big.yaml');
  writeFileSync(file, 'version: 1\n');
  truncateSync(file, 6 * 1024 * 1024); // sparse: cheap to create
  const error = refused(t, () => loadConfig(file));
  t.deepEqual(error.issues, [
    { path: '', message: 'config file is too large: 6.0 MiB (6291456 bytes); the limit is 5 MiB (5242880 bytes)' },
  ]);
  t.is(error.message, `${file} config file is too large: 6.0 MiB (6291456 bytes); the limit is 5 MiB (5242880 bytes)`);
});

// --- plain objects ---------------------------------------------------------------------------

test('validateConfig is idempotent on a validated Config', (t) => {
  const once = validateConfig(PASTAAY_CONFIG);
  t.deepEqual(once, PASTAAY_CONFIG);
  t.deepEqual(validateConfig(once), once);
  t.not(once, PASTAAY_CONFIG, 'a new object, not the input');
});

test('validateConfig accepts raw snake_case or camelCase objects, without positions', (t) => {
  const snake = validateConfig({
    version: 1,
    enable_default_ignored: false,
    policies: [{ name: 'a', type: 'redis', latency_duration: '2s', match_headers: { 'X-A': 'b' } }],
  });
  const camel = validateConfig({
    version: 1,
    enableDefaultIgnored: false,
    warmupDuration: undefined,
    policies: [{ name: 'a', type: 'redis', latencyDuration: 2000, matchHeaders: { 'x-a': 'b' } }],
  });
  t.deepEqual(snake, camel);
  t.deepEqual(snake.policies[0], policy({ name: 'a', type: 'redis', latencyDuration: 2000, matchHeaders: { 'x-a': 'b' } }));
  const error = refused(t, () =>
    validateConfig({ version: 1, policies: [{ name: 'a', type: 'http', latency_chance: '1' }] }, 'engine.update()'),
  );
  t.deepEqual(error.issues, [{ path: 'policies[0].latency_chance', message: 'must be a number in [0, 1] (got string "1")' }]);
  t.is(error.message, 'engine.update() policies[0].latency_chance: must be a number in [0, 1] (got string "1")');
});

test('ConfigError is a HavocError with a proper name', (t) => {
  const error = refused(t, () => validateConfig({}));
  t.true(error instanceof HavocError);
  t.true(error instanceof Error);
  t.is(error.name, 'ConfigError');
  t.is(new HavocError('x').name, 'HavocError');
  t.false(Object.keys(error).includes('name'));
  t.false('source' in error);
  t.true(String(error.stack).startsWith('ConfigError: version: is required and must be 1'));
});

// --- durations ------------------------------------------------------------------------------

test('parseDuration reads Go durations into milliseconds', (t) => {
  const table: [string | number, number][] = [
    ['1500ms', 1500],
    ['3s', 3000],
    ['1m', 60_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['1.1s', 1100],
    ['250us', 0.25],
    ['250µs', 0.25],
    ['250μs', 0.25],
    ['100ns', 0.0001],
    ['0', 0],
    ['0s', 0],
    ['.5s', 500],
    ['2h45m30.5s', 9_930_500],
    ['-1.5s', -1500],
    ['+2m', 120_000],
    [1500, 1500],
    [0.5, 0.5],
  ];
  for (const [input, ms] of table) t.is(parseDuration(input), ms, String(input));
});

test('parseDuration refuses bad input with a clear message', (t) => {
  const table: [string | number, RegExp][] = [
    ['', /invalid duration "": it is empty/],
    ['fast', /invalid duration "fast": expected a number followed by a unit/],
    ['1500', /missing unit after 1500 \(for milliseconds write "1500ms"\)/],
    ['3sec', /unknown unit "sec"/],
    ['1h30', /missing unit after 30$/],
    [Number.NaN, /finite number of milliseconds/],
    [Number.POSITIVE_INFINITY, /finite number of milliseconds/],
    ['9999999999h', /too large/],
  ];
  for (const [input, message] of table) t.throws(() => parseDuration(input), { message }, String(input));
});

test('formatDuration writes the shortest Go form, and parseDuration reads it back', (t) => {
  const table: [number, string][] = [
    [0, '0s'],
    [1500, '1.5s'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [5_400_000, '1h30m'],
    [3_600_500, '1h0.5s'],
    [1, '1ms'],
    [999.999, '999.999ms'],
    [0.25, '250µs'],
    [0.0001, '100ns'],
    [-1500, '-1.5s'],
    [86_400_000, '24h'],
  ];
  for (const [ms, text] of table) {
    t.is(formatDuration(ms), text, String(ms));
    t.is(parseDuration(text), ms, text);
  }
});

test('a SQL target that is not a valid regex is reported at its line', (t) => {
  const text = ['version: 1', 'policies:', '  - name: orders', '    type: sql', '    target: "orders("', '    error_chance: 0.1', ''].join(
    '\n',
  );
  const error = t.throws(() => parseConfig(text, { source: 'bad-regex.yaml' }), { instanceOf: ConfigError });
  t.is(error?.issues.length, 1);
  t.like(error?.issues[0], { path: 'policies[0].target', line: 5 });
  t.regex(error?.issues[0]?.message ?? '', /invalid regex/);
});
