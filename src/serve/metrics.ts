// Prometheus metrics of `cifake serve` (prom-client, one registry per server): requests by route and
// status, latency and batch-size histograms, the admission queue's depth, errors by kind.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'cifake_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'] as const, registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'cifake_request_duration_seconds',
    help: 'request latency by route, from arrival to the end of the reply',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({ name: 'cifake_batch_size', help: 'images per native inference call', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'cifake_queue_depth', help: 'requests admitted and not yet answered', registers: [this.registry] });
  readonly errors = new Counter({ name: 'cifake_errors_total', help: 'failed requests by kind', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly rejected = new Counter({ name: 'cifake_rejected_total', help: 'requests refused with 503 because the queue was full', registers: [this.registry] });

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
