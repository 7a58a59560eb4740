// The fault-rate chart: faults per second of each policy and protocol, over the last 5 minutes,
// drawn by the bundled uPlot from the cumulative counts of the `live` frames.

const WINDOW_S = 300;
const COLOURS = ['#6cb6ff', '#ff6b6b', '#f0b429', '#3fb950', '#d2a8ff', '#ff9bce', '#76e3ea', '#ffa657'];

export function faultChart(container, empty) {
  const times = [];
  /** key → rates aligned with `times` */
  const series = new Map();
  let previous = null;
  let plot = null;
  let shape = '';

  const draw = () => {
    const keys = [...series.keys()];
    empty.hidden = keys.length > 0;
    if (keys.length === 0) return;
    const data = [times, ...keys.map((key) => series.get(key))];
    const width = Math.max(300, container.clientWidth);
    if (plot === null || shape !== keys.join('\n')) {
      plot?.destroy();
      shape = keys.join('\n');
      plot = new globalThis.uPlot(
        {
          width,
          height: 220,
          scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
          axes: [
            { stroke: '#8a96a3', grid: { stroke: '#2a313b' } },
            { stroke: '#8a96a3', grid: { stroke: '#2a313b' }, label: 'faults/s' },
          ],
          series: [{}, ...keys.map((key, i) => ({ label: key, stroke: COLOURS[i % COLOURS.length], width: 2, points: { show: false } }))],
        },
        data,
        container,
      );
    } else {
      if (plot.width !== width) plot.setSize({ width, height: 220 });
      plot.setData(data);
    }
  };

  return {
    /** One `live` frame: `{ at, faults: [{ policy, protocol, fault, count }] }`. */
    push(live) {
      const totals = new Map();
      for (const { policy, protocol, count } of live.faults) {
        const key = `${policy} · ${protocol}`;
        totals.set(key, (totals.get(key) ?? 0) + count);
      }
      if (previous !== null && live.at > previous.at) {
        const seconds = (live.at - previous.at) / 1000;
        times.push(live.at / 1000);
        for (const key of totals.keys()) {
          if (!series.has(key))
            series.set(
              key,
              times.slice(0, -1).map(() => 0),
            );
        }
        for (const [key, values] of series) {
          const before = previous.totals.get(key) ?? 0;
          values.push(Math.max(0, ((totals.get(key) ?? 0) - before) / seconds));
        }
        while (times.length > 0 && times[0] < live.at / 1000 - WINDOW_S) {
          times.shift();
          for (const values of series.values()) values.shift();
        }
        draw();
      }
      previous = { at: live.at, totals };
    },
  };
}
