"""The import graph of webapp, workers and distill_core (read with ast; lazy imports count): no cycles, and
dependencies follow the rule README states under "Architecture":

- distill_core imports neither webapp nor workers;
- webapp reaches workers only through workers.dispatch (sending work: wake-ups, housekeeping jobs, by task
  name), workers.launch (the command lines runall starts) and the metric store's writers (workers.bulk,
  workers.sink) that the tracked-run ingest shares with the sink;
- workers are Celery wiring around webapp's rows and services: they import webapp's models and the services
  listed in WORKERS_MAY_USE (the queue's state machine among them), never its views, forms or API;
- the registry (teachers, datasets, word vectors) and the metric store sit below experiments: they read only
  what BELOW_EXPERIMENTS allows of it.
"""

from __future__ import annotations

from tests.import_graph import cycles, graph, modules

WEBAPP_MAY_USE = {"workers.dispatch", "workers.launch", "workers.bulk", "workers.sink"}
WORKERS_MAY_USE = {"webapp.gpuqueue.queue",  # claim, lease, finish, interrupt, recover
                   "webapp.experiments.dependencies", "webapp.registry.archive_jobs",
                   "webapp.experiments.trials",  # trials.py holds the TuneTrial model
                   "webapp.notifications.events", "webapp.notifications.delivery"}
# Their models name Experiment by string; a checkpoint's page says which queued run still trains it.
BELOW_EXPERIMENTS = {"webapp.registry": {"webapp.experiments.dependencies"}, "webapp.metrics": set()}


def _package(module: str) -> str:
    return module.split(".")[0]


def test_there_is_no_import_cycle():
    assert cycles(graph()) == []


def test_the_one_way_rule():
    packages = {name for name, path in modules().items() if path.name == "__init__.py"}
    wrong = []
    for module, imported in graph().items():
        for target in imported - packages:  # `from webapp.experiments import models` also runs the package's init
            source, dest = _package(module), _package(target)
            if source == "distill_core" and dest != "distill_core":
                wrong.append((module, target))
            elif source == "webapp" and dest == "workers" and target not in WEBAPP_MAY_USE:
                wrong.append((module, target))
            elif (source == "workers" and dest == "webapp" and not target.endswith(".models")
                  and target not in WORKERS_MAY_USE):
                wrong.append((module, target))
    assert wrong == []


def test_the_registry_and_the_metric_store_import_experiments_only_where_allowed():
    packages = {name for name, path in modules().items() if path.name == "__init__.py"}
    wrong = [(module, target) for app, allowed in BELOW_EXPERIMENTS.items()
             for module, imported in graph().items() if module.startswith(app + ".")
             for target in imported - packages if target.startswith("webapp.experiments.") and target not in allowed]
    assert wrong == []


def test_package_inits_import_nothing_of_the_other_packages():
    g = graph()
    for name, path in modules().items():
        if path.name == "__init__.py" and name != "workers":  # workers/__init__ loads the Celery app
            assert g[name] == set(), name


def test_the_checker_finds_cycles_and_lazy_imports(tmp_path, monkeypatch):
    import tests.import_graph as ig

    for name, body in {"a.py": "def f():\n    from pkg import b\n", "b.py": "from pkg.c import x\n",
                       "c.py": "from . import a\n", "__init__.py": "", "d.py": "import pkg.a\n"}.items():
        (tmp_path / "pkg").mkdir(exist_ok=True)
        (tmp_path / "pkg" / name).write_text(body)
    monkeypatch.setattr(ig, "ROOT", tmp_path)
    g = ig.graph(["pkg"])
    assert g["pkg.a"] == {"pkg", "pkg.b"} and g["pkg.c"] == {"pkg", "pkg.a"} and g["pkg.d"] == {"pkg.a"}
    assert ig.cycles(g) == [["pkg.a", "pkg.b", "pkg.c"]]
