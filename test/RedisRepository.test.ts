import { Layer } from "effect"
import { conformance } from "./conformance/suite.js"
import { scopedRepository, skipRedis } from "./helpers/redis.js"

conformance({
  name: "redis",
  skip: skipRedis,
  backend: Layer.empty,
  repository: () => scopedRepository(),
  timeout: 30_000
})
