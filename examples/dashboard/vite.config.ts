import react from '@vitejs/plugin-react';
import { defaultClientConditions, defineConfig } from 'vite';

/** Where `vite dev` proxies the API (a Pulse server started with `npm run server`). */
const pulseTarget = process.env.PULSE_DEV_TARGET ?? 'http://127.0.0.1:3001';

const proxy = {
  '/trpc': { target: pulseTarget, ws: true, changeOrigin: true },
  '/demo': { target: pulseTarget, changeOrigin: true },
  '/realtime': { target: pulseTarget, changeOrigin: true },
};

export default defineConfig({
  plugins: [react()],
  // NOTE: workspace packages resolve to their `src/` (the `source` export condition), so the app
  // builds without building @pulse/* first and always runs the code in this checkout.
  resolve: { conditions: ['source', ...defaultClientConditions] },
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  server: { proxy },
  preview: { proxy },
});
