// The panels drawn from the event stream: `state` frames (set, layers, leases, history, guard
// verdict) and `live` frames (warmup, sabotage, limiters; the chart takes the fault counts).
import { bytes, duration, el, fill, pairs, table } from './dom.js';

let lastState = null;
let stateAt = 0;
let lastLive = null;
let liveAt = 0;

function policySummary(p) {
  const parts = [];
  if (p.latencyChance > 0) parts.push(`latency ${p.latencyDuration}ms × ${p.latencyChance}`);
  if (p.errorChance > 0) parts.push(`error ${p.errorCode || 'default'} × ${p.errorChance}`);
  if (p.dropConnection) parts.push('drop');
  if (p.type === 'resource') {
    if (p.cpuPercent || p.throttleThreshold) parts.push(`cpu ${p.cpuCores || 'all'} threads @ ${p.cpuPercent || 'auto'}%`);
    if (p.ramChunkMb || p.ramMaxMb) parts.push(`ram +${p.ramChunkMb}MB/${p.ramInterval}ms${p.ramMaxMb ? ` ≤ ${p.ramMaxMb}MB` : ''}`);
  }
  return parts.join(', ') || '—';
}

export function renderState(state) {
  lastState = state;
  stateAt = Date.now();
  const risk = new Map((state.risk?.policies ?? []).map((p) => [p.name, p]));
  const guard = document.getElementById('guard');
  guard.textContent = state.risk ? `guard ${state.risk.score} ${state.risk.status}` : 'guard —';
  guard.className = `badge ${state.risk ? `risk-${state.risk.status}` : ''}`;

  const byName = new Map(state.policies.map((p) => [p.name, p]));
  const layers = state.layers.map((layer) =>
    el(
      'div',
      { className: 'layer' },
      el('h3', {}, `layer ${layer.name}`, layer.lease ? ` · leased` : ''),
      layer.policies.length === 0
        ? el('p', { className: 'muted' }, 'no policies')
        : table(
            ['policy', 'type', 'target', 'faults', 'error body', 'risk'],
            layer.policies.map((name) => {
              const p = byName.get(name) ?? { name, type: '', target: '', errorBody: '' };
              const r = risk.get(name);
              return [name, p.type, p.target, policySummary(p), p.errorBody ?? '', r ? r.risk.toFixed(2) : '—'];
            }),
          ),
    ),
  );
  fill('policies', ...(layers.length > 0 ? layers : [el('p', { className: 'muted' }, 'no layer: nothing applied')]));
  const findings = state.risk?.issues ?? [];
  if (findings.length > 0) {
    document.getElementById('policies').append(el('ul', { className: 'plain muted' }, ...findings.map((i) => el('li', {}, i))));
  }

  fill(
    'history',
    ...[...state.history]
      .reverse()
      .map((h) =>
        el('tr', {}, el('td', {}, h.version), el('td', {}, h.cause), el('td', {}, h.policies), el('td', {}, h.layers.join(', '))),
      ),
  );
  document.getElementById('rollback').disabled = state.history.length < 2;
  document.getElementById('halt').disabled = state.halted;
  document.getElementById('resume').disabled = !state.halted;
  tick();
}

export function renderLive(live) {
  lastLive = live;
  liveAt = Date.now();
  const { cpu, ram } = live.sabotage;
  fill(
    'sabotage',
    ...pairs([
      ['CPU threads', cpu.threads],
      ['CPU', `${cpu.percent}%`],
      ['RAM resident', bytes(ram.bytesResident)],
      ['RAM target', bytes(ram.bytesTarget)],
      ['RAM ceiling', `${bytes(ram.bytesCeiling)} (${ram.ceilingReason})`],
      ['loads', live.sabotage.loads.map((l) => l.policy).join(', ') || 'none'],
    ]),
  );
  const bar = document.getElementById('ram-bar');
  bar.max = Math.max(1, ram.bytesTarget);
  bar.value = Math.min(ram.bytesResident, bar.max);
  bar.title = `${bytes(ram.bytesResident)} of ${bytes(ram.bytesTarget)}`;
  fill(
    'limiters',
    live.limiters.length === 0
      ? el('p', { className: 'muted' }, 'no adaptive limiter reports to this control plane')
      : table(
          ['limiter', 'limit', 'in flight'],
          live.limiters.map((l) => [l.name, l.limit, l.inflight]),
        ),
  );
  tick();
}

/** Redraws what counts down (leases, warmup) from the last frames. */
export function tick() {
  if (lastState === null) return;
  const elapsed = Date.now() - stateAt;
  const warmup = lastLive === null ? lastState.warmupRemainingMs : Math.max(0, lastLive.warmupRemainingMs - (Date.now() - liveAt));
  fill(
    'status',
    ...pairs([
      ['state', el('span', { className: lastState.halted ? 'halted' : '' }, lastState.halted ? 'HALTED' : 'running')],
      ['version', lastState.version],
      ['warmup', warmup > 0 ? `${duration(warmup)} left` : 'warm'],
      ['policies', lastState.policies.length],
      ['layers', lastState.layers.map((l) => l.name).join(', ') || 'none'],
    ]),
  );
  fill(
    'leases',
    ...(lastState.leases.length === 0
      ? [el('li', { className: 'muted' }, 'no lease')]
      : lastState.leases.map((l) =>
          el(
            'li',
            {},
            `${l.layer}: ${duration(l.remainingMs - elapsed)} left of ${duration(l.ttlMs)}, then ${l.revertsTo === null ? 'removed' : 'reverted'}`,
          ),
        )),
  );
}
