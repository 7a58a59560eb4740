// The consumer side of the kafkajs interceptor: each message a consumer of an instrumented
// `Kafka` fetches is decided by its topic and headers before the application's handler sees it.
//
// eachMessage: latency waits before the handler; an error is thrown in place of the handler, so
// kafkajs does what it does when a handler throws (commits what was resolved before, restarts
// the consumer on a retriable error, fetches the message again, and it is decided anew); a drop
// skips the handler and kafkajs resolves and commits the offset as after a handled message.
//
// eachBatch: the batch's messages are decided in order, up to the first error. The handler runs
// once, after the longest of their latencies, on the batch without the dropped messages and
// without the errored one and those after it; then the error is thrown as the handler's. Drops
// after the last message the handler saw are resolved here (it could not resolve them).
import type { Batch, Consumer, ConsumerRunConfig, EachBatchPayload, EachMessagePayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Decision, Engine } from '../engine.js';
import { serveLatency } from './contract.js';
import { decideMessage, kafkaError } from './kafka-shared.js';

/** Makes every consumer `kafka` creates from now on decide what it consumes. */
export function instrumentConsumerFactory(kafka: Kafka, engine: Engine): void {
  const consumer = kafka.consumer;
  kafka.consumer = function havocConsumer(...args: Parameters<Kafka['consumer']>): Consumer {
    const created = consumer.apply(kafka, args);
    const run = created.run;
    created.run = function havocRun(config?: ConsumerRunConfig): Promise<void> {
      if (config === undefined) return run.call(created, config);
      const { eachMessage, eachBatch } = config;
      return run.call(created, {
        ...config,
        // kafkajs calls eachMessage when both are given.
        ...(eachMessage && { eachMessage: wrapEachMessage(eachMessage, engine) }),
        ...(eachBatch && !eachMessage && { eachBatch: wrapEachBatch(eachBatch, engine, config.eachBatchAutoResolve !== false) }),
      });
    };
    return created;
  };
}

function wrapEachMessage(eachMessage: (payload: EachMessagePayload) => Promise<void>, engine: Engine) {
  return async function havocEachMessage(payload: EachMessagePayload): Promise<void> {
    const decision = decideMessage(engine, payload.topic, payload.message.headers);
    if (decision === null) return eachMessage(payload);
    await serveLatency(decision.latencyMs);
    // Returning resolves the offset: the message is consumed without the handler.
    if (decision.drop) return;
    if (decision.error) throw kafkaError(decision, payload.topic);
    return eachMessage(payload);
  };
}

function wrapEachBatch(eachBatch: (payload: EachBatchPayload) => Promise<void>, engine: Engine, autoResolve: boolean) {
  return async function havocEachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const messages = batch.messages;
    let latencyMs = 0;
    let faulted = false;
    let error: Decision | null = null;
    // The messages decided before the first error, and which of them were dropped.
    let decided = messages.length;
    const dropped = new Set<number>();
    for (let i = 0; i < messages.length; i += 1) {
      const decision = decideMessage(engine, batch.topic, messages[i]!.headers);
      if (decision === null) continue;
      faulted = true;
      latencyMs = Math.max(latencyMs, decision.latencyMs);
      if (decision.drop) dropped.add(i);
      else if (decision.error) {
        error = decision;
        decided = i;
        break;
      }
    }
    if (!faulted) return eachBatch(payload);
    await serveLatency(latencyMs);

    const delivered = messages.slice(0, decided).filter((_, i) => !dropped.has(i));
    // The highest offset the handler resolved itself.
    let resolvedByHandler: bigint | null = null;
    if (delivered.length > 0) {
      await eachBatch({
        ...payload,
        batch: batchOf(batch, delivered),
        resolveOffset(offset: string): void {
          const resolved = BigInt(offset);
          if (resolvedByHandler === null || resolved > resolvedByHandler) resolvedByHandler = resolved;
          payload.resolveOffset(offset);
        },
      });
    }
    // The handler took everything it was given: resolved it all itself, or left that to kafkajs
    // (which, had the batch ended before the errored message, would have resolved up to it).
    // Then the decided messages are resolved, the drops it never saw included.
    const lastDelivered = delivered.at(-1);
    const tookAll =
      autoResolve || lastDelivered === undefined || (resolvedByHandler !== null && resolvedByHandler >= BigInt(lastDelivered.offset));
    if (tookAll && decided > 0) payload.resolveOffset(messages[decided - 1]!.offset);
    if (error !== null) throw kafkaError(error, batch.topic);
  };
}

/** `batch` (its methods, topic, partition, high watermark) with only `messages` in it. */
function batchOf(batch: Batch, messages: KafkaMessage[]): Batch {
  return Object.create(batch, { messages: { value: messages, enumerable: true } }) as Batch;
}
