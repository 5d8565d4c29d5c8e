/**
 * The Prometheus text of every metric, for `/metrics` in `Http.ts`.
 *
 * It comes from OpenTelemetry's maintained exporter
 * (`@opentelemetry/exporter-prometheus`, its HTTP server not started) fed by
 * `@effect/opentelemetry`'s metric producer (the Effect metrics of
 * `Metrics.ts`, published by `Status`), beside a producer of the latency
 * histograms that components keep themselves (counted exactly in
 * `PROMETHEUS_BOUNDS_US`, exported in seconds). Each scrape samples first.
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import { ValueType } from "@opentelemetry/api"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { emptyResource } from "@opentelemetry/resources"
import {
  AggregationTemporality,
  type DataPoint,
  DataPointType,
  type Histogram as OtelHistogram,
  type HistogramMetricData,
  type MetricProducer
} from "@opentelemetry/sdk-metrics"
import { Effect } from "effect"
import { PROMETHEUS_BOUNDS_US } from "./internal/histogram.js"
import { Status } from "./Status.js"

export class Prometheus extends Effect.Service<Prometheus>()("meltica/Prometheus", {
  scoped: Effect.gen(function*() {
    const status = yield* Status
    const clock = yield* Effect.clock
    const started = clock.unsafeCurrentTimeMillis()

    const boundariesSeconds = PROMETHEUS_BOUNDS_US.map((us) => us / 1e6)
    const hrTime = (ms: number): [number, number] => [Math.floor(ms / 1000), (ms % 1000) * 1e6]
    const histogramStart = hrTime(started)
    /** The histograms as OpenTelemetry data, beside what `@effect/opentelemetry` produces from Effect's metrics. */
    const histogramProducer: MetricProducer = {
      collect: () => {
        const endTime = hrTime(clock.unsafeCurrentTimeMillis())
        const byName = new Map<string, HistogramMetricData>()
        for (const series of status.histograms()) {
          const s = series.summary
          const counts: Array<number> = []
          let below = 0
          for (const cumulative of s.buckets) {
            counts.push(cumulative - below)
            below = cumulative
          }
          counts.push(s.count - below)
          const point: DataPoint<OtelHistogram> = {
            startTime: histogramStart,
            endTime,
            attributes: series.attributes,
            value: {
              buckets: { boundaries: boundariesSeconds, counts },
              count: s.count,
              sum: s.sum / 1e6,
              ...(s.count === 0 ? {} : { min: s.min / 1e6, max: s.max / 1e6 })
            }
          }
          const data = byName.get(series.metric.name)
          if (data !== undefined) data.dataPoints.push(point)
          else {
            byName.set(series.metric.name, {
              descriptor: { name: series.metric.name, description: series.metric.description, unit: "", valueType: ValueType.DOUBLE },
              aggregationTemporality: AggregationTemporality.CUMULATIVE,
              dataPointType: DataPointType.HISTOGRAM,
              dataPoints: [point]
            })
          }
        }
        return Promise.resolve({
          resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: { name: "meltica" }, metrics: [...byName.values()] }] },
          errors: []
        })
      }
    }

    const exporter = new PrometheusExporter({ preventServerStart: true, metricProducers: [histogramProducer] })
    const producer = yield* OtelMetrics.makeProducer
    yield* OtelMetrics.registerProducer(producer, () => exporter)
    // without the `otel_scope_name` label: one service, one scope, nothing for an operator to select on
    const serializer = new PrometheusSerializer(undefined, false, undefined, false, true)


    /** Prometheus text of every metric, freshly sampled. */
    const scrape: Effect.Effect<string> = Effect.zipRight(
      status.snapshot,
      Effect.promise(() => exporter.collect()).pipe(Effect.map((r) => serializer.serialize(r.resourceMetrics)))
    )

    return { scrape } as const
  }),
  dependencies: [OtelResource.layer({ serviceName: "meltica-gateway" })]
}) {}
