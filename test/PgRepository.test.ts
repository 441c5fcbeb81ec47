import { String as Str } from "effect"
import { conformance } from "./conformance/suite.js"
import { largePayloadSuite, pgLayer, scopedRepository, skipPg } from "./helpers/sql.js"

conformance({
  name: "postgresql",
  skip: skipPg,
  backend: pgLayer(),
  repository: () => scopedRepository("pg"),
  timeout: 60_000
})

largePayloadSuite("postgresql", skipPg, () => pgLayer())

conformance({
  name: "postgresql with name transforms",
  skip: skipPg,
  backend: pgLayer(undefined, { transformQueryNames: Str.camelToSnake, transformResultNames: Str.snakeToCamel }),
  repository: () => scopedRepository("pgt"),
  timeout: 60_000
})
