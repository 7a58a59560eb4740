// The kafkajs interceptor against a real Kafka broker (KRaft, one node, see .ci/services.sh):
// producing, transactions, targets and metrics (the consuming side is in kafka-consume.spec.ts).
// What reached the broker is read by a witness client without havoc (fixtures/kafka.ts).
import { randomUUID } from 'node:crypto';
import ava, { type ExecutionContext } from 'ava';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Kafka, logLevel } from 'kafkajs';
import { DEFAULT_KAFKA_ERROR_CODE, HavocError, KafkaInjectedError, instrumentKafka, type Policy } from 'havoc';
import { chaosEngine, faults } from './fixtures/chaos.js';
import { config, policy } from './fixtures/policies.js';
import {
  closeWitness,
  committed,
  consumerOf,
  createTopic,
  highWatermarks,
  kafkaClient,
  mark,
  produceBare,
  producerOf,
  text,
  uniqueTopic,
  waitFor,
  written,
} from './fixtures/kafka.js';
import { KAFKA_BROKERS, serverTest } from './fixtures/servers.js';

const test = serverTest('kafka');
// From ava itself: the skipping stand-in `serverTest` returns has no hooks.
ava.after.always(closeWitness);
const exporter = new InMemorySpanExporter();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

/** A producer that does not retry: an injected retriable error reaches the application after one try. */
const NO_RETRIES = { retry: { retries: 0 } };

/**
 * The injected error a send rejected with: the error itself when kafkajs counts it as not
 * retriable, else the cause of kafkajs's KafkaJSNumberOfRetriesExceeded (its retries spent).
 */
async function injected(t: ExecutionContext, sending: Promise<unknown>): Promise<KafkaInjectedError> {
  const error = await t.throwsAsync(sending);
  const cause = error?.name === 'KafkaJSNumberOfRetriesExceeded' ? error.cause : error;
  if (!(cause instanceof KafkaInjectedError)) throw new Error(`not an injected error: ${String(error)}`, { cause: error });
  return cause;
}

test('no matching policy: sends pass untouched, return kafkajs metadata, and are counted as passes', async (t) => {
  const topic = await uniqueTopic('pass');
  const engine = chaosEngine([{ name: 'other', type: 'kafka', target: 'elsewhere', error_chance: 1 }]);
  const producer = await producerOf(t, kafkaClient(engine));
  const metadata = await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }] });
  t.like(metadata, [{ topicName: topic, partition: 0, errorCode: 0, baseOffset: '0' }]);
  t.deepEqual(await written(t, topic), ['a', 'b']);
  const decisions = await engine.metrics.decisions.get();
  t.is(decisions.values.find((v) => v.labels.protocol === 'kafka' && v.labels.outcome === 'pass')?.value, 2, 'one decision per message');
  t.is(await faults(engine, 'error'), 0);
});

test('send, error: a retriable KafkaInjectedError shaped like kafkajs’s, through kafkajs’s retries; nothing is written', async (t) => {
  const [timeouts, corrupt, unknown] = await Promise.all([
    uniqueTopic('err-default'),
    uniqueTopic('err-coded'),
    uniqueTopic('err-unknown'),
  ]);
  const engine = chaosEngine([
    { name: 'timeouts', type: 'kafka', target: timeouts, error_chance: 1 },
    { name: 'corrupt', type: 'kafka', target: corrupt, error_chance: 1, error_code: 2, error_body: 'injected corruption' },
    { name: 'unknown', type: 'kafka', target: unknown, error_chance: 1, error_code: 4242 },
  ]);
  const producer = await producerOf(t, kafkaClient(engine), NO_RETRIES);
  const exhausted = await t.throwsAsync(producer.send({ topic: timeouts, messages: [{ value: 'a' }] }));
  t.like(exhausted, { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false, retryCount: 0, message: 'The request timed out' });
  const timedOut = exhausted?.cause;
  if (!(timedOut instanceof KafkaInjectedError)) return t.fail('the cause is the injected error');
  t.true(timedOut instanceof HavocError);
  t.like(timedOut, {
    name: 'KafkaInjectedError',
    code: DEFAULT_KAFKA_ERROR_CODE,
    type: 'REQUEST_TIMED_OUT',
    retriable: true,
    topic: timeouts,
  });
  t.is(timedOut.message, 'The request timed out');
  t.is(timedOut.policy, 'timeouts');
  const corrupted = await injected(t, producer.send({ topic: corrupt, messages: [{ value: 'b' }] }));
  t.like(corrupted, { code: 2, type: 'CORRUPT_MESSAGE', retriable: true, message: 'injected corruption' });
  // Not retriable: the injected error itself, at once, as kafkajs passes a non-retriable broker error.
  const strange = await t.throwsAsync(producer.send({ topic: unknown, messages: [{ value: 'c' }] }), { instanceOf: KafkaInjectedError });
  t.like(strange, { code: 4242, type: 'KAFKAJS_UNKNOWN_ERROR_CODE', retriable: false });
  for (const topic of [timeouts, corrupt, unknown]) t.deepEqual(await highWatermarks(topic), [0], `nothing reached ${topic}`);
  t.is(await faults(engine, 'error'), 3);
});

test('send, latency: the send waits, then writes; drop: the message is not written and the promise resolves to the rest’s metadata, [] for none', async (t) => {
  const topic = await uniqueTopic('latency-drop');
  const engine = chaosEngine([
    { name: 'slow', type: 'kafka', target: topic, latency_chance: 1, latency_duration: '40ms' },
    { name: 'lose', type: 'kafka', target: topic, drop_connection: true, match_headers: { fate: 'drop' } },
  ]);
  const producer = await producerOf(t, kafkaClient(engine));
  const order: string[] = [];
  producer.on(producer.events.REQUEST, ({ payload }) => void (payload.apiName === 'Produce' && order.push('produce request')));
  const sending = producer.send({ topic, messages: [{ value: 'kept-1' }] });
  mark(order, 20);
  t.like(await sending, [{ topicName: topic, partition: 0, baseOffset: '0' }]);
  t.deepEqual(order, ['20ms', 'produce request'], 'nothing was sent before the latency ended (a shorter timer set after it fired first)');
  t.is(await faults(engine, 'latency', 'slow'), 1);
  t.deepEqual(await producer.send({ topic, messages: [{ value: 'lost-1', headers: { fate: 'drop' } }] }), []);
  const mixed = await producer.send({
    topic,
    messages: [{ value: 'lost-2', headers: { fate: 'drop' } }, { value: 'kept-2' }, { value: 'lost-3', headers: { fate: 'drop' } }],
  });
  t.like(mixed, [{ topicName: topic, partition: 0, errorCode: 0, baseOffset: '1' }], 'the metadata of the one message written');
  t.deepEqual(await written(t, topic), ['kept-1', 'kept-2']);
  t.is(await faults(engine, 'drop', 'lose'), 3);
});

test('sendBatch: each message decided by its topic; an error fails the whole batch, a drop leaves out only its message', async (t) => {
  const [calm, broken] = await Promise.all([uniqueTopic('batch-calm'), uniqueTopic('batch-broken')]);
  const engine = chaosEngine([
    { name: 'broken', type: 'kafka', target: broken, error_chance: 1, match_headers: { fail: 'yes' } },
    { name: 'lossy', type: 'kafka', target: broken, drop_connection: true, match_headers: { fail: 'no' } },
  ]);
  const producer = await producerOf(t, kafkaClient(engine), NO_RETRIES);
  const failing = producer.sendBatch({
    topicMessages: [
      { topic: calm, messages: [{ value: 'c1' }] },
      { topic: broken, messages: [{ value: 'b1', headers: { fail: 'yes' } }] },
    ],
  });
  t.like(await injected(t, failing), { topic: broken, policy: 'broken' });
  t.deepEqual(await highWatermarks(calm), [0], 'the calm topic got nothing of the failed batch either');
  const metadata = await producer.sendBatch({
    topicMessages: [
      { topic: calm, messages: [{ value: 'c2' }] },
      { topic: broken, messages: [{ value: 'b2', headers: { fail: 'no' } }, { value: 'b3' }] },
    ],
  });
  t.deepEqual(metadata.map((m) => [m.topicName, m.baseOffset]).sort(), [
    [broken, '0'],
    [calm, '0'],
  ]);
  t.deepEqual(await written(t, calm), ['c2']);
  t.deepEqual(await written(t, broken), ['b3']);
  t.is(await faults(engine, 'drop'), 1);
  t.is(await faults(engine, 'error'), 1);
});

test('the producer’s retries: each try decided anew; spent, kafkajs’s KafkaJSNumberOfRetriesExceeded; not retriable, at once', async (t) => {
  const [retried, fatal] = await Promise.all([uniqueTopic('retried'), uniqueTopic('retried-fatal')]);
  const engine = chaosEngine([
    { name: 'fail', type: 'kafka', target: retried, error_chance: 1 },
    { name: 'fatal', type: 'kafka', target: fatal, error_chance: 1, error_code: 4242 },
  ]);
  const producer = await producerOf(t, kafkaClient(engine), { retry: { retries: 2, initialRetryTime: 5, maxRetryTime: 20 } });
  const exhausted = await t.throwsAsync(producer.send({ topic: retried, messages: [{ value: 'v' }] }));
  t.like(exhausted, { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false, retryCount: 2 });
  t.like(exhausted?.cause, { name: 'KafkaInjectedError', type: 'REQUEST_TIMED_OUT', policy: 'fail', topic: retried });
  t.is(await faults(engine, 'error', 'fail'), 3, 'the first try and two retries, each decided');
  await t.throwsAsync(producer.send({ topic: fatal, messages: [{ value: 'v' }] }), { instanceOf: KafkaInjectedError });
  t.is(await faults(engine, 'error', 'fatal'), 1, 'not retried');
  t.deepEqual(await highWatermarks(retried), [0]);
});

test('the producer’s retries: a message an earlier try dropped stays dropped; the others are decided anew', async (t) => {
  const topic = await uniqueTopic('retried-drop');
  const engine = chaosEngine([
    { name: 'lose', type: 'kafka', target: topic, drop_connection: true, match_headers: { fate: 'drop' } },
    { name: 'fail', type: 'kafka', target: topic, error_chance: 1, match_headers: { fate: 'fail' } },
  ]);
  const producer = await producerOf(t, kafkaClient(engine), { retry: { retries: 2, initialRetryTime: 5, maxRetryTime: 20 } });
  const sending = producer.send({
    topic,
    messages: [
      { value: 'lost', headers: { fate: 'drop' } },
      { value: 'kept', headers: { fate: 'fail' } },
    ],
  });
  // The first try was decided as `send` was called; the error lifted, the retry sends what was not dropped.
  engine.update({ ...engine.config(), policies: [engine.policies()[0]!] });
  t.like(await sending, [{ topicName: topic, baseOffset: '0' }]);
  t.deepEqual(await written(t, topic), ['kept']);
  t.is(await faults(engine, 'drop', 'lose'), 1, 'not decided again: one drop, one message missing');
  t.is(await faults(engine, 'error', 'fail'), 1);
});

test('the Kafka client’s retry applies when the producer sets none; a retry that is not faulted sends', async (t) => {
  const topic = await uniqueTopic('client-retry');
  const engine = chaosEngine([{ name: 'fail', type: 'kafka', target: topic, error_chance: 1, match_headers: { fate: 'fail' } }]);
  const kafka = new Kafka({ brokers: [...KAFKA_BROKERS], logLevel: logLevel.NOTHING, retry: { retries: 1, initialRetryTime: 5 } });
  const producer = await producerOf(t, instrumentKafka(kafka, engine));
  await t.throwsAsync(producer.send({ topic, messages: [{ value: 'v', headers: { fate: 'fail' } }] }), {
    name: 'KafkaJSNumberOfRetriesExceeded',
  });
  t.is(await faults(engine, 'error'), 2, 'the client’s one retry');
  // The first try is decided as `send` is called; lifted right after, the retry is decided anew,
  // passes, and the message is written once.
  const sending = producer.send({ topic, messages: [{ value: 'w', headers: { fate: 'fail' } }] });
  engine.update({ ...engine.config(), policies: [] });
  t.like(await sending, [{ topicName: topic, baseOffset: '0' }]);
  t.is(await faults(engine, 'error'), 3);
  t.deepEqual(await written(t, topic), ['w']);
});

test('instrumentKafka: producers and consumers created before it are left alone', async (t) => {
  const topic = await uniqueTopic('before');
  const engine = chaosEngine([{ name: 'fail', type: 'kafka', target: topic, error_chance: 1 }]);
  const kafka = kafkaClient();
  const early = await producerOf(t, kafka);
  instrumentKafka(kafka, engine);
  const late = await producerOf(t, kafka, NO_RETRIES);
  await early.send({ topic, messages: [{ value: 'early' }] });
  await injected(t, late.send({ topic, messages: [{ value: 'late' }] }));
  t.deepEqual(await written(t, topic), ['early']);
});

/** Retries of the transactional producer: about 1.9 s of backoff, for the coordinator to finish the transaction before. */
const TX_RETRIES = 6;

test('transactions: send may be delayed, failed or dropped; commit, abort and sendOffsets are never decided', async (t) => {
  const topic = await uniqueTopic('tx');
  const engine = chaosEngine([
    { name: 'slow', type: 'kafka', target: topic, latency_chance: 1, latency_duration: '5ms' },
    { name: 'lose', type: 'kafka', target: topic, drop_connection: true, match_headers: { fate: 'drop' } },
    { name: 'fail', type: 'kafka', target: topic, error_chance: 1, match_headers: { fate: 'fail' } },
  ]);
  const producer = await producerOf(t, kafkaClient(engine), {
    transactionalId: `spec-tx-${process.pid}`,
    idempotent: true,
    maxInFlightRequests: 1,
    // kafkajs refuses an idempotent producer without retries, and they are needed: right after a
    // commit or abort the coordinator may still be writing its markers, and the next
    // transaction's first send is refused with CONCURRENT_TRANSACTIONS until it is done (kafkajs
    // retries that, with these options). The failing send is tried 1 + TX_RETRIES times.
    retry: { retries: TX_RETRIES, initialRetryTime: 30 },
  });
  const committedTx = await producer.transaction();
  await committedTx.send({ topic, messages: [{ value: 't1' }] });
  t.deepEqual(await committedTx.send({ topic, messages: [{ value: 't2', headers: { fate: 'drop' } }] }), []);
  await committedTx.sendOffsets({
    consumerGroupId: `spec-tx-group-${process.pid}`,
    topics: [{ topic, partitions: [{ partition: 0, offset: '0' }] }],
  });
  await committedTx.commit();
  const abortedTx = await producer.transaction();
  await abortedTx.send({ topic, messages: [{ value: 't3' }] });
  await injected(t, abortedTx.send({ topic, messages: [{ value: 't4', headers: { fate: 'fail' } }] }));
  await abortedTx.abort();
  // A transaction whose every send was dropped commits nothing, and that is fine.
  const emptyTx = await producer.transaction();
  await emptyTx.send({ topic, messages: [{ value: 't5', headers: { fate: 'drop' } }] });
  await emptyTx.commit();
  t.deepEqual(await written(t, topic), ['t1'], 'only the committed transaction’s written message');
  const decisions = await engine.metrics.decisions.get();
  const total = decisions.values.filter((v) => v.labels.protocol === 'kafka').reduce((sum, v) => sum + v.value, 0);
  t.is(total, 4 + 1 + TX_RETRIES, 'one decision per message and try, none for sendOffsets, commit or abort');
  t.is(await faults(engine, 'drop'), 2);
  t.is(await faults(engine, 'error'), 1 + TX_RETRIES, 'the failing send, tried each time');
});

test('protected by default: _schemas, __consumer_offsets and __transaction_state (prefixes); ignored_commands adds more', async (t) => {
  const schemas = `_schemas-spec-${randomUUID().slice(0, 8)}`;
  const ignored = await uniqueTopic('ignored');
  const faulted = await uniqueTopic('faulted');
  await createTopic(schemas);
  const everything = [{ name: 'everything', type: 'kafka', target: 'all', error_chance: 1 }];
  const engine = chaosEngine(everything, { ignored_commands: { kafka: ['spec-ignored-'] } });
  const producer = await producerOf(t, kafkaClient(engine), NO_RETRIES);
  await producer.send({ topic: schemas, messages: [{ value: 's' }] });
  await producer.send({ topic: ignored, messages: [{ value: 'i' }] });
  await injected(t, producer.send({ topic: faulted, messages: [{ value: 'f' }] }));
  t.is(engine.decide('kafka', '__consumer_offsets'), null);
  t.is(engine.decide('kafka', '__transaction_state'), null);
  t.is(await faults(engine, 'error'), 1);
  // Without the default protection the same policy faults _schemas; the application's own list still holds.
  const open = chaosEngine(everything, { enable_default_ignored: false, ignored_commands: { kafka: ['spec-ignored-'] } });
  const bare = await producerOf(t, kafkaClient(open), NO_RETRIES);
  await injected(t, bare.send({ topic: schemas, messages: [{ value: 's' }] }));
  await bare.send({ topic: ignored, messages: [{ value: 'i' }] });
  t.deepEqual(await written(t, schemas), ['s']);
});

test('targets and match_headers: an exact topic, a `prefix*`, and headers given as strings or Buffers, any case of name', async (t) => {
  const [orders, ordersEu, payments] = await Promise.all([uniqueTopic('orders'), uniqueTopic('orders'), uniqueTopic('payments')]);
  const engine = chaosEngine([]);
  const producer = await producerOf(t, kafkaClient(engine), NO_RETRIES);
  const fails = async (topic: string, headers?: Record<string, string | Buffer>): Promise<boolean> =>
    producer.send({ topic, messages: [{ value: 'v', ...(headers && { headers }) }] }).then(
      () => false,
      (error: Error) => error.cause instanceof KafkaInjectedError,
    );
  const only = (fields: Partial<Policy>): void => engine.update(config(policy({ name: 'only', type: 'kafka', errorChance: 1, ...fields })));
  only({ target: orders });
  t.deepEqual([await fails(orders), await fails(ordersEu), await fails(payments)], [true, false, false]);
  only({ target: 'spec-orders-*' });
  t.deepEqual([await fails(orders), await fails(ordersEu), await fails(payments)], [true, true, false]);
  only({ target: 'all', matchHeaders: { tenant: 'blue' } });
  t.true(await fails(payments, { tenant: 'blue' }));
  t.true(await fails(payments, { Tenant: Buffer.from('blue') }));
  t.false(await fails(payments, { tenant: 'green' }));
  t.false(await fails(payments));
  // On the way in, kafkajs gives the headers as Buffers.
  only({ target: payments, dropConnection: true, matchHeaders: { tenant: 'blue' } });
  const seen: string[] = [];
  await produceBare(t, payments, [
    { value: 'blue-in', headers: { tenant: 'blue' } },
    { value: 'green-in', headers: { tenant: 'green' } },
  ]);
  const high = (await highWatermarks(payments))[0]!;
  const [, group] = await consumerOf(t, kafkaClient(engine), payments, {
    eachMessage: async ({ message }) => void seen.push(text(message)),
  });
  await waitFor(async () => (await committed(group, payments))[0] === high, 'the consumer to reach the end');
  t.false(seen.includes('blue-in'));
  t.true(seen.includes('green-in'));
});

test('metrics and span events: each fault counted and added to the active span', async (t) => {
  const topic = await uniqueTopic('span');
  const engine = chaosEngine([
    { name: 'slow-fail', type: 'kafka', target: topic, latency_chance: 1, latency_duration: '5ms', error_chance: 1, error_code: 6 },
  ]);
  const producer = await producerOf(t, kafkaClient(engine), NO_RETRIES);
  exporter.reset();
  await trace.getTracer('app').startActiveSpan('publish', async (span) => {
    const error = await injected(t, producer.send({ topic, messages: [{ value: 'v' }] }));
    t.like(error, { type: 'NOT_LEADER_FOR_PARTITION', retriable: true });
    span.end();
  });
  t.deepEqual(
    exporter.getFinishedSpans()[0]?.events.map((e) => [e.name, e.attributes]),
    [
      ['havoc.kafka.latency', { 'havoc.policy': 'slow-fail', 'havoc.target': topic, 'havoc.latency_ms': 5 }],
      ['havoc.kafka.error', { 'havoc.policy': 'slow-fail', 'havoc.target': topic, 'havoc.error_code': 6 }],
    ],
  );
  t.is(await faults(engine, 'latency', 'slow-fail'), 1);
  t.is(await faults(engine, 'error', 'slow-fail'), 1);
});

test('instrumentKafka: refuses what is not a Kafka instance; instrumenting twice changes nothing', async (t) => {
  const topic = await uniqueTopic('twice');
  const engine = chaosEngine([{ name: 'once', type: 'kafka', target: topic, latency_chance: 1, latency_duration: 1 }]);
  t.throws(() => instrumentKafka({} as Kafka, engine), { instanceOf: HavocError, message: /expects a Kafka instance/ });
  const kafka = kafkaClient();
  t.is(instrumentKafka(instrumentKafka(kafka, engine), engine), kafka);
  const producer = await producerOf(t, kafka);
  await producer.send({ topic, messages: [{ value: 'v' }] });
  t.is(await faults(engine, 'latency', 'once'), 1, 'decided once, not once per instrumentation');
});

test('invariant: 2,000 messages under 30% send errors, retried by the producer, arrive exactly once each, minus the counted drops', async (t) => {
  const topic = await uniqueTopic('invariant', 3);
  const engine = chaosEngine([
    { name: 'flaky', type: 'kafka', target: topic, error_chance: 0.3 },
    { name: 'lossy', type: 'kafka', target: topic, error_chance: 0.02, drop_connection: true },
  ]);
  // kafkajs's own retries only, fast: 21 tries in a row at 30% fail about once in 10^11.
  const producer = await producerOf(t, kafkaClient(engine), { retry: { retries: 20, initialRetryTime: 5, maxRetryTime: 50 } });
  const ids = Array.from({ length: 2000 }, (_, i) => `m-${i}`);
  const dropped = new Set<string>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const metadata = await producer.send({ topic, messages: [{ key: id, value: id }] });
        if (metadata.length === 0) dropped.add(id);
      }
    }),
  );
  const received = await written(t, topic);
  t.is(received.length, new Set(received).size, 'no duplicates');
  t.deepEqual([...received].sort(), ids.filter((id) => !dropped.has(id)).sort());
  t.is(dropped.size, await faults(engine, 'drop'), 'every missing message is a counted drop');
  const injected = await faults(engine, 'error');
  t.true(injected > 400 && dropped.size > 0, `errors ${injected}, drops ${dropped.size}`);
});
