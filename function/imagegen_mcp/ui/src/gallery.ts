// The gallery View: renders generate_image / edit_image (/ get_job) results and acts through the host bridge.
import {
  App,
  applyDocumentTheme,
  applyHostFonts,
  applyHostStyleVariables,
  type McpUiHostContext,
} from "@modelcontextprotocol/ext-apps";

type Image = {
  id: string;
  url: string;
  mime_type?: string;
  width?: number;
  height?: number;
  size_bytes?: number;
};
type Result = {
  images?: Image[];
  model?: string | null;
  provider?: string | null;
  prompt?: string | null;
  operation?: "generate" | "edit" | null;
  error?: { code: string; message: string } | null;
  status?: string;
  progress?: number | null;
  message?: string | null;
  result?: Result | null;
};
type ToolResult = { isError?: boolean; structuredContent?: unknown; content?: unknown[] };
type Args = Record<string, unknown>;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const metaEl = $("meta");
const statusEl = $("status");
const imagesEl = $("images");
const actionsEl = $("actions");
const noteEl = $("note");
const variationsBtn = $<HTMLButtonElement>("variations");

const app = new App({ name: "imagegen-gallery", version: "1.0.0" }, {}, { autoResize: true });
let args: Args = {};
let shown: Result | null = null;
const seedSupport = new Map<string, boolean>();

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...kids: (Node | string)[]) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...kids);
  return node;
}

function setStatus(text: string, error = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle("error", error);
}

function tag(label: string, value: string | null | undefined) {
  return value ? el("span", { className: "tag" }, `${label} `, el("b", {}, value)) : "";
}

function size(image: Image) {
  const parts = [];
  if (image.width && image.height) parts.push(`${image.width}×${image.height}`);
  if (image.mime_type) parts.push(image.mime_type.replace("image/", ""));
  if (image.size_bytes) parts.push(`${Math.round(image.size_bytes / 1024)} KB`);
  return parts.join(" · ");
}

function render(result: Result) {
  if (result.error) {
    setStatus(`${result.error.code}: ${result.error.message}`, true);
    return;
  }
  const images = result.images ?? result.result?.images ?? [];
  if (!images.length && result.status) {
    // A job still running (get_job): its progress until its images arrive.
    setStatus(`${result.status}${result.message ? `: ${result.message}` : ""}`);
    imagesEl.replaceChildren(
      el("progress", { max: 1, ...(typeof result.progress === "number" ? { value: result.progress } : {}) }),
    );
    return;
  }
  shown = result.result ?? result;
  const first = images[0];
  metaEl.replaceChildren(
    el("p", { className: "prompt" }, shown.prompt ?? ""),
    tag("model", shown.model),
    tag("provider", shown.provider),
    tag("size", first ? size(first) : ""),
    tag("images", String(images.length)),
  );
  imagesEl.replaceChildren(...images.map(figure));
  setStatus(images.length ? "" : "No images in this result.");
  actionsEl.hidden = !images.length;
}

function figure(image: Image) {
  const img = el("img", { src: image.url, alt: shown?.prompt ?? image.id, loading: "eager", decoding: "async" });
  img.dataset.id = image.id;
  img.addEventListener("error", () => refresh(img, image), { once: true });
  const editInput = el("input", { type: "text", placeholder: "Describe a change…", ariaLabel: "Edit prompt" });
  const editBtn = el("button", { type: "button", className: "primary", textContent: "Edit" });
  editBtn.dataset.action = "edit";
  const form = el("form", { className: "row" }, editInput, editBtn);
  const submit = async (event?: Event) => {
    event?.preventDefault();
    const prompt = editInput.value.trim();
    if (!prompt) return editInput.focus();
    const call: Args = { prompt, images: [image.id] };
    if (shown?.model) call.model = shown.model;
    await run("edit_image", call, editBtn);
  };
  form.addEventListener("submit", submit);
  editBtn.addEventListener("click", submit);
  const buttons = el(
    "div",
    { className: "row" },
    button("Use this one", "pick", () => pick(image)),
    button("Download", "download", () => download(image)),
  );
  return el("figure", {}, img, el("figcaption", {}, el("span", { className: "dims" }, `${size(image)} · ${image.id}`), buttons, form));
}

// A link that expired while the conversation sat idle: ask the server (app-only tool) to sign it again, once.
async function refresh(img: HTMLImageElement, image: Image) {
  try {
    const result = (await app.callServerTool({ name: "gallery_links", arguments: { ids: [image.id] } })) as ToolResult;
    const fresh = ((result.structuredContent ?? {}) as { images?: Image[] }).images?.[0];
    if (result.isError || !fresh) throw new Error("no fresh link");
    image.url = fresh.url;
    img.addEventListener("error", () => (noteEl.textContent = `Image ${image.id} is no longer available.`), { once: true });
    img.src = fresh.url;
  } catch {
    noteEl.textContent = `Image ${image.id} did not load.`;
  }
}

function button(label: string, action: string, onClick: () => Promise<unknown>) {
  const node = el("button", { type: "button", textContent: label });
  node.dataset.action = action;
  node.addEventListener("click", () => onClick().catch((err) => (noteEl.textContent = String(err))));
  return node;
}

async function run(name: string, call: Args, busy: HTMLButtonElement) {
  busy.disabled = variationsBtn.disabled = true;
  setStatus(name === "edit_image" ? "Editing…" : "Generating variations…");
  try {
    const result = (await app.callServerTool({ name, arguments: call })) as ToolResult;
    const structured = (result.structuredContent ?? {}) as Result;
    if (result.isError && !structured.error) structured.error = { code: "error", message: "the tool call failed" };
    if (!structured.error) args = call;
    render(structured);
  } catch (err) {
    setStatus(String(err), true);
  } finally {
    busy.disabled = variationsBtn.disabled = false;
  }
}

async function supportsSeed(model: string | null | undefined): Promise<boolean> {
  if (!model) return false;
  if (!seedSupport.has(model)) {
    try {
      const listing = (await app.callServerTool({ name: "list_models", arguments: {} })) as ToolResult;
      const models = ((listing.structuredContent ?? {}) as { models?: { id: string; capabilities?: { seed?: boolean } }[] }).models ?? [];
      for (const entry of models) seedSupport.set(entry.id, Boolean(entry.capabilities?.seed));
    } catch {
      seedSupport.set(model, false);
    }
  }
  return seedSupport.get(model) ?? false;
}

async function variations() {
  if (!shown) return;
  const call: Args = { ...args, prompt: shown.prompt ?? args.prompt, n: shown.images?.length || 1 };
  delete call.images;
  delete call.mask;
  delete call.preview;
  delete call.seed;
  if (shown.model) call.model = shown.model;
  if (await supportsSeed(shown.model)) call.seed = Math.floor(Math.random() * 2 ** 31);
  await run("generate_image", call, variationsBtn);
}

async function pick(image: Image) {
  const text = `I picked image ${image.id} in the gallery${shown?.prompt ? ` (prompt: "${shown.prompt}")` : ""}; use its id for what comes next.`;
  const caps = app.getHostCapabilities();
  if (caps?.message) await app.sendMessage({ role: "user", content: [{ type: "text", text }] });
  else if (caps?.updateModelContext) await app.updateModelContext({ content: [{ type: "text", text }] });
  else throw new Error("this host takes no messages from apps");
  noteEl.textContent = `Picked ${image.id}.`;
}

async function download(image: Image) {
  const caps = app.getHostCapabilities();
  if (caps?.downloadFile) {
    await app.downloadFile({
      contents: [{ type: "resource_link", uri: image.url, name: image.id, mimeType: image.mime_type }],
    });
  } else {
    await app.openLink({ url: image.url });
  }
}

function applyContext(ctx: McpUiHostContext | undefined) {
  if (!ctx) return;
  if (ctx.theme) applyDocumentTheme(ctx.theme);
  if (ctx.styles?.variables) applyHostStyleVariables(ctx.styles.variables);
  if (ctx.styles?.css?.fonts) applyHostFonts(ctx.styles.css.fonts);
}

variationsBtn.addEventListener("click", () => variations().catch((err) => setStatus(String(err), true)));
app.ontoolinput = (params) => {
  args = (params.arguments ?? {}) as Args;
  setStatus("Working on it…");
};
app.ontoolresult = (params) => {
  const structured = (params.structuredContent ?? {}) as Result;
  if (params.isError && !structured.error) structured.error = { code: "error", message: "the tool call failed" };
  render(structured);
};
app.ontoolcancelled = () => setStatus("The call was cancelled.", true);
app.onhostcontextchanged = (ctx) => applyContext(ctx as McpUiHostContext);
app.connect().then(() => applyContext(app.getHostContext()));
