import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { afterAll } from "vitest"
import { parseUrl, percentiles } from "../src/Cli.js"
import type { SessionRecord } from "../src/SessionRepository.js"
import * as SqlRepository from "../src/SqlRepository.js"
import { dropTables, mysqlLayer, mysqlUrl, pgLayer, pgUrl, skipMysql, skipPg, uniqueTable } from "./helpers/sql.js"

interface Outcome {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs the real binary as a child process. */
const cli = (...args: ReadonlyArray<string>) =>
  Effect.async<Outcome>((resume) => {
    const child = execFile(
      process.execPath,
      ["bin/effect-session.js", ...args],
      { timeout: 60_000, env: { ...process.env, NO_COLOR: "1", EFFECT_SESSION_URL: "" } },
      (error, stdout, stderr) => resume(Effect.succeed({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
    )
    return Effect.sync(() => child.kill())
  })

const json = (outcome: Outcome) => {
  assert.strictEqual(outcome.code, 0, outcome.stderr)
  return JSON.parse(outcome.stdout) as Record<string, any>
}

const HOUR = 3_600_000

/**
 * Nine records: alice has 3 live sessions, bob 1, carol 1 live and 2 expired,
 * and 2 have no user (one never expires, one expired).
 */
const seed = (table: string) =>
  Effect.gen(function* () {
    const repository = yield* SqlRepository.make({ table, migrate: false })
    const now = Date.now()
    const rows: Array<[string | null, number | null]> = [
      ["alice", now + HOUR],
      ["alice", now + HOUR],
      ["alice", now + 2 * HOUR],
      ["bob", now + HOUR],
      ["carol", now + HOUR],
      ["carol", now - HOUR],
      ["carol", now - 2 * HOUR],
      [null, null],
      [null, now - HOUR]
    ]
    yield* Effect.forEach(rows, ([userId, expiresAt], i) => {
      const record: SessionRecord = {
        key: i.toString(16).padStart(64, "0"),
        userId,
        createdAt: now - 3 * HOUR,
        expiresAt,
        version: 1,
        payload: "{}"
      }
      return repository.insert(record)
    })
  })

const expectedStats = {
  live: 6,
  expired: 3,
  total: 9,
  anonymous: 1,
  perUser: { users: 3, p50: 1, p90: 3, p99: 3, max: 3 }
}

/** migrate, stats, sweep --dry-run, sweep and stats again, against one database. */
const lifecycle = (url: string, table: string, seedWith: Effect.Effect<void, unknown>) =>
  Effect.gen(function* () {
    const migrated = json(yield* cli("migrate", "--url", url, "--table", table, "--json"))
    assert.deepStrictEqual(migrated.applied, ["1_create_sessions"])
    const again = json(yield* cli("migrate", "--url", url, "--table", table, "--json"))
    assert.deepStrictEqual(again.applied, [])
    assert.deepStrictEqual(again.migrations, ["1_create_sessions"])

    yield* seedWith

    const before = json(yield* cli("stats", "--url", url, "--table", table, "--json"))
    assert.deepInclude(before, expectedStats)
    const dryRun = json(yield* cli("sweep", "--url", url, "--table", table, "--dry-run", "--json"))
    assert.strictEqual(dryRun.expired, 3)
    const swept = json(yield* cli("sweep", "--url", url, "--table", table, "--batch-size", "2", "--json"))
    assert.strictEqual(swept.swept, 3)
    assert.strictEqual(swept.batches, 2)
    const after = json(yield* cli("stats", "--url", url, "--table", table, "--json"))
    assert.deepInclude(after, { ...expectedStats, expired: 0, total: 6 })
    const text = yield* cli("stats", "--url", url, "--table", table)
    assert.include(text.stdout, "live:     6")
    assert.include(text.stdout, "per user: p50 1, p90 3, p99 3, max 3")
  })

describe("parseUrl", () => {
  it("reads SQLite paths and sqlite: URLs", () => {
    const filename = (input: string) => Either.map(parseUrl(input), (target) => "filename" in target && target.filename)

    assert.deepStrictEqual(filename("./sessions.db"), Either.right("./sessions.db"))
    assert.deepStrictEqual(filename("/var/lib/app/s.db"), Either.right("/var/lib/app/s.db"))
    assert.deepStrictEqual(filename("sqlite:///var/lib/app/s.db"), Either.right("/var/lib/app/s.db"))
    assert.deepStrictEqual(filename("sqlite:data/s.db"), Either.right("data/s.db"))
  })

  it("labels server URLs without their credentials", () => {
    const target = Either.getOrThrow(parseUrl("postgres://app:secret@db.internal:5433/main"))

    assert.strictEqual(target.dialect, "pg")
    assert.strictEqual(target.label, "postgresql://db.internal:5433/main")
    assert.strictEqual(Either.getOrThrow(parseUrl("mysql://root@127.0.0.1/test")).dialect, "mysql")
  })

  it("refuses empty input, unknown schemes and URLs without a host", () => {
    for (const input of ["", "  ", "redis://127.0.0.1", "sqlite:", "postgres://", "mysql:///test"]) {
      assert.isTrue(Either.isLeft(parseUrl(input)), input)
    }
  })
})

describe("percentiles", () => {
  it("takes nearest ranks from a histogram of sessions per user", () => {
    assert.deepStrictEqual(
      percentiles([
        [1, 80],
        [2, 15],
        [5, 4],
        [40, 1]
      ]),
      { users: 100, p50: 1, p90: 2, p99: 5, max: 40 }
    )
    assert.deepStrictEqual(percentiles([]), { users: 0, p50: null, p90: null, p99: null, max: null })
  })
})

describe("effect-session binary on SQLite", () => {
  const directory = mkdtempSync(join(tmpdir(), "effect-session-cli-"))
  afterAll(() => rmSync(directory, { recursive: true, force: true }))

  it.live(
    "migrates, reports stats, counts on a dry run, sweeps in batches, and reports again",
    () => {
      const filename = join(directory, "lifecycle.db")
      const seedFile = seed("sessions").pipe(Effect.provide(SqliteClient.layer({ filename })), Effect.orDie)
      return lifecycle(filename, "sessions", seedFile)
    },
    120_000
  )

  it.live("accepts a sqlite: URL", () =>
    Effect.gen(function* () {
      const filename = join(directory, "url.db")

      const outcome = yield* cli("migrate", "--url", `sqlite://${filename}`)

      assert.strictEqual(outcome.code, 0, outcome.stderr)
      assert.include(outcome.stdout, "applied 1_create_sessions")
    })
  )

  it.live(
    "fails with one line and exit code 1 for a bad URL, a missing file or table, and an unreachable server",
    () =>
      Effect.gen(function* () {
        const existing = join(directory, "empty.db")
        yield* cli("migrate", "--url", existing, "--table", "other")

        const [badUrl, missingFile, missingTable, unreachable] = yield* Effect.all(
          [
            cli("stats", "--url", "redis://127.0.0.1:6379"),
            cli("sweep", "--url", join(directory, "absent.db")),
            cli("stats", "--url", existing, "--table", "sessions"),
            cli("stats", "--url", "postgres://postgres:hunter2@127.0.0.1:1/test")
          ],
          { concurrency: "unbounded" }
        )

        for (const outcome of [badUrl, missingFile, missingTable, unreachable]) {
          assert.strictEqual(outcome.code, 1)
          assert.strictEqual(outcome.stdout, "")
          assert.strictEqual(outcome.stderr.trim().split("\n").length, 1, outcome.stderr)
          assert.notInclude(outcome.stderr, "    at ")
        }
        assert.include(badUrl.stderr, 'unsupported scheme "redis:"')
        assert.include(missingFile.stderr, "no SQLite database at")
        assert.include(missingTable.stderr, 'no table "sessions"')
        assert.include(unreachable.stderr, "ECONNREFUSED")
        assert.notInclude(unreachable.stderr, "hunter2")
      }),
    120_000
  )

  it.live("prints the full cause with --verbose", () =>
    Effect.gen(function* () {
      const outcome = yield* cli("stats", "--url", join(directory, "empty.db"), "--table", "nope", "--verbose")

      assert.strictEqual(outcome.code, 1)
      assert.include(outcome.stderr, 'no table "nope"')
      assert.include(outcome.stderr, "SqliteError")
    })
  )

  it.live("refuses a table name the library would not create", () =>
    Effect.gen(function* () {
      const outcome = yield* cli("migrate", "--url", join(directory, "names.db"), "--table", "bad-name;")

      assert.strictEqual(outcome.code, 1)
      assert.include(outcome.stderr, "--table:")
    })
  )

  it.live(
    "prints help for the program and each command",
    () =>
      Effect.gen(function* () {
        const outputs = yield* Effect.all(
          [cli("--help"), cli("migrate", "--help"), cli("sweep", "--help"), cli("stats", "--help")],
          { concurrency: "unbounded" }
        )

        for (const outcome of outputs) {
          assert.strictEqual(outcome.code, 0)
          assert.include(outcome.stdout, "--url")
        }
        assert.include(outputs[0].stdout, "migrate")
        assert.include(outputs[2].stdout, "--dry-run")
        assert.include(outputs[2].stdout, "--batch-size")
      }),
    120_000
  )

  it.live("exits 1 on an unknown option", () =>
    Effect.gen(function* () {
      const outcome = yield* cli("sweep", "--url", join(directory, "empty.db"), "--frobnicate")

      assert.strictEqual(outcome.code, 1)
    })
  )
})

const servers = [
  { name: "PostgreSQL", skip: skipPg, url: pgUrl, client: () => pgLayer() },
  { name: "MySQL", skip: skipMysql, url: mysqlUrl, client: () => mysqlLayer() }
]

for (const server of servers) {
  describe.skipIf(server.skip !== undefined)(`effect-session binary on ${server.name}`, () => {
    it.live(
      "migrates, reports stats, counts on a dry run, sweeps in batches, and reports again",
      () => {
        const table = uniqueTable("cli")
        const seedServer = seed(table).pipe(Effect.provide(server.client()), Effect.orDie)
        const drop = Effect.flatMap(SqlClient.SqlClient, () => dropTables(table)).pipe(
          Effect.provide(Layer.orDie(server.client()))
        )
        return lifecycle(server.url ?? "", table, seedServer).pipe(Effect.ensuring(drop))
      },
      120_000
    )
  })
}
