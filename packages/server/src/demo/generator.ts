import type { Principal } from '../auth/auth.schema.js';
import type { PulseServer } from '../server.js';

/**
 * What the generator needs from a running node: the publisher (`server.publish`) for dashboard values and
 * notifications, the service caller for inbound inbox messages, and a caller per teammate for replies.
 */
export type DemoTarget = Pick<PulseServer, 'publish' | 'caller' | 'callerFor'>;

type DashboardPlatform = 'twitter' | 'instagram' | 'linkedin' | 'tiktok' | 'facebook' | 'youtube';
type InboxPlatform = 'twitter' | 'instagram' | 'facebook' | 'whatsapp' | 'email' | 'linkedin';

interface AccountState {
  platform: DashboardPlatform;
  accountId: string;
  followers: number;
  likes: number;
  comments: number;
  shares: number;
  impressions: number;
}

/** A teammate the generator lets answer some inbound messages (so not every thread escalates). */
interface Responder {
  userId: string;
  name: string;
  role: 'member' | 'admin';
}

interface WorkspaceScript {
  workspaceId: string;
  brand: string;
  accounts: AccountState[];
  responders: Responder[];
  /** Open threads: platform thread id -> contact. */
  threads: Map<string, { platform: InboxPlatform; contact: { id: string; name: string; handle: string } }>;
}

export interface DemoGeneratorOptions {
  /** Workspaces to animate (default: the demo cast's `acme` and `globex`). */
  workspaces?: string[];
  /** Mean time between dashboard ticks per workspace (default 1500 ms). */
  tickMs?: number;
  /** Random source (tests inject a seeded one). */
  random?: () => number;
  /**
   * Hours of dashboard history (followers, engagement, impressions every 5 minutes) published at
   * start-up when the store holds none for the workspace yet, so a first run's charts are not
   * empty (default 24; 0 = none).
   */
  backfillHours?: number;
  /** Called with anything that failed to publish (default: ignored after the first report). */
  onError?: (error: unknown) => void;
}

export interface DemoGenerator {
  /** Events published so far, by kind (for logs and tests). */
  stats(): Record<string, number>;
  /** Stops every timer and waits for in-flight publishes. */
  stop(): Promise<void>;
}

const contacts = [
  ['Maya Chen', 'mayac'],
  ['Jonas Weber', 'jweber'],
  ['Priya Raman', 'priya.r'],
  ['Lucas Silva', 'lucas_s'],
  ['Amara Okafor', 'amarao'],
  ['Tom Becker', 'tbecker'],
  ['Sofia Rossi', 'sofiarossi'],
  ['Noah Kim', 'noahk'],
  ['Elena Petrova', 'elenap'],
  ['Omar Haddad', 'omarh'],
] as const;

const inboundLines = [
  'Hi! My order #{n} still shows "processing" after 5 days. Any update?',
  'Love the new release! Is dark mode coming to the mobile app too?',
  'I was charged twice this month, can someone help?',
  'Is the spring sale still on? The code SPRING20 does not work for me.',
  'Can I change the delivery address on order #{n}?',
  'Your support bot keeps looping, I just need a human please',
  'Do you ship to Norway?',
  'The app crashes when I upload a photo on Android 15.',
  'Thanks for the quick fix yesterday, works perfectly now!',
  'How do I cancel my subscription?',
  'Any plans for an API? We would integrate this with our CRM.',
  'Still waiting on a reply from yesterday…',
];

const replies = [
  'Thanks for reaching out! Let me check that for you right away.',
  'Sorry about that — I have escalated it to our billing team, you will hear back today.',
  'Great question! Yes, it is on the roadmap for next month.',
  'I have updated it for you. Anything else I can help with?',
  'Could you send me your order number so I can take a look?',
];

const mentionLines = [
  'Honestly {brand} has the best onboarding I have seen this year',
  'Anyone else having trouble logging into {brand} today?',
  'Shoutout to the {brand} support team, fixed my issue in 10 minutes',
  '{brand} just announced their spring collection',
  'Not impressed with the latest {brand} update tbh',
];

const crisisTopics = ['checkout outage', 'data breach rumour', 'shipping delays', 'price increase backlash'];

const scripts: Record<string, Omit<WorkspaceScript, 'threads'>> = {
  acme: {
    workspaceId: 'acme',
    brand: 'Acme',
    accounts: [
      account('twitter', 'acme', 48_200),
      account('instagram', 'acme.official', 126_400),
      account('linkedin', 'acme-inc', 18_900),
      account('tiktok', 'acme', 73_500),
    ],
    responders: [
      { userId: 'bob', name: 'Bob Member', role: 'member' },
      { userId: 'carol', name: 'Carol Member', role: 'member' },
    ],
  },
  globex: {
    workspaceId: 'globex',
    brand: 'Globex',
    accounts: [
      account('facebook', 'globexcorp', 212_000),
      account('youtube', 'globex', 88_300),
      account('instagram', 'globex', 64_750),
      account('twitter', 'globex', 31_400),
    ],
    responders: [{ userId: 'carol', name: 'Carol Member', role: 'member' }],
  },
};

function account(platform: DashboardPlatform, accountId: string, followers: number): AccountState {
  return {
    platform,
    accountId,
    followers,
    likes: Math.round(followers * 0.04),
    comments: Math.round(followers * 0.006),
    shares: Math.round(followers * 0.003),
    impressions: followers * 6,
  };
}

/**
 * Publishes realistic traffic into running Pulse workspaces: follower and engagement changes every
 * second or two, inbound messages (some answered by teammates, the rest left to escalate), mentions,
 * published and occasionally failed posts, reviews, and a rare crisis alert. All timers are unref'd.
 *
 * @example
 * ```ts
 * const server = await startPulseServer({ config: loadConfig() });
 * const generator = startDemoGenerator(server);
 * process.on('SIGINT', async () => { await generator.stop(); await server.close(); });
 * ```
 */
export function startDemoGenerator(target: DemoTarget, opts: DemoGeneratorOptions = {}): DemoGenerator {
  const random = opts.random ?? Math.random;
  const tickMs = opts.tickMs ?? 1_500;
  const counts: Record<string, number> = {};
  const inFlight = new Set<Promise<unknown>>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  let reported = false;
  let postSeq = 0;
  let messageSeq = 0;

  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const between = (min: number, max: number) => Math.round(min + random() * (max - min));
  const onError =
    opts.onError ??
    ((error: unknown) => {
      if (reported) return;
      reported = true;
      console.warn(`demo generator: a publish failed (further failures are silent): ${String(error)}`);
    });

  const track = (kind: string, work: () => Promise<unknown>) => {
    if (stopped) return;
    const p = work()
      .then(() => {
        counts[kind] = (counts[kind] ?? 0) + 1;
      })
      .catch((error: unknown) => {
        if (!stopped) onError(error);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  /** Runs `fn` again and again, each time after a jittered delay around `meanMs`. */
  const every = (meanMs: number, fn: () => void, firstMs = meanMs) => {
    const schedule = (delay: number) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (stopped) return;
        fn();
        schedule(meanMs * (0.6 + random() * 0.8));
      }, delay);
      timer.unref();
      timers.add(timer);
    };
    schedule(firstMs);
  };

  const principalFor = (ws: WorkspaceScript, r: Responder): Principal => ({
    userId: r.userId,
    name: r.name,
    workspaces: { [ws.workspaceId]: r.role },
    service: false,
    expiresAt: Number.POSITIVE_INFINITY,
  });

  const publishAccount = (ws: WorkspaceScript, a: AccountState, change: number) => {
    const { workspaceId } = ws;
    track('followers', () =>
      target.publish.broadcastFollowerUpdate({
        workspaceId,
        platform: a.platform,
        accountId: a.accountId,
        count: a.followers,
        change,
      }),
    );
    const rate = ((a.likes + a.comments + a.shares) / Math.max(1, a.followers)) * 100;
    track('engagement', () =>
      target.publish.broadcastEngagementUpdate({
        workspaceId,
        platform: a.platform,
        accountId: a.accountId,
        likes: a.likes,
        comments: a.comments,
        shares: a.shares,
        rate: Math.round(rate * 100) / 100,
      }),
    );
    track('metric', () =>
      target.publish.broadcastMetricUpdate({
        workspaceId,
        platform: a.platform,
        accountId: a.accountId,
        metric: 'impressions',
        value: a.impressions,
        unit: 'count',
      }),
    );
  };

  /** Walks each account's numbers back in time and publishes them with their past `at`. */
  const backfill = async (ws: WorkspaceScript, hours: number) => {
    const { workspaceId } = ws;
    const now = Date.now();
    const step = 5 * 60_000;
    const from = Math.floor((now - hours * 3_600_000) / step) * step;
    const existing = await target.caller.dashboard.history({
      workspaceId,
      kind: 'followers',
      from: new Date(from).toISOString(),
      bucket: '1h',
    });
    if (existing.series.length > 0) return; // a restart: the history is there already
    for (const a of ws.accounts) {
      let { followers, likes, comments, shares, impressions } = a;
      for (let at = Math.floor(now / step) * step - step; at >= from && !stopped; at -= step) {
        const iso = new Date(at).toISOString();
        const base = { workspaceId, platform: a.platform, accountId: a.accountId, at: iso };
        await target.publish.broadcastFollowerUpdate({ ...base, count: followers });
        await target.publish.broadcastEngagementUpdate({ ...base, likes, comments, shares });
        await target.publish.broadcastMetricUpdate({
          ...base,
          metric: 'impressions',
          value: impressions,
          unit: 'count',
        });
        followers = Math.max(0, followers - between(-3, 12));
        likes = Math.max(0, likes - between(1, 25));
        comments = Math.max(0, comments - between(0, 4));
        shares = Math.max(0, shares - between(0, 3));
        impressions = Math.max(0, impressions - between(50, 600));
      }
    }
  };

  const tick = (ws: WorkspaceScript) => {
    // One or two accounts move per tick: followers drift up with noise, engagement accumulates.
    const moving = random() < 0.5 ? [pick(ws.accounts)] : [pick(ws.accounts), pick(ws.accounts)];
    for (const a of new Set(moving)) {
      const change = between(-4, 18) + (random() < 0.05 ? between(40, 160) : 0);
      a.followers = Math.max(0, a.followers + change);
      a.likes += between(2, 40);
      a.comments += between(0, 7);
      a.shares += between(0, 5);
      a.impressions += between(80, 900);
      publishAccount(ws, a, change);
    }
  };

  const inbound = (ws: WorkspaceScript) => {
    const { workspaceId } = ws;
    const reuse = ws.threads.size > 0 && random() < 0.45;
    let threadId: string;
    if (reuse) threadId = pick([...ws.threads.keys()]);
    else {
      const [name, handle] = pick(contacts);
      threadId = `${handle}-${between(100, 999)}`;
      ws.threads.set(threadId, {
        platform: pick<InboxPlatform>(['twitter', 'instagram', 'facebook', 'whatsapp', 'email', 'linkedin']),
        contact: { id: handle, name, handle: `@${handle}` },
      });
      if (ws.threads.size > 12) ws.threads.delete(ws.threads.keys().next().value!);
    }
    const thread = ws.threads.get(threadId)!;
    const body = pick(inboundLines).replace('{n}', String(between(10_000, 99_999)));
    messageSeq += 1;
    track('inbound', async () => {
      const result = await target.caller.inbox.receive({
        workspaceId,
        platform: thread.platform,
        externalId: threadId,
        contact: thread.contact,
        body,
        platformMessageId: `demo-${Date.now().toString(36)}-${messageSeq}`,
      });
      // About half the messages get a teammate's answer a little later; the rest wait (and may escalate).
      if (random() < 0.5) {
        const responder = pick(ws.responders);
        const delay = between(4_000, 15_000);
        const timer = setTimeout(() => {
          timers.delete(timer);
          track('reply', () =>
            target.callerFor(principalFor(ws, responder)).inbox.send({
              conversationId: result.conversation.id,
              body: pick(replies),
              clientMessageId: `demo-reply-${result.message.id}`,
            }),
          );
        }, delay);
        timer.unref();
        timers.add(timer);
      }
    });
  };

  const mention = (ws: WorkspaceScript) => {
    const [name, handle] = pick(contacts);
    const platform = pick(['twitter', 'instagram', 'linkedin', 'reddit'] as const);
    const text = pick(mentionLines).replaceAll('{brand}', ws.brand);
    track('mention', () =>
      target.publish.sendMentionNotification({
        workspaceId: ws.workspaceId,
        title: `${name} mentioned ${ws.brand} on ${platform}`,
        body: text,
        data: { platform, author: `@${handle}`, text },
      }),
    );
  };

  const post = (ws: WorkspaceScript) => {
    const a = pick(ws.accounts);
    postSeq += 1;
    const postId = `post-${ws.workspaceId}-${Date.now().toString(36)}-${postSeq}`;
    const failed = random() < 0.2;
    const title = pick([
      'Spring campaign teaser',
      'Customer story: Northwind',
      'Product tips #12',
      'Behind the scenes',
      'Weekly roundup',
    ]);
    track('post', () =>
      target.publish.broadcastPostUpdate({
        workspaceId: ws.workspaceId,
        platform: a.platform,
        accountId: a.accountId,
        postId,
        title,
        status: failed ? 'failed' : 'published',
        ...(failed ? {} : { publishedAt: new Date().toISOString() }),
        metrics: { likes: 0, comments: 0, shares: 0 },
      }),
    );
    track(failed ? 'post_failed' : 'post_published', () =>
      failed
        ? target.publish.sendPostFailedNotification({
            workspaceId: ws.workspaceId,
            priority: 'high',
            title: `Post failed on ${a.platform}: “${title}”`,
            body: 'The platform rejected the media upload (token expired). Reconnect the account and retry.',
            data: { postId, platform: a.platform, error: 'OAuth token expired', retryable: true },
          })
        : target.publish.sendPostPublishedNotification({
            workspaceId: ws.workspaceId,
            priority: 'low',
            title: `Published on ${a.platform}: “${title}”`,
            data: { postId, platform: a.platform },
          }),
    );
  };

  const review = (ws: WorkspaceScript) => {
    const [name] = pick(contacts);
    const rating = pick([5, 5, 4, 4, 3, 2, 1]);
    track('review', () =>
      target.publish.sendReviewNotification({
        workspaceId: ws.workspaceId,
        title: `${'★'.repeat(rating)}${'☆'.repeat(5 - rating)} review from ${name}`,
        body: rating >= 4 ? 'Fast delivery and a lovely product.' : 'Support took too long to answer.',
        data: { platform: 'google', author: name, rating },
      }),
    );
  };

  const crisis = (ws: WorkspaceScript) => {
    const topic = pick(crisisTopics);
    track('crisis', () =>
      target.publish.sendCrisisAlert({
        workspaceId: ws.workspaceId,
        priority: 'urgent',
        title: `Negative spike: “${topic}”`,
        body: `Mentions of ${ws.brand} with “${topic}” are up 640% in the last 15 minutes.`,
        data: {
          severity: pick(['high', 'critical'] as const),
          topic,
          volume: between(800, 5_000),
          sentiment: -0.72,
        },
      }),
    );
  };

  for (const workspaceId of opts.workspaces ?? Object.keys(scripts)) {
    const base = scripts[workspaceId];
    if (!base) continue;
    const ws: WorkspaceScript = {
      ...base,
      accounts: base.accounts.map((a) => ({ ...a })),
      threads: new Map(),
    };
    // First paint: every account once, so the dashboard is never empty.
    for (const a of ws.accounts) publishAccount(ws, a, 0);
    // NOTE: after the first paint: older `at`s never replace the live values, they only fill history.
    const hours = opts.backfillHours ?? 24;
    if (hours > 0) track('backfill', () => backfill(ws, hours));
    every(tickMs, () => tick(ws), between(200, 800));
    every(tickMs * 6, () => inbound(ws), between(1_000, 3_000));
    every(tickMs * 14, () => mention(ws), between(3_000, 8_000));
    every(tickMs * 20, () => post(ws), between(5_000, 12_000));
    every(tickMs * 40, () => review(ws));
    // NOTE: rare on purpose (every few minutes keeps it special), but the first comes within the
    // first two minutes so a newcomer sees how a crisis stands out.
    every(tickMs * 160, () => crisis(ws), tickMs * between(45, 70));
  }

  return {
    stats: () => ({ ...counts }),
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.allSettled([...inFlight]);
    },
  };
}
