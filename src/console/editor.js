// The policy editor: validates as you type (POST /havoc/validate: every issue with its line and
// column), applies to the `api` layer with an optional TTL (PUT /havoc/policies?ttl=).
import { ApiError, call } from './api.js';
import { el, fill, notice } from './dom.js';

const SAMPLE = `version: 1
policies:
  - name: slow-checkout
    type: http
    target: /checkout*
    latency_chance: 0.5
    latency_duration: 300ms
`;

function issueText(issue) {
  const where = issue.line === undefined ? '' : `${issue.line}:${issue.column ?? 1}: `;
  return `${where}${issue.path ? `${issue.path}: ` : ''}${issue.message}`;
}

export function policyEditor() {
  const text = document.getElementById('editor');
  const format = document.getElementById('editor-format');
  const ttl = document.getElementById('editor-ttl');
  const verdict = document.getElementById('editor-verdict');
  const apply = document.getElementById('editor-apply');
  if (text.value === '') text.value = SAMPLE;
  let timer;
  let sequence = 0;

  const showIssues = (issues) => fill('editor-issues', ...issues.map((issue) => el('li', {}, issueText(issue))));

  const validate = async () => {
    const mine = (sequence += 1);
    try {
      const result = await call('POST', '/havoc/validate', text.value, format.value);
      if (mine !== sequence) return;
      if (result.valid) {
        verdict.textContent = `valid · guard ${result.risk.score} ${result.risk.status}`;
        verdict.className = `badge risk-${result.risk.status}`;
        fill('editor-issues', el('li', { className: 'ok' }, `no problem; ${result.risk.policies.length} active policies`));
      } else {
        verdict.textContent = `${result.issues.length} problem${result.issues.length === 1 ? '' : 's'}`;
        verdict.className = 'badge bad';
        showIssues(result.issues);
      }
    } catch (error) {
      if (mine !== sequence) return;
      verdict.textContent = 'not checked';
      verdict.className = 'badge';
      showIssues([{ path: '', message: error.message }]);
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(validate, 250);
  };
  text.addEventListener('input', schedule);
  format.addEventListener('change', schedule);

  apply.addEventListener('click', async () => {
    const lease = ttl.value.trim();
    const query = lease === '' ? '' : `?ttl=${encodeURIComponent(lease)}`;
    try {
      await call('PUT', `/havoc/policies${query}`, text.value, format.value);
      notice(lease === '' ? 'applied to the api layer' : `applied to the api layer, leased for ${lease}`);
    } catch (error) {
      if (error instanceof ApiError && Array.isArray(error.body?.issues)) showIssues(error.body.issues);
      notice(`not applied: ${error.message}`);
    }
  });
  document.getElementById('editor-remove').addEventListener('click', async () => {
    try {
      const result = await call('DELETE', '/havoc/policies');
      notice(result.removed ? 'api layer removed' : 'there was no api layer');
    } catch (error) {
      notice(`not removed: ${error.message}`);
    }
  });
  return { validate };
}
