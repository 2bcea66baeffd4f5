/** Workspace-relative paths as the runner names them: "" is the root, "/" separates. */
export const parentOf = (p: string) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");
export const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1);
export const joinPath = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);
