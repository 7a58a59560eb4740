/**
 * Go-style durations (`1500ms`, `3s`, `1h30m`, `1.5s`, `250us`), the format pastaay's
 * YAML uses. havoc represents every duration as a number of milliseconds.
 */

const NS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  '\u00b5s': 1e3, // µ MICRO SIGN, what Go prints
  '\u03bcs': 1e3, // μ GREEK SMALL LETTER MU, what people often type
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** One past Go's limit, an int64 of nanoseconds (about 292 years); 2^63 - 1 is not a double. */
const NS_LIMIT = 2 ** 63;

const COMPONENT = /(\d*)(?:\.(\d*))?([^\d.]*)/y;

/**
 * Parses a Go-style duration into milliseconds. A number is taken as milliseconds already.
 * Like Go, accepts a sign, several components (`1h30m`), fractions (`1.5s`) and a bare `0`.
 * Throws an `Error` saying what is wrong.
 */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw new Error(`invalid duration ${input}: must be a finite number of milliseconds`);
    return input;
  }
  if (typeof input !== 'string') throw new TypeError(`invalid duration: expected a string or a number, got ${typeof input}`);
  const text = input.trim();
  const sign = text.startsWith('-') ? -1 : 1;
  const body = text.replace(/^[-+]/, '');
  if (body === '0') return 0;
  if (body === '') throw invalid(input, 'it is empty');
  const ns = sumComponents(body, input);
  if (ns >= NS_LIMIT) throw invalid(input, 'it is too large');
  // Dividing exact integer nanoseconds gives the closest double: 1.1s is exactly 1100.
  return (sign * ns) / 1e6 + 0; // `+ 0` turns -0 into 0
}

function sumComponents(body: string, input: string): number {
  let ns = 0;
  COMPONENT.lastIndex = 0;
  while (COMPONENT.lastIndex < body.length) {
    const match = COMPONENT.exec(body);
    const [, whole = '', fraction = '', unit = ''] = match ?? [];
    if (!match || (whole === '' && fraction === '')) throw invalid(input, 'expected a number followed by a unit');
    if (unit === '' && COMPONENT.lastIndex < body.length) throw invalid(input, 'expected a number followed by a unit');
    const number = fraction ? `${whole}.${fraction}` : whole;
    if (unit === '') {
      const hint = number === body ? ` (for milliseconds write "${number}ms")` : '';
      throw invalid(input, `missing unit after ${number}${hint}`);
    }
    const scale = NS_PER_UNIT[unit];
    if (scale === undefined) throw invalid(input, `unknown unit "${unit}" (units are ns, us, ms, s, m, h)`);
    ns += Number(whole || '0') * scale + Math.round(Number(`0.${fraction || '0'}`) * scale);
  }
  return ns;
}

function invalid(input: string, reason: string): Error {
  return new Error(`invalid duration ${JSON.stringify(input)}: ${reason}`);
}

/**
 * The shortest Go-style form of a number of milliseconds: 1500 → `1.5s`, 90000 → `1m30s`,
 * 0.25 → `250µs`, 0 → `0s`. `parseDuration(formatDuration(x))` gives back x to the nanosecond.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`cannot format ${ms} as a duration`);
  const total = Math.round(Math.abs(ms) * 1e6);
  if (total === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  if (total < 1e3) return `${sign}${total}ns`;
  if (total < 1e6) return `${sign}${decimal(total, 1e3)}\u00b5s`;
  if (total < 1e9) return `${sign}${decimal(total, 1e6)}ms`;
  const hours = Math.floor(total / 3600e9);
  const minutes = Math.floor((total - hours * 3600e9) / 60e9);
  const rest = total - hours * 3600e9 - minutes * 60e9;
  return sign + (hours ? `${hours}h` : '') + (minutes ? `${minutes}m` : '') + (rest ? `${decimal(rest, 1e9)}s` : '');
}

/** `value / unit` written exactly, without trailing zeros (integers only, so no float noise). */
function decimal(value: number, unit: number): string {
  const whole = Math.floor(value / unit);
  const fraction = value - whole * unit;
  if (fraction === 0) return String(whole);
  const digits = String(unit).length - 1;
  return `${whole}.${String(fraction).padStart(digits, '0').replace(/0+$/, '')}`;
}
