/**
 * A repository on `@effect/sql`: SQLite, PostgreSQL and MySQL/MariaDB through
 * the same statements. Times are BIGINT epoch milliseconds bound from `Clock`,
 * never compared against the database's clock. Every dialect difference sits
 * in one `onDialectOrElse` block.
 *
 * @since 0.1.0
 */

import { createRequire } from "node:module"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Effect, Layer, Option, Scope } from "effect"
import { SessionConfigError, SessionDecodeError, StoreUnavailable } from "./SessionError.js"
import {
  type SessionMetadata,
  type SessionRecord,
  SessionRepository,
  type SessionRepositoryShape
} from "./SessionRepository.js"
import { handleOf } from "./SessionToken.js"

/**
 * @since 0.1.0
 */
export interface Options {
  /** The sessions table, of the application's choosing: letters, digits and `_`, at most 48. */
  readonly table: string
  /**
   * Run the library's migrations when the layer is built. Default true. With
   * false the table must exist already (see `migrate`).
   */
  readonly migrate?: boolean | undefined
  /**
   * On a SQLite file, read restores through a read-only connection of the
   * repository's own (default true; the layer's scope closes it). Such a
   * read sees committed data only, not the writes of an open transaction.
   */
  readonly fastReads?: boolean | undefined
}

const tablePattern = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/

const checkTable = (table: string): Effect.Effect<string, SessionConfigError> =>
  tablePattern.test(table)
    ? Effect.succeed(table)
    : Effect.fail(
        new SessionConfigError({
          option: "table",
          reason: "must start with a letter or _ and hold at most 48 letters, digits or _"
        })
      )

/**
 * The bookkeeping table of the library's migrations for a sessions table.
 *
 * @since 0.1.0
 */
export const migrationsTable = (table: string): string => `${table}_migrations`

const createTable = (table: string) =>
  Effect.gen(function* () {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const t = sql(table)
    const userIndex = sql(`${table}_user_id_idx`)
    const expiryIndex = sql(`${table}_expires_at_idx`)
    yield* sql.onDialectOrElse({
      mysql: () => sql`CREATE TABLE ${t} (
  session_key CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  user_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NULL,
  version BIGINT NOT NULL,
  payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  INDEX ${userIndex} (user_id),
  INDEX ${expiryIndex} (expires_at)
) ENGINE=InnoDB`,
      pg: () => sql`CREATE TABLE ${t} (
  session_key VARCHAR(64) NOT NULL PRIMARY KEY,
  user_id TEXT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NULL,
  version BIGINT NOT NULL,
  payload TEXT NOT NULL
)`,
      orElse: () => sql`CREATE TABLE ${t} (
  session_key TEXT NOT NULL PRIMARY KEY,
  user_id TEXT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NULL,
  version INTEGER NOT NULL,
  payload TEXT NOT NULL
)`
    })
    yield* sql.onDialectOrElse({
      mysql: () => Effect.void,
      orElse: () =>
        Effect.zipRight(
          sql`CREATE INDEX ${userIndex} ON ${t} (user_id)`,
          sql`CREATE INDEX ${expiryIndex} ON ${t} (expires_at)`
        )
    })
  })

const columns = "session_key, user_id, created_at, expires_at, version, payload"

/**
 * Fails when the table or one of its columns is missing. The statement is not
 * prepared through the client's cache, which would keep the failed statement
 * for its TTL, and a driver that throws while preparing is caught too.
 */
const checkColumns = (sql: SqlClient.SqlClient, table: string, operation: string) =>
  sql`SELECT ${sql.literal(columns)} FROM ${sql(table)} WHERE 1 = 0`.unprepared.pipe(
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.interrupt
        : Effect.fail(new StoreUnavailable({ backend: "sql", operation, cause: Cause.squash(cause) }))
    )
  )

/**
 * Creates or upgrades the sessions table through `@effect/sql`'s migrator,
 * with a bookkeeping table of its own, then checks that the table is there.
 *
 * @since 0.1.0
 */
export const migrate = (
  table: string
): Effect.Effect<void, SessionConfigError | StoreUnavailable, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    yield* checkTable(table)
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const run = Migrator.make({})({
      table: migrationsTable(table),
      loader: Migrator.fromRecord({ "1_create_sessions": createTable(table) })
    })
    yield* run.pipe(
      Effect.catchAllDefect((defect) => Effect.fail(defect)),
      Effect.mapError((cause) => new StoreUnavailable({ backend: "sql", operation: "migrate", cause }))
    )
    yield* checkColumns(sql, table, "migrate")
  })

const isSqlError = (error: unknown): error is SqlError => (error as { _tag?: unknown })._tag === "SqlError"

const transientCodes: ReadonlySet<unknown> = new Set(["ER_LOCK_DEADLOCK", "40P01", "40001"])

/**
 * Reruns a single statement the server rolled back to break a deadlock or a
 * serialisation failure: each statement is atomic on its own, so a rerun is safe.
 * SQLITE_BUSY is not rerun: better-sqlite3 already waited its busy timeout,
 * synchronously, and a rerun would block the event loop that long again.
 */
const retryTransient = <X, E>(statement: Effect.Effect<X, E>, retries = 4): Effect.Effect<X, E> =>
  Effect.catchIf(
    statement,
    (error) =>
      retries > 0 && isSqlError(error) && transientCodes.has((error.cause as { code?: unknown } | undefined)?.code),
    () => retryTransient(statement, retries - 1)
  )

const metadataColumns = "session_key, user_id, created_at, expires_at, version"

type Row = Record<string, unknown>

const toInteger = (value: unknown): number | undefined => {
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : undefined
  if (typeof value === "bigint") return value <= Number.MAX_SAFE_INTEGER ? Number(value) : undefined
  if (typeof value === "string" && /^-?\d{1,16}$/.test(value)) return toInteger(Number(value))
  return undefined
}

const decodeMetadata = (row: Row): SessionMetadata | string => {
  const key = row.session_key
  if (typeof key !== "string") return "session_key is not text"
  const userId = row.user_id
  if (userId !== null && typeof userId !== "string") return "user_id is not text"
  const createdAt = toInteger(row.created_at)
  if (createdAt === undefined) return "created_at is not an integer"
  const expiresAt = row.expires_at === null ? null : toInteger(row.expires_at)
  if (expiresAt === undefined) return "expires_at is not an integer"
  const version = toInteger(row.version)
  if (version === undefined) return "version is not an integer"
  return { key, userId, createdAt, expiresAt, version }
}

const isDuplicateKey = (error: SqlError): boolean => (error.cause as { errno?: unknown } | null)?.errno === 1062

/**
 * Counts the rows a write touched from a driver's raw result: better-sqlite3
 * `changes`, node-postgres `rowCount`, mysql2 `affectedRows`.
 *
 * @since 0.1.0
 */
export const affectedRows = (raw: unknown): number => {
  if (typeof raw !== "object" || raw === null) return 0
  const result = raw as { changes?: unknown; rowCount?: unknown; affectedRows?: unknown }
  const count = result.changes ?? result.rowCount ?? result.affectedRows
  return typeof count === "number" ? count : typeof count === "bigint" ? Number(count) : 0
}

interface ReadStatement {
  readonly get: (key: string) => Row | undefined
}

interface ReadConnection {
  readonly prepare: (text: string) => ReadStatement
  readonly close: () => void
}

/**
 * On a SQLite file, restores read through a read-only better-sqlite3
 * connection of their own with one prepared statement: the restore path then
 * skips the client's per-statement machinery (about 30 µs here). Writes still
 * go through the client, and a restore reads what was committed. In memory,
 * outside a scope, or if the driver cannot be loaded, reads use the client.
 */
const fastReader = (client: SqlClient.SqlClient, table: string) =>
  Effect.gen(function* () {
    const filename = (client as { readonly config?: { readonly filename?: unknown } }).config?.filename
    const scope = yield* Effect.serviceOption(Scope.Scope)
    if (typeof filename !== "string" || filename === "" || filename.startsWith(":") || Option.isNone(scope)) {
      return Option.none<ReadStatement>()
    }
    const connection = yield* Effect.try(() => {
      const Database = createRequire(import.meta.url)("better-sqlite3") as new (
        filename: string,
        options: { readonly readonly: boolean; readonly fileMustExist: boolean }
      ) => ReadConnection
      return new Database(filename, { readonly: true, fileMustExist: true })
    })
    yield* Scope.addFinalizer(
      scope.value,
      Effect.sync(() => connection.close())
    )
    return Option.some(connection.prepare(`SELECT ${columns} FROM "${table}" WHERE session_key = ?`))
  }).pipe(
    Effect.catchAll((cause) =>
      Effect.as(Effect.logDebug("SQLite restores go through the client", cause), Option.none<ReadStatement>())
    )
  )

/**
 * Builds the repository over the `SqlClient` in context, migrating first unless told not to.
 *
 * @since 0.1.0
 */
export const make = (
  options: Options
): Effect.Effect<SessionRepositoryShape, SessionConfigError | StoreUnavailable, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const table = yield* checkTable(options.table)
    const client = yield* SqlClient.SqlClient
    const sql = client.withoutTransforms()
    if (options.migrate !== false) {
      yield* migrate(table)
    } else {
      yield* checkColumns(sql, table, "check table")
    }
    const reader = options.fastReads === false ? Option.none<ReadStatement>() : yield* fastReader(client, table)
    const t = sql(table)
    const backend = sql.onDialectOrElse({
      pg: () => "postgresql",
      mysql: () => "mysql",
      sqlite: () => "sqlite",
      orElse: () => "sql"
    })

    const dialect = sql.onDialectOrElse({
      mysql: () => ({
        insert: (record: SessionRecord) =>
          Effect.catchIf(
            sql`INSERT INTO ${t} (${sql.literal(columns)})
              VALUES (${record.key}, ${record.userId}, ${record.createdAt}, ${record.expiresAt}, ${record.version},
                ${record.payload})`.raw,
            isDuplicateKey,
            () => Effect.succeed({ affectedRows: 0 })
          ),
        removeExpired: (now: number, limit: number) =>
          sql`DELETE FROM ${t} WHERE expires_at <= ${now}
            ORDER BY expires_at LIMIT ${sql.literal(String(limit))}`
      }),
      pg: () => ({
        insert: (record: SessionRecord) =>
          sql`INSERT INTO ${t} (${sql.literal(columns)})
            VALUES (${record.key}, ${record.userId}, ${record.createdAt}, ${record.expiresAt}, ${record.version},
              ${record.payload})
            ON CONFLICT (session_key) DO NOTHING`.raw,
        removeExpired: (now: number, limit: number) =>
          sql`DELETE FROM ${t} WHERE session_key IN (
            SELECT session_key FROM ${t} WHERE expires_at <= ${now}
            LIMIT ${sql.literal(String(limit))} FOR UPDATE SKIP LOCKED)`
      }),
      orElse: () => ({
        insert: (record: SessionRecord) =>
          sql`INSERT INTO ${t} (${sql.literal(columns)})
            VALUES (${record.key}, ${record.userId}, ${record.createdAt}, ${record.expiresAt}, ${record.version},
              ${record.payload})
            ON CONFLICT (session_key) DO NOTHING`.raw,
        removeExpired: (now: number, limit: number) =>
          sql`DELETE FROM ${t} WHERE rowid IN (
            SELECT rowid FROM ${t} WHERE expires_at <= ${now} LIMIT ${sql.literal(String(limit))})`
      })
    })

    const unavailable = (operation: string) => (cause: SqlError) => new StoreUnavailable({ backend, operation, cause })

    const spanAttributes = { "session.backend": backend, "db.system.name": backend }

    const spanOptions = { captureStackTrace: false, attributes: spanAttributes } as const

    const guard =
      (operation: string, leaf = false) =>
      <X, E>(effect: Effect.Effect<X, E | SqlError>): Effect.Effect<X, Exclude<E, SqlError> | StoreUnavailable> => {
        const guarded = Effect.catchIf(retryTransient(effect), isSqlError, (error) =>
          Effect.fail(unavailable(operation)(error))
        ) as Effect.Effect<X, Exclude<E, SqlError> | StoreUnavailable>
        // A leaf starts no span of its own, so it needs no parent-span context (about 9 µs).
        return leaf
          ? Effect.useSpan(`session.repository.${operation}`, spanOptions, () => guarded)
          : Effect.withSpan(guarded, `session.repository.${operation}`, spanOptions)
      }

    const count = (operation: string, statement: Effect.Effect<unknown, SqlError>) =>
      retryTransient(statement).pipe(
        Effect.map(affectedRows),
        Effect.mapError(unavailable(operation)),
        Effect.withSpan(`session.repository.${operation}`, spanOptions)
      )

    const decodeRow = (row: Row): Effect.Effect<SessionRecord, SessionDecodeError> => {
      const metadata = decodeMetadata(row)
      if (typeof metadata === "string") {
        const handle = typeof row.session_key === "string" ? handleOf(row.session_key) : "unknown"
        return Effect.fail(new SessionDecodeError({ handle, reason: metadata }))
      }
      if (typeof row.payload !== "string") {
        return Effect.fail(new SessionDecodeError({ handle: handleOf(metadata.key), reason: "payload is not text" }))
      }
      return Effect.succeed({ ...metadata, payload: row.payload })
    }

    const liveMetadata = (rows: ReadonlyArray<Row>): Array<SessionMetadata> => {
      const found: Array<SessionMetadata> = []
      for (const row of rows) {
        const metadata = decodeMetadata(row)
        if (typeof metadata !== "string") found.push(metadata)
      }
      return found
    }

    const repository: SessionRepositoryShape = {
      backend,

      get: (key) =>
        Option.match(reader, {
          onNone: (): Effect.Effect<Row | undefined, SqlError> =>
            Effect.map(
              sql<Row>`SELECT ${sql.literal(columns)} FROM ${t} WHERE session_key = ${key}`,
              (rows) => rows[0]
            ),
          onSome: (statement) =>
            Effect.try({
              try: () => statement.get(key),
              catch: (cause) => new SqlError({ cause, message: "Failed to execute statement" })
            })
        }).pipe(
          Effect.flatMap((row) => (row === undefined ? Effect.succeedNone : Effect.asSome(decodeRow(row)))),
          guard("get", Option.isSome(reader))
        ),

      insert: (record) => Effect.map(count("insert", dialect.insert(record)), (n) => n > 0),

      update: (record, expectedVersion, now) =>
        Effect.map(
          count(
            "update",
            sql`UPDATE ${t}
              SET payload = ${record.payload}, expires_at = ${record.expiresAt}, version = ${record.version}
              WHERE session_key = ${record.key} AND version = ${expectedVersion}
              AND (expires_at IS NULL OR expires_at > ${now})`.raw
          ),
          (n) => n > 0
        ),

      extend: (key, expiresAt, now) =>
        Effect.map(
          count(
            "extend",
            sql`UPDATE ${t} SET expires_at = ${expiresAt}, version = version + 1
              WHERE session_key = ${key} AND expires_at > ${now} AND expires_at < ${expiresAt}`.raw
          ),
          (n) => n > 0
        ),

      remove: (key, expectedVersion) =>
        Effect.map(
          count(
            "remove",
            expectedVersion === undefined
              ? sql`DELETE FROM ${t} WHERE session_key = ${key}`.raw
              : sql`DELETE FROM ${t} WHERE session_key = ${key} AND version = ${expectedVersion}`.raw
          ),
          (n) => n > 0
        ),

      listByUser: (userId, now) =>
        sql<Row>`SELECT ${sql.literal(metadataColumns)} FROM ${t}
          WHERE user_id = ${userId} AND (expires_at IS NULL OR expires_at > ${now})`.pipe(
          Effect.map(liveMetadata),
          guard("listByUser")
        ),

      removeByUser: (userId, now) =>
        Effect.zipLeft(
          count(
            "removeByUser",
            sql`DELETE FROM ${t} WHERE user_id = ${userId} AND (expires_at IS NULL OR expires_at > ${now})`.raw
          ),
          count("removeByUser", sql`DELETE FROM ${t} WHERE user_id = ${userId}`.raw)
        ),

      removeExpired: (now, limit) =>
        count("removeExpired", dialect.removeExpired(now, Math.max(1, Math.floor(limit))).raw),

      clear: Effect.asVoid(count("clear", sql`DELETE FROM ${t}`.raw))
    }
    return repository
  })

/**
 * The repository as a layer; needs a `SqlClient` (SQLite, PostgreSQL or MySQL).
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options
): Layer.Layer<SessionRepository, SessionConfigError | StoreUnavailable, SqlClient.SqlClient> =>
  Layer.scoped(SessionRepository, make(options))
