// amqplib: one channel at a time, promise or callback API. Consumption is decided per message
// by its queue and AMQP headers, before the application's handler: latency delays the handler,
// an error nacks the message with requeue (the broker redelivers it, `redelivered: true`), a
// drop nacks it without requeue (gone, or dead-lettered). Publishing is decided per message by
// its routing key (the queue, for `sendToQueue`): latency defers the publish, an error fails it
// the way amqplib fails a publish (a thrown error on a plain channel, the confirm callback and
// `waitForConfirms` on a confirm channel), a drop loses it silently, as an unroutable message is.
import type { Channel, ConfirmChannel } from 'amqplib';
import type { Channel as CallbackChannel, ConfirmChannel as CallbackConfirmChannel } from 'amqplib/callback_api';
import type { Decision, Engine, HeaderBag } from '../engine.js';
import { AmqpPublishError, HavocError } from '../errors.js';
import { decide } from './contract.js';
import { OrderedDelays } from './ordered.js';

/** The amqplib channels {@link instrumentAmqp} accepts. */
export type AmqpChannel = Channel | ConfirmChannel | CallbackChannel | CallbackConfirmChannel;

/** The message of an injected publish error when the policy has no `error_body` (amqplib's own for a broker nack). */
export const DEFAULT_AMQP_ERROR = 'message nacked';

interface Message {
  fields: { deliveryTag: number };
  properties: { headers?: Record<string, unknown> };
}

type OnMessage = (message: Message | null) => void;
type ConfirmCallback = (error: Error | null, ok?: unknown) => void;
interface PublishOptions {
  headers?: Record<string, unknown>;
}

/** What this module touches, common to both APIs. */
interface ChannelInternals {
  publish(exchange: string, routingKey: string, content: Buffer, options?: PublishOptions, callback?: ConfirmCallback): boolean;
  consume(queue: string, onMessage: OnMessage, options?: { noAck?: boolean }, ...rest: unknown[]): unknown;
  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void;
  /** Present on confirm channels only: returns a promise (promise API) or calls back (callback API). */
  waitForConfirms?: (callback?: (error?: Error | null) => void) => Promise<void> | void;
  listenerCount(event: string): number;
  emit(event: string, ...args: unknown[]): boolean;
}

const instrumented = new WeakSet<object>();

/**
 * Instruments an amqplib channel in place (its `consume`, `publish` and `sendToQueue`, and
 * `waitForConfirms` on a confirm channel) and returns it. Instrumenting twice changes nothing.
 */
export function instrumentAmqp<T extends AmqpChannel>(channel: T, engine: Engine): T {
  const internals = channel as unknown as ChannelInternals;
  if (typeof internals.publish !== 'function' || typeof internals.consume !== 'function' || typeof internals.nack !== 'function') {
    throw new HavocError('instrumentAmqp expects an amqplib channel');
  }
  if (instrumented.has(channel)) return channel;
  instrumented.add(channel);
  instrumentConsume(internals, engine);
  instrumentPublish(internals, engine);
  return channel;
}

function instrumentConsume(channel: ChannelInternals, engine: Engine): void {
  const consume = channel.consume;
  channel.consume = function havocConsume(queue: string, onMessage: OnMessage, options?: { noAck?: boolean }, ...rest: unknown[]): unknown {
    // One queue of delays per consumer: a message that arrives while an earlier one is delayed
    // reaches the handler after it, as behind a slow handler.
    const delays = new OrderedDelays();
    const noAck = options?.noAck === true;
    const deliver = (message: Message | null): void => {
      try {
        onMessage(message);
      } catch (error) {
        // Thrown by the application's handler outside amqplib's dispatch: report it as
        // amqplib reports a throwing handler, or let it surface as uncaught.
        if (channel.listenerCount('handler-error') > 0) channel.emit('handler-error', error, 'delivery');
        else
          setImmediate(() => {
            throw error;
          });
      }
    };
    const onDelivery = (message: Message | null): void => {
      if (message === null) {
        // The broker cancelled the consumer: tell the handler after the messages before it.
        if (delays.busy) delays.defer(0, () => deliver(null));
        else onMessage(null);
        return;
      }
      const decision = decide(engine, 'rabbitmq', queue, headersOf(message.properties.headers));
      if (decision === null && !delays.busy) {
        onMessage(message);
        return;
      }
      delays.defer(decision?.latencyMs ?? 0, () => {
        if (decision === null || (!decision.drop && decision.error === null)) return deliver(message);
        // With noAck the broker already forgot the message: skipping the handler is all there is to do.
        if (noAck) return;
        try {
          channel.nack(message, false, decision.error !== null && !decision.drop);
        } catch {
          // The channel closed meanwhile: the broker requeues every unacknowledged message itself.
        }
      });
    };
    return consume.call(channel, queue, onDelivery, options, ...rest);
  };
}

function instrumentPublish(channel: ChannelInternals, engine: Engine): void {
  const publish = channel.publish;
  const waitForConfirms = channel.waitForConfirms;
  const confirming = typeof waitForConfirms === 'function';
  const delays = new OrderedDelays();
  // Settles once every publish deferred so far has been handed to amqplib (delays run in order).
  let flushed: Promise<void> = Promise.resolve();
  // The first injected failure since the last `waitForConfirms`, which must report it.
  let failure: Error | null = null;
  const fail = (error: Error, callback?: ConfirmCallback): void => {
    failure ??= error;
    callback?.(error);
  };

  // `sendToQueue(queue, …)` is `this.publish('', queue, …)` in both APIs: patching `publish` covers both.
  channel.publish = function havocPublish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: PublishOptions,
    callback?: ConfirmCallback,
  ): boolean {
    const decision = decide(engine, 'rabbitmq', routingKey, headersOf(options?.headers));
    if (decision === null && !delays.busy) return publish.call(channel, exchange, routingKey, content, options, callback);
    const error = decision?.error && !decision.drop ? publishError(decision, exchange, routingKey) : null;
    // A plain channel has no way to fail a publish later: it throws now, as amqplib does on a closed channel.
    if (error && !confirming) throw error;
    // The application may reuse its buffer once publish returns.
    const copy = Buffer.from(content);
    const ownOptions = options && { ...options, ...(options.headers && { headers: { ...options.headers } }) };
    let sent!: () => void;
    flushed = new Promise((resolve) => (sent = resolve));
    delays.defer(decision?.latencyMs ?? 0, () => {
      try {
        if (error) fail(error, callback);
        else if (decision?.drop) callback?.(null);
        else publish.call(channel, exchange, routingKey, copy, ownOptions, callback);
      } catch (thrown) {
        // The channel closed during the delay. A confirm channel reports it; on a plain
        // channel the message is lost as amqplib loses writes buffered when a channel closes.
        if (confirming) fail(thrown instanceof Error ? thrown : new Error(String(thrown)), callback);
      } finally {
        sent();
      }
    });
    return true;
  };

  if (waitForConfirms === undefined) return;
  const settle = (k?: (error?: Error | null) => void): Promise<void> =>
    k === undefined
      ? (waitForConfirms.call(channel) as Promise<void>)
      : new Promise((resolve, reject) => waitForConfirms.call(channel, (error) => (error ? reject(error) : resolve())));
  channel.waitForConfirms = function havocWaitForConfirms(k?: (error?: Error | null) => void): Promise<void> | void {
    // Deferred publishes first reach amqplib, then the broker confirms them; an injected failure
    // fails the wait as a broker nack would.
    const done = flushed.then(() => {
      const injected = failure;
      failure = null;
      return settle(k).then(() => {
        if (injected) throw injected;
      });
    });
    if (k === undefined) return done;
    done.then(
      () => k(),
      (error: Error) => k(error),
    );
  };
}

function publishError(decision: Decision, exchange: string, routingKey: string): AmqpPublishError {
  const code = decision.error?.code ?? 0;
  return new AmqpPublishError(decision.error?.body || DEFAULT_AMQP_ERROR, code, exchange, routingKey);
}

/**
 * AMQP headers as `match_headers` reads them: lowercase names, string values (numbers and
 * booleans as text). The headers object itself when it already is one, so most messages cost no copy.
 */
function headersOf(headers: Record<string, unknown> | undefined): HeaderBag | undefined {
  if (headers === undefined || headers === null) return undefined;
  for (const key in headers) {
    const value = headers[key];
    if (typeof value !== 'string' || key !== key.toLowerCase()) return convertHeaders(headers);
  }
  return headers as HeaderBag;
}

function convertHeaders(headers: Record<string, unknown>): HeaderBag {
  const bag: HeaderBag = {};
  for (const key in headers) {
    const value = headers[key];
    if (typeof value === 'string') bag[key.toLowerCase()] = value;
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') bag[key.toLowerCase()] = String(value);
    else if (Array.isArray(value)) bag[key.toLowerCase()] = value.filter((v): v is string => typeof v === 'string');
  }
  return bag;
}
