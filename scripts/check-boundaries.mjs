#!/usr/bin/env node
// `node scripts/check-boundaries.mjs [root]`: the import rules Biome cannot express (it has no
// "type-only imports are fine" option), checked on the TypeScript syntax tree of every source file:
//   infra       packages/server/src/infra/** imports nothing else of the server (no domain, no wiring);
//   domains     a domain (presence, notifications, inbox, dashboard, stats) imports another
//               domain only through its public modules: <domain>.service.ts, <domain>.schema.ts, index.ts;
//   services    a domain's non-router module never imports trpc.ts (loading a service must not run
//               initTRPC: access rules live in auth/access.ts, context types in context.ts);
//   client      packages/client/src and packages/react/src import @pulse/server (or its files) only
//               with `import type` / `export type` (but for the browser-safe constants of
//               @pulse/server/protocol, which the client's build bundles in).
// Tests (*.test.ts, *.test-d.ts[x]) are exempt. Exit code 1 and one line per violation when any.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ts = require('typescript');

/**
 * Domain folders under packages/server/src. auth (access rules) and streams (the durable-stream
 * kernel) are shared kernels every domain may use; they import no domain.
 */
export const DOMAINS = ['presence', 'notifications', 'inbox', 'dashboard', 'stats'];

const isTest = (file) => /\.test(-d)?\.tsx?$/.test(file);

function sourceFiles(dir) {
  let out = [];
  let entries;
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(sourceFiles(path));
    else if (/\.(ts|tsx|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Every import/export-from/dynamic import of a file, with whether it is type-only. */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({
        specifier: node.moduleSpecifier.text,
        typeOnly: node.importClause?.isTypeOnly === true,
        node,
      });
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: node.isTypeOnly, node });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push({ specifier: node.arguments[0].text, typeOnly: false, node });
    } else if (ts.isImportTypeNode(node)) {
      return; // `import('x').T` in a type position
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.map((f) => ({
    ...f,
    line: source.getLineAndCharacterOfPosition(f.node.getStart()).line + 1,
  }));
}

/** Resolves a relative specifier to a source path (`.js` written for `.ts` files). */
function resolveRelative(file, specifier) {
  if (!specifier.startsWith('.')) return null;
  return resolve(dirname(file), specifier).replace(/\.(m?js|jsx)$/, (ext) =>
    ext === '.jsx' ? '.tsx' : '.ts',
  );
}

/**
 * Checks the rules under `root` (the repository root); returns the violations, one string each:
 * `<file>:<line> [rule] message`.
 */
export function checkBoundaries(root) {
  const serverSrc = join(root, 'packages', 'server', 'src');
  const violations = [];
  const report = (file, line, rule, message) =>
    violations.push(`${relative(root, file).split(sep).join('/')}:${line} [${rule}] ${message}`);

  for (const file of sourceFiles(serverSrc)) {
    if (isTest(file)) continue;
    const rel = relative(serverSrc, file).split(sep);
    const area = rel.length > 1 ? rel[0] : null;
    for (const imp of importsOf(file)) {
      const target = resolveRelative(file, imp.specifier);
      if (!target) continue;
      const targetRel = relative(serverSrc, target).split(sep);
      if (targetRel[0] === '..') continue;
      const targetArea = targetRel.length > 1 ? targetRel[0] : null;
      const targetName = targetRel[targetRel.length - 1];
      if (area === 'infra' && targetArea !== 'infra') {
        report(
          file,
          imp.line,
          'infra',
          `infra imports "${imp.specifier}" (infra imports no domain or wiring)`,
        );
      }
      if (DOMAINS.includes(area) && DOMAINS.includes(targetArea) && targetArea !== area) {
        const publicModules = [`${targetArea}.service.ts`, `${targetArea}.schema.ts`, 'index.ts'];
        if (!publicModules.includes(targetName))
          report(
            file,
            imp.line,
            'domains',
            `${area} imports ${targetArea}'s internal module "${imp.specifier}" (use ${targetArea}.service.ts or ${targetArea}.schema.ts)`,
          );
      }
      const isRouter = /\.(router|rest)\.ts$/.test(rel[rel.length - 1]);
      if (
        DOMAINS.includes(area) &&
        !isRouter &&
        targetRel.length === 1 &&
        targetName === 'trpc.ts' &&
        !imp.typeOnly
      ) {
        report(
          file,
          imp.line,
          'services',
          `imports trpc.ts (loading it runs initTRPC): import access rules from auth/access.ts, context types from context.ts`,
        );
      }
    }
  }

  const serverDir = join(root, 'packages', 'server');
  for (const pkg of ['client', 'react']) {
    for (const file of sourceFiles(join(root, 'packages', pkg, 'src'))) {
      if (isTest(file)) continue;
      for (const imp of importsOf(file)) {
        const target = resolveRelative(file, imp.specifier);
        const intoServer =
          imp.specifier === '@pulse/server' ||
          imp.specifier.startsWith('@pulse/server/') ||
          (target !== null && (target === serverDir || target.startsWith(serverDir + sep)));
        // NOTE: `@pulse/server/protocol` holds browser-safe constants only and is bundled into the client.
        if (intoServer && !imp.typeOnly && imp.specifier !== '@pulse/server/protocol')
          report(
            file,
            imp.line,
            'client',
            `@pulse/${pkg} imports the server as a value ("${imp.specifier}"): use \`import type\` / \`export type\``,
          );
      }
    }
  }
  return violations;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  const violations = checkBoundaries(root);
  for (const v of violations) console.error(v);
  if (violations.length > 0) {
    console.error(`\n${violations.length} import boundary violation(s) (scripts/check-boundaries.mjs)`);
    process.exit(1);
  }
  console.log('import boundaries: ok');
}
