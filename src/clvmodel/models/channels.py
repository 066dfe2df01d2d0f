"""What a model trained with a customer table keeps to value a *new* customer of each channel.

The remaining CLV of a customer already in the base and the value of a customer about to be
acquired are different numbers: the second includes the first order and starts the purchase
process at ``t = 0`` (E[X(t)], equation (9) of Fader, Hardie & Lee 2005, at the channel's
covariate profile). :class:`AcquisitionState` holds, per acquisition channel, the pieces that
value needs and that only the training log shows: how many customers the channel brought, the
mean value of their first order, their spend model (a channel's own Gamma-Gamma when it has at
least :data:`MIN_REPEAT_CUSTOMERS` repeat customers, the pooled one otherwise) and the mix of
covariate profiles among them. :mod:`clvmodel.acquisition` turns it into values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clvmodel.models.gamma_gamma import GammaGammaModel

__all__ = ["ChannelState", "AcquisitionState", "MIN_REPEAT_CUSTOMERS", "UNKNOWN_CHANNEL"]

#: A channel's own Gamma-Gamma needs at least this many repeat customers; below it the channel's
#: mean spend is the pooled model's. Gamma-Gamma has three parameters and a heavy right tail (q
#: near 1 makes E[M] = pv/(q − 1) explode), so a few dozen customers are the least that pins q.
MIN_REPEAT_CUSTOMERS = 50
#: The channel of a customer of the log that has no row in the customer table.
UNKNOWN_CHANNEL = "unknown"


@dataclass
class ChannelState:
    """One acquisition channel as seen in training.

    Attributes
    ----------
    customers
        Customers acquired through the channel (in the calibration period).
    repeat_customers
        Those of them with a repeat purchase (``frequency > 0``).
    first_order_value
        Mean amount of their first purchase day; ``None`` without amounts.
    spend
        The channel's own Gamma-Gamma; ``None``: the pooled spend model applies.
    profiles
        ``(covariate values, share)`` of the channel's customers, by share; ``[({}, 1.0)]``
        without covariates.
    """

    customers: int
    repeat_customers: int
    first_order_value: float | None
    spend: GammaGammaModel | None = None
    profiles: list[tuple[dict[str, Any], float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "customers": int(self.customers),
            "repeat_customers": int(self.repeat_customers),
            "first_order_value": self.first_order_value,
            "spend": self.spend.to_dict() if self.spend is not None else None,
            "profiles": [{"values": dict(values), "share": float(share)} for values, share in self.profiles],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "ChannelState":
        spend = state.get("spend")
        first = state.get("first_order_value")
        return cls(
            customers=int(state["customers"]),
            repeat_customers=int(state["repeat_customers"]),
            first_order_value=None if first is None else float(first),
            spend=GammaGammaModel.from_dict(spend) if spend is not None else None,  # type: ignore[arg-type]
            profiles=[(dict(p["values"]), float(p["share"])) for p in state.get("profiles", [])],
        )


@dataclass
class AcquisitionState:
    """Per-channel pieces of the acquisition value; see the module docstring.

    Attributes
    ----------
    channel
        The channel column of the customer table (``None``: no channel, one row ``all``).
    covariates
        The covariates of the purchase model (``[]`` without covariates).
    purchase_model
        The key in the trained model's ``models`` that forecasts a new customer's purchases: a
        covariate model (``*_cov``) when one was fitted, else the primary purchase model.
    min_repeat_customers
        :data:`MIN_REPEAT_CUSTOMERS` as it was when trained.
    channels
        ``channel -> ChannelState``, in sorted order.
    """

    channel: str | None
    covariates: list[str]
    purchase_model: str
    min_repeat_customers: int = MIN_REPEAT_CUSTOMERS
    channels: dict[str, ChannelState] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "covariates": list(self.covariates),
            "purchase_model": self.purchase_model,
            "min_repeat_customers": int(self.min_repeat_customers),
            "channels": {name: state.to_dict() for name, state in self.channels.items()},
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "AcquisitionState":
        return cls(
            channel=state.get("channel"),
            covariates=[str(c) for c in state.get("covariates", [])],
            purchase_model=str(state["purchase_model"]),
            min_repeat_customers=int(state.get("min_repeat_customers", MIN_REPEAT_CUSTOMERS)),
            channels={str(k): ChannelState.from_dict(v) for k, v in (state.get("channels") or {}).items()},
        )
