"""The dispatch decision core: candidates, bundles, costs, assignment, policy. Pure: no Kafka."""
