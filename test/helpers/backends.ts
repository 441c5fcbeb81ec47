/**
 * Every backend as one list, built from the helpers the backend test files
 * use. Each entry opens a namespace (a table, a key prefix or a map) on its
 * backend, opens any number of repositories on it, and reads or tampers with
 * what it stores through the backend's own client.
 */
import { type AttributeValue, GetItemCommand, PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Context, Effect, Layer, Option, type Scope } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll } from "vitest"
import * as DynamoRepository from "../../src/DynamoRepository.js"
import * as MemoryRepository from "../../src/MemoryRepository.js"
import * as RedisRepository from "../../src/RedisRepository.js"
import { SessionRepository, type SessionRepositoryShape } from "../../src/SessionRepository.js"
import * as SqlRepository from "../../src/SqlRepository.js"
import type { ConformanceTarget } from "../conformance/fixtures.js"
import { clientConfig, startDynalite } from "./dynalite.js"
import { redisUrl, skipRedis, uniquePrefix } from "./redis.js"
import { dropTables, mysqlLayer, pgLayer, skipMysql, skipPg, uniqueTable } from "./sql.js"

/** What a test expects from restoring a tampered record. */
export type Expected = "SessionDecodeError" | "StoreUnavailable" | "None"

/** One way to damage a stored record through the backend's own client. */
export interface Tampering {
  readonly name: string
  readonly expected: Expected
  readonly apply: (key: string) => Effect.Effect<void, unknown>
}

/** A raw view of one namespace, bypassing the repository. */
export interface Raw {
  /** Each session record of the namespace as text, by repository key. */
  readonly records: Effect.Effect<ReadonlyMap<string, string>, unknown>
  /** Everything the namespace holds as text: records, indexes, key names. */
  readonly everything: Effect.Effect<ReadonlyArray<string>, unknown>
  readonly tamperings: ReadonlyArray<Tampering>
  /** Overwrites the payload text of a stored record. */
  readonly setPayload: (key: string, payload: string) => Effect.Effect<void, unknown>
}

export interface Backend<X> {
  readonly name: string
  readonly skip?: string | undefined
  readonly timeout: number
  /** The server connection or in-process database, built once per test. */
  readonly backend: Layer.Layer<X, unknown>
  /** A fresh namespace on the backend, removed when the scope closes. */
  readonly namespace: Effect.Effect<string, unknown, X | Scope.Scope>
  /** A repository on a namespace; every call opens an independent instance. */
  readonly open: (namespace: string) => Effect.Effect<SessionRepositoryShape, unknown, X | Scope.Scope>
  readonly raw: (namespace: string) => Effect.Effect<Raw, unknown, X | Scope.Scope>
}

/** The raw access of the namespace in context. */
export class RawAccess extends Context.Tag("test/RawAccess")<RawAccess, Raw>() {}

const text = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? `${v}n` : v)) ?? String(value)

/** A repository on a fresh namespace, with its raw view, for one test. */
export const repositoryLayer = <X>(target: Backend<X>): Layer.Layer<SessionRepository | RawAccess, unknown, X> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const namespace = yield* target.namespace
      const repository = yield* target.open(namespace)
      const raw = yield* target.raw(namespace)
      return Context.make(SessionRepository, repository).pipe(Context.add(RawAccess, raw))
    })
  )

/** Runs a test body with the backend, a repository on a fresh namespace and its raw view. */
export const provideBackend =
  <X>(target: Backend<X>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.scoped(effect).pipe(
      Effect.provide(Layer.orDie(Layer.provideMerge(repositoryLayer(target), target.backend)))
    ) as Effect.Effect<A, E, Exclude<R, SessionRepository | RawAccess | X | Scope.Scope>>

/** The same backend in the shape the conformance suite takes. */
export const conformanceTarget = <X>(target: Backend<X>): ConformanceTarget<X> => ({
  name: target.name,
  skip: target.skip,
  backend: target.backend,
  timeout: target.timeout,
  repository: () => Layer.scoped(SessionRepository, Effect.flatMap(target.namespace, target.open))
})

/** The memory backend: a namespace is one shared repository instance that remembers its keys. */
const memoryNamespaces = new Map<string, { readonly repository: SessionRepositoryShape; readonly keys: Set<string> }>()
let memoryCount = 0

const memory: Backend<never> = {
  name: "memory",
  timeout: 30_000,
  backend: Layer.empty,
  namespace: Effect.acquireRelease(
    Effect.gen(function* () {
      const inner = yield* MemoryRepository.make
      const keys = new Set<string>()
      const repository: SessionRepositoryShape = {
        ...inner,
        insert: (record) =>
          Effect.zipLeft(
            inner.insert(record),
            Effect.sync(() => keys.add(record.key))
          )
      }
      const name = `memory-${++memoryCount}`
      memoryNamespaces.set(name, { repository, keys })
      return name
    }),
    (name) => Effect.sync(() => memoryNamespaces.delete(name))
  ),
  open: (namespace) => Effect.sync(() => memoryNamespaces.get(namespace)!.repository),
  raw: (namespace) =>
    Effect.sync(() => {
      const { keys, repository } = memoryNamespaces.get(namespace)!
      const records = Effect.gen(function* () {
        const found = new Map<string, string>()
        for (const key of [...keys].sort()) {
          const record = yield* repository.get(key)
          if (Option.isSome(record)) found.set(key, text(record.value))
        }
        return found as ReadonlyMap<string, string>
      })
      const setPayload = (payload: string) => (key: string) =>
        Effect.flatMap(repository.get(key), (record) =>
          Option.isNone(record)
            ? Effect.dieMessage(`no record ${key}`)
            : repository.update({ ...record.value, payload }, record.value.version, 0)
        )
      return {
        records,
        everything: Effect.map(records, (found) => [...found.entries()].map(([key, value]) => `${key} ${value}`)),
        tamperings: payloadTamperings(setPayload),
        setPayload: (key, payload) => Effect.asVoid(setPayload(payload)(key))
      }
    })
}

/** Damage to the payload text, which every backend stores as a string. */
const payloadTamperings = (setPayload: (payload: string) => (key: string) => Effect.Effect<unknown, unknown>) => {
  const cases: Array<[string, string]> = [
    ["payload truncated JSON", '{"n":1,"at":"2030-06-01T12:34:56.789Z","tags":["a"'],
    ["payload empty string", ""],
    ["payload old shape", '{"count":3,"items":["a","b"],"user":{"name":"x"}}'],
    ["payload JSON null", "null"],
    ["payload JSON number", "42"],
    ["payload with a bad date", '{"n":1,"at":"not a date","tags":[],"m":[],"big":"1","note":""}'],
    ["payload with a bad bigint", '{"n":1,"at":"2030-01-01T00:00:00.000Z","tags":[],"m":[],"big":"1.5","note":""}'],
    ["payload with control characters", "\u0001\u0007\u00ff\ufffd"]
  ]
  return cases.map(
    ([name, payload]): Tampering => ({
      name,
      expected: "SessionDecodeError",
      apply: (key) => Effect.asVoid(setPayload(payload)(key))
    })
  )
}

const sqlBackend = <X>(
  name: string,
  prefix: string,
  backend: Layer.Layer<X, unknown>,
  options: { readonly skip?: string | undefined; readonly timeout: number; readonly hugeInteger: boolean }
): Backend<X | SqlClient.SqlClient> => ({
  name,
  skip: options.skip,
  timeout: options.timeout,
  backend: backend as Layer.Layer<X | SqlClient.SqlClient, unknown>,
  namespace: Effect.acquireRelease(
    Effect.gen(function* () {
      const table = uniqueTable(prefix)
      yield* SqlRepository.migrate(table)
      return table
    }),
    (table) => dropTables(table)
  ),
  open: (table) => SqlRepository.make({ table, migrate: false }),
  raw: (table) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const rows = sql<Record<string, unknown>>`SELECT * FROM ${sql(table)} ORDER BY session_key`
      const records = Effect.map(
        rows,
        (found) => new Map(found.map((row) => [String(row.session_key), text(row)])) as ReadonlyMap<string, string>
      )
      const set = (column: string, value: unknown) => (key: string) =>
        sql`UPDATE ${sql(table)} SET ${sql(column)} = ${value as string} WHERE session_key = ${key}`
      const huge = "9007199254740993"
      const metadata: Array<Tampering> = options.hugeInteger
        ? [
            { name: "version beyond 2^53", expected: "SessionDecodeError", apply: set("version", huge) },
            { name: "created_at beyond 2^53", expected: "SessionDecodeError", apply: set("created_at", huge) },
            { name: "expires_at beyond 2^53", expected: "SessionDecodeError", apply: set("expires_at", huge) }
          ]
        : [
            { name: "version as text", expected: "SessionDecodeError", apply: set("version", "two") },
            { name: "created_at as text", expected: "SessionDecodeError", apply: set("created_at", "yesterday") },
            { name: "expires_at as text", expected: "SessionDecodeError", apply: set("expires_at", "soon") },
            { name: "expires_at fractional", expected: "SessionDecodeError", apply: set("expires_at", 1.5e15 + 0.5) },
            { name: "user_id as a blob", expected: "SessionDecodeError", apply: set("user_id", Buffer.from("bob")) },
            { name: "payload as a blob", expected: "SessionDecodeError", apply: set("payload", Buffer.from("{}")) }
          ]
      return {
        records,
        everything: Effect.map(rows, (found) => found.map(text)),
        tamperings: [...payloadTamperings((payload) => set("payload", payload)), ...metadata],
        setPayload: (key, payload) => Effect.asVoid(set("payload", payload)(key))
      }
    })
})

const sqlite = sqlBackend("sqlite", "lite", SqliteClient.layer({ filename: ":memory:" }), {
  timeout: 30_000,
  hugeInteger: false
})

const postgresql = sqlBackend(
  "postgresql",
  "pg",
  Layer.suspend(() => pgLayer()),
  { skip: skipPg, timeout: 60_000, hugeInteger: true }
)

const mariadb = sqlBackend(
  "mariadb",
  "my",
  Layer.suspend(() => mysqlLayer()),
  { skip: skipMysql, timeout: 60_000, hugeInteger: true }
)

/** A probe connection of the test's own to the shared Redis server. */
class RedisProbe extends Context.Tag("test/RedisProbe")<RedisProbe, Redis>() {}

const redis: Backend<RedisProbe> = {
  name: "redis",
  skip: skipRedis,
  timeout: 30_000,
  backend: Layer.scoped(
    RedisProbe,
    Effect.acquireRelease(
      Effect.promise(async () => {
        const client = new Redis(redisUrl ?? "", { lazyConnect: true, maxRetriesPerRequest: 0 })
        await client.connect()
        return client
      }),
      (client) => Effect.promise(() => client.quit().catch(() => "closed"))
    )
  ),
  namespace: Effect.acquireRelease(
    Effect.sync(() => uniquePrefix("rel")),
    (prefix) =>
      Effect.flatMap(RedisProbe, (client) =>
        Effect.promise(async () => {
          const keys = await client.keys(`${prefix}*`)
          if (keys.length > 0) await client.del(...keys)
        })
      )
  ),
  open: (prefix) => RedisRepository.make({ url: redisUrl, prefix }),
  raw: (prefix) =>
    Effect.map(RedisProbe, (client): Raw => {
      const describe = async (name: string): Promise<string> => {
        const type = await client.type(name)
        const value =
          type === "hash"
            ? Object.entries(await client.hgetall(name)).sort()
            : type === "set"
              ? (await client.smembers(name)).sort()
              : type === "zset"
                ? await client.zrange(name, 0, -1, "WITHSCORES")
                : type === "string"
                  ? await client.get(name)
                  : null
        return text({ name, type, value })
      }
      const names = Effect.promise(async () => (await client.keys(`${prefix}*`)).sort())
      const records = Effect.flatMap(names, (found) =>
        Effect.promise(async () => {
          const sessions = new Map<string, string>()
          const start = RedisRepository.recordKey("", prefix)
          for (const name of found) {
            if (name.startsWith(start)) sessions.set(name.slice(start.length), await describe(name))
          }
          return sessions as ReadonlyMap<string, string>
        })
      )
      const hset = (field: string, value: string) => (key: string) =>
        Effect.promise(() => client.hset(RedisRepository.recordKey(key, prefix), field, value))
      const hdel = (field: string) => (key: string) =>
        Effect.promise(() => client.hdel(RedisRepository.recordKey(key, prefix), field))
      const asString = (key: string) =>
        Effect.promise(async () => {
          const name = RedisRepository.recordKey(key, prefix)
          const ttl = await client.pttl(name)
          await client.set(name, "not a hash", "PX", Math.max(ttl, 1_000))
        })
      return {
        records,
        everything: Effect.flatMap(names, (found) => Effect.promise(() => Promise.all(found.map(describe)))),
        tamperings: [
          ...payloadTamperings((payload) => hset("payload", payload)),
          { name: "version as text", expected: "SessionDecodeError", apply: hset("version", "two") },
          { name: "created as text", expected: "SessionDecodeError", apply: hset("created", "yesterday") },
          { name: "expires as text", expected: "SessionDecodeError", apply: hset("expires", "soon") },
          { name: "version beyond 2^53", expected: "SessionDecodeError", apply: hset("version", "9007199254740993") },
          { name: "payload field missing", expected: "SessionDecodeError", apply: hdel("payload") },
          { name: "created field missing", expected: "SessionDecodeError", apply: hdel("created") },
          { name: "record is a string, not a hash", expected: "SessionDecodeError", apply: asString }
        ],
        setPayload: (key, payload) => Effect.asVoid(hset("payload", payload)(key))
      }
    })
}

const DYNAMO_TABLE = "sessions"

const dynamo: Backend<DynamoRepository.DynamoClient> = {
  name: "dynamodb (dynalite)",
  timeout: 30_000,
  backend: Layer.unwrapScoped(
    Effect.gen(function* () {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startDynalite()),
        (started) => Effect.promise(() => started.close())
      )
      const client = DynamoRepository.layerClient(clientConfig(server.endpoint))
      return Layer.tap(client, (context) =>
        DynamoRepository.ensureTable(DYNAMO_TABLE).pipe(Effect.provide(context), Effect.orDie)
      )
    })
  ),
  namespace: Effect.sync(() => `rel${++memoryCount}#`),
  open: (prefix) => DynamoRepository.make({ table: DYNAMO_TABLE, prefix }),
  raw: (prefix) =>
    Effect.map(DynamoRepository.DynamoClient, (client): Raw => {
      const pk = DynamoRepository.attributes.key
      const scan = Effect.promise(async () => {
        const items: Array<Record<string, AttributeValue>> = []
        let start: Record<string, AttributeValue> | undefined
        do {
          const page = await client.send(new ScanCommand({ TableName: DYNAMO_TABLE, ExclusiveStartKey: start }))
          items.push(...(page.Items ?? []).filter((item) => item[pk]?.S?.startsWith(prefix)))
          start = page.LastEvaluatedKey
        } while (start !== undefined)
        return items.sort((a, b) => (a[pk].S! < b[pk].S! ? -1 : 1))
      })
      const canonical = (item: Record<string, AttributeValue>) =>
        text(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : 1)))
      const rewrite =
        (change: (item: Record<string, AttributeValue>) => Record<string, AttributeValue>) => (key: string) =>
          Effect.promise(async () => {
            const found = await client.send(
              new GetItemCommand({ TableName: DYNAMO_TABLE, Key: { [pk]: { S: prefix + key } } })
            )
            if (found.Item === undefined) throw new Error(`no item ${key}`)
            await client.send(new PutItemCommand({ TableName: DYNAMO_TABLE, Item: change(found.Item) }))
          })
      const setAttribute = (name: string, value: AttributeValue | undefined) =>
        rewrite((item) => {
          const next = { ...item }
          if (value === undefined) delete next[name]
          else next[name] = value
          return next
        })
      const a = DynamoRepository.attributes
      return {
        records: Effect.map(
          scan,
          (items) =>
            new Map(items.map((item) => [item[pk].S!.slice(prefix.length), canonical(item)])) as ReadonlyMap<
              string,
              string
            >
        ),
        everything: Effect.map(scan, (items) => items.map(canonical)),
        tamperings: [
          ...payloadTamperings((payload) => setAttribute(a.payload, { S: payload })),
          { name: "payload as a number", expected: "SessionDecodeError", apply: setAttribute(a.payload, { N: "1" }) },
          { name: "version as a string", expected: "SessionDecodeError", apply: setAttribute(a.version, { S: "1" }) },
          {
            name: "created_ms as a string",
            expected: "SessionDecodeError",
            apply: setAttribute(a.createdAt, { S: "0" })
          },
          { name: "ver fractional", expected: "SessionDecodeError", apply: setAttribute(a.version, { N: "1.5" }) },
          { name: "version missing", expected: "SessionDecodeError", apply: setAttribute(a.version, undefined) },
          { name: "payload missing", expected: "SessionDecodeError", apply: setAttribute(a.payload, undefined) }
        ],
        setPayload: (key, payload) => setAttribute(a.payload, { S: payload })(key)
      }
    })
}

/** Every backend, in the order the reliability suites run them; server backends skip without their URL. */
export const backends = [memory, sqlite, postgresql, mariadb, redis, dynamo] as ReadonlyArray<Backend<any>>

/** Listens for uncaughtException and unhandledRejection around a file's tests; asserts there were none. */
export const installProcessSpies = (label: string) => {
  const seen: Array<string> = []
  const onException = (error: unknown) => void seen.push(`uncaughtException: ${String(error)}`)
  const onRejection = (reason: unknown) => void seen.push(`unhandledRejection: ${String(reason)}`)
  beforeAll(() => {
    process.on("uncaughtException", onException)
    process.on("unhandledRejection", onRejection)
  })
  afterAll(() => {
    process.off("uncaughtException", onException)
    process.off("unhandledRejection", onRejection)
    if (seen.length > 0) throw new Error(`${label}: the process saw ${seen.join("; ")}`)
  })
  return { seen: () => [...seen] }
}
