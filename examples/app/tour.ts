/**
 * The tour `npm run demo` prints: real HTTP requests against a running app,
 * one browser cookie per device, each step and what came back.
 */
import { Cookies, HttpClient, HttpClientRequest } from "@effect/platform"
import * as SqlClient from "@effect/sql/SqlClient"
import { Console, Duration, Effect, Option, Queue } from "effect"
import * as SessionSweeper from "../../src/SessionSweeper.js"

interface Reply {
  readonly status: number
  readonly body: unknown
  readonly cookie: Option.Option<Cookies.Cookie>
}

/** A device: the session cookie it holds, updated from each Set-Cookie like a browser would. */
interface Device {
  cookie: string | undefined
}

const mask = (header: string) => header.replace(/^([^=]+)=([A-Za-z0-9_-]{6})[A-Za-z0-9_-]+/, "$1=$2…")

/** Runs the tour against `baseUrl`; fails when any step does not answer as expected. */
export const tour = (baseUrl: string, options: { readonly ttl: Duration.DurationInput; readonly cookie: string }) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const sql = yield* SqlClient.SqlClient
    const sweeper = yield* SessionSweeper.SessionSweeper
    let step = 0

    const call = (device: Device, method: "GET" | "POST" | "DELETE", path: string, body?: unknown) =>
      Effect.gen(function* () {
        let request = HttpClientRequest.make(method)(`${baseUrl}${path}`)
        if (body !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, body)
        if (device.cookie !== undefined) request = HttpClientRequest.setHeader(request, "cookie", device.cookie)
        const response = yield* client.execute(request)
        const text = yield* response.text
        const cookie = Cookies.get(response.cookies, options.cookie)
        if (Option.isSome(cookie)) {
          device.cookie = cookie.value.value === "" ? undefined : `${options.cookie}=${cookie.value.value}`
        }
        return { status: response.status, body: text === "" ? null : JSON.parse(text), cookie } satisfies Reply
      })

    const show = (title: string, reply: Reply) =>
      Effect.gen(function* () {
        step++
        const setCookie = Option.match(reply.cookie, {
          onNone: () => "(no Set-Cookie: nothing changed)",
          onSome: (cookie) => `Set-Cookie: ${mask(Cookies.serializeCookie(cookie))}`
        })
        yield* Console.log(`${String(step).padStart(2)}. ${title}`)
        yield* Console.log(`    → ${reply.status} ${reply.body === null ? "" : JSON.stringify(reply.body)}`)
        yield* Console.log(`      ${setCookie}`)
      })

    const expect = (reply: Reply, status: number) =>
      reply.status === status
        ? Effect.void
        : Effect.dieMessage(`step ${step}: expected ${status}, got ${reply.status} ${JSON.stringify(reply.body)}`)

    const run = (
      title: string,
      status: number,
      device: Device,
      method: "GET" | "POST" | "DELETE",
      path: string,
      body?: unknown
    ) =>
      Effect.gen(function* () {
        const reply = yield* call(device, method, path, body)
        yield* show(title, reply)
        yield* expect(reply, status)
        return reply
      })

    const laptop: Device = { cookie: undefined }
    const phone: Device = { cookie: undefined }

    yield* Console.log(`effect-session demo against ${baseUrl}\n`)
    yield* run("alice logs in on her laptop", 200, laptop, "POST", "/login", { user: "alice" })
    yield* run("GET /me with the laptop cookie", 200, laptop, "GET", "/me")
    yield* run("adds tea to the cart", 200, laptop, "POST", "/cart", { item: "tea" })
    yield* run("adds cups to the cart", 200, laptop, "POST", "/cart", { item: "cups" })
    yield* run("GET /cart: a Set and a Date back from SQLite", 200, laptop, "GET", "/cart")
    yield* run("alice logs in on her phone too", 200, phone, "POST", "/login", { user: "alice" })
    const listed = yield* run("GET /sessions from the laptop", 200, laptop, "GET", "/sessions")
    const devices = listed.body as ReadonlyArray<{ handle: string; current: boolean }>
    const other = devices.find((device) => !device.current)
    if (devices.length !== 2 || other === undefined) {
      return yield* Effect.dieMessage("expected two devices, one of them not current")
    }
    yield* run(`the laptop revokes the phone (${other.handle})`, 204, laptop, "DELETE", `/sessions/${other.handle}`)
    yield* run("the phone asks GET /me", 401, phone, "GET", "/me")
    const stolen: Device = { cookie: laptop.cookie }
    yield* run("privilege change: the laptop regenerates its token", 200, laptop, "POST", "/regenerate")
    yield* run("the old laptop token asks GET /me", 401, stolen, "GET", "/me")
    yield* run("the new laptop token asks GET /me", 200, laptop, "GET", "/me")
    yield* run("alice logs out on the laptop", 204, laptop, "POST", "/logout")
    yield* run("GET /me after logout", 401, laptop, "GET", "/me")

    const reports = yield* sweeper.reports
    const carol: Device = { cookie: undefined }
    yield* run("carol logs in", 200, carol, "POST", "/login", { user: "carol" })
    const kept = { cookie: carol.cookie }
    const wait = Duration.sum(Duration.decode(options.ttl), Duration.millis(200))
    yield* Console.log(`    … carol is idle for ${Duration.format(wait)} (ttl ${Duration.format(options.ttl)})`)
    yield* Effect.sleep(wait)
    yield* run("carol's expired cookie asks GET /me", 401, kept, "GET", "/me")
    const swept = yield* Queue.take(reports).pipe(
      Effect.repeat({ until: (report) => report._tag === "Swept" && report.swept > 0 }),
      Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("no sweep removed the expired session") })
    )
    const rows = yield* sql<{ readonly n: number }>`SELECT count(*) AS n FROM sessions`
    step++
    yield* Console.log(`${String(step).padStart(2)}. the sweeper runs`)
    yield* Console.log(`    → removed ${swept._tag === "Swept" ? swept.swept : 0}; rows left in SQLite: ${rows[0]?.n}`)
    if (rows[0]?.n !== 0) {
      return yield* Effect.dieMessage(`expected an empty sessions table, found ${rows[0]?.n} rows`)
    }
    yield* Console.log("\ndemo finished: every step answered as expected")
  }).pipe(Effect.scoped)
