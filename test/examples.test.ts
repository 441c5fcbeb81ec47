import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cookies, HttpClient, HttpClientRequest, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option } from "effect"
import { afterAll } from "vitest"
import { makeApp, sessionsLayer, sqliteLayer } from "../examples/app/app.js"
import "../examples/testing/visits.test.js"

const directory = mkdtempSync(join(tmpdir(), "effect-session-e2e-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

const AppLive = HttpServer.serve(makeApp({ secureCookie: true })).pipe(
  Layer.provide(sessionsLayer({ ttl: Duration.minutes(30), sweepInterval: Duration.minutes(5) })),
  Layer.provide(sqliteLayer(join(directory, "e2e.db"))),
  Layer.provideMerge(NodeHttpServer.layerTest)
)

interface Reply {
  readonly status: number
  readonly body: unknown
  readonly cookie: Option.Option<Cookies.Cookie>
}

const call = (method: "GET" | "POST" | "DELETE", path: string, options: { cookie?: string; body?: unknown } = {}) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    let request = HttpClientRequest.make(method)(path)
    if (options.body !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, options.body)
    if (options.cookie !== undefined) request = HttpClientRequest.setHeader(request, "cookie", options.cookie)
    const response = yield* client.execute(request)
    const text = yield* response.text
    return {
      status: response.status,
      body: text === "" ? null : JSON.parse(text),
      cookie: Cookies.get(response.cookies, "session")
    } satisfies Reply
  }).pipe(Effect.scoped)

const login = (user: string) =>
  Effect.map(call("POST", "/login", { body: { user } }), (reply) => {
    const cookie = Option.getOrThrow(reply.cookie)
    return { reply, cookie, header: `session=${cookie.value}` }
  })

describe("example app over real HTTP on port 0", () => {
  it.layer(AppLive, { timeout: 30_000 })((it) => {
    it.effect("login sets a HttpOnly, Secure, SameSite=Lax, Path=/ cookie with Max-Age, and /me answers with it", () =>
      Effect.gen(function* () {
        const { cookie, header, reply } = yield* login("alice")

        const me = yield* call("GET", "/me", { cookie: header })

        assert.strictEqual(reply.status, 200)
        assert.match(cookie.value, /^[A-Za-z0-9_-]{43}$/)
        assert.strictEqual(cookie.options?.httpOnly, true)
        assert.strictEqual(cookie.options?.secure, true)
        assert.strictEqual(cookie.options?.sameSite, "lax")
        assert.strictEqual(cookie.options?.path, "/")
        assert.strictEqual(Duration.toSeconds(cookie.options?.maxAge ?? 0), 1800)
        assert.strictEqual(me.status, 200)
        assert.strictEqual((me.body as { user: string }).user, "alice")
        assert.isTrue(Option.isNone(me.cookie))
      })
    )

    it.effect("regenerate changes the token and the old token stops working", () =>
      Effect.gen(function* () {
        const { header } = yield* login("bob")

        const regenerated = yield* call("POST", "/regenerate", { cookie: header })
        const fresh = `session=${Option.getOrThrow(regenerated.cookie).value}`
        const old = yield* call("GET", "/me", { cookie: header })
        const now = yield* call("GET", "/me", { cookie: fresh })

        assert.strictEqual(regenerated.status, 200)
        assert.notStrictEqual(fresh, header)
        assert.strictEqual(old.status, 401)
        assert.strictEqual(now.status, 200)
      })
    )

    it.effect("logout clears the cookie and the session", () =>
      Effect.gen(function* () {
        const { header } = yield* login("carol")

        const out = yield* call("POST", "/logout", { cookie: header })
        const after = yield* call("GET", "/me", { cookie: header })

        const cleared = Option.getOrThrow(out.cookie)
        assert.strictEqual(out.status, 204)
        assert.strictEqual(cleared.value, "")
        assert.strictEqual(Duration.toSeconds(cleared.options?.maxAge ?? 1), 0)
        assert.strictEqual(cleared.options?.path, "/")
        assert.strictEqual(after.status, 401)
      })
    )

    it.effect("a revoked device gets 401 while the revoking one keeps working", () =>
      Effect.gen(function* () {
        const laptop = yield* login("dave")
        const phone = yield* login("dave")

        const listed = yield* call("GET", "/sessions", { cookie: laptop.header })
        const devices = listed.body as ReadonlyArray<{ handle: string; current: boolean }>
        const other = devices.find((device) => !device.current)
        const revoked = yield* call("DELETE", `/sessions/${other?.handle}`, { cookie: laptop.header })
        const phoneMe = yield* call("GET", "/me", { cookie: phone.header })
        const laptopMe = yield* call("GET", "/me", { cookie: laptop.header })

        assert.strictEqual(devices.length, 2)
        assert.strictEqual(revoked.status, 204)
        assert.strictEqual(phoneMe.status, 401)
        assert.strictEqual(laptopMe.status, 200)
      })
    )

    it.effect("the cart keeps a Set and a Date through SQLite", () =>
      Effect.gen(function* () {
        const { header } = yield* login("erin")

        yield* call("POST", "/cart", { cookie: header, body: { item: "tea" } })
        yield* call("POST", "/cart", { cookie: header, body: { item: "tea" } })
        yield* call("POST", "/cart", { cookie: header, body: { item: "cups" } })
        const cart = yield* call("GET", "/cart", { cookie: header })

        const body = cart.body as { items: ReadonlyArray<string>; updatedAt: string }
        assert.deepStrictEqual(body.items, ["cups", "tea"])
        assert.match(body.updatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      })
    )

    it.effect("junk cookies get an anonymous answer and a cleared cookie, never a 500", () =>
      Effect.gen(function* () {
        const junk = ["session=", `session=${"x".repeat(8192)}`, "session=%E2%9C%93not*a*token", "session=a.b.c"]

        const replies = yield* Effect.forEach(junk, (cookie) => call("GET", "/", { cookie }))
        const me = yield* call("GET", "/me", { cookie: junk[1] })

        for (const reply of replies) {
          assert.strictEqual(reply.status, 200)
          assert.strictEqual((reply.body as { user: unknown }).user, null)
          assert.strictEqual(Option.getOrThrow(reply.cookie).value, "")
        }
        assert.strictEqual(me.status, 401)
      })
    )
  })
})

const runDemo = Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
  execFile(
    process.execPath,
    ["--import", "tsx", "examples/app/demo.ts"],
    { timeout: 60_000, cwd: join(import.meta.dirname, "..") },
    (error, stdout, stderr) => resume(Effect.succeed({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
  )
})

describe("npm run demo", () => {
  it.live(
    "runs the whole tour and exits 0",
    () =>
      Effect.gen(function* () {
        const { code, stderr, stdout } = yield* runDemo

        assert.strictEqual(code, 0, stderr)
        assert.include(stdout, "demo finished: every step answered as expected")
        assert.include(stdout, "rows left in SQLite: 0")
      }),
    90_000
  )
})
