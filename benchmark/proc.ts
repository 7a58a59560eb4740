// Process CPU time from /proc (Linux), for the benchmarks that compare processes.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ). */
export const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** utime+stime (and, with `children`, cutime+cstime of waited-for children), in seconds. */
export function cpuOf(pid: number | 'self', children = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The fields after the command name, whose closing parenthesis is the last one in the line.
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const own = (f[11] ?? 0) + (f[12] ?? 0);
  return (children ? own + (f[13] ?? 0) + (f[14] ?? 0) : own) / CLOCK_TICKS;
}
