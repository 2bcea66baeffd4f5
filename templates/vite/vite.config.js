import { defineConfig } from "vite";

// A repl's preview reaches the dev server through Devex's preview proxy, on its own origin: let
// that host in, and keep hot reload's WebSocket on the page's own origin.
export default defineConfig({
  server: { allowedHosts: true },
});
