// Bundles gallery.ts + gallery.css into one self-contained ../gallery.html (no remote scripts, no external files).
// Usage: node build.mjs <node_modules dir> <output file>. Run through `python3 dev.py ui`.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const [modules, out] = process.argv.slice(2);
if (!modules || !out) throw new Error("usage: node build.mjs <node_modules dir> <output file>");
const esbuild = createRequire(join(modules, "noop.js"))("esbuild");

// The digest of every source file (the lockfile included); tests/unit/test_gallery_build.py recomputes it.
export function sourceDigest(root) {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === "node_modules") continue;
      const path = join(dir, entry.name);
      entry.isDirectory() ? walk(path) : files.push(relative(root, path).split("\\").join("/"));
    }
  };
  walk(root);
  const hash = createHash("sha256");
  for (const name of files.sort()) hash.update(name).update("\0").update(readFileSync(join(root, name))).update("\0");
  return hash.digest("hex");
}

const bundle = await esbuild.build({
  entryPoints: [join(here, "gallery.ts")],
  bundle: true,
  format: "iife",
  target: "es2020",
  minify: true,
  write: false,
  nodePaths: [modules],
  legalComments: "eof",
  logLevel: "warning",
});
const script = bundle.outputFiles[0].text.replaceAll("</script", "<\\/script");
const style = readFileSync(join(here, "gallery.css"), "utf8");
const html = readFileSync(join(here, "index.html"), "utf8")
  .replace("/*STYLE*/", () => style)
  .replace("/*SCRIPT*/", () => script);
writeFileSync(out, `<!-- imagegen gallery, built from ui/src by \`python3 dev.py ui\`; source-sha256: ${sourceDigest(here)} -->\n${html}`);
console.log(`wrote ${out} (${html.length} bytes)`);
