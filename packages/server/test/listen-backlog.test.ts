import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { startTestServer } from './support/vitest.js';

/** The backlog the kernel holds for a listening TCP port: `ss` shows it as Send-Q of a LISTEN socket. */
function kernelBacklog(port: number): number | null {
  const out = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).trim();
  const fields = out.split('\n')[0]?.trim().split(/\s+/) ?? [];
  // State Recv-Q Send-Q Local Peer
  return fields.length >= 3 ? Number(fields[2]) : null;
}

let ss = true;
try {
  execFileSync('ss', ['-V']);
} catch {
  ss = false;
  console.warn('[skip] listen backlog: `ss` (iproute2) is not installed');
}

describe.skipIf(!ss || process.platform !== 'linux')('listen backlog (limits.listenBacklog)', () => {
  it('listens with the configured backlog, 4,096 by default (Node would use 511)', async () => {
    await using byDefault = await startTestServer();
    await using small = await startTestServer({ config: { limits: { listenBacklog: 123 } } });
    expect(kernelBacklog(small.port)).toBe(123);
    // Linux caps the backlog at net.core.somaxconn.
    const somaxconn = Number(execFileSync('cat', ['/proc/sys/net/core/somaxconn'], { encoding: 'utf8' }));
    expect(kernelBacklog(byDefault.port)).toBe(Math.min(4096, somaxconn));
  });

  it('refuses a backlog that is not a positive integer', async () => {
    await expect(startTestServer({ config: { limits: { listenBacklog: 0 } } })).rejects.toThrow(
      /listenBacklog/,
    );
  });
});
