/**
 * Other trees a bench run can start servers from, beside this one:
 *
 * - a **baseline**: this repository at an older commit (`BENCH_BASELINE_REF`), for before/after
 *   figures from one run. Its files come from `git archive`; its node_modules are hard links to this
 *   tree's when every package both lock files name has the same version in both (checked and
 *   printed), and a fresh `npm ci` otherwise.
 * - a **Node line** (`BENCH_NODE_LINES=26`): this tree's files on another Node build from the npm
 *   registry, with its own `npm ci` (native addons built for that line) through
 *   scripts/node-lines.sh. The install is kept in the line's cache and reused while the lock file is
 *   unchanged; the source files are copied afresh on every run.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerTree } from './harness.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const sh = (cmd: string, args: string[], cwd = repoRoot) =>
  execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 2 ** 20,
  });

type Lock = { packages: Record<string, { version?: string }> };

/** Packages whose versions differ between two lock files (only those both name). */
function lockDifferences(a: Lock, b: Lock): string[] {
  const out: string[] = [];
  for (const [path, entry] of Object.entries(a.packages)) {
    if (!path.startsWith('node_modules/')) continue;
    const other = b.packages[path];
    if (other && other.version !== entry.version)
      out.push(`${path.slice(13)} ${entry.version} → ${other.version}`);
  }
  return out;
}

/** Copies this tree's tracked and untracked-but-not-ignored files into `dest` (as node-lines.sh does). */
function copySource(dest: string): void {
  mkdirSync(dest, { recursive: true });
  execFileSync(
    'bash',
    [
      '-c',
      `set -o pipefail; git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\\0' "$f"; done | tar --null -T - -cf - | tar -xf - -C "$1"`,
      'bash',
      dest,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] },
  );
}

export function prepareBaseline(ref: string, log: (line: string) => void): ServerTree {
  const sha = sh('git', ['rev-parse', '--short=7', `${ref}^{commit}`]).trim();
  const dir = join(tmpdir(), `pulse-bench-base-${sha}`);
  if (!existsSync(join(dir, 'bench', 'src', 'server.ts'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execFileSync('/bin/sh', ['-c', `git archive "$1" | tar -xf - -C "$2"`, 'sh', sha, dir], {
      cwd: repoRoot,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }
  if (!existsSync(join(dir, 'node_modules'))) {
    const old = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as Lock;
    const now = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as Lock;
    const differ = lockDifferences(old, now);
    if (differ.length === 0) {
      log(`  baseline ${sha}: every package both locks name has the same version; node_modules hard-linked`);
      sh('cp', ['-al', join(repoRoot, 'node_modules'), join(dir, 'node_modules')]);
    } else {
      log(`  baseline ${sha}: ${differ.length} packages differ (${differ.slice(0, 5).join(', ')}…); npm ci`);
      execFileSync('npm', ['ci', '--no-audit', '--no-fund'], {
        cwd: dir,
        stdio: ['ignore', 'inherit', 'inherit'],
      });
    }
  }
  return { label: sha, root: dir, node: process.execPath };
}

export function prepareNodeLine(major: string, log: (line: string) => void): ServerTree {
  const script = join(repoRoot, 'scripts', 'node-lines.sh');
  const bin = sh('bash', [script, 'bin', major]).trim().split('\n').at(-1) as string;
  const node = join(bin, 'node');
  const cache =
    process.env.PULSE_NODE_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'pulse-node');
  const dir = join(cache, `bench-tree-${major}`);
  const lockHash = createHash('sha256')
    .update(readFileSync(join(repoRoot, 'package-lock.json')))
    .digest('hex');
  const stamp = join(dir, '.pulse-bench-lock');
  const fresh = existsSync(stamp) && readFileSync(stamp, 'utf8') === lockHash;
  if (fresh) {
    log(`  node ${major}: reusing the install in ${dir} (same lock file); copying the source afresh`);
    copySource(dir);
  } else {
    log(`  node ${major}: installing this tree into ${dir} with Node ${major} (npm ci, native addons)`);
    rmSync(dir, { recursive: true, force: true });
    execFileSync('bash', [script, 'install', major, dir], {
      cwd: repoRoot,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    writeFileSync(stamp, lockHash);
  }
  return { label: `node${major}`, root: dir, node };
}
