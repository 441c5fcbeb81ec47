/**
 * Renders the figures of a run as the markdown of BENCHMARKS.md: one table per
 * section, every figure beside its ratio to the section's baseline.
 */
import { cpus, totalmem } from "node:os"
import type { Figure } from "./harness.js"

/** The contender each section's ratios are computed against, with a label. */
const baselines: Record<string, ReadonlyArray<readonly [string, string]>> = {
  sqlite: [
    ["raw better-sqlite3", "ours / raw"],
    ["express-session peer", "ours / peer"]
  ],
  memory: [["raw Map", "ours / raw"]],
  sweep: [["one unbounded DELETE", "÷ unbounded"]],
  http: [["express + express-session", "ours / express"]]
}

const format = (value: number): string =>
  Math.abs(value) >= 100 ? Math.round(value).toLocaleString("en-US") : String(Math.round(value * 100) / 100)

const ratio = (value: number, base: number | undefined): string =>
  base === undefined || base === 0 ? "" : `${(value / base).toFixed(2)}×`

const notes = `## What is measured

- sqlite: 10,000 live sessions with a 1 KB payload per contender, each in its own SQLite file with WAL and
  \`synchronous=NORMAL\`. "ours" runs the operations through \`SessionStore\` on \`SqlRepository\`, each batch of
  operations in one effect; "raw better-sqlite3" runs the same SQL on prepared statements plus \`JSON.parse\` /
  \`JSON.stringify\` and no hashing (keys are precomputed); "express-session peer" calls \`get\`, \`set\` and
  \`touch\` of better-sqlite3-session-store. Touch writes on every call in every contender. Ops/s are medians of
  interleaved rounds.
- memory: the memory repository under the same store against a \`Map\` doing the same reads and writes.
- sweep: expired rows plus live ones in a SQLite file, a fresh copy per contender; a fiber restores live sessions
  through our store every millisecond meanwhile. The longest stall is the larger of
  \`monitorEventLoopDelay\`'s maximum and the longest gap of a 5 ms interval timer.
- lifecycle: build and close store + sweeper layers over the memory repository; heap after forced GC.
- http: \`GET /me\` of examples/app against express + express-session (\`resave: true\`) on the same SQLite
  store, autocannon in a child process.
`

/** The markdown of one run. */
export const renderMarkdown = (figures: ReadonlyArray<Figure>, command: string, seconds: number): string => {
  const lines = [
    "# Benchmarks",
    "",
    `Last run: ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ` +
      `${cpus().length} × ${cpus()[0]?.model ?? "CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
      `${process.platform}; ${Math.round(seconds)} s in all.`,
    "",
    `Reproduce: \`${command}\``,
    ""
  ]
  for (const section of [...new Set(figures.map((f) => f.section))]) {
    const rows = figures.filter((f) => f.section === section)
    const ours = rows.filter((f) => f.contender.startsWith("ours"))
    const refs = baselines[section] ?? []
    lines.push(
      `## ${section}`,
      "",
      `| operation | contender | value | unit |${refs.map(([, label]) => ` ${label} |`).join("")}`
    )
    lines.push(`|---|---|--:|---|${refs.map(() => "--:|").join("")}`)
    for (const figure of rows) {
      const cells = refs.map(([base]) =>
        ours.includes(figure) || section === "sweep"
          ? ratio(figure.value, rows.find((r) => r.operation === figure.operation && r.contender === base)?.value)
          : ""
      )
      lines.push(
        `| ${figure.operation} | ${figure.contender} | ${format(figure.value)} | ${figure.unit} |` +
          cells.map((c) => ` ${c} |`).join("")
      )
    }
    lines.push("")
  }
  lines.push(notes)
  return lines.join("\n")
}
