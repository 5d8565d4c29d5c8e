import { SubmitOrder } from "../../../schema/Control.js"
import { decimal } from "../../../schema/Event.js"

/** The i-th market order of a consumer: the ids the NATS tests count reports by. */
export const marketOrder = (consumerId: string, i: number) =>
  SubmitOrder.make({
    commandId: `${consumerId}-cmd-${i}`,
    consumerId,
    clientOrderId: `${consumerId}-o-${i}`,
    symbol: "BTC-USDT",
    side: "buy",
    orderType: "market",
    // small enough that a venue's default account pays for every order of a test (150 at 64,000)
    quantity: decimal("0.001")
  })
