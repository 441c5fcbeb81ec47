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
