import pytest
from tests.workers.conftest import wake
from tests.conftest import wait_for
from webapp.experiments.models import Experiment

def test_probe(start_worker, fake_job):
    jobs = [fake_job(f"j{i}", steps=1) for i in range(4)]
    w = start_worker("a")
    wake()
    wait_for(lambda: Experiment.objects.filter(status="SUCCEEDED").count() == 4, timeout=60)
    for e in Experiment.objects.order_by("claimed_at"):
        print(e.name, e.claimed_at.time(), e.started_at.time(), e.finished_at.time())
    print(w.log()[-6000:])
