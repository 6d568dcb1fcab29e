import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { type DemoToken, mintDemoTokens } from '../auth/demo.js';
import type { PulseConfig } from '../config.js';
import { type HttpRoute, sendJson } from '../infra/http.js';

/** What `GET /demo/tokens` returns: the demo cast with ready-made tokens and the workspaces they span. */
export interface DemoTokensResponse {
  users: DemoToken[];
  workspaces: string[];
}

/**
 * `GET /demo/tokens` (demo mode only): the demo users and their tokens, the same ones `main.ts` prints,
 * so the example app can offer a "sign in as" list. Tokens are minted once per process.
 */
export function demoTokensRoute(config: PulseConfig): HttpRoute {
  let minted: Promise<DemoTokensResponse> | null = null;
  return async (req, res, url) => {
    if (req.method !== 'GET' || url.pathname !== '/demo/tokens') return false;
    // NOTE: double-checked here too, so a mistaken registration can never hand out tokens in production.
    if (!config.demoMode || config.production) return false;
    minted ??= mintDemoTokens(config.jwt).then((users) => ({
      users,
      workspaces: [...new Set(users.flatMap((u) => Object.keys(u.workspaces)))].sort(),
    }));
    res.setHeader('cache-control', 'no-store');
    sendJson(res, 200, await minted);
    return true;
  };
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Paths the Pulse server answers itself; the static route never shadows them. */
const reserved = /^\/(trpc|realtime|demo|healthz|readyz|metrics|openapi)(\/|\.|$)/;

/**
 * Serves a built single-page app from `dir` under `/`: real files as they are (hashed assets cached
 * for a year), any other GET without a file extension falls back to `index.html`.
 */
export function staticFilesRoute(dir: string): HttpRoute {
  const root = resolve(dir);
  return async (req, res, url) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (reserved.test(url.pathname)) return false;
    let pathname: string;
    try {
      pathname = decodeURIComponent(url.pathname);
    } catch {
      return false;
    }
    const file = normalize(join(root, pathname));
    if (file !== root && !file.startsWith(root + sep)) return false;
    let target = file;
    let info = await stat(target).catch(() => null);
    if (info?.isDirectory()) {
      target = join(target, 'index.html');
      info = await stat(target).catch(() => null);
    }
    if (!info?.isFile()) {
      if (extname(pathname)) return false;
      target = join(root, 'index.html');
      info = await stat(target).catch(() => null);
      if (!info?.isFile()) return false;
    }
    const immutable = target.includes(`${sep}assets${sep}`);
    res.writeHead(200, {
      'content-type': contentTypes[extname(target)] ?? 'application/octet-stream',
      'content-length': info.size,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    await new Promise<void>((done, fail) => {
      createReadStream(target).on('error', fail).on('end', done).pipe(res);
    });
    return true;
  };
}
