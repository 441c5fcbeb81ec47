import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, it } from "@effect/vitest"

it("the README's quick start program runs and lists one session", () => {
  const script = fileURLToPath(new URL("../examples/quickstart.ts", import.meta.url))

  const output = execFileSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8", timeout: 20_000 })

  assert.match(output, /ada has 1 session\(s\): [A-Za-z0-9_-]{16}/)
})
