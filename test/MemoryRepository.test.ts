import { Layer } from "effect"
import * as MemoryRepository from "../src/MemoryRepository.js"
import { conformance } from "./conformance/suite.js"

conformance({
  name: "memory",
  backend: Layer.empty,
  repository: () => MemoryRepository.layer
})
