import { useDashboard, useDashboardHistory } from '@pulse/react';
import type { DashboardSeries, DashboardUpdateEvent } from '@pulse/server/schema';
import { useMemo } from 'react';
import {
  Area,
  AreaChart,
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { Icon } from '../components/Icon.js';
import { clock, compact, timeAgo } from '../time.js';
import { useWorkspace } from '../workspace.js';

type Kind = DashboardUpdateEvent['kind'];
type Of<K extends Kind> = Extract<DashboardUpdateEvent, { kind: K }>;

export const platformColours: Record<string, string> = {
  twitter: '#1d9bf0',
  x: '#111827',
  instagram: '#e1306c',
  facebook: '#1877f2',
  linkedin: '#0a66c2',
  tiktok: '#14b8a6',
  youtube: '#ff0033',
  threads: '#6b7280',
  pinterest: '#e60023',
};

/** The charts' window: the last 24 hours in 1-minute buckets, then live. */
const windowMs = 24 * 3_600_000;

interface Point {
  t: number;
  label: string;
  [platform: string]: number | string;
}

/**
 * Chart rows from history series: one row per bucket time, one column per platform (accounts of a
 * platform summed; `relative` subtracts each platform's first value: net change over the window).
 * A platform missing from a bucket carries its previous value, so accounts that report at different
 * moments still add up.
 */
export function chartPoints(series: readonly DashboardSeries[], relative: boolean): Point[] {
  const times = new Set<number>();
  const byAccount = new Map<string, { platform: string; values: Map<number, number> }>();
  for (const s of series) {
    const values = new Map<number, number>();
    for (const p of s.points) {
      const t = Date.parse(p.at);
      values.set(t, p.value);
      times.add(t);
    }
    byAccount.set(s.key, { platform: s.platform, values });
  }
  const sorted = [...times].sort((a, b) => a - b);
  const last = new Map<string, number>();
  const first = new Map<string, number>();
  const rows: Point[] = [];
  for (const t of sorted) {
    const row: Point = { t, label: clock(new Date(t).toISOString()) };
    const sums: Record<string, number> = {};
    for (const [key, account] of byAccount) {
      const v = account.values.get(t) ?? last.get(key);
      if (v === undefined) continue;
      last.set(key, v);
      sums[account.platform] = (sums[account.platform] ?? 0) + v;
    }
    for (const [platform, sum] of Object.entries(sums)) {
      if (!first.has(platform)) first.set(platform, sum);
      row[platform] = relative ? sum - first.get(platform)! : sum;
    }
    rows.push(row);
  }
  return rows;
}

/** Latest value per platform for one kind (the newest account wins when a platform has several). */
function byPlatform<K extends Kind>(values: readonly DashboardUpdateEvent[], kind: K): Map<string, Of<K>> {
  const map = new Map<string, Of<K>>();
  for (const v of values) {
    if (v.kind !== kind) continue;
    const prev = map.get(v.platform);
    if (!prev || prev.at <= v.at) map.set(v.platform, v as Of<K>);
  }
  return map;
}

function Delta({ value, suffix = '' }: { value: number | undefined; suffix?: string }) {
  if (value === undefined || value === 0) return <span className="delta">±0{suffix}</span>;
  return (
    <span className={`delta ${value > 0 ? 'up' : 'down'}`}>
      {value > 0 ? '▲' : '▼'} {compact(Math.abs(value))}
      {suffix}
    </span>
  );
}

function PlatformCard({
  platform,
  followers,
  engagement,
  impressions,
  gained,
}: {
  platform: string;
  followers: Of<'followers'> | undefined;
  engagement: Of<'engagement'> | undefined;
  impressions: Of<'metric'> | undefined;
  gained: number;
}) {
  return (
    <div
      key={followers?.at}
      className="panel stat flash"
      data-testid="platform-card"
      data-platform={platform}
    >
      <span className="label">
        <span className="platform">
          <span className="platform-dot" style={{ background: platformColours[platform] ?? '#888' }} />
          {platform}
        </span>
        <span style={{ marginLeft: 'auto' }} className="muted">
          @{followers?.accountId ?? engagement?.accountId}
        </span>
      </span>
      <span className="value" data-testid="followers-value">
        {followers ? followers.count.toLocaleString() : '–'}
      </span>
      <span className="meta">
        <span>followers</span>
        <Delta value={followers?.change} />
        <span className="muted">
          · {gained >= 0 ? '+' : ''}
          {compact(gained)} in 24 h
        </span>
      </span>
      <span className="meta">
        <span>
          <Icon name="heart" size={12} /> {compact(engagement?.likes ?? 0)}
        </span>
        <span>
          <Icon name="message" size={12} /> {compact(engagement?.comments ?? 0)}
        </span>
        <span>↻ {compact(engagement?.shares ?? 0)}</span>
        <span style={{ marginLeft: 'auto' }}>
          {engagement?.rate !== undefined ? `${engagement.rate.toFixed(2)}%` : ''}
        </span>
      </span>
      {impressions ? <span className="meta">{compact(impressions.value)} impressions</span> : null}
    </div>
  );
}

/** Live follower, engagement and post metrics per platform: cards and time-series charts. */
export function DashboardPage() {
  const { workspaceId } = useWorkspace();
  const dashboard = useDashboard(workspaceId);
  const values = useMemo(() => Object.values(dashboard.values), [dashboard.values]);
  const followers = useMemo(() => byPlatform(values, 'followers'), [values]);
  const engagement = useMemo(() => byPlatform(values, 'engagement'), [values]);
  const impressions = useMemo(() => byPlatform(values, 'metric'), [values]);
  const posts = useMemo(
    () =>
      values
        .filter((v): v is Of<'post'> => v.kind === 'post')
        .sort((a, b) => b.at.localeCompare(a.at))
        .slice(0, 8),
    [values],
  );
  const platforms = useMemo(
    () => [...new Set([...followers.keys(), ...engagement.keys()])].sort(),
    [followers, engagement],
  );

  // Time series: the last 24 h from the server's history, then live values merged in (no gap at the seam).
  const followerHistory = useDashboardHistory(workspaceId, { kind: 'followers', bucket: '1m', windowMs });
  const impressionHistory = useDashboardHistory(workspaceId, {
    kind: 'metric',
    metric: 'impressions',
    bucket: '1m',
    windowMs,
  });
  const points = useMemo(() => chartPoints(followerHistory.series, true), [followerHistory.series]);
  const impressionPoints = useMemo(
    () => chartPoints(impressionHistory.series, false),
    [impressionHistory.series],
  );
  const pointCount = (series: readonly DashboardSeries[]) => series.reduce((n, s) => n + s.points.length, 0);
  const chartPlatforms = useMemo(
    () => [...new Set([...platforms, ...followerHistory.series.map((s) => s.platform)])].sort(),
    [platforms, followerHistory.series],
  );
  // Net growth over the window: latest minus the window's first value per platform.
  const base: Record<string, number> = {};
  for (const [platform, f] of followers) {
    const gained = points.at(-1)?.[platform];
    if (typeof gained === 'number') base[platform] = f.count - gained;
  }

  const totalFollowers = [...followers.values()].reduce((sum, f) => sum + f.count, 0);
  const gainedTotal = [...followers.entries()].reduce(
    (sum, [p, f]) => sum + (f.count - (base[p] ?? f.count)),
    0,
  );
  const rates = [...engagement.values()].map((e) => e.rate ?? 0);
  const avgRate = rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : 0;
  const totalImpressions = [...impressions.values()].reduce((sum, m) => sum + m.value, 0);
  const failed = posts.filter((p) => p.status === 'failed').length;
  const engagementBars = platforms.map((p) => ({
    platform: p,
    likes: engagement.get(p)?.likes ?? 0,
    comments: engagement.get(p)?.comments ?? 0,
    shares: engagement.get(p)?.shares ?? 0,
  }));

  return (
    <>
      <div className="grid cards">
        <div className="panel stat">
          <span className="label">
            <Icon name="users" size={15} /> Total followers
          </span>
          <span className="value" data-testid="total-followers">
            {totalFollowers.toLocaleString()}
          </span>
          <span className="meta">
            <Delta value={gainedTotal} /> in the last 24 h
          </span>
        </div>
        <div className="panel stat">
          <span className="label">
            <Icon name="heart" size={15} /> Avg. engagement
          </span>
          <span className="value">{avgRate.toFixed(2)}%</span>
          <span className="meta">across {engagement.size} accounts</span>
        </div>
        <div className="panel stat">
          <span className="label">
            <Icon name="trending" size={15} /> Impressions
          </span>
          <span className="value">{compact(totalImpressions)}</span>
          <span className="meta">lifetime, all platforms</span>
        </div>
        <div className="panel stat">
          <span className="label">
            <Icon name="file" size={15} /> Recent posts
          </span>
          <span className="value">{posts.length}</span>
          <span className="meta">
            {failed > 0 ? (
              <span className="chip red">{failed} failed</span>
            ) : (
              <span className="chip green">all good</span>
            )}
            <span>
              {dashboard.status === 'live' ? '● live' : dashboard.status}
              {dashboard.lastUpdate ? ` · updated ${timeAgo(dashboard.lastUpdate.at)}` : ''}
            </span>
          </span>
        </div>
      </div>

      {dashboard.error ? <div className="error-box">{dashboard.error.message}</div> : null}

      <div className="grid cards">
        {platforms.map((p) => (
          <PlatformCard
            key={p}
            platform={p}
            followers={followers.get(p)}
            engagement={engagement.get(p)}
            impressions={impressions.get(p)}
            gained={(followers.get(p)?.count ?? 0) - (base[p] ?? followers.get(p)?.count ?? 0)}
          />
        ))}
        {platforms.length === 0 ? (
          <div className="panel empty">
            Waiting for the first metrics… (start the demo generator with npm start)
          </div>
        ) : null}
      </div>

      <div className="grid main-side">
        <section className="panel">
          <div className="panel-head">
            <h2>Follower growth</h2>
            <span className="sub">net new followers per platform, last 24 h, live</span>
          </div>
          <div
            className="panel-body"
            style={{ height: 300 }}
            data-testid="followers-chart"
            data-points={pointCount(followerHistory.series)}
            data-status={followerHistory.status}
          >
            <ResponsiveContainer width="100%" height="100%">
              <AreaChart data={points} margin={{ top: 8, right: 8, left: -12, bottom: 0 }}>
                <defs>
                  {chartPlatforms.map((p) => (
                    <linearGradient key={p} id={`g-${p}`} x1="0" y1="0" x2="0" y2="1">
                      <stop offset="0%" stopColor={platformColours[p] ?? '#888'} stopOpacity={0.28} />
                      <stop offset="100%" stopColor={platformColours[p] ?? '#888'} stopOpacity={0} />
                    </linearGradient>
                  ))}
                </defs>
                <CartesianGrid stroke="#eef0f5" vertical={false} />
                <XAxis
                  dataKey="label"
                  tick={{ fontSize: 11, fill: '#9aa0b4' }}
                  minTickGap={40}
                  tickLine={false}
                  axisLine={false}
                />
                <YAxis
                  tick={{ fontSize: 11, fill: '#9aa0b4' }}
                  tickLine={false}
                  axisLine={false}
                  width={48}
                />
                <Tooltip />
                <Legend iconType="circle" wrapperStyle={{ fontSize: 12 }} />
                {chartPlatforms.map((p) => (
                  <Area
                    key={p}
                    type="monotone"
                    dataKey={p}
                    stroke={platformColours[p] ?? '#888'}
                    strokeWidth={2}
                    fill={`url(#g-${p})`}
                    isAnimationActive={false}
                  />
                ))}
              </AreaChart>
            </ResponsiveContainer>
          </div>
        </section>
        <section className="panel">
          <div className="panel-head">
            <h2>Engagement</h2>
            <span className="sub">likes, comments, shares</span>
          </div>
          <div className="panel-body" style={{ height: 300 }}>
            <ResponsiveContainer width="100%" height="100%">
              <BarChart data={engagementBars} margin={{ top: 8, right: 8, left: -12, bottom: 0 }}>
                <CartesianGrid stroke="#eef0f5" vertical={false} />
                <XAxis
                  dataKey="platform"
                  tick={{ fontSize: 11, fill: '#6b7185' }}
                  tickLine={false}
                  axisLine={false}
                />
                <YAxis
                  tick={{ fontSize: 11, fill: '#9aa0b4' }}
                  tickFormatter={compact}
                  tickLine={false}
                  axisLine={false}
                  width={48}
                />
                <Tooltip />
                <Legend iconType="circle" wrapperStyle={{ fontSize: 12 }} />
                <Bar dataKey="likes" stackId="e" fill="#6366f1" isAnimationActive={false} />
                <Bar dataKey="comments" stackId="e" fill="#22c55e" isAnimationActive={false} />
                <Bar
                  dataKey="shares"
                  stackId="e"
                  fill="#f59e0b"
                  radius={[4, 4, 0, 0]}
                  isAnimationActive={false}
                />
              </BarChart>
            </ResponsiveContainer>
          </div>
        </section>
      </div>

      <div className="grid main-side">
        <section className="panel">
          <div className="panel-head">
            <h2>Impressions</h2>
            <span className="sub">per platform, last 24 h, live</span>
          </div>
          <div
            className="panel-body"
            style={{ height: 240 }}
            data-testid="impressions-chart"
            data-points={pointCount(impressionHistory.series)}
            data-status={impressionHistory.status}
          >
            <ResponsiveContainer width="100%" height="100%">
              <LineChart data={impressionPoints} margin={{ top: 8, right: 8, left: -12, bottom: 0 }}>
                <CartesianGrid stroke="#eef0f5" vertical={false} />
                <XAxis
                  dataKey="label"
                  tick={{ fontSize: 11, fill: '#9aa0b4' }}
                  minTickGap={40}
                  tickLine={false}
                  axisLine={false}
                />
                <YAxis
                  tick={{ fontSize: 11, fill: '#9aa0b4' }}
                  domain={['auto', 'auto']}
                  tickFormatter={compact}
                  tickLine={false}
                  axisLine={false}
                  width={48}
                />
                <Tooltip />
                {chartPlatforms.map((p) => (
                  <Line
                    key={p}
                    type="monotone"
                    dataKey={p}
                    name={p}
                    stroke={platformColours[p] ?? '#888'}
                    strokeWidth={2}
                    dot={false}
                    isAnimationActive={false}
                  />
                ))}
              </LineChart>
            </ResponsiveContainer>
          </div>
        </section>
        <section className="panel">
          <div className="panel-head">
            <h2>Recent posts</h2>
          </div>
          <div className="feed" style={{ marginTop: 10 }}>
            {posts.length === 0 ? <div className="empty">No posts yet.</div> : null}
            {posts.map((p) => (
              <div key={p.key} className="feed-item">
                <span
                  className="platform-dot"
                  style={{ background: platformColours[p.platform] ?? '#888' }}
                />
                <span
                  style={{ minWidth: 0, overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' }}
                >
                  {p.title ?? p.postId}
                </span>
                <span
                  className={`chip ${p.status === 'failed' ? 'red' : p.status === 'published' ? 'green' : 'blue'}`}
                >
                  {p.status}
                </span>
                <time>{timeAgo(p.at)}</time>
              </div>
            ))}
          </div>
        </section>
      </div>
    </>
  );
}
