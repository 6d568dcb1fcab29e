import { CompiledQuery, type Kysely, type QueryResult } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: a hot statement runs on any domain's tables
type AnyDb = Kysely<any>;

/** A query builder or a `sql` template (which compiles with the database it is given). */
interface Buildable<R> {
  compile(db: AnyDb): CompiledQuery<R>;
}

/** Stands for the statement's `index`-th argument while it is built and compiled once. */
class Slot {
  constructor(readonly index: number) {}
}

interface Compiled {
  sql: string;
  /** The compiled parameters: a `Slot` is replaced by its argument at each run, anything else is kept. */
  parameters: readonly unknown[];
}

/**
 * A statement on a hot path (a durable write's few statements), built with Kysely once per dialect
 * and kept compiled: each run binds its arguments into the kept SQL, skipping the query builder and
 * compiler (about a fifth of a durable send's CPU, bench/src/durable-writes.ts). `build` receives
 * stand-ins for the arguments (pass them where values go; never inspect them); it must build the
 * same statement whatever the arguments are (no branch on them, no list whose length varies).
 *
 * @example
 * const bump = new HotQuery((db, key: unknown) =>
 *   db.updateTable('pulse_streams').set({ seq: sql`seq + 1` }).where('stream_key', '=', key));
 * await bump.execute(trx, streamKey);
 */
export class HotQuery<A extends unknown[], R = unknown> {
  /** Kept per dialect adapter (one per store; its transactions share it). */
  private readonly compiled = new WeakMap<object, Compiled>();
  private readonly arity: number;

  constructor(private readonly build: (db: AnyDb, ...args: A) => Buildable<R>) {
    this.arity = build.length - 1;
  }

  execute(db: AnyDb, ...args: A): Promise<QueryResult<R>> {
    const adapter = db.getExecutor().adapter;
    let kept = this.compiled.get(adapter);
    if (!kept) {
      try {
        kept = this.compile(db);
      } catch (error) {
        return Promise.reject(error);
      }
      this.compiled.set(adapter, kept);
    }
    const parameters = kept.parameters.map((p) => (p instanceof Slot ? args[p.index] : p));
    return db.executeQuery<R>(CompiledQuery.raw(kept.sql, parameters));
  }

  private compile(db: AnyDb): Compiled {
    const slots = Array.from({ length: this.arity }, (_, i) => new Slot(i));
    const { sql, parameters } = this.build(db, ...(slots as unknown as A)).compile(db);
    const used = new Set(parameters.flatMap((p) => (p instanceof Slot ? [p.index] : [])));
    if (used.size !== this.arity) {
      throw new Error(
        `HotQuery: ${this.arity - used.size} of ${this.arity} arguments are not parameters of: ${sql}`,
      );
    }
    return { sql, parameters };
  }
}
