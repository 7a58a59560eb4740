// Copies the web console into dist/console/ (run by `npm run build:ts`): its page, scripts and
// styles from src/console/, and the chart library uPlot from node_modules (a devDependency,
// bundled here so that the package serves every asset itself and needs no CDN). The control
// plane serves exactly the files listed in src/console.ts.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'dist', 'console');
const uplot = dirname(createRequire(import.meta.url).resolve('uplot/package.json'));

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const file of readdirSync(join(root, 'src', 'console'))) copyFileSync(join(root, 'src', 'console', file), join(out, file));
copyFileSync(join(uplot, 'dist', 'uPlot.iife.min.js'), join(out, 'uPlot.iife.min.js'));
copyFileSync(join(uplot, 'dist', 'uPlot.min.css'), join(out, 'uPlot.min.css'));
copyFileSync(join(uplot, 'LICENSE'), join(out, 'uPlot.LICENSE'));
