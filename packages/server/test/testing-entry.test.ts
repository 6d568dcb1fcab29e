import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRPCError } from '@trpc/server';
import ts from 'typescript';
import { describe, expect, it, vi } from 'vitest';
import { codeOf, expectCode, startTestServer, waitFor } from './support/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(resolve(here, '..', 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  exports: Record<string, unknown>;
};

/** Every bare specifier reachable from `entry` through relative imports (value and type). */
function packagesReachedFrom(entry: string): Map<string, string> {
  const reached = new Map<string, string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const { fileName: spec } of ts.preProcessFile(text, true, true).importedFiles) {
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else reached.set(spec, file);
    }
  };
  visit(entry);
  return reached;
}

describe('@pulse/server/testing', () => {
  it('is exported with the same source/types/default shape as the other entries', () => {
    expect(pkg.exports['./testing']).toEqual({
      source: './test/support/index.ts',
      types: './dist/testing.d.ts',
      default: './dist/testing.js',
    });
  });

  it('imports nothing but node built-ins and @pulse/server dependencies (no vitest, no devDependency)', () => {
    const reached = packagesReachedFrom(resolve(here, 'support', 'index.ts'));
    const root = (spec: string) =>
      (spec.startsWith('@') ? spec.split('/').slice(0, 2) : spec.split('/').slice(0, 1)).join('/');
    const builtins = new Set(builtinModules);
    const outside = [...reached.keys()].filter(
      (spec) => !spec.startsWith('node:') && !builtins.has(spec) && !(root(spec) in pkg.dependencies),
    );
    expect(reached.size).toBeGreaterThan(0);
    expect(outside).toEqual([]);
  });
});

describe('waitFor', () => {
  it('resolves with the value once the condition stops throwing or returning false', async () => {
    let tries = 0;
    const value = await waitFor(() => {
      tries++;
      if (tries < 3) throw new Error('not yet');
      return tries < 5 ? false : 'done';
    });
    expect(value).toBe('done');
    expect(tries).toBe(5);
  });

  it("rejects with the condition's last error when it never holds", async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('still missing');
        },
        { timeoutMs: 60, intervalMs: 10 },
      ),
    ).rejects.toThrow(/waitFor: still failing after 60 ms: still missing/);
    await expect(waitFor(() => false, { timeoutMs: 30, message: 'the flag' })).rejects.toThrow(
      'waitFor: the flag: condition still false after 30 ms',
    );
  });

  it('keeps polling on the real clock while fake timers are installed', async () => {
    vi.useFakeTimers();
    try {
      let flag = false;
      setTimeout(() => {
        flag = true;
      }, 10_000);
      const waiting = waitFor(() => flag, { timeoutMs: 2_000 });
      vi.advanceTimersByTime(10_000);
      await expect(waiting).resolves.toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('expectCode', () => {
  it('resolves with the error when the call fails with that code, and throws otherwise', async () => {
    await using server = await startTestServer();
    const anon = await server.token({ sub: 'alice', workspaces: { acme: 'member' } });
    const forbidden = () =>
      fetch(
        `${server.url}/trpc/presence.list?input=${encodeURIComponent(JSON.stringify({ workspaceId: 'other' }))}`,
        {
          headers: { authorization: `Bearer ${anon}` },
        },
      ).then(async (res) => {
        const body = (await res.json()) as { error: { message: string; data: { code: string } } };
        throw Object.assign(new Error(body.error.message), { data: body.error.data });
      });
    const error = await expectCode(forbidden, 'FORBIDDEN');
    expect(codeOf(error)).toBe('FORBIDDEN');
    await expect(expectCode(forbidden, 'NOT_FOUND')).rejects.toThrow(
      /expected a NOT_FOUND error, got FORBIDDEN/,
    );
    await expect(expectCode(Promise.resolve(42), 'FORBIDDEN')).rejects.toThrow(
      'expected a FORBIDDEN error, but the call resolved with 42',
    );
    await expect(expectCode(Promise.reject(new TRPCError({ code: 'CONFLICT' })), 'CONFLICT')).rejects.toThrow(
      /got an error without a tRPC code/,
    );
  });
});
