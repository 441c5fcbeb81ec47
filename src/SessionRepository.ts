/**
 * The persistence contract every backend implements. A repository stores
 * opaque records keyed by the SHA-256 of the token; it knows no policy, no
 * payload schema and reads no clock: every "now" is a parameter.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Option } from "effect"
import type { RepositoryError } from "./SessionError.js"

/**
 * One stored session. Times are epoch milliseconds; `expiresAt` null means
 * the record never expires. `payload` is the JSON text the store encoded.
 *
 * @since 0.1.0
 */
export interface SessionRecord {
  readonly key: string
  readonly userId: string | null
  readonly createdAt: number
  readonly expiresAt: number | null
  readonly version: number
  readonly payload: string
}

/**
 * A record without its payload, as listed per user.
 *
 * @since 0.1.0
 */
export type SessionMetadata = Omit<SessionRecord, "payload">

/**
 * The backend contract, method by method. Every write is one conditional
 * statement (or an atomic script), never a read followed by a write. A record
 * is live at `now` when `expiresAt` is null or `now < expiresAt`.
 *
 * @since 0.1.0
 */
export interface SessionRepositoryShape {
  /** The backend's name, for errors, logs and metric tags. */
  readonly backend: string

  /** The record under `key`, live or expired; None when absent. */
  readonly get: (key: string) => Effect.Effect<Option.Option<SessionRecord>, RepositoryError>

  /** Writes a new record; false, with nothing written, when the key exists. */
  readonly insert: (record: SessionRecord) => Effect.Effect<boolean, RepositoryError>

  /**
   * Replaces payload, expiry and version of a record that is live at `now`
   * and stores `expectedVersion`; false, with nothing written, otherwise.
   */
  readonly update: (
    record: SessionRecord,
    expectedVersion: number,
    now: number
  ) => Effect.Effect<boolean, RepositoryError>

  /**
   * Moves the expiry of a record live at `now` to `expiresAt` and bumps its
   * version, only when `expiresAt` is later than the stored one; false otherwise,
   * and false for a record that never expires. The payload is not written.
   */
  readonly extend: (key: string, expiresAt: number, now: number) => Effect.Effect<boolean, RepositoryError>

  /** Removes a record, only at `expectedVersion` when given; false when nothing was removed. */
  readonly remove: (key: string, expectedVersion?: number) => Effect.Effect<boolean, RepositoryError>

  /** Records of a user that are live at `now`, without payloads. */
  readonly listByUser: (userId: string, now: number) => Effect.Effect<ReadonlyArray<SessionMetadata>, RepositoryError>

  /** Removes every record of a user; returns how many of them were live at `now`. */
  readonly removeByUser: (userId: string, now: number) => Effect.Effect<number, RepositoryError>

  /**
   * Removes at most `limit` records expired at `now` in one bounded statement
   * (or a bounded set of them) and returns how many went. Records without an
   * expiry are never removed.
   */
  readonly removeExpired: (now: number, limit: number) => Effect.Effect<number, RepositoryError>

  /** Removes every record of this repository and nothing else. */
  readonly clear: Effect.Effect<void, RepositoryError>
}

/**
 * The repository service.
 *
 * @since 0.1.0
 */
export class SessionRepository extends Context.Tag("effect-session/SessionRepository")<
  SessionRepository,
  SessionRepositoryShape
>() {}
