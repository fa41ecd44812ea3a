// Bundles the browser assets into static/build/ (served by whitenoise).
import { build } from "esbuild";
import { mkdirSync } from "node:fs";

const outdir = "static/build";
mkdirSync(outdir, { recursive: true });

await build({
  entryPoints: {
    app: "frontend/app.js",
    market: "frontend/market.js",
    options: "frontend/options.js",
    trade: "frontend/trade.js",
    style: "frontend/app.css",
  },
  bundle: true,
  minify: true,
  sourcemap: true,
  target: ["es2020"],
  outdir,
  loader: { ".woff2": "file", ".woff": "file" },
  assetNames: "fonts/[name]-[hash]",
  logLevel: "info",
});
