import { setTimeout as sleep } from "node:timers/promises";
import { expect, inject } from "vitest";
import { appendRow } from "./suite.js";
import type { Client, TestTenant } from "../support/tenants.js";
import type { ReceivedRequest, Receiver } from "../support/receiver.js";

/**
 * One endpoint per receiver path, subscribed to the load's event type, its secret given to the
 * receiver; `settings` adds to each (a retry or delivery policy).
 */
export async function createEndpoints(tenant: TestTenant, receiver: Receiver, paths: readonly string[], settings: Record<string, unknown> = {}): Promise<string[]> {
  const ids: string[] = [];
  for (const path of paths) {
    const endpoint = await tenant.client("POST", "/v1/webhooks/registry", { url: receiver.url(path), eventTypes: ["fault.*"], ...settings });
    expect(endpoint.status).toBe(201);
    receiver.setSecret(path, endpoint.body.secret);
    ids.push(endpoint.body.id);
  }
  return ids;
}

/** One ingest request of the load: its number (in the payload), when it was sent and answered, and how. */
export interface Sent {
  n: number;
  sentAt: number;
  answeredAt: number;
  status: number;
  messageId?: string;
}

/**
 * A steady ingest load (`perSecond` requests, each numbered in its payload as `n`) until `stop()`.
 * Requests run concurrently; each answer (or failure, status 0) is recorded.
 */
export function startLoad(client: Client, perSecond: number, eventType = "fault.test") {
  const sent: Sent[] = [];
  const pending = new Set<Promise<void>>();
  let running = true;
  let n = 0;
  const loop = (async () => {
    const started = Date.now();
    while (running) {
      const number = n++;
      const sentAt = Date.now();
      const request = client("POST", "/v1/webhooks/ingest", { eventType, payload: { n: number } }, {})
        .then((response) => {
          sent.push({ n: number, sentAt, answeredAt: Date.now(), status: response.status, messageId: response.body?.messageId });
        })
        .catch(() => {
          sent.push({ n: number, sentAt, answeredAt: Date.now(), status: 0 });
        });
      pending.add(request);
      void request.finally(() => pending.delete(request));
      const due = started + (n * 1000) / perSecond;
      await sleep(Math.max(0, due - Date.now()));
    }
  })();
  return {
    sent,
    async stop(): Promise<Sent[]> {
      running = false;
      await loop;
      await Promise.all(pending);
      return sent;
    },
  };
}

/** What a fault scenario ends with, counted as Jepsen counts: by what was acknowledged and what arrived. */
export interface Tally {
  accepted: number;
  /** Acknowledged (202) but never delivered to some endpoint. */
  lost: number;
  /** Delivered though its request was refused (a 4xx or 5xx answer), or never sent at all. */
  unexpected: number;
  /**
   * Delivered though its request got no answer (the api was killed between storing the event and
   * answering): it may or may not have happened, as Jepsen counts it; a client retries it with its
   * `eventId`.
   */
  indeterminate: number;
  duplicates: number;
  unverified: number;
  /**
   * The longest time an accepted message waited for its delivery outside the faults that stop
   * delivery: from its 202 to its arrival, less the time within such faults (ms).
   */
  maxWaitAfterClearMs: number;
  /**
   * The same longest wait, per fault: entry i for deliveries that arrived after fault i ended and
   * before the next one did (so a failing run says which fault was slow to recover from).
   */
  maxWaitByFaultMs: number[];
  /** Requests not answered 202, sent from a second after a fault's end and answered before the next fault began. */
  failuresAfterClear: number;
  /** Those requests, for the report: what they were answered and when. */
  refusedAfterClear: Array<{ n: number; status: number; sentAt: number; answeredAt: number }>;
  /** The lost ones, by endpoint path, for the report. */
  lostMessages: Array<{ path: string; n: number; messageId?: string }>;
}

/**
 * One fault of a scenario: when it began and ended (the restarted process ready, the server or the
 * receiver back), and whether the platform can deliver meanwhile. The time a message spends inside
 * a fault that stops delivery (a router or dispatcher down, NATS away, the receiver failing) is not
 * counted as waiting; all the rest of its wait is, across every later fault, so a backlog left by
 * one fault cannot drain slowly under cover of the next.
 */
export interface FaultWindow {
  startedAt: number;
  clearedAt: number;
  blocksDelivery: boolean;
}

/** Counts the load's requests against what the receiver got on `paths` (each path one endpoint); `faults` oldest first. */
export function tally(sent: readonly Sent[], receiver: Receiver, paths: readonly string[], faults: readonly FaultWindow[]): Tally {
  const blocking = faults.filter((fault) => fault.blocksDelivery);
  const waited = (from: number, to: number) =>
    to - from - blocking.reduce((inside, fault) => inside + Math.max(0, Math.min(to, fault.clearedAt) - Math.max(from, fault.startedAt)), 0);
  const lastClearIndex = (at: number) => faults.findLastIndex((fault) => fault.clearedAt <= at);
  const maxWaitByFaultMs = faults.map(() => 0);
  const acceptedByN = new Map(sent.filter((s) => s.status === 202).map((s) => [s.n, s] as const));
  const lostMessages: Tally["lostMessages"] = [];
  let unexpected = 0;
  let indeterminate = 0;
  const unanswered = new Set(sent.filter((s) => s.status === 0).map((s) => s.n));
  let duplicates = 0;
  let unverified = 0;
  let maxWaitAfterClearMs = 0;
  for (const path of paths) {
    const firstArrival = new Map<number, number>();
    // Delivered: answered 2xx. A request the receiver refused (503) or let hang was an attempt, not a delivery.
    for (const request of receiver.on(path).filter(delivered)) {
      if (!request.verified) unverified++;
      const n = request.body.data.n as number;
      if (firstArrival.has(n)) duplicates++;
      else firstArrival.set(n, request.at);
    }
    for (const [n, s] of acceptedByN) {
      const at = firstArrival.get(n);
      if (at === undefined) {
        lostMessages.push({ path, n, messageId: s.messageId });
        continue;
      }
      const wait = waited(s.answeredAt, at);
      maxWaitAfterClearMs = Math.max(maxWaitAfterClearMs, wait);
      const fault = lastClearIndex(at);
      if (fault >= 0) maxWaitByFaultMs[fault] = Math.max(maxWaitByFaultMs[fault]!, wait);
    }
    for (const n of firstArrival.keys()) {
      if (acceptedByN.has(n)) continue;
      if (unanswered.has(n)) indeterminate++;
      else unexpected++;
    }
  }
  // Sent from a second after a fault's end and answered before the next fault began: a request the
  // next fault cut off (the api killed while it was in flight) is that fault's, not a slow recovery.
  const betweenFaults = (s: Sent) =>
    faults.some((fault, index) => s.sentAt >= fault.clearedAt + 1_000 && s.answeredAt < (faults[index + 1]?.startedAt ?? Number.POSITIVE_INFINITY));
  const refusedAfterClear = sent.filter((s) => s.status !== 202 && betweenFaults(s));
  return {
    accepted: acceptedByN.size,
    lost: lostMessages.length,
    lostMessages,
    unexpected,
    indeterminate,
    duplicates,
    unverified,
    maxWaitAfterClearMs,
    maxWaitByFaultMs,
    failuresAfterClear: refusedAfterClear.length,
    refusedAfterClear: refusedAfterClear.map(({ n, status, sentAt, answeredAt }) => ({ n, status, sentAt, answeredAt })),
  };
}

const delivered = (request: ReceivedRequest) => request.answered !== undefined && request.answered < 300;

/** Waits (bounded) until every accepted request arrived on every path, or nothing new arrived for `stallMs`. */
export async function waitForDeliveries(sent: readonly Sent[], receiver: Receiver, paths: readonly string[], timeoutMs: number, stallMs = 20_000): Promise<void> {
  const wanted = sent.filter((s) => s.status === 202).length * paths.length;
  const deadline = Date.now() + timeoutMs;
  let lastCount = -1;
  let lastChange = Date.now();
  while (Date.now() < deadline) {
    const accepted = new Set(sent.filter((s) => s.status === 202).map((s) => s.n));
    let arrived = 0;
    for (const path of paths)
      arrived += new Set(
        receiver
          .on(path)
          .filter(delivered)
          .map((r) => r.body.data.n as number)
          .filter((n) => accepted.has(n)),
      ).size;
    if (arrived >= wanted) return;
    if (arrived !== lastCount) {
      lastCount = arrived;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > stallMs) return;
    await sleep(100);
  }
}

/**
 * What every scenario must end with: nothing acknowledged lost, nothing delivered that was refused
 * or never sent, every request verified, each delivery within 10 s of the fault's end, ingest answering 202
 * from a second after it. Reports the figures first, so a failing run shows them all.
 */
export function expectRecovered(scenario: string, t: Tally, minAccepted: number): void {
  report(scenario, t);
  expect(t.accepted).toBeGreaterThan(minAccepted);
  expect(t.lost).toBe(0);
  expect(t.unexpected).toBe(0);
  expect(t.unverified).toBe(0);
  expect(t.maxWaitAfterClearMs).toBeLessThanOrEqual(10_000);
  expect(t.failuresAfterClear).toBe(0);
}

/**
 * The read models agree with the receiver, pair by pair: every accepted message has a `succeeded`
 * delivery to each endpoint (so every pair is terminal, none dead), the only other deliveries are
 * the indeterminate ones that arrived (also `succeeded`), and the DLQ is empty. Waits (bounded) for
 * the projector to catch up.
 */
export async function expectReadModelsAgree(client: Client, sent: readonly Sent[], t: Tally, endpointIds: readonly string[], timeoutMs = 60_000): Promise<void> {
  const pairs = t.accepted * endpointIds.length + t.indeterminate;
  const deadline = Date.now() + timeoutMs;
  let deliveries: DeliveryRow[] = [];
  while (Date.now() < deadline) {
    deliveries = await listDeliveries(client);
    if (deliveries.filter((d) => d.status === "succeeded").length >= pairs) break;
    await sleep(500);
  }
  expect(deliveries.filter((d) => d.status !== "succeeded").map((d) => `${d.messageId}/${d.endpointId} ${d.status}`)).toEqual([]);
  expect(deliveries).toHaveLength(pairs);
  const succeeded = new Set(deliveries.map((d) => `${d.messageId}/${d.endpointId}`));
  const missing = sent
    .filter((s) => s.status === 202)
    .flatMap((s) => endpointIds.map((endpointId) => `${s.messageId}/${endpointId}`))
    .filter((pair) => !succeeded.has(pair));
  expect(missing).toEqual([]);
  const dlq = await client("GET", "/v1/webhooks/dlq?limit=1");
  expect(dlq.body.data).toEqual([]);
}

interface DeliveryRow {
  messageId: string;
  endpointId: string;
  status: string;
}

async function listDeliveries(client: Client): Promise<DeliveryRow[]> {
  const rows: DeliveryRow[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ limit: "500", ...(cursor ? { cursor } : {}) });
    const page: { status: number; body: { data: DeliveryRow[]; nextCursor: string | null } } = await client("GET", `/v1/webhooks/deliveries?${query}`);
    expect(page.status).toBe(200);
    rows.push(...page.body.data);
    cursor = page.body.nextCursor;
  } while (cursor);
  return rows;
}

/** One line per scenario, so a CI log shows every figure, and its row in the suite's closing table. */
export function report(scenario: string, t: Tally): void {
  console.log(
    `[faults] ${scenario}: accepted ${t.accepted}, lost ${t.lost}, unexpected ${t.unexpected}, indeterminate ${t.indeterminate}, ` +
      `duplicates ${t.duplicates}, unverified ${t.unverified}, max wait after recovery ${t.maxWaitAfterClearMs} ms ` +
      `(per fault: ${t.maxWaitByFaultMs.join(", ") || "-"} ms), failures after recovery ${t.failuresAfterClear}`,
  );
  for (const refused of t.refusedAfterClear.slice(0, 10)) console.log(`[faults] refused after recovery: ${JSON.stringify(refused)}`);
  const { accepted, lost, unexpected, indeterminate, duplicates, unverified, maxWaitAfterClearMs, failuresAfterClear } = t;
  appendRow(inject("faultsReport"), { scenario, accepted, lost, unexpected, indeterminate, duplicates, unverified, maxWaitAfterClearMs, failuresAfterClear });
}

/**
 * For each lost message, what the read models hold of its deliveries (none: never routed; pending:
 * routed, never attempted), so a failing run says where it stopped. Call before the expectations.
 */
export async function explainLost(client: Client, t: Tally): Promise<void> {
  for (const [index, { path, n, messageId }] of t.lostMessages.slice(0, 10).entries()) {
    const deliveries = messageId ? await client("GET", `/v1/webhooks/deliveries?messageId=${messageId}`) : undefined;
    const found: Array<{
      id: string;
      endpointId: string;
      status: string;
      attempts: number;
      lastStatusCode: number | null;
      lastErrorClass: string | null;
      lastError: string | null;
      nextAttemptAt: string | null;
    }> = deliveries?.body?.data ?? [];
    const states = found.map(
      (d) =>
        `${d.endpointId} ${d.status} (${d.attempts} attempts; last ${d.lastStatusCode ?? d.lastErrorClass ?? "-"} ${d.lastError ?? ""}; next ${d.nextAttemptAt ?? "-"})`,
    );
    console.log(`[faults] lost: n=${n} ${messageId ?? "?"} on ${path}; deliveries in the read models: ${states.join("; ") || "none"}`);
    if (index > 0 || !found[0]) continue;
    // The first one's attempts, when each started and how long it took.
    const detail = await client("GET", `/v1/webhooks/deliveries/${found[0].id}`);
    for (const a of (detail.body?.attempts ?? []) as Array<{
      startedAt: string;
      latencyMs: number;
      statusCode: number | null;
      errorClass: string;
      error: string | null;
    }>) {
      console.log(`[faults]   attempt started ${a.startedAt} (${Date.parse(a.startedAt)}), ${a.latencyMs} ms: ${a.statusCode ?? a.errorClass} ${a.error ?? ""}`);
    }
  }
}
