import { apiKeyDecider, type ApiKeyState } from "../../domain/apikey/apikey.js";
import type { ApiDeps } from "./deps.js";
import { keyIdOf, safeEqual, sha256Hex } from "./keys.js";
import { createStoreReadGuard, type StoreReadGuardOptions } from "./store-read-guard.js";

/** A key found by its token: whose it is (its tenant, from where it was stored) and its state. */
export interface FoundKey {
  keyId: string;
  tenantId: string;
  state: Exclude<ApiKeyState, { status: "absent" }>;
}

export type KeyLookupOptions = StoreReadGuardOptions;

/**
 * Finds an API key by its token: in the registry view, or, for a key created a moment ago that the
 * view has not applied yet, in the event store. The store read is bounded so that unknown `zk_`
 * tokens cannot make one JetStream read per request: only a well-formed key whose id (a ULID) is
 * recent is looked for, tokens found nowhere are remembered for a while, and at most
 * `storeReadsPerSecond` look-ups run a second. The key's tenant comes from where it is stored (its
 * subject), never from the request, so a key naming another tenant is told apart from an unknown one.
 */
export function createKeyLookup({ store, view }: Pick<ApiDeps, "store" | "view">, options: KeyLookupOptions = {}) {
  const guard = createStoreReadGuard(options);

  /** The tenant the key was stored under: its first event's, found by the key id across tenants. */
  async function storedTenant(keyId: string): Promise<string | null> {
    const subject = store.subjectOf({ tenantId: "*", aggregateType: "apikey", aggregateId: keyId });
    for await (const { envelope } of store.readSubject(subject)) return envelope.tenantId;
    return null;
  }

  async function fromStore(keyId: string, keyHash: string): Promise<FoundKey | null> {
    const tenantId = await storedTenant(keyId);
    if (tenantId === null) return null;
    const { state } = await store.load({ tenantId, aggregateType: "apikey", aggregateId: keyId }, apiKeyDecider, { fresh: true });
    if (state.status === "absent" || !safeEqual(state.keyHash, keyHash)) return null;
    return { keyId, tenantId, state };
  }

  /** `keyHash`: the token's sha256 in hex, when the caller has it already. */
  return async function findKey(token: string, keyHash = sha256Hex(token)): Promise<FoundKey | null> {
    const keyId = keyIdOf(token);
    if (!keyId) return null;
    const seen = view.apiKeyByHash(keyHash);
    if (seen) return { keyId: seen.keyId, tenantId: seen.tenantId, state: seen.state };
    if (!guard.mayRead(keyId.slice("key_".length), keyHash)) return null;
    const found = await fromStore(keyId, keyHash);
    if (!found) guard.rememberMiss(keyHash);
    return found;
  };
}
