// The order panel: an order's state, milestones and decision history with its cost terms.
"use strict";

// The quantity behind a weighted term: "n/a" without the weights, "—" for a term weighted 0.
function quantity(term) {
  if (term.weight === null) return "n/a";
  if (term.quantity === null) return el("span", { title: "weight 0: not priced" }, "—");
  return `${num(term.quantity, 2)} ${term.unit}`;
}

function termTable(decision) {
  const rows = decision.terms.map((t) => el("tr", {
    class: "term", "data-term": t.name, "data-cost-min": t.cost_min,
  },
  el("td", { title: t.meaning }, t.label),
  el("td", { class: "num" }, quantity(t)),
  el("td", { class: "num" }, t.weight === null ? "n/a" : num(t.weight, 2)),
  el("td", { class: "num" }, num(t.cost_min, 2))));
  return el("table", { class: "terms" },
    el("thead", {}, el("tr", {},
      el("th", {}, "term"), el("th", { class: "num" }, "quantity"),
      el("th", { class: "num", title: "cost minutes per unit of the quantity" }, "weight"),
      el("th", { class: "num", title: "weighted term, in minutes of customer delay" }, "cost (min)"))),
    el("tbody", {}, rows),
    el("tfoot", {},
      el("tr", { class: "terms-sum", "data-terms-sum-min": decision.terms_sum_min },
        el("td", { colspan: 3 }, "sum of the terms"), el("td", { class: "num" }, num(decision.terms_sum_min, 2))),
      el("tr", { class: "cost", "data-cost-min": decision.cost_min },
        el("td", { colspan: 3 }, "decision cost"), el("td", { class: "num" }, num(decision.cost_min, 2)))));
}

function proposalBody(d) {
  const margin = d.runner_up_margin_min === 0 ? "a tie: the same cost"
    : `${d.runner_up_margin_min > 0 ? "+" : ""}${num(d.runner_up_margin_min, 2)} min`;
  const runnerUp = d.runner_up_courier_id
    ? `${d.runner_up_courier_id} at ${num(d.runner_up_cost_min, 2)} min (${margin})`
    : "none (no other candidate)";
  return [
    termTable(d),
    d.weights_known ? null : el("p", { class: "muted" },
      "weights of this policy version unknown: quantities not shown"),
    el("dl", {},
      el("dt", {}, "runner-up"), el("dd", { class: "runner-up" }, runnerUp),
      el("dt", {}, "ETA drop-off"), el("dd", {},
        `p50 ${num(d.eta_p50_min)} min, p90 ${num(d.eta_p90_min)} min from the decision`),
      el("dt", {}, "lease until"), el("dd", {}, clock(d.lease_expires_ts_ms))),
  ];
}

function decisionCard(d) {
  const head = el("div", { class: "decision-head" },
    el("span", { class: `badge ${d.kind}` }, d.kind),
    ` ${clock(d.ts_ms)} `,
    d.courier_id ? el("span", {}, "courier ", el("b", {}, d.courier_id)) : null,
    d.reason ? el("span", { class: "reason" }, ` — ${d.reason}`) : null);
  const versions = d.policy_version || d.model_version
    ? el("div", { class: "versions muted" },
      `policy ${d.policy_version || "n/a"} · model ${d.model_version || "n/a"}`)
    : null;
  return el("div", {
    class: "decision", "data-kind": d.kind, "data-decision-id": d.decision_id || "",
    "data-cost-min": d.kind === "proposed" ? d.cost_min : null,
  }, head,
  d.detail ? el("div", { class: "muted" }, d.detail) : null,
  d.kind === "proposed" ? proposalBody(d) : null,
  d.order_ids.length > 1 ? el("div", { class: "muted" }, `bundle: ${d.order_ids.join(", ")}`) : null,
  versions);
}

// Render /api/orders/<id> into the order panel.
function renderOrder(detail) {
  const o = detail.order;
  document.getElementById("order-title").replaceChildren(
    el("b", { "data-order-id": o.order_id }, o.order_id), " ",
    el("span", { class: `badge state ${o.state}` }, o.state));
  const lateness = o.predicted_lateness_min === null ? "n/a"
    : `${num(o.predicted_lateness_min)} min ${o.predicted_lateness_min > 0 ? "late" : "(slack)"}`;
  const facts = el("dl", { class: "facts" },
    el("dt", {}, "shard · merchant"), el("dd", {}, `${o.shard} · ${o.merchant_id}`),
    el("dt", {}, "courier"),
    el("dd", {}, o.delivered_by ? `${o.delivered_by} (delivered)` : o.courier_id || "none"),
    el("dt", {}, "age"), el("dd", {}, `${num(o.age_min)} min`),
    el("dt", {}, "promise"), el("dd", {}, clock(o.promise_ts_ms)),
    el("dt", {}, "ETA drop-off"),
    el("dd", {}, `p50 ${clock(o.eta_p50_ts_ms)} · p90 ${clock(o.eta_p90_ts_ms)}`),
    el("dt", {}, "predicted lateness (p90)"), el("dd", {}, lateness));
  const steps = el("ul", { class: "milestones" },
    detail.milestones.map((m) => el("li", {}, `${m.name.replace("_", " ")} ${clock(m.ts_ms)}`)));
  const history = detail.decisions.length
    ? detail.decisions.slice().reverse().map(decisionCard)
    : [el("p", { class: "muted" }, "no decision yet")];
  fill("order-detail", facts, steps, el("h3", {}, "Decisions (newest first)"), history);
}
