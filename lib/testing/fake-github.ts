/**
 * A stand-in for github.com in tests (nothing real can be signed in to here): the three OAuth
 * endpoints core's sign-in uses (authorize, access_token, /user), /user/repos and
 * /repos/{owner}/{name} (with the user's permissions: push on every listed one), shaped as
 * GitHub's REST API answers them. Mount it on the test git server (git-server.ts `other`), so one
 * loopback origin is both GitHub's web and git host (DEVEX_GITHUB_URL) and, under /api, its API
 * (DEVEX_GITHUB_API_URL). `signInWithGitHub` is a browser's round trip through core's sign-in.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface FakeGitHubRepository {
  full_name: string;
  clone_url: string;
  private: boolean;
  default_branch: string;
  description: string | null;
  pushed_at: string | null;
}

export interface FakeGitHub {
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** The access token it hands out, and accepts on /api. */
  accessToken: string;
  /** What /api/user/repos lists (all of it on page 1). */
  repositories: FakeGitHubRepository[];
  /** Scopes core asked for at authorize. */
  scopesAsked: string[];
}

export function fakeGitHub(o: { clientId: string; clientSecret: string; login: string }): FakeGitHub {
  const codes = new Set<string>();
  const fake: FakeGitHub = {
    accessToken: `gho_${Math.random().toString(36).slice(2)}fakeGrant`,
    repositories: [],
    scopesAsked: [],
    handle(req, res) {
      const url = new URL(req.url ?? "/", "http://github.test");
      const json = (status: number, body: unknown) =>
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      if (req.method === "GET" && url.pathname === "/login/oauth/authorize") {
        fake.scopesAsked.push(url.searchParams.get("scope") ?? "");
        const code = `code${codes.size}-${Date.now()}`;
        codes.add(code);
        const back = new URL(url.searchParams.get("redirect_uri") ?? "");
        back.searchParams.set("code", code);
        back.searchParams.set("state", url.searchParams.get("state") ?? "");
        res.writeHead(302, { location: back.toString() }).end();
        return true;
      }
      if (req.method === "POST" && url.pathname === "/login/oauth/access_token") {
        let body = "";
        req.on("data", (c) => {
          body += c;
        });
        req.on("end", () => {
          const form = new URLSearchParams(body);
          const ok =
            form.get("client_id") === o.clientId &&
            form.get("client_secret") === o.clientSecret &&
            codes.delete(form.get("code") ?? "");
          json(
            200,
            ok
              ? { access_token: fake.accessToken, token_type: "bearer", scope: "repo" }
              : { error: "bad_verification_code" },
          );
        });
        return true;
      }
      if (url.pathname.startsWith("/api/")) {
        if (req.headers.authorization !== `Bearer ${fake.accessToken}`) json(401, { message: "Bad credentials" });
        else if (url.pathname === "/api/user") json(200, { login: o.login, name: o.login, avatar_url: "" });
        else if (url.pathname === "/api/user/repos")
          json(200, url.searchParams.get("page") === "1" ? fake.repositories : []);
        else if (url.pathname.startsWith("/api/repos/")) {
          const r = fake.repositories.find((x) => `/api/repos/${x.full_name}` === url.pathname);
          if (r) json(200, { ...r, permissions: { pull: true, push: true, admin: false } });
          else json(404, { message: "Not Found" });
        } else json(404, { message: "Not Found" });
        return true;
      }
      return false;
    },
  };
  return fake;
}

/** Signs in to core with GitHub as a browser would, following redirects; returns core's session cookie. */
export async function signInWithGitHub(coreUrl: string): Promise<string> {
  const cookies = new Map<string, string>();
  let url = `${coreUrl}/auth/login`;
  for (let hop = 0; hop < 10; hop++) {
    const sameOrigin = url.startsWith(coreUrl);
    const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await fetch(url, { redirect: "manual", headers: sameOrigin && cookie ? { cookie } : {} });
    if (sameOrigin) {
      for (const sc of res.headers.getSetCookie()) {
        const [pair] = sc.split(";");
        const at = pair.indexOf("=");
        cookies.set(pair.slice(0, at), pair.slice(at + 1));
      }
    }
    const next = res.headers.get("location");
    if (res.status < 300 || res.status >= 400 || !next) break;
    url = new URL(next, url).toString();
  }
  const session = cookies.get("devex_session");
  if (!session) throw new Error("the GitHub sign-in opened no session");
  return session;
}
