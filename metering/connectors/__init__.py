"""RMM connectors: fetch a partner's whole inventory, or fail with one clear line (billing-rules 3.7, 9.5).

`connector_for(integration).fetch_inventory(integration)` returns an Inventory (a list of AgentRow with
`source`, `announced` and `pages`) holding every agent of the RMM, or raises ConnectorError: never a
partial list, because the inventory is applied as a whole and an agent missing from it is an agent
removed (a credit on the next invoice). `ConnectorError.transient` says whether trying again later
may help.

One module per kind of integration (RmmIntegration.kind):

    kaseya-vsa   kaseya_vsa.KaseyaVsaConnector   Kaseya VSA 9 REST API
    datto        datto.DattoConnector            Datto RMM API v2
    ninjaone     ninjaone.NinjaOneConnector      NinjaOne public API v2
    json         json_feed.JsonFeedConnector     the product's own JSON inventory feed
    folder       folder.FolderConnector          the newest rmm-assets CSV of a drop folder

common.py holds what they share (HTTP with limits, errors, the agent collector with the rmm-assets rules).
"""

from __future__ import annotations

from metering.connectors.common import Connector, ConnectorError, Inventory, token_is_sendable
from metering.connectors.datto import DattoConnector
from metering.connectors.folder import FolderConnector
from metering.connectors.json_feed import JsonFeedConnector
from metering.connectors.kaseya_vsa import KaseyaVsaConnector
from metering.connectors.ninjaone import NinjaOneConnector

__all__ = [
    "CONNECTORS",
    "Connector",
    "ConnectorError",
    "DattoConnector",
    "FolderConnector",
    "Inventory",
    "JsonFeedConnector",
    "KaseyaVsaConnector",
    "NinjaOneConnector",
    "connector_for",
    "token_is_sendable",
]

CONNECTORS: dict[str, Connector] = {
    "kaseya-vsa": KaseyaVsaConnector(),
    "datto": DattoConnector(),
    "ninjaone": NinjaOneConnector(),
    "json": JsonFeedConnector(),
    "folder": FolderConnector(),
}


def connector_for(integration) -> Connector:
    try:
        return CONNECTORS[integration.kind]
    except KeyError:
        raise ConnectorError(f"unknown integration kind {integration.kind!r}") from None
