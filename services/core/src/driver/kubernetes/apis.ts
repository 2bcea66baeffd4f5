/**
 * The Kubernetes API clients the driver uses, built from a KubeConfig that the caller supplies
 * (main.ts loads the in-cluster or default config; tests point one at the fake API server).
 */
import {
  AppsV1Api,
  type ConfigurationOptions,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  NetworkingV1Api,
  Observable,
  VersionApi,
} from "@kubernetes/client-node";

export interface KubernetesApis {
  core: CoreV1Api;
  apps: AppsV1Api;
  networking: NetworkingV1Api;
  custom: CustomObjectsApi;
  version: VersionApi;
}

export function kubernetesApis(kc: KubeConfig): KubernetesApis {
  return {
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    networking: kc.makeApiClient(NetworkingV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    version: kc.makeApiClient(VersionApi),
  };
}

/** Per-call options that make the request honour `signal` (client-node 1.x has no signal parameter). */
export function withSignal(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (res) => new Observable(Promise.resolve(res)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
}
