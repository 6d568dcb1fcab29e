#!/usr/bin/env node
/**
 * Run by each publishable package's `prepack` / `postpack` (so by `npm pack` and `npm publish`):
 * `strip` removes the monorepo-only `source` export conditions (they point at src/, which is not
 * published, and a consumer's bundler that honours a `source` condition would break on them) and
 * keeps the original manifest beside it; `restore` puts the original back.
 *
 * NOTE: stripping at pack time (not a renamed condition) keeps `source` working unchanged for every
 * tool in the monorepo (tsconfig customConditions, vitest/vite resolve.conditions, tsx --conditions).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const manifest = 'package.json';
const backup = '.package.json.prepack';
const mode = process.argv[2];

/** A copy of an `exports` value without any `source` condition, at any depth. */
function stripSource(value) {
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== 'source')
      .map(([key, inner]) => [key, stripSource(inner)]),
  );
}

if (mode === 'strip') {
  if (existsSync(backup))
    throw new Error(`${backup} exists: a previous pack did not restore; run restore first`);
  const text = readFileSync(manifest, 'utf8');
  const pkg = JSON.parse(text);
  writeFileSync(backup, text);
  pkg.exports = stripSource(pkg.exports);
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
} else if (mode === 'restore') {
  if (existsSync(backup)) renameSync(backup, manifest);
} else {
  console.error('usage: pack-manifest.mjs strip|restore');
  process.exit(2);
}
