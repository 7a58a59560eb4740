import type { ExecutionContext } from 'ava';
import * as amqp from 'amqplib';
import * as amqpCallback from 'amqplib/callback_api';
import { AmqpPublishError, DEFAULT_AMQP_ERROR, instrumentAmqp, type Engine } from 'havoc';
import { chaosEngine, faults } from './fixtures/chaos.js';
import { URLS, serverTest } from './fixtures/servers.js';

const test = serverTest('amqp');
let queues = 0;

/** A queue name no other test or run uses. */
function uniqueName(label: string): string {
  queues += 1;
  return `havoc-spec-${process.pid}-${queues}-${label}`;
}

interface Rig {
  /** Instrumented. */
  channel: amqp.Channel;
  /** Uninstrumented, on the same connection: sees what really reached the broker. */
  witness: amqp.Channel;
  connection: amqp.ChannelModel;
  /** An exclusive queue of this connection (gone when it closes). */
  queue(label: string): Promise<string>;
}

async function rig(t: ExecutionContext, engine: Engine, confirm = false): Promise<Rig> {
  const connection = await amqp.connect(URLS.amqp);
  t.teardown(() => connection.close().catch(() => undefined));
  const channel = instrumentAmqp(confirm ? await connection.createConfirmChannel() : await connection.createChannel(), engine);
  const witness = await connection.createChannel();
  const queue = async (label: string): Promise<string> => (await witness.assertQueue(uniqueName(label), { exclusive: true })).queue;
  return { channel, witness, connection, queue };
}

/** Waits until `condition` holds, at most 5 s. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function ready(witness: amqp.Channel, queue: string): Promise<number> {
  return (await witness.checkQueue(queue)).messageCount;
}

function withoutErrors(engine: Engine): void {
  engine.update({ ...engine.config(), policies: engine.policies().map((p) => ({ ...p, errorChance: 0 })) });
}

test('no matching policy: messages are published and consumed untouched', async (t) => {
  const engine = chaosEngine([{ name: 'other', type: 'rabbitmq', target: 'somewhere-else', error_chance: 1, drop_connection: true }]);
  const { channel, queue } = await rig(t, engine);
  const q = await queue('pass');
  const seen: string[] = [];
  await channel.consume(q, (m) => {
    if (!m) return;
    seen.push(m.content.toString());
    channel.ack(m);
  });
  for (const body of ['a', 'b', 'c']) t.true(channel.sendToQueue(q, Buffer.from(body)));
  await until(() => seen.length === 3, 'three deliveries');
  t.deepEqual(seen, ['a', 'b', 'c']);
  t.is((await faults(engine, 'error')) + (await faults(engine, 'drop')), 0);
});

test('consume error: nacked with requeue, redelivered, handled once the chaos is removed', async (t) => {
  const engine = chaosEngine([{ name: 'flaky', type: 'rabbitmq', target: 'havoc-spec-*', error_chance: 1 }]);
  const { channel, witness, queue } = await rig(t, engine);
  const q = await queue('consume-error');
  const handled: Array<{ body: string; redelivered: boolean }> = [];
  await channel.consume(q, (m) => {
    if (!m) return;
    handled.push({ body: m.content.toString(), redelivered: m.fields.redelivered });
    channel.ack(m);
  });
  witness.sendToQueue(q, Buffer.from('job-1'));
  await until(async () => (await faults(engine, 'error', 'flaky')) >= 2, 'two injected errors');
  t.deepEqual(handled, [], 'the handler never saw the failing message');
  withoutErrors(engine);
  await until(() => handled.length === 1, 'the redelivered message to be handled');
  t.deepEqual(handled, [{ body: 'job-1', redelivered: true }]);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(handled.length, 1, 'handled exactly once');
  t.is(await ready(witness, q), 0, 'acked: nothing left in the queue');
});

test('consume drop: nacked without requeue, gone from the queue, the handler never ran', async (t) => {
  const engine = chaosEngine([{ name: 'lose', type: 'rabbitmq', target: 'havoc-spec-*', drop_connection: true }]);
  const { channel, witness, queue } = await rig(t, engine);
  const q = await queue('consume-drop');
  let handled = 0;
  await channel.consume(q, () => (handled += 1));
  for (const body of ['x', 'y']) witness.sendToQueue(q, Buffer.from(body));
  await until(async () => (await faults(engine, 'drop', 'lose')) === 2, 'two drops');
  // Closing the consumer's channel would requeue anything still unacknowledged.
  await channel.close();
  t.is(await ready(witness, q), 0, 'both messages are gone, not requeued');
  t.is(handled, 0);
});

test('consume latency: the handler runs after the delay, messages keep their order', async (t) => {
  const engine = chaosEngine([{ name: 'slow', type: 'rabbitmq', target: 'havoc-spec-*', latency_chance: 1, latency_duration: '40ms' }]);
  const { channel, witness, queue } = await rig(t, engine);
  const q = await queue('consume-latency');
  const seen: Array<{ body: string; at: number }> = [];
  await channel.consume(q, (m) => {
    if (!m) return;
    seen.push({ body: m.content.toString(), at: performance.now() });
    channel.ack(m);
  });
  const start = performance.now();
  for (const body of ['1', '2', '3', '4']) witness.sendToQueue(q, Buffer.from(body));
  await until(() => seen.length === 4, 'four deliveries');
  t.deepEqual(
    seen.map((s) => s.body),
    ['1', '2', '3', '4'],
  );
  t.true(seen[0]!.at - start >= 39, 'the first handler ran after at least the delay');
  t.is(await faults(engine, 'latency', 'slow'), 4);
});

test('consume with noAck: an error or drop only skips the handler (nothing to nack)', async (t) => {
  const engine = chaosEngine([
    { name: 'flaky', type: 'rabbitmq', target: 'havoc-spec-*', error_chance: 1, match_headers: { 'x-fate': 'fail' } },
  ]);
  const { channel, witness, queue } = await rig(t, engine);
  const q = await queue('noack');
  const seen: string[] = [];
  await channel.consume(q, (m) => m && seen.push(m.content.toString()), { noAck: true });
  witness.sendToQueue(q, Buffer.from('lost'), { headers: { 'x-fate': 'fail' } });
  witness.sendToQueue(q, Buffer.from('kept'));
  await until(() => seen.length === 1, 'the second message');
  t.deepEqual(seen, ['kept']);
  t.is(await ready(witness, q), 0);
  t.is(await faults(engine, 'error'), 1);
});

test('match_headers on message headers: only matching messages are faulted (names case-insensitive, values as text)', async (t) => {
  const engine = chaosEngine([
    { name: 'canary', type: 'rabbitmq', target: 'all', drop_connection: true, match_headers: { 'x-canary': 'yes' } },
    { name: 'retry', type: 'rabbitmq', target: 'all', drop_connection: true, match_headers: { 'x-retry': '3' } },
  ]);
  const { channel, witness, queue } = await rig(t, engine);
  const q = await queue('headers');
  const seen: string[] = [];
  await channel.consume(q, (m) => {
    if (!m) return;
    seen.push(m.content.toString());
    channel.ack(m);
  });
  const send = (body: string, headers?: Record<string, unknown>): boolean => witness.sendToQueue(q, Buffer.from(body), { headers });
  send('canary', { 'x-canary': 'yes' });
  send('canary-mixed-case', { 'X-Canary': 'yes' });
  send('not-canary', { 'x-canary': 'no' });
  send('retry-number', { 'x-retry': 3 });
  send('plain');
  await until(() => seen.length === 2, 'the unmatched messages');
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.deepEqual(seen, ['not-canary', 'plain']);
  t.is(await faults(engine, 'drop', 'canary'), 2);
  t.is(await faults(engine, 'drop', 'retry'), 1);
});

test('publish error on a plain channel: sendToQueue and publish throw AmqpPublishError, nothing is sent', async (t) => {
  const engine = chaosEngine([
    { name: 'refuse', type: 'rabbitmq', target: 'havoc-spec-*', error_chance: 1, error_code: 506, error_body: 'resource locked' },
  ]);
  const { channel, witness, queue } = await rig(t, engine);
  const q = await queue('publish-error');
  const error = t.throws(() => channel.sendToQueue(q, Buffer.from('a')), { instanceOf: AmqpPublishError });
  t.is(error?.message, 'resource locked');
  t.is(error?.code, 506);
  t.is(error?.routingKey, q);
  t.throws(() => channel.publish('', q, Buffer.from('b')), { instanceOf: AmqpPublishError });
  await witness.checkQueue(q); // a round trip on the connection after both publishes
  t.is(await ready(witness, q), 0);
  t.is(await faults(engine, 'error', 'refuse'), 2);
});

test('publish error on a confirm channel: the callback and waitForConfirms get the error, nothing is sent', async (t) => {
  const engine = chaosEngine([{ name: 'nack', type: 'rabbitmq', target: 'havoc-spec-*', error_chance: 1 }]);
  const { channel, witness, queue } = await rig(t, engine, true);
  const confirm = channel as amqp.ConfirmChannel;
  const q = await queue('confirm-error');
  const confirmed = new Promise<unknown>((resolve) => confirm.sendToQueue(q, Buffer.from('a'), {}, (error) => resolve(error)));
  const callbackError = await confirmed;
  t.true(callbackError instanceof AmqpPublishError);
  t.is((callbackError as Error).message, DEFAULT_AMQP_ERROR);
  await t.throwsAsync(confirm.waitForConfirms(), { instanceOf: AmqpPublishError });
  t.is(await ready(witness, q), 0);
  // Once the chaos is gone, the same channel publishes and confirms.
  withoutErrors(engine);
  confirm.sendToQueue(q, Buffer.from('b'));
  await t.notThrowsAsync(confirm.waitForConfirms());
  t.is(await ready(witness, q), 1);
});

test('publish latency on a topic exchange: routing-key target, later publishes wait behind, waitForConfirms covers the delayed ones', async (t) => {
  const engine = chaosEngine([
    { name: 'slow-orders', type: 'rabbitmq', target: 'orders.created', latency_chance: 1, latency_duration: '40ms' },
  ]);
  const { channel, witness, queue } = await rig(t, engine, true);
  const confirm = channel as amqp.ConfirmChannel;
  const exchange = uniqueName('topic');
  await witness.assertExchange(exchange, 'topic', { autoDelete: true });
  const q = await queue('orders');
  await witness.bindQueue(q, exchange, 'orders.#');
  const seen: string[] = [];
  await witness.consume(q, (m) => m && seen.push(m.fields.routingKey), { noAck: true });
  const start = performance.now();
  confirm.publish(exchange, 'orders.created', Buffer.from('1'));
  confirm.publish(exchange, 'orders.shipped', Buffer.from('2'));
  await confirm.waitForConfirms();
  t.true(performance.now() - start >= 39, 'confirmed only after the delayed publish was sent');
  await until(() => seen.length === 2, 'both messages');
  t.deepEqual(seen, ['orders.created', 'orders.shipped'], 'the undelayed publish did not overtake');
  t.is(await faults(engine, 'latency', 'slow-orders'), 1, 'only the matching routing key was delayed');
});

test('publish error by routing key on a topic exchange: only the matching key fails', async (t) => {
  const engine = chaosEngine([{ name: 'no-created', type: 'rabbitmq', target: 'orders.created', error_chance: 1 }]);
  const { channel, witness, queue } = await rig(t, engine);
  const exchange = uniqueName('topic');
  await witness.assertExchange(exchange, 'topic', { autoDelete: true });
  const q = await queue('orders');
  await witness.bindQueue(q, exchange, 'orders.#');
  t.throws(() => channel.publish(exchange, 'orders.created', Buffer.from('1')), { instanceOf: AmqpPublishError });
  t.true(channel.publish(exchange, 'orders.shipped', Buffer.from('2')));
  await until(async () => (await ready(witness, q)) === 1, 'the unmatched message');
  const got = await witness.get(q, { noAck: true });
  t.is(got && got.fields.routingKey, 'orders.shipped');
});

test('publish drop: the message is silently lost; a confirm channel still confirms it', async (t) => {
  const engine = chaosEngine([{ name: 'lose', type: 'rabbitmq', target: 'havoc-spec-*', drop_connection: true }]);
  const { channel, witness, queue } = await rig(t, engine, true);
  const confirm = channel as amqp.ConfirmChannel;
  const q = await queue('publish-drop');
  const outcome = await new Promise<unknown>((resolve) => confirm.sendToQueue(q, Buffer.from('a'), {}, (error) => resolve(error)));
  t.is(outcome, null, 'acknowledged, as the broker acks an unroutable message');
  await confirm.waitForConfirms();
  t.is(await ready(witness, q), 0);
  t.is(await faults(engine, 'drop', 'lose'), 1);
});

test('protections: amq.* and reply_* queues are never faulted', async (t) => {
  const engine = chaosEngine([{ name: 'everything', type: 'rabbitmq', target: 'all', error_chance: 1 }]);
  const { channel, witness } = await rig(t, engine);
  const generated = (await witness.assertQueue('', { exclusive: true })).queue;
  t.true(generated.startsWith('amq.gen-'));
  const reply = (await witness.assertQueue(`reply_${uniqueName('protected')}`, { exclusive: true })).queue;
  const seen: string[] = [];
  for (const q of [generated, reply]) {
    await channel.consume(q, (m) => {
      if (!m) return;
      seen.push(m.content.toString());
      channel.ack(m);
    });
    t.true(channel.sendToQueue(q, Buffer.from(q)), `publishing to ${q} is not faulted`);
  }
  await until(() => seen.length === 2, 'both protected deliveries');
  t.deepEqual(seen.sort(), [generated, reply].sort());
  // The same policy does fault an ordinary queue, so the protection is what let those through.
  t.throws(() => channel.sendToQueue(uniqueName('ordinary'), Buffer.from('x')), { instanceOf: AmqpPublishError });
});

test('callback API: consume error redelivers, publish error throws', async (t) => {
  const engine = chaosEngine([{ name: 'flaky', type: 'rabbitmq', target: 'havoc-spec-*', error_chance: 1 }]);
  const connection = await new Promise<amqpCallback.Connection>((resolve, reject) =>
    amqpCallback.connect(URLS.amqp, (error: Error | null, c: amqpCallback.Connection) => (error ? reject(error) : resolve(c))),
  );
  t.teardown(() => connection.close(() => undefined));
  const open = (): Promise<amqpCallback.Channel> =>
    new Promise((resolve, reject) =>
      connection.createChannel((error: Error | null, c: amqpCallback.Channel) => (error ? reject(error) : resolve(c))),
    );
  const channel = instrumentAmqp(await open(), engine);
  const witness = await open();
  const q = uniqueName('callback');
  await new Promise<void>((resolve, reject) => witness.assertQueue(q, { exclusive: true }, (error) => (error ? reject(error) : resolve())));
  t.throws(() => channel.sendToQueue(q, Buffer.from('refused')), { instanceOf: AmqpPublishError });
  const handled: boolean[] = [];
  channel.consume(q, (m) => {
    if (!m) return;
    handled.push(m.fields.redelivered);
    channel.ack(m);
  });
  witness.sendToQueue(q, Buffer.from('job'));
  await until(async () => (await faults(engine, 'error', 'flaky')) >= 3, 'errors on consume');
  t.deepEqual(handled, []);
  withoutErrors(engine);
  await until(() => handled.length === 1, 'the redelivered message');
  t.deepEqual(handled, [true]);
});
