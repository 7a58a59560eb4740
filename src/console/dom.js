// DOM helpers of the console. Every value reaches the page as text (text nodes, textContent),
// never as HTML: no innerHTML, no insertAdjacentHTML, no attribute from data but `class`/`title`.

/** `el('td', { className: 'x', title: 't' }, 'text', child)`: strings and numbers become text nodes. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.title !== undefined) node.title = String(props.title);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces the children of the element with id `id`. */
export function fill(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** `<dt>`/`<dd>` pairs for a `<dl>`. */
export function pairs(entries) {
  return entries.flatMap(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]);
}

export function table(headings, rows) {
  return el(
    'table',
    {},
    el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c))))),
  );
}

export function duration(ms) {
  if (!Number.isFinite(ms)) return '';
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, '0')}m${String(rest).padStart(2, '0')}s`
    : m > 0
      ? `${m}m${String(rest).padStart(2, '0')}s`
      : `${rest}s`;
}

export function bytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

let noticeTimer;
/** A message under the header; `sticky` keeps it until the next one. */
export function notice(text, sticky = false) {
  const node = document.getElementById('notice');
  node.textContent = text;
  node.hidden = text === '';
  clearTimeout(noticeTimer);
  if (!sticky && text !== '') noticeTimer = setTimeout(() => notice(''), 6000);
}
