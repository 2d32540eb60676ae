// `npm run build:sdk`: the SDK package (client/sdk) as ESM plus type declarations.
// JavaScript: one esbuild pass over the entries (`.`, `./stories`, `./react`) with the dependencies left as imports;
// the protocol's plain values (worker/protocol/wire.ts, story-wire.ts) are bundled in, its types
// are erased, so no server code and no schema library reach the package. Declarations: tsc.
// `--sizes` also prints what a browser app pays for the SDK (minified, gzipped, with partysocket).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const sdk = `${root}client/sdk`;
const external = [
  'partysocket',
  'partysocket/*',
  'yjs',
  'y-protocols',
  'y-protocols/*',
  'lib0',
  'lib0/*',
  'react',
];

rmSync(`${sdk}/dist`, { recursive: true, force: true });
await build({
  entryPoints: { index: `${sdk}/index.ts`, stories: `${sdk}/stories.ts`, react: `${sdk}/react.ts` },
  outdir: `${sdk}/dist`,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  external,
  sourcemap: true,
  logLevel: 'warning',
});
const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
execFileSync(process.execPath, [tsc, '-p', `${sdk}/tsconfig.build.json`], { stdio: 'inherit' });

if (process.argv.includes('--sizes')) {
  // What a browser app that imports the client (and not the stories' Yjs editor) ships.
  const bundle = async (contents) => {
    const out = await build({
      stdin: { contents, resolveDir: sdk, loader: 'ts' },
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      metafile: true,
      logLevel: 'warning',
    });
    const code = out.outputFiles[0].contents;
    return { min: code.byteLength, gzip: gzipSync(code).byteLength };
  };
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  for (const [name, contents] of [
    ['WavecastClient (+ partysocket)', "export { WavecastClient } from './index';"],
    [
      'everything, with the stories entry (Yjs)',
      "export * from './index'; export * from './stories';",
    ],
  ]) {
    const size = await bundle(contents);
    console.log(`${name}: ${kb(size.min)} minified, ${kb(size.gzip)} gzipped`);
  }
}
