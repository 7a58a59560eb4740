// node-postgres (`pg`): every query of an instrumented Client, or of every client of a Pool
// (present and future), is decided under the transaction rule. Errors are pg's own
// DatabaseError with a real SQLSTATE; a drop destroys the client's socket, so the query fails
// with pg's own "Connection terminated unexpectedly" and the pool discards the dead client.
import type { Client, Pool, PoolClient } from 'pg';
import type { Engine } from '../engine.js';
import { HavocError } from '../errors.js';
import { optionalPeer } from '../peer.js';
import { SqlSession, sqlFault } from './sql-session.js';

type QueryFn = (this: unknown, config: unknown, values?: unknown, callback?: unknown) => unknown;
type Callback = (error: Error | null, result?: unknown) => void;

interface ClientInternals {
  query: QueryFn;
  connection?: { stream?: { destroy(): void } };
}

interface Submittable {
  submit: (...args: unknown[]) => unknown;
  handleError?: (error: Error, connection: unknown) => void;
}

interface PoolInternals {
  _clients?: unknown[];
}

const instrumented = new WeakSet<object>();

/**
 * Instruments a `pg.Pool` (every client it has and will create) or a single `pg.Client`,
 * in place. Returns its argument. Instrumenting twice changes nothing.
 */
export function instrumentPg<T extends Pool | Client | PoolClient>(target: T, engine: Engine): T {
  if (isPool(target)) {
    if (instrumented.has(target)) return target;
    instrumented.add(target);
    // 'connect' is emitted for each new client before the pool hands it out.
    target.on('connect', (client) => instrumentClient(client as unknown as ClientInternals, engine));
    for (const client of (target as unknown as PoolInternals)._clients ?? []) instrumentClient(client as ClientInternals, engine);
    return target;
  }
  if (typeof (target as unknown as ClientInternals).query !== 'function') {
    throw new HavocError('instrumentPg expects a pg.Pool or pg.Client');
  }
  instrumentClient(target as unknown as ClientInternals, engine);
  return target;
}

function isPool(target: unknown): target is Pool {
  return typeof target === 'object' && target !== null && 'totalCount' in target && 'idleCount' in target;
}

function instrumentClient(client: ClientInternals, engine: Engine): void {
  if (instrumented.has(client)) return;
  instrumented.add(client);
  const original = client.query;
  const session = new SqlSession(engine);
  client.query = function havocQuery(this: unknown, config: unknown, values?: unknown, callback?: unknown): unknown {
    const sql = typeof config === 'string' ? config : textOf(config);
    // Not a query pg understands: let pg throw its own error.
    if (sql === undefined) return original.call(client, config, values, callback);
    const decision = session.plan(sql);
    if (decision === null && !session.busy) return original.call(client, config, values, callback);

    const send = (): unknown => original.call(client, config, values, callback);
    const latencyMs = decision?.latencyMs ?? 0;
    const failure = decision?.drop ? null : decision?.error ? databaseError(decision.error.code, decision.error.body) : null;
    const drop = decision?.drop === true;
    const act = (): unknown => {
      if (drop) client.connection?.stream?.destroy();
      return send();
    };

    if (isSubmittable(config)) {
      session.defer(latencyMs, () => {
        if (failure) config.handleError?.(failure, client.connection);
        else guard(act);
      });
      return config;
    }
    const cb = (typeof values === 'function' ? values : typeof callback === 'function' ? callback : undefined) as Callback | undefined;
    if (cb) {
      session.defer(latencyMs, () => {
        if (failure) cb(failure);
        else guard(act, cb);
      });
      return undefined;
    }
    return new Promise((resolve, reject) => {
      session.defer(latencyMs, () => {
        if (failure) reject(failure);
        else guard(() => resolve(act()), reject);
      });
    });
  } as QueryFn;
}

function textOf(config: unknown): string | undefined {
  if (typeof config !== 'object' || config === null) return undefined;
  const text = (config as { text?: unknown }).text;
  return typeof text === 'string' ? text : undefined;
}

function isSubmittable(config: unknown): config is Submittable {
  return typeof config === 'object' && config !== null && typeof (config as Submittable).submit === 'function';
}

/** Runs `fn` later, handing a synchronous throw (pg's argument checks) to `onError`. */
function guard(fn: () => unknown, onError?: (error: Error) => void): void {
  try {
    fn();
  } catch (error) {
    if (onError) onError(error instanceof Error ? error : new Error(String(error)));
    else throw error;
  }
}

type DatabaseErrorClass = new (message: string, length: number, name: 'error') => Error & Record<string, unknown>;
/** A DatabaseError as the server would have sent it, for the policy's `error_code`. */
function databaseError(code: number, body?: string): Error {
  const fault = sqlFault(code, body);
  // pg's own DatabaseError class (from the application's `pg`), so `instanceof` holds.
  const Class = optionalPeer<{ DatabaseError?: DatabaseErrorClass }>('pg')?.DatabaseError;
  const error: Error & Record<string, unknown> = Class
    ? new Class(fault.message, fault.message.length, 'error')
    : (Object.assign(new Error(fault.message), { name: 'error' }) as Error & Record<string, unknown>);
  error.severity = fault.severity;
  error.code = fault.sqlState;
  error.routine = 'havoc';
  return error;
}
