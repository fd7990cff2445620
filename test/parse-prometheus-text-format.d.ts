// parse-prometheus-text-format ships no type declarations; this covers what its README shows.
// Its CommonJS export is the function itself, which an ES import receives as the default.
declare module "parse-prometheus-text-format" {
  /** One sample of a gauge, counter or untyped family. */
  export interface Sample {
    value: string;
    labels?: Record<string, string>;
  }

  /** One labelled series of a histogram: its cumulative buckets by `le`, count and sum. */
  export interface HistogramSample {
    labels?: Record<string, string>;
    buckets: Record<string, string>;
    count: string;
    sum: string;
  }

  /** One labelled series of a summary. */
  export interface SummarySample {
    labels?: Record<string, string>;
    quantiles?: Record<string, string>;
    count: string;
    sum: string;
  }

  export interface MetricFamily {
    name: string;
    help: string;
    type: "GAUGE" | "COUNTER" | "UNTYPED" | "HISTOGRAM" | "SUMMARY";
    metrics: (Sample | HistogramSample | SummarySample)[];
  }

  /** The families of the text, in their order; values stay strings, as written. */
  export default function parsePrometheusTextFormat(text: string): MetricFamily[];
}
