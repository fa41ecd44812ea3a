// Bundles the browser assets into static/build/ (served by whitenoise). One script per page,
// so each page has one copy of the shared modules (frontend/lib/) and one /ws/market/ socket:
//   app.js      every page (templates/base.html)
//   market.js   the markets overview, /markets/
//   trade.js    one spot market, /markets/<SYMBOL>/: chart, book, trades and the trading desk
//   options.js  the option chain and the USDT-mode ticket, /options/
//   account.js  the account page's Limits panel, /account/
//   portfolio.js the Portfolio page, /portfolio/ (and its portfolio.css)
//   alerts.js   the price alerts page, /alerts/
//   style.css   the site's styles and the Inter font
import { build } from "esbuild";
import { mkdirSync } from "node:fs";

const outdir = "static/build";
mkdirSync(outdir, { recursive: true });

await build({
  entryPoints: {
    app: "frontend/app.js",
    market: "frontend/market.js",
    trade: "frontend/trade.js",
    options: "frontend/options.js",
    account: "frontend/account.js",
    portfolio: "frontend/portfolio.js",
    alerts: "frontend/alerts.js",
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
