// Calls tools with the official TypeScript SDK client (which validates structuredContent against each tool's
// outputSchema, error results included) and prints one JSON line per call: the result, or the error it threw.
// usage: node ts_client_calls.mjs <sdk package dir> <mcp url> <json list of [tool, arguments]>
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [sdkDir, url, callsJson] = process.argv.slice(2);
const load = (path) => import(pathToFileURL(join(sdkDir, "dist", "esm", path)).href);
const { Client } = await load("client/index.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");

const client = new Client({ name: "imagegen-ts-check", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
await client.listTools(); // the client caches each tool's outputSchema validator from the listing
for (const [name, args] of JSON.parse(callsJson)) {
  try {
    const result = await client.callTool({ name, arguments: args });
    console.log(JSON.stringify({ name, result }));
  } catch (error) {
    console.log(JSON.stringify({ name, thrown: String(error && error.message ? error.message : error) }));
  }
}
await client.close();
