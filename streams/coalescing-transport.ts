import { NatsConnectionImpl, setTransportFactory, type ConnectionOptions, type NatsConnection } from "@nats-io/nats-core/internal";
import { NodeTransport, nodeResolveHost } from "@nats-io/transport-node/lib/node_transport.js";

/**
 * The Node transport with its writes gathered per turn of the event loop. The client flushes its
 * buffer after every microtask checkpoint, so under load each HTTP request, response and consumer
 * batch handled became a socket write of its own: a third of the platform's CPU was in `writev`
 * and `writeBuffer` in a profile of the end-to-end bench. Corked until `setImmediate`, everything
 * one turn wrote leaves in a single `writev`; the bytes and their order are unchanged.
 */
class CoalescingTransport extends NodeTransport {
  private corked = false;

  override send(frame: Uint8Array): void {
    const socket = this.socket;
    if (socket && !this.corked && !socket.destroyed) {
      this.corked = true;
      socket.cork();
      setImmediate(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    super.send(frame);
  }
}

/** `connect()` of `@nats-io/transport-node`, with the coalescing transport. */
export function connectCoalescing(options: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: () => new CoalescingTransport(), dnsResolveFn: nodeResolveHost });
  return NatsConnectionImpl.connect(options);
}
