/**
 * Server-backed SQL test setup: client layers from the environment, a table
 * name no other run uses, and a repository layer that drops its tables when
 * its scope closes.
 */

import * as SqlClient from "@effect/sql/SqlClient"
import { MysqlClient } from "@effect/sql-mysql2"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, TestClock } from "effect"
import * as ExpirationPolicy from "../../src/ExpirationPolicy.js"
import { SessionRepository } from "../../src/SessionRepository.js"
import * as SessionStore from "../../src/SessionStore.js"
import * as SqlRepository from "../../src/SqlRepository.js"
import { Payload, payload, T0 } from "../conformance/fixtures.js"

export const pgUrl = process.env.EFFECT_SESSION_PG_URL
export const mysqlUrl = process.env.EFFECT_SESSION_MYSQL_URL

export const skipPg = pgUrl ? undefined : "EFFECT_SESSION_PG_URL is not set"
export const skipMysql = mysqlUrl ? undefined : "EFFECT_SESSION_MYSQL_URL is not set"

export const pgLayer = (url = pgUrl ?? "", options: Partial<PgClient.PgClientConfig> = {}) =>
  PgClient.layer({ url: Redacted.make(url), maxConnections: 4, ...options })

export const mysqlLayer = (url = mysqlUrl ?? "", options: Partial<MysqlClient.MysqlClientConfig> = {}) =>
  MysqlClient.layer({ url: Redacted.make(url), maxConnections: 4, ...options })

const run = `${process.pid.toString(36)}_${Math.floor(Math.random() * 36 ** 4).toString(36)}`
let tables = 0

/** A table name unique to this process and call, short enough for every dialect's index names. */
export const uniqueTable = (prefix: string): string => `es_${prefix}_${run}_${++tables}`

/** Drops a sessions table and its migrations table, whatever state they are in. */
export const dropTables = (table: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`DROP TABLE IF EXISTS ${sql(table)}`
    yield* sql`DROP TABLE IF EXISTS ${sql(SqlRepository.migrationsTable(table))}`
  }).pipe(Effect.orDie)

/** A repository on a fresh table that is dropped when the layer's scope closes. */
export const scopedRepository = (
  prefix: string,
  options: Partial<SqlRepository.Options> = {}
): Layer.Layer<SessionRepository, unknown, SqlClient.SqlClient> => {
  const table = uniqueTable(prefix)
  return Layer.merge(
    SqlRepository.layer({ table, ...options }),
    Layer.scopedDiscard(Effect.addFinalizer(() => dropTables(table)))
  )
}

/** Payloads over 1 MB of multi-byte text round-trip through create, save and restore. */
export const largePayloadSuite = (
  name: string,
  skip: string | undefined,
  client: () => Layer.Layer<SqlClient.SqlClient, unknown>
) =>
  describe.skipIf(skip !== undefined)(`${name}: large payloads`, () => {
    it.effect("1.5 MB of multi-byte text round-trips through create, save and restore", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(T0)
        const repository = yield* SessionRepository
        const store = yield* SessionStore.make({
          schema: Payload,
          policy: ExpirationPolicy.sliding("1 hour"),
          maxPayloadBytes: 4_000_000
        })
        const first = "é😀a".repeat(200_000)
        const second = "ü€z".repeat(250_000)

        const session = yield* store.create(payload({ note: first }))
        const created = Option.getOrThrow(yield* store.restore(session.token))
        yield* store.save({ ...created, payload: { ...created.payload, note: second } })
        const saved = Option.getOrThrow(yield* store.restore(session.token))
        const raw = Option.getOrThrow(yield* repository.get(session.key))

        assert.strictEqual(created.payload.note, first)
        assert.strictEqual(saved.payload.note, second)
        assert.isAbove(Buffer.byteLength(raw.payload, "utf8"), 1_500_000)
      }).pipe(Effect.scoped, Effect.provide(Layer.provideMerge(scopedRepository("big"), client())))
    )
  })
