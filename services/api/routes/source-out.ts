import type { SourceOut } from "../../../contracts/http/sources.js";
import type { SourceState } from "../../../domain/source/source.js";
import type { SourceView } from "../../../streams/registry-view.js";

type KnownState = Exclude<SourceState, { status: "absent" }>;

/** Where a source's provider POSTs. */
export const inboundPathOf = (tenantId: string, sourceId: string) => `/v1/inbound/${tenantId}/${sourceId}`;

/** The public form of a source's state: never its secret; absent optional fields are null. */
export function renderSource(tenantId: string, id: string, state: KnownState, createdAt: string, updatedAt: string): SourceOut {
  return {
    id,
    name: state.name,
    scheme: state.scheme,
    hmac: state.hmac ?? null,
    eventTypeFrom: state.eventTypeFrom ?? null,
    inboundPath: inboundPathOf(tenantId, id),
    createdAt,
    updatedAt,
  };
}

export const renderSourceView = (view: SourceView): SourceOut => renderSource(view.tenantId, view.sourceId, view.state, view.createdAt, view.updatedAt);
