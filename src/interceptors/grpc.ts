// @grpc/grpc-js server and client interceptors. A call is decided when its metadata is known
// (target `/pkg.Service/Method`, `match_headers` against the metadata). Streaming calls follow
// the deciding policy's `stream_roll_mode`:
//   per-call (default) — one roll at the start: latency before the call proceeds, an error
//                        status instead of the call, a drop of the connection;
//   stream             — one roll at the start, kept: every message of the call gets its
//                        latency, or is dropped; an error ends the call at once;
//   per-frame          — every message rolls: latency on that message, drop of that message,
//                        an error ends the call with its status.
// An incoming deadline bounds injected latency: a delay that would outlive it ends the call with
// DEADLINE_EXCEEDED at the deadline.
import type {
  InterceptingListener,
  Interceptor,
  Metadata,
  ServerInterceptingCall as ServerInterceptingCallType,
  ServerInterceptingCallInterface,
  ServerInterceptor,
  ServerMethodDefinition,
  StatusObject,
} from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface.js';
import type { Decision, Engine, HeaderBag } from '../engine.js';
import { recordFault, serveLatency, type FaultKind } from './contract.js';
import { OrderedDelays } from './ordered.js';

type GrpcModule = typeof import('@grpc/grpc-js');

const DEADLINE_EXCEEDED = 4;
const UNAVAILABLE = 14;

let grpcModule: GrpcModule | undefined;

/** The application's @grpc/grpc-js, loaded when an interceptor is first created. */
function grpc(): GrpcModule {
  grpcModule ??= require('@grpc/grpc-js') as GrpcModule;
  return grpcModule;
}

/** The faults of one call, per its policy's roll mode. */
class CallChaos {
  /** A decision kept for every message (`stream` mode). */
  #kept: Decision | null = null;
  #perFrame = false;

  constructor(
    private readonly engine: Engine,
    private readonly method: string,
    private readonly headers: HeaderBag,
    private readonly streaming: boolean,
  ) {}

  /** The decision to act on before the call proceeds. */
  start(): Decision | null {
    const decision = this.engine.decide('grpc', this.method, this.headers);
    if (decision === null) {
      this.#perFrame = this.streaming;
      return this.#count(null);
    }
    const mode = this.streaming ? this.engine.streamRollMode(decision) : 'per-call';
    if (mode === 'per-frame') {
      this.#perFrame = true;
      return null;
    }
    if (mode === 'stream' && decision.error === null) {
      this.#kept = decision;
      return this.#count(decision);
    }
    return this.#count(decision);
  }

  /** Whether a `stream`-mode decision acts on every message (its latency is served there). */
  get keepsForMessages(): boolean {
    return this.#kept !== null;
  }

  /** The decision for one message of a streaming call. */
  frame(): Decision | null {
    if (this.#kept !== null) {
      if (this.#kept.latencyMs > 0) recordFault(this.engine, this.#kept, 'grpc', 'latency', this.method);
      if (this.#kept.drop) recordFault(this.engine, this.#kept, 'grpc', 'drop', this.method);
      return this.#kept;
    }
    if (!this.#perFrame) return null;
    const decision = this.engine.decide('grpc', this.method, this.headers);
    // Only per-frame policies roll on messages; others had their roll at the start.
    if (decision === null || this.engine.streamRollMode(decision) !== 'per-frame') return null;
    return this.#count(decision);
  }

  #count(decision: Decision | null): Decision | null {
    const outcome: FaultKind | 'pass' = decision === null ? 'pass' : decision.drop ? 'drop' : decision.error ? 'error' : 'latency';
    this.engine.metrics.decisions.labels('grpc', outcome).inc();
    if (decision !== null) {
      if (decision.latencyMs > 0) recordFault(this.engine, decision, 'grpc', 'latency', this.method);
      if (outcome === 'error' || outcome === 'drop') recordFault(this.engine, decision, 'grpc', outcome, this.method);
    }
    return decision;
  }
}

function headersOf(metadata: Metadata): HeaderBag {
  const bag: HeaderBag = {};
  for (const [key, value] of Object.entries(metadata.getMap())) bag[key] = typeof value === 'string' ? value : undefined;
  return bag;
}

/** Milliseconds until `deadline` (a Date or epoch ms; Infinity when there is none). */
function remainingMs(deadline: Date | number | undefined): number {
  if (deadline === undefined) return Infinity;
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return at - Date.now();
}

function errorStatus(decision: Decision): PartialStatusObject {
  const code = decision.error?.code ?? UNAVAILABLE;
  return {
    code,
    details: decision.error?.body || `havoc: injected ${code === UNAVAILABLE ? 'UNAVAILABLE' : `status ${code}`}`,
    metadata: new (grpc().Metadata)(),
  };
}

/** Destroys the HTTP/2 session under a server call (walking down the interceptor chain). */
function dropConnection(call: ServerInterceptingCallInterface): boolean {
  let current: unknown = call;
  for (let depth = 0; depth < 32 && typeof current === 'object' && current !== null; depth += 1) {
    const stream = (current as { stream?: { session?: { destroy(): void } } }).stream;
    if (stream?.session) {
      stream.session.destroy();
      return true;
    }
    current = (current as { nextCall?: unknown }).nextCall;
  }
  return false;
}

/**
 * A server interceptor (grpc-js ≥ 1.10, `new Server({ interceptors: [grpcServerInterceptor(engine)] })`).
 * `grpc.health.v1.Health` is protected by default.
 */
export function grpcServerInterceptor(engine: Engine): ServerInterceptor {
  const { ServerInterceptingCall } = grpc();

  class ChaosServerCall extends ServerInterceptingCall {
    #outgoing = new OrderedDelays();
    #chaos: CallChaos | null = null;
    #ended = false;

    constructor(
      private readonly inner: ServerInterceptingCallInterface,
      private readonly definition: ServerMethodDefinition<unknown, unknown>,
      private readonly cancelled: AbortController,
    ) {
      super(inner, {
        start: (next) =>
          next({
            onReceiveMetadata: (metadata, proceed) => this.#onMetadata(metadata, proceed),
            onReceiveMessage: (message, proceed) => this.#onMessage(message, proceed),
            onReceiveHalfClose: (proceed) => {
              if (this.#ended) return;
              if (this.#outgoing.busy) this.#outgoing.defer(0, () => !this.#ended && proceed());
              else proceed();
            },
            onCancel: () => {
              this.#ended = true;
              this.cancelled.abort();
            },
          }),
      });
    }

    #end(status: PartialStatusObject): void {
      if (this.#ended) return;
      this.#ended = true;
      this.inner.sendStatus(status);
    }

    /** Serves `latencyMs` within the call's deadline; false when the call ended meanwhile. */
    async #wait(latencyMs: number): Promise<boolean> {
      const left = remainingMs(this.inner.getDeadline());
      const served = await serveLatency(Math.min(latencyMs, Math.max(left, 0)), this.cancelled.signal);
      if (!served || this.#ended) return false;
      if (latencyMs > left) {
        this.#end({ code: DEADLINE_EXCEEDED, details: 'Deadline exceeded' });
        return false;
      }
      return true;
    }

    #onMetadata(metadata: Metadata, proceed: (metadata: Metadata) => void): void {
      const streaming = this.definition.requestStream || this.definition.responseStream;
      this.#chaos = new CallChaos(engine, this.definition.path, headersOf(metadata), streaming);
      const decision = this.#chaos.start();
      if (decision === null) return proceed(metadata);
      const chaos = this.#chaos;
      const act = (): void => {
        if (decision.drop && !chaos.keepsForMessages) {
          this.#ended = true;
          if (!dropConnection(this.inner)) this.#end({ code: UNAVAILABLE, details: 'havoc: connection dropped' });
        } else if (decision.error) {
          this.#end(errorStatus(decision));
        } else {
          proceed(metadata);
        }
      };
      // `stream` mode serves its latency on each message, not at the start.
      const latencyMs = chaos.keepsForMessages ? 0 : decision.latencyMs;
      if (latencyMs <= 0) return act();
      void this.#wait(latencyMs).then((ok) => ok && act());
    }

    #onMessage(message: unknown, proceed: (message: unknown) => void): void {
      if (this.#ended) return;
      const decision = this.definition.requestStream ? (this.#chaos?.frame() ?? null) : null;
      if (decision === null) return proceed(message);
      const act = (): void => {
        if (decision.drop)
          this.inner.startRead(); // dropped: the handler never sees it, reading goes on
        else if (decision.error) this.#end(errorStatus(decision));
        else proceed(message);
      };
      if (decision.latencyMs <= 0) return act();
      void this.#wait(decision.latencyMs).then((ok) => ok && act());
    }

    override sendMessage(message: unknown, callback: () => void): void {
      if (this.#ended) return callback();
      const decision = this.definition.responseStream ? (this.#chaos?.frame() ?? null) : null;
      if (decision === null && !this.#outgoing.busy) return super.sendMessage(message, callback);
      // Later messages and the status queue behind this one, bounded by the deadline.
      const left = remainingMs(this.inner.getDeadline());
      const latencyMs = Math.min(decision?.latencyMs ?? 0, Math.max(left, 0));
      const expires = (decision?.latencyMs ?? 0) > left;
      this.#outgoing.defer(latencyMs, () => {
        if (this.#ended) return callback();
        if (expires) this.#end({ code: DEADLINE_EXCEEDED, details: 'Deadline exceeded' });
        else if (decision?.error) this.#end(errorStatus(decision));
        else if (!decision?.drop) return super.sendMessage(message, callback);
        // Dropped (or the call ended): the handler's write still completes.
        callback();
      });
    }

    override sendStatus(status: PartialStatusObject): void {
      if (this.#ended) return;
      const finish = (): void => {
        if (this.#ended) return;
        this.#ended = true;
        super.sendStatus(status);
      };
      if (this.#outgoing.busy) this.#outgoing.defer(0, finish);
      else finish();
    }
  }

  return (definition, call) =>
    new ChaosServerCall(call, definition as ServerMethodDefinition<unknown, unknown>, new AbortController()) as ServerInterceptingCallType;
}

/**
 * A client interceptor (`new Client(address, credentials, { interceptors: [grpcClientInterceptor(engine)] })`,
 * or per call). Faults are served before the request leaves: an error or drop ends the call with
 * its status (drop: UNAVAILABLE) without sending anything; the call's deadline bounds latency.
 */
export function grpcClientInterceptor(engine: Engine): Interceptor {
  const { InterceptingCall, Metadata: MetadataClass } = grpc();

  class ChaosClientCall extends InterceptingCall {
    #outgoing = new OrderedDelays();
    #incoming = new OrderedDelays();
    #chaos: CallChaos | null = null;
    #listener: Partial<InterceptingListener> | null = null;
    #ended = false;

    constructor(
      next: ConstructorParameters<typeof InterceptingCall>[0],
      private readonly method: string,
      private readonly streaming: { request: boolean; response: boolean },
      private readonly deadline: Date | number | undefined,
    ) {
      super(next);
    }

    #end(code: number, details: string): void {
      if (this.#ended) return;
      this.#ended = true;
      this.#listener?.onReceiveStatus?.({ code, details, metadata: new MetadataClass() } as StatusObject);
    }

    /** The latency actually served, and whether the deadline expires first. */
    #bounded(latencyMs: number): [number, boolean] {
      const left = remainingMs(this.deadline);
      return [Math.min(latencyMs, Math.max(left, 0)), latencyMs > left];
    }

    override start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
      this.#listener = listener ?? null;
      this.#chaos = new CallChaos(engine, this.method, headersOf(metadata), this.streaming.request || this.streaming.response);
      const decision = this.#chaos.start();
      const wrapped: Partial<InterceptingListener> = {
        ...listener,
        onReceiveMessage: (message: unknown) => this.#onMessage(message),
        onReceiveStatus: (status: StatusObject) => {
          const deliver = (): void => {
            if (this.#ended) return;
            this.#ended = true;
            listener?.onReceiveStatus?.(status);
          };
          if (this.#incoming.busy) this.#incoming.defer(0, deliver);
          else deliver();
        },
      };
      if (decision === null) return super.start(metadata, wrapped);
      const [latencyMs, expires] = this.#bounded(this.#chaos.keepsForMessages ? 0 : decision.latencyMs);
      this.#outgoing.defer(latencyMs, () => {
        if (this.#ended) return;
        if (expires) this.#end(DEADLINE_EXCEEDED, 'Deadline exceeded');
        else if (decision.drop && !this.#chaos?.keepsForMessages) this.#end(UNAVAILABLE, 'havoc: connection dropped');
        else if (decision.error) this.#end(decision.error.code, errorStatus(decision).details ?? '');
        else super.start(metadata, wrapped);
      });
    }

    #onMessage(message: unknown): void {
      const decision = this.streaming.response ? (this.#chaos?.frame() ?? null) : null;
      const deliver = (): void => {
        if (this.#ended) return;
        if (decision?.drop) return super.startRead(); // dropped: read the next one instead
        if (decision?.error) return this.#endAndCancel(decision);
        this.#listener?.onReceiveMessage?.(message);
      };
      if (decision === null && !this.#incoming.busy) return deliver();
      const [latencyMs, expires] = this.#bounded(decision?.latencyMs ?? 0);
      this.#incoming.defer(latencyMs, () => (expires ? this.#endAndCancel(null) : deliver()));
    }

    /** Ends a started call: the server side is cancelled, the application sees the status. */
    #endAndCancel(decision: Decision | null): void {
      const [code, details] =
        decision === null
          ? [DEADLINE_EXCEEDED, 'Deadline exceeded']
          : [decision.error?.code ?? UNAVAILABLE, errorStatus(decision).details ?? ''];
      this.#end(code, details);
      super.cancelWithStatus(code, details);
    }

    override sendMessageWithContext(context: { callback?: () => void }, message: unknown): void {
      const decision = this.streaming.request ? (this.#chaos?.frame() ?? null) : null;
      if (decision === null && !this.#outgoing.busy) return super.sendMessageWithContext(context, message);
      const [latencyMs, expires] = this.#bounded(decision?.latencyMs ?? 0);
      this.#outgoing.defer(latencyMs, () => {
        if (this.#ended) return context.callback?.();
        if (expires) return this.#endAndCancel(null);
        if (decision?.error) return this.#endAndCancel(decision);
        if (decision?.drop) return context.callback?.(); // dropped: the write completes, nothing is sent
        super.sendMessageWithContext(context, message);
      });
    }

    override halfClose(): void {
      if (!this.#outgoing.busy) return super.halfClose();
      this.#outgoing.defer(0, () => {
        if (!this.#ended) super.halfClose();
      });
    }
  }

  return (options, nextCall) => {
    const definition = options.method_definition;
    return new ChaosClientCall(
      nextCall(options),
      definition.path,
      { request: definition.requestStream, response: definition.responseStream },
      options.deadline,
    );
  };
}
