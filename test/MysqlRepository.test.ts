import { conformance } from "./conformance/suite.js"
import { largePayloadSuite, mysqlLayer, scopedRepository, skipMysql } from "./helpers/sql.js"

conformance({
  name: "mariadb",
  skip: skipMysql,
  backend: mysqlLayer(),
  repository: () => scopedRepository("my"),
  timeout: 60_000
})

largePayloadSuite("mariadb", skipMysql, () => mysqlLayer())
