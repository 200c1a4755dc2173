// Drives the gallery in Debian's Chromium through tests/ui/host.ts; writes report.json for the pytest side to check.
// Usage: node driver.cjs <mcp url> <artifacts dir> <chromium path>  (NODE_PATH: the two cached node_modules)
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const esbuild = require("esbuild");
const { chromium } = require("playwright-core");
const { Client, StreamableHTTPClientTransport } = require("@modelcontextprotocol/client");

const [mcpUrl, artifacts, chromiumPath] = process.argv.slice(2);
const APP_MIME = "text/html;profile=mcp-app";
const report = { calls: [], callResults: [], console: [], steps: {} };

function serve(routes) {
  const server = http.createServer((req, res) => {
    const route = routes[new URL(req.url, "http://x").pathname];
    if (!route) return res.writeHead(404).end();
    res.writeHead(200, route.headers).end(route.body);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}
const origin = (server) => `http://127.0.0.1:${server.address().port}`;

// The sandbox CSP a host derives from the resource's declared `_meta.ui.csp` (ext-apps spec), nothing added.
function cspHeader(csp) {
  const res = (csp.resourceDomains || []).join(" ");
  const connect = (csp.connectDomains || []).join(" ") || "'none'";
  return [
    "default-src 'none'",
    `script-src 'unsafe-inline' ${res}`,
    `style-src 'unsafe-inline' ${res}`,
    `img-src data: blob: ${res}`,
    `font-src data: ${res}`,
    `media-src data: ${res}`,
    `connect-src ${connect}`,
    "frame-src 'none'",
    "base-uri 'none'",
  ].join("; ");
}

async function imagesShown(frame, exclude) {
  await frame.waitForFunction(
    (old) => {
      const imgs = [...document.querySelectorAll("#images img")];
      return imgs.length > 0 && imgs.every((i) => !old.includes(i.dataset.id) && i.complete && i.naturalWidth > 0);
    },
    exclude,
    { timeout: 20000 },
  );
  return frame.evaluate(() =>
    [...document.querySelectorAll("#images img")].map((i) => ({ id: i.dataset.id, src: i.src, naturalWidth: i.naturalWidth })),
  );
}

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  const client = new Client(
    { name: "imagegen-test-host", version: "1.0.0" },
    { capabilities: { extensions: { "io.modelcontextprotocol/ui": { mimeTypes: [APP_MIME] } } } },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl)));
  const tool = (await client.listTools()).tools.find((t) => t.name === "generate_image");
  const uri = tool._meta.ui.resourceUri;
  const [content] = (await client.readResource({ uri })).contents;
  report.resource = { uri, mimeType: content.mimeType, meta: content._meta };
  const args = { prompt: "a lighthouse at dusk, two takes", n: 2, aspect_ratio: "16:9" };
  const result = await client.callTool({ name: "generate_image", arguments: args });
  report.initial = result.structuredContent;

  const decoy = Buffer.from(await (await fetch(result.structuredContent.images[0].url)).arrayBuffer());
  const built = await esbuild.build({
    entryPoints: [path.join(__dirname, "host.ts")],
    bundle: true,
    format: "esm",
    write: false,
    nodePaths: process.env.NODE_PATH.split(path.delimiter),
    logLevel: "warning",
  });
  const html = { "content-type": "text/html; charset=utf-8" };
  // The app on its own origin (as hosts' sandbox domains are), with the CSP built from what it declared.
  const appServer = await serve({
    "/app.html": { headers: { ...html, "content-security-policy": cspHeader(content._meta.ui.csp) }, body: content.text },
  });
  const appUrl = `${origin(appServer)}/app.html`;
  const data = { appUrl, csp: content._meta.ui.csp, arguments: args, result };
  const hostServer = await serve({
    "/": { headers: html, body: fs.readFileSync(path.join(__dirname, "host.html")) },
    "/host.js": { headers: { "content-type": "text/javascript" }, body: built.outputFiles[0].text },
    "/data.json": { headers: { "content-type": "application/json" }, body: JSON.stringify(data) },
    "/decoy.png": { headers: { "content-type": "image/png" }, body: decoy },
  });
  const decoyUrl = `${origin(hostServer)}/decoy.png`; // a real image, on an origin the app did not declare

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport: { width: 960, height: 760 } });
  try {
    page.on("console", (m) => report.console.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => report.console.push(`pageerror: ${e}`));
    page.on("requestfailed", (r) => report.console.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
    page.on("response", (r) => r.status() >= 400 && report.console.push(`http ${r.status()}: ${r.url()}`));
    await page.exposeFunction("hostCallTool", async (params) => {
      report.calls.push(params);
      const answer = await client.callTool(params);
      report.callResults.push(answer.structuredContent);
      return answer;
    });
    await page.goto(`${origin(hostServer)}/`);
    await page.waitForFunction(() => window.hostEvents?.some((e) => e.kind === "delivered"), null, { timeout: 30000 });
    const frame = await (await page.$("iframe")).contentFrame();
    // The host resizes the iframe to the app's size: click only once the layout has settled.
    const settled = () => page.waitForFunction(() => performance.now() - window.lastResize > 500, null, { timeout: 10000 });
    const hostEvent = (kind) => page.waitForFunction((k) => window.hostEvents.some((e) => e.kind === k), kind, { timeout: 10000 });
    report.steps.initial = await imagesShown(frame, []);
    report.steps.meta = await frame.textContent("#meta");
    await settled();
    await page.locator("#frame").screenshot({ path: path.join(artifacts, "gallery.png") });

    await frame.click("#variations");
    report.steps.variations = await imagesShown(frame, report.steps.initial.map((i) => i.id));
    await page.screenshot({ path: path.join(artifacts, "gallery-variations.png") });

    const shownIds = report.steps.variations.map((i) => i.id);
    await settled();
    await frame.fill("figure:first-of-type input", "invert the colours");
    await frame.click("figure:first-of-type button[data-action=edit]");
    report.steps.edit = await imagesShown(frame, shownIds);
    await page.screenshot({ path: path.join(artifacts, "gallery-edit.png") });

    await settled();
    await frame.click("figure:first-of-type button[data-action=pick]");
    await hostEvent("ui/message");
    await frame.click("figure:first-of-type button[data-action=download]");
    await hostEvent("ui/download-file");
    report.steps.note = await frame.textContent("#note");

    report.steps.decoyOnHost = await page.evaluate(async (url) => {
      const img = new Image();
      await new Promise((done) => { img.onload = img.onerror = done; img.src = url; });
      return img.naturalWidth;
    }, decoyUrl);
    report.steps.csp = await frame.evaluate(async (url) => {
      const violations = [];
      document.addEventListener("securitypolicyviolation", (e) =>
        violations.push({ blockedURI: e.blockedURI, directive: e.effectiveDirective }));
      const img = new Image();
      const outcome = await new Promise((done) => {
        img.onload = () => done("loaded");
        img.onerror = () => done("blocked");
        img.src = url;
      });
      await new Promise((done) => setTimeout(done, 300));
      return { outcome, naturalWidth: img.naturalWidth, violations };
    }, decoyUrl);
    report.decoyUrl = decoyUrl;

    // A result whose link no longer verifies (as after its TTL): the app re-signs it with the app-only tool.
    const stale = JSON.parse(JSON.stringify(result));
    stale.structuredContent.images[0].url = stale.structuredContent.images[0].url.replace("sig=", "sig=0");
    report.staleUrl = stale.structuredContent.images[0].url;
    await page.evaluate((r) => window.bridge.sendToolResult(r), stale);
    report.steps.refreshed = await imagesShown(frame, report.steps.edit.map((i) => i.id));
    report.appOrigin = origin(appServer);
  } catch (err) {
    await page.screenshot({ path: path.join(artifacts, "failure.png") }).catch(() => {});
    throw err;
  } finally {
    report.hostEvents = await page.evaluate(() => window.hostEvents).catch(() => null);
    await browser.close();
    appServer.close();
    hostServer.close();
    await client.close();
  }
}

main()
  .catch((err) => {
    report.error = String(err && err.stack ? err.stack : err);
    process.exitCode = 1;
  })
  .finally(() => fs.writeFileSync(path.join(artifacts, "report.json"), JSON.stringify(report, null, 2)));
