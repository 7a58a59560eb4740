// ioredis: every command reaches the connection through `sendCommand`, pipelines and MULTI
// included (their commands arrive one by one, tagged with the pipeline's write buffer). A
// single command is decided by its name; a pipeline or MULTI is decided once, by its first
// command, and acts as a unit before anything is sent: delayed together, or every command
// rejected with the error. A drop destroys the socket, so ioredis's reconnect logic runs and
// resends what it had queued.
import type { Redis } from 'ioredis';
import type { Decision, Engine } from '../engine.js';
import { HavocError } from '../errors.js';
import { optionalPeer } from '../peer.js';
import { decide } from './contract.js';
import { OrderedDelays } from './ordered.js';

interface Command {
  name: string;
  promise: Promise<unknown>;
  reject(error: Error): void;
}

/** The per-pipeline object ioredis passes as `stream` for each command of one `exec()`. */
interface PipelineStream {
  isPipeline: true;
}

type SendCommand = (command: Command, stream?: unknown, node?: unknown) => unknown;

interface RedisInternals {
  sendCommand: SendCommand;
  status: string;
  stream?: { destroy(): void };
}

/** What one pipeline `exec()` was decided; its fault acts once, on the whole unit. */
interface Fate {
  decided: boolean;
  decision: Decision | null;
  error: Error | null;
  /** Latency still to serve (the unit's first dispatched command serves it for all). */
  latencyMs: number;
  /** A drop still to act out. */
  drop: boolean;
  /** A pipeline's MULTI, held until the command after it decides the unit. */
  held: [Command, unknown] | null;
}

/** The reply an injected error imitates when the policy has no `error_body`. */
export const DEFAULT_REDIS_ERROR = 'LOADING Redis is loading the dataset in memory';

const instrumented = new WeakSet<object>();

/** Whether `client` was instrumented by {@link instrumentIoredis} (fleet control never sends through one). */
export function isIoredisInstrumented(client: object): boolean {
  return instrumented.has(client);
}

/** Instruments an ioredis client in place and returns it. Instrumenting twice changes nothing. */
export function instrumentIoredis<T extends Redis>(client: T, engine: Engine): T {
  const internals = client as unknown as RedisInternals;
  if (typeof internals.sendCommand !== 'function') throw new HavocError('instrumentIoredis expects an ioredis client');
  if (instrumented.has(client)) return client;
  instrumented.add(client);
  const original = internals.sendCommand;
  const delays = new OrderedDelays();
  const pipelines = new WeakMap<PipelineStream, Fate>();
  // Commands already decided: ioredis re-sends queued commands after a reconnect, and those
  // must not roll again.
  const decided = new WeakSet<Command>();

  const dispatch = (fate: Fate, command: Command, stream: unknown, node: unknown): unknown => {
    if (fate.decision === null && !delays.busy) return original.call(client, command, stream, node);
    const latencyMs = fate.latencyMs;
    fate.latencyMs = 0;
    delays.defer(latencyMs, () => {
      if (fate.error) return command.reject(fate.error);
      if (fate.drop) {
        fate.drop = false;
        internals.stream?.destroy();
      }
      original.call(client, command, stream, node);
    });
    return command.promise;
  };

  internals.sendCommand = function havocSendCommand(command: Command, stream?: unknown, node?: unknown): unknown {
    // Before 'ready' only ioredis's own handshake is written (the application's commands wait
    // in its offline queue and come back here once ready); re-sent commands were decided before.
    if (internals.status !== 'ready' || decided.has(command)) return original.call(client, command, stream, node);
    decided.add(command);
    if (!isPipeline(stream)) return dispatch(fateOf(decide(engine, 'redis', command.name)), command, stream, node);
    let fate = pipelines.get(stream);
    if (fate === undefined) pipelines.set(stream, (fate = { ...fateOf(null), decided: false }));
    if (!fate.decided) {
      if (command.name === 'multi') {
        fate.held = [command, node];
        return command.promise;
      }
      const held = fate.held;
      Object.assign(fate, fateOf(decide(engine, 'redis', command.name)));
      if (held) dispatch(fate, held[0], stream, held[1]);
    }
    return dispatch(fate, command, stream, node);
  } as SendCommand;
  return client;
}

function fateOf(decision: Decision | null): Fate {
  return {
    decided: true,
    decision,
    error: decision?.error && !decision.drop ? replyError(decision.error.body) : null,
    latencyMs: decision?.latencyMs ?? 0,
    drop: decision?.drop === true,
    held: null,
  };
}

function isPipeline(stream: unknown): stream is PipelineStream {
  return typeof stream === 'object' && stream !== null && (stream as Partial<PipelineStream>).isPipeline === true;
}

type ReplyErrorClass = new (message: string) => Error;
/** A server error reply, as ioredis's own `ReplyError` when it can be loaded. */
function replyError(body?: string): Error {
  const ReplyError = optionalPeer<{ ReplyError?: ReplyErrorClass }>('ioredis')?.ReplyError;
  const message = body || DEFAULT_REDIS_ERROR;
  return ReplyError ? new ReplyError(message) : Object.assign(new Error(message), { name: 'ReplyError' });
}
