"""Domain rules of the audit trail, on the library's in-memory recorder (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.application import AuditTrail
from domain.deployments import Deployment
from domain.errors import (
    ApprovalRequired,
    InvalidField,
    InvalidTransition,
    SeparationOfDutiesViolated,
)
from domain.identifiers import isin_check_digit, lei_check_digits
from domain.trading import Order

T0 = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
LEI = "529900T8BM49AURSDO" + lei_check_digits("529900T8BM49AURSDO")
OTHER_LEI = "5493001KJTIIGC8Y1R" + lei_check_digits("5493001KJTIIGC8Y1R")
FX_FORWARD = "EZ" + "0A1B2C3D4" + isin_check_digit("EZ0A1B2C3D4")


@pytest.fixture
def trail() -> AuditTrail:
    return AuditTrail(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def _deployment(trail: AuditTrail, *, emergency: bool = False) -> Deployment:
    deployment_id = trail.request_deployment(
        change_ticket="CHG-1001",
        service="pricing-engine",
        version="4.2.0",
        commit="9f2c1e7",
        strategy="CANARY",
        emergency=emergency,
        actor="alice",
        occurred_at=T0,
    )
    deployment: Deployment = trail.repository.get(deployment_id)
    return deployment


def test_a_deployment_cannot_start_before_approval(trail: AuditTrail) -> None:
    deployment = _deployment(trail)
    with pytest.raises(ApprovalRequired) as caught:
        trail.start_deployment(deployment.id, actor="ops", occurred_at=T0)
    assert str(caught.value) == (
        "deployment CHG-1001 has no approval; approve it before starting "
        "(only an emergency change may start first)"
    )
    assert trail.repository.get(deployment.id).status == "requested"


def test_the_requester_cannot_approve_their_own_change(trail: AuditTrail) -> None:
    deployment = _deployment(trail)
    with pytest.raises(SeparationOfDutiesViolated) as caught:
        trail.approve_deployment(deployment.id, actor="alice", occurred_at=T0)
    assert str(caught.value) == (
        "alice requested deployment CHG-1001 and cannot approve it; another person must approve"
    )


def test_the_lifecycle_requested_approved_started_promoted(trail: AuditTrail) -> None:
    deployment = _deployment(trail)
    trail.approve_deployment(deployment.id, actor="bob", occurred_at=T0 + timedelta(minutes=5))
    trail.start_deployment(deployment.id, actor="ops", occurred_at=T0 + timedelta(minutes=9))
    trail.promote_deployment(deployment.id, actor="ops", occurred_at=T0 + timedelta(hours=1))
    done: Deployment = trail.repository.get(deployment.id)
    assert (done.status, done.approver, done.requester, done.version) == (
        "promoted",
        "bob",
        "alice",
        4,
    )
    with pytest.raises(InvalidTransition):
        trail.approve_deployment(deployment.id, actor="carol", occurred_at=T0)


def test_an_emergency_change_starts_first_and_its_pending_approval_is_visible(
    trail: AuditTrail,
) -> None:
    deployment = _deployment(trail, emergency=True)
    started_at = T0 + timedelta(minutes=2)
    trail.start_deployment(deployment.id, actor="alice", occurred_at=started_at)
    running: Deployment = trail.repository.get(deployment.id)
    assert running.retroactive_approval_due == started_at + timedelta(hours=24)
    assert running.retroactive_approval_overdue(started_at + timedelta(hours=23)) is False
    assert running.retroactive_approval_overdue(started_at + timedelta(hours=25)) is True
    # Separation of duties holds for the retroactive approval too.
    with pytest.raises(SeparationOfDutiesViolated):
        trail.approve_deployment(deployment.id, actor="alice", occurred_at=started_at)
    trail.approve_deployment(
        deployment.id, actor="bob", occurred_at=started_at + timedelta(hours=3)
    )
    approved: Deployment = trail.repository.get(deployment.id)
    events = trail.repository.event_store.get(deployment.id)
    last = list(events)[-1]
    assert type(last).__qualname__ == "Deployment.RetroactivelyApproved"
    assert (last.late, last.due) == (False, started_at + timedelta(hours=24))  # type: ignore[attr-defined]
    assert approved.retroactive_approval_overdue(started_at + timedelta(hours=30)) is False


def test_a_late_retroactive_approval_is_recorded_as_late(trail: AuditTrail) -> None:
    deployment = _deployment(trail, emergency=True)
    trail.start_deployment(deployment.id, actor="alice", occurred_at=T0)
    trail.approve_deployment(deployment.id, actor="bob", occurred_at=T0 + timedelta(hours=26))
    last = list(trail.repository.event_store.get(deployment.id))[-1]
    assert last.late is True  # type: ignore[attr-defined]


def test_a_rollback_ends_the_deployment_and_records_its_evidence(trail: AuditTrail) -> None:
    deployment = _deployment(trail)
    trail.approve_deployment(deployment.id, actor="bob", occurred_at=T0)
    trail.start_deployment(deployment.id, actor="ops", occurred_at=T0)
    rollback_id = trail.roll_back_deployment(
        deployment.id,
        rollback_id="RB-7",
        level=1,
        trigger="LATENCY",
        reason="p95 latency +140 ms over baseline",
        evidence={"window": "09:00-09:05", "p95_ms": "212", "baseline_p95_ms": "72"},
        actor="rollback-guard",
        occurred_at=T0 + timedelta(minutes=5),
    )
    assert trail.repository.get(deployment.id).status == "rolled_back"
    rollback = list(trail.repository.event_store.get(rollback_id))[0]
    assert (rollback.level, rollback.trigger, rollback.change_ticket) == (  # type: ignore[attr-defined]
        1,
        "LATENCY",
        "CHG-1001",
    )
    for level in (5, True, {}, "1", 1.0):  # {} is unhashable: still a named refusal
        with pytest.raises(InvalidField) as caught:
            trail.roll_back_deployment(
                deployment.id, rollback_id="RB-8", level=level, trigger="LATENCY", reason="x",
                evidence={}, actor="a", occurred_at=T0,
            )  # type: ignore[arg-type]  # fmt: skip
        assert str(caught.value) == (
            f"level={level!r} must be 1 (service), 2 (feature), 3 (system) or 4 (emergency)"
        )


def _order(trail: AuditTrail, **override: object) -> Order:
    fields: dict[str, object] = {
        "client_order_id": "ORD-1",
        "isin": "DE0007164600",
        "venue": "XETR",
        "side": "BUY",
        "quantity": "100",
        "limit_price": "142.50",
        "currency": "EUR",
        "trading_capacity": "DEAL",
        "executing_entity_lei": LEI,
        "investment_decision": "ALGO:momentum-v3",
        "execution_decision": "ALGO:sor-2",
        "actor": "oms",
        "occurred_at": T0,
    }
    fields.update(override)
    order_id = trail.place_order(**fields)  # type: ignore[arg-type]
    order: Order = trail.repository.get(order_id)
    return order


def test_a_cancelled_order_stays_cancelled(trail: AuditTrail) -> None:
    order = _order(trail)
    trail.amend_order(order.id, quantity="50", reason="client reduced", actor="oms", occurred_at=T0)
    trail.cancel_order(order.id, reason="client cancelled", actor="oms", occurred_at=T0)
    with pytest.raises(InvalidTransition) as caught:
        trail.amend_order(order.id, quantity="10", reason="late", actor="oms", occurred_at=T0)
    assert str(caught.value) == "order ORD-1 is cancelled; it cannot be amended"
    final: Order = trail.repository.get(order.id)
    assert (final.status, final.quantity, final.version) == ("cancelled", Decimal("50"), 3)


@pytest.mark.parametrize(
    ("override", "field", "value"),
    [
        ({"isin": "DE0007164601"}, "isin", "DE0007164601"),
        ({"executing_entity_lei": LEI[:-1] + "0"}, "executing_entity_lei", LEI[:-1] + "0"),
        ({"venue": "XET"}, "venue", "XET"),
        ({"currency": "EURO"}, "currency", "EURO"),
        ({"quantity": 1.5}, "quantity", 1.5),
        ({"trading_capacity": "PRIN"}, "trading_capacity", "PRIN"),
        ({"occurred_at": datetime(2026, 3, 2, 9, 0)}, "occurred_at", datetime(2026, 3, 2, 9, 0)),
    ],
    ids=["isin", "lei", "mic", "currency", "float", "capacity", "naive-time"],
)
def test_invalid_identifiers_are_refused_naming_field_and_value(
    trail: AuditTrail, override: dict[str, object], field: str, value: object
) -> None:
    with pytest.raises(InvalidField) as caught:
        _order(trail, **override)
    assert (caught.value.field, caught.value.value) == (field, value)
    assert str(caught.value).startswith(f"{field}={value!r} ")
    assert trail.recorder.max_notification_id() is None  # nothing recorded


def test_an_otc_fx_forward_needs_its_rts22_instrument_fields(trail: AuditTrail) -> None:
    fields: dict[str, object] = {
        "execution_id": "EX-1",
        "isin": FX_FORWARD,
        "venue": "XOFF",
        "executing_entity_lei": LEI,
        "buyer_lei": LEI,
        "seller_lei": OTHER_LEI,
        "investment_decision": "ALGO:fx-carry-1",
        "execution_decision": "ALGO:fx-exec-1",
        "trading_capacity": "DEAL",
        "quantity": "1000000",
        "price": "1.0862",
        "currency": "USD",
        "trading_time": T0,
        "actor": "fx-gateway",
        "occurred_at": T0,
    }
    with pytest.raises(InvalidField) as caught:
        trail.record_execution(**fields)  # type: ignore[arg-type]
    assert caught.value.field == "isin"
    execution_id = trail.record_execution(
        **fields,  # type: ignore[arg-type]
        instrument_description="EUR/USD FX forward 2026-06-02",
        cfi="JFTXFP",
        notional_currency_1="EUR",
        notional_currency_2="USD",
    )
    recorded = list(trail.repository.event_store.get(execution_id))[0]
    assert (recorded.isin, recorded.cfi, recorded.trading_time) == (FX_FORWARD, "JFTXFP", T0)  # type: ignore[attr-defined]
