"""Self-service plugins of the 24-hour area (docs/selfservice.md).

A plugin is a small object with ``id``, ``name``, ``name_en``, ``kind`` and
``run(person, now) -> Result``; it asks its back end about the card holder and
returns label/value lines, which the agent shows on the kiosk and prints. The
back ends here are simulated (deterministic figures derived from the person's
``id_hash``), so every flow can be tested and shown without a real system; a
hall's integrator replaces :func:`backend` of a plugin with the real client.

Rules for a plugin: use ``person.id_number``/``person.name`` only to ask the back
end, never log, store or return them; put only masked forms on a result.
"""

from __future__ import annotations

from hall_agent.services.selfservice_plugins.base import BackendError, Plugin, Result, seeded
from hall_agent.services.selfservice_plugins.housing_fund import HousingFund
from hall_agent.services.selfservice_plugins.property import PropertyRecord
from hall_agent.services.selfservice_plugins.social_insurance import SocialInsurance

__all__ = ["BackendError", "Plugin", "Result", "registry", "seeded"]


def registry() -> dict[str, Plugin]:
    plugins: list[Plugin] = [SocialInsurance(), HousingFund(), PropertyRecord()]
    return {p.id: p for p in plugins}
