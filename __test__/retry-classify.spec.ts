// The default retry classifier against the errors havoc's own interceptors inject: every fault a
// real outage would cause is retried; the faults that blame the request are not.
import { resolve } from 'node:path';
import anyTest from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import mysqlPromise from 'mysql2/promise';
import pg from 'pg';
import {
  ManualClock,
  Retry,
  RetryExhaustedError,
  chaosFetch,
  grpcClientInterceptor,
  instrumentMysql,
  instrumentPg,
  isRetryable,
} from 'havoc';
import { chaosEngine } from './fixtures/chaos.js';
import { onClock } from './fixtures/clock.js';
import { engineWith } from './fixtures/http.js';
import { URLS, serverTest } from './fixtures/servers.js';

/** An error carrying a fetch Response, as an HTTP client wrapper throws it. */
async function responseError(res: Response): Promise<Error> {
  return Object.assign(new Error(`HTTP ${res.status}`), { status: res.status, response: res });
}

anyTest('fetch: an injected drop (fetch failed, caused by ECONNRESET), 503, 429 and 408 are retried; 404 is not', async (t) => {
  const engine = engineWith([
    { name: 'drop', type: 'http', target: '/drop', drop_connection: true },
    { name: 'e503', type: 'http', target: '/503', error_chance: 1, error_code: 503 },
    { name: 'e429', type: 'http', target: '/429', error_chance: 1, error_code: 429 },
    { name: 'e408', type: 'http', target: '/408', error_chance: 1, error_code: 408 },
    { name: 'e404', type: 'http', target: '/404', error_chance: 1, error_code: 404 },
  ]);
  const fetch = chaosFetch(engine);
  const drop = await t.throwsAsync(fetch('http://127.0.0.1:9/drop'), { instanceOf: TypeError });
  t.true(isRetryable(drop), 'a dropped connection');
  for (const status of [503, 429, 408]) t.true(isRetryable(await responseError(await fetch(`http://127.0.0.1:9/${status}`))), `${status}`);
  t.false(isRetryable(await responseError(await fetch('http://127.0.0.1:9/404'))));
  t.false(isRetryable(new TypeError('x is not a function')), 'a TypeError of a bug is not');

  const clock = new ManualClock();
  let calls = 0;
  const error = await t.throwsAsync(
    onClock(
      clock,
      new Retry({ clock }).execute(() => {
        calls += 1;
        return fetch('http://127.0.0.1:9/drop');
      }),
    ),
    { instanceOf: RetryExhaustedError },
  );
  t.is(calls, 3);
  t.true(error.errors.every((e) => e instanceof TypeError));
});

const load = (file: string) => grpc.loadPackageDefinition(loader.loadSync(resolve('__test__/fixtures', file)));
type Ctor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => grpc.Client & Record<string, Function>;
const { Echo } = (load('echo.proto') as unknown as { havoc: { test: { Echo: Ctor & { service: grpc.ServiceDefinition } } } }).havoc.test;

anyTest('gRPC: the injected UNAVAILABLE (default) is retried; INVALID_ARGUMENT and PERMISSION_DENIED are not', async (t) => {
  const server = new grpc.Server();
  server.addService(Echo.service, { Unary: (_: unknown, cb: grpc.sendUnaryData<{ n: number }>) => cb(null, { n: 1 }) });
  const port = await new Promise<number>((ok, ko) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? ko(e) : ok(p))),
  );
  t.teardown(() => server.forceShutdown());
  const codes: [number | undefined, boolean][] = [
    [undefined, true],
    [3, false],
    [7, false],
  ];
  for (const [code, retried] of codes) {
    const engine = chaosEngine([
      { name: 'g', type: 'grpc', target: '/havoc.test.Echo/Unary', error_chance: 1, ...(code ? { error_code: code } : {}) },
    ]);
    const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { interceptors: [grpcClientInterceptor(engine)] });
    const error = await new Promise<grpc.ServiceError>((ok) => client.Unary({ n: 1 }, (e: grpc.ServiceError) => ok(e)));
    client.close();
    t.is(error.code, code ?? 14);
    t.is(isRetryable(error), retried, `code ${error.code}`);
  }
});

const pgTest = serverTest('pg');

pgTest('pg: injected 57P01 (server shutdown) and 40P01 (deadlock) are retried; 23505 (unique violation) is not', async (t) => {
  const engine = chaosEngine([
    { name: 'shutdown', type: 'sql', target: 'pg_class', error_chance: 1, error_code: 1053 },
    { name: 'deadlock', type: 'sql', target: 'pg_namespace', error_chance: 1, error_code: 1213 },
  ]);
  const client = instrumentPg(new pg.Client({ connectionString: URLS.pg }), engine);
  await client.connect();
  t.teardown(() => client.end());
  const shutdown = await t.throwsAsync(client.query('select count(*) from pg_class'));
  t.is((shutdown as { code?: string }).code, '57P01');
  t.true(isRetryable(shutdown));
  const deadlock = await t.throwsAsync(client.query('select 1 from pg_namespace limit 1'));
  t.is((deadlock as { code?: string }).code, '40P01');
  t.true(isRetryable(deadlock));
  await client.query('create temp table retry_classify (id int primary key)');
  await client.query('insert into retry_classify values (1)');
  const duplicate = await t.throwsAsync(client.query('insert into retry_classify values (1)'));
  t.is((duplicate as { code?: string }).code, '23505');
  t.false(isRetryable(duplicate), 'a real integrity violation');
});

const mysqlTest = serverTest('mysql');

mysqlTest('MySQL: injected 1213 (deadlock) and 1053 (shutdown) are retried', async (t) => {
  const engine = chaosEngine([
    { name: 'deadlock', type: 'sql', target: 'SELECT 2', error_chance: 1, error_code: 1213 },
    { name: 'shutdown', type: 'sql', target: 'SELECT 3', error_chance: 1, error_code: 1053 },
  ]);
  const pool = instrumentMysql(mysqlPromise.createPool({ uri: URLS.mysql, connectionLimit: 1 }), engine);
  t.teardown(() => pool.end());
  const deadlock = await t.throwsAsync(pool.query('SELECT 2'));
  t.is((deadlock as { errno?: number }).errno, 1213);
  t.true(isRetryable(deadlock));
  const shutdown = await t.throwsAsync(pool.query('SELECT 3'));
  t.is((shutdown as { errno?: number }).errno, 1053);
  t.true(isRetryable(shutdown));
});
