import { Cookies, HttpApp, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Either, Layer, Logger, LogLevel, Option, Schema, TestClock } from "effect"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import * as HttpSession from "../src/HttpSession.js"
import * as MemoryRepository from "../src/MemoryRepository.js"
import { StoreUnavailable } from "../src/SessionError.js"
import { SessionRepository } from "../src/SessionRepository.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SessionToken from "../src/SessionToken.js"

const T0 = Date.parse("2030-01-01T00:00:00.000Z")
const MINUTE = 60_000

const Visits = Schema.Struct({ count: Schema.Number, seenAt: Schema.Date })
type Visits = typeof Visits.Type

class Sessions extends Context.Tag("test/HttpSession/Sessions")<Sessions, SessionStore.SessionStore<Visits>>() {}

const Http = HttpSession.make(Sessions)

class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}

const router = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/login",
    Effect.as(Http.login("alice", { count: 0, seenAt: new Date(T0) }), HttpServerResponse.empty())
  ),
  HttpRouter.post(
    "/login-then-fail",
    Effect.zipRight(Http.login("alice", { count: 0, seenAt: new Date(T0) }), Effect.fail(new Boom()))
  ),
  HttpRouter.get(
    "/me",
    Effect.flatMap(Http.require, (s) => HttpServerResponse.json({ user: s.userId }))
  ),
  HttpRouter.get(
    "/whoami",
    Effect.flatMap(Http.current, (s) =>
      HttpServerResponse.json({ user: Option.getOrNull(Option.flatMap(s, (x) => x.userId)) })
    )
  ),
  HttpRouter.post(
    "/replace-after-concurrent-write",
    Effect.gen(function* () {
      const session = yield* Http.require
      const store = yield* Sessions
      yield* store.update(session.token, (v) => ({ ...v, count: 100 }))
      yield* Http.replace({ ...session.payload, count: 1 })
      return HttpServerResponse.empty()
    })
  ),
  HttpRouter.post("/logout", Effect.as(Http.logout, HttpServerResponse.empty({ status: 204 })))
)

const app = router.pipe(Http.middleware)

interface Reply {
  readonly status: number
  readonly setCookie: ReadonlyArray<string>
}

const send = (method: "GET" | "POST", path: string, cookie?: string) =>
  Effect.gen(function* () {
    const headers: Record<string, string> = cookie === undefined ? {} : { cookie }
    const request = HttpServerRequest.fromWeb(new Request(`http://localhost${path}`, { method, headers }))
    let response: HttpServerResponse.HttpServerResponse | undefined
    yield* HttpApp.toHandled(app, (_request, out) =>
      Effect.sync(() => {
        response = out
      })
    ).pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, request),
      Effect.locally(HttpApp.currentPreResponseHandlers, Option.none()),
      Effect.catchAllCause(() => Effect.void)
    )
    const out = response ?? HttpServerResponse.empty({ status: 599 })
    return { status: out.status, setCookie: Cookies.toSetCookieHeaders(out.cookies) } satisfies Reply
  })

const tokenOf = (reply: Reply): string => {
  const header = reply.setCookie.find((h) => h.startsWith("session="))
  assert.isDefined(header)
  return `session=${header?.split(";")[0]?.slice("session=".length)}`
}

const makeLogs = () => {
  const entries: Array<{ level: string; text: string }> = []
  const logger = Logger.make(({ cause, logLevel, message }) => {
    entries.push({ level: logLevel.label, text: `${JSON.stringify(message)} ${Cause.pretty(cause)}` })
  })
  return { entries, layer: Layer.merge(Logger.add(logger), Logger.minimumLogLevel(LogLevel.All)) }
}

const storeLayer = (policy: ExpirationPolicy.ExpirationPolicy, repository = MemoryRepository.layer) =>
  Layer.provideMerge(SessionStore.layer(Sessions, { schema: Visits, policy }), repository)

const withStore =
  (policy: ExpirationPolicy.ExpirationPolicy) =>
  <A, E>(effect: Effect.Effect<A, E, Sessions | SessionRepository>) =>
    Effect.zipRight(TestClock.setTime(T0), effect).pipe(Effect.provide(storeLayer(policy)))

describe("HttpSession over a handler, with TestClock", () => {
  it.effect("a sliding session re-sends its cookie only past the renewal threshold", () =>
    Effect.gen(function* () {
      const login = yield* send("POST", "/login")
      const cookie = tokenOf(login)
      assert.match(login.setCookie[0] ?? "", /Max-Age=1800;/)

      yield* TestClock.adjust(10 * MINUTE)
      const early = yield* send("GET", "/me", cookie)
      const store = yield* Sessions
      const afterEarly = Option.getOrThrow(yield* store.restore(cookie.slice("session=".length)))

      yield* TestClock.adjust(6 * MINUTE)
      const late = yield* send("GET", "/me", cookie)

      assert.strictEqual(early.status, 200)
      assert.deepStrictEqual(early.setCookie, [])
      assert.strictEqual(afterEarly.version, 1)
      assert.strictEqual(late.status, 200)
      assert.strictEqual(late.setCookie.length, 1)
      assert.match(
        late.setCookie[0] ?? "",
        /^session=[A-Za-z0-9_-]{43}; Max-Age=1800; Path=\/; HttpOnly; Secure; SameSite=Lax$/
      )
    }).pipe(withStore(ExpirationPolicy.sliding("30 minutes", { renewalThreshold: 0.5 })))
  )

  it.effect("an absolute session never re-sends its cookie and ends at its expiry", () =>
    Effect.gen(function* () {
      const cookie = tokenOf(yield* send("POST", "/login"))
      const replies: Array<Reply> = []
      for (const step of [1, 10, 18, 29]) {
        yield* TestClock.setTime(T0 + step * MINUTE)
        replies.push(yield* send("GET", "/me", cookie))
      }

      yield* TestClock.setTime(T0 + 30 * MINUTE)
      const expired = yield* send("GET", "/me", cookie)

      assert.deepStrictEqual(
        replies.map((r) => [r.status, r.setCookie.length]),
        [
          [200, 0],
          [200, 0],
          [200, 0],
          [200, 0]
        ]
      )
      assert.strictEqual(expired.status, 401)
      assert.match(expired.setCookie[0] ?? "", /^session=; Max-Age=0; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
    }).pipe(withStore(ExpirationPolicy.absolute("30 minutes")))
  )

  it.effect("expiry turns the next request anonymous and clears the cookie", () =>
    Effect.gen(function* () {
      const cookie = tokenOf(yield* send("POST", "/login"))

      yield* TestClock.adjust(31 * MINUTE)
      const reply = yield* send("GET", "/whoami", cookie)

      assert.strictEqual(reply.status, 200)
      assert.match(reply.setCookie[0] ?? "", /^session=; Max-Age=0;/)
    }).pipe(withStore(ExpirationPolicy.sliding("30 minutes")))
  )

  it.effect("a request that changes nothing writes nothing to the store", () =>
    Effect.gen(function* () {
      const cookie = tokenOf(yield* send("POST", "/login"))
      const repository = yield* SessionRepository
      const key = SessionToken.keyOf(cookie.slice("session=".length))

      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust(MINUTE)
        yield* send("GET", "/me", cookie)
      }

      const stored = Option.getOrThrow(yield* repository.get(key))
      assert.strictEqual(stored.version, 1)
      assert.strictEqual(stored.expiresAt, T0 + 30 * MINUTE)
    }).pipe(withStore(ExpirationPolicy.sliding("30 minutes", { renewalThreshold: 0.5 })))
  )

  it.effect("a failing handler still sends the cookie of the session it started", () =>
    Effect.gen(function* () {
      const reply = yield* send("POST", "/login-then-fail")

      assert.strictEqual(reply.status, 500)
      assert.match(reply.setCookie[0] ?? "", /^session=[A-Za-z0-9_-]{43}; Max-Age=1800;/)
    }).pipe(withStore(ExpirationPolicy.sliding("30 minutes")))
  )

  it.effect("login over a live session deletes the old one", () =>
    Effect.gen(function* () {
      const first = tokenOf(yield* send("POST", "/login"))

      const second = tokenOf(yield* send("POST", "/login", first))
      const old = yield* send("GET", "/me", first)
      const fresh = yield* send("GET", "/me", second)

      assert.notStrictEqual(first, second)
      assert.strictEqual(old.status, 401)
      assert.strictEqual(fresh.status, 200)
    }).pipe(withStore(ExpirationPolicy.sliding("30 minutes")))
  )

  it.effect("a version conflict answers 409 and leaves the stored session intact", () =>
    Effect.gen(function* () {
      const cookie = tokenOf(yield* send("POST", "/login"))
      const store = yield* Sessions

      const reply = yield* send("POST", "/replace-after-concurrent-write", cookie)
      const stored = Option.getOrThrow(yield* store.restore(cookie.slice("session=".length)))

      assert.strictEqual(reply.status, 409)
      assert.strictEqual(stored.payload.count, 100)
      assert.strictEqual(stored.version, 2)
    }).pipe(withStore(ExpirationPolicy.sliding("30 minutes")))
  )

  it.effect("logout expires the cookie with the path and attributes it was set with", () =>
    Effect.gen(function* () {
      const cookie = tokenOf(yield* send("POST", "/login"))

      const reply = yield* send("POST", "/logout", cookie)
      const after = yield* send("GET", "/me", cookie)

      assert.strictEqual(reply.status, 204)
      assert.deepStrictEqual(reply.setCookie, ["session=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"])
      assert.strictEqual(after.status, 401)
    }).pipe(withStore(ExpirationPolicy.sliding("30 minutes")))
  )
})

describe("HttpSession with bad input or a failing store", () => {
  it.effect("junk cookies are served anonymously, cleared, and logged without their value", () => {
    const logs = makeLogs()
    return Effect.gen(function* () {
      const junk = ["x".repeat(8192), "not a token!", "ab", "é".repeat(30), "A".repeat(129)]
      const replies: Array<Reply> = []
      for (const value of junk) {
        replies.push(yield* send("GET", "/whoami", `session=${encodeURIComponent(value)}`))
      }
      const empty = yield* send("GET", "/whoami", "session=")

      assert.deepStrictEqual(
        replies.map((r) => r.status),
        junk.map(() => 200)
      )
      assert.isTrue(replies.every((r) => /^session=; Max-Age=0;/.test(r.setCookie[0] ?? "")))
      assert.strictEqual(empty.status, 200)
      assert.match(empty.setCookie[0] ?? "", /^session=; Max-Age=0;/)
      const warnings = logs.entries.filter((e) => e.level === "WARN")
      assert.strictEqual(warnings.length, junk.length + 1)
      assert.isFalse(logs.entries.some((e) => e.text.includes("xxxxxxxx") || e.text.includes("not a token")))
    }).pipe(withStore(ExpirationPolicy.sliding("30 minutes")), Effect.provide(logs.layer))
  })

  it.effect("a stored session that does not decode is served anonymously and cleared, the token never logged", () => {
    const logs = makeLogs()
    return Effect.gen(function* () {
      const cookie = tokenOf(yield* send("POST", "/login"))
      const token = cookie.slice("session=".length)
      const repository = yield* SessionRepository
      const key = SessionToken.keyOf(token)
      const stored = Option.getOrThrow(yield* repository.get(key))
      yield* repository.update({ ...stored, version: 2, payload: '{"count":' }, 1, T0)

      const reply = yield* send("GET", "/whoami", cookie)

      assert.strictEqual(reply.status, 200)
      assert.match(reply.setCookie[0] ?? "", /^session=; Max-Age=0;/)
      assert.isTrue(logs.entries.some((e) => e.level === "WARN" && e.text.includes("does not decode")))
      assert.isFalse(logs.entries.some((e) => e.text.includes(token)))
    }).pipe(withStore(ExpirationPolicy.sliding("30 minutes")), Effect.provide(logs.layer))
  })

  it.effect("an unavailable store answers 503 with the typed error logged, and the next request is served", () => {
    const logs = makeLogs()
    let failing = false
    const flaky = Layer.effect(
      SessionRepository,
      Effect.map(MemoryRepository.make, (repository) => ({
        ...repository,
        get: (key: string) =>
          failing
            ? Effect.fail(new StoreUnavailable({ backend: "memory", operation: "get", cause: new Error("link down") }))
            : repository.get(key)
      }))
    )
    return Effect.gen(function* () {
      const cookie = tokenOf(yield* send("POST", "/login"))

      failing = true
      const down = yield* send("GET", "/me", cookie)
      failing = false
      const up = yield* send("GET", "/me", cookie)

      assert.strictEqual(down.status, 503)
      assert.deepStrictEqual(down.setCookie, [])
      assert.strictEqual(up.status, 200)
      assert.isTrue(logs.entries.some((e) => e.level === "ERROR" && e.text.includes("StoreUnavailable")))
    }).pipe(
      Effect.zipLeft(TestClock.setTime(T0)),
      Effect.provide(storeLayer(ExpirationPolicy.sliding("30 minutes"), flaky)),
      Effect.provide(logs.layer)
    )
  })
})

describe("HttpSession cookie options", () => {
  const checked = (cookie: HttpSession.CookieOptions) => Effect.either(HttpSession.make(Sessions, { cookie }).validate)

  it.effect("hostPrefix names the cookie __Host- and refuses what the prefix forbids", () =>
    Effect.gen(function* () {
      const ok = HttpSession.make(Sessions, { cookie: { hostPrefix: true } })
      const insecure = yield* checked({ hostPrefix: true, secure: false })
      const scoped = yield* checked({ hostPrefix: true, path: "/app" })
      const domain = yield* checked({ hostPrefix: true, domain: "example.com" })

      assert.strictEqual(ok.cookieName, "__Host-session")
      assert.isTrue(Either.isRight(yield* Effect.either(ok.validate)))
      for (const result of [insecure, scoped, domain]) {
        assert.isTrue(result._tag === "Left" && result.left._tag === "SessionConfigError")
      }
    })
  )

  it.effect("a path without a leading slash, a domain with a space and an unknown SameSite are refused", () =>
    Effect.gen(function* () {
      const refused = [
        yield* checked({ path: "app" }),
        yield* checked({ path: "/a b" }),
        yield* checked({ domain: "a .com" }),
        yield* checked({ sameSite: "bogus" as never })
      ]
      const accepted = [yield* checked({ path: "/app" }), yield* checked({ domain: ".example.com" })]

      for (const result of refused) {
        assert.isTrue(result._tag === "Left" && result.left._tag === "SessionConfigError")
      }
      for (const result of accepted) {
        assert.isTrue(result._tag === "Right")
      }
    })
  )

  it.effect("SameSite=None without Secure and an invalid name are refused", () =>
    Effect.gen(function* () {
      const none = yield* checked({ sameSite: "none", secure: false })
      const name = yield* checked({ name: "bad name;" })

      assert.isTrue(none._tag === "Left")
      assert.isTrue(name._tag === "Left")
    })
  )
})
