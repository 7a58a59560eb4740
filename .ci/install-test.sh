#!/usr/bin/env bash
# What a user gets from `npm install havoc`: packs the release tarballs (npm run package),
# installs them into a fresh project with a PATH that has no cargo, rustc or tsc, and runs a
# smoke test (CommonJS require, ESM import, decide, a worker thread on the same set, the control
# plane, the `havoc` bin) under Node 20, 22 and 24. Reports tarball sizes, install time and installed size.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

echo "== npm run package"
npm run --silent package

main=$(ls "$repo"/package-out/havoc-[0-9]*.tgz)
platform=$(ls "$repo"/package-out/havoc-linux-x64-gnu-*.tgz)
project=$(mktemp -d /tmp/havoc-install.XXXXXX)
trap 'rm -rf "$project"' EXIT

# Only node and npm: no toolchain can rescue an install that needs one.
bin="$project/.bin"
mkdir -p "$bin"
ln -s "$(command -v node)" "$bin/node"
ln -s "$(command -v npm)" "$bin/npm"
clean_path="$bin:/usr/bin:/bin"
for tool in cargo rustc tsc napi; do
  if PATH=$clean_path command -v "$tool" >/dev/null; then echo "$tool is on the clean PATH"; exit 1; fi
done

cd "$project"
PATH=$clean_path npm init -y >/dev/null
started=$(date +%s%N)
PATH=$clean_path npm install --no-audit --no-fund --loglevel=error "$main" "$platform"
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
if grep -q '"install"\|"postinstall"\|"preinstall"' node_modules/havoc/package.json; then
  echo "the installed package has an install script"; exit 1
fi
size() { du -sk "$1" | cut -f1; }
echo "install: ${elapsed_ms} ms; installed: havoc $(size node_modules/havoc) KiB, havoc-linux-x64-gnu $(size node_modules/havoc-linux-x64-gnu) KiB, node_modules $(size node_modules) KiB"

cp "$repo/.ci/smoke.cjs" "$repo/.ci/smoke.mjs" .
printf 'version: 1\npolicies:\n  - { name: slow, type: http, target: /api/*, latency_chance: 0.1, latency_duration: 100ms }\n' > cli-check.yaml
for major in 20 22 24; do
  node_bin=$("$repo/.ci/node-binary.sh" "$major")
  ln -sf "$node_bin" "$bin/node"
  echo "== smoke test on Node $(PATH=$clean_path node --version)"
  PATH=$clean_path node smoke.cjs
  PATH=$clean_path node smoke.mjs
  # The `havoc` bin as npm links it: validate, plan, and a demo run to its report.
  PATH=$clean_path node_modules/.bin/havoc --version
  PATH=$clean_path node_modules/.bin/havoc validate cli-check.yaml
  PATH=$clean_path node_modules/.bin/havoc plan cli-check.yaml --max-risk 50
done
PATH=$clean_path node_modules/.bin/havoc demo --once >/dev/null
echo "install test: ok"
