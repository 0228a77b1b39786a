"""The run's last log lines reach the experiment row."""

from __future__ import annotations

import logging

from workers.runlog import RunLog
from workers.sink import DatabaseSink


def test_the_handler_keeps_the_last_lines_of_our_loggers_only():
    with RunLog(limit=3) as run_log:
        for i in range(5):
            logging.getLogger("distill_core.distiller").info("line %d", i)
        logging.getLogger("django").warning("not ours")
    logging.getLogger("distill_core").info("after the run")
    text = run_log.text()
    assert [line.split(": ", 1)[1] for line in text.splitlines()] == ["line 2", "line 3", "line 4"]
    assert "INFO distill_core.distiller" in text and not run_log.changed


def test_a_flush_stores_the_tail(make_experiment):
    experiment = make_experiment("live", status="RUNNING")
    sink = DatabaseSink(experiment.pk)
    with RunLog() as run_log:
        sink.run_log = run_log
        logging.getLogger("distill_core.distiller").info("Epoch 1: dev accuracy 0.5")
        sink.flush()
    experiment.refresh_from_db()
    assert experiment.log_tail.endswith("INFO distill_core.distiller: Epoch 1: dev accuracy 0.5")
