import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// ENTRY / OUT let the adoption test also build a React-only baseline (to measure what Pulse adds).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: process.env.OUT ?? 'dist',
    rollupOptions: { input: process.env.ENTRY ?? 'index.html' },
  },
});
