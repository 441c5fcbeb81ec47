/**
 * The store an application calls: a typed payload over a `SessionRepository`,
 * with an expiration policy, a byte bound and time from `Clock`.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  type Context,
  Effect,
  Either,
  Exit,
  Layer,
  Metric,
  MetricLabel,
  Option,
  Redacted,
  Schedule,
  type Schema
} from "effect"
import * as ExpirationPolicy from "./ExpirationPolicy.js"
import { type ExcessPropertyPolicy, makeCodec } from "./internal/payload.js"
import { isExpiredAt, parseUserId, type Session, type SessionInfo, type UserId } from "./Session.js"
import {
  type InvalidUserId,
  type PayloadTooLarge,
  type RepositoryError,
  SessionConfigError,
  type SessionEncodeError,
  SessionNotFound,
  TokenCollision,
  VersionConflict
} from "./SessionError.js"
import * as SessionMetrics from "./SessionMetrics.js"
import { type SessionRecord, SessionRepository } from "./SessionRepository.js"
import * as SessionToken from "./SessionToken.js"

/**
 * A token as the application has it: from a cookie (string) or from a session (redacted).
 *
 * @since 0.1.0
 */
export type TokenInput = string | Redacted.Redacted<string>

/**
 * @since 0.1.0
 */
export interface SessionStore<A> {
  /** The policy sessions of this store follow. */
  readonly policy: ExpirationPolicy.ExpirationPolicy

  /** A new session with a fresh token and its initial expiry from the policy. */
  readonly create: (
    payload: A,
    options?: { readonly userId?: UserId | string | undefined }
  ) => Effect.Effect<
    Session<A>,
    PayloadTooLarge | SessionEncodeError | InvalidUserId | TokenCollision | RepositoryError
  >

  /** The session of a token; None when the token is malformed, missing or expired. */
  readonly restore: (token: TokenInput) => Effect.Effect<Option.Option<Session<A>>, RepositoryError>

  /**
   * Writes the payload of a session read at `session.version`, with its expiry
   * verbatim. Fails with VersionConflict when it changed since, and with
   * SessionNotFound when it was deleted or expired; nothing is written then.
   */
  readonly save: (
    session: Session<A>
  ) => Effect.Effect<
    Session<A>,
    PayloadTooLarge | SessionEncodeError | VersionConflict | SessionNotFound | RepositoryError
  >

  /** Renews per policy; Some with the renewed session only when the expiry was written. */
  readonly renew: (session: Session<A>) => Effect.Effect<Option.Option<Session<A>>, RepositoryError>

  /** Renews per policy; true only when the expiry changed and was written. */
  readonly touch: (session: Session<A>) => Effect.Effect<boolean, RepositoryError>

  /**
   * Restores, applies `f`, saves; on VersionConflict it restores again and
   * retries on `schedule` (default: 25 retries, 1 ms doubling up to 50 ms, jittered).
   */
  readonly update: (
    token: TokenInput,
    f: (payload: A) => A,
    options?: { readonly schedule?: Schedule.Schedule<unknown, VersionConflict | UpdateError> | undefined }
  ) => Effect.Effect<
    Session<A>,
    PayloadTooLarge | SessionEncodeError | VersionConflict | SessionNotFound | RepositoryError
  >

  /** Removes the session of a token; true when one was removed. */
  readonly delete: (token: TokenInput) => Effect.Effect<boolean, RepositoryError>

  /** Removes one of a user's sessions by its handle; true when one was removed. */
  readonly revoke: (userId: UserId | string, handle: string) => Effect.Effect<boolean, InvalidUserId | RepositoryError>

  /** Logs a user out everywhere; returns how many live sessions were removed. */
  readonly deleteByUser: (userId: UserId | string) => Effect.Effect<number, InvalidUserId | RepositoryError>

  /** The live sessions of a user, oldest first, by handle. */
  readonly listByUser: (
    userId: UserId | string
  ) => Effect.Effect<ReadonlyArray<SessionInfo>, InvalidUserId | RepositoryError>

  /** New token for the same user, payload, creation time and expiry; the old token stops working. */
  readonly regenerate: (
    session: Session<A>
  ) => Effect.Effect<
    Session<A>,
    PayloadTooLarge | SessionEncodeError | VersionConflict | SessionNotFound | TokenCollision | RepositoryError
  >

  /** Removes every session of this store, and only of this store. */
  readonly truncate: Effect.Effect<void, RepositoryError>
}

/**
 * @since 0.1.0
 */
export interface Options<A, I> {
  /** The payload schema; it encodes to JSON text. */
  readonly schema: Schema.Schema<A, I, never>
  readonly policy: ExpirationPolicy.ExpirationPolicy
  /** Largest encoded payload in UTF-8 bytes. Default 64 KiB. */
  readonly maxPayloadBytes?: number | undefined
  /** Tokens drawn before create gives up with TokenCollision. Default 5. */
  readonly createAttempts?: number | undefined
  /** What decoding and encoding do with keys the schema does not name. Default "ignore". */
  readonly onExcessProperty?: ExcessPropertyPolicy | undefined
}

/**
 * The default payload bound: 64 KiB.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = 65_536

type UpdateError = PayloadTooLarge | SessionEncodeError | VersionConflict | SessionNotFound | RepositoryError

const defaultUpdateSchedule = Schedule.exponential("1 millis").pipe(
  Schedule.union(Schedule.spaced("50 millis")),
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(25))
)

const checkUser = (userId: UserId | string): Effect.Effect<UserId, InvalidUserId> =>
  Either.match(parseUserId(userId), { onLeft: Effect.fail, onRight: Effect.succeed })

const validate = <A, I>(options: Options<A, I>): Effect.Effect<void, SessionConfigError> =>
  Effect.gen(function* () {
    const policyError = ExpirationPolicy.validate(options.policy)
    if (Option.isSome(policyError)) {
      return yield* policyError.value
    }
    const bytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES
    if (!Number.isSafeInteger(bytes) || bytes < 2) {
      return yield* new SessionConfigError({ option: "maxPayloadBytes", reason: "must be an integer of at least 2" })
    }
    const attempts = options.createAttempts ?? 5
    if (!Number.isSafeInteger(attempts) || attempts < 1) {
      return yield* new SessionConfigError({ option: "createAttempts", reason: "must be a positive integer" })
    }
    const excess = options.onExcessProperty ?? "ignore"
    if (excess !== "ignore" && excess !== "error" && excess !== "preserve") {
      return yield* new SessionConfigError({
        option: "onExcessProperty",
        reason: 'must be "ignore", "error" or "preserve"'
      })
    }
  })

/**
 * Builds a store over the `SessionRepository` in context. A `TokenGenerator`
 * in context replaces the cryptographic default.
 *
 * @since 0.1.0
 */
export const make = <A, I>(
  options: Options<A, I>
): Effect.Effect<SessionStore<A>, SessionConfigError, SessionRepository> =>
  Effect.gen(function* () {
    yield* validate(options)
    const repository = yield* SessionRepository
    const tokens = Option.getOrElse(yield* Effect.serviceOption(SessionToken.TokenGenerator), () => SessionToken.random)
    const policy = options.policy
    const maxBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES
    const attempts = options.createAttempts ?? 5
    const codec = makeCodec(options.schema, maxBytes, options.onExcessProperty ?? "ignore")
    const spanAttributes = { "session.backend": repository.backend }

    const counters = new Map<string, Metric.Metric.Counter<number>>()
    const bytesWritten = Metric.taggedWithLabels(SessionMetrics.payloadBytes, [
      MetricLabel.make("backend", repository.backend)
    ])

    const counter = (operation: string, outcome: SessionMetrics.Outcome) => {
      const id = `${operation}/${outcome}`
      let metric = counters.get(id)
      if (metric === undefined) {
        metric = Metric.taggedWithLabels(SessionMetrics.storeOperations, [
          MetricLabel.make("backend", repository.backend),
          MetricLabel.make("operation", operation),
          MetricLabel.make("outcome", outcome)
        ])
        counters.set(id, metric)
      }
      return metric
    }

    const outcomeOfExit = <X, E>(exit: Exit.Exit<X, E>, onSuccess: (value: X) => SessionMetrics.Outcome) => {
      if (Exit.isSuccess(exit)) return onSuccess(exit.value)
      if (Cause.isInterruptedOnly(exit.cause)) return "interrupted"
      return Option.match(Cause.failureOption(exit.cause), {
        onNone: (): SessionMetrics.Outcome => "error",
        onSome: SessionMetrics.outcomeOfError
      })
    }

    const traced =
      (name: string, handle?: string) =>
      <X, E, R>(
        effect: Effect.Effect<X, E, R>,
        outcomeOf: (value: X) => SessionMetrics.Outcome = succeeded,
        handleOfValue?: (value: X) => string | undefined
      ): Effect.Effect<X, E, R> =>
        Effect.useSpan(
          `session.${name}`,
          {
            captureStackTrace: false,
            attributes: handle === undefined ? spanAttributes : { ...spanAttributes, "session.handle": handle }
          },
          (span) =>
            Effect.onExit(Effect.withParentSpan(effect, span), (exit) => {
              const outcome = outcomeOfExit(exit, outcomeOf)
              span.attribute("session.outcome", outcome)
              if (handle === undefined) {
                const known = Exit.isSuccess(exit) ? handleOfValue?.(exit.value) : handleOfFailure(exit.cause)
                if (known !== undefined) span.attribute("session.handle", known)
              }
              return Metric.increment(counter(name, outcome))
            })
        )

    const wrote = (payload: string) => Metric.update(bytesWritten, Buffer.byteLength(payload, "utf8"))

    const encode = (payload: A) => Either.match(codec.encode(payload), { onLeft: Effect.fail, onRight: Effect.succeed })

    const toSession = (
      token: Redacted.Redacted<string>,
      record: SessionRecord,
      payload: A,
      handle = SessionToken.handleOf(record.key)
    ): Session<A> => ({
      token,
      key: record.key,
      handle,
      userId: Option.fromNullable(record.userId as UserId | null),
      createdAt: record.createdAt,
      expiresAt: Option.fromNullable(record.expiresAt),
      version: record.version,
      payload
    })

    const insertFresh = (record: Omit<SessionRecord, "key">) =>
      Effect.gen(function* () {
        for (let attempt = 1; attempt <= attempts; attempt++) {
          const token = yield* tokens.next
          const key = SessionToken.keyOf(token)
          if (yield* repository.insert({ ...record, key })) {
            return { token, record: { ...record, key } }
          }
          yield* Effect.logWarning("session key already taken; drawing a new token").pipe(
            Effect.annotateLogs({ attempt, handle: SessionToken.handleOf(key) })
          )
        }
        return yield* new TokenCollision({ attempts })
      })

    const explainFailedWrite = (
      session: Session<A>,
      now: number
    ): Effect.Effect<never, VersionConflict | SessionNotFound | RepositoryError> =>
      Effect.flatMap(repository.get(session.key), (stored) =>
        Effect.fail<VersionConflict | SessionNotFound>(
          Option.isSome(stored) && !isExpiredAt(stored.value.expiresAt, now)
            ? new VersionConflict({ handle: session.handle, expected: session.version })
            : new SessionNotFound({ handle: session.handle })
        )
      )

    const lookup = (input: TokenInput): Effect.Effect<Lookup<A>, RepositoryError> =>
      Effect.gen(function* () {
        const token = typeof input === "string" ? input : Redacted.value(input)
        if (!SessionToken.isWellFormed(token)) {
          return { outcome: "malformed" } as const
        }
        const key = SessionToken.keyOf(token)
        const handle = SessionToken.handleOf(key)
        const stored = yield* repository.get(key)
        if (Option.isNone(stored)) {
          return { outcome: "missing", handle } as const
        }
        const now = yield* Clock.currentTimeMillis
        if (isExpiredAt(stored.value.expiresAt, now)) {
          return { outcome: "expired", handle } as const
        }
        const payload = codec.decode(stored.value.payload, handle)
        if (Either.isLeft(payload)) {
          return yield* payload.left
        }
        const redacted = typeof input === "string" ? Redacted.make(input) : input
        return { outcome: "found", handle, session: toSession(redacted, stored.value, payload.right, handle) } as const
      })

    const restore = (input: TokenInput) => Effect.map(lookup(input), toOption)

    const save = (session: Session<A>) =>
      Effect.gen(function* () {
        const payload = yield* encode(session.payload)
        const now = yield* Clock.currentTimeMillis
        const record: SessionRecord = {
          key: session.key,
          userId: Option.getOrNull(session.userId),
          createdAt: session.createdAt,
          expiresAt: Option.getOrNull(session.expiresAt),
          version: session.version + 1,
          payload
        }
        if (yield* repository.update(record, session.version, now)) {
          yield* wrote(payload)
          return { ...session, version: record.version }
        }
        return yield* explainFailedWrite(session, now)
      })

    const renew = (session: Session<A>) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const next = ExpirationPolicy.renewal(
          policy,
          { createdAt: session.createdAt, expiresAt: Option.getOrNull(session.expiresAt) },
          now
        )
        if (Option.isNone(next) || !(yield* repository.extend(session.key, next.value, now))) {
          return Option.none<Session<A>>()
        }
        return Option.some({ ...session, expiresAt: next, version: session.version + 1 })
      })

    const update = (
      token: TokenInput,
      f: (payload: A) => A,
      updateOptions?: { readonly schedule?: Schedule.Schedule<unknown, VersionConflict | UpdateError> | undefined }
    ) => {
      const attempt = Effect.flatMap(restore(token), (current) =>
        Option.isNone(current)
          ? Effect.fail(new SessionNotFound({ handle: handleOfInput(token) }))
          : save({ ...current.value, payload: f(current.value.payload) })
      )
      const schedule = Schedule.whileInput(
        updateOptions?.schedule ?? defaultUpdateSchedule,
        (error: UpdateError) => error._tag === "VersionConflict"
      )
      return Effect.retry(attempt, schedule as Schedule.Schedule<unknown, UpdateError>)
    }

    const regenerate = (session: Session<A>) =>
      Effect.gen(function* () {
        const payload = yield* encode(session.payload)
        const now = yield* Clock.currentTimeMillis
        const expiresAt = Option.getOrNull(session.expiresAt)
        if (isExpiredAt(expiresAt, now)) {
          return yield* new SessionNotFound({ handle: session.handle })
        }
        const fresh = yield* insertFresh({
          userId: Option.getOrNull(session.userId),
          createdAt: session.createdAt,
          expiresAt,
          version: 1,
          payload
        })
        const removed = yield* repository
          .remove(session.key, session.version)
          .pipe(
            Effect.tapError(() =>
              repository
                .remove(fresh.record.key)
                .pipe(
                  Effect.catchAllCause((cause) =>
                    Effect.logWarning("regenerated session left behind after a failed regenerate", cause).pipe(
                      Effect.annotateLogs({ handle: SessionToken.handleOf(fresh.record.key) })
                    )
                  )
                )
            )
          )
        if (!removed) {
          yield* repository.remove(fresh.record.key)
          return yield* explainFailedWrite(session, now)
        }
        yield* wrote(payload)
        return toSession(fresh.token, fresh.record, session.payload)
      })

    const store: SessionStore<A> = {
      policy,

      create: (payload, createOptions) =>
        Effect.gen(function* () {
          const userId = createOptions?.userId === undefined ? null : yield* checkUser(createOptions.userId)
          const encoded = yield* encode(payload)
          const now = yield* Clock.currentTimeMillis
          const fresh = yield* insertFresh({
            userId,
            createdAt: now,
            expiresAt: ExpirationPolicy.initialExpiry(policy, now),
            version: 1,
            payload: encoded
          })
          yield* wrote(encoded)
          return toSession(fresh.token, fresh.record, payload)
        }).pipe(traced("create")),

      restore: (token) => Effect.map(traced("restore")(lookup(token), outcomeOfLookup, handleOfLookup), toOption),

      save: (session) => traced("save", session.handle)(save(session)),

      renew: (session) => traced("touch", session.handle)(renew(session), renewedOrSkipped),

      touch: (session) => traced("touch", session.handle)(Effect.map(renew(session), Option.isSome), writtenOrSkipped),

      update: (token, f, updateOptions) =>
        traced("update")(update(token, f, updateOptions), succeeded, (session) => session.handle),

      delete: (input) =>
        Effect.suspend(() => {
          const token = typeof input === "string" ? input : Redacted.value(input)
          if (!SessionToken.isWellFormed(token)) {
            return Effect.succeed(false)
          }
          const key = SessionToken.keyOf(token)
          return Effect.zipRight(
            Effect.annotateCurrentSpan("session.handle", SessionToken.handleOf(key)),
            repository.remove(key)
          )
        }).pipe((effect) => traced("delete")(effect, removedOrMissing)),

      revoke: (userId, handle) =>
        Effect.gen(function* () {
          const user = yield* checkUser(userId)
          const now = yield* Clock.currentTimeMillis
          const sessions = yield* repository.listByUser(user, now)
          const target = sessions.find((metadata) => SessionToken.handleOf(metadata.key) === handle)
          return target === undefined ? false : yield* repository.remove(target.key)
        }).pipe((effect) => traced("revoke", handle)(effect, removedOrMissing)),

      deleteByUser: (userId) =>
        Effect.gen(function* () {
          const user = yield* checkUser(userId)
          const now = yield* Clock.currentTimeMillis
          return yield* repository.removeByUser(user, now)
        }).pipe(traced("deleteByUser")),

      listByUser: (userId) =>
        Effect.gen(function* () {
          const user = yield* checkUser(userId)
          const now = yield* Clock.currentTimeMillis
          const sessions = yield* repository.listByUser(user, now)
          return sessions
            .filter((metadata) => !isExpiredAt(metadata.expiresAt, now))
            .map(
              (metadata): SessionInfo => ({
                handle: SessionToken.handleOf(metadata.key),
                userId: user,
                createdAt: metadata.createdAt,
                expiresAt: Option.fromNullable(metadata.expiresAt)
              })
            )
            .sort((a, b) => a.createdAt - b.createdAt)
        }).pipe(traced("listByUser")),

      regenerate: (session) => traced("regenerate")(regenerate(session)),

      truncate: traced("truncate")(repository.clear)
    }
    return store
  })

type Lookup<A> =
  | { readonly outcome: "found"; readonly handle: string; readonly session: Session<A> }
  | { readonly outcome: "missing" | "expired"; readonly handle: string }
  | { readonly outcome: "malformed" }

const toOption = <A>(found: Lookup<A>): Option.Option<Session<A>> =>
  found.outcome === "found" ? Option.some(found.session) : Option.none()

const outcomeOfLookup = <A>(found: Lookup<A>): SessionMetrics.Outcome => found.outcome

const handleOfLookup = <A>(found: Lookup<A>): string | undefined => ("handle" in found ? found.handle : undefined)

const handleOfFailure = (cause: Cause.Cause<unknown>): string | undefined => {
  const failure = Cause.failureOption(cause)
  const handle = Option.isSome(failure) ? (failure.value as { readonly handle?: unknown } | null)?.handle : undefined
  return typeof handle === "string" ? handle : undefined
}

const succeeded = (): SessionMetrics.Outcome => "ok"

const writtenOrSkipped = (written: boolean): SessionMetrics.Outcome => (written ? "ok" : "skipped")

const renewedOrSkipped = <A>(renewed: Option.Option<A>): SessionMetrics.Outcome =>
  Option.isSome(renewed) ? "ok" : "skipped"

const removedOrMissing = (removed: boolean): SessionMetrics.Outcome => (removed ? "ok" : "missing")

const handleOfInput = (token: TokenInput): string => {
  const value = typeof token === "string" ? token : Redacted.value(token)
  return SessionToken.isWellFormed(value) ? SessionToken.handleOf(SessionToken.keyOf(value)) : "malformed"
}

/**
 * A layer that provides a store under the application's own tag.
 *
 * @example
 * class Sessions extends Context.Tag("app/Sessions")<Sessions, SessionStore.SessionStore<Cart>>() {}
 * const SessionsLive = SessionStore.layer(Sessions, { schema: Cart, policy: ExpirationPolicy.sliding("30 minutes") })
 *
 * @since 0.1.0
 */
export const layer = <Id, A, I>(
  tag: Context.Tag<Id, SessionStore<A>>,
  options: Options<A, I>
): Layer.Layer<Id, SessionConfigError, SessionRepository> => Layer.effect(tag, make(options))
