import { ConfigError, loadConfig } from "./shared/config.js";
import { createLogger } from "./shared/logger.js";
import { DependencyUnreachable, startPlatform } from "./platform.js";

/**
 * `npm start`: every role of ZEN_ROLES in this process, configured by the environment alone.
 * A missing dependency is one clear line on stderr and exit code 1, never a stack trace.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  // The bind address is no one's personal data: its start-up line keeps it.
  const logger = createLogger(config.logLevel, undefined, { allow: [...config.redactAllow, config.host] });
  const platform = await startPlatform(config, logger);
  logger.info({ roles: config.roles, url: platform.url, opsUrl: platform.opsUrl, prefix: config.streamPrefix }, "zen-webhooks started");
  if (config.opsPort !== undefined && platform.url) logger.info("ZEN_OPS_PORT is not used: the api serves /metrics, /health and /ready in this process");

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: draining consumers");
    const forced = setTimeout(() => process.exit(1), 30_000).unref();
    await platform.stop();
    clearTimeout(forced);
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof DependencyUnreachable) {
    process.stderr.write(`zen-webhooks: ${error.message}\n`);
  } else {
    process.stderr.write(`zen-webhooks: failed to start: ${(error as Error)?.message ?? String(error)}\n`);
  }
  process.exit(1);
});
