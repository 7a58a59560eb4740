import test from 'ava';
import * as fc from 'fast-check';
import { deepStrictEqual } from 'node:assert';
import { stringify } from 'yaml';
import {
  ConfigError,
  Engine,
  PROTOCOLS,
  formatDuration,
  parseConfig,
  validateConfig,
  type Config,
  type ConfigIssue,
  type Decision,
  type HeaderBag,
  type Policy,
  type Protocol,
  type StreamRollMode,
} from 'havoc';
import { config, policy } from './fixtures/policies.js';

/** Fixed seeds: a failure names its counterexample and replays the same way every run. */
const RUNS = { numRuns: 1000 };

function fail(message: string): never {
  throw new Error(message);
}

/** An issue as the documentation promises it: a path, a message, and a 1-based position or none. */
function checkIssue(issue: ConfigIssue, fromText: boolean): void {
  if (typeof issue.path !== 'string') fail(`path is not a string: ${JSON.stringify(issue)}`);
  if (typeof issue.message !== 'string' || issue.message === '') fail(`empty message: ${JSON.stringify(issue)}`);
  if ((issue.line === undefined) !== (issue.column === undefined)) fail(`line without column: ${JSON.stringify(issue)}`);
  for (const n of [issue.line, issue.column]) {
    if (n !== undefined && !(Number.isInteger(n) && n >= 1)) fail(`bad position: ${JSON.stringify(issue)}`);
  }
  if (!fromText && issue.line !== undefined) fail(`a plain object has no positions: ${JSON.stringify(issue)}`);
}

/** Runs `fn`: a Config (which validates again to itself) or a ConfigError with sound issues; anything else fails. */
function configOrConfigError(fn: () => Config, fromText: boolean): ConfigIssue[] {
  let result: Config;
  try {
    result = fn();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    if (error.issues.length === 0) fail('a ConfigError without issues');
    for (const issue of error.issues) checkIssue(issue, fromText);
    return error.issues;
  }
  deepStrictEqual(validateConfig(result), result);
  return [];
}

// --- (a) parseConfig on arbitrary text ----------------------------------------------------------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));
/** Any code point, lone surrogates included (what fast-check 3 called fullUnicodeString, and more). */
const anyChar = fc.oneof(
  { weight: 9, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: loneSurrogate },
);
const anyString = fc.string({ unit: anyChar, maxLength: 40 });

const YAML_TOKENS = [
  'version',
  'policies',
  'name',
  'type',
  'target',
  'latency_chance',
  'latencyDuration',
  'error_code',
  'match_headers',
  'seed',
  'http',
  'grpc',
  'sql',
  'resource',
  '1',
  '0.5',
  '-1',
  '1e400',
  '9007199254740993',
  '.nan',
  '.inf',
  '1500ms',
  '25h',
  'true',
  '- ',
  '-',
  ': ',
  ':',
  ' ',
  '  ',
  '    ',
  '\n',
  '\r\n',
  '\r',
  '\t',
  '[',
  ']',
  '{',
  '}',
  ', ',
  '"',
  "'",
  '\\',
  '&a ',
  '*a',
  '!!str ',
  '!!binary ',
  '!x ',
  '# c',
  '---',
  '...',
  '|\n',
  '>-\n',
  '~',
  '? ',
  '<<: ',
  '%YAML 1.2\n',
  '\u0000',
  '\uFEFF',
  '\u0085',
  '\u2028',
  '😀',
  '\ud800',
];
const yamlish = fc
  .array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...YAML_TOKENS) }, { weight: 1, arbitrary: anyString }), { maxLength: 60 })
  .map((tokens) => tokens.join(''));

const VALID_YAML = [
  'version: 1',
  'warmup_duration: 30s',
  'ignored_commands:',
  '  sql: ["SELECT 1", SHOW]',
  'policies:',
  '  - name: slow-users',
  '    type: http',
  '    target: /api/users/*',
  '    latency_chance: 0.5',
  '    latency_duration: 1500ms',
  '    match_headers:',
  '      X-Chaos-Test: "enabled"',
  '  - {name: get-errors, type: redis, target: GET, error_chance: 0.25, error_code: 1}',
  '',
].join('\n');
const VALID_JSON = JSON.stringify(parseConfig(VALID_YAML), null, 2);

/** A valid text with a few random edits: insertions of tokens, deletions. */
function mutated(base: string): fc.Arbitrary<string> {
  const edit = fc.tuple(fc.nat({ max: base.length }), fc.nat({ max: 8 }), fc.oneof(fc.constantFrom(...YAML_TOKENS), anyString));
  return fc
    .array(edit, { minLength: 1, maxLength: 4 })
    .map((edits) => edits.reduce((text, [at, removed, inserted]) => text.slice(0, at) + inserted + text.slice(at + removed), base));
}

const TEXTS: [string, fc.Arbitrary<string>][] = [
  ['fc.string', fc.string()],
  ['binary strings (full Unicode) with lone surrogates', anyString],
  ['YAML-ish token soup', yamlish],
  ['a valid YAML config, mutated', mutated(VALID_YAML)],
  ['a valid JSON config, mutated', mutated(VALID_JSON)],
  ['fc.json', fc.json()],
];

TEXTS.forEach(([label, texts], i) => {
  test(`parseConfig on ${label}: a Config or a ConfigError, as YAML and as JSON`, (t) => {
    fc.assert(
      fc.property(texts, (text) => {
        configOrConfigError(() => parseConfig(text), true);
        configOrConfigError(() => parseConfig(text, { format: 'json' }), true);
      }),
      { ...RUNS, seed: 100 + i },
    );
    t.pass();
  });
});

// --- (b) validateConfig on arbitrary values -------------------------------------------------------

const TOP_KEYS = ['version', 'warmup_duration', 'warmupDuration', 'enable_default_ignored', 'ignoredCommands', 'seed', 'policies'];
const POLICY_KEYS = [
  'name',
  'type',
  'target',
  'latency_chance',
  'latencyDuration',
  'error_chance',
  'errorCode',
  'error_body',
  'match_headers',
  'dropConnection',
  'stream_roll_mode',
  'throttleThreshold',
  'ram_chunk_mb',
  'ramChunkMB',
  'ram_interval',
  'cpuCores',
  'cpu_percent',
  'ram_max_mb',
  'duration',
  'latency_chanse',
];
const everything = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  maxDepth: 3,
});
const fieldValue = fc.oneof(
  everything,
  anyString,
  fc.constantFrom<unknown>(
    1,
    0,
    -1,
    0.5,
    Number.POSITIVE_INFINITY,
    Number.NaN,
    600,
    17,
    4097,
    '1500ms',
    '25h',
    'http',
    'sql',
    'mongodb',
    'per-call',
    true,
    null,
    undefined,
  ),
);
const policyLike = fc.dictionary(fc.constantFrom(...POLICY_KEYS), fieldValue, { maxKeys: 8 });
const configLike = fc.record({
  top: fc.dictionary(fc.constantFrom(...TOP_KEYS), fieldValue, { maxKeys: 4 }),
  version: fc.oneof(fc.constant<unknown>(1), fieldValue),
  policies: fc.array(fc.oneof({ weight: 4, arbitrary: policyLike }, { weight: 1, arbitrary: everything }), { maxLength: 4 }),
});

const VALUES: [string, fc.Arbitrary<unknown>][] = [
  ['fc.jsonValue', fc.jsonValue()],
  ['fc.anything (every option)', everything],
  ['objects of the real key names', configLike.map(({ top, version, policies }) => ({ ...top, version, policies }))],
  ['one policy of the real key names', policyLike.map((fields) => ({ version: 1, policies: [{ name: 'p', type: 'http', ...fields }] }))],
];

VALUES.forEach(([label, values], i) => {
  test(`validateConfig on ${label}: a Config or a ConfigError`, (t) => {
    fc.assert(
      fc.property(values, (value) => void configOrConfigError(() => validateConfig(value), false)),
      { ...RUNS, seed: 200 + i },
    );
    t.pass();
  });
});

test('any text in a string field is accepted, or refused at that field only (never in the core)', (t) => {
  // A lone surrogate once reached the core, which could not read it and refused the whole
  // configuration with path '' and a serde message about hex escapes.
  type Place = (s: string) => [Config | Record<string, unknown>, string];
  const places: Place[] = [
    (s) => [config(policy({ name: s, type: 'http' })), 'policies[0].name'],
    (s) => [config(policy({ name: 'p', type: 'http', target: s })), 'policies[0].target'],
    (s) => [config(policy({ name: 'p', type: 'http', errorBody: s })), 'policies[0].errorBody'],
    (s) => [config(policy({ name: 'p', type: 'http', matchHeaders: { 'x-a': s } })), 'policies[0].matchHeaders.x-a'],
    (s) => [{ ...config(), ignoredCommands: { redis: [s] } }, 'ignoredCommands.redis[0]'],
  ];
  fc.assert(
    fc.property(anyString, fc.nat({ max: places.length - 1 }), (text, which) => {
      const [value, path] = (places[which] ?? fail('no place'))(text);
      for (const issue of configOrConfigError(() => validateConfig(value), false)) {
        if (issue.path !== path) fail(`issue at ${issue.path}, not ${path}: ${issue.message}`);
      }
    }),
    { ...RUNS, seed: 300 },
  );
  t.pass();
});

// --- (c) a valid config survives YAML and JSON --------------------------------------------------------

const HOUR_MS = 3_600_000;
const PROTOCOL_SPELLINGS: readonly (readonly [string, Protocol])[] = [...PROTOCOLS.map((p) => [p, p] as const), ['mongodb', 'mongo']];

/** A field as drawn: absent, an empty YAML value (null: the default), or `[what the file says, what it means]`. */
type Drawn = { given: 'absent' } | { given: 'null' } | { given: 'value'; raw: unknown; value: unknown };

function optional(arb: fc.Arbitrary<[unknown, unknown]>): fc.Arbitrary<Drawn> {
  return fc.oneof(
    fc.constant<Drawn>({ given: 'absent' }),
    fc.constant<Drawn>({ given: 'null' }),
    arb.map(([raw, value]): Drawn => ({ given: 'value', raw, value })),
  );
}

/** A value the parser keeps as it is. */
const same = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<[unknown, unknown]> => arb.map((x): [unknown, unknown] => [x, x]);

/**
 * A duration in [0, max] to the nanosecond: a Go string or a number of milliseconds, meaning
 * those milliseconds. Whole nanoseconds over 1e6, as parseDuration computes them: 1 + 328569 / 1e6
 * is not the double that "1.328569ms" reads as.
 */
function durationIn(maxMs: number): fc.Arbitrary<[unknown, unknown]> {
  return fc
    .tuple(fc.integer({ min: 0, max: maxMs }), fc.integer({ min: 0, max: 999_999 }), fc.boolean())
    .map(([ms, ns, asText]): [unknown, unknown] => {
      const total = Math.min((ms * 1e6 + ns) / 1e6, maxMs);
      return [asText ? formatDuration(total) : total, total];
    });
}

const unsigned = (max: number): fc.Arbitrary<[unknown, unknown]> => same(fc.integer({ min: 0, max }));
const chance = same(fc.double({ min: 0, max: 1, noNaN: true }).map((x) => x + 0)); // + 0: no -0
const wellFormed = fc.string({ unit: 'binary', maxLength: 30 });
const printableName = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 24 })
  .filter((s) => s.trim() !== '' && !/[\p{Cc}\u2028\u2029]/u.test(s));
/** Header names as written (any case, unique ignoring case), and as stored: lowercase. */
const headers = fc
  .uniqueArray(fc.tuple(fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}$/), wellFormed), {
    selector: ([n]) => n.toLowerCase(),
    maxLength: 3,
  })
  .map((pairs): [unknown, unknown] => [Object.fromEntries(pairs), Object.fromEntries(pairs.map(([n, v]) => [n.toLowerCase(), v]))]);

const camelCase = (snake: string): string => snake.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

function policyArb(name: string): fc.Arbitrary<{ raw: Record<string, unknown>; expected: Policy }> {
  return fc.constantFrom(...PROTOCOL_SPELLINGS).chain(([spelling, type]) => {
    const code =
      type === 'http' ? same(fc.oneof(fc.constant(0), fc.integer({ min: 100, max: 599 }))) : unsigned(type === 'grpc' ? 16 : 65535);
    const target = type === 'sql' ? same(fc.constantFrom('', 'all', 'database', 'orders', '^select', 'from users')) : same(wellFormed);
    // snake_case key → [the generator, the Policy field it fills]
    const fields: [string, fc.Arbitrary<[unknown, unknown]>, keyof Policy][] = [
      ['target', target, 'target'],
      ['latency_chance', chance, 'latencyChance'],
      ['latency_duration', durationIn(HOUR_MS), 'latencyDuration'],
      ['error_chance', chance, 'errorChance'],
      ['error_code', code, 'errorCode'],
      ['error_body', same(wellFormed), 'errorBody'],
      ['match_headers', headers, 'matchHeaders'],
      ['drop_connection', same(fc.boolean()), 'dropConnection'],
      ['stream_roll_mode', same(fc.constantFrom<StreamRollMode>('', 'per-call', 'per-frame', 'stream')), 'streamRollMode'],
      ['throttle_threshold', unsigned(10_000_000), 'throttleThreshold'],
      ['ram_chunk_mb', unsigned(16), 'ramChunkMb'],
      ['ram_interval', durationIn(HOUR_MS), 'ramInterval'],
      ['cpu_cores', unsigned(1), 'cpuCores'],
      ['cpu_percent', unsigned(100), 'cpuPercent'],
      ['ram_max_mb', unsigned(32), 'ramMaxMb'],
      ['duration', durationIn(24 * HOUR_MS), 'duration'],
    ];
    const spellings = (key: string): string[] => (key === 'ram_chunk_mb' ? [key, camelCase(key), 'ramChunkMB'] : [key, camelCase(key)]);
    const drawn = fields.map(([key, arb]) => fc.tuple(optional(arb), fc.constantFrom(...spellings(key))));
    return fc.tuple(...drawn).map((values) => {
      const raw: Record<string, unknown> = { name, type: spelling };
      const expected: Policy = policy({ name, type });
      values.forEach(([value, spelled], i) => {
        const property = fields[i]?.[2] ?? fail('no field');
        if (value.given !== 'absent') raw[spelled] = value.given === 'null' ? null : value.raw;
        if (value.given === 'value') Object.assign(expected, { [property]: value.value });
      });
      // What the parser normalises: an empty target means all, an interval of 0 one second,
      // and the sabotage fields are left out at 0.
      if (expected.target === '') expected.target = 'all';
      if (expected.ramInterval === 0) expected.ramInterval = 1000;
      for (const key of ['cpuCores', 'cpuPercent', 'ramMaxMb', 'duration'] as const) if (expected[key] === 0) delete expected[key];
      return { raw, expected };
    });
  });
}

const validConfig = fc
  .uniqueArray(printableName, { maxLength: 4 })
  .chain((names) =>
    fc.record({
      policies: fc.tuple(...names.map((n) => policyArb(n))),
      warmup: optional(durationIn(24 * HOUR_MS)),
      enableDefaultIgnored: optional(same(fc.boolean())),
      seed: optional(same(fc.maxSafeNat())),
      ignored: optional(
        fc
          .uniqueArray(
            fc.tuple(
              fc.constantFrom(...PROTOCOL_SPELLINGS),
              fc.array(fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }), { maxLength: 3 }),
            ),
            {
              selector: ([[, protocol]]) => protocol,
              maxLength: 3,
            },
          )
          .map((entries): [unknown, unknown] => [
            Object.fromEntries(entries.map(([[spelling], prefixes]) => [spelling, prefixes])),
            Object.fromEntries(entries.map(([[, protocol], prefixes]) => [protocol, prefixes])),
          ]),
      ),
    }),
  )
  .map(({ policies, warmup, enableDefaultIgnored, seed, ignored }) => {
    const raw: Record<string, unknown> = { version: 1, policies: policies.map((p) => p.raw) };
    const expected: Config = { version: 1, enableDefaultIgnored: true, ignoredCommands: {}, policies: policies.map((p) => p.expected) };
    const top: [string, Drawn, keyof Config][] = [
      ['warmup_duration', warmup, 'warmupDuration'],
      ['enableDefaultIgnored', enableDefaultIgnored, 'enableDefaultIgnored'],
      ['seed', seed, 'seed'],
      ['ignored_commands', ignored, 'ignoredCommands'],
    ];
    for (const [key, value, property] of top) {
      if (value.given !== 'absent') raw[key] = value.given === 'null' ? null : value.raw;
      if (value.given === 'value') Object.assign(expected, { [property]: value.value });
    }
    return { raw, expected };
  });

test('a generated valid config, written as YAML or JSON, parses back to the config it means', (t) => {
  fc.assert(
    fc.property(validConfig, ({ raw, expected }) => {
      deepStrictEqual(parseConfig(stringify(raw)), expected);
      deepStrictEqual(parseConfig(JSON.stringify(raw), { format: 'json' }), expected);
      deepStrictEqual(validateConfig(raw), expected);
    }),
    { numRuns: 500, seed: 400 },
  );
  t.pass();
});

// --- (d) engine.decide on arbitrary requests --------------------------------------------------------

const SET: Policy[] = [
  policy({ name: 'chaos-header', type: 'http', latencyChance: 0.5, latencyDuration: 40, matchHeaders: { 'x-chaos': 'on' } }),
  policy({
    name: 'users',
    type: 'http',
    target: '/api/users/*',
    latencyChance: 0.5,
    latencyDuration: 25,
    errorChance: 0.3,
    errorCode: 503,
    errorBody: '{"e":1}',
  }),
  policy({
    name: 'checkout',
    type: 'http',
    target: '/checkout',
    errorChance: 0.5,
    dropConnection: true,
    matchHeaders: { 'x-user': '7', accept: 'json' },
  }),
  policy({ name: 'cart', type: 'grpc', target: '/shop.Cart/*', errorChance: 0.4, latencyChance: 0.5, latencyDuration: 5 }),
  policy({ name: 'any-grpc', type: 'grpc', dropConnection: true, errorChance: 0.1 }),
  policy({ name: 'orders-sql', type: 'sql', target: 'orders', latencyChance: 1, latencyDuration: 3, errorChance: 0.2, errorCode: 1213 }),
  policy({ name: 'redis-get', type: 'redis', target: 'GET', errorChance: 0.5 }),
  policy({ name: 'mongo-all', type: 'mongo', target: 'all', latencyChance: 0.5, latencyDuration: 7, dropConnection: true }),
  policy({ name: 'kafka-orders', type: 'kafka', target: 'orders.*', errorChance: 0.5 }),
  policy({ name: 'rabbit', type: 'rabbitmq', target: 'billing', latencyChance: 1, latencyDuration: 1 }),
];
const DEFAULT_CODES: Partial<Record<Protocol, number>> = { http: 500, grpc: 14 };

const requestTarget = fc.oneof(
  fc.constantFrom(
    '/api/users/7',
    '/API/Users/',
    '/api/usersettings',
    '/checkout',
    '/shop.Cart/Add',
    'SELECT * FROM orders',
    'GET',
    'get',
    'find',
    'orders.created',
    'billing',
    '',
  ),
  anyString,
  fc.tuple(fc.constantFrom('/api/users/', '/shop.Cart/', 'orders.', 'select '), anyString).map(([a, b]) => a + b),
);
const headerValue = fc.oneof(fc.constantFrom('on', '7', 'json', 'ON'), anyString);
const headerBag: fc.Arbitrary<HeaderBag> = fc.dictionary(
  fc.oneof(fc.constantFrom('x-chaos', 'X-Chaos', 'x-user', 'accept', '__proto__', 'constructor'), anyString),
  fc.oneof(headerValue, fc.array(headerValue, { maxLength: 3 }), fc.constant(undefined)),
  { maxKeys: 5 },
);

function checkDecision(decision: Decision | null, protocol: Protocol): void {
  if (decision === null) return;
  const keys = Object.keys(decision).sort().join(',');
  if (keys !== 'drop,error,latencyMs,policy') fail(`keys ${keys}`);
  const named =
    SET.find((p) => p.name === decision.policy && p.type === protocol) ?? fail(`no ${protocol} policy named ${decision.policy}`);
  const most = SET.filter((p) => p.type === protocol).reduce((sum, p) => sum + p.latencyDuration, 0);
  if (!(Number.isInteger(decision.latencyMs) && decision.latencyMs >= 0 && decision.latencyMs <= most))
    fail(`latencyMs ${decision.latencyMs}`);
  if (typeof decision.drop !== 'boolean' || (decision.drop && !named.dropConnection))
    fail(`drop ${String(decision.drop)} from ${named.name}`);
  const { error } = decision;
  if (error !== null) {
    const code = named.errorCode || DEFAULT_CODES[protocol] || 0;
    if (named.errorChance === 0 || error.code !== code) fail(`error ${JSON.stringify(error)} from ${named.name}`);
    if (error.body !== undefined && error.body !== named.errorBody) fail(`body ${error.body}`);
  }
  if (error === null && !decision.drop && decision.latencyMs === 0) fail('a decision that does nothing');
}

test('engine.decide on arbitrary targets and header bags: null or a well-formed decision', (t) => {
  const engine = new Engine({ name: `config-properties-${process.pid}`, config: config(...SET), seed: 7, warmupMs: 0 });
  t.teardown(() => engine.close());
  let decided = 0;
  fc.assert(
    fc.property(fc.constantFrom(...PROTOCOLS), requestTarget, fc.option(headerBag, { nil: undefined }), (protocol, target, headers) => {
      const decision = engine.decide(protocol, target, headers);
      checkDecision(decision, protocol);
      if (decision !== null) decided += 1;
    }),
    { numRuns: 2000, seed: 500 },
  );
  t.true(decided > 100, `${decided} decisions were not null`);
});
