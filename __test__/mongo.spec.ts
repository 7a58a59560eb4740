// The MongoDB interceptor against a real MongoDB-wire server (FerretDB on SQLite, see
// .ci/services.sh). What reached the server is read through a second, uninstrumented client.
import type { ExecutionContext } from 'ava';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MongoClient, MongoNetworkError, MongoServerError, type Collection, type Document } from 'mongodb';
import { DEFAULT_MONGO_ERROR_CODE, HavocError, instrumentMongo, type Engine } from 'havoc';
import { chaosEngine, faults } from './fixtures/chaos.js';
import { config, policy } from './fixtures/policies.js';
import { URLS, serverTest } from './fixtures/servers.js';

const test = serverTest('mongo');
const exporter = new InMemorySpanExporter();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

let collections = 0;
/** A collection name no other test or run uses. */
function uniqueName(label: string): string {
  collections += 1;
  return `spec_${process.pid}_${collections}_${label}`;
}

interface Rig {
  /** Instrumented (monitorCommands on). */
  client: MongoClient;
  /** Uninstrumented: sees what really reached the server. */
  witness: MongoClient;
  /** The instrumented and the witness's view of one fresh collection, with `docs` in it. */
  collection(label: string, docs?: Document[]): Promise<[Collection, Collection, string]>;
}

async function rig(t: ExecutionContext, engine: Engine): Promise<Rig> {
  const client = instrumentMongo(new MongoClient(URLS.mongo, { monitorCommands: true, serverSelectionTimeoutMS: 5000 }), engine);
  const witness = new MongoClient(URLS.mongo);
  t.teardown(async () => {
    await client.close().catch(() => undefined);
    await witness.close().catch(() => undefined);
  });
  const collection = async (label: string, docs: Document[] = []): Promise<[Collection, Collection, string]> => {
    const name = uniqueName(label);
    const seen = witness.db().collection(name);
    if (docs.length > 0) await seen.insertMany(docs.map((d) => ({ ...d })));
    t.teardown(() => seen.drop().then(undefined, () => undefined));
    return [client.db().collection(name), seen, name];
  };
  return { client, witness, collection };
}

const DB = new URL(URLS.mongo).pathname.slice(1);

test('no matching policy: commands pass untouched and are counted as passes', async (t) => {
  const engine = chaosEngine([{ name: 'other', type: 'mongo', target: 'distinct', error_chance: 1 }]);
  const { collection } = await rig(t, engine);
  const [coll, seen] = await collection('pass');
  await coll.insertOne({ n: 1 });
  t.is((await coll.findOne({ n: 1 }))?.n, 1);
  t.is(await seen.countDocuments(), 1);
  t.is(await faults(engine, 'error'), 0);
  const decisions = await engine.metrics.decisions.get();
  t.true(decisions.values.some((v) => v.labels.protocol === 'mongo' && v.labels.outcome === 'pass' && v.value >= 2));
});

test("error: the driver's MongoServerError with error_code and error_body, and the command never ran", async (t) => {
  const engine = chaosEngine([
    { name: 'conflict', type: 'mongo', target: 'insert', error_chance: 1, error_code: 112, error_body: 'injected write conflict' },
    { name: 'slow-server', type: 'mongo', target: 'update', error_chance: 1 },
    { name: 'unknown-code', type: 'mongo', target: 'delete', error_chance: 1, error_code: 4242 },
  ]);
  const { collection } = await rig(t, engine);
  const [coll, seen] = await collection('error', [{ n: 1 }]);
  const conflict = await t.throwsAsync(coll.insertOne({ n: 2 }), { instanceOf: MongoServerError });
  t.is(conflict.code, 112);
  t.is(conflict.codeName, 'WriteConflict');
  t.is(conflict.errmsg, 'injected write conflict');
  const defaulted = await t.throwsAsync(coll.updateOne({ n: 1 }, { $set: { n: 10 } }), { instanceOf: MongoServerError });
  t.is(defaulted.code, DEFAULT_MONGO_ERROR_CODE);
  t.is(defaulted.codeName, 'MaxTimeMSExpired');
  t.is(defaulted.errmsg, 'operation exceeded time limit');
  const unknown = await t.throwsAsync(coll.deleteMany({}), { instanceOf: MongoServerError });
  t.is(unknown.code, 4242);
  t.deepEqual(
    (await seen.find({}, { projection: { _id: 0 } }).toArray()).map((d) => d.n),
    [1],
    'no insert, update or delete reached the server',
  );
  t.is(await faults(engine, 'error'), 3);
});

test('latency: the command waits, then runs; an aborted operation stops waiting and is counted as client-closed', async (t) => {
  const engine = chaosEngine([
    { name: 'slow-find', type: 'mongo', target: 'find', latency_chance: 1, latency_duration: '20ms' },
    { name: 'stuck-count', type: 'mongo', target: 'count', latency_chance: 1, latency_duration: '10m' },
  ]);
  const { collection } = await rig(t, engine);
  const [coll] = await collection('latency', [{ n: 1 }, { n: 2 }]);
  t.deepEqual(
    (await coll.find({}, { sort: { n: 1 } }).toArray()).map((d) => d.n),
    [1, 2],
  );
  t.is(await faults(engine, 'latency', 'slow-find'), 1);
  const controller = new AbortController();
  const counting = coll.estimatedDocumentCount({ signal: controller.signal } as Document);
  setTimeout(() => controller.abort(new Error('caller gave up')), 20);
  await t.throwsAsync(counting, { message: 'caller gave up' });
  const closed = await engine.metrics.clientClosed.get();
  t.is(closed.values.find((v) => v.labels.policy === 'stuck-count')?.value, 1);
});

test('drop: the connection dies, a write fails with MongoNetworkError and is not retried on a standalone server', async (t) => {
  const engine = chaosEngine([{ name: 'cut', type: 'mongo', target: 'insert', drop_connection: true }]);
  const { client, collection } = await rig(t, engine);
  const [coll, seen] = await collection('drop-write');
  const closedByError: unknown[] = [];
  client.on('connectionClosed', (event) => event.reason === 'error' && closedByError.push(event.connectionId));
  await t.throwsAsync(coll.insertOne({ n: 1 }), { instanceOf: MongoNetworkError });
  t.is(await seen.countDocuments(), 0, 'the insert never reached the server');
  // FerretDB is a standalone server: the driver retries writes only on replica sets and sharded clusters.
  t.is(await faults(engine, 'drop', 'cut'), 1);
  t.true(closedByError.length >= 1, 'the pool saw the connection die and dropped it');
  // The client recovers with a new connection.
  engine.update({ ...engine.config(), policies: [] });
  await coll.insertOne({ n: 2 });
  t.is(await seen.countDocuments(), 1);
});

test('drop: a retryable read is retried once by the driver, on a new connection', async (t) => {
  const engine = chaosEngine([{ name: 'cut-find', type: 'mongo', target: 'find', drop_connection: true }]);
  const { client, collection } = await rig(t, engine);
  const [coll] = await collection('drop-read', [{ n: 7 }]);
  // Always dropped: the first try and the driver's one retry both fail.
  await t.throwsAsync(coll.findOne({ n: 7 }), { instanceOf: MongoNetworkError });
  t.is(await faults(engine, 'drop', 'cut-find'), 2, 'the driver retried the read exactly once');
  // Dropped once: the policy goes when the pool drops the dead connection, so the retry succeeds.
  const started: number[] = [];
  client.on('commandStarted', (event) => event.commandName === 'find' && started.push(Number(event.connectionId)));
  client.once('connectionClosed', () => engine.update({ ...engine.config(), policies: [] }));
  engine.update({ ...engine.config(), policies: engine.policies() });
  t.is((await coll.findOne({ n: 7 }))?.n, 7);
  t.is(await faults(engine, 'drop', 'cut-find'), 3);
  t.is(started.length, 1, 'only the retry reached the server');
});

test('error with a retryable code: the driver retries the read, each try decided anew', async (t) => {
  const engine = chaosEngine([{ name: 'stepdown', type: 'mongo', target: 'find', error_chance: 1, error_code: 262 }]);
  const { collection } = await rig(t, engine);
  const [coll] = await collection('retry-read', [{ n: 1 }]);
  const error = await t.throwsAsync(coll.findOne({}), { instanceOf: MongoServerError });
  t.is(error.codeName, 'ExceededTimeLimit');
  t.is(await faults(engine, 'error'), 2, 'first try and one retry');
  // MaxTimeMSExpired (the default) is not retryable: one try.
  engine.update({ ...engine.config(), policies: engine.policies().map((p) => ({ ...p, errorCode: 0 })) });
  await t.throwsAsync(coll.findOne({}), { instanceOf: MongoServerError });
  t.is(await faults(engine, 'error'), 3);
});

test('protected by default: create, createIndexes, drop, collMod, ping, hello and the connection handshake', async (t) => {
  const everything = [{ name: 'everything', type: 'mongo', target: 'all', error_chance: 1 }];
  const engine = chaosEngine(everything);
  const { client, collection } = await rig(t, engine);
  const [, seen, name] = await collection('protected');
  const db = client.db();
  // Connecting (hello on each new connection) and these commands all went through.
  const coll = await db.createCollection(name);
  await coll.createIndex({ n: 1 });
  // FerretDB has no collMod: its own NotImplemented reply shows the command reached it.
  const collMod = await t.throwsAsync(db.command({ collMod: name, validator: {} }), { instanceOf: MongoServerError });
  t.is(collMod.codeName, 'NotImplemented');
  t.is((await db.command({ ping: 1 })).ok, 1);
  t.is((await db.command({ hello: 1 })).ok, 1);
  t.is((await db.admin().command({ isMaster: 1 })).ok, 1);
  await t.throwsAsync(coll.findOne({}), { instanceOf: MongoServerError }, 'anything else is faulted');
  t.true(await coll.drop());
  t.is(await faults(engine, 'error'), 1);
  t.false((await seen.db.listCollections({ name }).toArray()).length > 0);
  // Without the default protection the same policy faults createCollection, but never the handshake.
  const open = chaosEngine(everything, { enable_default_ignored: false });
  const bare = (await rig(t, open)).client;
  await t.throwsAsync(bare.db().createCollection(uniqueName('unprotected')), { instanceOf: MongoServerError });
  await t.throwsAsync(bare.db().command({ ping: 1 }), { instanceOf: MongoServerError });
});

test('targets: a command name, a `prefix*` of one, `db.collection` and `db.*`', async (t) => {
  const engine = chaosEngine([]);
  const { collection } = await rig(t, engine);
  const [a] = await collection('a', [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
  const [b, , bName] = await collection('b', [{ n: 1 }]);
  const only = (target: string): void => engine.update(config(policy({ name: 'only', type: 'mongo', target, errorChance: 1 })));

  only('distinct');
  await t.throwsAsync(a.distinct('n'), { instanceOf: MongoServerError });
  t.is((await a.findOne({ n: 1 }))?.n, 1);

  only('findAndModify');
  await t.throwsAsync(a.findOneAndUpdate({ n: 1 }, { $set: { m: 1 } }), { instanceOf: MongoServerError });
  t.is(await a.estimatedDocumentCount(), 5);

  only('find*'); // find and findAndModify
  await t.throwsAsync(a.findOne({}), { instanceOf: MongoServerError });
  await t.throwsAsync(a.findOneAndDelete({ n: 1 }), { instanceOf: MongoServerError });
  t.deepEqual(await a.distinct('n'), [1, 2, 3, 4, 5]);

  only('getMore'); // the first batch comes with find; the second needs getMore
  const cursor = a.find({}, { batchSize: 2, sort: { n: 1 } });
  t.is((await cursor.next())?.n, 1);
  t.is((await cursor.next())?.n, 2);
  await t.throwsAsync(cursor.next(), { instanceOf: MongoServerError });
  await cursor.close().catch(() => undefined);

  only(`${DB}.${bName}`);
  await t.throwsAsync(b.findOne({}), { instanceOf: MongoServerError });
  await t.throwsAsync(b.insertOne({ n: 2 }), { instanceOf: MongoServerError });
  t.is((await a.findOne({ n: 1 }))?.n, 1);

  only(`${DB}.*`);
  await t.throwsAsync(a.aggregate([{ $match: {} }]).toArray(), { instanceOf: MongoServerError });
  const other = (await rig(t, engine)).client.db(`${DB}_other`).collection(bName);
  t.is(await other.findOne({}), null, 'another database is not matched');
});

test('ignored_commands: a command prefix and a `db.collection` are never faulted', async (t) => {
  const engine = chaosEngine([{ name: 'everything', type: 'mongo', target: 'all', error_chance: 1 }], {
    ignored_commands: { mongo: ['aggregate', `${DB}.spec_${process.pid}_`] },
  });
  const { collection, client } = await rig(t, engine);
  const [coll] = await collection('ignored', [{ n: 1 }]);
  t.is((await coll.findOne({}))?.n, 1, 'its namespace is ignored');
  const elsewhere = client.db().collection(`other_${process.pid}`);
  t.deepEqual(await elsewhere.aggregate([{ $match: {} }]).toArray(), [], 'aggregate is ignored');
  await t.throwsAsync(elsewhere.findOne({}), { instanceOf: MongoServerError });
  t.is(await faults(engine, 'error'), 1);
});

test('transactions: inside one only latency; commitTransaction and abortTransaction are never decided', async (t) => {
  const engine = chaosEngine([
    { name: 'everything', type: 'mongo', target: 'all', error_chance: 1, latency_chance: 1, latency_duration: '5ms' },
  ]);
  const { client, collection } = await rig(t, engine);
  const [coll] = await collection('tx');
  const sent: string[] = [];
  client.on('commandStarted', (event) => sent.push(event.commandName));
  // FerretDB 1.24 has no transactions: it refuses the driver's `autocommit` field and does not
  // know commitTransaction or abortTransaction. Those replies, not the injected error, show
  // each command was sent.
  for (const end of ['abortTransaction', 'commitTransaction'] as const) {
    const session = client.startSession();
    t.teardown(() => session.endSession());
    session.startTransaction();
    const refused = await t.throwsAsync(coll.insertOne({ n: 1 }, { session }), { instanceOf: MongoServerError });
    t.regex(refused.errmsg, /autocommit/, 'the insert was sent, after its latency');
    if (end === 'commitTransaction') {
      const unknown = await t.throwsAsync(session.commitTransaction(), { instanceOf: MongoServerError });
      t.is(unknown.codeName, 'CommandNotFound');
    } else {
      await session.abortTransaction(); // the driver ignores a failed abort
    }
  }
  t.deepEqual(sent, ['insert', 'abortTransaction', 'insert', 'commitTransaction']);
  t.is(await faults(engine, 'latency'), 2);
  t.is(await faults(engine, 'error'), 0, 'the errors rolled inside the transactions were discarded');
  const decided = await engine.metrics.decisions.get();
  const total = decided.values.filter((v) => v.labels.protocol === 'mongo').reduce((sum, v) => sum + v.value, 0);
  t.is(total, 2, 'only the inserts were decided');
});

test('metrics and span events: each fault counted and added to the active span', async (t) => {
  const engine = chaosEngine([
    { name: 'slow-fail', type: 'mongo', target: 'insert', latency_chance: 1, latency_duration: '5ms', error_chance: 1, error_code: 91 },
  ]);
  const { collection } = await rig(t, engine);
  const [coll, , name] = await collection('span');
  exporter.reset();
  await trace.getTracer('app').startActiveSpan('checkout', async (span) => {
    await t.throwsAsync(coll.insertOne({ n: 1 }), { instanceOf: MongoServerError });
    span.end();
  });
  const target = `insert ${DB}.${name}`;
  t.deepEqual(
    exporter.getFinishedSpans()[0]?.events.map((e) => [e.name, e.attributes]),
    [
      ['havoc.mongo.latency', { 'havoc.policy': 'slow-fail', 'havoc.target': target, 'havoc.latency_ms': 5 }],
      ['havoc.mongo.error', { 'havoc.policy': 'slow-fail', 'havoc.target': target, 'havoc.error_code': 91 }],
    ],
  );
  t.is(await faults(engine, 'latency', 'slow-fail'), 1);
  t.is(await faults(engine, 'error', 'slow-fail'), 1);
});

test('instrumentMongo: refuses a connected client and what is not a MongoClient; instrumenting twice changes nothing', async (t) => {
  const engine = chaosEngine([{ name: 'once', type: 'mongo', target: 'find', latency_chance: 1, latency_duration: 1 }]);
  const connected = new MongoClient(URLS.mongo);
  t.teardown(() => connected.close());
  await connected.connect();
  t.throws(() => instrumentMongo(connected, engine), { instanceOf: HavocError, message: /before the MongoClient connects/ });
  t.throws(() => instrumentMongo({} as MongoClient, engine), { instanceOf: HavocError, message: /expects a MongoClient/ });
  const client = new MongoClient(URLS.mongo);
  t.is(instrumentMongo(instrumentMongo(client, engine), engine), client);
  t.teardown(() => client.close());
  t.is(await client.db().collection(uniqueName('twice')).findOne({}), null);
  t.is(await faults(engine, 'latency', 'once'), 1, 'decided once, not once per instrumentation');
});
