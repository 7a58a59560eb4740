// The console's entry: token form, the event stream (reconnecting), buttons.
import { ApiError, call, stream, token } from './api.js';
import { faultChart } from './chart.js';
import { notice } from './dom.js';
import { policyEditor } from './editor.js';
import { renderLive, renderState, tick } from './panels.js';

const connection = document.getElementById('connection');
const chart = faultChart(document.getElementById('chart'), document.getElementById('chart-empty'));
const editor = policyEditor();
let controller = null;
let retryTimer;

function status(text, className) {
  connection.textContent = text;
  connection.className = `badge ${className}`;
}

async function connect() {
  controller?.abort();
  const mine = new AbortController();
  controller = mine;
  clearTimeout(retryTimer);
  status('connecting', '');
  try {
    await stream(
      '/havoc/events',
      (event, data) => {
        status('live', 'good');
        if (event === 'state') renderState(data);
        else if (event === 'live') {
          renderLive(data);
          chart.push(data);
        }
      },
      mine.signal,
    );
    if (mine.signal.aborted) return;
    status('disconnected', 'bad');
  } catch (error) {
    if (mine.signal.aborted) return;
    if (error instanceof ApiError && error.status === 401) {
      status('token needed', 'bad');
      notice('this control plane needs its token: type it above (it stays in this tab only)', true);
      document.getElementById('token-input').focus();
      return;
    }
    status('disconnected', 'bad');
  }
  retryTimer = setTimeout(connect, 2000);
}

document.getElementById('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('token-input');
  token.set(input.value);
  input.value = '';
  notice('');
  void connect();
  void editor.validate();
});
document.getElementById('token-forget').addEventListener('click', () => {
  token.set('');
  void connect();
});

async function action(path, done) {
  try {
    await call('POST', path);
    notice(done);
  } catch (error) {
    notice(`${path}: ${error.message}`);
  }
}
document.getElementById('halt').addEventListener('click', () => action('/havoc/halt', 'halted: every fault is off'));
document.getElementById('resume').addEventListener('click', () => action('/havoc/resume', 'resumed'));
document.getElementById('rollback').addEventListener('click', () => action('/havoc/rollback', 'rolled back to the previous set'));

setInterval(tick, 1000);
void connect();
void editor.validate();
