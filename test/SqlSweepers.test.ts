/**
 * Two store instances, each with its own client and sweeper, on one table:
 * they sweep a 20,000-row backlog at the same tick while 200 request-path
 * operations run on live sessions.
 */

import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Layer, Option, Queue, Ref, TestClock } from "effect"
import { afterAll } from "vitest"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import { StoreUnavailable } from "../src/SessionError.js"
import { SessionRepository } from "../src/SessionRepository.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SessionSweeper from "../src/SessionSweeper.js"
import * as SessionToken from "../src/SessionToken.js"
import * as SqlRepository from "../src/SqlRepository.js"
import { Payload, payload, T0 } from "./conformance/fixtures.js"
import { dropTables, mysqlLayer, pgLayer, skipMysql, skipPg, uniqueTable } from "./helpers/sql.js"

const EXPIRED = 20_000
const LIVE = 200
const BATCH = 500
const MINUTE = 60_000

interface Target {
  readonly dialect: string
  readonly skip: string | undefined
  /** Whether statements of the two instances really run at the same time (not on SQLite's one thread). */
  readonly parallel: boolean
  /** A new client (its own pool or connection) on the database shared under `name`. */
  readonly client: (name: string) => Layer.Layer<SqlClient.SqlClient, unknown>
}

const directory = mkdtempSync(join(tmpdir(), "effect-session-sweepers-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

const targets: ReadonlyArray<Target> = [
  { dialect: "postgresql", skip: skipPg, parallel: true, client: () => pgLayer() },
  { dialect: "mariadb", skip: skipMysql, parallel: true, client: () => mysqlLayer() },
  {
    dialect: "sqlite file (WAL)",
    skip: undefined,
    parallel: false,
    client: (name) => SqliteClient.layer({ filename: join(directory, `${name}.sqlite`) })
  }
]

/** Records what every removeExpired statement removed; the `failAt`-th call of all instances fails instead. */
const recording = (
  calls: Ref.Ref<number>,
  batches: Ref.Ref<ReadonlyArray<number>>,
  started: Deferred.Deferred<void>,
  failAt: number | undefined
) =>
  Layer.effect(
    SessionRepository,
    Effect.gen(function* () {
      const repository = yield* SessionRepository
      return {
        ...repository,
        removeExpired: (now: number, limit: number) =>
          Effect.gen(function* () {
            const call = yield* Ref.updateAndGet(calls, (n) => n + 1)
            yield* Deferred.succeed(started, undefined)
            if (call === failAt) {
              const cause = new Error("injected deadlock")
              return yield* new StoreUnavailable({ backend: repository.backend, operation: "removeExpired", cause })
            }
            const removed = yield* repository.removeExpired(now, limit)
            yield* Ref.update(batches, (all) => [...all, removed])
            return removed
          })
      }
    })
  )

const seed = (table: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (let from = 0; from < EXPIRED; from += 1_000) {
      const rows = Array.from({ length: 1_000 }, (_, i) => ({
        session_key: SessionToken.keyOf(`expired-${from + i}`),
        user_id: (from + i) % 4 === 0 ? `u${(from + i) % 10}` : null,
        created_at: T0 - MINUTE,
        expires_at: T0 + ((from + i) % 59_000),
        version: 1,
        payload: "{}"
      }))
      yield* sql`INSERT INTO ${sql(table)} ${sql.insert(rows)}`
    }
  })

const scenario = (target: Target, failAt: number | undefined) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(T0)
    const table = uniqueTable("sweep")
    const clientA = target.client(table)
    const clientB = target.client(table)
    const batches = yield* Ref.make<ReadonlyArray<number>>([])
    const started = yield* Deferred.make<void>()
    const sweeperOptions = { interval: "1 minute", batchSize: BATCH, jitter: 0 } as const

    const calls = yield* Ref.make(0)
    const instance = (client: typeof clientA, migrate: boolean) =>
      SessionSweeper.layer(sweeperOptions).pipe(
        Layer.provideMerge(recording(calls, batches, started, failAt)),
        Layer.provideMerge(SqlRepository.layer({ table, migrate })),
        Layer.provideMerge(client)
      )
    const a = yield* Layer.build(instance(clientA, true))
    const b = yield* Layer.build(instance(clientB, false))
    yield* Effect.addFinalizer(() => dropTables(table).pipe(Effect.provide(a)))
    const storeOf = (context: typeof a) =>
      SessionStore.make({ schema: Payload, policy: ExpirationPolicy.sliding("1 hour") }).pipe(Effect.provide(context))
    const storeA = yield* storeOf(a)
    const storeB = yield* storeOf(b)
    const sweeperA = Context.get(a, SessionSweeper.SessionSweeper)
    const sweeperB = Context.get(b, SessionSweeper.SessionSweeper)
    const reportsA = yield* sweeperA.reports
    const reportsB = yield* sweeperB.reports
    yield* seed(table).pipe(Effect.provide(a))
    const live = yield* Effect.forEach(
      Array.from({ length: LIVE }, (_, i) => i),
      (i) => (i % 2 === 0 ? storeA : storeB).create(payload({ n: i }), { userId: `u${i % 10}` }),
      { concurrency: 4 }
    )

    yield* TestClock.adjust(MINUTE)
    yield* Deferred.await(started)
    const batchesAtStart = (yield* Ref.get(batches)).length
    const operations = yield* Effect.forEach(
      live,
      (session, i) => {
        const store = i % 2 === 0 ? storeB : storeA
        return i % 3 === 0
          ? Effect.map(store.restore(session.token), Option.isSome)
          : i % 3 === 1
            ? store.touch(session)
            : Effect.as(store.save({ ...session, payload: { ...session.payload, n: session.payload.n + 1_000 } }), true)
      },
      { concurrency: 8 }
    ).pipe(Effect.either)
    const batchesAtEnd = (yield* Ref.get(batches)).length
    const [reportA, reportB] = [yield* Queue.take(reportsA), yield* Queue.take(reportsB)]

    const sql = Context.get(a, SqlClient.SqlClient)
    const counts = yield* sql<{ expired: unknown; total: unknown }>`SELECT
  SUM(CASE WHEN expires_at <= ${T0 + MINUTE} THEN 1 ELSE 0 END) AS expired,
  COUNT(*) AS total
FROM ${sql(table)}`
    const statsA = yield* sweeperA.stats
    const statsB = yield* sweeperB.stats
    const all = yield* Ref.get(batches)
    const restored = yield* Effect.forEach(live, (session) => storeA.restore(session.token))

    assert.deepStrictEqual(operations._tag === "Right" && operations.right, Array(LIVE).fill(true))
    if (target.parallel) assert.isBelow(batchesAtStart, all.length)
    assert.isTrue(all.every((removed) => removed <= BATCH))
    assert.isAtLeast(all.length, Math.ceil(EXPIRED / BATCH))
    assert.strictEqual(
      all.reduce((sum, removed) => sum + removed, 0),
      EXPIRED
    )
    assert.strictEqual(statsA.swept + statsB.swept, EXPIRED)
    assert.strictEqual(Number(counts[0].expired ?? 0), 0)
    assert.strictEqual(Number(counts[0].total), LIVE)
    restored.forEach((session, i) => {
      const n = Option.getOrThrow(session).payload.n
      assert.strictEqual(n, i % 3 === 2 ? i + 1_000 : i)
    })
    if (failAt === undefined) {
      assert.deepStrictEqual([reportA._tag, reportB._tag], ["Swept", "Swept"])
      assert.deepStrictEqual([statsA.failures, statsB.failures], [0, 0])
    } else {
      assert.deepStrictEqual([reportA._tag, reportB._tag].sort(), ["Failed", "Swept"])
      assert.strictEqual(statsA.failures + statsB.failures, 1)
      yield* TestClock.adjust(MINUTE)
      const next = [yield* Queue.take(reportsA), yield* Queue.take(reportsB)]
      assert.deepStrictEqual(
        next.map((report) => report._tag === "Swept" && report.swept),
        [0, 0]
      )
    }
    if (process.env.EFFECT_SESSION_VERBOSE)
      process.stdout.write(
        `${target.dialect} ${JSON.stringify({
          statements: all.length,
          batchesAtStart,
          batchesAtEnd,
          max: Math.max(...all),
          swept: [statsA.swept, statsB.swept]
        })}\n`
      )
    yield* Effect.logDebug("two sweepers").pipe(
      Effect.annotateLogs({ statements: all.length, batchesAtStart, batchesAtEnd, swept: [statsA.swept, statsB.swept] })
    )
  })

for (const target of targets) {
  describe.skipIf(target.skip !== undefined)(`two sweepers on one ${target.dialect} table`, () => {
    it.scoped(
      "20,000 expired rows, batch 500, 200 live operations: all succeed, every delete bounded, counts exact",
      () => scenario(target, undefined),
      120_000
    )

    it.scoped(
      "an injected failure in the third batch is counted; the other instance finishes and both run again",
      () => scenario(target, 3),
      120_000
    )
  })
}
