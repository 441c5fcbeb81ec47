import { Effect, Layer } from "effect"
import { afterAll, beforeAll } from "vitest"
import * as DynamoRepository from "../src/DynamoRepository.js"
import { conformance } from "./conformance/suite.js"
import { clientConfig, type Dynalite, startDynalite } from "./helpers/dynalite.js"

const TABLE = "sessions"

let server: Dynalite
let prefixes = 0

const clientLayer = Layer.suspend(() => DynamoRepository.layerClient(clientConfig(server.endpoint)))

beforeAll(async () => {
  server = await startDynalite()
  await Effect.runPromise(DynamoRepository.ensureTable(TABLE).pipe(Effect.provide(clientLayer)))
})

afterAll(() => server?.close())

conformance({
  name: "dynamodb (dynalite)",
  backend: clientLayer,
  repository: () => DynamoRepository.layer({ table: TABLE, prefix: `store${++prefixes}#` })
})
