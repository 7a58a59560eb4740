#!/usr/bin/env bash
# Fuzzes the control plane's HTTP API against its own OpenAPI document (src/openapi.json, served
# at GET /havoc/openapi.json) with schemathesis, on a live control plane on 127.0.0.1 with a
# token, then checks that every documented operation answers 401 without the token.
#
#   bash .ci/schemathesis.sh
#
# Needs the built package (the native addon from `npm install`; dist/ is rebuilt here with
# `npm run build:ts` when src/ is newer). Installs schemathesis (pinned) into a venv the first
# time: HAVOC_VENV, default /opt/havoc-venv. HAVOC_FUZZ_EXAMPLES (default 50) bounds the cases
# per operation and phase, HAVOC_FUZZ_SEED (default fixed) makes a run reproducible.
# Exits non-zero on any server error, response outside the document, or operation that
# answers without the token; the last line is a one-line summary.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=${HAVOC_VENV:-/opt/havoc-venv}
MAX_EXAMPLES=${HAVOC_FUZZ_EXAMPLES:-50}
SEED=${HAVOC_FUZZ_SEED:-424242}
# Server errors, undocumented statuses / content types / headers / bodies, schema-invalid
# requests the API accepts, methods it should refuse (405 with a right Allow), auth it ignores.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,negative_data_rejection,missing_required_header,unsupported_method,allow_header_conformance,ignored_auth

log() { echo "[schemathesis] $*"; }
started=$(date +%s)

# --- schemathesis, in its own venv ------------------------------------------------------------
st="$VENV/bin/schemathesis"
if ! "$st" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 ships venv separately.
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# --- the built package ------------------------------------------------------------------------
if ! ls ./*.node >/dev/null 2>&1; then
  log "no native addon (*.node): run npm install first"; exit 1
fi
if [ ! -f dist/openapi.json ] || [ ! -f dist/index.mjs ] || [ -n "$(find src -newer dist/index.mjs -print -quit)" ]; then
  log "building dist/ (npm run build:ts)"
  npm run build:ts >/dev/null
fi

# --- a live control plane ---------------------------------------------------------------------
work=$(mktemp -d)
token=$(node -e "process.stdout.write(require('node:crypto').randomBytes(24).toString('hex'))")
HAVOC_TOKEN=$token node scripts/serve-control-plane.mjs >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  grep -q '^listening ' "$work/server.log" && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; log "the control plane did not start"; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^listening //p' "$work/server.log")
[ -n "$url" ] || { cat "$work/server.log"; log "the control plane did not start in 10 s"; exit 1; }
log "control plane at $url; schemathesis $SCHEMATHESIS_VERSION, --max-examples $MAX_EXAMPLES --seed $SEED"

# --- schemathesis, with the token -------------------------------------------------------------
# GET /havoc/events is an event stream that stays open until the client leaves: a fuzzer would
# only time out on it. It is left out here (the 401 check below still covers it) and tested by
# __test__/console.spec.ts.
set +e
(
  cd "$work"
  "$st" run "$url/havoc/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks "$CHECKS" \
    --mode all \
    --phases examples,coverage,fuzzing \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 2 \
    --request-timeout 10 \
    --exclude-path /havoc/events \
    --generation-database none \
    --no-color
) 2>&1 | tee "$work/schemathesis.log"
fuzz_status=${PIPESTATUS[0]}
set -e
if ! kill -0 "$server" 2>/dev/null; then
  cat "$work/server.log"; log "the control plane died during the run"; fuzz_status=1
fi

# --- every documented operation answers 401 without the token (and with a wrong one) ----------
set +e
auth_summary=$(
  HAVOC_URL=$url HAVOC_TOKEN=$token node --input-type=module 2>&1 <<'EOF'
const base = process.env.HAVOC_URL;
const doc = await (await fetch(`${base}/havoc/openapi.json`, { headers: { authorization: `Bearer ${process.env.HAVOC_TOKEN}` } })).json();
const methods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const operations = Object.entries(doc.paths).flatMap(([path, item]) => methods.filter((m) => m in item).map((m) => [m.toUpperCase(), path]));
const bad = [];
for (const [method, path] of [...operations, ['GET', '/havoc/no-such-route']]) {
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { 'x-havoc-token': 'wrong' }]) {
    const res = await fetch(`${base}${path}`, { method, headers });
    const body = await res.text(); // a 401 ends at once, even on the event stream
    const ok = res.status === 401 && res.headers.get('www-authenticate') === 'Bearer realm="havoc"' &&
      res.headers.get('content-type') === 'application/json' && typeof JSON.parse(body).error === 'string';
    if (!ok) bad.push(`${method} ${path} ${JSON.stringify(headers)} -> ${res.status} ${body.slice(0, 100)}`);
  }
}
for (const line of bad) console.log(`  NOT 401: ${line}`);
console.log(`${operations.length - new Set(bad.map((l) => l.split(' {')[0])).size}/${operations.length}`);
process.exit(bad.length === 0 ? 0 : 1);
EOF
)
auth_status=$?
set -e
echo "$auth_summary" | sed '$d'

# --- summary ----------------------------------------------------------------------------------
# The last number found by an extended regex in schemathesis's output, or 0.
last() { { grep -Eo "$1" "$work/schemathesis.log" || true; } | grep -Eo '[0-9]+' | tail -1 | grep . || echo 0; }
tested=$(last 'Tested: [0-9]+')
cases=$(last '[0-9]+ generated')
failures=$(last '[0-9]+ (unique )?failures?')
errors=$(last '[0-9]+ errors?')
seconds=$(( $(date +%s) - started ))
verdict=passed
if [ "$fuzz_status" -ne 0 ] || [ "$auth_status" -ne 0 ]; then verdict=FAILED; fi
echo "schemathesis $verdict: $tested operations, $cases test cases, $failures failures, $errors errors; 401 without token: $(echo "$auth_summary" | tail -1) operations; ${seconds}s"
[ "$verdict" = passed ]
