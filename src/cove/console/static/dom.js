// Building the page from data without ever parsing data as markup.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function toast(message, bad = false) {
  const box = h("div", { class: bad ? "bad" : "" }, message);
  document.getElementById("toast").append(box);
  setTimeout(() => box.remove(), bad ? 8000 : 4000);
}

export function age(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d`;
}

export function bytes(count) {
  if (count === undefined || count === null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, dataset: { status } }, status);
}

export function labelChips(labels) {
  return Object.entries(labels || {}).map(([key, value]) => h("span", { class: "chip" }, `${key}=${value}`));
}

// "a=1, b=2" as {a: "1", b: "2"}; throws on an entry without "=".
export function parseLabels(text) {
  const labels = {};
  for (const part of text.split(",").map((each) => each.trim()).filter(Boolean)) {
    const at = part.indexOf("=");
    if (at < 1) throw new Error(`"${part}" is not key=value`);
    labels[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return labels;
}

// A sparkline of `points` (numbers), scaled to `top` (or their maximum).
export function sparkline(points, top) {
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", "0 0 100 40");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  const highest = Math.max(top || 0, ...points, 1e-9);
  const line = document.createElementNS(svgNs, "polyline");
  const step = points.length > 1 ? 100 / (points.length - 1) : 100;
  line.setAttribute(
    "points",
    points.map((value, index) => `${(index * step).toFixed(2)},${(40 - (value / highest) * 38).toFixed(2)}`).join(" "),
  );
  svg.append(line);
  return svg;
}

// Tabs with the ARIA tab pattern: arrows move between them. Answers {element, select(name)}.
export function tabs(definitions, onSelect) {
  const list = h("div", { role: "tablist", "aria-label": "Session views" });
  const panels = [];
  const buttons = [];
  function select(name, focus = false) {
    definitions.forEach((definition, index) => {
      const on = definition.name === name;
      buttons[index].setAttribute("aria-selected", on ? "true" : "false");
      buttons[index].tabIndex = on ? 0 : -1;
      panels[index].hidden = !on;
      if (on && focus) buttons[index].focus();
    });
    onSelect(name);
  }
  definitions.forEach((definition, index) => {
    const button = h(
      "button",
      { type: "button", role: "tab", id: `tab-${definition.name}`, "aria-controls": `panel-${definition.name}` },
      definition.title,
    );
    button.addEventListener("click", () => select(definition.name));
    button.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: 1, ArrowLeft: -1 };
      if (event.key in moves) {
        const next = (index + moves[event.key] + definitions.length) % definitions.length;
        select(definitions[next].name, true);
        event.preventDefault();
      }
    });
    buttons.push(button);
    list.append(button);
    panels.push(
      h("div", { role: "tabpanel", id: `panel-${definition.name}`, "aria-labelledby": `tab-${definition.name}` }, definition.panel),
    );
  });
  return { element: h("div", {}, list, panels), select };
}
