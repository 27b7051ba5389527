import { createConnection } from "node:net";
import { GenericContainer, getContainerRuntimeClient, Wait, type StartedTestContainer } from "testcontainers";

/**
 * Tests run against the machine's NATS and Postgres (NATS_URL / DATABASE_URL, or the local
 * defaults). Only where one is unreachable and a Docker engine runs does this start a throwaway
 * container for it, with testcontainers, and point the tests at it.
 */
const started: StartedTestContainer[] = [];

const reachable = (url: string, defaultPort: number) =>
  new Promise<boolean>((resolve) => {
    const { hostname, port } = new URL(url);
    const socket = createConnection({ host: hostname, port: Number(port || defaultPort) });
    const answer = (up: boolean) => {
      socket.destroy();
      resolve(up);
    };
    socket.setTimeout(1_000);
    socket.once("connect", () => answer(true));
    socket.once("error", () => answer(false));
    socket.once("timeout", () => answer(false));
  });

async function dockerRuns(): Promise<boolean> {
  try {
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

export async function setup(): Promise<void> {
  const natsUrl = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
  const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const natsUp = await reachable(natsUrl, 4222);
  const postgresUp = await reachable(databaseUrl, 5432);
  if (natsUp && postgresUp) return;
  if (!(await dockerRuns())) {
    throw new Error(
      `tests need NATS (${natsUp ? "up" : "down"} at ${natsUrl}) and PostgreSQL (${postgresUp ? "up" : "down"}); start them (bash .ci/services.sh) or run Docker`,
    );
  }
  if (!natsUp) {
    const nats = await new GenericContainer("nats:2.10-alpine")
      .withCommand(["-js"])
      .withExposedPorts(4222)
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
      .start();
    started.push(nats);
    process.env.NATS_URL = `nats://${nats.getHost()}:${nats.getMappedPort(4222)}`;
  }
  if (!postgresUp) {
    const postgres = await new GenericContainer("postgres:15-alpine")
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: "trust" })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    started.push(postgres);
    process.env.DATABASE_URL = `postgres://postgres@${postgres.getHost()}:${postgres.getMappedPort(5432)}/postgres`;
  }
}

export async function teardown(): Promise<void> {
  for (const container of started) await container.stop();
}
