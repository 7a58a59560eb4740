import mysql from 'mysql2';
import mysqlPromise from 'mysql2/promise';
import { instrumentMysql, validateConfig, type Engine } from 'havoc';
import { chaosEngine, faults } from './fixtures/chaos.js';
import { URLS, serverTest } from './fixtures/servers.js';
import { transferInvariant } from './fixtures/transfers.js';

const test = serverTest('mysql');

function pool(engine: Engine, connectionLimit = 4): mysqlPromise.Pool {
  return instrumentMysql(mysqlPromise.createPool({ uri: URLS.mysql, connectionLimit }), engine);
}

function allConnections(p: mysqlPromise.Pool): number {
  return (p.pool as unknown as { _allConnections: { length: number } })._allConnections.length;
}

test('no matching policy: queries pass untouched', async (t) => {
  const engine = chaosEngine([{ name: 'other', type: 'sql', target: 'no_such_table', error_chance: 1 }]);
  const p = pool(engine);
  const [rows] = await p.query<mysqlPromise.RowDataPacket[]>('SELECT ? + 1 AS n', [41]);
  t.is(rows[0]?.n, 42);
  t.is(await faults(engine, 'error'), 0);
  await p.end();
});

test('error: mysql2-shaped errors (code, errno, sqlState) for query and execute, promise and callback APIs', async (t) => {
  const engine = chaosEngine([
    { name: 'shutdown', type: 'sql', target: 'information_schema', error_chance: 1 },
    { name: 'deadlock', type: 'sql', target: 'SELECT 2', error_chance: 1, error_code: 1213 },
  ]);
  const p = pool(engine);
  const shutdown = await t.throwsAsync(p.query('select count(*) from information_schema.tables'));
  t.like(shutdown, { code: 'ER_SERVER_SHUTDOWN', errno: 1053, sqlState: '08S01' });
  const deadlock = await t.throwsAsync(p.execute('SELECT 2'));
  t.like(deadlock, { code: 'ER_LOCK_DEADLOCK', errno: 1213, sqlState: '40001', sqlMessage: 'deadlock detected', sql: 'SELECT 2' });
  const callbackConnection = instrumentMysql(mysql.createConnection({ uri: URLS.mysql }), engine);
  const viaCallback = await new Promise<unknown>((resolve) => callbackConnection.query('SELECT 2', (error) => resolve(error)));
  t.like(viaCallback, { code: 'ER_LOCK_DEADLOCK', errno: 1213 });
  // Event-emitter style: the command object is returned at once and emits the error.
  const viaEvents = await new Promise<unknown>((resolve) => callbackConnection.query('SELECT 2').on('error', resolve));
  t.like(viaEvents, { code: 'ER_LOCK_DEADLOCK' });
  const [rows] = await p.query<mysqlPromise.RowDataPacket[]>('SELECT 7 AS n');
  t.is(rows[0]?.n, 7);
  t.is(await faults(engine, 'error'), 4);
  await new Promise((resolve) => callbackConnection.end(resolve));
  await p.end();
});

test('latency: served before the statement, and statements issued meanwhile keep their order', async (t) => {
  const engine = chaosEngine([{ name: 'slow', type: 'sql', target: 'SELECT 1 AS FIRST', latency_chance: 1, latency_duration: '30ms' }]);
  const connection = instrumentMysql(await mysqlPromise.createConnection({ uri: URLS.mysql }), engine);
  const order: string[] = [];
  await Promise.all([
    connection.query('select 1 as first').then(() => order.push('first')),
    connection.query('select 2 as second').then(() => order.push('second')),
  ]);
  t.deepEqual(order, ['first', 'second']);
  t.is(await faults(engine, 'latency', 'slow'), 1);
  await connection.end();
});

test('drop: the socket is destroyed, mysql2 reports the lost connection and the pool replaces it', async (t) => {
  const engine = chaosEngine([{ name: 'cut', type: 'sql', target: 'SLEEP', drop_connection: true }]);
  const p = pool(engine, 2);
  await p.query('SELECT 1');
  t.is(allConnections(p), 1);
  // mysql2's own error for a statement on a connection whose socket died under it.
  const lost = await t.throwsAsync<Error & { code: string; fatal: boolean }>(p.query('SELECT SLEEP(0)'));
  t.true(lost.fatal);
  t.regex(lost.code, /^(ERR_STREAM_DESTROYED|PROTOCOL_CONNECTION_LOST)$/);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(allConnections(p), 0, 'the pool discarded the dead connection');
  const [rows] = await p.query<mysqlPromise.RowDataPacket[]>('SELECT 3 AS n');
  t.is(rows[0]?.n, 3);
  await p.end();
});

test('default protections: CREATE, ALTER, DROP and TRUNCATE are never faulted', async (t) => {
  const engine = chaosEngine([{ name: 'everything', type: 'sql', target: 'all', error_chance: 1 }]);
  const p = pool(engine, 1);
  const table = `havoc_protect_${process.pid}`;
  await p.query(`CREATE TABLE ${table} (id int)`);
  await p.query(`ALTER TABLE ${table} ADD COLUMN v int`);
  await p.query(`TRUNCATE ${table}`);
  await p.query(`DROP TABLE ${table}`);
  await t.throwsAsync(p.query('SELECT 1'), { code: 'ER_SERVER_SHUTDOWN' });
  await p.end();
});

test('transaction rule: BEGIN may fail; inside only latency; COMMIT and ROLLBACK never', async (t) => {
  const begin = chaosEngine([{ name: 'begin', type: 'sql', target: 'all', error_chance: 1 }]);
  const refused = instrumentMysql(await mysqlPromise.createConnection({ uri: URLS.mysql }), begin);
  await t.throwsAsync(refused.beginTransaction(), { code: 'ER_SERVER_SHUTDOWN' });
  await t.throwsAsync(refused.query('SELECT 1'), { code: 'ER_SERVER_SHUTDOWN' }, 'no transaction was started');
  await refused.end();

  const engine = chaosEngine([
    { name: 'statements', type: 'sql', target: 'SELECT|SAVEPOINT', error_chance: 1, latency_chance: 1, latency_duration: 1 },
    { name: 'ends', type: 'sql', target: '^(COMMIT|ROLLBACK)', error_chance: 1, drop_connection: true },
  ]);
  const connection = instrumentMysql(await mysqlPromise.createConnection({ uri: URLS.mysql }), engine);
  await connection.beginTransaction();
  const [rows] = await connection.query<mysqlPromise.RowDataPacket[]>('SELECT 5 AS n');
  t.is(rows[0]?.n, 5, 'inside a transaction, only latency');
  await connection.query('SAVEPOINT s1');
  await connection.query('ROLLBACK TO SAVEPOINT s1');
  await connection.execute('SELECT 6');
  await connection.commit();
  await t.throwsAsync(connection.query('SELECT 1'), { code: 'ER_SERVER_SHUTDOWN' }, 'after COMMIT, errors fire again');
  await connection.query('BEGIN');
  await connection.rollback();
  t.is(await faults(engine, 'latency', 'statements'), 4);
  t.is(await faults(engine, 'drop'), 0);
  await connection.end();
});

test('invariant: 2,000 transfers under 50% error and latency chaos keep the total, never fault COMMIT/ROLLBACK, leak no connection', async (t) => {
  const engine = chaosEngine([
    { name: 'chaos', type: 'sql', target: 'all', error_chance: 0.5, latency_chance: 0.5, latency_duration: '1ms' },
    { name: 'cut-begin', type: 'sql', target: '^(BEGIN|START TRANSACTION)$', drop_connection: true, error_chance: 0.02 },
  ]);
  const limit = 8;
  const p = pool(engine, limit);
  const setup = await mysqlPromise.createConnection({ uri: URLS.mysql });
  const table = `havoc_accounts_${process.pid}`;
  await setup.query(`CREATE TABLE ${table} (id int PRIMARY KEY, balance int NOT NULL, CHECK (balance >= 0)) ENGINE=InnoDB`);
  await setup.query(`INSERT INTO ${table} (id, balance) VALUES ${Array.from({ length: 10 }, (_, i) => `(${i + 1}, 1000)`).join(', ')}`);
  try {
    const report = await transferInvariant({
      transfers: 2000,
      concurrency: 16,
      accounts: 10,
      transfer: async (from, to, amount) => {
        const connection = await p.getConnection();
        let broken = false;
        try {
          try {
            await connection.beginTransaction();
          } catch {
            broken = true;
            return 'refused';
          }
          try {
            const [first, second] = from < to ? [from, to] : [to, from];
            await connection.query(`SELECT id FROM ${table} WHERE id IN (?, ?) ORDER BY id FOR UPDATE`, [first, second]);
            await connection.execute(`UPDATE ${table} SET balance = balance - ? WHERE id = ?`, [amount, from]);
            await connection.execute(`UPDATE ${table} SET balance = balance + ? WHERE id = ?`, [amount, to]);
          } catch {
            await connection.rollback().catch((error: Error) => {
              broken = true;
              throw new Error(`ROLLBACK failed: ${error.message}`);
            });
            return 'rolled-back';
          }
          await connection.commit().catch((error: Error) => {
            broken = true;
            throw new Error(`COMMIT failed: ${error.message}`);
          });
          return 'committed';
        } finally {
          if (broken) connection.destroy();
          else connection.release();
        }
      },
    });
    const [rows] = await setup.query<mysqlPromise.RowDataPacket[]>(`SELECT SUM(balance) AS total FROM ${table}`);
    t.is(Number(rows[0]?.total), 10_000, 'the total balance is unchanged');
    t.is(report.failed, 0, `no COMMIT or ROLLBACK was ever faulted: ${report.failures.join('; ')}`);
    t.true(report.committed > 0 && report.refused > 0 && report.rolledBack > 0, JSON.stringify(report));
    t.true((await faults(engine, 'drop', 'cut-begin')) > 0);
    t.true((await faults(engine, 'latency', 'chaos')) > 0);
    const core = p.pool as unknown as {
      _allConnections: { length: number };
      _freeConnections: { length: number };
      _connectionQueue: { length: number };
    };
    t.is(core._connectionQueue.length, 0, 'nothing waits for a connection');
    t.is(core._freeConnections.length, core._allConnections.length, 'every connection is back in the pool');
    t.true(core._allConnections.length <= limit);
    // Every pooled session, asked with chaos off: none is left inside a transaction.
    engine.update(validateConfig({ version: 1, policies: [] }));
    const held = await Promise.all(Array.from({ length: core._allConnections.length }, () => p.getConnection()));
    const states = await Promise.all(
      held.map(async (c) => (await c.query<mysqlPromise.RowDataPacket[]>('SELECT @@in_transaction AS open'))[0][0]?.open),
    );
    held.forEach((c) => c.release());
    t.deepEqual(
      states,
      states.map(() => 0),
      'no server session is left in a transaction',
    );
    t.log(JSON.stringify(report));
  } finally {
    await p.end();
    await setup.query(`DROP TABLE ${table}`);
    await setup.end();
  }
});
