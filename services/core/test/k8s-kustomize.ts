/**
 * A minimal kustomize for tests (no kustomize binary here): renders a kustomization.yaml with
 * `resources` (files and directories with their own kustomization.yaml), `images` (name →
 * newName/newTag) and `patches` of strategic-merge files (maps merge, `null` deletes a key, lists of
 * objects with a `name` merge by name, other lists are replaced, `$patch: delete` removes the
 * object). Anything else in a kustomization is an error, so the manifests stay within what this
 * renders the same way kustomize does.
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

export function render(dir: string): Obj[] {
  const k = loadDocs(join(dir, "kustomization.yaml"))[0];
  const allowed = new Set(["apiVersion", "kind", "resources", "images", "patches"]);
  for (const key of Object.keys(k))
    if (!allowed.has(key)) throw new Error(`${dir}/kustomization.yaml: "${key}" is not supported by this renderer`);
  if (k.apiVersion !== "kustomize.config.k8s.io/v1beta1" || k.kind !== "Kustomization")
    throw new Error(`${dir}/kustomization.yaml: not a kustomize.config.k8s.io/v1beta1 Kustomization`);
  let objects: Obj[] = [];
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    objects.push(...(statSync(path).isDirectory() ? render(path) : loadDocs(path)));
  }
  for (const img of k.images ?? []) {
    let used = false;
    for (const spec of objects.flatMap(podSpecs))
      for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
        const name = String(c.image).replace(/[@:][^/]*$/, "");
        if (name !== img.name) continue;
        used = true;
        c.image = `${img.newName ?? name}:${img.newTag ?? "latest"}`;
      }
    if (!used) throw new Error(`${dir}: image ${img.name} is not used by any container`);
  }
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
  const ids = objects.map(idOf);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw new Error(`${dir}: ${dup} is defined twice`);
  return objects;
}
