#!/usr/bin/env node
// Runs the TypeScript command line through tsx's loader, in this process.
import { register } from "tsx/esm/api"

register()
const { main } = await import("../src/Cli.ts")
main(process.argv)
