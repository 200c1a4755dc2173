// A minimal MCP Apps host on the ext-apps host bridge: the app in a sandboxed iframe, tool calls to the server.
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

type HostWindow = Window & {
  bridge: AppBridge;
  lastResize: number;
  hostCallTool(params: unknown): Promise<never>;
  hostEvents: { kind: string; params?: unknown }[];
};
const win = window as unknown as HostWindow;
win.hostEvents = [];
win.lastResize = 0;
const record = (kind: string, params?: unknown) => win.hostEvents.push({ kind, params });

async function main() {
  const data = await (await fetch("/data.json")).json();
  const iframe = document.createElement("iframe");
  iframe.sandbox.add("allow-scripts"); // no allow-same-origin: the app runs in an opaque origin, as hosts render it
  iframe.title = "gallery";
  document.getElementById("frame")!.append(iframe);
  const bridge = new AppBridge(
    null,
    { name: "imagegen-test-host", version: "1.0.0" },
    {
      serverTools: {},
      openLinks: {},
      downloadFile: {},
      message: { text: {} },
      updateModelContext: { text: {} },
      sandbox: { csp: data.csp },
    },
    { hostContext: { theme: "light", displayMode: "inline" } },
  );
  win.bridge = bridge; // the driver delivers a second result through it
  bridge.oncalltool = async (params) => {
    record("tools/call", params);
    return win.hostCallTool(params);
  };
  bridge.onmessage = async (params) => (record("ui/message", params), {});
  bridge.onupdatemodelcontext = async (params) => (record("ui/update-model-context", params), {});
  bridge.onopenlink = async (params) => (record("ui/open-link", params), {});
  bridge.ondownloadfile = async (params) => (record("ui/download-file", params), {});
  bridge.onsizechange = ({ height }) => {
    if (height) iframe.style.height = `${Math.min(height, 1400)}px`;
    win.lastResize = performance.now();
  };
  bridge.oninitialized = async () => {
    record("initialized");
    await bridge.sendToolInput({ arguments: data.arguments });
    await bridge.sendToolResult(data.result);
    record("delivered");
  };
  await bridge.connect(new PostMessageTransport(iframe.contentWindow!, iframe.contentWindow!));
  iframe.src = data.appUrl;
}

main().catch((err) => record("host-error", String(err)));
