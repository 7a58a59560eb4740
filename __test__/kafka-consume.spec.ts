// The kafkajs interceptor on the consuming side (eachMessage, eachBatch) against a real Kafka
// broker (KRaft, one node, see .ci/services.sh). Producing, transactions, targets and metrics
// are in kafka.spec.ts.
import { randomUUID } from 'node:crypto';
import ava from 'ava';
import { chaosEngine, faults } from './fixtures/chaos.js';
import { closeWitness, committed, consumerOf, kafkaClient, produceBare, text, uniqueTopic, waitFor } from './fixtures/kafka.js';
import { serverTest } from './fixtures/servers.js';

const test = serverTest('kafka');
// From ava itself: the skipping stand-in `serverTest` returns has no hooks.
ava.after.always(closeWitness);

test('eachMessage: latency runs the handler after it; a drop skips the handler and commits its offset', async (t) => {
  const topic = await uniqueTopic('each-message');
  await produceBare(t, topic, [
    { value: 'm0' },
    { value: 'm1', headers: { fate: 'drop' } },
    { value: 'm2' },
    { value: 'm3', headers: { fate: 'drop' } },
  ]);
  const engine = chaosEngine([
    { name: 'slow', type: 'kafka', target: topic, latency_chance: 1, latency_duration: '5ms' },
    { name: 'lose', type: 'kafka', target: topic, drop_connection: true, match_headers: { fate: 'drop' } },
  ]);
  const seen: string[] = [];
  const [, group] = await consumerOf(t, kafkaClient(engine), topic, { eachMessage: async ({ message }) => void seen.push(text(message)) });
  await waitFor(async () => (await committed(group, topic))[0] === 4, 'every offset to be committed');
  t.deepEqual(seen, ['m0', 'm2']);
  t.is(await faults(engine, 'drop', 'lose'), 2);
  t.is(await faults(engine, 'latency'), 4, 'a dropped message waited too (its latency counted under the dropping policy)');
});

test('eachMessage, error: the handler is not called, kafkajs restarts the consumer and redelivers; each delivery decided anew', async (t) => {
  const topic = await uniqueTopic('each-message-error');
  await produceBare(t, topic, [{ value: 'm0' }, { value: 'm1', headers: { fate: 'fail' } }, { value: 'm2' }]);
  const engine = chaosEngine([{ name: 'fail', type: 'kafka', target: topic, error_chance: 1, match_headers: { fate: 'fail' } }]);
  const seen: string[] = [];
  const kafka = kafkaClient(engine);
  const [consumer, group] = await consumerOf(t, kafka, topic, { eachMessage: async ({ message }) => void seen.push(text(message)) });
  const crashes: unknown[] = [];
  consumer.on(consumer.events.CRASH, (event) => crashes.push(event.payload.error));
  // The first delivery of m1 fails; then the policy is lifted and a later one gets through.
  await waitFor(async () => (await faults(engine, 'error')) >= 1, 'the injected error');
  engine.update({ ...engine.config(), policies: [] });
  await waitFor(async () => (await committed(group, topic))[0] === 3, 'every offset to be committed');
  t.deepEqual(seen, ['m0', 'm1', 'm2'], 'm0 was not redelivered: its offset was committed before the error');
  t.true(crashes.every((error) => error instanceof Error));
});

test('eachMessage, an error kafkajs counts as not retriable: the consumer crashes and does not restart, as kafkajs does', async (t) => {
  const topic = await uniqueTopic('each-message-fatal');
  await produceBare(t, topic, [{ value: 'f0' }]);
  const engine = chaosEngine([{ name: 'fatal', type: 'kafka', target: topic, error_chance: 1, error_code: 4242 }]);
  const seen: string[] = [];
  const kafka = kafkaClient(engine);
  let crash: { error: Error; restart: boolean } | undefined;
  const consumer = kafka.consumer({ groupId: `spec-group-${randomUUID().slice(0, 8)}`, retry: { initialRetryTime: 20, retries: 2 } });
  consumer.on(consumer.events.CRASH, (event) => (crash = event.payload));
  await consumer.connect();
  t.teardown(() => consumer.disconnect());
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void seen.push(text(message)) });
  await waitFor(() => crash !== undefined, 'the consumer to crash');
  t.false(crash!.restart);
  t.deepEqual(seen, []);
  t.is(await faults(engine, 'error'), 1, 'not retried either');
});

test('eachMessage: messages fail at random and the consumer still handles each one, exactly once, in order', async (t) => {
  const topic = await uniqueTopic('each-message-random');
  const values = Array.from({ length: 150 }, (_, i) => `r${i}`);
  await produceBare(
    t,
    topic,
    values.map((value) => ({ value })),
  );
  const engine = chaosEngine([{ name: 'flaky', type: 'kafka', target: topic, error_chance: 0.1 }]);
  const seen: string[] = [];
  const [, group] = await consumerOf(t, kafkaClient(engine), topic, { eachMessage: async ({ message }) => void seen.push(text(message)) });
  await waitFor(async () => (await committed(group, topic))[0] === values.length, 'every offset to be committed');
  t.deepEqual(seen, values, 'a failed message is redelivered until handled; what was handled before it is not');
  t.true((await faults(engine, 'error')) > 0);
});

test('eachBatch, latency: one wait before the handler, the longest of the batch; every message counted', async (t) => {
  const topic = await uniqueTopic('each-batch-latency');
  await produceBare(t, topic, [{ value: 'l0' }, { value: 'l1', headers: { slow: 'yes' } }, { value: 'l2' }]);
  const engine = chaosEngine([
    { name: 'slow', type: 'kafka', target: topic, latency_chance: 1, latency_duration: '5ms' },
    { name: 'slower', type: 'kafka', target: topic, latency_chance: 1, latency_duration: '30ms', match_headers: { slow: 'yes' } },
  ]);
  const batches: string[][] = [];
  const [, group] = await consumerOf(t, kafkaClient(engine), topic, {
    eachBatch: async ({ batch }) => void batches.push(batch.messages.map(text)),
  });
  await waitFor(async () => (await committed(group, topic))[0] === 3, 'every offset to be committed');
  t.deepEqual(batches.flat(), ['l0', 'l1', 'l2']);
  t.is(await faults(engine, 'latency'), 3);
});

test('eachBatch: the handler gets the batch without drops and up to the first error, which is thrown after it; offsets follow', async (t) => {
  const topic = await uniqueTopic('each-batch');
  await produceBare(t, topic, [
    { value: 'b0' },
    { value: 'b1', headers: { fate: 'drop' } },
    { value: 'b2' },
    { value: 'b3', headers: { fate: 'fail' } },
    { value: 'b4' },
    { value: 'b5', headers: { fate: 'drop' } },
  ]);
  const engine = chaosEngine([
    { name: 'lose', type: 'kafka', target: topic, drop_connection: true, match_headers: { fate: 'drop' } },
    { name: 'fail', type: 'kafka', target: topic, error_chance: 1, match_headers: { fate: 'fail' } },
  ]);
  const batches: string[][] = [];
  const [, group] = await consumerOf(t, kafkaClient(engine), topic, {
    eachBatch: async ({ batch }) => {
      batches.push(batch.messages.map(text));
      // kafkajs holds the policy's error back until the handler has returned: lift it then.
      if (batches.length === 1) engine.update({ ...engine.config(), policies: [engine.policies()[0]!] });
    },
  });
  await waitFor(async () => (await committed(group, topic))[0] === 6, 'every offset to be committed');
  t.deepEqual(batches[0], ['b0', 'b2'], 'the first batch stops before the errored message, without the drop');
  t.deepEqual(batches.at(-1), ['b3', 'b4'], 'redelivered from the errored message on; the last drop left out and resolved');
  t.deepEqual(batches.flat(), ['b0', 'b2', 'b3', 'b4'], 'the prefix before the error was resolved: not redelivered');
  t.is(await faults(engine, 'drop', 'lose'), 2);
  t.is(await faults(engine, 'error', 'fail'), 1);
});

test('eachBatch without auto-resolve: drops after what the handler resolved are resolved; all dropped skips the handler', async (t) => {
  const topic = await uniqueTopic('each-batch-manual');
  await produceBare(t, topic, [{ value: 'x0' }, { value: 'x1', headers: { fate: 'drop' } }]);
  const engine = chaosEngine([{ name: 'lose', type: 'kafka', target: topic, drop_connection: true, match_headers: { fate: 'drop' } }]);
  const batches: string[][] = [];
  const [, group] = await consumerOf(t, kafkaClient(engine), topic, {
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset }) => {
      batches.push(batch.messages.map(text));
      for (const message of batch.messages) resolveOffset(message.offset);
    },
  });
  await waitFor(async () => (await committed(group, topic))[0] === 2, 'both offsets to be committed');
  await produceBare(t, topic, [{ value: 'x2', headers: { fate: 'drop' } }]);
  await waitFor(async () => (await committed(group, topic))[0] === 3, 'the all-dropped batch to be committed');
  t.deepEqual(batches, [['x0']]);
  t.is(await faults(engine, 'drop'), 2);
});
