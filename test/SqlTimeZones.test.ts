/**
 * Expiry follows `Clock` to the millisecond whatever the Node process zone
 * and the database session zone. Each cell also checks that its zones really
 * reach the driver and the server, so the matrix cannot pass by accident.
 */

import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, TestClock } from "effect"
import { afterAll, beforeAll } from "vitest"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import { SessionRepository } from "../src/SessionRepository.js"
import * as SessionSweeper from "../src/SessionSweeper.js"
import { makeStore, payload } from "./conformance/fixtures.js"
import { mysqlLayer, pgLayer, scopedRepository, skipMysql, skipPg } from "./helpers/sql.js"

const MINUTE = 60_000
const JAN_1 = Date.UTC(2030, 0, 1)

const starts = {
  "mid-second": Date.UTC(2030, 0, 1, 0, 0, 0, 750),
  "across the EU daylight-saving switch": Date.UTC(2030, 2, 31, 0, 30, 0, 750)
} as const

/** Minutes east of UTC, by process zone, on 2030-01-01. */
const processZones = {
  UTC: 0,
  "Europe/London": 0,
  "America/New_York": -300,
  "Asia/Kolkata": 330
} as const

/** Seconds east of UTC, by database session zone. */
const sessionZones = { "+00:00": 0, "-05:00": -18_000 } as const
type SessionZone = keyof typeof sessionZones

interface Cell {
  readonly dialect: string
  readonly skip: string | undefined
  readonly client: (zone: SessionZone) => Layer.Layer<SqlClient.SqlClient, unknown>
  readonly zones: ReadonlyArray<SessionZone>
  /** Fails unless the session zone and the process zone are the ones this cell claims. */
  readonly control: (
    zone: SessionZone,
    processOffsetMinutes: number
  ) => Effect.Effect<void, unknown, SqlClient.SqlClient>
}

const withSetup = <E>(client: Layer.Layer<SqlClient.SqlClient, E>, statement: string) =>
  Layer.effectDiscard(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement))).pipe(
    Layer.provideMerge(client)
  )

const localMidnight = (value: unknown) => (value instanceof Date ? value.getTime() : Number.NaN)

const cells: ReadonlyArray<Cell> = [
  {
    dialect: "postgresql",
    skip: skipPg,
    zones: ["+00:00", "-05:00"],
    client: (zone) =>
      withSetup(pgLayer(undefined, { maxConnections: 1 }), `SET TIME ZONE INTERVAL '${zone}' HOUR TO MINUTE`),
    control: (zone, processOffset) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ local: unknown; offset: unknown }>`SELECT
  TIMESTAMP '2030-01-01 00:00:00' AS local,
  EXTRACT(TIMEZONE FROM TIMESTAMPTZ '2030-01-01 00:00:00+00') AS offset`
        assert.strictEqual(Number(row.offset), sessionZones[zone])
        assert.strictEqual(localMidnight(row.local), JAN_1 - processOffset * MINUTE)
      })
  },
  {
    dialect: "mariadb",
    skip: skipMysql,
    zones: ["+00:00", "-05:00"],
    client: (zone) => withSetup(mysqlLayer(undefined, { maxConnections: 1 }), `SET time_zone = '${zone}'`),
    control: (zone, processOffset) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ local: unknown; zone: unknown; epoch: unknown }>`SELECT
  CAST('2030-01-01 00:00:00' AS DATETIME) AS local,
  @@session.time_zone AS zone,
  UNIX_TIMESTAMP('2030-01-01 00:00:00') AS epoch`
        assert.strictEqual(row.zone, zone)
        assert.strictEqual(Number(row.epoch), JAN_1 / 1000 - sessionZones[zone])
        assert.strictEqual(localMidnight(row.local), JAN_1 - processOffset * MINUTE)
      })
  },
  {
    dialect: "sqlite",
    skip: undefined,
    zones: ["+00:00"],
    client: () => SqliteClient.layer({ filename: ":memory:" }),
    control: (_zone, processOffset) =>
      Effect.sync(() => assert.strictEqual(-new Date(JAN_1).getTimezoneOffset(), processOffset))
  }
]

const scenario = (cell: Cell, zone: SessionZone, start: number, processOffset: number) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(start)
    const repository = yield* SessionRepository
    const store = yield* makeStore(ExpirationPolicy.sliding("30 minutes"))
    const sweep = Effect.map(SessionSweeper.sweepOnce(repository, 100), ({ swept }) => swept)
    yield* cell.control(zone, processOffset)

    const session = yield* store.create(payload(), { userId: "u" })
    const present = [Option.isSome(yield* store.restore(session.token))]
    yield* TestClock.adjust(29 * MINUTE)
    present.push(Option.isSome(yield* store.restore(session.token)))
    const listed = yield* store.listByUser("u")
    const sweptEarly = yield* sweep
    yield* TestClock.adjust(2 * MINUTE)
    present.push(Option.isSome(yield* store.restore(session.token)))
    const rawBefore = yield* repository.get(session.key)
    const sweptLate = yield* sweep

    assert.deepStrictEqual(present, [true, true, false])
    assert.deepStrictEqual([sweptEarly, sweptLate], [0, 1])
    assert.deepStrictEqual(session.expiresAt, Option.some(start + 30 * MINUTE))
    assert.deepStrictEqual(
      listed.map((info) => info.expiresAt),
      [Option.some(start + 30 * MINUTE)]
    )
    const raw = Option.getOrThrow(rawBefore)
    assert.strictEqual(raw.expiresAt, start + 30 * MINUTE)
    assert.strictEqual(raw.createdAt, start)
    assert.isTrue(Option.isNone(yield* repository.get(session.key)))
    yield* cell.control(zone, processOffset)
  })

describe.each(Object.entries(processZones))("process TZ=%s", (processZone, processOffset) => {
  const previous = process.env.TZ
  beforeAll(() => {
    process.env.TZ = processZone
  })
  afterAll(() => {
    if (previous === undefined) delete process.env.TZ
    else process.env.TZ = previous
  })

  for (const cell of cells) {
    describe.skipIf(cell.skip !== undefined)(cell.dialect, () => {
      for (const zone of cell.zones) {
        for (const [label, start] of Object.entries(starts)) {
          it.effect(`database zone ${zone}, start ${label}: present, present, absent; swept 0 then 1`, () =>
            scenario(cell, zone, start, processOffset).pipe(
              Effect.scoped,
              Effect.provide(Layer.provideMerge(scopedRepository("tz"), cell.client(zone)))
            )
          )
        }
      }
    })
  }
})
