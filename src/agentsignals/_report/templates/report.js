// agentsignals report: sortable tables and the drill-down from any row to its attempts.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("attempts-data").textContent);
  const cols = data.columns;
  const n = cols.attempt_id.length;

  function sortValue(cell) {
    const v = cell.getAttribute("data-sort");
    const text = v !== null ? v : cell.textContent.trim();
    const num = parseFloat(text);
    return isNaN(num) ? text.toLowerCase() : num;
  }

  function makeSortable(table) {
    const heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.addEventListener("click", function () {
        const asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort(function (a, b) {
          const x = sortValue(a.cells[col]), y = sortValue(b.cells[col]);
          if (typeof x === "number" && typeof y === "number") return asc ? x - y : y - x;
          return asc ? String(x).localeCompare(String(y)) : String(y).localeCompare(String(x));
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  document.querySelectorAll("table.sortable").forEach(makeSortable);

  function strip(timeline) {
    const span = document.createElement("span");
    span.className = "steps";
    if (!timeline) { span.textContent = "–"; return span; }
    for (const letter of timeline) {
      const s = document.createElement("span");
      s.className = "step s-" + letter;
      span.appendChild(s);
    }
    span.title = timeline.length + " tool calls";
    return span;
  }

  function matches(i, spec) {
    if (spec.arm !== undefined && cols.arm[i] !== spec.arm) return false;
    if (spec.status !== undefined && cols.status[i] !== spec.status) return false;
    if (spec.col === undefined) return true;
    const values = cols[spec.col];
    if (!values) return false;
    const v = values[i];
    if (v === null || v === undefined) return false;
    if (spec.val !== undefined) return String(v) === spec.val;
    if (data.kinds[spec.col] === "bool") return v === 1;
    return true;
  }

  const panel = document.getElementById("drill");
  const tbody = document.querySelector("#drill-table tbody");
  const LIMIT = 500;

  function openDrill(button) {
    const spec = {};
    ["col", "val", "arm", "status", "show"].forEach(function (k) {
      const v = button.getAttribute("data-" + k);
      if (v !== null) spec[k] = v;
    });
    const hits = [];
    for (let i = 0; i < n; i++) if (matches(i, spec)) hits.push(i);
    const numeric = spec.col && data.kinds[spec.col] === "num";
    if (numeric) hits.sort(function (a, b) { return cols[spec.col][b] - cols[spec.col][a]; });
    document.getElementById("drill-title").textContent = button.getAttribute("data-title") || "attempts";
    let count = hits.length + " attempts";
    if (data.embedded < data.n) count += " in a sample of " + data.embedded + " of " + data.n + " attempts";
    if (hits.length > LIMIT) count += "; the first " + LIMIT + " are listed";
    document.getElementById("drill-count").textContent = count;
    // The value column: the row's own column, or another that points at what to look at
    // (the first wrong step's S-number and span id).
    const shown = spec.show && cols[spec.show] ? spec.show : spec.col;
    document.getElementById("drill-value").textContent = shown ? shown : "value";
    tbody.textContent = "";
    for (const i of hits.slice(0, LIMIT)) {
      const tr = document.createElement("tr");
      tr.className = "attempt-row";
      const value = shown && cols[shown] ? cols[shown][i] : "";
      const cells = [cols.attempt_id[i], cols.task_id[i], cols.arm[i], cols.attempt_index[i],
                     cols.status[i], value === null ? "–" : String(value)];
      cells.forEach(function (text, k) {
        const td = document.createElement("td");
        td.textContent = String(text);
        if (k === 0) { td.title = "agentsignals show " + text; td.innerHTML = "<code></code>"; td.firstChild.textContent = String(text).slice(0, 12); }
        if (k === 4) td.className = "status-" + text;
        tr.appendChild(td);
      });
      const td = document.createElement("td");
      td.appendChild(strip(cols.timeline ? cols.timeline[i] : null));
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
    panel.hidden = false;
    panel.scrollTop = 0;
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.drill");
    if (button) openDrill(button);
  });
  document.getElementById("drill-close").addEventListener("click", function () { panel.hidden = true; });
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") panel.hidden = true; });
})();
