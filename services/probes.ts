import type { JetStreamManager } from "@nats-io/jetstream";
import { countDlq, readModelSeq, READ_MODELS_PROJECTION, withAllTenants, type Database, type ProjectorState } from "../projections/index.js";
import type { Topology } from "../streams/topology.js";
import type { MetricSources } from "./shared/metrics.js";

/** How far the read models are: the stream's last sequence and the read models' checkpoint. */
export interface ReadModelProgress {
  streamSeq: number;
  checkpoint: number;
}

/**
 * What the metrics and `/ready` read about the running process: its durable consumers, the read
 * models' progress, the DLQ and the circuits. Every call is one cheap round trip (a consumer or
 * stream info, a one-row select, a count).
 */
export interface Probes extends MetricSources {
  /**
   * True when every loop this process runs is alive (`loops`) and every durable consumer it runs
   * exists on the server.
   */
  consumersBound(): Promise<boolean>;
  /** The read models' progress; absent in a process without a database. */
  readModelProgress?: () => Promise<ReadModelProgress>;
}

export interface ProbeDeps {
  jsm: JetStreamManager;
  topology: Topology;
  /** Roles whose durable consumers this process runs: router, dispatcher, replayer. */
  consumers: readonly string[];
  /**
   * Whether each long-running loop of this process is alive: the durable consumers' loops, the
   * registry view following, the projector projecting or standing by for its lock.
   */
  loops?: ReadonlyArray<() => boolean>;
  db?: Database;
  /** The registry view, for the open circuits. */
  view?: { openCircuits(): number };
}

/**
 * The projector's loop, as readiness counts it: alive while it projects, and while it stands by for
 * the lock another process holds (it takes over when that one stops); not while it is down.
 */
export const projectorAlive = (projector: { state(): ProjectorState }) => (): boolean => projector.state() !== "down";

export function createProbes({ jsm, topology, consumers, loops = [], db, view }: ProbeDeps): Probes {
  const pendingOf = async (role: string) => {
    const info = await jsm.consumers.info(topology.stream, topology.consumerName(role));
    return { consumer: role, pending: info.num_pending, ackPending: info.num_ack_pending };
  };
  const readModelProgress = db
    ? async (): Promise<ReadModelProgress> => {
        const [stream, checkpoint] = await Promise.all([jsm.streams.info(topology.stream), readModelSeq(db)]);
        return { streamSeq: stream.state.last_seq, checkpoint };
      }
    : undefined;

  return {
    async consumersBound() {
      if (!loops.every((alive) => alive())) return false;
      await Promise.all(consumers.map(pendingOf));
      return true;
    },
    readModelProgress,
    // A consumer that does not answer is left out of this scrape rather than failing it.
    consumerPending:
      consumers.length === 0 ? undefined : async () => (await Promise.allSettled(consumers.map(pendingOf))).flatMap((r) => (r.status === "fulfilled" ? [r.value] : [])),
    projectionLag: readModelProgress
      ? async () => {
          const { streamSeq, checkpoint } = await readModelProgress();
          return [{ projection: READ_MODELS_PROJECTION, lag: Math.max(0, streamSeq - checkpoint) }];
        }
      : undefined,
    // Every tenant's entries: an operator-wide read opts in past row-level security.
    dlqSize: db ? () => withAllTenants(db, countDlq) : undefined,
    circuitOpenEndpoints: view ? () => view.openCircuits() : undefined,
  };
}
