import { resolve } from 'node:path';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { grpcClientInterceptor, grpcServerInterceptor, type Engine } from 'havoc';
import { chaosEngine, faults } from './fixtures/chaos.js';

interface Msg {
  n: number;
}
type Ctor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => grpc.Client & Record<string, Function>;

const load = (file: string) => grpc.loadPackageDefinition(loader.loadSync(resolve('__test__/fixtures', file)));
const echoPkg = load('echo.proto') as unknown as { havoc: { test: { Echo: Ctor & { service: grpc.ServiceDefinition } } } };
const healthPkg = load('health.proto') as unknown as { grpc: { health: { v1: { Health: Ctor & { service: grpc.ServiceDefinition } } } } };
const { Echo } = echoPkg.havoc.test;
const { Health } = healthPkg.grpc.health.v1;

interface Harness {
  client: grpc.Client & Record<string, Function>;
  health: grpc.Client & Record<string, Function>;
  calls: string[];
  close(): void;
}

/** A real server and client on 127.0.0.1 (port 0); `side` says which one carries the interceptor. */
async function harness(engine: Engine, side: 'server' | 'client'): Promise<Harness> {
  const calls: string[] = [];
  const server = new grpc.Server(side === 'server' ? { interceptors: [grpcServerInterceptor(engine)] } : {});
  server.addService(Echo.service, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      calls.push('Unary');
      cb(null, { n: call.request.n + 1 });
    },
    Count: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      calls.push('Count');
      for (let i = 1; i <= call.request.n; i += 1) call.write({ n: i });
      call.end();
    },
    Sum: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      calls.push('Sum');
      let sum = 0;
      call.on('data', (m: Msg) => (sum += m.n));
      call.on('end', () => cb(null, { n: sum }));
    },
    Chat: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      calls.push('Chat');
      call.on('data', (m: Msg) => call.write({ n: m.n * 10 }));
      call.on('end', () => call.end());
    },
  });
  server.addService(Health.service, { Check: (_: unknown, cb: grpc.sendUnaryData<{ status: number }>) => cb(null, { status: 1 }) });
  const port = await new Promise<number>((ok, ko) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? ko(e) : ok(p))),
  );
  const options = side === 'client' ? { interceptors: [grpcClientInterceptor(engine)] } : {};
  const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options);
  const health = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options);
  return {
    client,
    health,
    calls,
    close: () => {
      client.close();
      health.close();
      server.forceShutdown();
    },
  };
}

const unary = (client: Harness['client'], n: number, options: grpc.CallOptions = {}, metadata = new grpc.Metadata()) =>
  new Promise<Msg>((ok, ko) => client.Unary({ n }, metadata, options, (e: grpc.ServiceError | null, r: Msg) => (e ? ko(e) : ok(r))));
const count = (client: Harness['client'], n: number) =>
  new Promise<{ got: number[]; status: grpc.StatusObject | grpc.ServiceError }>((ok) => {
    const got: number[] = [];
    const call = client.Count({ n }) as grpc.ClientReadableStream<Msg>;
    call.on('data', (m: Msg) => got.push(m.n));
    call.on('error', (e: grpc.ServiceError) => ok({ got, status: e }));
    call.on('status', (s: grpc.StatusObject) => s.code === 0 && ok({ got, status: s }));
  });
const sum = (client: Harness['client'], values: number[]) =>
  new Promise<Msg>((ok, ko) => {
    const call = client.Sum((e: grpc.ServiceError | null, r: Msg) => (e ? ko(e) : ok(r))) as grpc.ClientWritableStream<Msg>;
    for (const n of values) call.write({ n });
    call.end();
  });

for (const side of ['server', 'client'] as const) {
  test(`${side}: unary status errors (error_code, error_body as details) and the default UNAVAILABLE`, async (t) => {
    const engine = chaosEngine([
      {
        name: 'denied',
        type: 'grpc',
        target: '/havoc.test.Echo/Unary',
        error_chance: 1,
        error_code: 7,
        error_body: 'no entry',
        match_headers: { 'x-user': 'eve' },
      },
      { name: 'down', type: 'grpc', target: '/havoc.test.Echo/*', error_chance: 1 },
    ]);
    const h = await harness(engine, side);
    const eve = new grpc.Metadata();
    eve.set('x-user', 'eve');
    await t.throwsAsync(unary(h.client, 1, {}, eve), { message: /no entry/, code: 7 } as never);
    await t.throwsAsync(unary(h.client, 1), { code: grpc.status.UNAVAILABLE } as never);
    t.deepEqual(h.calls, [], 'the handler never ran');
    t.is(await faults(engine, 'error'), 2);
    h.close();
  });

  test(`${side}: grpc.health.v1.Health is protected by default`, async (t) => {
    const engine = chaosEngine([{ name: 'all', type: 'grpc', target: 'all', error_chance: 1 }]);
    const h = await harness(engine, side);
    const health = await new Promise<{ status: number }>((ok, ko) =>
      h.health.Check({ service: '' }, (e: Error | null, r: { status: number }) => (e ? ko(e) : ok(r))),
    );
    t.is(health.status, 1);
    h.close();
  });

  test(`${side}: a delay that would outlive the deadline ends as DEADLINE_EXCEEDED`, async (t) => {
    // An hour's delay: had the call not ended at its deadline, the test would time out.
    const engine = chaosEngine([{ name: 'slow', type: 'grpc', target: 'all', latency_chance: 1, latency_duration: '1h' }]);
    const h = await harness(engine, side);
    await t.throwsAsync(unary(h.client, 1, { deadline: Date.now() + 200 }), { code: grpc.status.DEADLINE_EXCEEDED } as never);
    t.deepEqual(h.calls, []);
    h.close();
  });

  test(`${side}: latency within the deadline, then the call succeeds`, async (t) => {
    const engine = chaosEngine([{ name: 'slow', type: 'grpc', target: 'all', latency_chance: 1, latency_duration: '20ms' }]);
    const h = await harness(engine, side);
    t.deepEqual(await unary(h.client, 41, { deadline: Date.now() + 5_000 }), { n: 42 });
    t.is(await faults(engine, 'latency', 'slow'), 1);
    h.close();
  });

  test(`${side}: stream_roll_mode per-frame drops single messages of a server stream`, async (t) => {
    const engine = chaosEngine([
      {
        name: 'lossy',
        type: 'grpc',
        target: '/havoc.test.Echo/Count',
        drop_connection: true,
        error_chance: 0.5,
        stream_roll_mode: 'per-frame',
      },
    ]);
    const h = await harness(engine, side);
    const { got, status } = await count(h.client, 40);
    t.is(status.code, grpc.status.OK, 'the stream itself completes');
    t.true(got.length > 0 && got.length < 40, `received ${got.length} of 40`);
    t.deepEqual(
      got,
      [...got].sort((a, b) => a - b),
      'what arrives keeps its order',
    );
    t.is(await faults(engine, 'drop', 'lossy'), 40 - got.length);
    h.close();
  });

  test(`${side}: stream_roll_mode stream decides once and keeps it for every message`, async (t) => {
    const engine = chaosEngine([
      { name: 'blackhole', type: 'grpc', target: '/havoc.test.Echo/Count', drop_connection: true, stream_roll_mode: 'stream' },
    ]);
    const h = await harness(engine, side);
    const { got, status } = await count(h.client, 10);
    t.is(status.code, grpc.status.OK);
    t.deepEqual(got, [], 'every message of the stream was dropped');
    h.close();
  });

  test(`${side}: stream_roll_mode per-call rolls once: an error ends the stream before any message`, async (t) => {
    const engine = chaosEngine([
      { name: 'once', type: 'grpc', target: '/havoc.test.Echo/Count', error_chance: 1, error_code: 8, stream_roll_mode: 'per-call' },
    ]);
    const h = await harness(engine, side);
    const { got, status } = await count(h.client, 10);
    t.is(status.code, 8);
    t.deepEqual(got, []);
    h.close();
  });

  test(`${side}: client streaming, per-frame drops of incoming messages; latency keeps order on a bidi stream`, async (t) => {
    const engine = chaosEngine([
      {
        name: 'lossy',
        type: 'grpc',
        target: '/havoc.test.Echo/Sum',
        drop_connection: true,
        error_chance: 0.5,
        stream_roll_mode: 'per-frame',
      },
      {
        name: 'slow',
        type: 'grpc',
        target: '/havoc.test.Echo/Chat',
        latency_chance: 0.5,
        latency_duration: 3,
        stream_roll_mode: 'per-frame',
      },
    ]);
    const h = await harness(engine, side);
    const ones = Array.from({ length: 40 }, () => 1);
    const { n } = await sum(h.client, ones);
    t.true(n > 0 && n < 40, `the server saw ${n} of 40`);
    const chat = h.client.Chat() as grpc.ClientDuplexStream<Msg, Msg>;
    const replies: number[] = [];
    const done = new Promise<void>((ok) => chat.on('end', ok));
    chat.on('data', (m: Msg) => replies.push(m.n));
    for (let i = 1; i <= 20; i += 1) chat.write({ n: i });
    chat.end();
    await done;
    t.deepEqual(
      replies,
      Array.from({ length: 20 }, (_, i) => (i + 1) * 10),
    );
    t.true((await faults(engine, 'latency', 'slow')) > 0);
    h.close();
  });
}

test('server: drop on a unary call destroys the connection (the client sees UNAVAILABLE)', async (t) => {
  const engine = chaosEngine([{ name: 'cut', type: 'grpc', target: '/havoc.test.Echo/Unary', drop_connection: true }]);
  const h = await harness(engine, 'server');
  await t.throwsAsync(unary(h.client, 1), { code: grpc.status.UNAVAILABLE } as never);
  t.deepEqual(h.calls, []);
  h.close();
});
