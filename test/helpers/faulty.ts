/**
 * A repository decorator that fails chosen calls, and counts every call.
 */
import { Context, Effect, Layer, Ref } from "effect"
import { StoreUnavailable } from "../../src/SessionError.js"
import { SessionRepository, type SessionRepositoryShape } from "../../src/SessionRepository.js"

export type Operation = Exclude<keyof SessionRepositoryShape, "backend">

export interface Faults {
  /** Fail the next `count` calls of `operation`. */
  readonly failNext: (operation: Operation, count: number) => Effect.Effect<void>
  /** Fail every call of `operation` until `heal`. */
  readonly breakAll: (operation?: Operation) => Effect.Effect<void>
  readonly heal: Effect.Effect<void>
  readonly calls: Effect.Effect<Readonly<Record<string, number>>>
  readonly injected: Effect.Effect<number>
}

export class FaultControl extends Effect.Tag("test/FaultControl")<FaultControl, Faults>() {}

const operations: ReadonlyArray<Operation> = [
  "get",
  "insert",
  "update",
  "extend",
  "remove",
  "listByUser",
  "removeByUser",
  "removeExpired",
  "clear"
]

export const wrap = (inner: SessionRepositoryShape) =>
  Effect.gen(function* () {
    const pending = yield* Ref.make<Record<string, number>>({})
    const broken = yield* Ref.make<ReadonlySet<string>>(new Set())
    const calls = yield* Ref.make<Record<string, number>>({})
    const injected = yield* Ref.make(0)

    const gate = (operation: Operation) =>
      Effect.gen(function* () {
        yield* Ref.update(calls, (c) => ({ ...c, [operation]: (c[operation] ?? 0) + 1 }))
        const left = (yield* Ref.get(pending))[operation] ?? 0
        const isBroken = (yield* Ref.get(broken)).has(operation)
        if (left > 0 || isBroken) {
          if (left > 0) yield* Ref.update(pending, (p) => ({ ...p, [operation]: left - 1 }))
          yield* Ref.update(injected, (n) => n + 1)
          return yield* new StoreUnavailable({
            backend: inner.backend,
            operation,
            cause: new Error(`injected fault in ${operation}`)
          })
        }
      })

    const guarded =
      <Args extends ReadonlyArray<unknown>, A, E>(operation: Operation, f: (...args: Args) => Effect.Effect<A, E>) =>
      (...args: Args) =>
        Effect.zipRight(gate(operation), f(...args))

    const repository: SessionRepositoryShape = {
      backend: inner.backend,
      get: guarded("get", inner.get),
      insert: guarded("insert", inner.insert),
      update: guarded("update", inner.update),
      extend: guarded("extend", inner.extend),
      remove: guarded("remove", inner.remove),
      listByUser: guarded("listByUser", inner.listByUser),
      removeByUser: guarded("removeByUser", inner.removeByUser),
      removeExpired: guarded("removeExpired", inner.removeExpired),
      clear: Effect.zipRight(gate("clear"), inner.clear)
    }
    const control: Faults = {
      failNext: (operation, count) => Ref.update(pending, (p) => ({ ...p, [operation]: count })),
      breakAll: (operation) => Ref.set(broken, new Set(operation ? [operation] : operations)),
      heal: Effect.zipRight(Ref.set(broken, new Set()), Ref.set(pending, {})),
      calls: Ref.get(calls),
      injected: Ref.get(injected)
    }
    return { repository, control }
  })

/** Wraps the repository of `inner` and provides both it and its FaultControl. */
export const layer = <E, R>(inner: Layer.Layer<SessionRepository, E, R>) =>
  Layer.effectContext(
    Effect.gen(function* () {
      const { control, repository } = yield* wrap(yield* SessionRepository)
      return Context.make(SessionRepository, repository).pipe(Context.add(FaultControl, control))
    })
  ).pipe(Layer.provide(inner))
