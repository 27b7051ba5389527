import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "./support/platform.js";

/** The api's request timeout (`ZEN_REQUEST_TIMEOUT_MS`) against a client that trickles its body. */
describe("a request body trickled a byte at a time", () => {
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await startTestPlatform({ ZEN_REQUEST_TIMEOUT_MS: "1500", LOG_LEVEL: "warn" });
  });
  afterAll(() => platform?.stop());

  it("is cut off at the timeout with a 408 and the connection closed", async () => {
    const { port } = new URL(platform.url);
    const socket = connect({ host: "127.0.0.1", port: Number(port) });
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const started = Date.now();
    let answer = "";
    socket.on("data", (chunk) => (answer += chunk.toString("utf8")));
    const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now() - started)));
    // The inbound route reads the body before it answers anything (its callers bring no credential).
    const path = `/v1/inbound/ten_${"0".repeat(26)}/src_${"0".repeat(26)}`;
    socket.write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{`);
    // One byte every 250 ms, at most 40 of them (10 s): the server must end it long before.
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(" ");
    }, 250);
    const stopTrickling = setTimeout(() => {
      clearInterval(trickle);
      socket.destroy();
    }, 10_000);
    const elapsedMs = await closed;
    clearInterval(trickle);
    clearTimeout(stopTrickling);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('"code":"invalid_request"');
    // The timeout (1.5 s), checked every second.
    expect(elapsedMs).toBeGreaterThanOrEqual(1_400);
    expect(elapsedMs).toBeLessThan(4_000);
  });
});
