import { JetStreamApiError } from "@nats-io/jetstream";

/** JetStream's code for a publish whose expected last sequence (a KV revision) is not the subject's. */
const WRONG_LAST_SEQUENCE = 10071;

/** A compare-and-set that lost: another writer changed the subject (or KV key) first. */
export const isWrongLastSequence = (error: unknown): boolean => error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE;
