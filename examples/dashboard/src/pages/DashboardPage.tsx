import { useDashboard } from '@pulse/react';
import type { DashboardUpdateEvent } from '@pulse/server/schema';
import { useEffect, useMemo, useRef, useState } from 'react';
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
import { clockSeconds, compact, timeAgo } from '../time.js';
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

const historyLength = 90;

interface Point {
  t: number;
  label: string;
  [platform: string]: number | string;
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
          {compact(gained)} this session
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

  // Time series: sampled from the live values as they change (the server keeps the latest value only).
  const [history, setHistory] = useState<{
    workspaceId: string;
    points: Point[];
    base: Record<string, number>;
  }>({
    workspaceId,
    points: [],
    base: {},
  });
  const lastSample = useRef(0);
  useEffect(() => {
    if (followers.size === 0) return;
    const now = Date.now();
    if (now - lastSample.current < 900) return;
    lastSample.current = now;
    setHistory((prev) => {
      const same = prev.workspaceId === workspaceId;
      const base = { ...(same ? prev.base : {}) };
      const point: Point = { t: now, label: clockSeconds(now) };
      for (const [platform, f] of followers) {
        base[platform] ??= f.count;
        point[platform] = f.count - base[platform]!;
        const e = engagement.get(platform);
        if (e?.rate !== undefined) point[`${platform}:rate`] = e.rate;
      }
      return { workspaceId, base, points: [...(same ? prev.points : []), point].slice(-historyLength) };
    });
  }, [followers, engagement, workspaceId]);
  const points = history.workspaceId === workspaceId ? history.points : [];
  const base = history.workspaceId === workspaceId ? history.base : {};

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
            <Delta value={gainedTotal} /> since you opened this page
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
            <span className="sub">net new followers per platform, live</span>
          </div>
          <div className="panel-body" style={{ height: 300 }} data-testid="followers-chart">
            <ResponsiveContainer width="100%" height="100%">
              <AreaChart data={points} margin={{ top: 8, right: 8, left: -12, bottom: 0 }}>
                <defs>
                  {platforms.map((p) => (
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
                {platforms.map((p) => (
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
            <h2>Engagement rate</h2>
            <span className="sub">% per platform over time</span>
          </div>
          <div className="panel-body" style={{ height: 240 }}>
            <ResponsiveContainer width="100%" height="100%">
              <LineChart data={points} margin={{ top: 8, right: 8, left: -12, bottom: 0 }}>
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
                  tickLine={false}
                  axisLine={false}
                  width={48}
                />
                <Tooltip />
                {platforms.map((p) => (
                  <Line
                    key={p}
                    type="monotone"
                    dataKey={`${p}:rate`}
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
