// The gradient-flow explorer's front end: controls and two log-scale SVG plots, in anywidget's form
// (render({model, el}); model.get/set/on/save_changes). A static page's host supplies a model whose numbers
// come from reslab.widgets.static's precomputed grid; the same file is the widget's ES module in a kernel.
//
// model.get("controls"): [{name, label, options: [label, ...], free}]; "picks": {name: option index};
// "view": {grad, std, summary, not_applicable: {name: reason}}; "max_layers": the x axis' span.

const SVG = "http://www.w3.org/2000/svg";
const W = 430, H = 250, M = { left: 52, right: 10, top: 22, bottom: 34 };
const SLIDERS = new Set(["depth", "shortcut_scale", "branch_scale"]);
const TOGGLES = new Set(["residual", "norm"]);

function svgEl(tag, attrs, parent) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// y limits on whole decades around the positive values (zeros and gaps have no place on a log axis)
function decades(values) {
  const positive = values.filter((v) => v !== null && v > 0);
  if (!positive.length) return [-1, 1];
  let lo = Math.floor(Math.log10(Math.min(...positive)));
  let hi = Math.ceil(Math.log10(Math.max(...positive)));
  if (hi === lo) hi += 1;
  return [lo, hi];
}

function drawPanel(svg, title, values, maxLayers, cls) {
  svg.replaceChildren();
  const [lo, hi] = decades(values);
  const x = (i) => M.left + ((i - 0.5) / (maxLayers + 1)) * (W - M.left - M.right);
  const y = (v) => M.top + (1 - (Math.log10(v) - lo) / (hi - lo)) * (H - M.top - M.bottom);
  svgEl("text", { x: W / 2, y: 14, "text-anchor": "middle", "font-size": 13 }, svg).textContent = title;
  const step = Math.max(1, Math.ceil((hi - lo) / 8));
  for (let d = lo; d <= hi; d += step) {
    const yy = y(10 ** d);
    svgEl("line", { x1: M.left, x2: W - M.right, y1: yy, y2: yy, stroke: "#ddd" }, svg);
    svgEl("text", { x: M.left - 4, y: yy + 4, "text-anchor": "end", "font-size": 11 }, svg).textContent = `1e${d}`;
  }
  svgEl("rect", { x: M.left, y: M.top, width: W - M.left - M.right, height: H - M.top - M.bottom,
    fill: "none", stroke: "#444" }, svg);
  svgEl("text", { x: W / 2, y: H - 6, "text-anchor": "middle", "font-size": 11 }, svg)
    .textContent = "weight layer (input → output)";
  let d = "", pen = "M";
  values.forEach((v, i) => {
    if (v === null || v <= 0) { pen = "M"; return; }
    d += `${pen}${x(i + 1).toFixed(1)},${y(v).toFixed(1)}`;
    pen = "L";
  });
  svgEl("path", { d, fill: "none", stroke: "currentColor", "stroke-width": 1.5, class: cls }, svg);
  values.forEach((v, i) => {  // an exact zero is marked on the bottom edge, never drawn at a made-up value
    if (v === 0) svgEl("text", { x: x(i + 1), y: H - M.bottom + 10, "text-anchor": "middle", "font-size": 10,
      class: `${cls}-zero` }, svg).textContent = "▼";
  });
  svg.dataset.values = values.join(",");
}

function control(spec, pick, onPick) {
  const box = document.createElement("label");
  box.className = `reslab-control reslab-control-${spec.name}`;
  const text = document.createElement("span");
  let input;
  if (SLIDERS.has(spec.name)) {
    input = Object.assign(document.createElement("input"), { type: "range", min: 0, max: spec.options.length - 1,
      step: 1, value: pick });
    const show = () => { text.textContent = `${spec.label}: ${spec.options[input.value]}`; };
    input.addEventListener("input", show);
    show();
  } else if (TOGGLES.has(spec.name)) {
    input = Object.assign(document.createElement("input"), { type: "checkbox", checked: pick === 1 });
    text.textContent = spec.label;
  } else {
    input = document.createElement("select");
    spec.options.forEach((label, i) => input.add(new Option(label, i, false, i === pick)));
    text.textContent = spec.label;
  }
  input.name = spec.name;
  input.addEventListener("change", () => onPick(input.type === "checkbox" ? Number(input.checked)
    : Number(input.value)));
  box.append(text, input);
  return { box, input };
}

export function render({ model, el }) {
  el.classList.add("reslab-flow");
  const controls = model.get("controls");
  const row = document.createElement("div");
  row.className = "reslab-controls";
  const inputs = {};
  for (const spec of controls) {
    const { box, input } = control(spec, model.get("picks")[spec.name], (i) => {
      model.set("picks", { ...model.get("picks"), [spec.name]: i });
      model.save_changes();
    });
    inputs[spec.name] = input;
    row.appendChild(box);
  }
  const note = Object.assign(document.createElement("div"), { className: "reslab-note" });
  const summary = Object.assign(document.createElement("div"), { className: "reslab-summary" });
  const plots = Object.assign(document.createElement("div"), { className: "reslab-plots" });
  const grad = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "reslab-grad", style: "color:#1f77b4" }, plots);
  const std = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "reslab-std", style: "color:#ff7f0e" }, plots);
  el.replaceChildren(row, note, summary, plots);

  function update() {
    const view = model.get("view");
    const reasons = [];
    for (const spec of controls) {
      const why = view.not_applicable[spec.name] ?? (spec.free ? null
        : "this page's precomputed grid keeps it fixed; move it in the notebook");
      inputs[spec.name].disabled = why !== null;
      inputs[spec.name].title = why ?? "";
      if (why !== null) reasons.push(`${spec.label}: ${why}`);
    }
    note.textContent = reasons.length ? `greyed out: ${reasons.join("; ")}` : "";
    summary.innerHTML = view.summary;  // written by reslab.widgets.explorer.summary_html, not by a user
    drawPanel(grad, "gradient norm ‖∂L/∂W‖", view.grad, model.get("max_layers"), "reslab-grad-line");
    drawPanel(std, "activation std (layer output)", view.std, model.get("max_layers"), "reslab-std-line");
  }
  model.on("change:view", update);
  update();
}

export default { render };
