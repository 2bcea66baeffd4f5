/**
 * The egress proxy as infra/k8s deploys it fits core's settings, in each overlay: core's proxy URL
 * names its Service and port, its pods carry the labels and namespace the repls' NetworkPolicies
 * allow, core and the proxy read the credential secret from the same Secret key, and the proxy's
 * configuration (core's ConfigMap plus its secrets) is valid and denies exactly the ranges core's
 * NetworkPolicies deny. (The manifests themselves are validated by services/core/test/k8s-infra.test.ts.)
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CoreConfig, coreConfigSchema } from "../../core/src/config.js";
import { kubernetesDeniedCidrs } from "../../core/src/driver/kubernetes/config.js";
import { EGRESS_PROXY_LABELS } from "../../core/src/driver/kubernetes/egress-policy.js";
import { type Obj, render } from "../../core/test/k8s-kustomize.js";
import { deniedCidrs, egressConfigSchema } from "../src/config.js";

const infra = fileURLToPath(new URL("../../../infra/k8s", import.meta.url));
const EGRESS_SECRET = "infra-test-egress-secret-0123456789abcdef";

describe("infra/k8s: the egress proxy fits core's settings", () => {
  for (const overlay of ["kind", "production", "production-redis-replicated"])
    it(`overlay ${overlay}`, () => {
      const objects = render(join(infra, "overlays", overlay));
      const config = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "devex-core")!.data;
      const core = coreConfigSchema.parse({
        ...config,
        REDIS_URL: "redis://:secret@redis.devex.svc:6379/0",
        DEVEX_COOKIE_SECRET: "0123456789abcdef0123",
        DEVEX_S3_ACCESS_KEY_ID: "key",
        DEVEX_S3_SECRET_ACCESS_KEY: "secret",
        DEVEX_K8S_EGRESS_SECRET: EGRESS_SECRET,
      });
      const coreContainer = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "devex-core")!.spec
        .template.spec.containers[0];
      checkEgressProxy(objects, core, coreContainer);
      const image = objects.find((o) => o.metadata.name === "devex-egress" && o.kind === "Deployment")!.spec.template
        .spec.containers[0].image;
      assert.match(
        image,
        overlay === "kind" ? /^ghcr\.io\/devex\/egress:dev$/ : /^ghcr\.io\/devex\/egress:0\.1\.0@sha256:[0-9a-f]{64}$/,
      );
    });
});

function checkEgressProxy(objects: Obj[], coreConfig: CoreConfig, coreContainer: Obj) {
  const byKind = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name)!;
  const deployment = byKind("Deployment", "devex-egress");
  const service = byKind("Service", "devex-egress");
  const url = new URL(coreConfig.DEVEX_K8S_EGRESS_PROXY_URL!);
  assert.equal(url.hostname, `${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`);
  assert.equal(service.spec.ports[0].port, Number(url.port));
  assert.deepEqual(service.spec.selector, EGRESS_PROXY_LABELS);
  assert.equal(deployment.metadata.namespace, coreConfig.DEVEX_K8S_EGRESS_PROXY_NAMESPACE);
  const pod = deployment.spec.template;
  for (const [k, v] of Object.entries(EGRESS_PROXY_LABELS)) assert.equal(pod.metadata.labels[k], v);
  const container = pod.spec.containers[0];
  const secretOf = (c: Obj, name: string) => c.env.find((e: Obj) => e.name === name)?.valueFrom?.secretKeyRef;
  assert.deepEqual(secretOf(container, "DEVEX_EGRESS_SECRET"), { name: "devex-egress", key: "secret" });
  assert.deepEqual(secretOf(coreContainer, "DEVEX_K8S_EGRESS_SECRET"), { name: "devex-egress", key: "secret" });
  assert.deepEqual(container.envFrom, [{ configMapRef: { name: "devex-core" } }], "core's ConfigMap, no secrets");
  const env = Object.fromEntries(container.env.filter((e: Obj) => "value" in e).map((e: Obj) => [e.name, e.value]));
  const config = byKind("ConfigMap", "devex-core").data;
  const proxy = egressConfigSchema.safeParse({
    ...config,
    ...env,
    REDIS_URL: "redis://:secret@redis.devex.svc:6379/0",
    DEVEX_EGRESS_SECRET: EGRESS_SECRET,
  });
  assert.ok(proxy.success, JSON.stringify(proxy.error?.issues));
  assert.equal(proxy.data.DEVEX_EGRESS_PORT, Number(url.port));
  assert.equal(proxy.data.DEVEX_EGRESS_DEFAULT, coreConfig.DEVEX_EGRESS_DEFAULT);
  assert.deepEqual(deniedCidrs(proxy.data), kubernetesDeniedCidrs(coreConfig));
}
