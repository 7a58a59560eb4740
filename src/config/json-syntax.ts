/** The first syntax error of a JSON text, for `parseConfig(text, { format: 'json' })`. */

const JSON_WHITESPACE = /[ \t\n\r]*/y;
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const JSON_LITERAL = /true|false|null/y;

/**
 * Where JSON.parse failed, and why, as an offset and a message.
 *
 * Kept because nothing else gives an exact position: Node 20's `JSON.parse` messages carry none
 * for an unexpected token (`Unexpected token ']', "..." is not valid JSON`) and differ between
 * Node versions, and the yaml package, reading JSON as YAML 1.2 flow, accepts much that JSON
 * refuses (trailing commas, single quotes, unquoted keys, `01`, `NaN`, raw newlines in strings)
 * and reports what it refuses as YAML. Iterative, so any depth is fine.
 */
export function findJsonError(text: string): { offset: number; message: string } | undefined {
  type Expect = 'value' | 'first-value' | 'key' | 'first-key' | 'colon' | 'next' | 'end';
  const stack: string[] = [];
  let expect: Expect = 'value';
  let i = 0;
  const match = (pattern: RegExp): boolean => {
    pattern.lastIndex = i;
    if (!pattern.test(text)) return false;
    i = pattern.lastIndex;
    return true;
  };
  const afterValue = (): Expect => (stack.length > 0 ? 'next' : 'end');

  for (;;) {
    match(JSON_WHITESPACE);
    const char = text[i];
    if (char === undefined) return expect === 'end' ? undefined : { offset: i, message: 'unexpected end of input' };
    const start = i;
    switch (expect) {
      case 'value':
      case 'first-value':
        if (char === ']' && expect === 'first-value') {
          stack.pop();
          i += 1;
          expect = afterValue();
        } else if (char === '{' || char === '[') {
          stack.push(char);
          i += 1;
          expect = char === '{' ? 'first-key' : 'first-value';
        } else if (char === '"') {
          const bad = scanJsonString(text, i);
          if (typeof bad !== 'number') return bad;
          i = bad;
          expect = afterValue();
        } else if (match(JSON_NUMBER) || match(JSON_LITERAL)) {
          expect = afterValue();
        } else {
          return { offset: start, message: `unexpected ${JSON.stringify(char)} where a value was expected` };
        }
        break;
      case 'key':
      case 'first-key':
        if (char === '}' && expect === 'first-key') {
          stack.pop();
          i += 1;
          expect = afterValue();
        } else if (char === '"') {
          const bad = scanJsonString(text, i);
          if (typeof bad !== 'number') return bad;
          i = bad;
          expect = 'colon';
        } else {
          return { offset: start, message: `expected a property name in double quotes, found ${JSON.stringify(char)}` };
        }
        break;
      case 'colon':
        if (char !== ':') return { offset: start, message: `expected ":" after a property name, found ${JSON.stringify(char)}` };
        i += 1;
        expect = 'value';
        break;
      case 'next': {
        const open = stack[stack.length - 1];
        const close = open === '{' ? '}' : ']';
        if (char === ',') {
          i += 1;
          expect = open === '{' ? 'key' : 'value';
        } else if (char === close) {
          stack.pop();
          i += 1;
          expect = afterValue();
        } else {
          return { offset: start, message: `expected "," or "${close}", found ${JSON.stringify(char)}` };
        }
        break;
      }
      case 'end':
        return { offset: start, message: `unexpected ${JSON.stringify(char)} after the end of the JSON value` };
    }
  }
}

/** Returns the offset after the closing quote, or the error. */
function scanJsonString(text: string, start: number): number | { offset: number; message: string } {
  for (let i = start + 1; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return { offset: i, message: 'unescaped control character (such as a newline) in a string' };
    if (code === 0x5c) {
      const escape = text[i + 1] ?? '';
      if (escape === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 5;
      else if ('"\\/bfnrt'.includes(escape) && escape !== '') i += 1;
      else return { offset: i, message: `invalid escape "\\${escape}" in a string` };
    }
  }
  return { offset: start, message: 'unterminated string' };
}
