"""Names of the topics the worker core reads and writes (declared in topics.yaml)."""

from __future__ import annotations

# ---------------------------------------------------------------- inputs (upstream apps)
ORDER_EVENTS = "order_events"
MERCHANT_READY = "merchant_ready"
DELIVERY_EVENTS = "delivery_events"
ASSIGNMENT_RESPONSES = "assignment_responses"
DISPATCH_CONTROL = "dispatch_control"
COURIER_EVENTS = "courier_events"
COURIER_PINGS = "courier_pings"
#: Inputs about one order, all handled by the order state machine.
ORDER_TOPICS = (ORDER_EVENTS, MERCHANT_READY, DELIVERY_EVENTS)
#: Input topics keyed by shard and handled by the shard engine.
SHARD_INPUTS = (*ORDER_TOPICS, ASSIGNMENT_RESPONSES, DISPATCH_CONTROL)

# ---------------------------------------------------------------- internal (worker to worker)
COURIER_POSITIONS = "courier_positions"
COURIER_SIGHTINGS = "courier_sightings"
COURIER_STATE_UPDATES = "courier_state_updates"
DISPATCH_TICKS = "dispatch_ticks"
#: Topics the worker writes and reads itself, with the one event type each JSON one carries.
INTERNAL_TYPES = {
    COURIER_SIGHTINGS: "courier_sighting",
    COURIER_STATE_UPDATES: "courier_state_update",
    DISPATCH_TICKS: "dispatch_tick",
}
INTERNAL_TOPICS = (COURIER_POSITIONS, *INTERNAL_TYPES)

# ---------------------------------------------------------------- outputs (downstream)
ASSIGNMENT_PROPOSED = "assignment_proposed"
ASSIGNMENT_COMMITTED = "assignment_committed"
ASSIGNMENT_RELEASED = "assignment_released"
ETA_UPDATES = "eta_updates"
SURGE_UPDATES = "surge_updates"
COURIER_HANDOFFS = "courier_handoffs"
#: What the shard engine tells downstream consumers about orders and zones.
DISPATCH_OUTPUTS = (
    ASSIGNMENT_PROPOSED,
    ASSIGNMENT_COMMITTED,
    ASSIGNMENT_RELEASED,
    ETA_UPDATES,
    SURGE_UPDATES,
)
OUTPUT_TOPICS = (*DISPATCH_OUTPUTS, COURIER_HANDOFFS)

#: Every topic a worker consumes.
CONSUMED_TOPICS = (*SHARD_INPUTS, COURIER_EVENTS, COURIER_PINGS, *INTERNAL_TOPICS)
