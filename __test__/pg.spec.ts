import pg from 'pg';
import { instrumentPg, type Engine } from 'havoc';
import { chaosEngine, faults } from './fixtures/chaos.js';
import { URLS, serverTest } from './fixtures/servers.js';
import { transferInvariant } from './fixtures/transfers.js';

const test = serverTest('pg');
const APP = `havoc-pg-spec-${process.pid}`;
const ignore = (): void => {};

function pool(engine: Engine, max = 4): pg.Pool {
  return instrumentPg(new pg.Pool({ connectionString: URLS.pg, max, application_name: APP }), engine);
}

test('no matching policy: queries pass untouched', async (t) => {
  const engine = chaosEngine([{ name: 'other', type: 'sql', target: 'no_such_table', error_chance: 1 }]);
  const p = pool(engine);
  const { rows } = await p.query<{ n: number }>('SELECT $1::int + 1 AS n', [41]);
  t.is(rows[0]?.n, 42);
  t.is(await faults(engine, 'error'), 0);
  await p.end();
});

test('error: pg DatabaseError with a real SQLSTATE, promise and callback styles', async (t) => {
  const engine = chaosEngine([
    { name: 'shutdown', type: 'sql', target: 'FROM pg_class', error_chance: 1 },
    { name: 'deadlock', type: 'sql', target: 'pg_namespace', error_chance: 1, error_code: 1213, error_body: 'deadlock detected (havoc)' },
  ]);
  const client = instrumentPg(new pg.Client({ connectionString: URLS.pg, application_name: APP }), engine);
  await client.connect();
  const shutdown = await t.throwsAsync(client.query('select count(*) from pg_class'), { instanceOf: pg.DatabaseError });
  t.like(shutdown, { code: '57P01', severity: 'FATAL', message: 'terminating connection due to administrator command' });
  const deadlock = await new Promise<Error | null>((resolve) =>
    client.query('SELECT 1 FROM pg_namespace LIMIT 1', (error) => resolve(error)),
  );
  t.true(deadlock instanceof pg.DatabaseError);
  t.like(deadlock, { code: '40P01', message: 'deadlock detected (havoc)' });
  // The injected error never reached the server: the connection is still usable.
  t.is((await client.query('SELECT 7 AS n')).rows[0].n, 7);
  t.is(await faults(engine, 'error', 'shutdown'), 1);
  t.is(await faults(engine, 'error', 'deadlock'), 1);
  await client.end();
});

test('targets are regexes over the normalized statement; a bare word matches a whole word', async (t) => {
  const engine = chaosEngine([{ name: 'orders', type: 'sql', target: 'orders', error_chance: 1 }]);
  const client = instrumentPg(new pg.Client({ connectionString: URLS.pg, application_name: APP }), engine);
  await client.connect();
  await t.throwsAsync(client.query(`select /* a comment */ 1 from (select 1) as orders`), { instanceOf: pg.DatabaseError });
  t.is((await client.query('select 1 as n from (select 1) as orders_archive')).rows[0].n, 1);
  await client.end();
});

test('latency: served before the query, and statements issued meanwhile keep their order', async (t) => {
  const engine = chaosEngine([{ name: 'slow', type: 'sql', target: 'SELECT 1 AS FIRST', latency_chance: 1, latency_duration: '30ms' }]);
  const client = instrumentPg(new pg.Client({ connectionString: URLS.pg, application_name: APP }), engine);
  await client.connect();
  const order: string[] = [];
  const first = client.query('select 1 as first').then(() => order.push('first'));
  const second = client.query('select 2 as second').then(() => order.push('second'));
  await Promise.all([first, second]);
  t.deepEqual(order, ['first', 'second']);
  t.is(await faults(engine, 'latency', 'slow'), 1);
  await client.end();
});

test('drop: the socket is destroyed, pg reports the dead connection and the pool replaces the client', async (t) => {
  const engine = chaosEngine([{ name: 'cut', type: 'sql', target: 'pg_sleep', drop_connection: true }]);
  const p = pool(engine, 2);
  await p.query('SELECT 1');
  t.is(p.totalCount, 1);
  await t.throwsAsync(p.query('SELECT pg_sleep(0)'), { message: /Connection terminated unexpectedly/ });
  t.is(p.totalCount, 0, 'the pool discarded the dead client');
  t.is((await p.query('SELECT 3 AS n')).rows[0].n, 3);
  t.is(await faults(engine, 'drop', 'cut'), 1);
  await p.end();
});

test('default protections: CREATE, ALTER, DROP and TRUNCATE are never faulted', async (t) => {
  const engine = chaosEngine([{ name: 'everything', type: 'sql', target: 'all', error_chance: 1 }]);
  const client = instrumentPg(new pg.Client({ connectionString: URLS.pg, application_name: APP }), engine);
  await client.connect();
  const table = `havoc_protect_${process.pid}`;
  await client.query(`CREATE TABLE ${table} (id int)`);
  await client.query(`ALTER TABLE ${table} ADD COLUMN v int`);
  await client.query(`TRUNCATE ${table}`);
  await client.query(`DROP TABLE ${table}`);
  await t.throwsAsync(client.query('SELECT 1'), { instanceOf: pg.DatabaseError });
  await client.end();
});

test('transaction rule: BEGIN may fail', async (t) => {
  const engine = chaosEngine([{ name: 'everything', type: 'sql', target: 'all', error_chance: 1 }]);
  const client = instrumentPg(new pg.Client({ connectionString: URLS.pg, application_name: APP }), engine);
  await client.connect();
  await t.throwsAsync(client.query('BEGIN'), { code: '57P01' });
  await t.throwsAsync(client.query('start transaction isolation level serializable'), { code: '57P01' });
  // The refused BEGIN never started a transaction: statements are still fully faulted.
  await t.throwsAsync(client.query('SELECT 1'), { code: '57P01' });
  await client.end();
});

test('transaction rule: inside a transaction only latency; COMMIT and ROLLBACK never', async (t) => {
  const engine = chaosEngine([
    { name: 'statements', type: 'sql', target: 'SELECT|SAVEPOINT|RELEASE', error_chance: 1, latency_chance: 1, latency_duration: 1 },
    { name: 'ends', type: 'sql', target: '^(COMMIT|ROLLBACK|END)', error_chance: 1, drop_connection: true },
  ]);
  const client = instrumentPg(new pg.Client({ connectionString: URLS.pg, application_name: APP }), engine);
  await client.connect();
  await client.query('BEGIN');
  t.is((await client.query('SELECT 5 AS n')).rows[0].n, 5, 'inside a transaction, only latency');
  await client.query('SAVEPOINT s1');
  await client.query('ROLLBACK TO SAVEPOINT s1');
  t.is((await client.query('SELECT 6 AS n')).rows[0].n, 6, 'still inside after ROLLBACK TO');
  await client.query('RELEASE SAVEPOINT s1');
  await client.query('COMMIT');
  await t.throwsAsync(client.query('SELECT 1'), { code: '57P01' }, 'after COMMIT, errors fire again');
  await client.query('BEGIN');
  await client.query('SELECT 1');
  await client.query('ROLLBACK');
  await client.query('END'); // outside a transaction: never faulted (the server only warns)
  t.is(await faults(engine, 'latency', 'statements'), 6);
  t.is(await faults(engine, 'error'), 1);
  t.is(await faults(engine, 'drop'), 0);
  await client.end();
});

test('invariant: 2,000 transfers under 50% error and latency chaos keep the total, never fault COMMIT/ROLLBACK, leak no client', async (t) => {
  const engine = chaosEngine([
    { name: 'chaos', type: 'sql', target: 'all', error_chance: 0.5, latency_chance: 0.5, latency_duration: '1ms' },
    { name: 'cut-begin', type: 'sql', target: '^BEGIN$', drop_connection: true, error_chance: 0.02 },
  ]);
  const max = 8;
  const p = pool(engine, max);
  const setup = new pg.Client({ connectionString: URLS.pg });
  await setup.connect();
  const table = `havoc_accounts_${process.pid}`;
  await setup.query(`CREATE TABLE ${table} (id int PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0))`);
  await setup.query(`INSERT INTO ${table} SELECT g, 1000 FROM generate_series(1, 10) g`);
  try {
    const report = await transferInvariant({
      transfers: 2000,
      concurrency: 16,
      accounts: 10,
      transfer: async (from, to, amount) => {
        const client = await p.connect();
        client.on('error', ignore); // a dropped connection also surfaces here; the query already failed
        let broken: Error | undefined;
        try {
          try {
            await client.query('BEGIN');
          } catch (error) {
            broken = error as Error;
            return 'refused';
          }
          try {
            const [first, second] = from < to ? [from, to] : [to, from];
            await client.query(`SELECT id FROM ${table} WHERE id IN ($1, $2) ORDER BY id FOR UPDATE`, [first, second]);
            await client.query(`UPDATE ${table} SET balance = balance - $2 WHERE id = $1`, [from, amount]);
            await client.query(`UPDATE ${table} SET balance = balance + $2 WHERE id = $1`, [to, amount]);
          } catch {
            await client.query('ROLLBACK').catch((error: Error) => {
              broken = error;
              throw new Error(`ROLLBACK failed: ${error.message}`);
            });
            return 'rolled-back';
          }
          await client.query('COMMIT').catch((error: Error) => {
            broken = error;
            throw new Error(`COMMIT failed: ${error.message}`);
          });
          return 'committed';
        } finally {
          client.off('error', ignore);
          client.release(broken);
        }
      },
    });
    const { rows } = await setup.query<{ total: string }>(`SELECT sum(balance) AS total FROM ${table}`);
    t.is(Number(rows[0]?.total), 10_000, 'the total balance is unchanged');
    t.is(report.failed, 0, 'no COMMIT or ROLLBACK was ever faulted');
    t.true(report.committed > 0 && report.refused > 0 && report.rolledBack > 0, JSON.stringify(report));
    t.true((await faults(engine, 'drop', 'cut-begin')) > 0);
    t.true((await faults(engine, 'latency', 'chaos')) > 0);
    // The pool: nothing checked out, nothing waiting, never more than max.
    t.is(p.waitingCount, 0);
    t.is(p.idleCount, p.totalCount);
    t.true(p.totalCount <= max);
    const stuck = await setup.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'`, [
      APP,
    ]);
    t.is(stuck.rows[0].n, 0, 'no server session is left in a transaction');
    t.log(JSON.stringify(report));
  } finally {
    await p.end();
    await setup.query(`DROP TABLE ${table}`);
    await setup.end();
  }
});
