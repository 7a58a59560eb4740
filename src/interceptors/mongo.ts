// mongodb (the official driver, 6.4 and later 6.x): every command an instrumented MongoClient
// sends on one of its pooled connections is decided by its name and namespace, as
// `find havoc.users`, just before the connection writes it. Latency waits, then sends. An error
// is the driver's own MongoServerError and the command is never written. A drop destroys the
// connection's socket first, so the driver raises its own MongoNetworkError and does what it
// does on a real network fault: marks the server unknown, clears the pool and retries a
// retryable read or write once.
//
// The hook is per client: the driver's internal `connectionType` client option (read by
// `makeConnection` in lib/cmap/connect.js whenever a pool or monitor opens a connection) is
// set to a factory that builds the driver's own `Connection` (lib/cmap/connection.js) and
// wraps that instance's `command(ns, cmd, options, responseType)`. Nothing global is patched.
import type { MongoClient } from 'mongodb';
import type { Decision, Engine } from '../engine.js';
import { HavocError } from '../errors.js';
import { optionalPeer } from '../peer.js';
import { clientClosed, decide, decideLatencyOnly, serveLatency } from './contract.js';

/**
 * The `mongodb` versions {@link instrumentMongo} knows the internals of, as a semver range:
 * from 6.4, where `Connection.command` became async and gained `established`, to the last 6.x.
 */
export const SUPPORTED_MONGODB_RANGE = '>=6.4.0 <7';

/** The error code an injected error carries when the policy's `error_code` is 0: MaxTimeMSExpired. */
export const DEFAULT_MONGO_ERROR_CODE = 50;

/** The server's `codeName` and `errmsg` for the codes an injected error is most often given. */
const CODE_NAMES: ReadonlyMap<number, [codeName: string, errmsg: string]> = new Map([
  [6, ['HostUnreachable', 'host unreachable']],
  [7, ['HostNotFound', 'host not found']],
  [50, ['MaxTimeMSExpired', 'operation exceeded time limit']],
  [89, ['NetworkTimeout', 'network timeout']],
  [91, ['ShutdownInProgress', 'The server is in quiesce mode and will shut down']],
  [112, ['WriteConflict', 'Write conflict during plan execution and yielding is disabled.']],
  [189, ['PrimarySteppedDown', 'operation was interrupted because the primary stepped down']],
  [262, ['ExceededTimeLimit', 'operation exceeded time limit']],
  [9001, ['SocketException', 'socket exception']],
  [10107, ['NotWritablePrimary', 'not primary']],
  [11000, ['DuplicateKey', 'E11000 duplicate key error']],
  [11600, ['InterruptedAtShutdown', 'interrupted at shutdown']],
  [11602, ['InterruptedDueToReplStateChange', 'operation was interrupted']],
  [13435, ['NotPrimaryNoSecondaryOk', 'not primary and secondaryOk=false']],
  [13436, ['NotPrimaryOrSecondary', 'not primary or secondary; cannot currently read from this replSet member']],
]);

// The codes a 4.4+ server labels RetryableWriteError on a retryable write (the driver's
// RETRYABLE_WRITE_ERROR_CODES, which it leaves to the server to label from wire version 9 on).
const RETRYABLE_WRITE_CODES: ReadonlySet<number> = new Set([6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);

type Document = Record<string, unknown>;

interface Session {
  inTransaction(): boolean;
}

interface CommandOptions {
  session?: Session;
  signal?: AbortSignal;
  willRetryWrite?: boolean;
}

type CommandFn = (ns: { db: string }, cmd: Document, options?: CommandOptions, responseType?: unknown) => Promise<unknown>;

/** What this module touches on the driver's `Connection`. */
interface ConnectionInternals {
  /** A number for a pooled connection; `<monitor>` or `<rtt>` for the topology's own. */
  id: unknown;
  /** False until the handshake (hello and authentication) is over. */
  established?: boolean;
  closed: boolean;
  socket: { destroy(): void; once(event: 'close', listener: () => void): unknown };
  command: CommandFn;
}

type ConnectionClass = new (stream: unknown, options: unknown) => ConnectionInternals;

interface ClientInternals {
  topology?: unknown;
  options: { connectionType?: unknown; autoEncrypter?: unknown; autoEncryption?: unknown };
}

type ServerErrorClass = new (description: Document) => Error;

interface Driver {
  MongoClient: abstract new (...args: never[]) => unknown;
  MongoServerError: ServerErrorClass;
}

const instrumented = new WeakSet<object>();

/**
 * Instruments a `MongoClient` of the official `mongodb` driver (6.4+, 6.x) in place, before it
 * connects, and returns it: every command on its connections is then decided as
 * `command db.collection`. Instrumenting twice changes nothing.
 *
 * @throws HavocError when `client` is not a MongoClient of the `mongodb` package havoc loads,
 *   that package is not in {@link SUPPORTED_MONGODB_RANGE}, the client is already connected, or it uses
 *   client-side field level encryption (whose connections the driver builds itself).
 */
export function instrumentMongo<T extends MongoClient>(client: T, engine: Engine): T {
  if (instrumented.has(client)) return client;
  const driver = optionalPeer<Driver>('mongodb');
  const base = optionalPeer<{ Connection?: ConnectionClass }>('mongodb/lib/cmap/connection')?.Connection;
  if (
    driver === null ||
    typeof base !== 'function' ||
    typeof (base as unknown as { prototype: { command?: unknown } }).prototype.command !== 'function'
  ) {
    throw new HavocError('instrumentMongo needs the mongodb driver (npm install mongodb@6)');
  }
  const version = optionalPeer<{ version?: string }>('mongodb/package.json')?.version ?? '';
  const [major, minor] = version.split('.').map(Number);
  if (major !== 6 || minor === undefined || !(minor >= 4)) {
    throw new HavocError(`instrumentMongo supports mongodb ${SUPPORTED_MONGODB_RANGE}; found ${version || 'an unknown version'}`);
  }
  if (!(client instanceof driver.MongoClient)) {
    throw new HavocError('instrumentMongo expects a MongoClient of the mongodb package havoc loads');
  }
  const internals = client as unknown as ClientInternals;
  if (internals.topology != null) {
    throw new HavocError('instrumentMongo must be called before the MongoClient connects: its connections are built when it connects');
  }
  if (internals.options.autoEncrypter != null || internals.options.autoEncryption != null) {
    throw new HavocError('instrumentMongo does not support autoEncryption: the driver builds those connections itself');
  }
  instrumented.add(client);
  // A connection type the application set itself (an internal option, but possible) is kept and wrapped.
  const Base = typeof internals.options.connectionType === 'function' ? (internals.options.connectionType as ConnectionClass) : base;
  const ServerError = driver.MongoServerError;
  // Called with `new` by the driver; returning an object makes that object the result.
  internals.options.connectionType = function HavocMongoConnection(stream: unknown, options: unknown): ConnectionInternals {
    const connection = new Base(stream, options);
    // The topology's monitoring connections only send hello.
    if (typeof connection.id === 'number') wrapCommand(connection, engine, ServerError);
    return connection;
  };
  return client;
}

function wrapCommand(connection: ConnectionInternals, engine: Engine, ServerError: ServerErrorClass): void {
  const original = connection.command;
  connection.command = function havocCommand(ns, cmd, options, responseType): Promise<unknown> {
    // The handshake (hello, authentication) is part of opening the connection, never a command to fault.
    if (connection.established === false) return original.call(connection, ns, cmd, options, responseType);
    const name = commandName(cmd);
    // A transaction's outcome is never faulted.
    if (name === undefined || name === 'commitTransaction' || name === 'abortTransaction') {
      return original.call(connection, ns, cmd, options, responseType);
    }
    const target = `${name} ${ns.db}.${collectionOf(name, cmd)}`;
    const decision = options?.session?.inTransaction() ? decideLatencyOnly(engine, 'mongo', target) : decide(engine, 'mongo', target);
    if (decision === null) return original.call(connection, ns, cmd, options, responseType);
    return act(decision, connection, original, ServerError, engine, [ns, cmd, options, responseType]);
  };
}

async function act(
  decision: Decision,
  connection: ConnectionInternals,
  original: CommandFn,
  ServerError: ServerErrorClass,
  engine: Engine,
  args: Parameters<CommandFn>,
): Promise<unknown> {
  const options = args[2];
  // An aborted operation skips the rest of its delay; the driver then throws its own abort error.
  if (decision.latencyMs > 0 && !(await serveLatency(decision.latencyMs, options?.signal))) clientClosed(engine, decision, 'mongo');
  else if (decision.drop) await dropConnection(connection);
  else if (decision.error) throw serverError(ServerError, decision.error.code, decision.error.body, options?.willRetryWrite === true);
  // After a drop the connection is closed and this throws the driver's MongoNetworkError.
  return original.apply(connection, args);
}

/** Destroys the socket and waits until the connection has seen it close, as after a network fault. */
function dropConnection(connection: ConnectionInternals): Promise<void> {
  if (connection.closed) return Promise.resolve();
  // The connection's own 'close' listener on the socket, registered first, has cleaned it up by then.
  const closed = new Promise<void>((resolve) => connection.socket.once('close', resolve));
  connection.socket.destroy();
  return closed;
}

/** The command's name: by the wire protocol, the first key of its document. */
function commandName(cmd: Document): string | undefined {
  for (const key in cmd) return key;
  return undefined;
}

/** The collection a command acts on; empty for commands on the database itself. */
function collectionOf(name: string, cmd: Document): string {
  const value = cmd[name];
  if (typeof value === 'string') return value;
  // getMore names its cursor's id first and the collection in `collection`.
  const collection = cmd.collection;
  return name === 'getMore' && typeof collection === 'string' ? collection : '';
}

/** The MongoServerError a server would have replied with, for the policy's `error_code`. */
function serverError(ServerError: ServerErrorClass, code: number, body: string | undefined, retryableWrite: boolean): Error {
  const errorCode = code === 0 ? DEFAULT_MONGO_ERROR_CODE : code;
  const [codeName, errmsg] = CODE_NAMES.get(errorCode) ?? ['InjectedFault', 'injected server error'];
  const reply: Document = { ok: 0, code: errorCode, codeName, errmsg: body || errmsg };
  // What a 4.4+ server adds on a retryable write; the driver then retries the write once.
  if (retryableWrite && RETRYABLE_WRITE_CODES.has(errorCode)) reply.errorLabels = ['RetryableWriteError'];
  return new ServerError(reply);
}
