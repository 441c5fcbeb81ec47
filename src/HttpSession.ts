/**
 * Sessions for `@effect/platform` HTTP apps: a middleware that restores the
 * session of the request's cookie, a per-request service for handlers, and
 * the cookie written back from a pre-response handler, so it also reaches
 * the browser when a handler fails.
 *
 * @since 0.1.0
 */
import * as Cookies from "@effect/platform/Cookies"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Clock, Context, Duration, Effect, Either, Option, Redacted } from "effect"
import type { Session, SessionInfo, UserId } from "./Session.js"
import {
  InvalidUserId,
  NoSession,
  PayloadTooLarge,
  type RepositoryError,
  SessionConfigError,
  SessionDecodeError,
  SessionEncodeError,
  SessionNotFound,
  StoreUnavailable,
  TokenCollision,
  VersionConflict
} from "./SessionError.js"
import type { SessionStore } from "./SessionStore.js"
import * as SessionToken from "./SessionToken.js"

/**
 * The session cookie's name and attributes.
 *
 * @since 0.1.0
 */
export interface CookieOptions {
  /** Cookie name. Default "session" ("__Host-session" with `hostPrefix`). */
  readonly name?: string | undefined
  /** Default "/". */
  readonly path?: string | undefined
  /** Default: none, the cookie goes back only to the host that set it. */
  readonly domain?: string | undefined
  /** Default true; false only for plain-http development. */
  readonly secure?: boolean | undefined
  /** Default true. */
  readonly httpOnly?: boolean | undefined
  /** Default "lax". "none" requires `secure`. */
  readonly sameSite?: "lax" | "strict" | "none" | undefined
  /** Prefix the name with `__Host-`, which requires `secure`, path "/" and no domain. Default false. */
  readonly hostPrefix?: boolean | undefined
}

/**
 * @since 0.1.0
 */
export interface Options {
  readonly cookie?: CookieOptions | undefined
  /**
   * Turns a session error a handler let through into a response. The default,
   * `errorResponse`, answers 401, 409, 413, 400, 503 or 500.
   */
  readonly onError?: ((error: HttpSessionError) => Effect.Effect<HttpServerResponse.HttpServerResponse>) | undefined
}

/**
 * Every session error the middleware turns into a response.
 *
 * @since 0.1.0
 */
export type HttpSessionError =
  | NoSession
  | SessionNotFound
  | VersionConflict
  | PayloadTooLarge
  | InvalidUserId
  | SessionEncodeError
  | SessionDecodeError
  | TokenCollision
  | StoreUnavailable

/**
 * A session as listed for its user, marked when it is the one of this request.
 *
 * @since 0.1.0
 */
export interface Device extends SessionInfo {
  readonly current: boolean
}

type LoginError = InvalidUserId | PayloadTooLarge | SessionEncodeError | TokenCollision | RepositoryError
type WriteError = PayloadTooLarge | SessionEncodeError | VersionConflict | SessionNotFound | RepositoryError

/**
 * What a handler uses: the session of this request and the operations that change it.
 *
 * @since 0.1.0
 */
export interface HttpSession<A> {
  /** The live session of this request, if any. */
  readonly current: Effect.Effect<Option.Option<Session<A>>>
  /** The live session of this request; fails with NoSession when there is none. */
  readonly require: Effect.Effect<Session<A>, NoSession>
  /** Starts a session for a user with a fresh token; a session the request carried is deleted. */
  readonly login: (userId: UserId | string, payload: A) => Effect.Effect<Session<A>, LoginError>
  /** Applies `f` to the freshest stored payload, retrying on concurrent writes. */
  readonly update: (f: (payload: A) => A) => Effect.Effect<Session<A>, NoSession | WriteError>
  /** Writes a payload over the version this request read; VersionConflict when another request wrote first. */
  readonly replace: (payload: A) => Effect.Effect<Session<A>, NoSession | WriteError>
  /** New token for the same session; the old token stops working. Use it on privilege change. */
  readonly regenerate: Effect.Effect<Session<A>, NoSession | WriteError | TokenCollision>
  /** Deletes the session, if any, and expires the cookie. */
  readonly logout: Effect.Effect<void, RepositoryError>
  /** The live sessions of this session's user, oldest first. */
  readonly devices: Effect.Effect<ReadonlyArray<Device>, NoSession | InvalidUserId | RepositoryError>
  /** Removes one of this user's sessions by handle; true when one was removed. */
  readonly revoke: (handle: string) => Effect.Effect<boolean, NoSession | InvalidUserId | RepositoryError>
}

declare const CurrentTypeId: unique symbol

/**
 * The type of the per-request service of the store tagged `Id`.
 *
 * @since 0.1.0
 */
export interface Current<Id> {
  readonly [CurrentTypeId]: Id
}

/**
 * The middleware of one store, its per-request tag, and accessors for handlers.
 *
 * @since 0.1.0
 */
export interface HttpSessions<Id, A> {
  /** The tag handlers read the per-request service from. */
  readonly tag: Context.Tag<Current<Id>, HttpSession<A>>
  /** The cookie name in use. */
  readonly cookieName: string
  /** Fails when the options cannot work; run it at start-up to fail early. */
  readonly validate: Effect.Effect<void, SessionConfigError>
  /** Wraps an app or router: restores, renews, provides the service, writes the cookie. */
  readonly middleware: <E, R>(
    app: HttpApp.Default<E, R>
  ) => HttpApp.Default<Exclude<E, HttpSessionError> | SessionConfigError, Exclude<R, Current<Id>> | Id>
  readonly current: Effect.Effect<Option.Option<Session<A>>, never, Current<Id>>
  readonly require: Effect.Effect<Session<A>, NoSession, Current<Id>>
  readonly login: (userId: UserId | string, payload: A) => Effect.Effect<Session<A>, LoginError, Current<Id>>
  readonly update: (f: (payload: A) => A) => Effect.Effect<Session<A>, NoSession | WriteError, Current<Id>>
  readonly replace: (payload: A) => Effect.Effect<Session<A>, NoSession | WriteError, Current<Id>>
  readonly regenerate: Effect.Effect<Session<A>, NoSession | WriteError | TokenCollision, Current<Id>>
  readonly logout: Effect.Effect<void, RepositoryError, Current<Id>>
  readonly devices: Effect.Effect<ReadonlyArray<Device>, NoSession | InvalidUserId | RepositoryError, Current<Id>>
  readonly revoke: (handle: string) => Effect.Effect<boolean, NoSession | InvalidUserId | RepositoryError, Current<Id>>
}

interface ResolvedCookie {
  readonly name: string
  readonly attributes: {
    readonly path: string
    readonly domain?: string | undefined
    readonly secure: boolean
    readonly httpOnly: boolean
    readonly sameSite: "lax" | "strict" | "none"
  }
}

const resolveCookie = (options: CookieOptions = {}): Either.Either<ResolvedCookie, SessionConfigError> => {
  const fail = (option: string, reason: string) =>
    Either.left(new SessionConfigError({ option: `cookie.${option}`, reason }))
  const base = options.name ?? "session"
  const name = options.hostPrefix === true && !base.startsWith("__Host-") ? `__Host-${base}` : base
  const attributes = {
    path: options.path ?? "/",
    domain: options.domain,
    secure: options.secure ?? true,
    httpOnly: options.httpOnly ?? true,
    sameSite: options.sameSite ?? "lax"
  } as const
  if (name.startsWith("__Host-")) {
    if (!attributes.secure) return fail("secure", "a __Host- cookie must be secure")
    if (attributes.path !== "/") return fail("path", 'a __Host- cookie must have path "/"')
    if (attributes.domain !== undefined) return fail("domain", "a __Host- cookie must not name a domain")
  }
  if (name.startsWith("__Secure-") && !attributes.secure) {
    return fail("secure", "a __Secure- cookie must be secure")
  }
  if (attributes.sameSite === "none" && !attributes.secure) {
    return fail("sameSite", 'sameSite "none" requires secure')
  }
  if (!["lax", "strict", "none"].includes(attributes.sameSite)) {
    return fail("sameSite", 'must be "lax", "strict" or "none"')
  }
  if (!/^\/[\x21-\x3a\x3c-\x7e]*$/.test(attributes.path)) {
    return fail("path", 'must start with "/" and hold no space, ";" or control character')
  }
  if (attributes.domain !== undefined && !/^\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(attributes.domain)) {
    return fail("domain", "must be a host name")
  }
  const probe = Cookies.makeCookie(name, "probe", attributes)
  if (Either.isLeft(probe)) {
    return fail(probe.left.reason === "InvalidName" ? "name" : "attributes", probe.left.reason)
  }
  return Either.right({ name, attributes })
}

/**
 * The default answer to a session error: 401 without a live session, 409 on a
 * version conflict, 413 for an oversized payload, 400 for a bad user id, 503
 * when the store is unavailable (logged at error with its cause), 500 otherwise.
 *
 * @since 0.1.0
 */
export const errorResponse = (error: HttpSessionError): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  const respond = (status: number) => Effect.succeed(HttpServerResponse.unsafeJson({ error: error._tag }, { status }))
  switch (error._tag) {
    case "NoSession":
    case "SessionNotFound":
    case "SessionDecodeError":
      return respond(401)
    case "VersionConflict":
      return respond(409)
    case "PayloadTooLarge":
      return respond(413)
    case "InvalidUserId":
      return respond(400)
    case "StoreUnavailable":
      return Effect.zipRight(Effect.logError("session store unavailable", Cause.fail(error)), respond(503))
    default:
      return Effect.zipRight(Effect.logError("session operation failed", Cause.fail(error)), respond(500))
  }
}

const sessionErrorClasses = [
  NoSession,
  SessionNotFound,
  VersionConflict,
  PayloadTooLarge,
  InvalidUserId,
  SessionEncodeError,
  SessionDecodeError,
  TokenCollision,
  StoreUnavailable
] as const

const isSessionError = (error: unknown): error is HttpSessionError =>
  sessionErrorClasses.some((errorClass) => error instanceof errorClass)

type CookieAction = "keep" | "set" | "clear"

interface RequestState<A> {
  session: Option.Option<Session<A>>
  cookie: CookieAction
}

const annotations = { package: "effect-session", module: "HttpSession" }

/**
 * Builds the HTTP side of the store tagged `storeTag`. Invalid options make
 * `validate` and every request fail with SessionConfigError.
 *
 * @example
 * const Http = HttpSession.make(Sessions, { cookie: { secure: false } })
 * const app = router.pipe(Http.middleware)
 *
 * @since 0.1.0
 */
export const make = <Id, A>(storeTag: Context.Tag<Id, SessionStore<A>>, options: Options = {}): HttpSessions<Id, A> => {
  const tag = Context.GenericTag<Current<Id>, HttpSession<A>>(`effect-session/HttpSession/${storeTag.key}`)
  const resolved = resolveCookie(options.cookie)
  const onError = options.onError ?? errorResponse
  const respond = (error: HttpSessionError) => Effect.annotateLogs(onError(error), annotations)
  const validate = Either.match(resolved, { onLeft: Effect.fail, onRight: () => Effect.void })
  const cookieName = Either.match(resolved, { onLeft: () => options.cookie?.name ?? "session", onRight: (c) => c.name })

  const commit = (
    cookie: ResolvedCookie,
    state: RequestState<A>,
    request: HttpServerRequest.HttpServerRequest,
    response: HttpServerResponse.HttpServerResponse
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, HttpServerError.ResponseError> => {
    if (state.cookie === "keep") {
      return Effect.succeed(response)
    }
    if (state.cookie === "clear" || Option.isNone(state.session)) {
      return Effect.succeed(HttpServerResponse.expireCookie(response, cookie.name, cookie.attributes))
    }
    const session = state.session.value
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const maxAge = Option.map(session.expiresAt, (expiresAt) =>
        Duration.seconds(Math.max(0, Math.ceil((expiresAt - now) / 1000)))
      )
      const made = Cookies.makeCookie(cookie.name, Redacted.value(session.token), {
        ...cookie.attributes,
        maxAge: Option.getOrUndefined(maxAge)
      })
      return Either.match(made, {
        onLeft: (cause) =>
          Effect.fail(
            new HttpServerError.ResponseError({
              request,
              response,
              reason: "Decode",
              cause,
              description: "session cookie could not be written"
            })
          ),
        onRight: (made) =>
          Effect.succeed(HttpServerResponse.updateCookies(response, (cookies) => Cookies.setCookie(cookies, made)))
      })
    })
  }

  const serviceFor = (store: SessionStore<A>, state: RequestState<A>): HttpSession<A> => {
    const require = Effect.suspend(() =>
      Option.match(state.session, { onNone: () => Effect.fail(new NoSession()), onSome: Effect.succeed })
    )
    const adopt = (session: Session<A>) => {
      state.session = Option.some(session)
      state.cookie = "set"
      return session
    }
    const forget = <E>(error: E) =>
      Effect.suspend(() => {
        if (error instanceof SessionNotFound || error instanceof SessionDecodeError) {
          state.session = Option.none()
          state.cookie = "clear"
        }
        return Effect.fail(error)
      })
    const keepVersion = (session: Session<A>) => {
      state.session = Option.some(session)
      return session
    }
    const userOf = (session: Session<A>) =>
      Option.match(session.userId, { onNone: () => Effect.fail(new NoSession()), onSome: Effect.succeed })

    return {
      current: Effect.sync(() => state.session),
      require,
      login: (userId, payload) =>
        Effect.gen(function* () {
          const previous = state.session
          const session = yield* store.create(payload, { userId })
          adopt(session)
          if (Option.isSome(previous)) {
            yield* store.delete(previous.value.token)
          }
          return session
        }),
      update: (f) =>
        require.pipe(
          Effect.flatMap((session) => store.update(session.token, f)),
          Effect.map(keepVersion),
          Effect.catchAll(forget)
        ),
      replace: (payload) =>
        require.pipe(
          Effect.flatMap((session) => store.save({ ...session, payload })),
          Effect.map(keepVersion),
          Effect.catchAll(forget)
        ),
      regenerate: require.pipe(Effect.flatMap(store.regenerate), Effect.map(adopt), Effect.catchAll(forget)),
      logout: Effect.suspend(() => {
        const previous = state.session
        state.session = Option.none()
        state.cookie = "clear"
        return Option.isSome(previous) ? Effect.asVoid(store.delete(previous.value.token)) : Effect.void
      }),
      devices: Effect.gen(function* () {
        const session = yield* require
        const listed = yield* store.listByUser(yield* userOf(session))
        return listed.map((info): Device => ({ ...info, current: info.handle === session.handle }))
      }),
      revoke: (handle) =>
        Effect.gen(function* () {
          const session = yield* require
          const removed = yield* store.revoke(yield* userOf(session), handle)
          if (removed && handle === session.handle) {
            state.session = Option.none()
            state.cookie = "clear"
          }
          return removed
        })
    }
  }

  const restore = (store: SessionStore<A>, state: RequestState<A>, raw: string | undefined) =>
    Effect.gen(function* () {
      if (raw === undefined) {
        return
      }
      if (!SessionToken.isWellFormed(raw)) {
        state.cookie = "clear"
        return yield* Effect.logWarning("malformed session cookie ignored").pipe(
          Effect.annotateLogs({ cookieLength: raw.length })
        )
      }
      const restored = yield* store.restore(raw).pipe(
        Effect.catchIf(
          (error): error is SessionDecodeError => error instanceof SessionDecodeError,
          (error) =>
            Effect.as(
              Effect.logWarning("stored session does not decode; served without it", Cause.fail(error)),
              Option.none()
            )
        )
      )
      if (Option.isNone(restored)) {
        state.cookie = "clear"
        return
      }
      const renewed = yield* store.renew(restored.value)
      state.session = Option.orElse(renewed, () => restored)
      state.cookie = Option.isSome(renewed) ? "set" : "keep"
    }).pipe(Effect.annotateLogs(annotations))

  const middleware = <E, R>(
    app: HttpApp.Default<E, R>
  ): HttpApp.Default<Exclude<E, HttpSessionError> | SessionConfigError, Exclude<R, Current<Id>> | Id> =>
    Effect.gen(function* () {
      const cookie = yield* Either.match(resolved, {
        onLeft: (error) =>
          Effect.zipRight(
            Effect.logError("session middleware misconfigured", Cause.fail(error)).pipe(
              Effect.annotateLogs(annotations)
            ),
            Effect.fail(error)
          ),
        onRight: Effect.succeed
      })
      const request = yield* HttpServerRequest.HttpServerRequest
      const store = yield* storeTag
      const state: RequestState<A> = { session: Option.none(), cookie: "keep" }
      yield* HttpApp.appendPreResponseHandler((req, response) => commit(cookie, state, req, response))

      const restored = yield* Effect.either(restore(store, state, request.cookies[cookie.name]))
      if (Either.isLeft(restored)) {
        return yield* respond(restored.left)
      }

      return yield* app.pipe(
        Effect.provideService(tag, serviceFor(store, state)),
        Effect.catchAll(
          (error): Effect.Effect<HttpServerResponse.HttpServerResponse, Exclude<E, HttpSessionError>> =>
            isSessionError(error) ? respond(error) : Effect.fail(error as Exclude<E, HttpSessionError>)
        )
      )
    })

  return {
    tag,
    cookieName,
    validate,
    middleware,
    current: Effect.flatMap(tag, (s) => s.current),
    require: Effect.flatMap(tag, (s) => s.require),
    login: (userId, payload) => Effect.flatMap(tag, (s) => s.login(userId, payload)),
    update: (f) => Effect.flatMap(tag, (s) => s.update(f)),
    replace: (payload) => Effect.flatMap(tag, (s) => s.replace(payload)),
    regenerate: Effect.flatMap(tag, (s) => s.regenerate),
    logout: Effect.flatMap(tag, (s) => s.logout),
    devices: Effect.flatMap(tag, (s) => s.devices),
    revoke: (handle) => Effect.flatMap(tag, (s) => s.revoke(handle))
  }
}
