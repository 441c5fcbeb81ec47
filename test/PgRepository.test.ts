import { conformance } from "./conformance/suite.js"
import { pgLayer, scopedRepository, skipPg } from "./helpers/sql.js"

conformance({
  name: "postgresql",
  skip: skipPg,
  backend: pgLayer(),
  repository: () => scopedRepository("pg"),
  timeout: 60_000
})
