"""Azure VM sizes that Microsoft has retired (or announced it will retire), with the date and the notice.

Azure ML passes a cluster's ``size`` to the service unchecked (``AmlCompute(size=...)`` is a plain string), so
a retired size fails only when ``compute.begin_create_or_update`` reaches the service. ``archai-aml workspace
setup`` (also ``--dry-run``) and ``archai-aml run`` warn before that with :func:`retirement_warning`.

Only sizes whose notice is quoted here are listed; the list is what this library knows, not what a region
offers today (``az vm list-skus --location <region> --resource-type virtualMachines`` or
``MLClient.compute.list_sizes(location=...)`` ask the service). Sources, from the Azure documentation
(``MicrosoftDocs/azure-docs``):

- NCv3 (NVIDIA V100): "On September 30, 2025, Microsoft Azure will retire the Standard_NC6s_v3,
  Standard_NC12s_v3 and Standard_NC24s_v3 virtual machines" (the notice recommends NC A100 v4:
  Standard_NC24ads_A100_v4 for Standard_NC6s_v3, NC48ads for NC12s, NC96ads for NC24s; it does not apply
  to NCasT4 v3, NC A100 v4 or NCads H100 v5);
- NC (v1, K80), NCv2 (P100), ND (P40), NV (M60): retired on 6 September 2023 ("any remaining ... size
  virtual machines ... will be set to a deallocated state").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["RETIRED_SIZES", "Retirement", "retirement", "retirement_warning"]

_DOCS = "https://learn.microsoft.com/azure/virtual-machines/"


@dataclass(frozen=True)
class Retirement:
    """One retired VM size: when, where Microsoft said so, and what it suggests instead (if it does)."""

    size: str
    date: dt.date
    source: str
    replacement: str | None = None


def _series(sizes: list[str], date: dt.date, source: str, replacement: str | None = None) -> list[Retirement]:
    return [Retirement(size, date, source, replacement) for size in sizes]


_NCV3 = _DOCS + "ncv3-nc6s-nc12s-nc24s-retirement"
_2023 = dt.date(2023, 9, 6)
_GUIDES = _DOCS + "sizes/migration-guides/"

#: Retired sizes by lower-case name (Azure compares VM size names without case).
RETIRED_SIZES: dict[str, Retirement] = {
    r.size.lower(): r
    for r in [
        Retirement("Standard_NC6s_v3", dt.date(2025, 9, 30), _NCV3, "Standard_NC24ads_A100_v4"),
        Retirement("Standard_NC12s_v3", dt.date(2025, 9, 30), _NCV3, "Standard_NC48ads_A100_v4"),
        Retirement("Standard_NC24s_v3", dt.date(2025, 9, 30), _NCV3, "Standard_NC96ads_A100_v4"),
        *_series(["Standard_NC6", "Standard_NC12", "Standard_NC24", "Standard_NC24r"], _2023,
                 _GUIDES + "nc-series-retirement"),
        *_series(["Standard_NC6s_v2", "Standard_NC12s_v2", "Standard_NC24s_v2", "Standard_NC24rs_v2"], _2023,
                 _GUIDES + "ncv2-series-retirement"),
        *_series(["Standard_ND6s", "Standard_ND12s", "Standard_ND24s", "Standard_ND24rs"], _2023,
                 _GUIDES + "nd-series-retirement"),
        *_series(["Standard_NV6", "Standard_NV12", "Standard_NV24"], _2023, _GUIDES + "nv-series-retirement"),
    ]
}  # fmt: skip


def retirement(size: str) -> Retirement | None:
    """The retirement of VM size ``size`` (any case), or None when this library knows of none."""
    return RETIRED_SIZES.get(size.strip().lower())


def retirement_warning(size: str, *, what: str = "the cluster", today: dt.date | None = None) -> str | None:
    """A sentence saying that ``size`` is (or will be) retired, with the date, the notice and what to do."""
    found = retirement(size)
    if found is None:
        return None
    today = today or dt.date.today()
    instead = f" (Microsoft suggests {found.replacement})" if found.replacement else ""
    if found.date <= today:
        return (
            f"{what} uses VM size {found.size}, retired by Microsoft on {found.date.isoformat()} ({found.source}): "
            f"Azure ML cannot create it; choose a current size{instead} in the configuration"
        )
    return (
        f"{what} uses VM size {found.size}, which Microsoft retires on {found.date.isoformat()} "
        f"({found.source}): move to a current size{instead} before then"
    )
