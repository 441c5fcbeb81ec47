/**
 * Every typed error of effect-session. Messages are computed from the fields;
 * no error ever carries a token.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The backend failed or could not be reached. `cause` holds the driver error.
 *
 * @since 0.1.0
 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>("effect-session/StoreUnavailable")(
  "StoreUnavailable",
  {
    backend: Schema.String,
    operation: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message(): string {
    return `session backend "${this.backend}" failed during ${this.operation}`
  }
}

/**
 * A save or regenerate carried a version older than the stored one; nothing was written.
 *
 * @since 0.1.0
 */
export class VersionConflict extends Schema.TaggedError<VersionConflict>("effect-session/VersionConflict")(
  "VersionConflict",
  {
    handle: Schema.String,
    expected: Schema.Number
  }
) {
  override get message(): string {
    return `session ${this.handle} changed since version ${this.expected} was read`
  }
}

/**
 * The session to write is gone: deleted, revoked or expired. It is never brought back.
 *
 * @since 0.1.0
 */
export class SessionNotFound extends Schema.TaggedError<SessionNotFound>("effect-session/SessionNotFound")(
  "SessionNotFound",
  {
    handle: Schema.String
  }
) {
  override get message(): string {
    return `session ${this.handle} no longer exists`
  }
}

/**
 * The encoded payload is larger than `maxPayloadBytes`; refused before any I/O.
 *
 * @since 0.1.0
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>("effect-session/PayloadTooLarge")(
  "PayloadTooLarge",
  {
    size: Schema.Number,
    limit: Schema.Number
  }
) {
  override get message(): string {
    return `session payload is ${this.size} bytes, over the limit of ${this.limit}`
  }
}

/**
 * The payload does not match the application's schema, or holds a value JSON cannot carry.
 *
 * @since 0.1.0
 */
export class SessionEncodeError extends Schema.TaggedError<SessionEncodeError>("effect-session/SessionEncodeError")(
  "SessionEncodeError",
  {
    reason: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message(): string {
    return `session payload cannot be encoded: ${this.reason}`
  }
}

/**
 * A stored record no longer decodes: corrupt JSON, an old payload shape or bad metadata.
 *
 * @since 0.1.0
 */
export class SessionDecodeError extends Schema.TaggedError<SessionDecodeError>("effect-session/SessionDecodeError")(
  "SessionDecodeError",
  {
    handle: Schema.String,
    reason: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message(): string {
    return `stored session ${this.handle} cannot be decoded: ${this.reason}`
  }
}

/**
 * Every attempt to create a session drew a token whose key was already taken.
 *
 * @since 0.1.0
 */
export class TokenCollision extends Schema.TaggedError<TokenCollision>("effect-session/TokenCollision")(
  "TokenCollision",
  {
    attempts: Schema.Number
  }
) {
  override get message(): string {
    return `no free session key after ${this.attempts} attempts; is the token generator random?`
  }
}

/**
 * A user id is blank, too long or holds control characters.
 *
 * @since 0.1.0
 */
export class InvalidUserId extends Schema.TaggedError<InvalidUserId>("effect-session/InvalidUserId")("InvalidUserId", {
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid user id: ${this.reason}`
  }
}

/**
 * An option given to a layer cannot work; raised while the layer is built.
 *
 * @since 0.1.0
 */
export class SessionConfigError extends Schema.TaggedError<SessionConfigError>("effect-session/SessionConfigError")(
  "SessionConfigError",
  {
    option: Schema.String,
    reason: Schema.String
  }
) {
  override get message(): string {
    return `invalid session option ${this.option}: ${this.reason}`
  }
}

/**
 * One sweep run failed; the sweeper logs it, counts it and runs again on schedule.
 *
 * @since 0.1.0
 */
export class SweepError extends Schema.TaggedError<SweepError>("effect-session/SweepError")("SweepError", {
  backend: Schema.String,
  swept: Schema.Number,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `sweep of "${this.backend}" failed after removing ${this.swept} sessions`
  }
}

/**
 * A request needs a session and carries none that is live; the HTTP layer answers 401.
 *
 * @since 0.1.0
 */
export class NoSession extends Schema.TaggedError<NoSession>("effect-session/NoSession")("NoSession", {}) {
  override get message(): string {
    return "this request carries no live session"
  }
}

/**
 * What a repository operation can fail with.
 *
 * @since 0.1.0
 */
export type RepositoryError = StoreUnavailable | SessionDecodeError

/**
 * What a store write can fail with besides the backend.
 *
 * @since 0.1.0
 */
export type WriteError = PayloadTooLarge | SessionEncodeError | RepositoryError
