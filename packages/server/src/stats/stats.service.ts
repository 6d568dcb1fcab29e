import type { Principal } from '../auth/auth.schema.js';
import type { Store } from '../infra/store/db.js';
import type { GlobalStats, NodeStats, WorkspaceStats } from './stats.schema.js';
import type { NodeStatsTable } from './stats.tables.js';

/** Live counts of this node's transport and hub (read on demand). */
export type NodeCounts = Omit<NodeStats, 'nodeId' | 'at'>;

/** What one node reports: its counts and its share of each workspace. */
export interface NodeReport {
  node: NodeStats;
  workspaces: Record<string, { connections: number; subscriptions: number }>;
}

export interface StatsServiceOptions {
  nodeId: string;
  store: Store;
  /** This node's counts (transport + hub). */
  counts(): NodeCounts;
  /** Users present, in one workspace or overall (presence). */
  countOnline(workspaceId?: string): Promise<number>;
  /** How often a node writes its report to the store for the others; 0 disables it. */
  reportEveryMs?: number;
}

/**
 * Connections, subscriptions and online users per node and per workspace. Each node counts its own
 * sockets; peers' counts come from the reports every node writes to the shared store, so
 * `stats.global` on any node lists the whole cluster.
 */
export class StatsService {
  /** connectionId -> workspaces its token grants. */
  private readonly connections = new Map<string, string[]>();
  private readonly workspaceConnections = new Map<string, number>();
  private readonly workspaceSubscriptions = new Map<string, number>();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly db;

  constructor(private readonly opts: StatsServiceOptions) {
    this.db = opts.store.db.withTables<NodeStatsTable>();
    const every = opts.reportEveryMs ?? 5_000;
    if (every > 0) {
      this.timer = setInterval(() => void this.report().catch(() => {}), every);
      this.timer.unref();
    }
  }

  /** A socket authenticated as `principal`. */
  connectionOpened(connectionId: string, principal: Principal): void {
    const workspaces = Object.keys(principal.workspaces);
    this.connections.set(connectionId, workspaces);
    for (const w of workspaces) bump(this.workspaceConnections, w, 1);
  }

  connectionClosed(connectionId: string): void {
    const workspaces = this.connections.get(connectionId);
    if (!workspaces) return;
    this.connections.delete(connectionId);
    for (const w of workspaces) bump(this.workspaceConnections, w, -1);
  }

  /** A subscription to a workspace's stream started; it is counted until `signal` aborts. */
  subscriptionStarted(workspaceId: string, signal: AbortSignal | undefined): void {
    if (!signal || signal.aborted) return;
    bump(this.workspaceSubscriptions, workspaceId, 1);
    // NOTE: a listener object, not a closure: one of these lives with every open subscription.
    signal.addEventListener('abort', new SubscriptionEnd(this.workspaceSubscriptions, workspaceId), {
      once: true,
    });
  }

  /** This node's report. */
  local(): NodeReport {
    const node: NodeStats = { nodeId: this.opts.nodeId, ...this.opts.counts(), at: new Date().toISOString() };
    // NOTE: keyed by workspace ids: no prototype, so an id can never hit an inherited member.
    const workspaces: NodeReport['workspaces'] = Object.create(null);
    for (const [w, connections] of this.workspaceConnections)
      workspaces[w] = { connections, subscriptions: 0 };
    for (const [w, subscriptions] of this.workspaceSubscriptions)
      workspaces[w] = { connections: workspaces[w]?.connections ?? 0, subscriptions };
    return { node, workspaces };
  }

  /** Every live node's report, this node's read fresh; peers' from the store (stale ones skipped). */
  async reports(): Promise<NodeReport[]> {
    const local = this.local();
    const freshAfter = Date.now() - 3 * (this.opts.reportEveryMs || 5_000);
    let peers: NodeReport[] = [];
    try {
      const rows = await this.db
        .selectFrom('pulse_node_stats')
        .select(['node_id', 'report'])
        .where('updated_at', '>', freshAfter)
        .where('node_id', '!=', this.opts.nodeId)
        .execute();
      peers = rows.map((r) => JSON.parse(r.report) as NodeReport);
    } catch {
      // NOTE: without the store this node still answers for itself.
    }
    return [local, ...peers].sort((a, b) => a.node.nodeId.localeCompare(b.node.nodeId));
  }

  async global(): Promise<GlobalStats> {
    const reports = await this.reports();
    const nodes = reports.map((r) => r.node);
    return {
      nodes,
      totals: {
        connections: sum(nodes.map((n) => n.connections)),
        subscriptions: sum(nodes.map((n) => n.subscriptions)),
        onlineUsers: await this.opts.countOnline(),
      },
      at: new Date().toISOString(),
    };
  }

  async workspace(workspaceId: string): Promise<WorkspaceStats> {
    const reports = await this.reports();
    const nodes = reports.map((r) => ({
      nodeId: r.node.nodeId,
      connections: Object.hasOwn(r.workspaces, workspaceId)
        ? (r.workspaces[workspaceId]?.connections ?? 0)
        : 0,
      subscriptions: Object.hasOwn(r.workspaces, workspaceId)
        ? (r.workspaces[workspaceId]?.subscriptions ?? 0)
        : 0,
    }));
    return {
      workspaceId,
      connections: sum(nodes.map((n) => n.connections)),
      subscriptions: sum(nodes.map((n) => n.subscriptions)),
      onlineUsers: await this.opts.countOnline(workspaceId),
      nodes,
      at: new Date().toISOString(),
    };
  }

  /** Writes this node's report for its peers. */
  async report(): Promise<void> {
    const report = JSON.stringify(this.local());
    const updatedAt = Date.now();
    await this.db
      .insertInto('pulse_node_stats')
      .values({ node_id: this.opts.nodeId, report, updated_at: updatedAt })
      .onConflict((oc) => oc.column('node_id').doUpdateSet({ report, updated_at: updatedAt }))
      .execute();
  }

  /** Counters this service holds (leak checks). */
  stats() {
    return {
      connections: this.connections.size,
      workspaceSubscriptions: sum([...this.workspaceSubscriptions.values()]),
    };
  }

  /** Stops reporting and removes this node's row. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.db
      .deleteFrom('pulse_node_stats')
      .where('node_id', '=', this.opts.nodeId)
      .execute()
      .catch(() => {});
  }
}

function bump(map: Map<string, number>, key: string, by: number) {
  const n = (map.get(key) ?? 0) + by;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** Uncounts one subscription when its signal aborts (an `EventListener` object). */
class SubscriptionEnd {
  constructor(
    private readonly counts: Map<string, number>,
    private readonly workspaceId: string,
  ) {}
  handleEvent(): void {
    bump(this.counts, this.workspaceId, -1);
  }
}
