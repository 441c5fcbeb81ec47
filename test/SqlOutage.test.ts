/**
 * A database that goes away behind a TCP proxy the test cuts: store calls fail
 * with StoreUnavailable, sweep runs fail and are counted, nothing escapes as an
 * unhandled rejection or exception, and everything recovers when it is back.
 */

import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Queue, Redacted, TestClock } from "effect"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SessionSweeper from "../src/SessionSweeper.js"
import * as SqlRepository from "../src/SqlRepository.js"
import { Payload, payload, T0 } from "./conformance/fixtures.js"
import { dropTables, mysqlLayer, mysqlUrl, pgLayer, pgUrl, skipMysql, skipPg, uniqueTable } from "./helpers/sql.js"

const MINUTE = 60_000

interface Proxy {
  readonly port: number
  /** Stops listening and drops every open connection. */
  readonly cut: Effect.Effect<void>
  /** Listens again on the same port. */
  readonly restore: Effect.Effect<void>
}

const listen = (server: Server, port: number) =>
  Effect.async<number>((resume) => {
    server.listen(port, "127.0.0.1", () => {
      const address = server.address()
      resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : port))
    })
  })

/** A loopback TCP proxy to `upstreamPort`, closed with its scope. */
const makeProxy = (upstreamPort: number) =>
  Effect.gen(function* () {
    const sockets = new Set<Socket>()
    const track = (socket: Socket) => {
      sockets.add(socket)
      socket.on("error", () => socket.destroy())
      socket.on("close", () => sockets.delete(socket))
    }
    const newServer = () =>
      createServer((client) => {
        const upstream = tcpConnect(upstreamPort, "127.0.0.1")
        track(client)
        track(upstream)
        client.on("close", () => upstream.destroy())
        upstream.on("close", () => client.destroy())
        client.pipe(upstream).pipe(client)
      })
    let server = newServer()
    const port = yield* listen(server, 0)
    const cut = Effect.sync(() => {
      server.close()
      for (const socket of sockets) socket.destroy()
    })
    const restore = Effect.suspend(() => {
      server = newServer()
      return Effect.asVoid(listen(server, port))
    })
    yield* Effect.addFinalizer(() => cut)
    return { port, cut, restore } satisfies Proxy
  })

const throughProxy = (url: string, port: number) => {
  const parsed = new URL(url)
  parsed.port = String(port)
  return parsed.toString()
}

/** Records process-level failures for the life of the scope. */
const processSpies = Effect.acquireRelease(
  Effect.sync(() => {
    const seen: Array<string> = []
    const onRejection = (reason: unknown) => seen.push(`unhandledRejection: ${String(reason)}`)
    const onException = (error: unknown) => seen.push(`uncaughtException: ${String(error)}`)
    process.on("unhandledRejection", onRejection)
    process.on("uncaughtException", onException)
    return { seen, onRejection, onException }
  }),
  ({ onException, onRejection }) =>
    Effect.sync(() => {
      process.off("unhandledRejection", onRejection)
      process.off("uncaughtException", onException)
    })
)

interface Target {
  readonly dialect: string
  readonly skip: string | undefined
  readonly url: string
  readonly client: (url: string) => Layer.Layer<SqlClient.SqlClient, unknown>
}

const targets: ReadonlyArray<Target> = [
  { dialect: "postgresql", skip: skipPg, url: pgUrl ?? "", client: (url) => pgLayer(url) },
  { dialect: "mariadb", skip: skipMysql, url: mysqlUrl ?? "", client: (url) => mysqlLayer(url) }
]

const outage = (target: Target) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(T0)
    const spies = yield* processSpies
    const proxy = yield* makeProxy(Number(new URL(target.url).port))
    const table = uniqueTable("outage")
    yield* Effect.addFinalizer(() => dropTables(table).pipe(Effect.provide(target.client(target.url)), Effect.orDie))
    const context = yield* Layer.build(
      SessionSweeper.layer({ interval: "1 minute", batchSize: 100, jitter: 0 }).pipe(
        Layer.provideMerge(SqlRepository.layer({ table })),
        Layer.provideMerge(target.client(throughProxy(target.url, proxy.port)))
      )
    )
    const storeWith = (policy: ExpirationPolicy.ExpirationPolicy) =>
      SessionStore.make({ schema: Payload, policy }).pipe(Effect.provide(context))
    const store = yield* storeWith(ExpirationPolicy.sliding("10 minutes"))
    const shortLived = yield* storeWith(ExpirationPolicy.absolute("1 minute"))
    const sweeper = Context.get(context, SessionSweeper.SessionSweeper)
    const reports = yield* sweeper.reports
    const session = yield* store.create(payload(), { userId: "u1" })
    const doomed = yield* shortLived.create(payload(), { userId: "u2" })

    yield* proxy.cut
    const failures = [
      yield* Effect.flip(store.restore(session.token)),
      yield* Effect.flip(store.save(session)),
      yield* Effect.flip(store.deleteByUser("u1")),
      yield* Effect.flip(store.create(payload(), { userId: "u3" }))
    ]
    const failedRuns = []
    for (let run = 0; run < 3; run++) {
      yield* TestClock.adjust(MINUTE)
      failedRuns.push(yield* Queue.take(reports))
    }
    const statsDuring = yield* sweeper.stats

    yield* proxy.restore
    const restored = yield* store.restore(session.token)
    const saved = yield* store.save(Option.getOrThrow(restored))
    yield* TestClock.adjust(MINUTE)
    const recoveredRun = yield* Queue.take(reports)
    const statsAfter = yield* sweeper.stats
    const deleted = yield* store.deleteByUser("u1")

    for (const failure of failures) {
      assert.strictEqual(failure._tag, "StoreUnavailable")
      assert.isDefined((failure as { cause?: unknown }).cause)
      assert.notInclude(String(failure), Redacted.value(session.token))
    }
    for (const report of failedRuns) {
      assert.strictEqual(
        report._tag === "Failed" && (report.error.cause as { _tag?: unknown })._tag,
        "StoreUnavailable"
      )
    }
    assert.strictEqual(statsDuring.failures, 3)
    assert.strictEqual(saved.version, 2)
    assert.deepStrictEqual(recoveredRun._tag === "Swept" && recoveredRun.swept, 1)
    assert.strictEqual(statsAfter.failures, 3)
    assert.isTrue(Option.isNone(yield* store.restore(doomed.token)))
    assert.strictEqual(deleted, 1)
    assert.deepStrictEqual(spies.seen, [])
  })

for (const target of targets) {
  describe.skipIf(target.skip !== undefined)(`${target.dialect} goes away and comes back`, () => {
    it.scoped(
      "calls fail with StoreUnavailable, three sweep runs fail and are counted, then all recovers",
      () => outage(target),
      60_000
    )
  })
}

describe.skipIf(skipPg !== undefined)("postgresql backends terminated by the server", () => {
  it.scoped("pg_terminate_backend on every pooled connection: typed failures at most, then service resumes", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(T0)
      const spies = yield* processSpies
      const table = uniqueTable("killed")
      const applicationName = `effect-session-${table}`
      const admin = yield* Layer.build(pgLayer())
      const sql = Context.get(admin, SqlClient.SqlClient)
      yield* Effect.addFinalizer(() => dropTables(table).pipe(Effect.provide(admin)))
      const context = yield* Layer.build(
        SqlRepository.layer({ table }).pipe(Layer.provideMerge(pgLayer(undefined, { applicationName })))
      )
      const store = yield* SessionStore.make({ schema: Payload, policy: ExpirationPolicy.sliding("1 hour") }).pipe(
        Effect.provide(context)
      )
      const session = yield* store.create(payload(), { userId: "u1" })
      yield* Effect.forEach([1, 2, 3, 4], () => store.restore(session.token), { concurrency: 4 })

      const killed = yield* sql<{
        pid: unknown
      }>`SELECT pid FROM pg_stat_activity WHERE application_name = ${applicationName}`
      yield* sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${applicationName}`
      const during = yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => Effect.either(store.restore(session.token)))
      const after = yield* store.restore(session.token)

      if (process.env.EFFECT_SESSION_VERBOSE) {
        process.stdout.write(
          `terminated ${killed.length}, failed ${during.filter((r) => r._tag === "Left").length}/6\n`
        )
      }
      assert.isAbove(killed.length, 0)
      for (const result of during) {
        if (result._tag === "Left") assert.strictEqual(result.left._tag, "StoreUnavailable")
        else assert.isTrue(Option.isSome(result.right))
      }
      assert.isTrue(Option.isSome(after))
      assert.deepStrictEqual(spies.seen, [])
    })
  )
})
