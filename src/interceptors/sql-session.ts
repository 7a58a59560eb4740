// What the pg and mysql2 interceptors share: the transaction rule, per-connection ordering of
// delayed statements, and the table of injectable database errors.
import type { Decision, Engine } from '../engine.js';
import { decide, decideLatencyOnly } from './contract.js';
import { OrderedDelays } from './ordered.js';

/** How a statement affects the connection's transaction state. */
type StatementKind = 'begin' | 'end' | 'rollback-to' | 'other';

// Leading comments, whitespace and parentheses, then up to three words.
const LEADING_WORDS = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/|\()*([A-Za-z]+)(?:\s+([A-Za-z]+))?(?:\s+([A-Za-z]+))?/;

/** Classifies a raw statement by its first words (no N-API call, no normalization). */
function statementKind(sql: string): StatementKind {
  const words = LEADING_WORDS.exec(sql);
  if (words === null) return 'other';
  const first = (words[1] ?? '').toUpperCase();
  const second = (words[2] ?? '').toUpperCase();
  switch (first) {
    case 'BEGIN':
      return 'begin';
    case 'START':
      return second === 'TRANSACTION' ? 'begin' : 'other';
    case 'COMMIT':
    case 'END':
    case 'ABORT':
      return 'end';
    case 'ROLLBACK': {
      // ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] x keeps the transaction open.
      const third = (words[3] ?? '').toUpperCase();
      return second === 'TO' || ((second === 'WORK' || second === 'TRANSACTION') && third === 'TO') ? 'rollback-to' : 'end';
    }
    default:
      return 'other';
  }
}

/** One connection's state: whether it is inside a transaction, and its delayed statements in order. */
export class SqlSession extends OrderedDelays {
  inTransaction = false;

  constructor(private readonly engine: Engine) {
    super();
  }

  /**
   * Decides one statement under the transaction rule: BEGIN (checked as the command `BEGIN`)
   * may get any fault; inside a transaction only latency; COMMIT and ROLLBACK never.
   */
  plan(sql: string): Decision | null {
    switch (statementKind(sql)) {
      case 'begin': {
        const decision = decide(this.engine, 'sql', 'BEGIN');
        // A refused BEGIN never reaches the server: no transaction starts.
        if (decision === null || (decision.error === null && !decision.drop)) this.inTransaction = true;
        return decision;
      }
      case 'end':
        this.inTransaction = false;
        return null;
      case 'rollback-to':
        return null;
      default:
        return this.inTransaction ? decideLatencyOnly(this.engine, 'sql', sql) : decide(this.engine, 'sql', sql);
    }
  }
}

/** An injectable database error, as each driver reports it. */
export interface SqlFault {
  /** PostgreSQL SQLSTATE. */
  sqlState: string;
  severity: 'ERROR' | 'FATAL';
  /** MySQL/MariaDB symbol, errno and SQLSTATE. */
  mysqlCode: string;
  errno: number;
  mysqlState: string;
  message: string;
}

// `error_code` of a sql policy, read as a MySQL errno (an integer, unlike a SQLSTATE), and the
// PostgreSQL error that means the same thing.
const FAULTS: ReadonlyMap<number, SqlFault> = new Map<number, SqlFault>([
  [
    1053,
    {
      sqlState: '57P01',
      severity: 'FATAL',
      mysqlCode: 'ER_SERVER_SHUTDOWN',
      errno: 1053,
      mysqlState: '08S01',
      message: 'terminating connection due to administrator command',
    },
  ],
  [
    1927,
    {
      sqlState: '08006',
      severity: 'FATAL',
      mysqlCode: 'ER_CONNECTION_KILLED',
      errno: 1927,
      mysqlState: '70100',
      message: 'connection failure',
    },
  ],
  [
    1213,
    { sqlState: '40P01', severity: 'ERROR', mysqlCode: 'ER_LOCK_DEADLOCK', errno: 1213, mysqlState: '40001', message: 'deadlock detected' },
  ],
  [
    1205,
    {
      sqlState: '55P03',
      severity: 'ERROR',
      mysqlCode: 'ER_LOCK_WAIT_TIMEOUT',
      errno: 1205,
      mysqlState: 'HY000',
      message: 'lock wait timeout exceeded',
    },
  ],
  [
    1040,
    {
      sqlState: '53300',
      severity: 'FATAL',
      mysqlCode: 'ER_CON_COUNT_ERROR',
      errno: 1040,
      mysqlState: '08004',
      message: 'too many connections',
    },
  ],
  [
    3024,
    {
      sqlState: '57014',
      severity: 'ERROR',
      mysqlCode: 'ER_QUERY_TIMEOUT',
      errno: 3024,
      mysqlState: 'HY000',
      message: 'canceling statement due to statement timeout',
    },
  ],
]);

/** The error code 0 stands for. */
const DEFAULT_SQL_ERROR = 1053;

/** The fault for a policy's `error_code` (0 → 1053, admin shutdown); unknown codes keep their errno. */
export function sqlFault(code: number, body?: string): SqlFault {
  const known = FAULTS.get(code === 0 ? DEFAULT_SQL_ERROR : code);
  const fault = known ?? {
    sqlState: 'XX000',
    severity: 'ERROR',
    mysqlCode: 'ER_UNKNOWN_ERROR',
    errno: code,
    mysqlState: 'HY000',
    message: 'injected database error',
  };
  return body ? { ...fault, message: body } : fault;
}
