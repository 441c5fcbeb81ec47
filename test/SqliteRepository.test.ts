import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Layer } from "effect"
import { afterAll } from "vitest"
import * as SqlRepository from "../src/SqlRepository.js"
import { conformance } from "./conformance/suite.js"

let tables = 0
const freshTable = () => SqlRepository.layer({ table: `sessions_${++tables}` })

conformance({
  name: "sqlite in memory",
  backend: SqliteClient.layer({ filename: ":memory:" }),
  repository: freshTable
})

const directory = mkdtempSync(join(tmpdir(), "effect-session-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

conformance({
  name: "sqlite file",
  backend: Layer.suspend(() => SqliteClient.layer({ filename: join(directory, `db-${tables}.sqlite`) })),
  repository: freshTable
})
