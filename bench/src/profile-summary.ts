/**
 * Summarises a `--cpu-prof` profile: self and inclusive time by function and by file, optionally
 * over a window only (the accept bench writes `window-<kind>-<n>-<pid>.json` beside the profiles
 * when BENCH_PROFILE_DIR is set; its `from`/`to` are on the profile's clock).
 * Usage: `tsx src/profile-summary.ts <file.cpuprofile> [window.json] [top=40]`.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [file, windowFile, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [window.json] [top]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const win =
  windowFile && windowFile !== '-'
    ? (JSON.parse(readFileSync(windowFile, 'utf8')) as { from: number; to: number })
    : null;
const top = Number(topArg ?? 40);

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const shortUrl = (url: string) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\//, 'nm:')
    .replace(/.*\/packages\//, 'pkg:')
    .replace(/.*\/bench\//, 'bench:');
const fnKey = (n: Node) =>
  `${n.callFrame.functionName || '(anon)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const fileKey = (n: Node) => shortUrl(n.callFrame.url) || `(${n.callFrame.functionName})`;

const self = new Map<number, number>();
let t = profile.startTime;
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i]!;
  if (win && (t < win.from || t > win.to)) continue;
  // NOTE: the delta before a sample is the time it stands for (V8's own convention is the next one; close enough).
  const dt = profile.timeDeltas[i + 1] ?? 0;
  self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + dt);
  total += dt;
}

const fnSelf = new Map<string, number>();
const fnIncl = new Map<string, number>();
const fileSelf = new Map<string, number>();
const fileIncl = new Map<string, number>();
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
for (const [id, dt] of self) {
  const leaf = byId.get(id)!;
  add(fnSelf, fnKey(leaf), dt);
  add(fileSelf, fileKey(leaf), dt);
  // Inclusive: each distinct function / file on the stack once.
  const seenFn = new Set<string>();
  const seenFile = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur)!;
    const fk = fnKey(n);
    if (!seenFn.has(fk)) {
      seenFn.add(fk);
      add(fnIncl, fk, dt);
    }
    const flk = fileKey(n);
    if (!seenFile.has(flk)) {
      seenFile.add(flk);
      add(fileIncl, flk, dt);
    }
  }
}

const pct = (v: number) => `${((100 * v) / total).toFixed(1).padStart(5)}%`;
const print = (title: string, m: Map<string, number>) => {
  console.log(`\n## ${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`${pct(v)} ${(v / 1000).toFixed(0).padStart(6)} ms  ${k}`);
};
console.log(
  `${file}${win ? ` window ${((win.to - win.from) / 1e6).toFixed(2)} s` : ''}: ${(total / 1000).toFixed(0)} ms sampled`,
);
print('self by function', fnSelf);
print('inclusive by function', fnIncl);
print('self by file', fileSelf);
print('inclusive by file', fileIncl);
