/**
 * A repository on Redis through ioredis. Each session is a hash under
 * `<prefix>session:<key>` with a relative expiry computed from the store's
 * `Clock`; each user has a set `<prefix>user:<userId>` of session keys; a
 * sorted set `<prefix>expiry` orders sessions by expiry so the sweep visits
 * only expired ones and prunes the user sets as it goes. Every write is one
 * Lua script, so no check and write are ever split across round trips.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Cause, Effect, Layer, Redacted, Runtime, type Scope } from "effect"
import type { Redis, RedisOptions } from "ioredis"
import { SessionConfigError, SessionDecodeError, StoreUnavailable } from "./SessionError.js"
import {
  type SessionMetadata,
  type SessionRecord,
  SessionRepository,
  type SessionRepositoryShape
} from "./SessionRepository.js"
import { handleOf } from "./SessionToken.js"

/**
 * How the repository lays out its keys.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * The start of every key this repository writes. Default `"effect-session:"`.
   * Not empty, and not the start of another store's prefix in the same database.
   */
  readonly prefix?: string | undefined
  /** Milliseconds added to each record's Redis expiry. Default 0. */
  readonly expiryMarginMillis?: number | undefined
}

/**
 * A connection the repository opens itself and closes with its scope.
 *
 * @since 0.1.0
 */
export interface ConnectionOptions extends Options {
  /** A `redis://` or `rediss://` URL; default `redis://127.0.0.1:6379`. */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** ioredis options, applied over the fail-fast defaults. `keyPrefix` is refused: use `prefix`. */
  readonly redis?: RedisOptions | undefined
}

/**
 * The ioredis options the repository's own connection starts from: no offline
 * queue and no retry of a command after a disconnect, so a call fails at once
 * while Redis is away; ioredis keeps reconnecting in the background. A short
 * `disconnectTimeout` keeps a closed connection from holding the process open.
 *
 * @since 0.1.0
 */
export const defaultRedisOptions: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  connectTimeout: 5_000,
  commandTimeout: 5_000,
  disconnectTimeout: 200
}

const BACKEND = "redis"
const DEFAULT_PREFIX = "effect-session:"
const DEFAULT_URL = "redis://127.0.0.1:6379"

/**
 * The Redis key of a session record, for operators and tests.
 *
 * @since 0.1.0
 */
export const recordKey = (key: string, prefix: string = DEFAULT_PREFIX): string => `${prefix}session:${key}`

/**
 * The Redis key of a user's set of session keys.
 *
 * @since 0.1.0
 */
export const userSetKey = (userId: string, prefix: string = DEFAULT_PREFIX): string => `${prefix}user:${userId}`

/**
 * The Redis key of the sorted set of session keys by expiry.
 *
 * @since 0.1.0
 */
export const expiryIndexKey = (prefix: string = DEFAULT_PREFIX): string => `${prefix}expiry`

interface Script {
  readonly lua: string
  readonly sha: string
}

const script = (lua: string): Script => ({ lua, sha: createHash("sha1").update(lua).digest("hex") })

const insertScript = script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'created', ARGV[2], 'version', ARGV[3], 'payload', ARGV[4])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'user', ARGV[7]) end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'expires', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1] .. ':' .. ARGV[7])
end
if KEYS[3] then redis.call('SADD', KEYS[3], ARGV[1]) end
return 1
`)

const updateScript = script(`
local f = redis.call('HMGET', KEYS[1], 'version', 'expires', 'user')
if not f[1] or tonumber(f[1]) ~= tonumber(ARGV[2]) then return 0 end
if f[2] and (tonumber(f[2]) or 0) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'payload', ARGV[4], 'version', ARGV[3])
local member = ARGV[7] .. ':' .. (f[3] or '')
if ARGV[5] == '' then
  redis.call('HDEL', KEYS[1], 'expires')
  redis.call('PERSIST', KEYS[1])
  redis.call('ZREM', KEYS[2], member)
else
  redis.call('HSET', KEYS[1], 'expires', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('ZADD', KEYS[2], ARGV[5], member)
end
return 1
`)

const extendScript = script(`
local f = redis.call('HMGET', KEYS[1], 'expires', 'user')
if not f[1] then return 0 end
local stored = tonumber(f[1]) or 0
if stored <= tonumber(ARGV[1]) or stored >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'expires', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4] .. ':' .. (f[2] or ''))
return 1
`)

const removeScript = script(`
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' then
  if kind == 'none' or ARGV[2] ~= '' then return 0 end
  redis.call('DEL', KEYS[1])
  return 1
end
local f = redis.call('HMGET', KEYS[1], 'version', 'user')
if not f[1] then return 0 end
if ARGV[2] ~= '' and tonumber(f[1]) ~= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1] .. ':' .. (f[2] or ''))
if f[2] then redis.call('SREM', ARGV[3] .. 'user:' .. f[2], ARGV[1]) end
return 1
`)

const listByUserScript = script(`
local now = tonumber(ARGV[1])
local found = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.pcall('HMGET', ARGV[2] .. 'session:' .. key, 'created', 'expires', 'version', 'user')
  if f.err then
    f = {}
  elseif not f[3] or f[4] ~= ARGV[3] or (f[2] and (tonumber(f[2]) or 0) <= now) then
    redis.call('SREM', KEYS[1], key)
  else
    table.insert(found, { key, f[1] or '', f[2] or '', f[3] })
  end
end
return found
`)

const removeByUserScript = script(`
local now = tonumber(ARGV[1])
local live = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = ARGV[2] .. 'session:' .. key
  local f = redis.pcall('HMGET', record, 'expires', 'user', 'version')
  if f.err then
    redis.call('DEL', record)
  elseif f[3] and f[2] == ARGV[3] then
    if not f[1] or (tonumber(f[1]) or 0) > now then live = live + 1 end
    redis.call('DEL', record)
    redis.call('ZREM', KEYS[2], key .. ':' .. ARGV[3])
  end
end
redis.call('DEL', KEYS[1])
return live
`)

const removeExpiredScript = script(`
local now = tonumber(ARGV[1])
local removed = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))) do
  local split = string.find(member, ':', 1, true)
  local key = string.sub(member, 1, split - 1)
  local user = string.sub(member, split + 1)
  local record = ARGV[3] .. 'session:' .. key
  local f = redis.pcall('HMGET', record, 'expires', 'user', 'version')
  if f.err then f = { '0', false, '0' } end
  redis.call('ZREM', KEYS[1], member)
  if not f[3] then
    removed = removed + 1
    if user ~= '' then redis.call('SREM', ARGV[3] .. 'user:' .. user, key) end
  elseif f[1] and (tonumber(f[1]) or 0) <= now then
    removed = removed + 1
    redis.call('DEL', record)
    if f[2] then redis.call('SREM', ARGV[3] .. 'user:' .. f[2], key) end
  elseif user ~= '' and f[2] ~= user then
    redis.call('SREM', ARGV[3] .. 'user:' .. user, key)
  end
end
return removed
`)

const checkOptions = (options: Options) => {
  const prefix = options.prefix ?? DEFAULT_PREFIX
  const margin = options.expiryMarginMillis ?? 0
  if (prefix.length === 0 || prefix.length > 200) {
    return Effect.fail(new SessionConfigError({ option: "prefix", reason: "must hold 1 to 200 characters" }))
  }
  if (!Number.isSafeInteger(margin) || margin < 0) {
    return Effect.fail(
      new SessionConfigError({ option: "expiryMarginMillis", reason: "must be a non-negative integer" })
    )
  }
  return Effect.succeed({ prefix, margin })
}

const globEscape = (text: string): string => text.replace(/[*?[\]\\]/g, (char) => `\\${char}`)

const isNoScript = (error: unknown): boolean => error instanceof Error && error.message.startsWith("NOSCRIPT")

const isWrongType = (error: StoreUnavailable | SessionDecodeError): boolean =>
  error.cause instanceof Error && error.cause.message.startsWith("WRONGTYPE")

const toInteger = (text: string | undefined): number | undefined => {
  if (text === undefined || !/^-?\d{1,16}$/.test(text)) return undefined
  const value = Number(text)
  return Number.isSafeInteger(value) ? value : undefined
}

const decodeHash = (key: string, hash: Record<string, string>): SessionRecord | string => {
  const createdAt = toInteger(hash.created)
  if (createdAt === undefined) return "created is not an integer"
  const expiresAt = hash.expires === undefined ? null : toInteger(hash.expires)
  if (expiresAt === undefined) return "expires is not an integer"
  const version = toInteger(hash.version)
  if (version === undefined) return "version is not an integer"
  if (hash.payload === undefined) return "payload is missing"
  return { key, userId: hash.user ?? null, createdAt, expiresAt, version, payload: hash.payload }
}

const decodeListed = (userId: string, rows: unknown): Array<SessionMetadata> => {
  const found: Array<SessionMetadata> = []
  if (!Array.isArray(rows)) return found
  for (const row of rows) {
    if (!Array.isArray(row) || typeof row[0] !== "string") continue
    const createdAt = toInteger(row[1])
    const expiresAt = row[2] === "" ? null : toInteger(row[2])
    const version = toInteger(row[3])
    if (createdAt === undefined || expiresAt === undefined || version === undefined) continue
    found.push({ key: row[0], userId, createdAt, expiresAt, version })
  }
  return found
}

/**
 * Builds the repository over a client the caller owns and closes. The client
 * must have no `keyPrefix`; errors on its 'error' event are the caller's to handle.
 *
 * @since 0.1.0
 */
export const fromClient = (
  client: Redis,
  options: Options = {}
): Effect.Effect<SessionRepositoryShape, SessionConfigError> =>
  Effect.gen(function* () {
    const { prefix, margin } = yield* checkOptions(options)
    if (client.options.keyPrefix) {
      return yield* new SessionConfigError({ option: "keyPrefix", reason: "use the repository's prefix option" })
    }
    const index = expiryIndexKey(prefix)
    const sessionKey = (key: string) => recordKey(key, prefix)
    const userKey = (userId: string) => userSetKey(userId, prefix)
    const relative = (expiresAt: number, now: number) => String(Math.max(1, expiresAt - now + margin))

    const call = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, StoreUnavailable> =>
      Effect.tryPromise({
        try: run,
        catch: (cause) => new StoreUnavailable({ backend: BACKEND, operation, cause })
      })

    const traced = <A, E>(operation: string, effect: Effect.Effect<A, E>) =>
      Effect.withSpan(effect, `session.repository.${operation}`, {
        captureStackTrace: false,
        attributes: { "session.backend": BACKEND, "db.system.name": "redis" }
      })

    const evaluate = (
      operation: string,
      code: Script,
      keys: ReadonlyArray<string>,
      args: ReadonlyArray<string>
    ): Effect.Effect<unknown, StoreUnavailable> =>
      Effect.tryPromise({
        try: () => client.evalsha(code.sha, keys.length, ...keys, ...args),
        catch: (cause) => cause
      }).pipe(
        Effect.catchAll((cause) =>
          isNoScript(cause)
            ? call(operation, () => client.eval(code.lua, keys.length, ...keys, ...args))
            : Effect.fail(new StoreUnavailable({ backend: BACKEND, operation, cause }))
        ),
        (effect) => traced(operation, effect)
      )

    const flag = (operation: string, code: Script, keys: ReadonlyArray<string>, args: ReadonlyArray<string>) =>
      Effect.map(evaluate(operation, code, keys, args), (reply) => reply === 1)

    const scanBatch = (cursor: string) =>
      call("clear", () => client.scan(cursor, "MATCH", `${globEscape(prefix)}*`, "COUNT", 1_000))

    const ownsKey = (name: string) => {
      const rest = name.slice(prefix.length)
      return rest === "expiry" || rest.startsWith("session:") || rest.startsWith("user:")
    }

    const clear = Effect.gen(function* () {
      let cursor = "0"
      do {
        const [next, names] = yield* scanBatch(cursor)
        const owned = names.filter(ownsKey)
        if (owned.length > 0) {
          yield* call("clear", () => client.unlink(...owned))
        }
        cursor = next
      } while (cursor !== "0")
    })

    const repository: SessionRepositoryShape = {
      backend: BACKEND,

      get: (key) =>
        call("get", () => client.hgetall(sessionKey(key))).pipe(
          Effect.flatMap((hash) => {
            if (Object.keys(hash).length === 0) return Effect.succeedNone
            const record = decodeHash(key, hash)
            return typeof record === "string"
              ? Effect.fail(new SessionDecodeError({ handle: handleOf(key), reason: record }))
              : Effect.succeedSome(record)
          }),
          Effect.catchIf(isWrongType, () =>
            Effect.fail(new SessionDecodeError({ handle: handleOf(key), reason: "record is not a hash" }))
          ),
          (effect) => traced("get", effect)
        ),

      insert: (record) =>
        flag(
          "insert",
          insertScript,
          record.userId === null
            ? [sessionKey(record.key), index]
            : [sessionKey(record.key), index, userKey(record.userId)],
          [
            record.key,
            String(record.createdAt),
            String(record.version),
            record.payload,
            record.expiresAt === null ? "" : String(record.expiresAt),
            record.expiresAt === null ? "" : relative(record.expiresAt, record.createdAt),
            record.userId ?? ""
          ]
        ),

      update: (record, expectedVersion, now) =>
        flag(
          "update",
          updateScript,
          [sessionKey(record.key), index],
          [
            String(now),
            String(expectedVersion),
            String(record.version),
            record.payload,
            record.expiresAt === null ? "" : String(record.expiresAt),
            record.expiresAt === null ? "" : relative(record.expiresAt, now),
            record.key
          ]
        ),

      extend: (key, expiresAt, now) =>
        flag(
          "extend",
          extendScript,
          [sessionKey(key), index],
          [String(now), String(expiresAt), relative(expiresAt, now), key]
        ),

      remove: (key, expectedVersion) =>
        flag(
          "remove",
          removeScript,
          [sessionKey(key), index],
          [key, expectedVersion === undefined ? "" : String(expectedVersion), prefix]
        ),

      listByUser: (userId, now) =>
        Effect.map(evaluate("listByUser", listByUserScript, [userKey(userId)], [String(now), prefix, userId]), (rows) =>
          decodeListed(userId, rows)
        ),

      removeByUser: (userId, now) =>
        Effect.map(
          evaluate("removeByUser", removeByUserScript, [userKey(userId), index], [String(now), prefix, userId]),
          Number
        ),

      removeExpired: (now, limit) =>
        Effect.map(
          evaluate(
            "removeExpired",
            removeExpiredScript,
            [index],
            [String(now), String(Math.max(1, Math.floor(limit))), prefix]
          ),
          Number
        ),

      clear: traced("clear", clear)
    }
    return repository
  })

const connect = (client: Redis) =>
  Effect.tryPromise({
    try: () => client.connect(),
    catch: (cause) => new StoreUnavailable({ backend: BACKEND, operation: "connect", cause })
  }).pipe(Effect.tapError(() => Effect.sync(() => client.disconnect())))

const close = (client: Redis): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (client.status === "end" || client.status === "wait" || client.status === "reconnecting") {
      client.disconnect()
      return resume(Effect.void)
    }
    const done = () => {
      client.off("close", done)
      client.off("end", done)
      resume(Effect.void)
    }
    client.once("close", done)
    client.once("end", done)
    if (client.status === "ready") {
      client.quit().catch(() => client.disconnect())
    } else {
      client.disconnect()
    }
  })

const watch = (client: Redis) =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const log = (effect: Effect.Effect<void>) =>
      Runtime.runFork(runtime)(
        effect.pipe(Effect.annotateLogs({ package: "effect-session", module: "RedisRepository", backend: BACKEND }))
      )
    let state: "connecting" | "up" | "down" = "connecting"
    client.on("close", () => {
      if (state !== "up" || client.status !== "reconnecting") return
      state = "down"
      log(Effect.logWarning("redis connection lost"))
    })
    client.on("error", (error: unknown) => {
      if (state === "up") {
        state = "down"
        log(Effect.logWarning("redis connection lost", Cause.fail(error)))
      } else {
        log(Effect.logDebug("redis connection error", Cause.fail(error)))
      }
    })
    client.on("ready", () => {
      if (state === "down") log(Effect.logInfo("redis connection restored"))
      state = "up"
    })
  })

/**
 * Opens a connection, waits until it is ready and builds the repository on
 * it; closing the scope quits the connection.
 *
 * @since 0.1.0
 */
export const make = (
  options: ConnectionOptions = {}
): Effect.Effect<SessionRepositoryShape, SessionConfigError | StoreUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    yield* checkOptions(options)
    if (options.redis?.keyPrefix) {
      return yield* new SessionConfigError({ option: "redis.keyPrefix", reason: "use the repository's prefix option" })
    }
    const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : (options.url ?? DEFAULT_URL)
    const driver = yield* Effect.tryPromise({
      try: () => import("ioredis"),
      catch: () => new SessionConfigError({ option: "ioredis", reason: "the ioredis package is not installed" })
    })
    const client = yield* Effect.acquireRelease(
      Effect.suspend(() => {
        const created = new driver.Redis(url, { ...defaultRedisOptions, ...options.redis })
        return Effect.zipRight(watch(created), Effect.as(connect(created), created))
      }),
      close
    )
    return yield* fromClient(client, options)
  })

/**
 * The repository as a layer with a connection of its own, closed with the layer's scope.
 *
 * @since 0.1.0
 */
export const layer = (
  options: ConnectionOptions = {}
): Layer.Layer<SessionRepository, SessionConfigError | StoreUnavailable> =>
  Layer.scoped(SessionRepository, make(options))

/**
 * The repository as a layer over a client the caller owns.
 *
 * @since 0.1.0
 */
export const layerClient = (client: Redis, options: Options = {}): Layer.Layer<SessionRepository, SessionConfigError> =>
  Layer.effect(SessionRepository, fromClient(client, options))
