/**
 * Server-backed SQL test setup: client layers from the environment, a table
 * name no other run uses, and a repository layer that drops its tables when
 * its scope closes.
 */

import * as SqlClient from "@effect/sql/SqlClient"
import { MysqlClient } from "@effect/sql-mysql2"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import type { SessionRepository } from "../../src/SessionRepository.js"
import * as SqlRepository from "../../src/SqlRepository.js"

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
