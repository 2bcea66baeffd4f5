/**
 * Validates Kubernetes objects the way `kubectl apply --validate=strict` would, without a cluster:
 *
 * 1. kubernetes-models `validate()` — the OpenAPI schemas of Kubernetes 1.x compiled with ajv:
 *    required fields, types, formats, enums. It accepts unknown fields.
 * 2. Unknown fields: the object is walked against the attribute maps of @kubernetes/client-node's
 *    generated models (from the same OpenAPI spec: V1Deployment → V1DeploymentSpec → ...). Any key
 *    not in the map of its type is reported, as the API server's strict field validation would.
 * 3. Custom resources without generated models (Traefik Middleware and IngressRoute, cert-manager
 *    ClusterIssuer and Certificate) are checked against the structural schemas below, written from
 *    their CRDs (traefik v3 middlewares/ingressroutes.traefik.io, cert-manager v1
 *    clusterissuers/certificates.cert-manager.io) and
 *    reduced to the fields Devex uses: a documented minimal check, stricter than the CRDs in that
 *    any field outside that subset is refused as unknown.
 */
import * as k8s from "@kubernetes/client-node";

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form JSON until validated
type Json = any;

interface Attribute {
  baseName: string;
  type: string;
}

function attributes(type: string): Attribute[] | undefined {
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attribute[] }>)[type];
  return model?.getAttributeTypeMap?.();
}

/** Unknown fields of `value` read as client-node model `type` (e.g. "V1Deployment"). */
export function unknownFields(value: Json, type: string, path = ""): string[] {
  if (value === null || value === undefined) return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1], `${path}[${i}]`)) : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map)
    return typeof value === "object"
      ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1], `${path}.${k}`))
      : [];
  const attrs = attributes(type);
  if (!attrs || typeof value !== "object" || Array.isArray(value)) return []; // primitives, any, IntOrString
  const byName = new Map(attrs.map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const t = byName.get(k);
    const at = path ? `${path}.${k}` : k;
    return t === undefined ? [`${at}: unknown field "${k}"`] : unknownFields(v, t, at);
  });
}

/** The client-node model name of a built-in kind: apps/v1 Deployment → V1Deployment. */
export function modelName(apiVersion: string, kind: string): string {
  const version = apiVersion.split("/").pop() ?? "";
  return `${version[0].toUpperCase()}${version.slice(1)}${kind}`;
}

async function modelsValidate(obj: Json): Promise<string[] | undefined> {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const path = `kubernetes-models/${group ? `${group}/${version}` : version}/${obj.kind}`;
  let mod: Record<string, new (o: Json) => { validate(): void }>;
  try {
    mod = await import(path);
  } catch {
    return undefined; // not a built-in kind
  }
  try {
    new mod[obj.kind](obj).validate();
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

// ---- custom resources ------------------------------------------------------------------------

/** A structural schema (the subset of OpenAPI v3 that CRDs use). */
export interface Structural {
  type: "object" | "array" | "string" | "integer" | "boolean";
  properties?: Record<string, Structural>;
  required?: string[];
  items?: Structural;
  /** Free-form map values (additionalProperties). */
  additionalProperties?: Structural;
  enum?: string[];
  /** x-kubernetes-preserve-unknown-fields. */
  preserveUnknown?: boolean;
}

const str: Structural = { type: "string" };
const strings: Structural = { type: "array", items: str };
const objectMeta: Structural = { type: "object", preserveUnknown: true }; // checked as V1ObjectMeta below

/** A traefik.io/v1alpha1 object of `kind` with `spec`. */
const traefikObject = (kind: string, spec: Structural): Structural => ({
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: {
    apiVersion: { type: "string", enum: ["traefik.io/v1alpha1"] },
    kind: { type: "string", enum: [kind] },
    metadata: objectMeta,
    spec,
  },
});

/** traefik.io/v1alpha1 Middleware (CRD middlewares.traefik.io), the parts Devex uses. */
const traefikMiddleware = traefikObject("Middleware", {
  type: "object",
  properties: {
    stripPrefix: { type: "object", properties: { prefixes: strings, forceSlash: { type: "boolean" } } },
    headers: {
      type: "object",
      properties: {
        customRequestHeaders: { type: "object", additionalProperties: str },
        customResponseHeaders: { type: "object", additionalProperties: str },
        stsSeconds: { type: "integer" },
        stsIncludeSubdomains: { type: "boolean" },
        frameDeny: { type: "boolean" },
        contentTypeNosniff: { type: "boolean" },
        browserXssFilter: { type: "boolean" },
        referrerPolicy: str,
      },
    },
    redirectScheme: {
      type: "object",
      properties: { scheme: str, permanent: { type: "boolean" }, port: str },
    },
  },
});

/** traefik.io/v1alpha1 IngressRoute (CRD ingressroutes.traefik.io), the parts Devex uses. */
const traefikIngressRoute = traefikObject("IngressRoute", {
  type: "object",
  required: ["routes"],
  properties: {
    entryPoints: strings,
    routes: {
      type: "array",
      items: {
        type: "object",
        required: ["kind", "match"],
        properties: {
          kind: { type: "string", enum: ["Rule"] },
          match: str,
          priority: { type: "integer" },
          middlewares: {
            type: "array",
            items: { type: "object", required: ["name"], properties: { name: str, namespace: str } },
          },
          services: {
            type: "array",
            items: {
              type: "object",
              required: ["name"],
              properties: {
                name: str,
                namespace: str,
                kind: { type: "string", enum: ["Service", "TraefikService"] },
                port: str,
                scheme: { type: "string", enum: ["http", "https", "h2c"] },
              },
            },
          },
        },
      },
    },
    tls: { type: "object", properties: { secretName: str } },
  },
});

const acmeSolver: Structural = {
  type: "object",
  properties: {
    http01: {
      type: "object",
      properties: {
        ingress: { type: "object", properties: { ingressClassName: str, class: str, name: str } },
      },
    },
    selector: { type: "object", properties: { dnsZones: strings, dnsNames: strings } },
  },
};

/** cert-manager.io/v1 ClusterIssuer (CRD clusterissuers.cert-manager.io), ACME and self-signed. */
const clusterIssuer: Structural = {
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: {
    apiVersion: { type: "string", enum: ["cert-manager.io/v1"] },
    kind: { type: "string", enum: ["ClusterIssuer", "Issuer"] },
    metadata: objectMeta,
    spec: {
      type: "object",
      properties: {
        selfSigned: { type: "object", properties: { crlDistributionPoints: strings } },
        acme: {
          type: "object",
          required: ["server", "privateKeySecretRef"],
          properties: {
            server: str,
            email: str,
            skipTLSVerify: { type: "boolean" },
            privateKeySecretRef: { type: "object", required: ["name"], properties: { name: str, key: str } },
            solvers: { type: "array", items: acmeSolver },
          },
        },
      },
    },
  },
};

/** cert-manager.io/v1 Certificate (CRD certificates.cert-manager.io), the fields Devex uses. */
const certificate: Structural = {
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: {
    apiVersion: { type: "string", enum: ["cert-manager.io/v1"] },
    kind: { type: "string", enum: ["Certificate"] },
    metadata: objectMeta,
    spec: {
      type: "object",
      required: ["secretName", "issuerRef"],
      properties: {
        secretName: str,
        dnsNames: strings,
        commonName: str,
        duration: str,
        renewBefore: str,
        issuerRef: { type: "object", required: ["name"], properties: { name: str, kind: str, group: str } },
      },
    },
  },
};

const customResources: Record<string, Structural> = {
  "cert-manager.io/v1/Certificate": certificate,
  "traefik.io/v1alpha1/Middleware": traefikMiddleware,
  "traefik.io/v1alpha1/IngressRoute": traefikIngressRoute,
  "cert-manager.io/v1/ClusterIssuer": clusterIssuer,
  "cert-manager.io/v1/Issuer": clusterIssuer,
};

export function checkStructural(value: Json, schema: Structural, path = ""): string[] {
  const at = path || "<root>";
  if (value === undefined) return [];
  const actual = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  const expected = schema.type === "integer" ? "number" : schema.type;
  if (actual !== expected || (schema.type === "integer" && !Number.isInteger(value)))
    return [`${at}: must be ${schema.type}, not ${actual}`];
  if (schema.enum && !schema.enum.includes(value)) return [`${at}: must be one of ${schema.enum.join(", ")}`];
  if (schema.type === "array")
    return value.flatMap((v: Json, i: number) => checkStructural(v, schema.items!, `${path}[${i}]`));
  if (schema.type !== "object" || schema.preserveUnknown) return [];
  const errors = (schema.required ?? []).filter((r) => value[r] === undefined).map((r) => `${at}: "${r}" is required`);
  for (const [k, v] of Object.entries(value)) {
    const sub = schema.properties?.[k] ?? schema.additionalProperties;
    const p = path ? `${path}.${k}` : k;
    if (!sub) errors.push(`${p}: unknown field "${k}"`);
    else errors.push(...checkStructural(v, sub, p));
  }
  return errors;
}

/** All problems of one object: [] when it would be accepted with strict field validation. */
export async function validateObject(obj: Json): Promise<string[]> {
  if (!obj || typeof obj !== "object" || typeof obj.apiVersion !== "string" || typeof obj.kind !== "string")
    return ["not a Kubernetes object (apiVersion and kind are required)"];
  const custom = customResources[`${obj.apiVersion}/${obj.kind}`];
  if (custom)
    return [
      ...checkStructural(obj, custom),
      ...unknownFields(obj.metadata, "V1ObjectMeta", "metadata"),
      ...(typeof obj.metadata?.name === "string" ? [] : ["metadata.name: is required"]),
    ];
  const schemaErrors = await modelsValidate(obj);
  if (schemaErrors === undefined) return [`${obj.apiVersion} ${obj.kind}: no schema known for this kind`];
  return [...schemaErrors, ...unknownFields(obj, modelName(obj.apiVersion, obj.kind))];
}

/** Synchronous variant for the fake API server (built-in kinds preloaded by `preloadModels`). */
const loaded = new Map<string, new (o: Json) => { validate(): void }>();

export async function preloadModels(kinds: { apiVersion: string; kind: string }[]): Promise<void> {
  for (const { apiVersion, kind } of kinds) {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    const mod = await import(`kubernetes-models/${group ? `${group}/${version}` : version}/${kind}`);
    loaded.set(`${apiVersion}/${kind}`, mod[kind]);
  }
}

export function validateObjectSync(obj: Json): string[] {
  const custom = customResources[`${obj.apiVersion}/${obj.kind}`];
  if (custom) return [...checkStructural(obj, custom), ...unknownFields(obj.metadata, "V1ObjectMeta", "metadata")];
  const Model = loaded.get(`${obj.apiVersion}/${obj.kind}`);
  if (!Model) return [`${obj.apiVersion} ${obj.kind}: not preloaded`];
  const errors: string[] = [];
  try {
    new Model(obj).validate();
  } catch (e) {
    errors.push((e as Error).message);
  }
  return [...errors, ...unknownFields(obj, modelName(obj.apiVersion, obj.kind))];
}
