"""Settling from what the backend billed (``ledger.settled_cost``), as invariants:

- a reported amount of money is what is settled, whatever else is known;
- else reported seconds x the quoted price, for any ending (a provider reports seconds on a
  failed job only when its ``bills_failed_jobs`` rule says it may have been charged);
- else a completed job costs its output (or quoted) seconds x price, and any other ending $0;
- never negative; and a finished job's billed facts are never changed by a late update.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from talkinghead.ledger import settled_cost
from talkinghead.models import Job, JobStatus, JobUpdate, Quote

money = st.none() | st.floats(min_value=0, max_value=1e4, allow_nan=False)
seconds = st.none() | st.floats(min_value=0, max_value=600, allow_nan=False)
endings = st.sampled_from([JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])


def _job(status, billed_usd, billed_seconds, duration, quoted_seconds, price) -> Job:
    quote = Quote(provider="p", model="m", mode="std", seconds=quoted_seconds, price_per_second=price,
                  cost_usd=round(quoted_seconds * price, 4))
    job = Job(provider="p", model="m", quote=quote, reserved_usd=quote.cost_usd)
    job.apply(JobUpdate(status=status, task_id="t", duration_s=duration, billed_usd=billed_usd,
                        billed_seconds=billed_seconds))
    return job


@settings(max_examples=300, deadline=None)
@given(endings, money, seconds, seconds, st.floats(min_value=0, max_value=300), st.floats(min_value=0, max_value=1))
def test_settled_cost_follows_what_was_billed(status, billed_usd, billed_seconds, duration, quoted, price):
    job = _job(status, billed_usd, billed_seconds, duration, quoted, price)
    cost = settled_cost(job)
    assert cost >= 0
    if billed_usd is not None:
        assert cost == round(billed_usd, 6)
    elif billed_seconds is not None:
        assert cost == round(billed_seconds * price, 6)
    elif status is JobStatus.COMPLETED:
        assert cost == round((duration if duration is not None else quoted) * price, 6)
    else:
        assert cost == 0.0


@settings(max_examples=200, deadline=None)
@given(endings, money, seconds, st.lists(st.tuples(st.sampled_from(list(JobStatus)), money, seconds), max_size=5))
def test_a_finished_jobs_billed_facts_never_change(status, billed_usd, billed_seconds, later):
    job = _job(status, billed_usd, billed_seconds, None, 10.0, 0.1)
    before = (job.billed_usd, job.billed_seconds, job.billed_units, settled_cost(job))
    for late_status, late_usd, late_seconds in later:
        assert not job.apply(JobUpdate(status=late_status, billed_usd=late_usd, billed_seconds=late_seconds))
    assert (job.billed_usd, job.billed_seconds, job.billed_units, settled_cost(job)) == before
