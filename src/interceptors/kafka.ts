// kafkajs 2.x: `instrumentKafka` wraps the producers and consumers a `Kafka` instance creates
// from then on. Every message is decided by its topic and its headers: on the way out in
// `send`/`sendBatch` (here, transactions included), on the way in before `eachMessage` or
// `eachBatch` (kafka-consume.ts).
//
// A send is one produce request, acted out as a unit before kafkajs sees it: it waits the
// longest latency of its messages; then, if any message was decided an error, that try fails
// and nothing of it is written; otherwise the dropped messages are left out and the rest is
// sent. A failed try goes through kafkajs's own retrier (`kafkajs/src/retry`) with the
// producer's retry options, as a real broker error does inside `send`: a retriable error is
// retried and each try is decided anew (a dropped message stays dropped), exhausted retries
// reject with kafkajs's KafkaJSNumberOfRetriesExceeded caused by the injected error, and a
// non-retriable one rejects at once with the injected error itself. In a transaction only its
// `send`/`sendBatch` are decided; `commit`, `abort` and `sendOffsets` never are.
import type {
  Kafka,
  Producer,
  ProducerBatch,
  ProducerConfig,
  ProducerRecord,
  RecordMetadata,
  RetryOptions,
  TopicMessages,
  Transaction,
} from 'kafkajs';
import type { Decision, Engine } from '../engine.js';
import { HavocError, KafkaInjectedError } from '../errors.js';
import { optionalPeer } from '../peer.js';
import { serveLatency } from './contract.js';
import { instrumentConsumerFactory } from './kafka-consume.js';
import { decideMessage, kafkaError } from './kafka-shared.js';

export { DEFAULT_KAFKA_ERROR_CODE } from './kafka-shared.js';

type SendBatch = (batch: ProducerBatch) => Promise<RecordMetadata[]>;

/** kafkajs's retrier (`kafkajs/src/retry`): runs `attempt` until it resolves, `bail`s, or retries run out. */
type Retrier = (attempt: (bail: (error: unknown) => void, retryCount: number) => Promise<RecordMetadata[]>) => Promise<RecordMetadata[]>;

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
  kafka.producer = function havocProducer(config?: ProducerConfig): Producer {
    const created = producer.call(kafka, config);
    instrumentProducer(created, engine, producerRetrier(kafka, config));
    return created;
  };
  instrumentConsumerFactory(kafka, engine);
  return kafka;
}

/**
 * A retrier with the options kafkajs gives the producer's own: the `Kafka` client's `retry`,
 * overridden by the producer's (kafkajs's defaults fill in the rest, in `createRetry`).
 */
function producerRetrier(kafka: Kafka, config: ProducerConfig | undefined): Retrier {
  const createRetry = optionalPeer<(options: RetryOptions) => Retrier>('kafkajs/src/retry');
  // Not where kafkajs 2.x keeps it: one try, as without retries.
  if (typeof createRetry !== 'function')
    return (attempt) => new Promise((resolve, reject) => void attempt(reject, 0).then(resolve, reject));
  return createRetry({ ...clientRetry(kafka), ...config?.retry });
}

/** The `retry` the `Kafka` client was constructed with, which kafkajs keeps under a private symbol. */
function clientRetry(kafka: Kafka): RetryOptions | undefined {
  const key = Object.getOwnPropertySymbols(kafka).find((symbol) => symbol.description === 'private:Kafka:clusterRetry');
  return key === undefined ? undefined : (kafka as unknown as Record<symbol, RetryOptions | undefined>)[key];
}

function instrumentProducer(producer: Producer, engine: Engine, retrier: Retrier): void {
  instrumentSender(producer, engine, retrier);
  const transaction = producer.transaction;
  producer.transaction = async function havocTransaction(): Promise<Transaction> {
    const started = await transaction.call(producer);
    // Only what is sent inside the transaction is decided: commit, abort and sendOffsets never.
    // kafkajs retries a transaction's sends with the producer's retrier too.
    instrumentSender(started, engine, retrier);
    return started;
  };
}

function instrumentSender(sender: Sender, engine: Engine, retrier: Retrier): void {
  const sendBatch: SendBatch = sender.sendBatch.bind(sender);
  // kafkajs's `send` is its `sendBatch` of one topic, called directly (not through the object).
  const send = sender.send.bind(sender);
  sender.send = function havocSend(record: ProducerRecord): Promise<RecordMetadata[]> {
    // A record is a topic's messages plus options: decided as the one entry of a batch.
    const outcome = decideMessages([record], null);
    if (outcome === null) return send(record);
    const { topic: _topic, messages: _messages, ...options } = record;
    return sendDecided(
      outcome,
      () => send(record),
      (kept) => sendBatch({ ...options, topicMessages: kept }),
    );
  };
  sender.sendBatch = function havocSendBatch(batch: ProducerBatch): Promise<RecordMetadata[]> {
    const topicMessages = batch.topicMessages ?? [];
    const outcome = decideMessages(topicMessages, null);
    if (outcome === null) return sendBatch(batch);
    return sendDecided(
      outcome,
      () => sendBatch(batch),
      (kept) => sendBatch({ ...batch, topicMessages: kept }),
    );
  };

  /**
   * Decides each message of a try, in order, but those an earlier try of the same send dropped
   * (`carried`): they stay dropped. `null` when nothing is faulted (the common case, no copy made).
   */
  function decideMessages(topicMessages: readonly TopicMessages[], carried: Array<Set<number>> | null): SendOutcome | null {
    let outcome: SendOutcome | null =
      carried === null ? null : { topicMessages, latencyMs: 0, error: null, dropped: carried.map((set) => new Set(set)) };
    for (let t = 0; t < topicMessages.length; t += 1) {
      const { topic, messages } = topicMessages[t]!;
      // kafkajs refuses these itself, with its own error.
      if (typeof topic !== 'string' || !Array.isArray(messages)) continue;
      for (let m = 0; m < messages.length; m += 1) {
        if (carried?.[t]!.has(m)) continue;
        const decision = decideMessage(engine, topic, messages[m]!.headers);
        if (decision === null) continue;
        outcome ??= { topicMessages, latencyMs: 0, error: null, dropped: topicMessages.map(() => new Set()) };
        outcome.latencyMs = Math.max(outcome.latencyMs, decision.latencyMs);
        if (decision.drop) outcome.dropped[t]!.add(m);
        else if (decision.error && outcome.error === null) outcome.error = { decision, topic };
      }
    }
    return outcome;
  }

  /**
   * Runs a faulted send under the producer's retrier: the first try acts out `first`, each
   * retry is decided anew. What kafkajs itself rejects with (its own retries spent) is passed
   * to the application as it is, not retried again here.
   */
  function sendDecided(
    first: SendOutcome,
    sendUndecided: () => Promise<RecordMetadata[]>,
    sendKept: (topicMessages: TopicMessages[]) => Promise<RecordMetadata[]>,
  ): Promise<RecordMetadata[]> {
    let carried = first.dropped;
    return retrier(async (bail, retryCount) => {
      const outcome = retryCount === 0 ? first : decideMessages(first.topicMessages, carried.some((set) => set.size > 0) ? carried : null);
      const sending = outcome === null ? sendUndecided() : act(outcome, sendKept);
      if (outcome !== null) carried = outcome.dropped;
      try {
        return await sending;
      } catch (error) {
        // An injected retriable error is thrown for the retrier to retry; anything else ends the send.
        if (error instanceof KafkaInjectedError && error.retriable) throw error;
        bail(error);
        return [];
      }
    });
  }
}

/** How one try of a send was decided. */
interface SendOutcome {
  topicMessages: readonly TopicMessages[];
  /** The longest latency of its messages: they travel in one request. */
  latencyMs: number;
  /** The first message decided an error: the whole try fails with it. */
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
