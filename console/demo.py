"""A seeded simulation of audited trading days, recorded through the ``AuditTrail`` facade.

``run_demo`` plays ``days`` weekdays from Monday 2026-03-02: model versions, people
logging in and changing things, continuous trading with market data, model decisions,
risk figures, pre-trade controls (RTS 6), orders and fills (RTS 22), corrections, an
OTC FX forward, three deployments (one rolled back, one emergency change approved
afterwards) and a shadow-mode comparison of a candidate model.

Everything is derived from the seed: one ``random.Random(seed)``, ids built from the
seed, the date and counters, and a simulated clock (``domain.clock.use_clock``) that
stamps every event. The same seed therefore records the same events, byte for byte,
except for the ledger's own ``recorded_at`` (the database clock). Ids are natural
keys, so the same seed run twice into one ledger conflicts: use a fresh ledger.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.application import AuditTrail
from domain.clock import use_clock
from domain.identifiers import isin, isin_check_digit, lei, lei_check_digits, mic

__all__ = ["START_DAY", "DemoSummary", "run_demo", "trading_days"]

START_DAY = date(2026, 3, 2)  # a Monday
EUROPE = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
CYCLE = timedelta(minutes=6)  # each instrument is evaluated once per cycle
MS = timedelta(milliseconds=1)


def _lei(prefix18: str) -> str:
    return lei(prefix18 + lei_check_digits(prefix18))


FIRM_LEI = _lei("529900T8BM49AURSDO")  # the executing entity
FX_BANK_LEI = _lei("7LTWFZYICNSX8D621K")  # the OTC counterparty of the FX forward
CLEARING_LEI = {  # the central counterparty facing us on each venue
    "XETR": _lei("529900LN3S50JPU47S"),
    "XNAS": _lei("549300ZB65E6R5PUUR"),
    "XPAR": _lei("R1IO4YJ0O79SMWVCHB"),
    "XLON": _lei("F226TOH6YD6XJB17KS"),
    "XAMS": _lei("724500937F740MHCX3"),
}
EUR_PER = {"EUR": Decimal(1), "USD": Decimal("0.92"), "GBP": Decimal("1.19")}


@dataclass(frozen=True)
class Instrument:
    name: str
    isin: str
    venue: str
    currency: str
    opening_price: Decimal
    feed: str
    lot: int


INSTRUMENTS = tuple(
    Instrument(name, isin(code), mic(venue), currency, Decimal(price), feed, lot)
    for name, code, venue, currency, price, feed, lot in [
        ("SAP", "DE0007164600", "XETR", "EUR", "178.40", "BLOOMBERG_BPIPE", 25),
        ("Apple", "US0378331005", "XNAS", "USD", "232.10", "REFINITIV", 20),
        ("BNP Paribas", "FR0000131104", "XPAR", "EUR", "71.86", "BLOOMBERG_BPIPE", 50),
        ("BAE Systems", "GB0002634946", "XLON", "GBP", "13.42", "REFINITIV", 200),
        ("ASML", "NL0010273215", "XAMS", "EUR", "684.30", "BLOOMBERG_BPIPE", 5),
    ]
)
TICK = Decimal("0.01")

MODEL, LIVE, CANDIDATE = "momentum", "3.1", "3.2"
STRATEGY = "momentum-eu-equities"
ALGO_DECISION, ALGO_EXECUTION = "ALGO-MOM-31", "ALGO-SOR-7"
TRADERS = ("a.schmidt", "j.martin")
OPS, RISK, DEV, CHANGE_MANAGER = "k.weber", "r.okafor", "d.novak", "m.rossi"
USERS = (*TRADERS, OPS, RISK, DEV, CHANGE_MANAGER)

# RTS 6 pre-trade limits
PRICE_COLLAR_BPS = Decimal(500)
MAX_ORDER_VALUE_EUR = Decimal(1_000_000)
MAX_ORDER_LOTS = 50
VAR_LIMIT, GROSS_LIMIT = Decimal(2_500_000), Decimal(50_000_000)


@dataclass(frozen=True)
class DemoSummary:
    days: int
    seed: int
    first_day: date
    last_day: date
    events_by_type: dict[str, int]  # event class qualname -> count, sorted by name
    total_events: int
    decisions: int
    orders_placed: int
    orders_blocked: int  # a pre-trade control failed: not sent
    failed_checks: int
    executions: int
    risk_breaches: int
    rollbacks: int


def trading_days(days: int) -> list[date]:
    """The first ``days`` weekdays from :data:`START_DAY`."""
    found: list[date] = []
    day = START_DAY
    while len(found) < days:
        if day.weekday() < 5:
            found.append(day)
        day += timedelta(days=1)
    return found


def _local(day: date, hour: int, minute: int, second: int = 0, zone: ZoneInfo = EUROPE) -> datetime:
    """``hour:minute:second`` in ``zone`` on ``day``, as UTC."""
    return datetime.combine(day, time(hour, minute, second), zone).astimezone(UTC)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _dec(value: float, places: str = "0.01") -> Decimal:
    """A float from the random generator as an exact decimal (through its repr: portable)."""
    return Decimal(repr(value)).quantize(Decimal(places))


class _Clock:
    """The simulated "now": moved forward by each event, never backwards."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def at(self, moment: datetime) -> datetime:
        """Move to ``moment`` (at least 1 µs after the last event) and return it."""
        self._now = max(moment, self._now + timedelta(microseconds=1))
        return self._now


@dataclass
class _Order:
    client_order_id: str
    decision_id: str | None
    instrument: Instrument
    side: str
    quantity: int
    limit_price: Decimal
    throttle_observed: int
    order_id: UUID | None = None


@dataclass(frozen=True)
class _Step:
    at: datetime
    run: Callable[[], None]


@dataclass
class _Simulation:
    trail: AuditTrail
    seed: int
    rng: random.Random
    clock: _Clock
    mid: dict[str, Decimal] = field(default_factory=dict)
    serial: Counter[str] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)
    throttle_limit: int = 40
    paused_until: dict[str, datetime] = field(default_factory=dict)
    resting: dict[str, _Order] = field(default_factory=dict)
    executions: list[tuple[UUID, Instrument, Decimal, int]] = field(default_factory=list)
    deployments: dict[str, UUID] = field(default_factory=dict)
    shadow: list[bool] = field(default_factory=list)

    def now(self) -> datetime:
        """The next instant on the simulated clock (1 µs after the last event)."""
        return self.clock.at(self.clock())

    def next_id(self, kind: str, day: date) -> str:
        self.serial[f"{kind}{day}"] += 1
        return f"{kind}-{day:%Y%m%d}-{self.seed}-{self.serial[f'{kind}{day}']:05d}"

    # --- the plan of a day ---------------------------------------------------------------

    def plan(self, day: date, first: bool) -> list[_Step]:
        def at(hour: int, minute: int, second: int = 0) -> datetime:
            return _local(day, hour, minute, second)

        steps = [_Step(at(7, 0), lambda: self.start_of_day(day))]
        if first:
            steps.append(_Step(at(7, 30), lambda: self.register_models(day)))
        steps += [
            _Step(at(7, 55), lambda: self.logins(day)),
            _Step(at(7, 58), lambda: self.permission_change(day)),
            _Step(at(12, 0, 30), lambda: self.configuration_change(day)),
            _Step(at(14, 45, 30), lambda: self.manual_override(day)),
            _Step(at(17, 50), lambda: self.logouts(day)),
        ]
        steps += self.plan_trading(day)
        steps += self.plan_risk(day)
        steps += self.plan_changes(day)
        steps += [
            _Step(at(10, 2, 50), lambda: self.rest_order(day, "amend", INSTRUMENTS[0], "BUY")),
            _Step(at(10, 3, 50), lambda: self.amend_resting(day)),
            _Step(at(10, 5, 10), lambda: self.fill_resting("amend", Decimal(1))),
            _Step(at(11, 30, 50), lambda: self.fx_forward(day)),
            _Step(at(11, 40, 50), lambda: self.amend_last_execution(day)),
            _Step(at(13, 20, 50), lambda: self.cancel_last_execution(day)),
            _Step(at(14, 2, 50), lambda: self.rest_order(day, "cancel", INSTRUMENTS[4], "SELL")),
            _Step(at(14, 3, 10), lambda: self.fill_resting("cancel", Decimal("0.4"))),
            _Step(at(14, 20, 50), lambda: self.cancel_resting(day)),
            _Step(at(16, 35), lambda: self.shadow_comparison(day)),
        ]
        return sorted(steps, key=lambda step: step.at)  # stable: ties keep their order

    def plan_trading(self, day: date) -> list[_Step]:
        """One decision cycle per instrument every 6 minutes, 08:00-16:30 Europe time
        (Apple from the New York open)."""
        open_, close = _local(day, 8, 0), _local(day, 16, 30)
        us_open = _local(day, 9, 30, zone=NEW_YORK)
        steps: list[_Step] = []
        slot = open_
        while slot < close:
            for index, instrument in enumerate(INSTRUMENTS):
                moment = slot + index * CYCLE / len(INSTRUMENTS)
                if instrument.venue == "XNAS" and moment < us_open:
                    continue
                steps.append(_Step(moment, self._cycle_step(instrument, moment, day)))
            slot += CYCLE
        return steps

    def _cycle_step(
        self, instrument: Instrument, moment: datetime, day: date
    ) -> Callable[[], None]:
        return lambda: self.trading_cycle(day, instrument, moment)

    def plan_risk(self, day: date) -> list[_Step]:
        moment, close = _local(day, 8, 15, 40), _local(day, 16, 30)
        steps: list[_Step] = []
        while moment < close:
            steps.append(_Step(moment, self._risk_step(moment, day)))
            moment += timedelta(minutes=30)
        return steps

    def _risk_step(self, moment: datetime, day: date) -> Callable[[], None]:
        return lambda: self.risk_calculations(day, moment)

    def plan_changes(self, day: date) -> list[_Step]:
        def at(hour: int, minute: int) -> datetime:
            return _local(day, hour, minute, 20)

        canary, hotfix, rolling = "canary", "hotfix", "rolling"
        return [
            _Step(at(9, 30), lambda: self.request(day, canary, "signal-engine", "4.7.0", "CANARY")),
            _Step(at(9, 50), lambda: self.approve(canary, CHANGE_MANAGER)),
            _Step(at(10, 15), lambda: self.start(canary, DEV)),
            _Step(at(10, 41), lambda: self.roll_back_canary(day)),
            _Step(
                at(12, 40),
                lambda: self.request(
                    day, hotfix, "order-gateway", "2.3.1", "ROLLING", emergency=True
                ),
            ),
            _Step(at(12, 43), lambda: self.start(hotfix, OPS)),
            _Step(at(12, 58), lambda: self.promote(hotfix, OPS)),
            _Step(
                at(15, 0), lambda: self.request(day, rolling, "risk-gateway", "3.9.0", "ROLLING")
            ),
            _Step(at(15, 20), lambda: self.approve(rolling, CHANGE_MANAGER)),
            _Step(at(17, 5), lambda: self.start(rolling, DEV)),
            _Step(at(17, 25), lambda: self.promote(rolling, DEV)),
            _Step(at(17, 40), lambda: self.approve(hotfix, CHANGE_MANAGER)),  # retroactively
        ]

    # --- start of day, models, people -----------------------------------------------------

    def start_of_day(self, day: date) -> None:
        self.shadow.clear()
        for instrument in INSTRUMENTS:
            self.mid.setdefault(instrument.isin, instrument.opening_price)
        self.trail.record_compliance_check(
            check_id=self.next_id("KS", day),
            client_order_id="ALL",
            control="KILL_SWITCH",
            passed=True,
            observed=self.rng.randint(120, 400),
            threshold=1000,
            evidence={
                "test": "engage, cancel all open orders, release",
                "scope": "all strategies, all venues",
                "unit": "ms until every venue acknowledged",
            },
            actor="pretrade-risk-gateway",
            occurred_at=self.clock.at(_local(day, 7, 0)),
        )

    def register_models(self, day: date) -> None:
        for number, (version, role) in enumerate([(LIVE, "live"), (CANDIDATE, "candidate")]):
            self.trail.register_model_version(
                model_id=MODEL,
                version=version,
                training_data_hash=_sha256(f"training-data/{MODEL}/{version}/{self.seed}"),
                parameters_hash=_sha256(f"parameters/{MODEL}/{version}/{self.seed}"),
                description=f"Cross-sectional momentum on EU/US large caps, v{version} ({role})",
                actor="l.fischer",
                occurred_at=self.clock.at(_local(day, 7, 30 + number)),
            )

    def user_action(
        self,
        day: date,
        action: str,
        target: str,
        details: dict[str, str],
        actor: str,
        moment: datetime,
    ) -> None:
        self.trail.record_user_action(
            action_id=self.next_id("UA", day),
            action=action,
            target=target,
            details=details,
            actor=actor,
            occurred_at=self.clock.at(moment),
        )

    def logins(self, day: date) -> None:
        for number, user in enumerate(USERS):
            details = {
                "terminal": f"WS-{number + 11:03d}",
                "mfa": "TOTP",
                "ip": f"10.20.4.{number + 21}",
            }
            self.user_action(
                day, "LOGIN", "trading-console", details, user, _local(day, 7, 55, 7 * number)
            )

    def logouts(self, day: date) -> None:
        for number, user in enumerate(USERS):
            self.user_action(
                day,
                "LOGOUT",
                "trading-console",
                {"reason": "end of day"},
                user,
                _local(day, 17, 50, 5 * number),
            )

    def permission_change(self, day: date) -> None:
        details = {
            "role": "EXECUTION_TRADER",
            "change": "granted",
            "desk": "EQ-MOMENTUM",
            "ticket": f"IAM-{day:%Y%m%d}-{self.seed}",
        }
        self.user_action(day, "PERMISSION_CHANGE", TRADERS[1], details, OPS, _local(day, 7, 58))

    def configuration_change(self, day: date) -> None:
        old = self.throttle_limit
        self.throttle_limit = 50 if old == 40 else 40
        reason = "venue raised" if self.throttle_limit > old else "venue restored"
        details = {
            "old": str(old),
            "new": str(self.throttle_limit),
            "reason": f"{reason} the order-entry rate limit",
        }
        self.user_action(
            day,
            "CONFIGURATION_CHANGE",
            "pretrade.message_throttle_per_s",
            details,
            RISK,
            _local(day, 12, 0, 30),
        )

    def manual_override(self, day: date) -> None:
        bnp = INSTRUMENTS[2]
        until = _local(day, 15, 15)
        self.paused_until[bnp.isin] = until
        details = {
            "action": "pause strategy",
            "reason": "issuer news pending",
            "until": until.isoformat(),
        }
        self.user_action(
            day,
            "MANUAL_OVERRIDE",
            f"strategy/{STRATEGY}/{bnp.isin}",
            details,
            TRADERS[0],
            _local(day, 14, 45, 30),
        )

    # --- continuous trading ------------------------------------------------------------------

    def trading_cycle(self, day: date, instrument: Instrument, moment: datetime) -> None:
        if moment < self.paused_until.get(instrument.isin, moment):
            return
        before = self.mid[instrument.isin]
        after = self.move_price(instrument)
        snapshot = self.market_data(day, instrument, moment)
        move = (after - before) / before
        signal = "HOLD" if abs(move) < Decimal("0.0012") else ("BUY" if move > 0 else "SELL")
        confidence = min(Decimal("0.99"), Decimal("0.5") + abs(move) * 100).quantize(TICK)
        decision_id = self.next_id("DEC", day)
        self.trail.make_trade_decision(
            decision_id=decision_id,
            model_id=MODEL,
            model_version=LIVE,
            strategy=STRATEGY,
            isin=instrument.isin,
            signal=signal,
            confidence=confidence,
            lineage_hash=snapshot,
            actor=f"{MODEL}-v{LIVE}",
            occurred_at=self.clock.at(moment + 3 * MS),
        )
        self.stats["decisions"] += 1
        self.shadow.append(self.rng.random() < 0.8)
        if signal == "HOLD":
            return
        order = self.order_ticket(day, instrument, signal, decision_id)
        if self.pre_trade_checks(order, moment + 5 * MS):
            self.place(order, moment + 9 * MS)
            self.fill(order, moment + 9 * MS, Decimal(1))

    def move_price(self, instrument: Instrument) -> Decimal:
        """A random walk step of about 0.15 % (a sum of uniforms: plain float arithmetic,
        the same on every platform, unlike gauss's libm calls)."""
        noise = self.rng.random() + self.rng.random() + self.rng.random() - 1.5
        step = _dec(noise * 0.003, "0.000001")
        price = (self.mid[instrument.isin] * (1 + step)).quantize(TICK)
        self.mid[instrument.isin] = price
        return price

    def market_data(self, day: date, instrument: Instrument, moment: datetime) -> str:
        mid = self.mid[instrument.isin]
        usage_id = self.next_id("MD", day)
        snapshot_time = moment - 40 * MS
        snapshot = (
            f"{instrument.feed}|{instrument.isin}|{snapshot_time.isoformat()}|"
            f"bid={mid - TICK}|ask={mid + TICK}|{usage_id}"
        )
        digest = _sha256(snapshot)
        self.trail.record_market_data_usage(
            usage_id=usage_id,
            feed=instrument.feed,
            isin=instrument.isin,
            snapshot_hash=digest,
            snapshot_time=snapshot_time,
            purpose="signal generation and price collar reference",
            actor="market-data-gateway",
            occurred_at=self.clock.at(moment),
        )
        return digest

    def order_ticket(
        self,
        day: date,
        instrument: Instrument,
        side: str,
        decision_id: str | None,
        *,
        passive: bool = False,
    ) -> _Order:
        mid = self.mid[instrument.isin]
        lots = self.rng.randint(1, 12)
        offset = (-3 if passive else 2) * TICK
        limit = mid + offset if side == "BUY" else mid - offset
        throttle = self.rng.randint(1, 12)
        if not passive:  # the rare faults the controls exist for
            fault = self.rng.random()
            if fault < 0.03:
                limit = (mid * Decimal("1.06" if side == "BUY" else "0.94")).quantize(TICK)
            elif fault < 0.05:
                lots *= 100
            elif fault < 0.06:
                throttle = self.throttle_limit + self.rng.randint(1, 40)
        return _Order(
            self.next_id("ORD", day),
            decision_id,
            instrument,
            side,
            lots * instrument.lot,
            limit,
            throttle,
        )

    def pre_trade_checks(self, order: _Order, moment: datetime) -> bool:
        instrument = order.instrument
        mid = self.mid[instrument.isin]
        collar = (abs(order.limit_price - mid) / mid * 10_000).quantize(TICK)
        value = (order.quantity * order.limit_price * EUR_PER[instrument.currency]).quantize(TICK)
        controls = [
            (
                "PRICE_COLLAR",
                collar,
                PRICE_COLLAR_BPS,
                {"reference_price": str(mid), "unit": "bps"},
            ),
            ("MAX_ORDER_VALUE", value, MAX_ORDER_VALUE_EUR, {"currency": "EUR"}),
            (
                "MAX_ORDER_VOLUME",
                Decimal(order.quantity),
                Decimal(MAX_ORDER_LOTS * instrument.lot),
                {"unit": "shares"},
            ),
            (
                "MESSAGE_THROTTLE",
                Decimal(order.throttle_observed),
                Decimal(self.throttle_limit),
                {"unit": "messages per second", "venue": instrument.venue},
            ),
        ]
        passed_all = True
        for number, (control, observed, threshold, evidence) in enumerate(controls):
            passed = observed <= threshold
            passed_all = passed_all and passed
            self.trail.record_compliance_check(
                check_id=f"{order.client_order_id}-{control}",
                client_order_id=order.client_order_id,
                control=control,
                passed=passed,
                observed=observed,
                threshold=threshold,
                evidence={**evidence, "limit_price": str(order.limit_price), "side": order.side},
                actor="pretrade-risk-gateway",
                occurred_at=self.clock.at(moment + number * MS / 4),
            )
            self.stats["failed_checks"] += not passed
        self.stats["orders_blocked"] += not passed_all
        return passed_all

    def place(self, order: _Order, moment: datetime) -> None:
        order.order_id = self.trail.place_order(
            client_order_id=order.client_order_id,
            decision_id=order.decision_id,
            isin=order.instrument.isin,
            venue=order.instrument.venue,
            side=order.side,
            quantity=order.quantity,
            limit_price=order.limit_price,
            currency=order.instrument.currency,
            trading_capacity="DEAL",
            executing_entity_lei=FIRM_LEI,
            investment_decision=ALGO_DECISION,
            execution_decision=ALGO_EXECUTION,
            actor="order-management",
            occurred_at=self.clock.at(moment),
        )
        self.stats["orders_placed"] += 1

    def fill(self, order: _Order, moment: datetime, share: Decimal) -> None:
        """Fill ``share`` of the order in one to three executions."""
        instrument = order.instrument
        lots = max(1, int(order.quantity * share) // instrument.lot)
        parts = min(lots, self.rng.choices([1, 2, 3], weights=[65, 25, 10])[0])
        cuts = sorted(self.rng.sample(range(1, lots), parts - 1)) if parts > 1 else []
        bounds = [0, *cuts, lots]
        for start, end in zip(bounds, bounds[1:], strict=False):
            moment += self.rng.randint(20, 900) * MS
            price = order.limit_price - TICK if order.side == "BUY" else order.limit_price + TICK
            self.execute(order, (end - start) * instrument.lot, price, moment)

    def execute(self, order: _Order, quantity: int, price: Decimal, moment: datetime) -> None:
        instrument = order.instrument
        ours, theirs = FIRM_LEI, CLEARING_LEI[instrument.venue]
        buyer, seller = (ours, theirs) if order.side == "BUY" else (theirs, ours)
        execution = self.trail.record_execution(
            execution_id=self.next_id("EXE", moment.date()),
            client_order_id=order.client_order_id,
            isin=instrument.isin,
            venue=instrument.venue,
            executing_entity_lei=FIRM_LEI,
            buyer_lei=buyer,
            seller_lei=seller,
            investment_decision=ALGO_DECISION,
            execution_decision=ALGO_EXECUTION,
            trading_capacity="DEAL",
            quantity=quantity,
            price=price,
            currency=instrument.currency,
            trading_time=moment,
            actor="fix-drop-copy",
            occurred_at=self.clock.at(moment + 2 * MS),
        )
        self.executions.append((execution, instrument, price, quantity))
        self.stats["executions"] += 1

    # --- corrections: new events, nothing edited -------------------------------------------

    def rest_order(self, day: date, purpose: str, instrument: Instrument, side: str) -> None:
        moment = self.now()
        order = self.order_ticket(day, instrument, side, None, passive=True)
        if self.pre_trade_checks(order, moment):
            self.place(order, moment + 4 * MS)
            self.resting[purpose] = order

    def amend_resting(self, day: date) -> None:
        order = self.resting["amend"]
        assert order.order_id is not None
        order.limit_price = self.mid[order.instrument.isin] + (
            TICK if order.side == "BUY" else -TICK
        )
        order.quantity = max(1, order.quantity // order.instrument.lot // 2) * order.instrument.lot
        self.trail.amend_order(
            order.order_id,
            quantity=order.quantity,
            limit_price=order.limit_price,
            reason="trader request: join the best bid with half the size",
            actor=TRADERS[1],
            occurred_at=self.clock.at(_local(day, 10, 3, 50)),
        )

    def fill_resting(self, purpose: str, share: Decimal) -> None:
        order = self.resting[purpose]
        self.fill(order, self.now(), share)

    def cancel_resting(self, day: date) -> None:
        order = self.resting["cancel"]
        assert order.order_id is not None
        self.trail.cancel_order(
            order.order_id,
            reason="strategy window closed: unfilled remainder cancelled",
            actor="order-management",
            occurred_at=self.clock.at(_local(day, 14, 20, 50)),
        )

    def amend_last_execution(self, day: date) -> None:
        execution, instrument, price, quantity = self.executions[-1]
        self.trail.amend_execution(
            execution,
            quantity=quantity,
            price=price + TICK,
            reason=f"venue trade correction: price {price} -> {price + TICK} ({instrument.venue})",
            actor=OPS,
            occurred_at=self.clock.at(_local(day, 11, 40, 50)),
        )

    def cancel_last_execution(self, day: date) -> None:
        execution, instrument, _, _ = self.executions[-1]
        self.trail.cancel_execution(
            execution,
            reason=f"trade busted by {instrument.venue} under its erroneous-trade rule",
            actor=OPS,
            occurred_at=self.clock.at(_local(day, 13, 20, 50)),
        )

    # --- OTC: an FX forward ----------------------------------------------------------------

    def fx_forward(self, day: date) -> None:
        value_date = day + timedelta(days=91)
        prefix = "EZ" + _sha256(f"EURUSD-FWD-{value_date}").upper()[:9]
        rate = _dec(1.0850 + self.rng.uniform(-0.004, 0.004), "0.00001")
        moment = self.clock.at(_local(day, 11, 30, 50))
        self.trail.record_execution(
            execution_id=self.next_id("EXE", day),
            isin=prefix + isin_check_digit(prefix),
            instrument_description=f"EUR/USD FX forward, value date {value_date}",
            cfi="JFTXFP",
            notional_currency_1="EUR",
            notional_currency_2="USD",
            venue="XOFF",
            executing_entity_lei=FIRM_LEI,
            buyer_lei=FIRM_LEI,
            seller_lei=FX_BANK_LEI,
            investment_decision="TREASURY-HEDGE",
            execution_decision=TRADERS[0],
            trading_capacity="DEAL",
            quantity=5_000_000,
            price=rate,
            currency="USD",
            trading_time=moment,
            actor=TRADERS[0],
            occurred_at=moment,
        )
        self.stats["executions"] += 1

    # --- risk ------------------------------------------------------------------------------

    def risk_calculations(self, day: date, moment: datetime) -> None:
        positions = _sha256(f"positions/{day}/{moment.isoformat()}/{self.stats['executions']}")
        for number, (metric, method, limit, evidence) in enumerate(
            [
                (
                    "VAR",
                    "historical simulation",
                    VAR_LIMIT,
                    {"confidence": "0.99", "horizon": "1d", "scenarios": "500"},
                ),
                ("GROSS_EXPOSURE", "sum of absolute market values", GROSS_LIMIT, {"scope": "desk"}),
            ]
        ):
            value = (limit * _dec(self.rng.uniform(0.5, 1.08), "0.0001")).quantize(TICK)
            self.trail.record_risk_calculation(
                calculation_id=self.next_id("RISK", day),
                portfolio="EQ-MOMENTUM",
                metric=metric,
                method=method,
                value=value,
                limit=limit,
                currency="EUR",
                evidence={**evidence, "positions_snapshot": positions},
                actor="risk-engine",
                occurred_at=self.clock.at(moment + number * MS),
            )
            self.stats["risk_breaches"] += value > limit

    # --- change management ------------------------------------------------------------------

    def request(
        self,
        day: date,
        name: str,
        service: str,
        version: str,
        strategy: str,
        *,
        emergency: bool = False,
    ) -> None:
        ticket = self.next_id("CHG", day)
        self.deployments[name] = self.trail.request_deployment(
            change_ticket=ticket,
            service=service,
            version=version,
            commit=_sha256(f"{service}@{version}/{ticket}")[:40],
            strategy=strategy,
            emergency=emergency,
            actor=OPS if emergency else DEV,
            occurred_at=self.now(),
        )

    def approve(self, name: str, actor: str) -> None:
        self.trail.approve_deployment(self.deployments[name], actor=actor, occurred_at=self.now())

    def start(self, name: str, actor: str) -> None:
        self.trail.start_deployment(self.deployments[name], actor=actor, occurred_at=self.now())

    def promote(self, name: str, actor: str) -> None:
        self.trail.promote_deployment(self.deployments[name], actor=actor, occurred_at=self.now())

    def roll_back_canary(self, day: date) -> None:
        baseline = self.rng.randint(38, 48)
        canary = baseline + 100 + self.rng.randint(8, 60)
        window = f"{_local(day, 10, 20).isoformat()}/{_local(day, 10, 40).isoformat()}"
        self.trail.roll_back_deployment(
            self.deployments["canary"],
            rollback_id=self.next_id("RB", day),
            level=1,
            trigger="LATENCY",
            reason=f"canary p95 decision latency +{canary - baseline} ms over baseline "
            "(threshold +100 ms)",
            evidence={
                "window": window,
                "metric": "decision latency p95",
                "baseline_p95_ms": str(baseline),
                "canary_p95_ms": str(canary),
                "threshold": "baseline + 100 ms",
                "canary_traffic_pct": "5",
            },
            actor=OPS,
            occurred_at=self.now(),
        )
        self.stats["rollbacks"] += 1

    # --- the candidate model in shadow mode ------------------------------------------------

    def shadow_comparison(self, day: date) -> None:
        if not self.shadow:
            return
        self.trail.record_shadow_comparison(
            comparison_id=self.next_id("SHADOW", day),
            model_id=MODEL,
            live_version=LIVE,
            shadow_version=CANDIDATE,
            window_start=_local(day, 8, 0),
            window_end=_local(day, 16, 30),
            samples=len(self.shadow),
            agreements=sum(self.shadow),
            actor="model-monitoring",
            occurred_at=self.clock.at(_local(day, 16, 35)),
        )


def run_demo(
    trail: AuditTrail,
    *,
    days: int = 1,
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Record ``days`` simulated trading days into ``trail``; the same seed, the same events."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    dates = trading_days(days)
    clock = _Clock(_local(dates[0], 0, 0))
    simulation = _Simulation(trail, seed, random.Random(seed), clock)  # noqa: S311 (a simulation, not secrets)
    steps = [step for n, day in enumerate(dates) for step in simulation.plan(day, n == 0)]
    first_notification = (trail.recorder.max_notification_id() or 0) + 1
    with use_clock(clock):
        for done, step in enumerate(steps, 1):
            clock.at(step.at)
            step.run()
            if progress is not None:
                progress(done, len(steps))
    counts = _count_topics(trail, first_notification)
    stats = simulation.stats
    return DemoSummary(
        days=days,
        seed=seed,
        first_day=dates[0],
        last_day=dates[-1],
        events_by_type=counts,
        total_events=sum(counts.values()),
        decisions=stats["decisions"],
        orders_placed=stats["orders_placed"],
        orders_blocked=stats["orders_blocked"],
        failed_checks=stats["failed_checks"],
        executions=stats["executions"],
        risk_breaches=stats["risk_breaches"],
        rollbacks=stats["rollbacks"],
    )


def _count_topics(trail: AuditTrail, start: int) -> dict[str, int]:
    """Events recorded from notification ``start`` on, by event class qualname."""
    counts: Counter[str] = Counter()
    while True:
        page = trail.recorder.select_notifications(start, 1000)
        counts.update(notification.topic.split(":", 1)[1] for notification in page)
        if len(page) < 1000:
            return dict(sorted(counts.items()))
        start = page[-1].id + 1
