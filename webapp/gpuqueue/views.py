"""Queue pages: the queue (everyone sees their teams' places; staff see and steer it all) and workers."""

from __future__ import annotations

import re
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from webapp.accounts.access import get_owned, owned
from webapp.accounts.models import MAX_PRIORITY, MIN_PRIORITY, Team, teams_of
from webapp.experiments.models import Experiment
from webapp.gpuqueue import actions
from webapp.gpuqueue.board import queue_rows, worker_rows
from webapp.gpuqueue.models import POOL_NAME_MAX, POOL_NAME_PATTERN, POOL_NAME_RULE, Pool, QueueSwitch, Worker
from webapp.gpuqueue.usage import usage_text, worker_usage

S = Experiment.Status


def staff_action(view):
    """POST only, logged in, and staff (403 otherwise, before any object is looked up)."""

    @login_required
    @require_POST
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can change the queue.")
        return view(request, *args, **kwargs)

    return wrapper


def _report(request, result: tuple[bool, str]):
    ok, message = result
    (messages.success if ok else messages.warning)(request, message)
    return redirect("gpuqueue:board")


def _refuse(request, message: str):
    """Input a staff action cannot use: the board again, with the message, as a 400."""
    messages.warning(request, message)
    response = board(request)
    response.status_code = 400
    return response


@login_required
def board(request):
    staff = request.user.is_staff
    rows = queue_rows(None if staff else owned(request.user, Experiment))
    context = {
        "nav": "queue", "rows": rows, "staff": staff,
        "queue_paused": QueueSwitch.is_paused(),
        "pools": sorted({r.experiment.pool for r in rows} | set(Pool.objects.values_list("name", flat=True))),
        "paused_pools": set(Pool.objects.filter(paused=True).values_list("name", flat=True)),
    }
    if staff:
        context["finished"] = (Experiment.objects.filter(status__in=(S.FAILED, S.CANCELLED))
                               .select_related("team").order_by("-finished_at")[:20])
        context["teams"] = Team.objects.all()
    return render(request, "gpuqueue/board.html", context)


@login_required
def workers(request):
    mine = set(teams_of(request.user).values_list("pk", flat=True))
    rows = [(w, state, [e for e in runs if request.user.is_staff or e.team_id in mine],
             sum(1 for e in runs if not (request.user.is_staff or e.team_id in mine)), usage_text(worker_usage(runs)))
            for w, state, runs in worker_rows()]
    return render(request, "gpuqueue/workers.html", {"nav": "workers", "rows": rows, "staff": request.user.is_staff})


@login_required
@require_POST
def cancel(request, pk: int):
    """Staff cancel anything; a member cancels their own experiments."""
    if request.user.is_staff:
        exp = get_object_or_404(Experiment, pk=pk)
    else:
        exp = get_owned(request.user, Experiment, pk=pk)
        if exp.owner_id != request.user.pk:
            raise PermissionDenied("Only its owner or staff can cancel this experiment.")
    return _report(request, actions.cancel(exp))


@staff_action
def move_top(request, pk: int):
    return _report(request, actions.move_to_top(get_object_or_404(Experiment, pk=pk)))


@staff_action
def move_ahead(request, pk: int):
    exp = get_object_or_404(Experiment, pk=pk)
    other_id = request.POST.get("other", "")
    valid = other_id.isascii() and other_id.isdigit() and len(other_id) <= 18  # fits the id column
    other = Experiment.objects.filter(pk=int(other_id)).first() if valid else None
    if other is None:
        return _report(request, (False, "Pick an experiment from the queue to move it ahead of."))
    return _report(request, actions.move_ahead(exp, other))


@staff_action
def priority(request, pk: int):
    exp = get_object_or_404(Experiment, pk=pk)
    try:
        value = int(request.POST.get("priority", ""))
        if not MIN_PRIORITY <= value <= MAX_PRIORITY:
            raise ValueError
    except ValueError:
        return _report(request, (False, f"Priority must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}."))
    return _report(request, actions.set_priority(exp, value))


@staff_action
def requeue(request, pk: int):
    return _report(request, actions.requeue(get_object_or_404(Experiment, pk=pk)))


@staff_action
def pause(request):
    """Pause or resume the whole queue (no `pool`) or one pool; running jobs carry on."""
    paused = request.POST.get("paused") == "1"
    pool = request.POST.get("pool", "").strip()
    if not pool:
        return _report(request, actions.pause_queue(paused))
    if len(pool) > POOL_NAME_MAX or not re.fullmatch(POOL_NAME_PATTERN, pool):
        shown = repr(pool[:POOL_NAME_MAX]) + ("…" if len(pool) > POOL_NAME_MAX else "")
        return _refuse(request, f"{shown} is not a pool name. {POOL_NAME_RULE} At most {POOL_NAME_MAX} characters.")
    return _report(request, actions.pause_pool(pool, paused))


@staff_action
def worker_mode(request, pk: int):
    ok, message = actions.set_worker_mode(get_object_or_404(Worker, pk=pk), request.POST.get("mode", ""))
    if not ok:
        return _report(request, (ok, message))
    messages.success(request, message)
    return redirect("gpuqueue:workers")


@staff_action
def team_limit(request, pk: int):
    team = get_object_or_404(Team, pk=pk)
    raw = request.POST.get("max_running", "").strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 1000:
        return _report(request, (False, "The limit must be a whole number from 0 (no limit) to 1000."))
    Team.objects.filter(pk=pk).update(max_running=int(raw))
    return _report(request, (True, f"{team.name} may run {raw if raw != '0' else 'any number of'} experiments at once."))
