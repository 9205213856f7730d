// The map: a plain projected plot (metres east/north from /api/map) with a scale bar.
"use strict";

const MAP_W = 800;
const MAP_H = 560;
const MAP_PAD = 30;
const SCALE_STEPS_M = [50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

// Pixel transform fitting every point of `data` into the view, north up, equal scale.
function fitView(data) {
  const xs = [];
  const ys = [];
  for (const c of data.couriers) { xs.push(c.x_m); ys.push(c.y_m); }
  for (const m of data.merchants) { xs.push(m.x_m); ys.push(m.y_m); }
  for (const o of data.orders) {
    xs.push(o.pickup_x_m, o.dropoff_x_m);
    ys.push(o.pickup_y_m, o.dropoff_y_m);
  }
  if (!xs.length) return null;
  const minX = Math.min(...xs), maxX = Math.max(...xs);
  const minY = Math.min(...ys), maxY = Math.max(...ys);
  const spanX = Math.max(maxX - minX, 200), spanY = Math.max(maxY - minY, 200);
  const pxPerM = Math.min((MAP_W - 2 * MAP_PAD) / spanX, (MAP_H - 2 * MAP_PAD - 30) / spanY);
  const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
  return {
    pxPerM,
    x: (m) => MAP_W / 2 + (m - cx) * pxPerM,
    y: (m) => (MAP_H - 30) / 2 - (m - cy) * pxPerM,
  };
}

function lateClass(order) {
  if (order.predicted_lateness_min === null) return "noeta";
  return order.predicted_lateness_min > 0 ? "late" : "ontime";
}

function scaleBar(view) {
  const target = 140 / view.pxPerM;
  const meters = SCALE_STEPS_M.reduce((best, s) => (s <= target ? s : best), SCALE_STEPS_M[0]);
  const len = meters * view.pxPerM;
  const x0 = 16, y0 = MAP_H - 16;
  const g = svg("g", { class: "scale-bar" });
  g.append(svg("line", { x1: x0, y1: y0, x2: x0 + len, y2: y0 }));
  g.append(svg("line", { x1: x0, y1: y0 - 5, x2: x0, y2: y0 + 1 }));
  g.append(svg("line", { x1: x0 + len, y1: y0 - 5, x2: x0 + len, y2: y0 + 1 }));
  const label = svg("text", { x: x0 + len + 6, y: y0 + 4 });
  label.textContent = meters >= 1000 ? `${meters / 1000} km` : `${meters} m`;
  g.append(label);
  return g;
}

function titled(node, text) {
  const t = svg("title", {});
  t.textContent = text;
  node.append(t);
  return node;
}

// Draw `data` (from /api/map) into the #map SVG; clicking an order calls `onSelect(orderId)`.
function drawMap(data, selectedId, onSelect) {
  const root = document.getElementById("map");
  const view = fitView(data);
  if (!view) {
    const empty = svg("text", { x: MAP_W / 2, y: MAP_H / 2, class: "empty" });
    empty.textContent = "nothing to draw yet";
    root.replaceChildren(empty);
    return;
  }
  const links = svg("g", { class: "links" });
  const layer = svg("g", {});
  const selected = data.orders.find((o) => o.order_id === selectedId);
  if (selected) {
    links.append(svg("line", {
      class: "route", x1: view.x(selected.pickup_x_m), y1: view.y(selected.pickup_y_m),
      x2: view.x(selected.dropoff_x_m), y2: view.y(selected.dropoff_y_m),
    }));
    const courier = data.couriers.find((c) => c.courier_id === selected.courier_id);
    if (courier) {
      links.append(svg("line", {
        class: "route courier-link", x1: view.x(courier.x_m), y1: view.y(courier.y_m),
        x2: view.x(selected.pickup_x_m), y2: view.y(selected.pickup_y_m),
      }));
    }
  }
  for (const m of data.merchants) {
    layer.append(titled(svg("rect", {
      class: "merchant", "data-merchant-id": m.merchant_id,
      x: view.x(m.x_m) - 4, y: view.y(m.y_m) - 4, width: 8, height: 8,
    }), `merchant ${m.merchant_id}: ${m.live_orders} live of ${m.orders} orders`));
  }
  for (const o of data.orders) {
    const cls = `order ${lateClass(o)}${o.order_id === selectedId ? " selected" : ""}`;
    const late = o.predicted_lateness_min === null ? "no ETA yet"
      : `p90 ${num(Math.abs(o.predicted_lateness_min))} min ${o.predicted_lateness_min > 0 ? "past" : "before"} promise`;
    layer.append(titled(svg("circle", {
      class: cls, "data-order-id": o.order_id, r: 5,
      cx: view.x(o.dropoff_x_m), cy: view.y(o.dropoff_y_m),
      onclick: () => onSelect(o.order_id),
    }), `order ${o.order_id} (${o.state}), age ${num(o.age_min)} min, ${late}`));
  }
  for (const c of data.couriers) {
    const x = view.x(c.x_m), y = view.y(c.y_m);
    layer.append(titled(svg("circle", {
      class: `courier ${c.activity}`, "data-courier-id": c.courier_id, cx: x, cy: y, r: 6,
    }), `courier ${c.courier_id}: ${c.activity}, load ${c.load}/${c.capacity}, ${c.vehicle}`));
    if (c.load > 0) {
      const label = svg("text", { class: "load", x: x + 8, y: y + 4 });
      label.textContent = `${c.load}/${c.capacity}`;
      layer.append(label);
    }
  }
  root.replaceChildren(links, layer, scaleBar(view));
}
