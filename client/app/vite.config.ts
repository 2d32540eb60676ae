// The reference web app: built into client/app/dist, which the worker serves as static assets
// (wrangler.toml `[assets]`); `/api`, `/ws`, `/health` and `/metrics` still reach the worker.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 800 },
});
