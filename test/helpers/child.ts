/**
 * Runs a fixture script in a child Node process and times how long it takes
 * to exit after it printed "scope closed".
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export interface ExitOutcome {
  readonly code: number | null
  readonly output: string
  readonly closedAt: number
  readonly exitedAfter: number
}

export const runExitFixture = async (fixture: string, ...args: Array<string>): Promise<ExitOutcome> => {
  const script = fileURLToPath(new URL(`../fixtures/${fixture}`, import.meta.url))
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  let closedAt = 0
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString()
    if (closedAt === 0 && output.includes("scope closed")) closedAt = performance.now()
  })
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString()
  })
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
  return { code, output, closedAt, exitedAfter: performance.now() - closedAt }
}
