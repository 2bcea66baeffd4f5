/**
 * A container's environment as the kubelet builds it, for the test runtimes that run the Kubernetes
 * driver's pods: the fake API server's kubelet (services/core/test/fake-kube-api.ts), the real API
 * server's stand-in (k8s-real-kubelet.ts) and Podman (podman-pod.ts).
 */
import type { V1Container } from "@kubernetes/client-node";

/**
 * envFrom Secrets, then env in order (plain values with $(NAME) references expanded, secretKeyRef
 * values), or the name of a missing Secret. `secretData` gives a Secret's data (base64 values),
 * undefined when the Secret does not exist. What the driver never uses (ConfigMaps, fieldRef,
 * resourceFieldRef) throws rather than quietly becoming "".
 */
export function containerEnv(
  c: V1Container,
  secretData: (name: string) => Record<string, string> | undefined,
): Record<string, string> | { missing: string } {
  const out: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (!from.secretRef) throw new Error(`${c.name}: envFrom other than secretRef is not modelled`);
    const data = secretData(from.secretRef.name ?? "");
    if (!data) return { missing: from.secretRef.name ?? "" };
    for (const [k, v] of Object.entries(data)) out[k] = Buffer.from(String(v), "base64").toString();
  }
  // $(NAME) is an earlier variable's value, $$ a literal $; unknown references stay as written.
  const expand = (v: string) =>
    v.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string) => (m === "$$" ? "$" : (out[name] ?? m)));
  for (const e of c.env ?? []) {
    if (e.valueFrom && !e.valueFrom.secretKeyRef)
      throw new Error(`${c.name}: env ${e.name}: only secretKeyRef is modelled`);
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref) out[e.name] = expand(e.value ?? "");
    else {
      const v = secretData(ref.name ?? "")?.[ref.key];
      if (v === undefined) return { missing: ref.name ?? "" };
      out[e.name] = Buffer.from(v, "base64").toString();
    }
  }
  return out;
}

/** The names of the Secrets a container's env and envFrom read. */
export function secretsOf(c: V1Container): string[] {
  const names = [
    ...(c.envFrom ?? []).map((f) => f.secretRef?.name),
    ...(c.env ?? []).map((e) => e.valueFrom?.secretKeyRef?.name),
  ];
  return [...new Set(names.filter((n): n is string => !!n))];
}
