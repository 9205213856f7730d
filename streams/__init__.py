"""The Faust application: agents, tables, timers and web views. The only code that touches Kafka."""
