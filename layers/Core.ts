/**
 * The in-process pipeline every application layer is built on: Pool,
 * Recycler, the in-memory Data Bus, the Dispatcher and the consumer runtime.
 */
import { Layer } from "effect"
import { Consumers } from "../src/Consumer.js"
import { DataBus } from "../src/DataBus.js"
import { Dispatcher, DispatcherConfig, type DispatcherSettings } from "../src/Dispatcher.js"
import { Pool, type PoolSettings } from "../src/Pool.js"
import { Recycler } from "../src/Recycler.js"

export interface CoreOptions {
  readonly pool?: Partial<PoolSettings>
  readonly dispatcher?: Partial<DispatcherSettings>
}

/** Pool and Recycler. */
export const memoryLayer = (pool: Layer.Layer<Pool>) =>
  Recycler.DefaultWithoutDependencies.pipe(Layer.provideMerge(pool))

/** The pipeline over a given Data Bus layer. */
export const pipeline = <E, R>(bus: Layer.Layer<import("../src/DataBus.js").DataBus, E, R>, options: CoreOptions = {}) =>
  Consumers.Default.pipe(
    Layer.provideMerge(Dispatcher.DefaultWithoutDependencies),
    Layer.provideMerge(DispatcherConfig.layer(options.dispatcher)),
    Layer.provideMerge(bus),
    Layer.provideMerge(memoryLayer(Pool.layer(options.pool)))
  )

/** The pipeline on the in-memory Data Bus. */
export const layerCore = (options: CoreOptions = {}) => pipeline(DataBus.layerMemory, options)
