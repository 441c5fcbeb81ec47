import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import {
  CreateTableCommand,
  DeleteTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand
} from "@aws-sdk/client-dynamodb"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, Option, Redacted } from "effect"
import { afterAll, beforeAll } from "vitest"
import * as DynamoRepository from "../src/DynamoRepository.js"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import { SessionRepository } from "../src/SessionRepository.js"
import * as SessionSweeper from "../src/SessionSweeper.js"
import * as SessionToken from "../src/SessionToken.js"
import { advance, atT0, makeStore, payload, T0 } from "./conformance/fixtures.js"
import { conformance } from "./conformance/suite.js"
import { clientConfig, type Dynalite, makeClient, startDynalite } from "./helpers/dynalite.js"

const TABLE = "sessions"
const MINUTE = 60_000

let server: Dynalite
let prefixes = 0
const freshPrefix = () => `store${++prefixes}#`

const clientLayer = Layer.suspend(() => DynamoRepository.layerClient(clientConfig(server.endpoint)))

beforeAll(async () => {
  server = await startDynalite()
  await Effect.runPromise(DynamoRepository.ensureTable(TABLE).pipe(Effect.provide(clientLayer)))
})

afterAll(() => server?.close())

conformance({
  name: "dynamodb (dynalite)",
  backend: clientLayer,
  repository: () => DynamoRepository.layer({ table: TABLE, prefix: freshPrefix() })
})

type Middleware = (commandName: string, input: any, next: (input: any) => Promise<any>) => Promise<any>

/** Per-command request counts and the capacity units DynamoDB reported for them. */
interface Meter {
  readonly requests: Record<string, number>
  readonly units: Record<string, number>
  readonly reset: () => void
}

const instrument = (client: DynamoDBClient, inject?: Middleware): Meter => {
  const requests: Record<string, number> = {}
  const units: Record<string, number> = {}
  client.middlewareStack.add(
    ((next: any, context: any) => async (args: any) => {
      const name = String(context.commandName).replace(/Command$/, "")
      requests[name] = (requests[name] ?? 0) + 1
      const send = (input: any) => next({ ...args, input: { ...input, ReturnConsumedCapacity: "TOTAL" } })
      const result = inject ? await inject(name, args.input, (input) => send(input)) : await send(args.input)
      const consumed = result.output?.ConsumedCapacity
      for (const entry of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
        units[name] = (units[name] ?? 0) + (entry.CapacityUnits ?? 0)
      }
      return result
    }) as any,
    { step: "initialize", name: "testMeter" }
  )
  return {
    requests,
    units,
    reset: () => {
      for (const key of Object.keys(requests)) delete requests[key]
      for (const key of Object.keys(units)) delete units[key]
    }
  }
}

/** Prints measured figures when EFFECT_SESSION_REPORT is set, for release notes. */
const report = (label: string, figures: object) =>
  Effect.sync(() => {
    if (process.env.EFFECT_SESSION_REPORT) process.stdout.write(`${label}: ${JSON.stringify(figures)}\n`)
  })

const total = (counts: Record<string, number>) => Object.values(counts).reduce((sum, n) => sum + n, 0)

/** A client of its own with a meter, destroyed with the test's scope. */
const meteredClient = (inject?: Middleware) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = makeClient(server.endpoint)
      return { client, meter: instrument(client, inject) }
    }),
    ({ client }) => Effect.sync(() => client.destroy())
  )

const repositoryOn = (client: DynamoDBClient, options: Partial<DynamoRepository.Options> = {}) =>
  DynamoRepository.make({ table: TABLE, prefix: freshPrefix(), ...options }).pipe(
    Effect.provideService(DynamoRepository.DynamoClient, client)
  )

const record = (userId: string | null, index: number, expiresAt: number | null) => ({
  key: SessionToken.keyOf(`dynamo-test-${prefixes}-${index}-${"t".repeat(24)}`),
  userId,
  createdAt: T0,
  expiresAt,
  version: 1,
  payload: "{}"
})

const rawItem = (client: DynamoDBClient, pk: string) =>
  Effect.promise(() => client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: pk } } }))).pipe(
    Effect.map((output) => Option.fromNullable(output.Item))
  )

describe("DynamoRepository", () => {
  it.scoped("a user's Query that needs several pages lists and removes every session", () =>
    Effect.gen(function* () {
      yield* atT0()
      const { client, meter } = yield* meteredClient()
      const repository = yield* repositoryOn(client, { pageSize: 7 })
      const store = yield* makeStore(ExpirationPolicy.sliding("10 minutes"), { maxPayloadBytes: 200_000 }).pipe(
        Effect.provideService(SessionRepository, repository)
      )
      yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => store.create(payload({ n: i, note: "x".repeat(100_000) }), { userId: "paged" }),
        { concurrency: 5, discard: true }
      )
      meter.reset()

      const listed = yield* store.listByUser("paged")
      const listQueries = meter.requests.Query
      const removed = yield* store.deleteByUser("paged")

      assert.strictEqual(listed.length, 30)
      assert.isAtLeast(listQueries, 5)
      assert.strictEqual(removed, 30)
      assert.strictEqual((yield* store.listByUser("paged")).length, 0)
    })
  )

  it.scoped("deleteByUser of 1,000 sessions takes at most 45 requests and no Scan", () =>
    Effect.gen(function* () {
      yield* atT0()
      const { client, meter } = yield* meteredClient()
      const repository = yield* repositoryOn(client)
      const store = yield* makeStore(ExpirationPolicy.sliding("10 minutes")).pipe(
        Effect.provideService(SessionRepository, repository)
      )
      yield* Effect.forEach(
        Array.from({ length: 1_000 }, (_, i) => i),
        (i) => repository.insert(record("heavy", i, T0 + 10 * MINUTE)),
        { concurrency: 20, discard: true }
      )
      yield* store.create(payload(), { userId: "bystander" })
      meter.reset()

      const removed = yield* store.deleteByUser("heavy")

      assert.strictEqual(removed, 1_000)
      assert.isAtMost(total(meter.requests), 45)
      assert.isUndefined(meter.requests.Scan)
      assert.strictEqual(meter.requests.BatchWriteItem, 40)
      assert.strictEqual((yield* store.listByUser("bystander")).length, 1)
      yield* report("deleteByUser of 1,000 sessions", meter)
    })
  )

  it.scoped("the sweep of 1,000 expired sessions reads the expiry index only", () =>
    Effect.gen(function* () {
      yield* atT0()
      const { client, meter } = yield* meteredClient()
      const repository = yield* repositoryOn(client)
      yield* Effect.forEach(
        Array.from({ length: 1_000 }, (_, i) => i),
        (i) => repository.insert(record(i % 2 === 0 ? "sweepy" : null, i, T0 + MINUTE)),
        { concurrency: 20, discard: true }
      )
      const live = record("sweepy", 5_000, T0 + 60 * MINUTE)
      yield* repository.insert(live)
      yield* advance(2 * MINUTE)
      meter.reset()

      const result = yield* SessionSweeper.sweepOnce(repository, 1_000)

      assert.strictEqual(result.swept, 1_000)
      assert.isUndefined(meter.requests.Scan)
      assert.strictEqual(meter.requests.DeleteItem, 1_000)
      assert.isAtMost(meter.requests.Query, 2 * DynamoRepository.SWEEP_SHARDS)
      assert.isTrue(Option.isSome(yield* repository.get(live.key)))
      yield* report("sweep of 1,000 expired sessions", meter)
    })
  )

  it.scoped("unprocessed batch items are sent again until none is left", () =>
    Effect.gen(function* () {
      yield* atT0()
      let injected = 0
      const { client, meter } = yield* meteredClient(async (name, input, next) => {
        if (name !== "BatchWriteItem" || injected >= 6) return next(input)
        injected++
        const [table, requests] = Object.entries(input.RequestItems as Record<string, Array<unknown>>)[0]
        const half = Math.ceil(requests.length / 2)
        const result = await next({ ...input, RequestItems: { [table]: requests.slice(0, half) } })
        const rest = requests.slice(half)
        result.output.UnprocessedItems = rest.length > 0 ? { [table]: rest } : {}
        return result
      })
      const repository = yield* repositoryOn(client, { retryBaseDelay: 0 })
      yield* Effect.forEach(
        Array.from({ length: 60 }, (_, i) => i),
        (i) => repository.insert(record("batchy", i, T0 + MINUTE)),
        { concurrency: 10, discard: true }
      )

      const removed = yield* repository.removeByUser("batchy", T0)

      assert.strictEqual(removed, 60)
      assert.strictEqual(injected, 6)
      assert.isAbove(meter.requests.BatchWriteItem, 3)
      assert.strictEqual((yield* repository.listByUser("batchy", T0)).length, 0)
    })
  )

  it.scoped("items left unprocessed past the retry budget fail with StoreUnavailable", () =>
    Effect.gen(function* () {
      yield* atT0()
      const { client, meter } = yield* meteredClient(async (name, input, next) => {
        if (name !== "BatchWriteItem") return next(input)
        return { output: { UnprocessedItems: input.RequestItems, $metadata: {} }, response: {} }
      })
      const repository = yield* repositoryOn(client, { retries: 3, retryBaseDelay: 0 })
      yield* repository.insert(record("stuck", 1, T0 + MINUTE))

      const error = yield* Effect.flip(repository.removeByUser("stuck", T0))

      assert.strictEqual(error._tag, "StoreUnavailable")
      assert.strictEqual(error._tag === "StoreUnavailable" && error.operation, "removeByUser")
      assert.strictEqual(meter.requests.BatchWriteItem, 4)
    })
  )

  it.scoped("throttled requests are retried, then typed with the SDK error as cause", () =>
    Effect.gen(function* () {
      yield* atT0()
      let throttle = 2
      const { client, meter } = yield* meteredClient(async (name, input, next) => {
        if (name === "GetItem" && throttle > 0) {
          throttle--
          throw new ProvisionedThroughputExceededException({ message: "slow down", $metadata: {} })
        }
        return next(input)
      })
      const repository = yield* repositoryOn(client, { retries: 2, retryBaseDelay: 0 })
      const stored = record(null, 1, T0 + MINUTE)
      yield* repository.insert(stored)

      assert.isTrue(Option.isSome(yield* repository.get(stored.key)))
      assert.strictEqual(meter.requests.GetItem, 3)

      throttle = 3
      const error = yield* Effect.flip(repository.get(stored.key))
      assert.strictEqual(error._tag, "StoreUnavailable")
      assert.instanceOf(error._tag === "StoreUnavailable" && error.cause, ProvisionedThroughputExceededException)
    })
  )

  it.scoped("an expired item still in the table is invisible and cannot be touched back to life", () =>
    Effect.gen(function* () {
      yield* atT0()
      const { client } = yield* meteredClient()
      const prefix = freshPrefix()
      const repository = yield* DynamoRepository.make({ table: TABLE, prefix }).pipe(
        Effect.provideService(DynamoRepository.DynamoClient, client)
      )
      const store = yield* makeStore(ExpirationPolicy.sliding("10 minutes")).pipe(
        Effect.provideService(SessionRepository, repository)
      )
      const session = yield* store.create(payload(), { userId: "late" })

      yield* advance(11 * MINUTE)

      assert.isTrue(Option.isNone(yield* store.restore(session.token)))
      assert.strictEqual((yield* store.listByUser("late")).length, 0)
      assert.isFalse(yield* store.touch(session))
      assert.isFalse(yield* repository.extend(session.key, T0 + 60 * MINUTE, T0 + 11 * MINUTE))
      const raw = Option.getOrThrow(yield* rawItem(client, prefix + session.key))
      assert.strictEqual(raw.expires_ms?.N, String(T0 + 10 * MINUTE))
      assert.strictEqual(yield* store.deleteByUser("late"), 0)
    })
  )

  it.scoped("expiry attributes are Numbers: whole seconds for TTL beside exact milliseconds", () =>
    Effect.gen(function* () {
      yield* atT0()
      const { client } = yield* meteredClient()
      const prefix = freshPrefix()
      const repository = yield* DynamoRepository.make({ table: TABLE, prefix }).pipe(
        Effect.provideService(DynamoRepository.DynamoClient, client)
      )
      const store = yield* makeStore(ExpirationPolicy.sliding("10 minutes")).pipe(
        Effect.provideService(SessionRepository, repository)
      )
      const check = (expected: number) =>
        Effect.gen(function* () {
          const raw = Option.getOrThrow(yield* rawItem(client, prefix + session.key))
          assert.strictEqual(raw.expires_s?.N, String(Math.floor(expected / 1000)))
          assert.strictEqual(raw.expires_ms?.N, String(expected))
          assert.isAtMost(expected - Number(raw.expires_s?.N) * 1000, 999)
          assert.strictEqual(raw.uid?.S, "typed")
          assert.isUndefined(raw.payload?.S?.includes(Redacted.value(session.token)) || undefined)
        })

      const session = yield* store.create(payload(), { userId: "typed" })
      yield* check(T0 + 10 * MINUTE)
      yield* advance(3 * MINUTE + 456)
      assert.isTrue(yield* store.touch(session))
      yield* check(T0 + 13 * MINUTE + 456)
      const touched = Option.getOrThrow(yield* store.restore(session.token))
      yield* store.save({ ...touched, payload: payload({ n: 2 }) })
      yield* check(T0 + 13 * MINUTE + 456)

      yield* advance(10 * MINUTE)
      assert.strictEqual((yield* SessionSweeper.sweepOnce(repository, 100)).swept, 1)
      assert.isTrue(Option.isNone(yield* rawItem(client, prefix + session.key)))
    })
  )

  it.scoped("a record that never expires has no expiry attributes at all and stays out of the sweep", () =>
    Effect.gen(function* () {
      yield* atT0()
      const { client } = yield* meteredClient()
      const prefix = freshPrefix()
      const repository = yield* DynamoRepository.make({ table: TABLE, prefix }).pipe(
        Effect.provideService(DynamoRepository.DynamoClient, client)
      )
      const forever = record("forever", 1, null)
      yield* repository.insert(forever)

      const raw = Option.getOrThrow(yield* rawItem(client, prefix + forever.key))

      assert.deepStrictEqual(Object.keys(raw).sort(), ["created_ms", "payload", "pk", "uid", "ver"])
      yield* advance(1_000 * 24 * 60 * MINUTE)
      assert.strictEqual(yield* repository.removeExpired(T0 + 1_000 * 24 * 60 * MINUTE, 10), 0)
      assert.isTrue(Option.isSome(yield* repository.get(forever.key)))
    })
  )

  it.scoped("truncate in a shared table spares other prefixes, look-alike keys and unrelated items", () =>
    Effect.gen(function* () {
      yield* atT0()
      const { client, meter } = yield* meteredClient()
      const shared = `shared${++prefixes}#`
      const a = yield* DynamoRepository.make({ table: TABLE, prefix: shared }).pipe(
        Effect.provideService(DynamoRepository.DynamoClient, client)
      )
      const b = yield* DynamoRepository.make({ table: TABLE, prefix: `${shared}b#` }).pipe(
        Effect.provideService(DynamoRepository.DynamoClient, client)
      )
      for (let i = 0; i < 3; i++) {
        yield* a.insert(record("u", i, T0 + MINUTE))
        yield* b.insert(record("u", i, T0 + MINUTE))
      }
      const unrelated = [`${shared}not-a-session`, `${shared}${"a".repeat(64)}x`, "orders#42"]
      for (const pk of unrelated) {
        yield* Effect.promise(() =>
          client.send(new PutItemCommand({ TableName: TABLE, Item: { pk: { S: pk }, uid: { S: "u" } } }))
        )
      }
      meter.reset()

      yield* a.clear
      yield* advance(2 * MINUTE)
      yield* a.removeExpired(T0 + 2 * MINUTE, 100)

      assert.strictEqual((yield* a.listByUser("u", T0)).length, 0)
      assert.strictEqual((yield* b.listByUser("u", T0)).length, 3)
      for (const pk of unrelated) assert.isTrue(Option.isSome(yield* rawItem(client, pk)))
      assert.strictEqual(meter.requests.DeleteItem ?? 0, 0)
    })
  )

  it.effect("a missing table is a SessionConfigError at layer build unless createTable is set", () =>
    Effect.gen(function* () {
      const missing = yield* Effect.flip(
        Layer.build(DynamoRepository.layer({ table: "no_such_table" })).pipe(Effect.scoped)
      )

      assert.strictEqual(missing._tag, "SessionConfigError")
      assert.include(missing.message, "no_such_table")
    }).pipe(Effect.provide(clientLayer))
  )

  it.live("createTable provisions a missing table with both indexes and a working repository", () =>
    Effect.gen(function* () {
      const client = yield* DynamoRepository.DynamoClient
      const table = `provisioned_${Date.now()}`

      const repository = yield* DynamoRepository.make({ table, createTable: true })
      const stored = { ...record("p", 1, Date.now() + MINUTE) }
      assert.isTrue(yield* repository.insert(stored))
      assert.strictEqual((yield* repository.listByUser("p", Date.now())).length, 1)
      assert.strictEqual(yield* repository.removeExpired(stored.expiresAt! + 1, 10), 1)

      const again = yield* DynamoRepository.make({ table, createTable: true })
      assert.strictEqual((yield* again.listByUser("p", Date.now())).length, 0)
      yield* Effect.promise(() => client.send(new DeleteTableCommand({ TableName: table })))
    }).pipe(Effect.provide(clientLayer))
  )

  it.effect("a table without the indexes is refused at layer build", () =>
    Effect.gen(function* () {
      const client = yield* DynamoRepository.DynamoClient
      const table = "bare_table"
      yield* Effect.promise(() =>
        client.send(
          new CreateTableCommand({
            TableName: table,
            BillingMode: "PAY_PER_REQUEST",
            AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
            KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }]
          })
        )
      )

      const error = yield* Effect.flip(DynamoRepository.make({ table }))

      assert.strictEqual(error._tag, "SessionConfigError")
      assert.include(error.message, DynamoRepository.USER_INDEX)
    }).pipe(Effect.provide(clientLayer))
  )

  it.effect("a maxPayloadBytes that cannot fit in a 400 KB item is refused with SessionConfigError", () =>
    Effect.gen(function* () {
      const tooBig = yield* Effect.either(DynamoRepository.make({ table: TABLE, maxPayloadBytes: 500_000 }))
      const fits = yield* Effect.either(DynamoRepository.make({ table: TABLE, maxPayloadBytes: 300_000 }))
      const edge = DynamoRepository.maxPayloadBytesFor("session#")

      assert.isTrue(Either.isLeft(tooBig) && tooBig.left._tag === "SessionConfigError")
      assert.isTrue(Either.isRight(fits))
      assert.isTrue(
        Either.isRight(yield* Effect.either(DynamoRepository.make({ table: TABLE, maxPayloadBytes: edge })))
      )
      assert.isTrue(
        Either.isLeft(yield* Effect.either(DynamoRepository.make({ table: TABLE, maxPayloadBytes: edge + 1 })))
      )
      assert.isAbove(edge, 400_000)

      const repository = yield* DynamoRepository.make({ table: TABLE, prefix: "session#" })
      const text = "é".repeat(Math.floor(edge / 4)).padEnd(edge - Math.floor(edge / 4), "a")
      const worst = { ...record("€".repeat(255), 1, T0 + MINUTE), version: 2 ** 52, payload: text }
      assert.strictEqual(Buffer.byteLength(text, "utf8"), edge)
      assert.isTrue(yield* repository.insert(worst))
      assert.strictEqual(Option.getOrThrow(yield* repository.get(worst.key)).payload, text)
    }).pipe(Effect.provide(clientLayer))
  )

  it.effect("an unreachable endpoint is StoreUnavailable at layer build, never a defect", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(DynamoRepository.layer({ table: TABLE })).pipe(
          Effect.provide(DynamoRepository.layerClient(clientConfig("http://127.0.0.1:9"))),
          Effect.scoped
        )
      )

      assert.strictEqual(error._tag, "StoreUnavailable")
    })
  )

  it.live("interrupting an operation aborts its HTTP request", () =>
    Effect.gen(function* () {
      let arrived!: () => void
      let aborted!: () => void
      const requestArrived = new Promise<void>((done) => (arrived = done))
      const requestAborted = new Promise<void>((done) => (aborted = done))
      const proxy = createServer((request, response) => {
        if (String(request.headers["x-amz-target"]).endsWith("DescribeTable")) {
          const body: Array<Buffer> = []
          request.on("data", (part: Buffer) => body.push(part))
          request.on("end", async () => {
            const headers = Object.fromEntries(
              Object.entries(request.headers).filter(([name]) => name !== "host" && name !== "connection")
            ) as Record<string, string>
            const upstream = await fetch(server.endpoint, { method: "POST", headers, body: Buffer.concat(body) })
            response.writeHead(upstream.status, { "content-type": "application/x-amz-json-1.0" })
            response.end(await upstream.text())
          })
          return
        }
        response.on("close", () => aborted())
        arrived()
      })
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((done) => proxy.listen(0, "127.0.0.1", done))),
        () => Effect.sync(() => proxy.closeAllConnections()).pipe(Effect.andThen(Effect.sync(() => proxy.close())))
      )
      const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
      const repository = yield* DynamoRepository.make({ table: TABLE }).pipe(
        Effect.provide(DynamoRepository.layerClient(clientConfig(endpoint)))
      )

      const fiber = yield* Effect.fork(repository.get("0".repeat(64)))
      yield* Effect.promise(() => requestArrived)
      yield* Fiber.interrupt(fiber)

      yield* Effect.promise(() => requestAborted)
    }).pipe(Effect.scoped)
  )
})
