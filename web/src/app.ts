// Switchyard's browser console: every unary and server-streaming procedure
// a person wants to try, over gRPC-Web (default) or the Connect protocol,
// against this page's origin or any API given by ?api= or the API field.
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { TeamsService } from "../gen/teams/v1/teams_pb";
import { GreeterService } from "../gen/greeter/v1/greeter_pb";
import { SummatorService } from "../gen/summator/v1/summator_pb";
import { KeywordsService } from "../gen/keywords/v1/keywords_pb";
import { RouteGuideService } from "../gen/routeguide/v1/routeguide_pb";

type Protocol = "grpc-web" | "connect";

interface Clients {
  teams: Client<typeof TeamsService>;
  greeter: Client<typeof GreeterService>;
  summator: Client<typeof SummatorService>;
  keywords: Client<typeof KeywordsService>;
  routeguide: Client<typeof RouteGuideService>;
}

const $ = <T extends Element = HTMLElement>(selector: string): T => {
  const el = document.querySelector<T>(selector);
  if (!el) throw new Error(`console page lacks ${selector}`);
  return el;
};
const inputValue = (selector: string): string => $<HTMLInputElement>(selector).value;

// --- connection --------------------------------------------------------

const params = new URLSearchParams(location.search);
let clients: Clients;

function defaultAPI(): string {
  const fromQuery = params.get("api");
  if (fromQuery) return fromQuery;
  // Opened from a file or a page without an origin: assume a local server.
  return location.protocol.startsWith("http") ? location.origin : "http://localhost:50051";
}

// fetchOf is the transports' fetch. fetch failing outright (switchyard
// down, a wrong API, CORS refused: the browser tells the page nothing
// more) would surface from connect-web as UNKNOWN "Failed to fetch";
// report it as gRPC clients do, UNAVAILABLE, naming the API and what to
// check. A canceled call stays a cancellation.
function fetchOf(baseUrl: string): typeof fetch {
  let hint = "is switchyard running there?";
  try {
    if (new URL(baseUrl, location.href).origin !== location.origin) {
      hint = `is switchyard running there, and does its -cors-origins admit this page's origin (${location.origin})?`;
    }
  } catch {
    // Not a URL: keep the first hint.
  }
  return async (input, init) => {
    try {
      return await fetch(input, init);
    } catch (err) {
      if (err instanceof Error && err.name === "AbortError") throw err;
      const reason = err instanceof Error ? err.message : String(err);
      throw new ConnectError(`no answer from ${baseUrl} (${reason}): ${hint}`, Code.Unavailable, undefined, undefined, err);
    }
  };
}

// apiProblem says why api is no API to call, or undefined when it is an
// absolute http(s) URL. Anything else would be called as a path below
// this page ("localhost:50051" included) or not be fetched at all
// (javascript:, data:), failing later with a misleading error.
function apiProblem(api: string): string | undefined {
  let url: URL | undefined;
  try {
    url = new URL(api);
  } catch {
    // Not absolute.
  }
  if (url && (url.protocol === "http:" || url.protocol === "https:")) return undefined;
  return `the API must be an http:// or https:// URL such as http://localhost:50051, not ${JSON.stringify(api)}`;
}

// refuseAll is the fetch of an API field that holds no URL: every call
// fails at once with the field's problem.
function refuseAll(problem: string): typeof fetch {
  return () => Promise.reject(new ConnectError(`no API to call: ${problem}`, Code.InvalidArgument));
}

function connect(api: string, protocol: Protocol): void {
  const baseUrl = api.trim().replace(/\/+$/, "");
  const problem = apiProblem(baseUrl);
  const fetch = problem ? refuseAll(problem) : fetchOf(baseUrl);
  const transport: Transport =
    protocol === "connect" ? createConnectTransport({ baseUrl, fetch }) : createGrpcWebTransport({ baseUrl, fetch });
  clients = {
    teams: createClient(TeamsService, transport),
    greeter: createClient(GreeterService, transport),
    summator: createClient(SummatorService, transport),
    keywords: createClient(KeywordsService, transport),
    routeguide: createClient(RouteGuideService, transport),
  };
  document.body.dataset.protocol = protocol;
  document.body.dataset.api = baseUrl;
  const status = $("#conn-status");
  if (problem) {
    status.className = "error";
    status.dataset.state = "error";
    status.textContent = `INVALID_ARGUMENT: ${problem}`;
    return;
  }
  status.className = "muted";
  status.dataset.state = "ok";
  status.textContent = `calling ${baseUrl} over ${protocol === "connect" ? "Connect" : "gRPC-Web"}`;
}

// --- results and errors ------------------------------------------------

// codeName spells a connect code the way gRPC does: Code.NotFound -> NOT_FOUND.
function codeName(code: Code): string {
  return (Code[code] ?? `CODE_${code}`).replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

function showOK(el: HTMLElement, text: string): void {
  el.className = "result ok";
  el.dataset.state = "ok";
  delete el.dataset.code;
  el.textContent = text;
}

// errorText spells an error as gRPC does: CODE: message.
function errorText(err: unknown): { code: string; text: string } {
  const ce = ConnectError.from(err);
  return { code: codeName(ce.code), text: `${codeName(ce.code)}: ${ce.rawMessage}` };
}

function showError(el: HTMLElement, err: unknown): void {
  const { code, text } = errorText(err);
  el.className = "result error";
  el.dataset.state = "error";
  el.dataset.code = code;
  el.textContent = text;
}

function showBusy(el: HTMLElement): void {
  for (const key of Object.keys(el.dataset)) delete el.dataset[key];
  el.className = "result muted";
  el.dataset.state = "busy";
  el.textContent = "…";
}

// showInvalid reports input the page refuses to send, in the form of the
// server's INVALID_ARGUMENT.
function showInvalid(el: HTMLElement, message: string): void {
  el.className = "result error";
  el.dataset.state = "error";
  el.dataset.code = "INVALID_ARGUMENT";
  el.textContent = `INVALID_ARGUMENT: ${message}`;
}

// Each panel shows one call's outcome: a new call cancels the panel's
// call still under way, whose late answer (or rows of a list) would
// otherwise overwrite or mix into the new one's.
const inFlight = new Map<string, AbortController>();

// UNARY_TIMEOUT_MS bounds each unary call (sent as its deadline, so the
// server gives up too): an API that accepts the call and never answers
// ends as DEADLINE_EXCEEDED instead of a result left at "…". Streams,
// which may rightly run long, have no deadline; a new call or query
// cancels them.
const UNARY_TIMEOUT_MS = 30_000;

function begin(panel: string): AbortSignal {
  inFlight.get(panel)?.abort();
  const abort = new AbortController();
  inFlight.set(panel, abort);
  return abort.signal;
}

function onSubmit(selector: string, action: () => Promise<void>): void {
  $<HTMLFormElement>(selector).addEventListener("submit", (ev) => {
    ev.preventDefault();
    void action();
  });
}

// --- teams -------------------------------------------------------------

// hideTeamList removes the list of all teams, so that a later lookup's
// answer does not sit above a stale table.
function hideTeamList(): void {
  const table = $<HTMLTableElement>("#teams-table");
  table.hidden = true;
  table.tBodies[0].replaceChildren();
}

async function lookUpTeam(): Promise<void> {
  const signal = begin("teams");
  const out = $("#team-result");
  hideTeamList();
  showBusy(out);
  try {
    const res = await clients.teams.getTeam({ city: inputValue("#team-city") }, { signal, timeoutMs: UNARY_TIMEOUT_MS });
    showOK(out, `${res.city}: ${res.nickname}`);
    out.dataset.nickname = res.nickname;
  } catch (err) {
    if (signal.aborted) return;
    showError(out, err);
  }
}

async function listTeams(): Promise<void> {
  const signal = begin("teams");
  const out = $("#team-result");
  const table = $<HTMLTableElement>("#teams-table");
  const body = table.tBodies[0];
  body.replaceChildren();
  table.hidden = false;
  showBusy(out);
  try {
    let n = 0;
    for await (const team of clients.teams.listTeams({}, { signal })) {
      if (signal.aborted) return;
      const row = body.insertRow();
      row.insertCell().textContent = team.city;
      row.insertCell().textContent = team.nickname;
      n++;
    }
    showOK(out, `${n} teams`);
    out.dataset.teams = String(n);
  } catch (err) {
    if (signal.aborted) return;
    showError(out, err);
  }
}

// --- greeter, summator, keywords ---------------------------------------

async function greet(): Promise<void> {
  const signal = begin("greeter");
  const out = $("#greet-result");
  showBusy(out);
  try {
    const res = await clients.greeter.sayHello({ name: inputValue("#greet-name") }, { signal, timeoutMs: UNARY_TIMEOUT_MS });
    showOK(out, res.message);
  } catch (err) {
    if (signal.aborted) return;
    showError(out, err);
  }
}

// The summands are float32 on the wire. A finite number beyond its range
// (1e39) cannot be encoded in binary and is rejected by the server's JSON
// decoder: say so here, in the server's terms, instead of sending it.
const FLOAT32_MAX = 3.4028234663852886e38;

function float32Problem(which: string, v: number): string | undefined {
  if (Number.isFinite(v) && !Number.isFinite(Math.fround(v))) {
    return `the ${which} number, ${v}, is outside float32's range (±${Number(FLOAT32_MAX.toPrecision(8))})`;
  }
  return undefined;
}

// parseNumber reads a typed number. Number() takes "" (and spaces) for 0
// and anything else it cannot read for NaN, which the server would
// answer with "value1 is NaN": say what is wrong with what was typed
// instead. A typed NaN or Infinity is sent, for the server to judge.
function parseNumber(which: string, typed: string): number | string {
  const text = typed.trim();
  if (text === "") return `the ${which} number is empty`;
  const v = Number(text);
  if (Number.isNaN(v) && text !== "NaN") return `the ${which} number, ${JSON.stringify(text)}, is not a number such as 1.5`;
  return v;
}

async function sum(): Promise<void> {
  const signal = begin("summator");
  const out = $("#sum-result");
  const a = parseNumber("first", inputValue("#sum-a"));
  const b = parseNumber("second", inputValue("#sum-b"));
  if (typeof a === "string" || typeof b === "string") {
    showInvalid(out, typeof a === "string" ? a : String(b));
    return;
  }
  const problem = float32Problem("first", a) ?? float32Problem("second", b);
  if (problem) {
    showInvalid(out, problem);
    return;
  }
  showBusy(out);
  try {
    const res = await clients.summator.sum({ value1: a, value2: b }, { signal, timeoutMs: UNARY_TIMEOUT_MS });
    // float32 on the wire: show the shortest decimal that round-trips it.
    showOK(out, String(Number(Math.fround(res.value).toPrecision(7))));
  } catch (err) {
    if (signal.aborted) return;
    showError(out, err);
  }
}

async function extractKeywords(): Promise<void> {
  const signal = begin("keywords");
  const out = $("#keywords-result");
  const list = $("#keywords-list");
  list.replaceChildren();
  showBusy(out);
  try {
    const res = await clients.keywords.getKeywords({ text: $<HTMLTextAreaElement>("#keywords-text").value }, { signal, timeoutMs: UNARY_TIMEOUT_MS });
    for (const word of res.keywords) {
      const li = document.createElement("li");
      li.textContent = word;
      list.append(li);
    }
    showOK(out, `${res.keywords.length} keywords`);
  } catch (err) {
    if (signal.aborted) return;
    showError(out, err);
  }
}

// --- RouteGuide map ----------------------------------------------------

// The plot covers the RouteGuide database's area (E7 degrees).
const VIEW = { minLat: 39.95e7, maxLat: 42.05e7, minLng: -75.05e7, maxLng: -73.95e7, width: 600, height: 400 };
const SVG_NS = "http://www.w3.org/2000/svg";
const E7 = 1e7;

const toX = (lng: number) => ((lng - VIEW.minLng) / (VIEW.maxLng - VIEW.minLng)) * VIEW.width;
const toY = (lat: number) => ((VIEW.maxLat - lat) / (VIEW.maxLat - VIEW.minLat)) * VIEW.height;
const fromX = (x: number) => VIEW.minLng + (x / VIEW.width) * (VIEW.maxLng - VIEW.minLng);
const fromY = (y: number) => VIEW.maxLat - (y / VIEW.height) * (VIEW.maxLat - VIEW.minLat);

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

const map = $<SVGSVGElement>("#map");
const gridLayer = svg("g", {});
const featureLayer = svg("g", { id: "features" });
const selection = svg("rect", { class: "selection", x: 0, y: 0, width: 0, height: 0 });
map.append(gridLayer, featureLayer, selection);

// Labels sit beside their grid line, on whichever side keeps them inside
// the map: below a line near the top, left of a line near the right edge.
const LABEL_HEIGHT = 12;
const LABEL_WIDTH = 48;

function drawGrid(): void {
  for (let lat = 40; lat <= 42; lat += 0.5) {
    const y = toY(lat * E7);
    gridLayer.append(svg("line", { class: "grid", x1: 0, x2: VIEW.width, y1: y, y2: y }));
    const label = svg("text", { class: "label", x: 4, y: y > LABEL_HEIGHT + 2 ? y - 3 : y + LABEL_HEIGHT });
    label.textContent = `${lat.toFixed(1)}°N`;
    gridLayer.append(label);
  }
  for (let lng = -75; lng <= -74; lng += 0.25) {
    const x = toX(lng * E7);
    gridLayer.append(svg("line", { class: "grid", y1: 0, y2: VIEW.height, x1: x, x2: x }));
    const nearRight = x > VIEW.width - LABEL_WIDTH;
    const label = svg("text", { class: "label", x: nearRight ? x - 3 : x + 3, y: VIEW.height - 4, "text-anchor": nearRight ? "end" : "start" });
    label.textContent = `${lng.toFixed(2)}°`;
    gridLayer.append(label);
  }
}

// A corner's inputs: its name, and the most degrees it may hold. The
// server judges the range too, but past it a value may not fit the
// wire's int32 E7 degrees at all, which would fail in the page as an
// INTERNAL encoding error.
const CORNERS = [
  { selector: "#lo-lat", name: "lo lat", max: 90 },
  { selector: "#lo-lng", name: "lo lng", max: 180 },
  { selector: "#hi-lat", name: "hi lat", max: 90 },
  { selector: "#hi-lng", name: "hi lng", max: 180 },
];

function rectFromInputs(): { lo: { latitude: number; longitude: number }; hi: { latitude: number; longitude: number } } | string {
  const vals: number[] = [];
  for (const { selector, name, max } of CORNERS) {
    const text = inputValue(selector).trim();
    // Number("") is 0: an empty corner is not the equator.
    const v = text === "" ? NaN : Number(text);
    if (!Number.isFinite(v)) return `${name} is ${text === "" ? "empty" : JSON.stringify(text)}: every corner needs a number of degrees, e.g. 40.5`;
    if (Math.abs(v) > max) return `${name}, ${v}, is outside ±${max} degrees`;
    vals.push(v);
  }
  const [loLat, loLng, hiLat, hiLng] = vals.map((v) => Math.round(v * E7));
  return { lo: { latitude: loLat, longitude: loLng }, hi: { latitude: hiLat, longitude: hiLng } };
}

function showSelection(): void {
  const rect = rectFromInputs();
  if (typeof rect === "string") return;
  const x1 = toX(rect.lo.longitude), x2 = toX(rect.hi.longitude);
  const y1 = toY(rect.lo.latitude), y2 = toY(rect.hi.latitude);
  selection.setAttribute("x", String(Math.min(x1, x2)));
  selection.setAttribute("y", String(Math.min(y1, y2)));
  selection.setAttribute("width", String(Math.abs(x2 - x1)));
  selection.setAttribute("height", String(Math.abs(y2 - y1)));
}

async function queryFeatures(): Promise<void> {
  const signal = begin("routeguide");
  const out = $("#features-result");
  const state = $("#features-state");
  const count = $("#feature-count");
  const named = $("#named-count");
  featureLayer.replaceChildren();
  count.textContent = "0";
  named.textContent = "0";
  out.className = "result muted";
  out.dataset.state = "busy";
  delete out.dataset.code;
  // A live region that is busy is announced once it is done, not at
  // each of up to 100 features the stream counts into it.
  out.setAttribute("aria-busy", "true");
  state.textContent = "streaming…";
  showSelection();
  const rect = rectFromInputs();
  if (typeof rect === "string") {
    out.className = "result error";
    out.dataset.state = "error";
    out.dataset.code = "INVALID_ARGUMENT";
    state.textContent = `INVALID_ARGUMENT: ${rect}`;
    out.setAttribute("aria-busy", "false");
    return;
  }
  let n = 0;
  let namedN = 0;
  try {
    for await (const f of clients.routeguide.listFeatures(rect, { signal })) {
      const loc = f.location ?? { latitude: 0, longitude: 0 };
      const dot = svg("circle", { cx: toX(loc.longitude), cy: toY(loc.latitude), r: 4.5, class: f.name ? "named" : "unnamed" });
      const title = svg("title", {});
      title.textContent = `${f.name || "(unnamed)"} — ${(loc.latitude / E7).toFixed(4)}, ${(loc.longitude / E7).toFixed(4)}`;
      dot.append(title);
      featureLayer.append(dot);
      n++;
      if (f.name) namedN++;
      count.textContent = String(n);
      named.textContent = String(namedN);
    }
    out.className = "result ok";
    out.dataset.state = "ok";
    state.textContent = `(${n - namedN} unnamed) — stream complete`;
  } catch (err) {
    if (signal.aborted) return;
    const { code, text } = errorText(err);
    out.className = "result error";
    out.dataset.state = "error";
    out.dataset.code = code;
    state.textContent = text;
  }
  out.setAttribute("aria-busy", "false");
}

function svgPoint(ev: PointerEvent): { x: number; y: number } {
  const box = map.getBoundingClientRect();
  return {
    x: Math.min(VIEW.width, Math.max(0, ((ev.clientX - box.left) / box.width) * VIEW.width)),
    y: Math.min(VIEW.height, Math.max(0, ((ev.clientY - box.top) / box.height) * VIEW.height)),
  };
}

function setCorners(a: { x: number; y: number }, b: { x: number; y: number }): void {
  const deg = (v: number) => (v / E7).toFixed(5);
  $<HTMLInputElement>("#lo-lat").value = deg(fromY(Math.max(a.y, b.y)));
  $<HTMLInputElement>("#hi-lat").value = deg(fromY(Math.min(a.y, b.y)));
  $<HTMLInputElement>("#lo-lng").value = deg(fromX(Math.min(a.x, b.x)));
  $<HTMLInputElement>("#hi-lng").value = deg(fromX(Math.max(a.x, b.x)));
  showSelection();
}

let dragStart: { x: number; y: number } | undefined;
map.addEventListener("pointerdown", (ev) => {
  dragStart = svgPoint(ev);
  map.setPointerCapture(ev.pointerId);
});
map.addEventListener("pointermove", (ev) => {
  if (dragStart) setCorners(dragStart, svgPoint(ev));
});
map.addEventListener("pointerup", (ev) => {
  if (!dragStart) return;
  const end = svgPoint(ev);
  const moved = Math.abs(end.x - dragStart.x) + Math.abs(end.y - dragStart.y) > 3;
  if (moved) setCorners(dragStart, end);
  dragStart = undefined;
  if (moved) void queryFeatures();
});

// --- wiring ------------------------------------------------------------

function init(): void {
  const api = $<HTMLInputElement>("#api");
  const protocol = $<HTMLSelectElement>("#protocol");
  api.value = defaultAPI();
  protocol.value = params.get("protocol") === "connect" ? "connect" : "grpc-web";
  connect(api.value, protocol.value as Protocol);
  onSubmit("#conn-form", async () => connect(api.value, protocol.value as Protocol));
  protocol.addEventListener("change", () => connect(api.value, protocol.value as Protocol));

  onSubmit("#team-form", lookUpTeam);
  $("#teams-list-button").addEventListener("click", () => void listTeams());
  onSubmit("#greet-form", greet);
  onSubmit("#sum-form", sum);
  onSubmit("#keywords-form", extractKeywords);
  onSubmit("#rect-form", queryFeatures);

  drawGrid();
  document.body.dataset.ready = "true";
  void queryFeatures();
}

init();
