import { assert, describe, it } from "@effect/vitest"
import { renderMarkdown } from "../bench/report.js"
import { quick, runBench } from "../bench/run.js"

describe("bench smoke run", () => {
  it("runs every section with tiny counts and renders a table for each", { timeout: 20_000 }, async () => {
    const figures = await runBench(quick)

    const markdown = renderMarkdown(figures, "npm run bench", 1)

    for (const section of ["sqlite", "memory", "sweep", "lifecycle", "http"]) {
      assert.isTrue(
        figures.some((figure) => figure.section === section),
        section
      )
      assert.include(markdown, `## ${section}`)
    }
    for (const figure of figures) {
      assert.isTrue(Number.isFinite(figure.value), `${figure.section} ${figure.operation} ${figure.contender}`)
    }
  })

  it("leaves no handle and no running fiber after the lifecycle cycles", async () => {
    const figures = await runBench({ ...quick, cycles: 50 }, ["lifecycle"])

    const value = (operation: string) => figures.find((figure) => figure.operation === operation)?.value

    assert.strictEqual(value("handles left"), 0)
    assert.strictEqual(value("live fibers after"), 0)
  })
})
