/**
 * The executable: the command line (`src/main.ts`) with the composition root
 * (`layers/Application.ts`). `npm start` runs it.
 */
import { layerBacktest, natsServerConfig, routeAsOperator, runGateway } from "../layers/Application.js"
import { main } from "../src/main.js"

main({
  run: runGateway,
  route: routeAsOperator,
  natsServerConfig,
  backtestLayer: layerBacktest
})
