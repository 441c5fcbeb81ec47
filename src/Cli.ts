/**
 * The `effect-session` command line: migrate, sweep and inspect a sessions
 * table on SQLite, PostgreSQL or MySQL, for cron jobs and serverless hosts
 * where no long-lived sweeper runs.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as SqlClient from "@effect/sql/SqlClient"
import {
  Cause,
  Clock,
  Config,
  Console,
  DateTime,
  Duration,
  Effect,
  Either,
  Layer,
  Logger,
  LogLevel,
  Redacted,
  type Scope
} from "effect"
import { SessionConfigError, StoreUnavailable, type SweepError } from "./SessionError.js"
import type { SessionRepositoryShape } from "./SessionRepository.js"
import { sweepOnce } from "./SessionSweeper.js"
import * as SqlRepository from "./SqlRepository.js"

/**
 * Where the sessions table lives, parsed from `--url`; `label` never holds credentials.
 *
 * @since 0.1.0
 */
export type Target =
  | { readonly dialect: "sqlite"; readonly filename: string; readonly label: string }
  | { readonly dialect: "pg" | "mysql"; readonly url: Redacted.Redacted<string>; readonly label: string }

const badUrl = (reason: string) => Either.left(new SessionConfigError({ option: "url", reason }))

/**
 * Reads a SQLite file path, a `sqlite:` URL, a `postgres://` or a `mysql://` URL.
 *
 * @since 0.1.0
 */
export const parseUrl = (input: string): Either.Either<Target, SessionConfigError> => {
  const value = input.trim()
  if (value === "") {
    return badUrl("is empty")
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1]?.toLowerCase()
  if (scheme === undefined || (scheme.length === 1 && /^[A-Za-z]:[\\/]/.test(value))) {
    return Either.right({ dialect: "sqlite", filename: value, label: `sqlite ${value}` })
  }
  if (scheme === "sqlite") {
    const rest = value.slice("sqlite:".length)
    const filename = rest.startsWith("//") ? rest.slice(2) : rest
    return filename === ""
      ? badUrl("a sqlite: URL needs a file path, as in sqlite:///var/lib/app/sessions.db")
      : Either.right({ dialect: "sqlite", filename, label: `sqlite ${filename}` })
  }
  if (scheme !== "postgres" && scheme !== "postgresql" && scheme !== "mysql") {
    return badUrl(`unsupported scheme "${scheme}:"; use a SQLite file path, sqlite:, postgres:// or mysql://`)
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return badUrl(`not a valid ${scheme}:// URL`)
  }
  if (url.hostname === "") {
    return badUrl(`a ${scheme}:// URL needs a host`)
  }
  const dialect = scheme === "mysql" ? "mysql" : "pg"
  const label = `${dialect === "pg" ? "postgresql" : "mysql"}://${url.host}${url.pathname}`
  return Either.right({ dialect, url: Redacted.make(value), label })
}

const backendOf = (target: Target) => (target.dialect === "pg" ? "postgresql" : target.dialect)

const unavailable = (target: Target, operation: string) => (cause: unknown) =>
  new StoreUnavailable({ backend: backendOf(target), operation, cause })

const clientLayer = (target: Target): Layer.Layer<SqlClient.SqlClient, unknown> => {
  const load = <M>(name: string, load: () => Promise<M>) =>
    Effect.tryPromise({ try: load, catch: unavailable(target, `loading ${name}`) })
  switch (target.dialect) {
    case "sqlite":
      return Layer.unwrapEffect(
        Effect.map(
          load("@effect/sql-sqlite-node", () => import("@effect/sql-sqlite-node")),
          ({ SqliteClient }) => SqliteClient.layer({ filename: target.filename })
        )
      )
    case "pg":
      return Layer.unwrapEffect(
        Effect.map(
          load("@effect/sql-pg", () => import("@effect/sql-pg")),
          ({ PgClient }) => PgClient.layer({ url: target.url, maxConnections: 1, connectTimeout: Duration.seconds(10) })
        )
      )
    case "mysql":
      return Layer.unwrapEffect(
        Effect.map(
          load("@effect/sql-mysql2", () => import("@effect/sql-mysql2")),
          ({ MysqlClient }) => MysqlClient.layer({ url: target.url, maxConnections: 1 })
        )
      )
  }
}

/** Opens the database; any failure (driver, missing directory, timeout) is a StoreUnavailable. */
const connect = (target: Target): Effect.Effect<SqlClient.SqlClient, StoreUnavailable, Scope.Scope> =>
  Layer.build(clientLayer(target)).pipe(
    Effect.map((context) => context.unsafeMap.get(SqlClient.SqlClient.key) as SqlClient.SqlClient),
    Effect.catchAllCause((cause) => {
      const error = Cause.squash(cause)
      return Effect.fail(error instanceof StoreUnavailable ? error : unavailable(target, "connect")(error))
    }),
    Effect.timeoutFail({
      duration: Duration.seconds(15),
      onTimeout: () => unavailable(target, "connect")(new Error("no answer within 15 seconds"))
    })
  )

const missingTableCodes = new Set(["42P01", "ER_NO_SUCH_TABLE", 1146])

const isMissingTable = (error: unknown): boolean => {
  for (let current = error as any, depth = 0; current != null && depth < 5; current = current.cause, depth++) {
    if (missingTableCodes.has(current.code) || missingTableCodes.has(current.errno)) return true
    if (typeof current.message === "string" && current.message.includes("no such table")) return true
  }
  return false
}

/** Fails with a `--table` error when the sessions table does not exist. */
const requireTable = (sql: SqlClient.SqlClient, target: Target, table: string) =>
  sql`SELECT session_key FROM ${sql(table)} WHERE 1 = 0`.pipe(
    Effect.asVoid,
    Effect.tapError((error) => Effect.logDebug("table check failed", Cause.fail(error))),
    Effect.mapError((error) =>
      isMissingTable(error)
        ? new SessionConfigError({
            option: "table",
            reason: `no table "${table}" in ${target.label}; run \`effect-session migrate\` first`
          })
        : unavailable(target, "reading the table")(error)
    )
  )

const requireFile = (target: Target) =>
  Effect.gen(function* () {
    if (target.dialect !== "sqlite" || target.filename === ":memory:") return
    const fs = yield* FileSystem.FileSystem
    const exists = yield* Effect.orElseSucceed(fs.exists(target.filename), () => false)
    if (!exists) {
      return yield* new SessionConfigError({ option: "url", reason: `no SQLite database at ${target.filename}` })
    }
  })

const toCount = (value: unknown): number => {
  if (typeof value === "number") return value
  if (typeof value === "bigint") return Number(value)
  if (typeof value === "string" && value.trim() !== "") return Number(value)
  return 0
}

/**
 * Sessions per user of the users with live sessions, nearest-rank percentiles.
 *
 * @since 0.1.0
 */
export interface PerUser {
  readonly users: number
  readonly p50: number | null
  readonly p90: number | null
  readonly p99: number | null
  readonly max: number | null
}

/**
 * What `stats` reports; times are epoch milliseconds from `Clock`.
 *
 * @since 0.1.0
 */
export interface Stats {
  readonly table: string
  readonly at: number
  readonly live: number
  readonly expired: number
  readonly total: number
  readonly anonymous: number
  readonly perUser: PerUser
}

/**
 * Nearest-rank percentiles from a histogram of (sessions per user, number of users), sorted by the first.
 *
 * @since 0.1.0
 */
export const percentiles = (histogram: ReadonlyArray<readonly [sessions: number, users: number]>): PerUser => {
  const users = histogram.reduce((sum, [, count]) => sum + count, 0)
  const rank = (p: number) => {
    const wanted = Math.max(1, Math.ceil((p / 100) * users))
    let seen = 0
    for (const [sessions, count] of histogram) {
      seen += count
      if (seen >= wanted) return sessions
    }
    return null
  }
  if (users === 0) return { users, p50: null, p90: null, p99: null, max: null }
  return { users, p50: rank(50), p90: rank(90), p99: rank(99), max: histogram[histogram.length - 1][0] }
}

const readStats = (sql: SqlClient.SqlClient, table: string, now: number) =>
  Effect.gen(function* () {
    const t = sql(table)
    const [totals] = yield* sql<Record<string, unknown>>`SELECT COUNT(*) AS total,
  SUM(CASE WHEN expires_at IS NOT NULL AND expires_at <= ${now} THEN 1 ELSE 0 END) AS expired,
  SUM(CASE WHEN user_id IS NULL AND (expires_at IS NULL OR expires_at > ${now}) THEN 1 ELSE 0 END) AS anonymous
FROM ${t}`
    const rows = yield* sql<Record<string, unknown>>`SELECT per_user, COUNT(*) AS users FROM (
  SELECT user_id, COUNT(*) AS per_user FROM ${t}
  WHERE user_id IS NOT NULL AND (expires_at IS NULL OR expires_at > ${now})
  GROUP BY user_id
) AS counts GROUP BY per_user ORDER BY per_user`
    const total = toCount(totals?.total)
    const expired = toCount(totals?.expired)
    const stats: Stats = {
      table,
      at: now,
      live: total - expired,
      expired,
      total,
      anonymous: toCount(totals?.anonymous),
      perUser: percentiles(rows.map((row) => [toCount(row.per_user), toCount(row.users)] as const))
    }
    return stats
  })

/**
 * The migrations recorded for a table, or none. SQLite's client caches a failed
 * prepare for its statement text, so the read before migrating uses its own text.
 */
const appliedMigrations = (sql: SqlClient.SqlClient, table: string, when: "before" | "after") => {
  const migrations = sql(SqlRepository.migrationsTable(table))
  const rows =
    when === "before"
      ? sql<Record<string, unknown>>`SELECT migration_id, name FROM ${migrations} WHERE migration_id > 0`
      : sql<Record<string, unknown>>`SELECT migration_id, name FROM ${migrations}`
  return rows.pipe(
    Effect.map((found) =>
      found
        .map((row) => ({ id: toCount(row.migration_id), name: String(row.name) }))
        .sort((a, b) => a.id - b.id)
        .map((row) => `${row.id}_${row.name}`)
    ),
    Effect.orElseSucceed((): ReadonlyArray<string> => [])
  )
}

const iso = (millis: number) => DateTime.formatIso(DateTime.unsafeMake(millis))

const url = Options.redacted("url").pipe(
  Options.withFallbackConfig(Config.redacted("EFFECT_SESSION_URL")),
  Options.withPseudoName("URL"),
  Options.withDescription(
    "The database: a SQLite file path, sqlite:PATH, postgres://… or mysql://… (default: $EFFECT_SESSION_URL)"
  )
)
const table = Options.text("table").pipe(
  Options.withDefault("sessions"),
  Options.withPseudoName("NAME"),
  Options.withDescription("The sessions table (letters, digits and _)")
)
const json = Options.boolean("json").pipe(Options.withDescription("Print one JSON object instead of text"))
const verbose = Options.boolean("verbose").pipe(
  Options.withAlias("v"),
  Options.withDescription("Print the full cause of a failure and debug logs")
)
const common = { url, table, json, verbose }

interface Common {
  readonly url: Redacted.Redacted<string>
  readonly table: string
  readonly json: boolean
  readonly verbose: boolean
}

const print = (common: Common, text: string, value: object) => Console.log(common.json ? JSON.stringify(value) : text)

/**
 * Runs `body` against the database of `--url`: parses the URL, checks the
 * table name, connects, and turns every failure into one line on stderr
 * (the full cause too with `--verbose`) and a failed exit.
 */
const withDatabase = <A extends Common, E>(
  options: A,
  mode: "create" | "existing",
  body: (
    sql: SqlClient.SqlClient,
    target: Target,
    repository: Effect.Effect<SessionRepositoryShape, SessionConfigError | StoreUnavailable>
  ) => Effect.Effect<void, E, SqlClient.SqlClient | Scope.Scope>
) =>
  Effect.gen(function* () {
    const target = yield* parseUrl(Redacted.value(options.url))
    if (mode === "existing") {
      yield* requireFile(target)
    }
    const sql = yield* connect(target)
    if (mode === "existing") {
      yield* requireTable(sql, target, options.table)
    }
    const repository = SqlRepository.make({ table: options.table, migrate: false }).pipe(
      Effect.provideService(SqlClient.SqlClient, sql)
    )
    yield* body(sql, target, repository).pipe(Effect.provideService(SqlClient.SqlClient, sql))
  }).pipe(
    Effect.scoped,
    Effect.tapErrorCause((cause) => report(cause, options)),
    Logger.withMinimumLogLevel(options.verbose ? LogLevel.Debug : LogLevel.Warning),
    Effect.annotateLogs({ package: "effect-session", module: "Cli" })
  )

const rootMessage = (error: unknown): string => {
  let current = error as any
  for (let depth = 0; depth < 8; depth++) {
    const next = current?.cause ?? (Array.isArray(current?.errors) ? current.errors[0] : undefined)
    if (next == null || typeof next !== "object") break
    current = next
  }
  const message = typeof current?.message === "string" && current.message !== "" ? current.message : undefined
  return message ?? (typeof current?.code === "string" ? current.code : String(current))
}

/**
 * The one line a failure prints.
 *
 * @since 0.1.0
 */
export const describeFailure = (error: unknown): string => {
  const tagged = error as { readonly _tag?: unknown } | null
  switch (tagged?._tag) {
    case "SessionConfigError": {
      const config = error as SessionConfigError
      return `--${config.option}: ${config.reason}`
    }
    case "StoreUnavailable": {
      const failure = error as StoreUnavailable
      return `${failure.backend}: ${failure.operation} failed: ${rootMessage(failure.cause)}`
    }
    case "SweepError": {
      const failure = error as SweepError
      return `sweep failed after removing ${failure.swept} sessions: ${rootMessage(failure.cause)}`
    }
    default:
      return error instanceof Error ? error.message : String(error)
  }
}

const report = (cause: Cause.Cause<unknown>, options: Common) => {
  if (Cause.isInterruptedOnly(cause)) return Effect.void
  const line = `effect-session: ${describeFailure(Cause.squash(cause))}`
  return Console.error(options.verbose ? `${line}\n${Cause.pretty(cause, { renderErrorCause: true })}` : line)
}

const migrate = Command.make("migrate", common, (options) =>
  withDatabase(options, "create", (sql, target) =>
    Effect.gen(function* () {
      const before = yield* appliedMigrations(sql, options.table, "before")
      yield* SqlRepository.migrate(options.table)
      const after = yield* appliedMigrations(sql, options.table, "after")
      const applied = after.filter((name) => !before.includes(name))
      const text =
        applied.length === 0
          ? `${options.table} on ${target.label} is up to date (${after.join(", ")})`
          : `${options.table} on ${target.label}: applied ${applied.join(", ")}`
      yield* print(options, text, { table: options.table, applied, migrations: after })
    })
  )
).pipe(Command.withDescription("Create the sessions table, or bring it to the latest schema"))

const batchSize = Options.integer("batch-size").pipe(
  Options.withDefault(1_000),
  Options.withPseudoName("N"),
  Options.withDescription("Most sessions one DELETE removes (1 to 100000)")
)
const dryRun = Options.boolean("dry-run").pipe(
  Options.withDescription("Count the expired sessions a sweep would remove, without removing any")
)

const sweep = Command.make("sweep", { ...common, batchSize, dryRun }, (options) =>
  withDatabase(options, "existing", (sql, _target, repository) =>
    Effect.gen(function* () {
      if (!Number.isSafeInteger(options.batchSize) || options.batchSize < 1 || options.batchSize > 100_000) {
        return yield* new SessionConfigError({ option: "batch-size", reason: "must be an integer from 1 to 100000" })
      }
      if (options.dryRun) {
        const now = yield* Clock.currentTimeMillis
        const [row] = yield* sql<{
          readonly expired: unknown
        }>`SELECT COUNT(*) AS expired FROM ${sql(options.table)} WHERE expires_at <= ${now}`
        const expired = toCount(row?.expired)
        const text = `${expired} expired sessions in ${options.table} would be removed (dry run, cutoff ${iso(now)})`
        return yield* print(options, text, { table: options.table, dryRun: true, cutoff: now, expired })
      }
      const started = yield* Clock.currentTimeMillis
      const result = yield* sweepOnce(yield* repository, options.batchSize)
      const durationMs = (yield* Clock.currentTimeMillis) - started
      const { batches, swept } = result
      const text = `removed ${swept} expired sessions from ${options.table} (${batches} batches, ${durationMs} ms)`
      yield* print(options, text, { table: options.table, dryRun: false, cutoff: started, ...result, durationMs })
    })
  )
).pipe(Command.withDescription("Remove expired sessions once, in bounded batches, and print how many went"))

const formatStats = (stats: Stats, label: string) => {
  const { perUser } = stats
  const value = (n: number | null) => (n === null ? "-" : String(n))
  return [
    `${stats.table} on ${label} at ${iso(stats.at)}`,
    `live:     ${stats.live}`,
    `expired:  ${stats.expired} (still present, removed by the next sweep)`,
    `total:    ${stats.total}`,
    `users:    ${perUser.users} with live sessions; ${stats.anonymous} live sessions without a user`,
    `per user: p50 ${value(perUser.p50)}, p90 ${value(perUser.p90)}, p99 ${value(perUser.p99)}, ` +
      `max ${value(perUser.max)}`
  ].join("\n")
}

const stats = Command.make("stats", common, (options) =>
  withDatabase(options, "existing", (sql, target) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const result = yield* readStats(sql, options.table, now).pipe(
        Effect.mapError(unavailable(target, "reading stats"))
      )
      yield* print(options, formatStats(result, target.label), result)
    })
  )
).pipe(Command.withDescription("Print live, expired-but-present and total sessions, and sessions per user"))

/**
 * The root command with its subcommands migrate, sweep and stats.
 *
 * @since 0.1.0
 */
export const command = Command.make("effect-session").pipe(
  Command.withDescription("Operate effect-session tables: migrate, sweep, stats"),
  Command.withSubcommands([migrate, sweep, stats])
)

/**
 * Parses `argv` (as `process.argv`) and runs the command.
 *
 * @since 0.1.0
 */
export const run = (argv: ReadonlyArray<string>) =>
  Command.run(command, { name: "effect-session", version: "0.1.0" })(argv)

/**
 * Runs the command line in this process and exits 1 on any failure.
 *
 * @since 0.1.0
 */
export const main = (argv: ReadonlyArray<string> = process.argv): void =>
  run(argv).pipe(
    Effect.provide(NodeContext.layer),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true }))),
    NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
  )
