// The kafkajs interceptor's consumer latencies at the unit level: the handlers havoc wraps are
// called directly, on fetched messages made here, by a consumer that never connects (no broker).
import test from 'ava';
import type { ConsumerRunConfig, EachBatchPayload, EachMessagePayload, KafkaMessage } from 'kafkajs';
import { instrumentKafka, type Engine } from 'havoc';
import { chaosEngine, faults } from './fixtures/chaos.js';
import { kafkaClient, mark } from './fixtures/kafka.js';

/** The handlers havoc hands kafkajs's `run`, from a consumer that never connects (its `run` keeps them). */
function wrappedHandlers(engine: Engine, run: ConsumerRunConfig): ConsumerRunConfig {
  const kafka = kafkaClient();
  const consumer = kafka.consumer;
  let handed: ConsumerRunConfig | undefined;
  kafka.consumer = (config) =>
    Object.assign(consumer.call(kafka, config), { run: async (given?: ConsumerRunConfig) => void (handed = given) });
  void instrumentKafka(kafka, engine).consumer({ groupId: 'never-joins' }).run(run);
  if (handed === undefined) throw new Error('run was not handed the handlers');
  return handed;
}

/** A fetched message at `offset` with `headers`, as kafkajs gives a handler. */
const fetched = (offset: number, headers: Record<string, string>): KafkaMessage => ({
  key: null,
  value: Buffer.from(`v${offset}`),
  timestamp: '0',
  attributes: 0,
  offset: String(offset),
  headers: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Buffer.from(value)])),
});

test('eachMessage, latency: the handler is called only once the latency has been served', async (t) => {
  const engine = chaosEngine([{ name: 'slow', type: 'kafka', target: 'unit', latency_chance: 1, latency_duration: '40ms' }]);
  const order: string[] = [];
  const { eachMessage } = wrappedHandlers(engine, { eachMessage: async () => void order.push('handler') });
  const handling = eachMessage!({ topic: 'unit', partition: 0, message: fetched(0, {}) } as unknown as EachMessagePayload);
  mark(order, 20);
  mark(order, 60);
  await handling;
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.deepEqual(order, ['20ms', 'handler', '60ms']);
});

test('eachBatch, latency: one wait, the longest of the batch’s latencies, not their sum', async (t) => {
  const engine = chaosEngine(
    ['10ms', '40ms', '25ms'].map((latency) => ({
      name: `slow-${latency}`,
      type: 'kafka',
      target: 'unit',
      latency_chance: 1,
      latency_duration: latency,
      match_headers: { speed: latency },
    })),
  );
  const order: string[] = [];
  const { eachBatch } = wrappedHandlers(engine, { eachBatch: async ({ batch }) => void order.push(`handler of ${batch.messages.length}`) });
  const messages = ['10ms', '40ms', '25ms'].map((speed, offset) => fetched(offset, { speed }));
  const handling = eachBatch!({
    batch: { topic: 'unit', partition: 0, highWatermark: '3', messages },
    resolveOffset: () => undefined,
  } as unknown as EachBatchPayload);
  // After 30 ms: waited more than the first and last (10, 25), so the longest (40); before 60, under the sum (75).
  mark(order, 30);
  mark(order, 60);
  await handling;
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.deepEqual(order, ['30ms', 'handler of 3', '60ms']);
  t.is(await faults(engine, 'latency'), 3);
});
