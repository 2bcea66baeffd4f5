/** Clients for the logged-in user, through the one client layer (lib/client). */
import type { CoreClients } from "../../lib/client/clients.js";
import { coreClientsFor } from "../../lib/client/node.js";
import { type Env, type Login, loadLogin } from "./config.js";

export interface Session {
  login: Login;
  core: CoreClients;
}

export async function openSession(env: Env): Promise<Session> {
  const login = await loadLogin(env);
  return { login, core: coreClientsFor(login.url, { token: login.token }) };
}
