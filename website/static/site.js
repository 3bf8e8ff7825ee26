// Host for the gradient-flow explorers on the static site: a model with anywidget's get/set/on/save_changes
// whose numbers come from the grid the build precomputed (_static/flow/<grid>.json) instead of a kernel. The
// drawing is reslab/widgets/flow_view.js, the explorer's one front end, copied here by the build.
import { render } from "./flow_view.js";

function staticModel(grid) {
  const names = grid.controls.map((c) => c.name);
  const start = Object.fromEntries(grid.controls.map((c) => [c.name,
    c.values.findIndex((v) => v === grid.start[c.name])]));
  const state = { controls: grid.controls, picks: start, max_layers: grid.max_layers };
  const listeners = {};
  const lookup = (picks) => grid.results[grid.free.map((n) => picks[n]).join(",")];
  state.view = lookup(start);
  return {
    get: (key) => state[key],
    set: (key, value) => { state[key] = value; },
    on: (event, callback) => { (listeners[event] ??= []).push(callback); },
    save_changes: () => {
      const view = lookup(state.picks);
      if (!view) throw new Error(`no precomputed data for ${JSON.stringify(state.picks)} (${names})`);
      state.view = view;
      (listeners["change:view"] ?? []).forEach((callback) => callback());
    },
  };
}

for (const host of document.querySelectorAll(".reslab-flow-static[data-grid]")) {
  const url = new URL(`flow/${host.dataset.grid}`, import.meta.url);
  fetch(url).then((response) => {
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }).then((grid) => {
    const el = document.createElement("div");
    render({ model: staticModel(grid), el });
    const notice = document.createElement("p");
    notice.className = "reslab-static-notice";
    notice.textContent = "Live without a kernel: the numbers were computed ahead for the values these " +
      "controls offer. Every value, and the other widgets of this chapter, run in the notebook.";
    host.replaceChildren(notice, el);
  });
}
