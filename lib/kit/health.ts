/**
 * grpc.health.v1.Health as a Connect service, so Kubernetes gRPC probes, grpc-js clients and
 * `buf curl` all see the same status. "" is the server as a whole.
 */
import { EventEmitter, on } from "node:events";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.js";
import { notFound } from "./errors.js";

export { Status as ServingStatus };

export class HealthRegistry {
  private readonly statuses = new Map<string, Status>([["", Status.SERVING]]);
  private readonly changes = new EventEmitter();

  constructor() {
    this.changes.setMaxListeners(0);
  }

  set(service: string, status: Status): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    this.changes.emit("change", service);
  }

  get(service: string): Status | undefined {
    return this.statuses.get(service);
  }

  /** Marks every service NOT_SERVING, as on shutdown. */
  shutdown(): void {
    for (const service of this.statuses.keys()) this.set(service, Status.NOT_SERVING);
  }

  all(): ReadonlyMap<string, Status> {
    return this.statuses;
  }

  async *watch(service: string, signal: AbortSignal): AsyncGenerator<Status> {
    let last = this.statuses.get(service) ?? Status.SERVICE_UNKNOWN;
    yield last;
    try {
      for await (const [changed] of on(this.changes, "change", { signal })) {
        if (changed !== service) continue;
        const now = this.statuses.get(service) ?? Status.SERVICE_UNKNOWN;
        if (now === last) continue;
        last = now;
        yield now;
      }
    } catch (e) {
      if (!signal.aborted) throw e;
    }
  }
}

export function createHealthService(registry: HealthRegistry): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const status = registry.get(req.service);
      if (status === undefined) throw notFound(`unknown service "${req.service}"`);
      return { status };
    },
    list() {
      const statuses: Record<string, ReturnType<typeof create<typeof HealthCheckResponseSchema>>> = {};
      for (const [name, status] of registry.all()) statuses[name] = create(HealthCheckResponseSchema, { status });
      return { statuses };
    },
    async *watch(req, ctx) {
      for await (const status of registry.watch(req.service, ctx.signal)) yield { status };
    },
  };
}
