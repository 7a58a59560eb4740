// kafkajs 2.x: `instrumentKafka` wraps the producers and consumers a `Kafka` instance creates
// from then on. Every message is decided once, by its topic and its headers: on the way out in
// `send`/`sendBatch` (here, transactions included), on the way in before `eachMessage` or
// `eachBatch` (kafka-consume.ts).
//
// A send is one produce request, acted out as a unit before kafkajs sees it: it waits the
// longest latency of its messages; then, if any message was decided an error, it rejects with a
// KafkaInjectedError and nothing of it is written; otherwise the dropped messages are left out
// and the rest is sent. Injected errors reach the application without kafkajs's own `retry`
// (which retries inside `send`): the application's retry loop is what retries, and each try is
// decided anew. In a transaction only its `send`/`sendBatch` are decided; `commit`, `abort` and
// `sendOffsets` never are.
import type { Kafka, Producer, ProducerBatch, ProducerRecord, RecordMetadata, TopicMessages, Transaction } from 'kafkajs';
import type { Decision, Engine } from '../engine.js';
import { HavocError } from '../errors.js';
import { optionalPeer } from '../peer.js';
import { decide, serveLatency } from './contract.js';
import { instrumentConsumerFactory } from './kafka-consume.js';
import { headersOf, kafkaError } from './kafka-shared.js';

export { DEFAULT_KAFKA_ERROR_CODE } from './kafka-shared.js';

type SendBatch = (batch: ProducerBatch) => Promise<RecordMetadata[]>;

/** The methods of a producer or transaction this module wraps. */
interface Sender {
  send(record: ProducerRecord): Promise<RecordMetadata[]>;
  sendBatch(batch: ProducerBatch): Promise<RecordMetadata[]>;
}

const instrumented = new WeakSet<object>();

/**
 * Instruments a kafkajs `Kafka` instance in place and returns it: the producers and consumers
 * it creates afterwards are decided on (those created before are not). Instrumenting twice
 * changes nothing.
 *
 * @throws HavocError when kafkajs is not installed or `kafka` is not a `Kafka` of the kafkajs package havoc loads.
 */
export function instrumentKafka<T extends Kafka>(kafka: T, engine: Engine): T {
  if (instrumented.has(kafka)) return kafka;
  const kafkajs = optionalPeer<{ Kafka?: abstract new (...args: never[]) => unknown }>('kafkajs');
  if (typeof kafkajs?.Kafka !== 'function') throw new HavocError('instrumentKafka needs kafkajs (npm install kafkajs@2)');
  if (!(kafka instanceof kafkajs.Kafka))
    throw new HavocError('instrumentKafka expects a Kafka instance of the kafkajs package havoc loads');
  instrumented.add(kafka);
  const producer = kafka.producer;
  kafka.producer = function havocProducer(...args: Parameters<Kafka['producer']>): Producer {
    const created = producer.apply(kafka, args);
    instrumentProducer(created, engine);
    return created;
  };
  instrumentConsumerFactory(kafka, engine);
  return kafka;
}

function instrumentProducer(producer: Producer, engine: Engine): void {
  instrumentSender(producer, engine);
  const transaction = producer.transaction;
  producer.transaction = async function havocTransaction(): Promise<Transaction> {
    const started = await transaction.call(producer);
    // Only what is sent inside the transaction is decided: commit, abort and sendOffsets never.
    instrumentSender(started, engine);
    return started;
  };
}

function instrumentSender(sender: Sender, engine: Engine): void {
  const sendBatch: SendBatch = sender.sendBatch.bind(sender);
  // kafkajs's `send` is its `sendBatch` of one topic, called directly (not through the object).
  const send = sender.send.bind(sender);
  sender.send = function havocSend(record: ProducerRecord): Promise<RecordMetadata[]> {
    const { topic, messages, ...options } = record;
    const outcome = decideMessages([{ topic, messages }]);
    if (outcome === null) return send(record);
    return act(outcome, (topicMessages) => sendBatch({ ...options, topicMessages }));
  };
  sender.sendBatch = function havocSendBatch(batch: ProducerBatch): Promise<RecordMetadata[]> {
    const outcome = decideMessages(batch.topicMessages ?? []);
    if (outcome === null) return sendBatch(batch);
    return act(outcome, (topicMessages) => sendBatch({ ...batch, topicMessages }));
  };

  /** Decides each message of a send, in order; `null` when none was faulted (the common case, no copy made). */
  function decideMessages(topicMessages: readonly TopicMessages[]): SendOutcome | null {
    let outcome: SendOutcome | null = null;
    for (let t = 0; t < topicMessages.length; t += 1) {
      const { topic, messages } = topicMessages[t]!;
      // kafkajs refuses these itself, with its own error.
      if (typeof topic !== 'string' || !Array.isArray(messages)) continue;
      for (let m = 0; m < messages.length; m += 1) {
        const decision = decide(engine, 'kafka', topic, headersOf(messages[m]!.headers));
        if (decision === null) continue;
        outcome ??= { topicMessages, latencyMs: 0, error: null, dropped: topicMessages.map(() => new Set()) };
        outcome.latencyMs = Math.max(outcome.latencyMs, decision.latencyMs);
        if (decision.drop) outcome.dropped[t]!.add(m);
        else if (decision.error && outcome.error === null) outcome.error = { decision, topic };
      }
    }
    return outcome;
  }
}

/** How one send was decided. */
interface SendOutcome {
  topicMessages: readonly TopicMessages[];
  /** The longest latency of its messages: they travel in one request. */
  latencyMs: number;
  /** The first message decided an error: the whole send fails with it. */
  error: { decision: Decision; topic: string } | null;
  /** Per entry of `topicMessages`, the indexes of its dropped messages. */
  dropped: Array<Set<number>>;
}

async function act(
  outcome: SendOutcome,
  sendBatch: (topicMessages: TopicMessages[]) => Promise<RecordMetadata[]>,
): Promise<RecordMetadata[]> {
  await serveLatency(outcome.latencyMs);
  if (outcome.error) throw kafkaError(outcome.error.decision, outcome.error.topic);
  const kept: TopicMessages[] = [];
  for (let t = 0; t < outcome.topicMessages.length; t += 1) {
    const { topic, messages } = outcome.topicMessages[t]!;
    const dropped = outcome.dropped[t]!;
    const rest = dropped.size === 0 ? messages : messages.filter((_, m) => !dropped.has(m));
    if (rest.length > 0) kept.push({ topic, messages: rest });
  }
  // Every message dropped: nothing is sent, and there is no partition to report on.
  if (kept.length === 0) return [];
  return sendBatch(kept);
}
