"""The audit trail's application facade: one method per command, for trading services.

Every input is checked here, at the boundary, before any event exists: a bad value
raises ``InvalidField`` naming the field and the value, and nothing is recorded.
Domain rules (approval before start, separation of duties) are the aggregates'.

Run it on the ledger with ``PERSISTENCE_MODULE=ledger.factory:LedgerFactory`` in
its environment (``regledger`` does this); the domain itself does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from . import identifiers as check
from .activity import USER_ACTIONS, MarketDataUsage, UserAction
from .controls import RISK_METRICS, RTS6_CONTROLS, ComplianceCheck, RiskCalculation
from .deployments import ROLLBACK_LEVELS, ROLLBACK_TRIGGERS, STRATEGIES, Deployment, Rollback
from .errors import InvalidField
from .models import ModelVersion, ShadowComparison
from .reliability import SLO_SEVERITIES, SloBreach
from .trading import Execution, Order, TradeDecision

__all__ = ["SIDES", "SIGNALS", "TRADING_CAPACITIES", "AuditTrail"]

SIGNALS = frozenset({"BUY", "SELL", "HOLD"})
SIDES = frozenset({"BUY", "SELL"})
TRADING_CAPACITIES = frozenset({"DEAL", "MTCH", "AOTC"})  # RTS 22 field 29


def _common(actor: object, occurred_at: object, source_event_id: object) -> dict[str, Any]:
    return {
        "actor": check.non_empty(actor, "actor"),
        "occurred_at": check.utc_timestamp(occurred_at, "occurred_at"),
        "source_event_id": None
        if source_event_id is None
        else check.non_empty(source_event_id, "source_event_id"),
    }


def _evidence(value: object, field: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidField(field, value, "must map strings to strings")
    return dict(value)


class AuditTrail(Application[UUID]):
    """Records the platform's facts; each method returns the aggregate's id."""

    name = "AuditTrail"

    # --- trading -----------------------------------------------------------------------

    def make_trade_decision(
        self,
        *,
        decision_id: str,
        model_id: str,
        model_version: str,
        strategy: str,
        isin: str,
        signal: str,
        confidence: Decimal | str,
        lineage_hash: str,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        decision = TradeDecision(
            decision_id=check.non_empty(decision_id, "decision_id"),
            model_id=check.non_empty(model_id, "model_id"),
            model_version=check.non_empty(model_version, "model_version"),
            strategy=check.non_empty(strategy, "strategy"),
            isin=check.isin(isin),
            signal=check.one_of(signal, "signal", SIGNALS),
            confidence=check.probability(confidence, "confidence"),
            lineage_hash=check.sha256_hex(lineage_hash, "lineage_hash"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(decision)
        return decision.id

    def place_order(
        self,
        *,
        client_order_id: str,
        isin: str,
        venue: str,
        side: str,
        quantity: Decimal | str | int,
        currency: str,
        trading_capacity: str,
        executing_entity_lei: str,
        investment_decision: str,
        execution_decision: str,
        actor: str,
        occurred_at: datetime | str,
        limit_price: Decimal | str | None = None,
        decision_id: str | None = None,
        source_event_id: str | None = None,
    ) -> UUID:
        order = Order(
            client_order_id=check.non_empty(client_order_id, "client_order_id"),
            decision_id=None
            if decision_id is None
            else check.non_empty(decision_id, "decision_id"),
            isin=check.isin(isin),
            venue=check.mic(venue),
            side=check.one_of(side, "side", SIDES),
            quantity=check.decimal(quantity, "quantity", positive=True),
            limit_price=None
            if limit_price is None
            else check.decimal(limit_price, "limit_price", positive=True),
            currency=check.currency(currency),
            trading_capacity=check.one_of(trading_capacity, "trading_capacity", TRADING_CAPACITIES),
            executing_entity_lei=check.lei(executing_entity_lei, "executing_entity_lei"),
            investment_decision=check.non_empty(investment_decision, "investment_decision"),
            execution_decision=check.non_empty(execution_decision, "execution_decision"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(order)
        return order.id

    def amend_order(
        self,
        order_id: UUID,
        *,
        quantity: Decimal | str | int,
        reason: str,
        actor: str,
        occurred_at: datetime | str,
        limit_price: Decimal | str | None = None,
        source_event_id: str | None = None,
    ) -> UUID:
        order: Order = self.repository.get(order_id)
        order.amend(
            quantity=check.decimal(quantity, "quantity", positive=True),
            limit_price=None
            if limit_price is None
            else check.decimal(limit_price, "limit_price", positive=True),
            reason=check.non_empty(reason, "reason"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(order)
        return order.id

    def cancel_order(
        self,
        order_id: UUID,
        *,
        reason: str,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        order: Order = self.repository.get(order_id)
        order.cancel(
            reason=check.non_empty(reason, "reason"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(order)
        return order.id

    def record_execution(
        self,
        *,
        execution_id: str,
        isin: str,
        venue: str,
        executing_entity_lei: str,
        buyer_lei: str,
        seller_lei: str,
        investment_decision: str,
        execution_decision: str,
        trading_capacity: str,
        quantity: Decimal | str | int,
        price: Decimal | str,
        currency: str,
        trading_time: datetime | str,
        actor: str,
        occurred_at: datetime | str,
        client_order_id: str | None = None,
        instrument_description: str | None = None,
        cfi: str | None = None,
        notional_currency_1: str | None = None,
        notional_currency_2: str | None = None,
        source_event_id: str | None = None,
    ) -> UUID:
        checked_isin = check.isin(isin)
        otc = checked_isin.startswith("EZ")
        if otc and (instrument_description is None or cfi is None or notional_currency_1 is None):
            raise InvalidField(
                "isin",
                checked_isin,
                "is an OTC derivative (EZ): give instrument_description, cfi and "
                "notional_currency_1 as RTS 22 requires",
            )
        execution = Execution(
            execution_id=check.non_empty(execution_id, "execution_id"),
            client_order_id=None
            if client_order_id is None
            else check.non_empty(client_order_id, "client_order_id"),
            isin=checked_isin,
            instrument_description=None
            if instrument_description is None
            else check.non_empty(instrument_description, "instrument_description"),
            cfi=None if cfi is None else check.cfi(cfi),
            notional_currency_1=None
            if notional_currency_1 is None
            else check.currency(notional_currency_1, "notional_currency_1"),
            notional_currency_2=None
            if notional_currency_2 is None
            else check.currency(notional_currency_2, "notional_currency_2"),
            venue=check.mic(venue),
            executing_entity_lei=check.lei(executing_entity_lei, "executing_entity_lei"),
            buyer_lei=check.lei(buyer_lei, "buyer_lei"),
            seller_lei=check.lei(seller_lei, "seller_lei"),
            investment_decision=check.non_empty(investment_decision, "investment_decision"),
            execution_decision=check.non_empty(execution_decision, "execution_decision"),
            trading_capacity=check.one_of(trading_capacity, "trading_capacity", TRADING_CAPACITIES),
            quantity=check.decimal(quantity, "quantity", positive=True),
            price=check.decimal(price, "price"),
            currency=check.currency(currency),
            trading_time=check.utc_timestamp(trading_time, "trading_time"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(execution)
        return execution.id

    def amend_execution(
        self,
        execution_id: UUID,
        *,
        quantity: Decimal | str | int,
        price: Decimal | str,
        reason: str,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        execution: Execution = self.repository.get(execution_id)
        execution.amend(
            quantity=check.decimal(quantity, "quantity", positive=True),
            price=check.decimal(price, "price"),
            reason=check.non_empty(reason, "reason"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(execution)
        return execution.id

    def cancel_execution(
        self,
        execution_id: UUID,
        *,
        reason: str,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        execution: Execution = self.repository.get(execution_id)
        execution.cancel(
            reason=check.non_empty(reason, "reason"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(execution)
        return execution.id

    # --- risk and compliance -----------------------------------------------------------

    def record_risk_calculation(
        self,
        *,
        calculation_id: str,
        portfolio: str,
        metric: str,
        method: str,
        value: Decimal | str,
        limit: Decimal | str,
        currency: str,
        evidence: Mapping[str, str],
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        checked_value = check.decimal(value, "value")
        checked_limit = check.decimal(limit, "limit")
        calculation = RiskCalculation(
            calculation_id=check.non_empty(calculation_id, "calculation_id"),
            portfolio=check.non_empty(portfolio, "portfolio"),
            metric=check.one_of(metric, "metric", RISK_METRICS),
            method=check.non_empty(method, "method"),
            value=checked_value,
            limit=checked_limit,
            currency=check.currency(currency),
            breached=abs(checked_value) > checked_limit,
            evidence=_evidence(evidence, "evidence"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(calculation)
        return calculation.id

    def record_compliance_check(
        self,
        *,
        check_id: str,
        client_order_id: str,
        control: str,
        passed: bool,
        observed: Decimal | str | int,
        threshold: Decimal | str | int,
        evidence: Mapping[str, str],
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        if not isinstance(passed, bool):
            raise InvalidField("passed", passed, "must be true or false")
        compliance = ComplianceCheck(
            check_id=check.non_empty(check_id, "check_id"),
            client_order_id=check.non_empty(client_order_id, "client_order_id"),
            control=check.one_of(control, "control", RTS6_CONTROLS),
            passed=passed,
            observed=check.decimal(observed, "observed"),
            threshold=check.decimal(threshold, "threshold"),
            evidence=_evidence(evidence, "evidence"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(compliance)
        return compliance.id

    # --- market data and people ----------------------------------------------------------

    def record_market_data_usage(
        self,
        *,
        usage_id: str,
        feed: str,
        isin: str,
        snapshot_hash: str,
        snapshot_time: datetime | str,
        purpose: str,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        usage = MarketDataUsage(
            usage_id=check.non_empty(usage_id, "usage_id"),
            feed=check.non_empty(feed, "feed"),
            isin=check.isin(isin),
            snapshot_hash=check.sha256_hex(snapshot_hash, "snapshot_hash"),
            snapshot_time=check.utc_timestamp(snapshot_time, "snapshot_time"),
            purpose=check.non_empty(purpose, "purpose"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(usage)
        return usage.id

    def record_user_action(
        self,
        *,
        action_id: str,
        action: str,
        target: str,
        details: Mapping[str, str],
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        user_action = UserAction(
            action_id=check.non_empty(action_id, "action_id"),
            action=check.one_of(action, "action", USER_ACTIONS),
            target=check.non_empty(target, "target"),
            details=_evidence(details, "details"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(user_action)
        return user_action.id

    # --- change management ---------------------------------------------------------------

    def request_deployment(
        self,
        *,
        change_ticket: str,
        service: str,
        version: str,
        commit: str,
        strategy: str,
        actor: str,
        occurred_at: datetime | str,
        emergency: bool = False,
        source_event_id: str | None = None,
    ) -> UUID:
        if not isinstance(emergency, bool):
            raise InvalidField("emergency", emergency, "must be true or false")
        deployment = Deployment(
            change_ticket=check.non_empty(change_ticket, "change_ticket"),
            service=check.non_empty(service, "service"),
            version=check.non_empty(version, "version"),
            commit=check.non_empty(commit, "commit"),
            strategy=check.one_of(strategy, "strategy", STRATEGIES),
            emergency=emergency,
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(deployment)
        return deployment.id

    def approve_deployment(
        self,
        deployment_id: UUID,
        *,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        """Approve (or, for a started emergency change, approve retroactively)."""
        return self._advance(deployment_id, "approve", actor, occurred_at, source_event_id)

    def start_deployment(
        self,
        deployment_id: UUID,
        *,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        return self._advance(deployment_id, "start", actor, occurred_at, source_event_id)

    def promote_deployment(
        self,
        deployment_id: UUID,
        *,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        return self._advance(deployment_id, "promote", actor, occurred_at, source_event_id)

    def _advance(
        self,
        deployment_id: UUID,
        step: str,
        actor: object,
        occurred_at: object,
        source_event_id: object,
    ) -> UUID:
        """One lifecycle step of a deployment: its rules are the aggregate's."""
        common = _common(actor, occurred_at, source_event_id)
        deployment: Deployment = self.repository.get(deployment_id)
        getattr(deployment, step)(**common)
        self.save(deployment)
        return deployment.id

    def roll_back_deployment(
        self,
        deployment_id: UUID,
        *,
        rollback_id: str,
        level: int,
        trigger: str,
        reason: str,
        evidence: Mapping[str, str],
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        """Record the rollback and the deployment's end together (one atomic append)."""
        if type(level) is not int or level not in ROLLBACK_LEVELS:
            raise InvalidField("level", level, "must be 1 (service), 2 (feature), 3 (system) "
                               "or 4 (emergency)")  # fmt: skip
        common = _common(actor, occurred_at, source_event_id)
        checked_trigger = check.one_of(trigger, "trigger", ROLLBACK_TRIGGERS)
        checked_id = check.non_empty(rollback_id, "rollback_id")
        deployment: Deployment = self.repository.get(deployment_id)
        deployment.roll_back(rollback_id=checked_id, level=level, trigger=checked_trigger, **common)
        rollback = Rollback(
            rollback_id=checked_id,
            change_ticket=deployment.change_ticket,
            service=deployment.service,
            level=level,
            trigger=checked_trigger,
            reason=check.non_empty(reason, "reason"),
            evidence=_evidence(evidence, "evidence"),
            **common,
        )
        self.save(deployment, rollback)
        return rollback.id

    def record_slo_breach(
        self,
        *,
        slo: str,
        service: str,
        severity: str,
        rule: str,
        long_window_minutes: int,
        short_window_minutes: int,
        burn_rate_long: Decimal | str,
        burn_rate_short: Decimal | str,
        threshold: Decimal | str,
        sli_long: Decimal | str,
        sli_short: Decimal | str,
        window_end: datetime | str,
        error_budget_remaining: Decimal | str,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        """Record a burn-rate alert that fired; its id is (slo, rule, window_end), so one
        episode is recorded once however often the alert is delivered."""
        for name, minutes in (("long_window_minutes", long_window_minutes),
                              ("short_window_minutes", short_window_minutes)):  # fmt: skip
            if type(minutes) is not int or minutes <= 0:
                raise InvalidField(name, minutes, "must be a positive whole number of minutes")
        if short_window_minutes >= long_window_minutes:
            raise InvalidField(
                "short_window_minutes", short_window_minutes,
                f"must be shorter than long_window_minutes ({long_window_minutes})",
            )  # fmt: skip
        checked_slo = check.non_empty(slo, "slo")
        checked_rule = check.non_empty(rule, "rule")
        end = check.utc_timestamp(window_end, "window_end")
        breach = SloBreach(
            breach_id=SloBreach.breach_id(checked_slo, checked_rule, end),
            slo=checked_slo,
            service=check.non_empty(service, "service"),
            severity=check.one_of(severity, "severity", SLO_SEVERITIES),
            rule=checked_rule,
            long_window_minutes=long_window_minutes,
            short_window_minutes=short_window_minutes,
            burn_rate_long=check.decimal(burn_rate_long, "burn_rate_long"),
            burn_rate_short=check.decimal(burn_rate_short, "burn_rate_short"),
            threshold=check.decimal(threshold, "threshold", positive=True),
            sli_long=check.probability(sli_long, "sli_long"),
            sli_short=check.probability(sli_short, "sli_short"),
            window_end=end,
            error_budget_remaining=check.decimal(error_budget_remaining, "error_budget_remaining"),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(breach)
        return breach.id

    # --- models ----------------------------------------------------------------------------

    def register_model_version(
        self,
        *,
        model_id: str,
        version: str,
        training_data_hash: str,
        parameters_hash: str,
        description: str,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        model = ModelVersion(
            model_id=check.non_empty(model_id, "model_id"),
            version=check.non_empty(version, "version"),
            training_data_hash=check.sha256_hex(training_data_hash, "training_data_hash"),
            parameters_hash=check.sha256_hex(parameters_hash, "parameters_hash"),
            description=check.non_empty(description, "description", max_len=2000),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(model)
        return model.id

    def record_shadow_comparison(
        self,
        *,
        comparison_id: str,
        model_id: str,
        live_version: str,
        shadow_version: str,
        window_start: datetime | str,
        window_end: datetime | str,
        samples: int,
        agreements: int,
        actor: str,
        occurred_at: datetime | str,
        source_event_id: str | None = None,
    ) -> UUID:
        start = check.utc_timestamp(window_start, "window_start")
        end = check.utc_timestamp(window_end, "window_end")
        if end <= start:
            raise InvalidField("window_end", end.isoformat(), "must be after window_start")
        if type(samples) is not int or samples <= 0:
            raise InvalidField("samples", samples, "must be a positive integer")
        if type(agreements) is not int or not 0 <= agreements <= samples:
            raise InvalidField("agreements", agreements, f"must be an integer from 0 to {samples}")
        comparison = ShadowComparison(
            comparison_id=check.non_empty(comparison_id, "comparison_id"),
            model_id=check.non_empty(model_id, "model_id"),
            live_version=check.non_empty(live_version, "live_version"),
            shadow_version=check.non_empty(shadow_version, "shadow_version"),
            window_start=start,
            window_end=end,
            samples=samples,
            agreements=agreements,
            agreement_rate=(Decimal(agreements) / Decimal(samples)).quantize(Decimal("0.0001")),
            **_common(actor, occurred_at, source_event_id),
        )
        self.save(comparison)
        return comparison.id
