"""`dispatchflow chaos`: faults, hostile input, overload and scale-out on Apache Kafka.

A seeded city rush runs through a three-node Kafka cluster and several workers in one group while
a fault schedule drawn from the seed kills and pauses workers and brokers and hostile records
(`simulators.hostile`) reach every input topic; afterwards a checker reads every output topic
and compares it with the simulator's ground truth. Modules:

* `schedule`: the fault schedule (pure, from the seed);
* `faults`: carries it out on the running processes and keeps a log of what happened;
* `probe`: what the harness samples while the run goes on (the timeline);
* `checker`: the figures, from the topics after the run (pure over records, plus reading);
* `run`: one fault run or one overload run, end to end;
* `report`: the JSON report, the printed table and the PNG timeline;
* `scaleout`: ping ingest with 1, 2 and 3 worker processes;
* `cli`: the `chaos` command and `bench scaleout`.
"""
