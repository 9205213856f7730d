// The page's loop: poll the API every POLL_MS and redraw; remember the selected order.
"use strict";

const POLL_MS = 1500;
let selectedOrderId = null;
let polling = false;

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return response.json();
}

function selectOrder(orderId) {
  selectedOrderId = orderId;
  poll();
}

function renderStatus(status, map) {
  document.getElementById("clock").textContent = `${clock(status.clock_ts_ms)} UTC`;
  const r = status.reader;
  const badge = document.getElementById("reader-status");
  badge.textContent = r.caught_up ? `live · ${r.records} records`
    : `catching up · ${r.behind_records} records behind`;
  badge.className = `badge ${r.caught_up ? "live" : "behind"}`;
  document.getElementById("map-counts").textContent =
    `${map.couriers.length} couriers online with a position, ${map.orders.length} live orders, ` +
    `${map.merchants.length} merchants`;
}

async function poll() {
  if (polling) return;
  polling = true;
  try {
    const [status, map, orders, exceptions, kpis] = await Promise.all([
      getJson("/api/status"), getJson("/api/map"), getJson("/api/orders"),
      getJson("/api/exceptions"), getJson("/api/kpis"),
    ]);
    renderStatus(status, map);
    drawMap(map, selectedOrderId, selectOrder);
    renderExceptions(exceptions, selectOrder);
    renderDeadLetters(exceptions.dead_letters);
    renderOrders(orders.orders, selectedOrderId, selectOrder);
    renderKpis(kpis);
    if (selectedOrderId) renderOrder(await getJson(`/api/orders/${encodeURIComponent(selectedOrderId)}`));
    document.body.dataset.updated = String(Date.now());
  } catch (error) {
    const badge = document.getElementById("reader-status");
    badge.textContent = `console unreachable: ${error.message}`;
    badge.className = "badge error";
  } finally {
    polling = false;
  }
}

poll();
setInterval(poll, POLL_MS);
