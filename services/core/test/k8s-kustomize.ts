/**
 * A minimal kustomize for tests (they need no kustomize binary): renders a kustomization.yaml with
 * `resources` (files and directories with their own kustomization.yaml), `components` (directories
 * holding a kustomize.config.k8s.io/v1alpha1 Component: its resources join the ones accumulated so
 * far and its patches and images apply to all of them), `patches` of strategic-merge files (maps
 * merge, `null` deletes a key, lists of objects with a `name` merge by name, new items appended
 * where kustomize puts them first, other lists are replaced, `$patch: delete` removes the object)
 * and then `images` (name → newName, newTag and/or digest, as kustomize's image transformer does),
 * in kustomize's order. Anything else in a kustomization is an error, so the manifests stay within
 * what this renders the same way kustomize does (k8s-infra.test.ts compares with `kubectl
 * kustomize` where it is installed).
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import yaml from "js-yaml";

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form until validated
export type Obj = Record<string, any>;

export function loadDocs(file: string): Obj[] {
  return (yaml.loadAll(readFileSync(file, "utf8")) as Obj[]).filter((d) => d && typeof d === "object");
}

const idOf = (o: Obj) => `${o.apiVersion}/${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;

function merge(target: unknown, patch: unknown): unknown {
  if (Array.isArray(patch)) {
    if (!Array.isArray(target) || !patch.every((p) => p && typeof p === "object" && "name" in p)) return patch;
    const out = [...target] as Obj[];
    for (const p of patch as Obj[]) {
      const i = out.findIndex((o) => o?.name === p.name);
      if (i >= 0) out[i] = merge(out[i], p) as Obj;
      else out.push(p);
    }
    return out;
  }
  if (patch === null || typeof patch !== "object") return patch;
  const out: Obj = target && typeof target === "object" && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = merge(out[k], v);
  }
  return out;
}

function podSpecs(o: Obj): Obj[] {
  if (o.kind === "Pod") return [o.spec];
  const t = o.spec?.template?.spec ?? o.spec?.jobTemplate?.spec?.template?.spec;
  return t ? [t] : [];
}

/** An image reference split as kustomize does: name, tag and digest (either may be absent). */
export function splitImage(ref: string): { name: string; tag?: string; digest?: string } {
  const [rest, digest] = ref.split("@") as [string, string | undefined];
  const colon = rest.lastIndexOf(":");
  return colon > rest.lastIndexOf("/")
    ? { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest }
    : { name: rest, digest };
}

interface ImageEntry {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

/** kustomize's ImageTagTransformer: a new tag or digest replaces both the old tag and digest. */
function retag(ref: string, img: ImageEntry): string {
  let { name, tag, digest } = splitImage(ref);
  if (img.newName) name = img.newName;
  if (img.newTag || img.digest) [tag, digest] = [img.newTag, img.digest];
  return `${name}${tag ? `:${tag}` : ""}${digest ? `@${digest}` : ""}`;
}

const kinds = {
  Kustomization: "kustomize.config.k8s.io/v1beta1",
  Component: "kustomize.config.k8s.io/v1alpha1",
} as const;

export function render(dir: string): Obj[] {
  return build(dir, [], "Kustomization");
}

function build(dir: string, accumulated: Obj[], kind: keyof typeof kinds): Obj[] {
  const k = loadDocs(join(dir, "kustomization.yaml"))[0];
  const allowed = new Set(["apiVersion", "kind", "resources", "components", "images", "patches"]);
  for (const key of Object.keys(k))
    if (!allowed.has(key)) throw new Error(`${dir}/kustomization.yaml: "${key}" is not supported by this renderer`);
  if (k.apiVersion !== kinds[kind] || k.kind !== kind)
    throw new Error(`${dir}/kustomization.yaml: not a ${kinds[kind]} ${kind}`);
  let objects: Obj[] = [...accumulated];
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    objects.push(...(statSync(path).isDirectory() ? render(path) : loadDocs(path)));
  }
  for (const c of k.components ?? []) objects = build(join(dir, c), objects, "Component");
  for (const p of k.patches ?? []) {
    if (!p.path || p.target || p.patch) throw new Error(`${dir}: only patches with a path are supported`);
    for (const doc of loadDocs(join(dir, p.path))) {
      const { $patch, ...patch } = doc;
      const i = objects.findIndex((o) => idOf(o) === idOf(patch));
      if (i < 0) throw new Error(`${dir}/${p.path}: patch target ${idOf(patch)} does not exist`);
      if ($patch === "delete") objects = objects.filter((_, j) => j !== i);
      else objects[i] = merge(objects[i], patch) as Obj;
    }
  }
  for (const img of (k.images ?? []) as ImageEntry[]) {
    let used = false;
    for (const spec of objects.flatMap(podSpecs))
      for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
        if (splitImage(String(c.image)).name !== img.name) continue;
        used = true;
        c.image = retag(c.image, img);
      }
    if (!used) throw new Error(`${dir}: image ${img.name} is not used by any container`);
  }
  const ids = objects.map(idOf);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw new Error(`${dir}: ${dup} is defined twice`);
  return objects;
}
