import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBoundaries } from '../../../scripts/check-boundaries.mjs';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('import boundaries (scripts/check-boundaries.mjs)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function fixture(files: Record<string, string>): Promise<string> {
    const root = await mkdtemp(join(tmpdir(), 'pulse-boundaries-'));
    dirs.push(root);
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), text);
    }
    return root;
  }

  it('the repository holds the rules', () => {
    expect(checkBoundaries(repoRoot)).toEqual([]);
  });

  it('fails each deliberate violation with its rule, and lets the allowed forms pass', async () => {
    const root = await fixture({
      // infra importing a domain
      'packages/server/src/infra/bad-infra.ts':
        "import { presenceTopic } from '../presence/presence.service.js';\n",
      // a domain reaching into another domain's internals (and a public module, allowed)
      'packages/server/src/inbox/bad-domain.ts':
        "import { notificationMigrations } from '../notifications/notifications.tables.js';\n" +
        "import type { NotificationService } from '../notifications/notifications.service.js';\n",
      // a domain service importing trpc.ts (a router may, and a type import is fine)
      'packages/server/src/dashboard/dashboard.service.ts':
        "import { assertAccess } from '../trpc.js';\nimport type { PulseContext } from '../trpc.js';\n",
      'packages/server/src/dashboard/dashboard.router.ts': "import { adminProcedure } from '../trpc.js';\n",
      // the client importing the server as a value, and the allowed type-only forms
      'packages/client/src/bad-client.ts':
        "import { startPulseServer } from '@pulse/server';\n" +
        "import { type AppRouter } from '@pulse/server';\n" +
        "import type { AppRouter as R } from '@pulse/server';\n" +
        "export type { UserPresence } from '@pulse/server/schema';\n",
      'packages/react/src/bad-react.tsx':
        "export { idSchema } from '../../server/src/auth/auth.schema.js';\n",
      // tests are exempt
      'packages/client/src/ok.test.ts': "import { startPulseServer } from '@pulse/server';\n",
    });
    const violations = checkBoundaries(root);
    expect(violations).toEqual([
      expect.stringMatching(
        /^packages\/server\/src\/dashboard\/dashboard\.service\.ts:1 \[services\] imports trpc\.ts/,
      ),
      expect.stringMatching(
        /^packages\/server\/src\/inbox\/bad-domain\.ts:1 \[domains\] inbox imports notifications's internal module/,
      ),
      expect.stringMatching(
        /^packages\/server\/src\/infra\/bad-infra\.ts:1 \[infra\] infra imports "\.\.\/presence\/presence\.service\.js"/,
      ),
      expect.stringMatching(
        /^packages\/client\/src\/bad-client\.ts:1 \[client\] @pulse\/client imports the server as a value/,
      ),
      // `import { type X }` still loads the module under verbatimModuleSyntax: only `import type` passes.
      expect.stringMatching(/^packages\/client\/src\/bad-client\.ts:2 \[client\]/),
      expect.stringMatching(
        /^packages\/react\/src\/bad-react\.tsx:1 \[client\] @pulse\/react imports the server as a value/,
      ),
    ]);
  });
});
