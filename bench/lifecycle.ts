/**
 * Item 4: build and close the store and sweeper layers many times, then look
 * for what stayed behind: heap, active handles and fibers still running.
 */

import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect, Layer, Supervisor } from "effect"
import * as ExpirationPolicy from "../src/ExpirationPolicy.js"
import * as MemoryRepository from "../src/MemoryRepository.js"
import * as SessionStore from "../src/SessionStore.js"
import * as SessionSweeper from "../src/SessionSweeper.js"
import { Store } from "./contenders.js"
import { type Figure, mib, Payload } from "./harness.js"

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
}

const resources = () =>
  process
    .getActiveResourcesInfo()
    .filter((name) => name !== "TTYWrap" && name !== "PipeWrap")
    .sort()

/** `cycles` scoped builds of store + sweeper over the memory repository. */
export const lifecycleBenchmark = async (cycles: number): Promise<Array<Figure>> => {
  const layer = Layer.merge(
    SessionStore.layer(Store, { schema: Payload, policy: ExpirationPolicy.sliding("1 hour") }),
    SessionSweeper.layer({ interval: "1 minute" })
  ).pipe(Layer.provide(MemoryRepository.layer))
  const supervisor = await Effect.runPromise(Supervisor.track)
  const cycle = Effect.scoped(
    Effect.flatMap(Layer.build(layer), (context) => Effect.asVoid(Effect.succeed(context)))
  ).pipe(Effect.supervised(supervisor))

  await Effect.runPromise(Effect.repeatN(cycle, Math.min(100, cycles - 1)))
  await settle()
  const before = { heap: process.memoryUsage().heapUsed, resources: resources() }
  const started = performance.now()
  await Effect.runPromise(Effect.repeatN(cycle, cycles - 1))
  const seconds = (performance.now() - started) / 1000
  await settle()
  const after = { heap: process.memoryUsage().heapUsed, resources: resources() }
  const fibers = (await Effect.runPromise(supervisor.value)).length
  const leaked = after.resources.length - before.resources.length

  const figure = (operation: string, value: number, unit: string): Figure => ({
    section: "lifecycle",
    operation,
    contender: "ours",
    value,
    unit
  })
  return [
    figure("cycles per second", cycles / seconds, "cycles/s"),
    figure("heap growth", mib(after.heap - before.heap), "MiB"),
    figure("active resources before", before.resources.length, before.resources.join(" ") || "none"),
    figure("handles left", leaked, after.resources.join(" ") || "none"),
    figure("live fibers after", fibers, "")
  ]
}
