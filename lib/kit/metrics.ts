/**
 * Prometheus metrics: one registry per server (no global state), Node's default metrics, and RPC
 * counts, latencies and RPCs in flight by service, method and code. In flight counts a stream until
 * it ends or its client leaves, so a stream that outlives its client shows there.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export interface Metrics {
  registry: Registry;
  interceptor: Interceptor;
}

/** "NotFound" → "not_found", as Prometheus labels usually are. */
function codeLabel(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

export function createMetrics(serviceName: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: serviceName });
  // prom-client samples event-loop delay every 10 ms by default: 100 wakeups a second, ~0.5 % of a
  // CPU for every idle runner (80 % of a core at 150 idle repls). Once a second still shows a stall.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });
  const requests = new Counter({
    name: "devex_rpc_requests_total",
    help: "RPCs handled, by method and result code.",
    labelNames: ["rpc_service", "rpc_method", "code"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "devex_rpc_duration_seconds",
    help: "Time to the response (for streams: to the end of the stream).",
    labelNames: ["rpc_service", "rpc_method"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: "devex_rpc_in_flight",
    help: "RPCs being handled now (streams until they end or their client leaves).",
    labelNames: ["rpc_service", "rpc_method"],
    registers: [registry],
  });

  const interceptor: Interceptor = (next) => async (req) => {
    const labels = { rpc_service: req.service.typeName, rpc_method: req.method.name };
    const end = duration.startTimer(labels);
    inFlight.inc(labels);
    const done = (err?: unknown) => {
      end();
      inFlight.dec(labels);
      const code = err === undefined ? "ok" : codeLabel(ConnectError.from(err).code);
      requests.inc({ ...labels, code });
    };
    try {
      const res = await next(req);
      if (!res.stream) {
        done();
        return res;
      }
      return {
        ...res,
        message: (async function* () {
          let failure: unknown;
          try {
            yield* res.message;
          } catch (e) {
            failure = e;
            throw e;
          } finally {
            done(failure);
          }
        })(),
      };
    } catch (e) {
      done(e);
      throw e;
    }
  };
  return { registry, interceptor };
}
