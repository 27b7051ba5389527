/** How long each measurement lasts, full and --quick. A ceiling and its scenario use the same. */
export const durations = (quick: boolean) => ({
  warmupS: quick ? 2 : 3,
  ingestS: quick ? 5 : 20,
  publishS: quick ? 4 : 10,
  postS: quick ? 4 : 10,
  pgS: quick ? 4 : 10,
  e2eS: quick ? 10 : 60,
  latencyS: quick ? 10 : 30,
  fanoutDeliveries: quick ? 3_000 : 20_000,
  projectionEvents: quick ? 20_000 : 200_000,
  rebuildEvents: 1_000_000,
  backlogDeliveries: quick ? 5_000 : 100_000,
});

/** Connections of the closed-loop ingest load (the figure). */
export const INGEST_CONNECTIONS = 50;
