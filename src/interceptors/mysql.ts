// mysql2 (callback and promise APIs): every statement reaches the server as a command added to
// its connection, so that is where havoc decides. `query()`/`execute()` still return their
// command object at once (event-emitter style keeps working); a delayed command is added later,
// in order. Errors carry mysql2's `code`/`errno`/`sqlState`/`sqlMessage`; a drop destroys the
// connection's socket, so the command fails with mysql2's own PROTOCOL_CONNECTION_LOST and a
// pool discards the connection.
import type { Engine } from '../engine.js';
import { HavocError } from '../errors.js';
import { SqlSession, sqlFault } from './sql-session.js';

interface Command {
  constructor: { name: string };
  sql?: unknown;
  onResult?: (error: Error | null) => void;
  emit(event: string, ...args: unknown[]): boolean;
}

interface ConnectionInternals {
  addCommand(command: Command): unknown;
  stream?: { destroy(): void };
}

interface PoolInternals {
  _allConnections?: { toArray(): unknown[] };
  on(event: 'connection', listener: (connection: unknown) => void): unknown;
}

/** A mysql2 server error, as mysql2 builds them from an error packet. */
export interface MysqlError extends Error {
  code: string;
  errno: number;
  sqlState: string;
  sqlMessage: string;
  sql?: string;
  fatal?: boolean;
}

const instrumented = new WeakSet<object>();

/**
 * Instruments a mysql2 pool or connection, callback (`mysql2`) or promise (`mysql2/promise`)
 * flavour, in place; for a pool, every connection it has and will create. Returns its argument.
 */
export function instrumentMysql<T extends object>(target: T, engine: Engine): T {
  const core = coreOf(target);
  if (core === null) throw new HavocError('instrumentMysql expects a mysql2 Pool, PoolConnection or Connection (callback or promise API)');
  if (isPool(core)) {
    if (instrumented.has(core)) return target;
    instrumented.add(core);
    core.on('connection', (connection) => instrumentConnection(connection as ConnectionInternals, engine));
    for (const connection of core._allConnections?.toArray() ?? []) instrumentConnection(connection as ConnectionInternals, engine);
  } else {
    instrumentConnection(core, engine);
  }
  return target;
}

/** The callback-API object behind a promise wrapper (`.pool` / `.connection`), or `target`. */
function coreOf(target: object): PoolInternals | ConnectionInternals | null {
  for (const candidate of [target, (target as { pool?: object }).pool, (target as { connection?: object }).connection]) {
    if (typeof candidate !== 'object' || candidate === null) continue;
    if (isPool(candidate)) return candidate;
    if (typeof (candidate as ConnectionInternals).addCommand === 'function') return candidate as ConnectionInternals;
  }
  return null;
}

function isPool(target: object): target is PoolInternals {
  return '_allConnections' in target && typeof (target as PoolInternals).on === 'function';
}

function instrumentConnection(connection: ConnectionInternals, engine: Engine): void {
  if (instrumented.has(connection)) return;
  instrumented.add(connection);
  const original = connection.addCommand;
  const session = new SqlSession(engine);
  connection.addCommand = function havocAddCommand(command: Command): unknown {
    const name = command.constructor.name;
    const sql = (name === 'Query' || name === 'Execute') && typeof command.sql === 'string' ? command.sql : undefined;
    const decision = sql === undefined ? null : session.plan(sql);
    if (decision === null && !session.busy) return original.call(connection, command);
    session.defer(decision?.latencyMs ?? 0, () => {
      if (decision?.drop) {
        connection.stream?.destroy();
        original.call(connection, command);
      } else if (decision?.error) {
        fail(command, mysqlError(decision.error.code, decision.error.body, sql));
      } else {
        original.call(connection, command);
      }
    });
    return command;
  };
}

/** Ends a command with `error` the way mysql2 does: through its callback, else as an 'error' event. */
function fail(command: Command, error: MysqlError): void {
  if (command.onResult) command.onResult(error);
  else command.emit('error', error);
  // Promise-less, callback-less commands (streams) also wait for 'end'.
  command.emit('end');
}

/** A server error for the policy's `error_code` (a MySQL errno; 0 → 1053 ER_SERVER_SHUTDOWN). */
function mysqlError(code: number, body?: string, sql?: string): MysqlError {
  const fault = sqlFault(code, body);
  const error = new Error(fault.message) as MysqlError;
  error.code = fault.mysqlCode;
  error.errno = fault.errno;
  error.sqlState = fault.mysqlState;
  error.sqlMessage = fault.message;
  if (sql !== undefined) error.sql = sql;
  return error;
}
