import test from 'ava';
import { ConfigError, Engine, type Config } from 'havoc';
import { config, policy } from './fixtures/policies.js';

let sets = 0;
/** A fresh process-wide set per test, so tests running in one process do not interfere. */
function setName(): string {
  sets += 1;
  return `engine-spec-${process.pid}-${sets}`;
}

test('no policies, no decision', (t) => {
  const engine = new Engine({ name: setName() });
  t.is(engine.decide('http', '/anything'), null);
  t.is(engine.version, 0);
});

test('an error decision carries the code, the body and the policy name', (t) => {
  const engine = new Engine({
    name: setName(),
    config: config(
      policy({ name: 'teapot', type: 'http', target: '/tea', errorChance: 1, errorCode: 418, errorBody: '{"short":"stout"}' }),
    ),
  });
  t.deepEqual(engine.decide('http', '/tea'), {
    policy: 'teapot',
    latencyMs: 0,
    error: { code: 418, body: '{"short":"stout"}' },
    drop: false,
  });
  t.is(engine.decide('http', '/coffee'), null);
});

test('error code 0 becomes the protocol default', (t) => {
  const engine = new Engine({
    name: setName(),
    config: config(policy({ name: 'h', type: 'http', errorChance: 1 }), policy({ name: 'g', type: 'grpc', errorChance: 1 })),
  });
  t.is(engine.decide('http', '/')?.error?.code, 500);
  t.is(engine.decide('grpc', '/shop.Cart/Add')?.error?.code, 14);
});

test('latencies of matching policies add up and the first error ends the request', (t) => {
  const engine = new Engine({
    name: setName(),
    config: config(
      policy({ name: 'everywhere', type: 'http', latencyChance: 1, latencyDuration: 100 }),
      policy({
        name: 'users',
        type: 'http',
        target: '/api/users/*',
        latencyChance: 1,
        latencyDuration: 250,
        errorChance: 1,
        errorCode: 503,
      }),
      policy({ name: 'never-reached', type: 'http', target: '/api/users/7', latencyChance: 1, latencyDuration: 5000 }),
    ),
  });
  t.deepEqual(engine.decide('http', '/api/users/7'), { policy: 'users', latencyMs: 350, error: { code: 503 }, drop: false });
  t.deepEqual(engine.decide('http', '/api/usersettings'), { policy: 'everywhere', latencyMs: 100, error: null, drop: false });
});

test('drop fires with error_chance when set, else always, and wins over the error', (t) => {
  const engine = new Engine({
    name: setName(),
    seed: 1,
    config: config(
      policy({ name: 'always', type: 'redis', target: 'GET', dropConnection: true }),
      policy({ name: 'half', type: 'redis', target: 'SET', dropConnection: true, errorChance: 0.5 }),
    ),
  });
  t.deepEqual(engine.decide('redis', 'get'), { policy: 'always', latencyMs: 0, error: null, drop: true });
  let drops = 0;
  for (let i = 0; i < 4000; i++) {
    const d = engine.decide('redis', 'SET');
    if (d) {
      t.true(d.drop);
      t.is(d.error, null);
      drops += 1;
    }
  }
  t.true(drops > 1800 && drops < 2200, `${drops} drops of 4000 at 50%`);
});

test('the same seed gives the same decisions; another seed does not', (t) => {
  const name = setName();
  new Engine({ name, config: config(policy({ name: 'p', type: 'http', latencyChance: 0.5, latencyDuration: 10, errorChance: 0.3 })) });
  const run = (seed: number) => {
    const engine = new Engine({ name, seed });
    return Array.from({ length: 500 }, () => JSON.stringify(engine.decide('http', '/x')));
  };
  t.deepEqual(run(7), run(7));
  t.notDeepEqual(run(7), run(8));
});

test('the config seed seeds handles that have none of their own', (t) => {
  const name = setName();
  const seeded: Config = { ...config(policy({ name: 'p', type: 'http', errorChance: 0.5 })), seed: 99 };
  const a = new Engine({ name, config: seeded });
  const b = new Engine({ name: setName(), config: seeded });
  const seq = (e: Engine) => Array.from({ length: 200 }, () => e.decide('http', '/') !== null);
  t.deepEqual(seq(a), seq(b));
});

test('a handle without config attaches to the existing set and sees later updates', (t) => {
  const name = setName();
  const writer = new Engine({ name, config: config(policy({ name: 'p', type: 'http', errorChance: 1, errorCode: 502 })) });
  const reader = new Engine({ name });
  t.is(reader.decide('http', '/')?.error?.code, 502);
  writer.update(config(policy({ name: 'p', type: 'http', errorChance: 1, errorCode: 504 })));
  t.is(reader.decide('http', '/')?.error?.code, 504);
  t.is(reader.version, 2);
  t.deepEqual(
    reader.policies().map((p) => p.name),
    ['p'],
  );
});

test('engines with different names are independent', (t) => {
  const a = new Engine({ name: setName(), config: config(policy({ name: 'p', type: 'http', errorChance: 1 })) });
  const b = new Engine({ name: setName() });
  t.truthy(a.decide('http', '/'));
  t.is(b.decide('http', '/'), null);
});

test('a bad update throws ConfigError and the last good set keeps running', (t) => {
  const engine = new Engine({ name: setName(), config: config(policy({ name: 'good', type: 'http', errorChance: 1 })) });
  const error = t.throws(() => engine.update(config(policy({ name: 'bad', type: 'sql', target: 'users(' }))), { instanceOf: ConfigError });
  t.is(error?.issues[0]?.path, 'policies[0].target');
  t.regex(error?.issues[0]?.message ?? '', /invalid regex/);
  t.is(engine.decide('http', '/')?.policy, 'good');
  t.is(engine.version, 1);
});

test('update accepts a raw pastaay-style object', (t) => {
  const engine = new Engine({ name: setName() });
  engine.update({
    version: 1,
    policies: [{ name: 'raw', type: 'http', target: '/r', error_chance: 1, error_code: 429 }],
  } as unknown as Config);
  t.is(engine.decide('http', '/r')?.error?.code, 429);
});

test('match_headers needs every listed header; arrays match any value', (t) => {
  const engine = new Engine({
    name: setName(),
    config: config(policy({ name: 'canary', type: 'http', errorChance: 1, matchHeaders: { 'x-canary': 'on', 'x-team': 'blue' } })),
  });
  t.is(engine.decide('http', '/'), null);
  t.is(engine.decide('http', '/', { 'x-canary': 'on' }), null);
  t.is(engine.decide('http', '/', { 'x-canary': 'on', 'x-team': 'red' }), null);
  t.truthy(engine.decide('http', '/', { 'x-canary': 'on', 'x-team': 'blue' }));
  t.truthy(engine.decide('http', '/', { 'x-canary': ['off', 'on'], 'x-team': 'blue', other: undefined }));
});

test('http targets: case-insensitive, query ignored, wildcard on a segment boundary', (t) => {
  const engine = new Engine({
    name: setName(),
    config: config(policy({ name: 'users', type: 'http', target: '/API/users/*', errorChance: 1 })),
  });
  t.truthy(engine.decide('http', '/api/users/7?expand=1'));
  t.truthy(engine.decide('http', '/api/Users/'));
  // pastaay: `/x/*` is what is under `/x/`, not `/x` itself.
  t.is(engine.decide('http', '/api/Users'), null);
  t.is(engine.decide('http', '/api/usersettings'), null);
});

test("path prefixes follow pastaay's rule exactly: /api/* and /api*", (t) => {
  const under = new Engine({ name: setName(), config: config(policy({ name: 'under', type: 'http', target: '/api/*', errorChance: 1 })) });
  t.is(under.decide('http', '/api'), null);
  t.is(under.decide('http', '/api/')?.policy, 'under');
  t.is(under.decide('http', '/api/x')?.policy, 'under');
  const star = new Engine({ name: setName(), config: config(policy({ name: 'star', type: 'http', target: '/api*', errorChance: 1 })) });
  t.is(star.decide('http', '/api')?.policy, 'star');
  t.is(star.decide('http', '/api/x')?.policy, 'star');
  t.is(star.decide('http', '/apix'), null);
  const grpc = new Engine({
    name: setName(),
    config: config(policy({ name: 'svc', type: 'grpc', target: '/shop.Cart/*', errorChance: 1 })),
  });
  t.is(grpc.decide('grpc', '/shop.Cart'), null);
  t.is(grpc.decide('grpc', '/shop.Cart/Add')?.policy, 'svc');
});

test('sql targets match the normalized statement, bare words as whole words', (t) => {
  const engine = new Engine({
    name: setName(),
    config: config(
      policy({ name: 'orders', type: 'sql', target: 'orders', errorChance: 1 }),
      policy({ name: 'inserts', type: 'sql', target: '^INSERT INTO audit', errorChance: 1 }),
    ),
  });
  t.is(engine.decide('sql', 'select * from orders where id = $1')?.policy, 'orders');
  t.is(engine.decide('sql', 'select * from orders_archive'), null);
  t.is(engine.decide('sql', '/* trace */ insert   into audit values (1)')?.policy, 'inserts');
});

test('built-in protections are on by default and can be turned off', (t) => {
  const name = setName();
  const all = [
    policy({ name: 's', type: 'sql', errorChance: 1 }),
    policy({ name: 'r', type: 'redis', errorChance: 1 }),
    policy({ name: 'g', type: 'grpc', errorChance: 1 }),
  ];
  const engine = new Engine({ name, config: config(...all) });
  t.is(engine.decide('sql', 'DROP TABLE users'), null);
  t.is(engine.decide('redis', 'ping'), null);
  t.is(engine.decide('grpc', '/grpc.health.v1.Health/Check'), null);
  t.truthy(engine.decide('sql', 'SELECT 1'));
  engine.update({ ...config(...all), enableDefaultIgnored: false });
  t.truthy(engine.decide('sql', 'DROP TABLE users'));
  t.truthy(engine.decide('redis', 'ping'));
});

test('ignored_commands protect configured prefixes', (t) => {
  const engine = new Engine({
    name: setName(),
    config: { ...config(policy({ name: 'all', type: 'http', errorChance: 1 })), ignoredCommands: { http: ['/healthz'] } },
  });
  t.is(engine.decide('http', '/healthz/ready'), null);
  t.truthy(engine.decide('http', '/orders'));
});

test('warmup holds every fault back', (t) => {
  const engine = new Engine({ name: setName(), warmupMs: 3_600_000, config: config(policy({ name: 'p', type: 'http', errorChance: 1 })) });
  t.is(engine.decide('http', '/'), null);
  t.true(engine.warmupRemainingMs > 3_000_000);
});

test('policies() filters by protocol', (t) => {
  const engine = new Engine({
    name: setName(),
    config: config(policy({ name: 'h', type: 'http' }), policy({ name: 's', type: 'sql' })),
  });
  t.deepEqual(
    engine.policies('sql').map((p) => p.name),
    ['s'],
  );
  t.is(engine.policies().length, 2);
});

test('bad arguments are TypeErrors; a closed engine refuses to decide', (t) => {
  const engine = new Engine({ name: setName() });
  t.throws(() => engine.decide('smtp' as never, '/'), { instanceOf: TypeError, message: /unknown protocol "smtp"/ });
  t.throws(() => engine.decide('http', 42 as never), { instanceOf: TypeError });
  t.throws(() => new Engine({ seed: -1 }), { instanceOf: TypeError });
  engine.close();
  t.throws(() => engine.decide('http', '/'), { message: /is closed/ });
});

test('long targets and non-ASCII paths are read whole', (t) => {
  const long = `/${'a'.repeat(10_000)}`;
  const engine = new Engine({
    name: setName(),
    config: config(
      policy({ name: 'long', type: 'http', target: long, errorChance: 1 }),
      policy({ name: 'uni', type: 'http', target: '/café/*', errorChance: 1 }),
    ),
  });
  t.is(engine.decide('http', long)?.policy, 'long');
  t.is(engine.decide('http', `${long}b`), null);
  t.is(engine.decide('http', '/café/menu')?.policy, 'uni');
});

test('a long target is read whole when a multi-byte character does not fit the first read', (t) => {
  // The addon reads targets into a 4 KiB buffer; N-API writes whole characters only, so the
  // read of `/a…a€` stops short of the buffer's end and must be taken again, not matched as `/a…a`.
  const prefix = `/${'a'.repeat(4093)}`;
  const engine = new Engine({
    name: `long-target-${process.pid}`,
    config: config(policy({ name: 'prefix-only', type: 'http', target: prefix, errorChance: 1, errorCode: 503 })),
  });
  t.is(engine.decide('http', prefix)?.error?.code, 503);
  t.is(engine.decide('http', `${prefix}€`), null);
  t.is(engine.decide('http', `${prefix}€/x`), null);
  engine.close();
});
