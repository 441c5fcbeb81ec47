import { SqliteClient } from "@effect/sql-sqlite-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { SessionRepository } from "../src/SessionRepository.js"
import * as SqlRepository from "../src/SqlRepository.js"

const build = (options: SqlRepository.Options) =>
  Effect.flatMap(Layer.build(SqlRepository.layer(options)), (context) =>
    Effect.succeed(context.unsafeMap.get(SessionRepository.key) as SessionRepository["Type"])
  )

describe("SqlRepository options", () => {
  it.scoped("with migrate: false a missing table fails the build, and works once migrated", () =>
    Effect.gen(function* () {
      const missing = yield* Effect.flip(build({ table: "later", migrate: false }))
      assert.strictEqual(missing._tag, "StoreUnavailable")

      yield* SqlRepository.migrate("later")
      const repository = yield* build({ table: "later", migrate: false })

      assert.isTrue(Option.isNone(yield* repository.get("0".repeat(64))))
    }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })))
  )

  it.scoped("table names outside letters, digits and _ are refused before any SQL", () =>
    Effect.gen(function* () {
      for (const table of ["", "1abc", "a-b", "sessions; DROP TABLE x", "x".repeat(49), "naïve"]) {
        const error = yield* Effect.flip(build({ table }))
        assert.strictEqual(error._tag, "SessionConfigError")
      }
    }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })))
  )

  it("affectedRows reads every driver's raw result", () => {
    assert.strictEqual(SqlRepository.affectedRows({ changes: 3 }), 3)
    assert.strictEqual(SqlRepository.affectedRows({ rowCount: 2 }), 2)
    assert.strictEqual(SqlRepository.affectedRows({ affectedRows: 1 }), 1)
    assert.strictEqual(SqlRepository.affectedRows({ changes: 4n }), 4)
    assert.strictEqual(SqlRepository.affectedRows([]), 0)
  })
})
