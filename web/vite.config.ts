/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// The api listens on 127.0.0.1:8000 under `make up`; ETP_API_URL points the dev server elsewhere.
const apiTarget = process.env.ETP_API_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  // No React plugin: the built-in transform handles TSX with the automatic JSX runtime.
  oxc: { jsx: { runtime: "automatic" } },
  server: {
    host: "127.0.0.1",
    port: 5173,
    proxy: {
      "/api": {
        target: apiTarget,
        ws: true,
        // The api refuses unsafe requests from origins it does not serve; to it, the dev
        // server's requests come from its own origin (cookies are per host, not per port).
        configure: (proxy) => {
          proxy.on("proxyReq", (request) => {
            if (request.getHeader("origin")) request.setHeader("origin", apiTarget);
          });
        },
      },
      "/healthz": { target: apiTarget },
      "/readyz": { target: apiTarget },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 600,
    rolldownOptions: {
      onwarn(warning, warn) {
        // React Query's "use client" markers mean nothing to a client-only bundle.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
  },
});
