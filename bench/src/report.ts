/** Tables for the terminal and for BENCHMARKS.md. */
import type { ScenarioResult } from './harness.js';
import type { ServerKind } from './shared.js';

export interface RunMeta {
  date: string;
  machine: string;
  node: string;
  loadBefore: string;
  loadAfter: string;
  settings: string;
  pinned: boolean;
  minutes: number;
}

export type Row = ScenarioResult | { kind: ServerKind; n: number; error: string; label?: string };

const isResult = (row: Row): row is ScenarioResult => !('error' in row);
/** Deliveries per second one server core could sustain at the saturated CPU cost (derived). */
const capacity = (row: ScenarioResult) => 1e6 / row.cpuPerDeliverySaturated;
const fmt = (value: number, digits = 1) =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a';
const kb = (bytes: number) => fmt(bytes / 1024, 1);
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : 'n/a');

const columns = [
  'server',
  'subscribed',
  'p50 ms',
  'p99 ms',
  'max ms',
  'last ms (median)',
  'deliveries/s',
  'CPU µs/delivery',
  'CPU µs/deliv. saturated',
  'server capacity/s',
  'RSS/idle sub KB',
  'heap/sub KB',
  'dropped',
  'client CPU',
];

const nameOf = (row: Row) => (row.label ? `${row.kind}@${row.label}` : row.kind);

function resultCells(row: Row): string[] {
  if (!isResult(row))
    return [
      nameOf(row),
      `error: ${row.error.split('\n')[0]?.slice(0, 80)}`,
      ...columns.slice(2).map(() => ''),
    ];
  return [
    nameOf(row),
    `${row.subscribed}${row.failed ? ` (${row.failed} failed)` : ''}`,
    fmt(row.latency.p50),
    fmt(row.latency.p99),
    fmt(row.latency.max),
    fmt(row.latency.lastMedian),
    fmt(row.deliveriesPerSec, 0),
    fmt(row.cpuPerDelivery, 2),
    fmt(row.cpuPerDeliverySaturated, 2),
    fmt(capacity(row), 0),
    kb(row.rssPerSubscriber),
    kb(row.heapPerSubscriber),
    `${row.dropped}${row.errors ? ` / ${row.errors} err` : ''}`,
    fmt(row.clientCpu, 2),
  ];
}

export interface Check {
  n: number;
  kind: ServerKind;
  cells: string[];
  targets: Array<{ name: string; ok: boolean; detail: string }>;
}

/** Pulse against ws and Socket.IO at each N, with the issue's targets. */
export function comparisons(rows: Row[]): Check[] {
  const checks: Check[] = [];
  for (const n of [...new Set(rows.map((r) => r.n))]) {
    const at = rows.filter((r) => r.n === n).filter(isResult);
    const ws = at.find((r) => r.kind === 'ws');
    const sio = at.find((r) => r.kind === 'socketio');
    for (const pulse of at.filter((r) => r.kind.startsWith('pulse'))) {
      const targets: Check['targets'] = [];
      if (sio) {
        targets.push({
          name: 'CPU ≤ 0.85× Socket.IO',
          ok: pulse.cpuPerDelivery <= 0.85 * sio.cpuPerDelivery,
          detail: ratio(pulse.cpuPerDelivery, sio.cpuPerDelivery),
        });
        targets.push({
          name: 'deliveries/s ≥ 1.1× Socket.IO',
          ok: pulse.deliveriesPerSec >= 1.1 * sio.deliveriesPerSec,
          detail: ratio(pulse.deliveriesPerSec, sio.deliveriesPerSec),
        });
        targets.push({
          name: 'server capacity ≥ 1.1× Socket.IO (derived: 1e6 / saturated CPU µs)',
          ok: capacity(pulse) >= 1.1 * capacity(sio),
          detail: ratio(capacity(pulse), capacity(sio)),
        });
        targets.push({
          name: 'max latency ≤ Socket.IO and ≤ 200 ms',
          ok: pulse.latency.max <= sio.latency.max && pulse.latency.max <= 200,
          detail: `${fmt(pulse.latency.max)} vs ${fmt(sio.latency.max)} ms`,
        });
      }
      if (ws) {
        targets.push({
          name: 'CPU ≤ raw ws',
          ok: pulse.cpuPerDelivery <= ws.cpuPerDelivery,
          detail: ratio(pulse.cpuPerDelivery, ws.cpuPerDelivery),
        });
      }
      targets.push({
        name: 'RSS ≤ 10 KB per idle subscriber',
        ok: pulse.rssPerSubscriber <= 10 * 1024,
        detail: `${kb(pulse.rssPerSubscriber)} KB`,
      });
      targets.push({ name: 'no dropped events', ok: pulse.dropped === 0, detail: String(pulse.dropped) });
      checks.push({
        n,
        kind: pulse.kind,
        cells: [
          `${pulse.kind} N=${n}`,
          ws ? ratio(pulse.cpuPerDelivery, ws.cpuPerDelivery) : 'n/a',
          sio ? ratio(pulse.cpuPerDelivery, sio.cpuPerDelivery) : 'n/a',
          ws ? ratio(pulse.deliveriesPerSec, ws.deliveriesPerSec) : 'n/a',
          sio ? ratio(pulse.deliveriesPerSec, sio.deliveriesPerSec) : 'n/a',
          ws ? ratio(pulse.latency.max, ws.latency.max) : 'n/a',
          sio ? ratio(pulse.latency.max, sio.latency.max) : 'n/a',
          ws ? ratio(pulse.rssPerSubscriber, ws.rssPerSubscriber) : 'n/a',
          sio ? ratio(pulse.rssPerSubscriber, sio.rssPerSubscriber) : 'n/a',
        ],
        targets,
      });
    }
  }
  return checks;
}

const ratioColumns = [
  'Pulse stream',
  'CPU /ws',
  'CPU /Socket.IO',
  'deliv/s /ws',
  'deliv/s /Socket.IO',
  'max lat /ws',
  'max lat /Socket.IO',
  'RSS /ws',
  'RSS /Socket.IO',
];

function textTable(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function mdTable(header: string[], body: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...body.map(line)].join('\n');
}

export function renderText(all: Row[]): string {
  const parts: string[] = [];
  const rows = all.filter((r) => !r.label);
  for (const n of [...new Set(rows.map((r) => r.n))]) {
    parts.push(
      `\nN = ${n.toLocaleString('en-US')}\n${textTable(columns, rows.filter((r) => r.n === n).map(resultCells))}`,
    );
  }
  const checks = comparisons(rows);
  if (checks.length > 0) {
    parts.push(
      `\nRatios (Pulse / other; lower is better except deliveries/s)\n${textTable(
        ratioColumns,
        checks.map((c) => c.cells),
      )}`,
    );
    const top = Math.max(...checks.map((c) => c.n));
    for (const check of checks.filter((c) => c.n === top)) {
      parts.push(`\nTargets, ${check.kind} at N=${top}:`);
      for (const t of check.targets) parts.push(`  ${t.ok ? 'PASS' : 'FAIL'}  ${t.name} (${t.detail})`);
    }
  }
  return parts.join('\n');
}

export function renderMarkdown(all: Row[], meta: RunMeta): string {
  const out: string[] = [];
  const rows = all.filter((r) => !r.label);
  out.push(`Run ${meta.date} · ${meta.machine} · Node ${meta.node} · ${meta.minutes.toFixed(1)} min`);
  out.push('');
  out.push(
    `Load average (1/5/15 min) before: ${meta.loadBefore}; after: ${meta.loadAfter}. Server pinned to core 0, clients to core 1: ${meta.pinned ? 'yes' : 'no'}. Settings: ${meta.settings}.`,
  );
  for (const n of [...new Set(rows.map((r) => r.n))]) {
    out.push('', `#### N = ${n.toLocaleString('en-US')} subscribers`, '');
    out.push(mdTable(columns, rows.filter((r) => r.n === n).map(resultCells)));
  }
  const checks = comparisons(rows);
  if (checks.length > 0) {
    out.push('', '#### Ratios (Pulse / other; lower is better except deliveries/s)', '');
    out.push(
      mdTable(
        ratioColumns,
        checks.map((c) => c.cells),
      ),
    );
    const top = Math.max(...checks.map((c) => c.n));
    out.push('', `#### Targets at N = ${top.toLocaleString('en-US')}`, '');
    out.push(
      mdTable(
        ['stream', 'target', 'result', 'figure'],
        checks
          .filter((c) => c.n === top)
          .flatMap((c) => c.targets.map((t) => [c.kind, t.name, t.ok ? 'pass' : '**fail**', t.detail])),
      ),
    );
  }
  return out.join('\n');
}

/**
 * Rows of one other tree (a baseline checkout, another Node line) beside the same kind and N of this
 * tree from the same run: the figure there, here, and there ÷ here.
 */
export function renderTreeComparison(rows: Row[], label: string, here: string): string {
  const header = [
    'server',
    'N',
    `CPU µs/deliv. ${label} / ${here}`,
    'ratio',
    `saturated ${label} / ${here}`,
    'ratio',
    `RSS/sub KB ${label} / ${here}`,
    `heap/sub KB ${label} / ${here}`,
    `max ms ${label} / ${here}`,
    `last ms (median) ${label} / ${here}`,
    'dropped',
  ];
  const body: string[][] = [];
  for (const other of rows.filter((r) => r.label === label)) {
    const mine = rows.find((r) => !r.label && r.kind === other.kind && r.n === other.n);
    if (!isResult(other) || !mine || !isResult(mine)) {
      const why = !isResult(other) ? other.error : mine && !isResult(mine) ? mine.error : 'no row here';
      body.push([
        other.kind,
        String(other.n),
        `error: ${why.split('\n')[0]?.slice(0, 80)}`,
        ...header.slice(3).map(() => ''),
      ]);
      continue;
    }
    body.push([
      other.kind,
      other.n.toLocaleString('en-US'),
      `${fmt(other.cpuPerDelivery, 2)} / ${fmt(mine.cpuPerDelivery, 2)}`,
      ratio(other.cpuPerDelivery, mine.cpuPerDelivery),
      `${fmt(other.cpuPerDeliverySaturated, 2)} / ${fmt(mine.cpuPerDeliverySaturated, 2)}`,
      ratio(other.cpuPerDeliverySaturated, mine.cpuPerDeliverySaturated),
      `${kb(other.rssPerSubscriber)} / ${kb(mine.rssPerSubscriber)}`,
      `${kb(other.heapPerSubscriber)} / ${kb(mine.heapPerSubscriber)}`,
      `${fmt(other.latency.max)} / ${fmt(mine.latency.max)}`,
      `${fmt(other.latency.lastMedian)} / ${fmt(mine.latency.lastMedian)}`,
      `${other.dropped} / ${mine.dropped}`,
    ]);
  }
  return mdTable(header, body);
}
