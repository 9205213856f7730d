// Exceptions, dead letters, the live order list and the per-shard KPI table.
"use strict";

function orderLink(orderId, onSelect) {
  return el("a", { href: "#", class: "order-link", "data-order-id": orderId,
    onclick: (e) => { e.preventDefault(); onSelect(orderId); } }, orderId);
}

function exceptionList(title, cls, items, render) {
  return el("div", { class: `exception-list ${cls}`, "data-count": items.length },
    el("h3", {}, `${title} `, el("span", { class: "count" }, items.length)),
    items.length
      ? el("ul", {}, items.slice(0, 12).map((item) => el("li", {}, render(item))))
      : el("p", { class: "muted" }, "none"));
}

// Render /api/exceptions (order lists and idle couriers).
function renderExceptions(data, onSelect) {
  fill("exceptions",
    exceptionList("Ready, no courier on the way", "ready-without-courier",
      data.ready_without_courier,
      (o) => [orderLink(o.order_id, onSelect), ` ready ${num(o.waiting_min)} min ago (${o.state})`]),
    exceptionList("Predicted late (ETA p90 past promise)", "predicted-late", data.predicted_late,
      (o) => [orderLink(o.order_id, onSelect), ` +${num(o.lateness_min)} min, courier ${o.courier_id || "none"}`]),
    exceptionList(`Idle couriers > ${num(data.rules.far_m / 1000)} km from demand`, "idle-far",
      data.idle_far_from_demand,
      (c) => `${c.courier_id} ${num(c.distance_m / 1000, 2)} km from ${c.nearest_demand}`));
}

// Render the dead letters (counts by reason, then the latest with their message).
function renderDeadLetters(data) {
  document.getElementById("dead-letter-total").textContent = `${data.total} in all`;
  const counts = el("table", { class: "dead-letter-counts" },
    el("tr", {}, el("th", {}, "source topic"), el("th", {}, "reason"), el("th", { class: "num" }, "count")),
    data.by_reason.map((r) => el("tr", { "data-reason": r.reason },
      el("td", {}, r.source_topic), el("td", {}, r.reason), el("td", { class: "num" }, r.count))));
  const latest = el("ul", { class: "dead-letter-latest" }, data.latest.slice(0, 6).map((x) =>
    el("li", { "data-reason": x.reason },
      el("div", {}, el("b", {}, x.reason), ` on ${x.source_topic}: ${x.message} `,
        el("span", { class: "muted" }, `(written ${clock(x.ts_ms)} UTC)`)),
      el("code", {}, x.value || "(empty value)"))));
  fill("dead-letters", data.total ? [counts, el("h3", {}, "Latest"), latest]
    : el("p", { class: "muted" }, "none"));
}

const ENDED = ["delivered", "cancelled", "expired"];

// Render every known order: live ones first (latest predicted first), then the newest ended.
function renderOrders(orders, selectedId, onSelect) {
  const live = orders.filter((o) => !ENDED.includes(o.state)).sort((a, b) =>
    (b.predicted_lateness_min ?? -1e9) - (a.predicted_lateness_min ?? -1e9) || b.age_min - a.age_min);
  const ended = orders.filter((o) => ENDED.includes(o.state))
    .sort((a, b) => b.created_ts_ms - a.created_ts_ms);
  fill("orders-table",
    el("tr", {}, ["order", "state", "age (min)", "p90 vs promise (min)", "courier", "shard"]
      .map((h) => el("th", {}, h))),
    live.concat(ended).slice(0, 200).map((o) => el("tr", {
      class: `order-row ${o.state}${o.order_id === selectedId ? " selected" : ""}`,
      "data-order-id": o.order_id, onclick: () => onSelect(o.order_id),
    },
    el("td", {}, o.order_id), el("td", {}, o.end_reason ? `${o.state} (${o.end_reason})` : o.state),
    el("td", { class: "num" }, num(o.age_min)), el("td", { class: "num" }, num(o.predicted_lateness_min)),
    el("td", {}, o.courier_id || o.delivered_by || "—"), el("td", {}, o.shard))));
}

// Render /api/kpis: one row per shard ("n/a" where a figure is unknown).
function renderKpis(data) {
  const head = ["shard", "open orders", "delivered", "on-time", "click-to-door p50 (min)",
    "p90 (min)", "couriers online", "surge max", "tick p99 (s)", "lag (s)", "breaker ticks"];
  fill("kpis-table",
    el("tr", {}, head.map((h) => el("th", {}, h))),
    data.shards.map((s) => el("tr", { "data-shard": s.shard },
      el("td", {}, s.shard), el("td", { class: "num" }, s.open_orders),
      el("td", { class: "num" }, s.delivered), el("td", { class: "num" }, pct(s.on_time_rate)),
      el("td", { class: "num" }, num(s.ctod_p50_min)), el("td", { class: "num" }, num(s.ctod_p90_min)),
      el("td", { class: "num" }, s.couriers_online), el("td", { class: "num" }, num(s.surge_multiplier_max, 2)),
      el("td", { class: "num" }, num(s.tick_p99_s, 3)), el("td", { class: "num" }, num(s.lag_s)),
      el("td", { class: "num" }, num(s.circuit_breaker_ticks, 0)))));
}
