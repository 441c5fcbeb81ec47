/**
 * A repository on DynamoDB through `@aws-sdk/client-dynamodb`. One item per
 * session, keyed by a store prefix plus the session key, so several stores can
 * share a table. Native TTL only reclaims storage: every read checks the
 * millisecond expiry, and the sweep removes expired items through a sparse
 * index on expiry.
 *
 * @since 0.1.0
 */
import {
  type AttributeValue,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type TableDescription,
  UpdateItemCommand,
  UpdateTimeToLiveCommand,
  type WriteRequest
} from "@aws-sdk/client-dynamodb"
import { Context, Data, Duration, Effect, Layer, Option, Schedule } from "effect"
import { SessionConfigError, SessionDecodeError, StoreUnavailable } from "./SessionError.js"
import {
  type SessionMetadata,
  type SessionRecord,
  SessionRepository,
  type SessionRepositoryShape
} from "./SessionRepository.js"
import { handleOf } from "./SessionToken.js"

/**
 * The DynamoDB client the repository sends its commands through.
 *
 * @since 0.1.0
 */
export class DynamoClient extends Context.Tag("effect-session/DynamoRepository/DynamoClient")<
  DynamoClient,
  DynamoDBClient
>() {}

/**
 * A client built from SDK options and destroyed when the layer's scope closes.
 *
 * @since 0.1.0
 */
export const layerClient = (config: DynamoDBClientConfig): Layer.Layer<DynamoClient> =>
  Layer.scoped(
    DynamoClient,
    Effect.acquireRelease(
      Effect.sync(() => new DynamoDBClient(config)),
      (client) => Effect.sync(() => client.destroy())
    )
  )

/**
 * @since 0.1.0
 */
export interface Options {
  /** The table name. */
  readonly table: string
  /** Prepended to every session key; stores sharing a table use different prefixes. Default "session#". */
  readonly prefix?: string | undefined
  /**
   * Create the table when it is missing (on-demand billing, both indexes, TTL
   * when the server supports it) and wait until it is ACTIVE. Default false:
   * a missing table fails the layer with SessionConfigError.
   */
  readonly createTable?: boolean | undefined
  /** The store's `maxPayloadBytes`; refused when such a payload cannot fit in a 400 KB item. */
  readonly maxPayloadBytes?: number | undefined
  /** Items per Query or Scan page; default none, so DynamoDB cuts pages at 1 MB. */
  readonly pageSize?: number | undefined
  /** Retries of a throttled request, and of a batch with unprocessed items. Default 8. */
  readonly retries?: number | undefined
  /** First delay of the exponential, jittered retry backoff. Default 50 millis. */
  readonly retryBaseDelay?: Duration.DurationInput | undefined
}

/**
 * Attribute names of a session item. `expires_s` is the TTL attribute.
 *
 * @since 0.1.0
 */
export const attributes = {
  key: "pk",
  userId: "uid",
  createdAt: "created_ms",
  expiresAt: "expires_ms",
  ttl: "expires_s",
  version: "ver",
  payload: "payload",
  sweepShard: "sweep_shard"
} as const

/**
 * The global secondary index on `uid` (sort key `pk`) used by per-user operations.
 *
 * @since 0.1.0
 */
export const USER_INDEX = "user_index"

/**
 * The sparse global secondary index on `sweep_shard` (sort key `expires_ms`) used by the sweep.
 *
 * @since 0.1.0
 */
export const EXPIRY_INDEX = "expiry_index"

/**
 * How many partitions of the expiry index spread the writes of expiry changes.
 *
 * @since 0.1.0
 */
export const SWEEP_SHARDS = 16

/**
 * DynamoDB's item size limit in bytes.
 *
 * @since 0.1.0
 */
export const ITEM_LIMIT_BYTES = 400 * 1024

const DEFAULT_PREFIX = "session#"
const BACKEND = "dynamodb"
const BATCH_SIZE = 25
const DELETE_CONCURRENCY = 10
const NUMBER_BYTES = 21
const USER_ID_BYTES = 255 * 3
const KEY_LENGTH = 64

/**
 * The largest payload in UTF-8 bytes that fits in one item next to the other
 * attributes of a session under `prefix`.
 *
 * @since 0.1.0
 */
export const maxPayloadBytesFor = (prefix: string = DEFAULT_PREFIX): number => {
  const prefixBytes = Buffer.byteLength(prefix, "utf8")
  const names = Object.values(attributes).reduce((sum, name) => sum + name.length, 0)
  const values = prefixBytes + KEY_LENGTH + USER_ID_BYTES + 4 * NUMBER_BYTES + 3 + prefixBytes
  return ITEM_LIMIT_BYTES - names - values
}

const tablePattern = /^[A-Za-z0-9_.-]{3,255}$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
const prefixPattern = /^[^\u0000-\u001f\u007f]{1,128}$/
const keyPattern = /^[0-9a-f]{64}$/

const configError = (option: string, reason: string) => new SessionConfigError({ option, reason })

const positiveInteger = (option: string, value: number | undefined, fallback: number) =>
  value === undefined
    ? Effect.succeed(fallback)
    : Number.isSafeInteger(value) && value > 0
      ? Effect.succeed(value)
      : Effect.fail(configError(option, "must be a positive integer"))

interface Resolved {
  readonly table: string
  readonly prefix: string
  readonly pageSize: number | undefined
  readonly retries: number
  readonly retryBaseDelay: Duration.Duration
}

const resolve = (options: Options): Effect.Effect<Resolved, SessionConfigError> =>
  Effect.gen(function* () {
    if (!tablePattern.test(options.table)) {
      return yield* configError("table", "must be 3 to 255 letters, digits, _, - or .")
    }
    const prefix = options.prefix ?? DEFAULT_PREFIX
    if (!prefixPattern.test(prefix)) {
      return yield* configError("prefix", "must be 1 to 128 characters without control characters")
    }
    if (options.maxPayloadBytes !== undefined) {
      const fits = maxPayloadBytesFor(prefix)
      if (!Number.isSafeInteger(options.maxPayloadBytes) || options.maxPayloadBytes > fits) {
        return yield* configError("maxPayloadBytes", `a DynamoDB item holds a payload of at most ${fits} bytes`)
      }
    }
    const pageSize =
      options.pageSize === undefined ? undefined : yield* positiveInteger("pageSize", options.pageSize, 1)
    const retries = yield* positiveInteger("retries", options.retries, 8)
    return {
      table: options.table,
      prefix,
      pageSize,
      retries,
      retryBaseDelay: Duration.decode(options.retryBaseDelay ?? "50 millis")
    }
  })

const errorName = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "name" in cause ? String(cause.name) : ""

const throttlingErrors = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded"
])

const isThrottling = (cause: unknown) => throttlingErrors.has(errorName(cause))

const isConditionFailure = (cause: unknown) => errorName(cause) === "ConditionalCheckFailedException"

class Unprocessed extends Data.TaggedError("Unprocessed")<{ readonly remaining: number }> {
  override get message(): string {
    return `${this.remaining} batch write requests still unprocessed`
  }
}

type Item = Record<string, AttributeValue>

const str = (value: string): AttributeValue => ({ S: value })
const num = (value: number): AttributeValue => ({ N: String(value) })

const readInteger = (value: AttributeValue | undefined): number | undefined => {
  if (value?.N === undefined || !/^-?\d{1,16}$/.test(value.N)) return undefined
  const parsed = Number(value.N)
  return Number.isSafeInteger(parsed) ? parsed : undefined
}

const shardOf = (key: string) => Number.parseInt(key.slice(0, 4), 16) % SWEEP_SHARDS

const chunk = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const chunks: Array<ReadonlyArray<A>> = []
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size))
  return chunks
}

const describeTable = (client: DynamoDBClient, table: string) =>
  Effect.tryPromise({
    try: (signal) => client.send(new DescribeTableCommand({ TableName: table }), { abortSignal: signal }),
    catch: (cause) => cause
  }).pipe(
    Effect.map((output) => Option.fromNullable(output.Table)),
    Effect.catchIf(
      (cause) => errorName(cause) === "ResourceNotFoundException",
      () => Effect.succeedNone
    ),
    Effect.mapError((cause) => new StoreUnavailable({ backend: BACKEND, operation: "describeTable", cause }))
  )

const createTableCommand = (table: string) =>
  new CreateTableCommand({
    TableName: table,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [
      { AttributeName: attributes.key, AttributeType: "S" },
      { AttributeName: attributes.userId, AttributeType: "S" },
      { AttributeName: attributes.sweepShard, AttributeType: "S" },
      { AttributeName: attributes.expiresAt, AttributeType: "N" }
    ],
    KeySchema: [{ AttributeName: attributes.key, KeyType: "HASH" }],
    GlobalSecondaryIndexes: [
      {
        IndexName: USER_INDEX,
        KeySchema: [
          { AttributeName: attributes.userId, KeyType: "HASH" },
          { AttributeName: attributes.key, KeyType: "RANGE" }
        ],
        Projection: {
          ProjectionType: "INCLUDE",
          NonKeyAttributes: [attributes.createdAt, attributes.expiresAt, attributes.version]
        }
      },
      {
        IndexName: EXPIRY_INDEX,
        KeySchema: [
          { AttributeName: attributes.sweepShard, KeyType: "HASH" },
          { AttributeName: attributes.expiresAt, KeyType: "RANGE" }
        ],
        Projection: { ProjectionType: "KEYS_ONLY" }
      }
    ]
  })

const enableTtl = (client: DynamoDBClient, table: string) =>
  Effect.gen(function* () {
    const send = <O>(run: (signal: AbortSignal) => Promise<O>) =>
      Effect.tryPromise({ try: run, catch: (cause) => cause })
    const described = yield* send((signal) =>
      client.send(new DescribeTimeToLiveCommand({ TableName: table }), { abortSignal: signal })
    )
    const status = described.TimeToLiveDescription?.TimeToLiveStatus
    if (status === "ENABLED" || status === "ENABLING") return
    yield* send((signal) =>
      client.send(
        new UpdateTimeToLiveCommand({
          TableName: table,
          TimeToLiveSpecification: { AttributeName: attributes.ttl, Enabled: true }
        }),
        { abortSignal: signal }
      )
    )
  }).pipe(
    Effect.catchAll((cause) =>
      Effect.logWarning("TTL could not be enabled; expired sessions are removed by the sweep only").pipe(
        Effect.annotateLogs({ table, reason: errorName(cause) || "unknown" })
      )
    )
  )

const provision = (client: DynamoDBClient, table: string) =>
  Effect.gen(function* () {
    yield* Effect.tryPromise({
      try: (signal) => client.send(createTableCommand(table), { abortSignal: signal }),
      catch: (cause) => cause
    }).pipe(
      Effect.catchIf(
        (cause) => errorName(cause) === "ResourceInUseException",
        () => Effect.void
      ),
      Effect.mapError((cause) => new StoreUnavailable({ backend: BACKEND, operation: "createTable", cause }))
    )
    const active = yield* describeTable(client, table).pipe(
      Effect.filterOrFail(
        (found) => Option.isSome(found) && found.value.TableStatus === "ACTIVE",
        () => new StoreUnavailable({ backend: BACKEND, operation: "createTable" })
      ),
      Effect.retry(Schedule.spaced("250 millis").pipe(Schedule.intersect(Schedule.recurs(240)))),
      Effect.map(Option.getOrThrow)
    )
    yield* enableTtl(client, table)
    yield* Effect.logInfo("created the sessions table").pipe(Effect.annotateLogs({ table }))
    return active
  })

const hasIndex = (description: TableDescription, name: string, hash: string, range: string) => {
  const index = description.GlobalSecondaryIndexes?.find((gsi) => gsi.IndexName === name)
  const keys = index?.KeySchema ?? []
  return (
    keys.some((k) => k.AttributeName === hash && k.KeyType === "HASH") &&
    keys.some((k) => k.AttributeName === range && k.KeyType === "RANGE")
  )
}

const checkTable = (description: TableDescription, table: string) => {
  const hashKey = description.KeySchema?.find((k) => k.KeyType === "HASH")?.AttributeName
  if (hashKey !== attributes.key || description.KeySchema?.length !== 1) {
    return Effect.fail(configError("table", `${table} must have the single hash key "${attributes.key}"`))
  }
  if (!hasIndex(description, USER_INDEX, attributes.userId, attributes.key)) {
    return Effect.fail(configError("table", `${table} lacks the index ${USER_INDEX} on ${attributes.userId}`))
  }
  if (!hasIndex(description, EXPIRY_INDEX, attributes.sweepShard, attributes.expiresAt)) {
    return Effect.fail(configError("table", `${table} lacks the index ${EXPIRY_INDEX} on ${attributes.sweepShard}`))
  }
  return Effect.void
}

/**
 * Builds the repository over the `DynamoClient` in context, after checking the
 * table and its indexes (or creating them when `createTable` is true).
 *
 * @since 0.1.0
 */
export const make = (
  options: Options
): Effect.Effect<SessionRepositoryShape, SessionConfigError | StoreUnavailable, DynamoClient> =>
  Effect.gen(function* () {
    const { pageSize, prefix, retries, retryBaseDelay, table } = yield* resolve(options)
    const client = yield* DynamoClient

    const found = yield* describeTable(client, table)
    const description = Option.isSome(found)
      ? found.value
      : options.createTable === true
        ? yield* provision(client, table)
        : yield* configError("table", `${table} does not exist; create it or pass createTable: true`)
    yield* checkTable(description, table)

    const backoff = Schedule.exponential(retryBaseDelay).pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(retries))
    )

    const send = <O>(operation: string, run: (signal: AbortSignal) => Promise<O>) =>
      Effect.tryPromise({ try: run, catch: (cause) => cause }).pipe(
        Effect.retry({ schedule: backoff, while: isThrottling }),
        Effect.mapError((cause) => new StoreUnavailable({ backend: BACKEND, operation, cause }))
      )

    const conditional = (operation: string, run: (signal: AbortSignal) => Promise<unknown>) =>
      Effect.tryPromise({ try: run, catch: (cause) => cause }).pipe(
        Effect.retry({ schedule: backoff, while: isThrottling }),
        Effect.as(true),
        Effect.catchIf(isConditionFailure, () => Effect.succeed(false)),
        Effect.mapError((cause) => new StoreUnavailable({ backend: BACKEND, operation, cause }))
      )

    const traced =
      (operation: string) =>
      <X, E>(effect: Effect.Effect<X, E>): Effect.Effect<X, E> =>
        Effect.withSpan(effect, `session.repository.${operation}`, {
          captureStackTrace: false,
          attributes: { "session.backend": BACKEND, "db.system.name": "aws.dynamodb" }
        })

    const itemKey = (key: string): Item => ({ [attributes.key]: str(prefix + key) })

    const keyOfItem = (item: Item): string | undefined => {
      const pk = item[attributes.key]?.S
      if (pk === undefined || !pk.startsWith(prefix)) return undefined
      const key = pk.slice(prefix.length)
      return keyPattern.test(key) ? key : undefined
    }

    const decodeMetadata = (item: Item): SessionMetadata | string => {
      const key = keyOfItem(item)
      if (key === undefined) return `${attributes.key} is not a session key`
      const userValue = item[attributes.userId]
      if (userValue !== undefined && userValue.S === undefined) return `${attributes.userId} is not a string`
      const createdAt = readInteger(item[attributes.createdAt])
      if (createdAt === undefined) return `${attributes.createdAt} is not an integer`
      const expiresValue = item[attributes.expiresAt]
      const expiresAt = expiresValue === undefined ? null : readInteger(expiresValue)
      if (expiresAt === undefined) return `${attributes.expiresAt} is not an integer`
      const version = readInteger(item[attributes.version])
      if (version === undefined) return `${attributes.version} is not an integer`
      return { key, userId: userValue?.S ?? null, createdAt, expiresAt, version }
    }

    const decodeRecord = (item: Item): Effect.Effect<SessionRecord, SessionDecodeError> => {
      const metadata = decodeMetadata(item)
      if (typeof metadata === "string") {
        const key = keyOfItem(item)
        return Effect.fail(new SessionDecodeError({ handle: key ? handleOf(key) : "unknown", reason: metadata }))
      }
      const payload = item[attributes.payload]?.S
      if (payload === undefined) {
        return Effect.fail(
          new SessionDecodeError({ handle: handleOf(metadata.key), reason: "payload is not a string" })
        )
      }
      return Effect.succeed({ ...metadata, payload })
    }

    const expiryValues = (key: string, expiresAt: number): Item => ({
      ":exp": num(expiresAt),
      ":ttl": num(Math.floor(expiresAt / 1000)),
      ":shard": str(`${shardOf(key)}:${prefix}`)
    })

    const toItem = (record: SessionRecord): Item => {
      const item: Item = {
        ...itemKey(record.key),
        [attributes.createdAt]: num(record.createdAt),
        [attributes.version]: num(record.version),
        [attributes.payload]: str(record.payload)
      }
      if (record.userId !== null) item[attributes.userId] = str(record.userId)
      if (record.expiresAt !== null) {
        const values = expiryValues(record.key, record.expiresAt)
        item[attributes.expiresAt] = values[":exp"]
        item[attributes.ttl] = values[":ttl"]
        item[attributes.sweepShard] = values[":shard"]
      }
      return item
    }

    const queryAll = (
      operation: string,
      input: Omit<QueryCommandInput, "TableName" | "ExclusiveStartKey" | "Limit">,
      onPage: (items: ReadonlyArray<Item>) => Effect.Effect<void, StoreUnavailable>
    ) =>
      Effect.gen(function* () {
        let start: Item | undefined
        do {
          const page = yield* send(operation, (signal) =>
            client.send(
              new QueryCommand({
                ...input,
                TableName: table,
                ...(pageSize === undefined ? {} : { Limit: pageSize }),
                ...(start === undefined ? {} : { ExclusiveStartKey: start })
              }),
              { abortSignal: signal }
            )
          )
          yield* onPage(page.Items ?? [])
          start = page.LastEvaluatedKey
        } while (start !== undefined)
      })

    const userQuery = (userId: string) => ({
      IndexName: USER_INDEX,
      KeyConditionExpression: "#uid = :uid AND begins_with(#pk, :prefix)",
      ExpressionAttributeNames: { "#uid": attributes.userId, "#pk": attributes.key },
      ExpressionAttributeValues: { ":uid": str(userId), ":prefix": str(prefix) }
    })

    const batchDelete = (operation: string, keys: ReadonlyArray<string>) =>
      Effect.forEach(
        chunk(keys, BATCH_SIZE),
        (slice) => {
          let pending: Array<WriteRequest> = slice.map((key) => ({ DeleteRequest: { Key: itemKey(key) } }))
          const attempt = send(operation, (signal) =>
            client.send(new BatchWriteItemCommand({ RequestItems: { [table]: pending } }), { abortSignal: signal })
          ).pipe(
            Effect.flatMap((output) => {
              pending = output.UnprocessedItems?.[table] ?? []
              return pending.length === 0 ? Effect.void : Effect.fail(new Unprocessed({ remaining: pending.length }))
            })
          )
          return attempt.pipe(
            Effect.retry({ schedule: backoff, while: (error) => error._tag === "Unprocessed" }),
            Effect.catchTag("Unprocessed", (cause) =>
              Effect.fail(new StoreUnavailable({ backend: BACKEND, operation, cause }))
            )
          )
        },
        { concurrency: 4, discard: true }
      )

    const removeExpiredIn = (shard: number, now: number, limit: number) =>
      Effect.gen(function* () {
        const keys: Array<string> = []
        let start: Item | undefined
        do {
          const page = yield* send("removeExpired", (signal) =>
            client.send(
              new QueryCommand({
                TableName: table,
                IndexName: EXPIRY_INDEX,
                KeyConditionExpression: "#shard = :shard AND #exp <= :now",
                ExpressionAttributeNames: { "#shard": attributes.sweepShard, "#exp": attributes.expiresAt },
                ExpressionAttributeValues: { ":shard": str(`${shard}:${prefix}`), ":now": num(now) },
                Limit: Math.min(limit - keys.length, pageSize ?? limit),
                ...(start === undefined ? {} : { ExclusiveStartKey: start })
              }),
              { abortSignal: signal }
            )
          )
          for (const item of page.Items ?? []) {
            const key = keyOfItem(item)
            if (key !== undefined) keys.push(key)
          }
          start = page.LastEvaluatedKey
        } while (start !== undefined && keys.length < limit)
        const removed = yield* Effect.forEach(
          keys,
          (key) =>
            conditional("removeExpired", (signal) =>
              client.send(
                new DeleteItemCommand({
                  TableName: table,
                  Key: itemKey(key),
                  ConditionExpression: "#exp <= :now",
                  ExpressionAttributeNames: { "#exp": attributes.expiresAt },
                  ExpressionAttributeValues: { ":now": num(now) }
                }),
                { abortSignal: signal }
              )
            ),
          { concurrency: DELETE_CONCURRENCY }
        )
        return { found: keys.length, removed: removed.filter(Boolean).length }
      })

    const repository: SessionRepositoryShape = {
      backend: BACKEND,

      get: (key) =>
        send("get", (signal) =>
          client.send(new GetItemCommand({ TableName: table, Key: itemKey(key), ConsistentRead: true }), {
            abortSignal: signal
          })
        ).pipe(
          Effect.flatMap((output) =>
            output.Item === undefined ? Effect.succeedNone : Effect.asSome(decodeRecord(output.Item))
          ),
          traced("get")
        ),

      insert: (record) =>
        conditional("insert", (signal) =>
          client.send(
            new PutItemCommand({
              TableName: table,
              Item: toItem(record),
              ConditionExpression: "attribute_not_exists(#pk)",
              ExpressionAttributeNames: { "#pk": attributes.key }
            }),
            { abortSignal: signal }
          )
        ).pipe(traced("insert")),

      update: (record, expectedVersion, now) => {
        const names: Record<string, string> = {
          "#ver": attributes.version,
          "#payload": attributes.payload,
          "#exp": attributes.expiresAt,
          "#ttl": attributes.ttl,
          "#shard": attributes.sweepShard
        }
        const values: Item = {
          ":ver": num(record.version),
          ":expected": num(expectedVersion),
          ":now": num(now),
          ":payload": str(record.payload)
        }
        if (record.expiresAt !== null) Object.assign(values, expiryValues(record.key, record.expiresAt))
        return conditional("update", (signal) =>
          client.send(
            new UpdateItemCommand({
              TableName: table,
              Key: itemKey(record.key),
              UpdateExpression:
                record.expiresAt === null
                  ? "SET #payload = :payload, #ver = :ver REMOVE #exp, #ttl, #shard"
                  : "SET #payload = :payload, #ver = :ver, #exp = :exp, #ttl = :ttl, #shard = :shard",
              ConditionExpression: "#ver = :expected AND (attribute_not_exists(#exp) OR #exp > :now)",
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: values
            }),
            { abortSignal: signal }
          )
        ).pipe(traced("update"))
      },

      extend: (key, expiresAt, now) =>
        conditional("extend", (signal) =>
          client.send(
            new UpdateItemCommand({
              TableName: table,
              Key: itemKey(key),
              UpdateExpression: "SET #exp = :exp, #ttl = :ttl, #ver = #ver + :one",
              ConditionExpression: "#exp > :now AND #exp < :exp",
              ExpressionAttributeNames: {
                "#exp": attributes.expiresAt,
                "#ttl": attributes.ttl,
                "#ver": attributes.version
              },
              ExpressionAttributeValues: {
                ":exp": num(expiresAt),
                ":ttl": num(Math.floor(expiresAt / 1000)),
                ":now": num(now),
                ":one": num(1)
              }
            }),
            { abortSignal: signal }
          )
        ).pipe(traced("extend")),

      remove: (key, expectedVersion) =>
        conditional("remove", (signal) =>
          client.send(
            new DeleteItemCommand({
              TableName: table,
              Key: itemKey(key),
              ...(expectedVersion === undefined
                ? {
                    ConditionExpression: "attribute_exists(#pk)",
                    ExpressionAttributeNames: { "#pk": attributes.key }
                  }
                : {
                    ConditionExpression: "#ver = :expected",
                    ExpressionAttributeNames: { "#ver": attributes.version },
                    ExpressionAttributeValues: { ":expected": num(expectedVersion) }
                  })
            }),
            { abortSignal: signal }
          )
        ).pipe(traced("remove")),

      listByUser: (userId, now) =>
        Effect.gen(function* () {
          const found: Array<SessionMetadata> = []
          yield* queryAll("listByUser", userQuery(userId), (items) =>
            Effect.sync(() => {
              for (const item of items) {
                const metadata = decodeMetadata(item)
                if (typeof metadata === "string") continue
                if (metadata.expiresAt === null || metadata.expiresAt > now) found.push(metadata)
              }
            })
          )
          return found
        }).pipe(traced("listByUser")),

      removeByUser: (userId, now) =>
        Effect.gen(function* () {
          let live = 0
          yield* queryAll("removeByUser", userQuery(userId), (items) => {
            const keys: Array<string> = []
            for (const item of items) {
              const key = keyOfItem(item)
              if (key === undefined) continue
              keys.push(key)
              const expiresAt = readInteger(item[attributes.expiresAt])
              if (item[attributes.expiresAt] === undefined || (expiresAt !== undefined && expiresAt > now)) live++
            }
            return batchDelete("removeByUser", keys)
          })
          return live
        }).pipe(traced("removeByUser")),

      removeExpired: (now, limit) =>
        Effect.gen(function* () {
          const bound = Math.max(1, Math.floor(limit))
          let found = 0
          let removed = 0
          for (let shard = 0; shard < SWEEP_SHARDS && found < bound; shard++) {
            const result = yield* removeExpiredIn(shard, now, bound - found)
            found += result.found
            removed += result.removed
          }
          return removed
        }).pipe(traced("removeExpired")),

      clear: Effect.gen(function* () {
        let start: Item | undefined
        do {
          const page = yield* send("clear", (signal) =>
            client.send(
              new ScanCommand({
                TableName: table,
                ProjectionExpression: "#pk",
                FilterExpression: "begins_with(#pk, :prefix)",
                ExpressionAttributeNames: { "#pk": attributes.key },
                ExpressionAttributeValues: { ":prefix": str(prefix) },
                ...(pageSize === undefined ? {} : { Limit: pageSize }),
                ...(start === undefined ? {} : { ExclusiveStartKey: start })
              }),
              { abortSignal: signal }
            )
          )
          const keys: Array<string> = []
          for (const item of page.Items ?? []) {
            const key = keyOfItem(item)
            if (key !== undefined) keys.push(key)
          }
          yield* batchDelete("clear", keys)
          start = page.LastEvaluatedKey
        } while (start !== undefined)
      }).pipe(traced("clear"))
    }
    return repository
  })

/**
 * The repository as a layer; needs a `DynamoClient` (see `layerClient`).
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options
): Layer.Layer<SessionRepository, SessionConfigError | StoreUnavailable, DynamoClient> =>
  Layer.effect(SessionRepository, make(options))

/**
 * Makes the table with its indexes when missing, and waits until it is ACTIVE.
 *
 * @since 0.1.0
 */
export const ensureTable = (table: string): Effect.Effect<void, SessionConfigError | StoreUnavailable, DynamoClient> =>
  Effect.gen(function* () {
    const client = yield* DynamoClient
    const found = yield* describeTable(client, table)
    const description = Option.isSome(found) ? found.value : yield* provision(client, table)
    yield* checkTable(description, table)
  })
