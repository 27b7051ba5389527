import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "./shared/config.js";
import { createLogger } from "./shared/logger.js";
import { DependencyUnreachable, startPlatform } from "./platform.js";
import { ChildStartFailed, STARTED_MESSAGE, supervise } from "./supervisor.js";

/**
 * `npm start`: with ZEN_ROLES, those roles in this process; without it, the processes of
 * ZEN_PROCESSES (one per group of roles, supervised). Configured by the environment alone; a
 * missing dependency is one clear line on stderr and exit code 1, never a stack trace.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  // The bind address is no one's personal data: its start-up line keeps it.
  const logger = createLogger(config.logLevel, undefined, { allow: [...config.redactAllow, config.host] });
  const supervised = !process.env.ZEN_ROLES && config.processes.length > 1;
  // Signals count from the first moment: one during start-up stops what has started, once it has.
  const starting = supervised ? supervise({ script: fileURLToPath(import.meta.url), layout: config.processes, logger }) : startRoles(config, logger);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: draining consumers");
    const forced = setTimeout(() => process.exit(1), 35_000).unref();
    const running = await starting.catch(() => process.exit(1));
    await running.stop();
    clearTimeout(forced);
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  // A supervised process whose supervisor is gone (killed, crashed) drains and stops.
  process.on("disconnect", () => void shutdown("supervisor gone"));
  await starting;
}

async function startRoles(config: ReturnType<typeof loadConfig>, logger: ReturnType<typeof createLogger>) {
  const roles = process.env.ZEN_ROLES ? config.roles : config.processes.flat();
  const platform = await startPlatform({ ...config, roles }, logger);
  logger.info({ roles, url: platform.url, opsUrl: platform.opsUrl, prefix: config.streamPrefix }, "zen-webhooks started");
  if (config.opsPort !== undefined && platform.url) logger.info("ZEN_OPS_PORT is not used: the api serves /metrics, /health and /ready in this process");
  process.send?.(STARTED_MESSAGE);
  return platform;
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof DependencyUnreachable) {
    process.stderr.write(`zen-webhooks: ${error.message}\n`);
  } else if (!(error instanceof ChildStartFailed)) {
    process.stderr.write(`zen-webhooks: failed to start: ${(error as Error)?.message ?? String(error)}\n`);
  }
  // (A child that could not start has written why on stderr.)
  process.exit(1);
});
