import type { CircuitOut, EndpointOut } from "../../../contracts/http/endpoints.js";
import type { EndpointCircuit, EndpointState } from "../../../domain/endpoint/endpoint.js";
import type { EndpointView } from "../../../streams/registry-view.js";

type KnownState = Exclude<EndpointState, { status: "absent" }>;

/** The public form of a circuit: its state and, when set, its times. */
export function renderCircuit(circuit: EndpointCircuit): CircuitOut {
  const { state, halfOpenAt, failingSince } = circuit;
  return { state, ...(halfOpenAt === undefined ? {} : { halfOpenAt }), ...(failingSince === undefined ? {} : { failingSince }) };
}

/** The public form of an endpoint's state: never its secret; absent optional fields are null. */
export function renderEndpoint(id: string, state: KnownState, createdAt: string, updatedAt: string): EndpointOut {
  return {
    id,
    url: state.url,
    description: state.description ?? null,
    eventTypes: state.eventTypes,
    active: state.status === "active",
    disabledReason: state.disabledReason ?? null,
    rateLimit: state.rateLimit ?? null,
    retryPolicy: state.retryPolicy ?? null,
    deliveryPolicy: state.deliveryPolicy ?? null,
    metadata: state.metadata ?? null,
    circuit: renderCircuit(state.circuit),
    createdAt,
    updatedAt,
  };
}

export const renderView = (view: EndpointView): EndpointOut => renderEndpoint(view.endpointId, view.state, view.createdAt, view.updatedAt);
