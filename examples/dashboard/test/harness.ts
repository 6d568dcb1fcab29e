import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DemoServer, startDemoServer } from '@pulse/server/demo';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { build } from 'vite';

export const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const artifactsDir = join(appDir, 'artifacts');

/** Debian's Chromium (`.ci/run` installs it when missing); override with PULSE_CHROMIUM. */
export const chromiumPath = process.env.PULSE_CHROMIUM ?? '/usr/bin/chromium';

/** Builds the app once into a private temp dir (never the `dist/` that `npm start` serves). */
export async function buildApp(): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-dashboard-'));
  await build({
    root: appDir,
    configFile: join(appDir, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir: dir, emptyOutDir: true },
  });
  return { dir, [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }) };
}

/** A real Pulse node in demo mode serving the built app on a free port. */
export function startAppServer(staticDir: string, opts: { generator?: boolean } = {}): Promise<DemoServer> {
  return startDemoServer({
    sqliteFile: ':memory:',
    staticDir,
    generator: opts.generator ? { tickMs: 700 } : false,
    config: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      presence: { graceMs: 300, ttlMs: 10_000, typingTtlMs: 6_000 },
    },
  });
}

/** Launches Chromium headless with flags that suit containers and CI. */
export async function launchBrowser(): Promise<Browser & AsyncDisposable> {
  if (!existsSync(chromiumPath))
    throw new Error(
      `Chromium not found at ${chromiumPath}: apt-get install -y chromium (or set PULSE_CHROMIUM)`,
    );
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

export interface SignedIn {
  context: BrowserContext;
  page: Page;
  /** Browser console errors and page errors seen so far (a test asserts there are none). */
  errors: string[];
}

/** A fresh browser context signed in as a demo user through the sign-in page. */
export async function signIn(
  browser: Browser,
  baseUrl: string,
  userId: string,
  workspaceId: string,
): Promise<SignedIn> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  await page.goto(`${baseUrl}/`);
  await page.getByTestId(`signin-${userId}-${workspaceId}`).click();
  await page.locator(`.shell[data-user="${userId}"][data-workspace="${workspaceId}"]`).waitFor();
  await page.locator('[data-testid="connection"]', { hasText: 'connected' }).waitFor();
  return { context, page, errors };
}

/** Goes to a screen by its hash route (as a user clicking the sidebar would). */
export async function go(page: Page, route: string): Promise<void> {
  await page.evaluate((hash) => {
    window.location.hash = hash;
  }, `#/${route}`);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(artifactsDir, { recursive: true });
  await page.screenshot({ path: join(artifactsDir, `${name}.png`), fullPage: false });
}
