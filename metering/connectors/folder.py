"""The drop folder: the newest CSV file of a folder is the inventory (kind "folder"): the rmm-assets columns,
or an RMM's export as downloaded (metering.rmm_exports, as `import_csv rmm-assets` reads it)."""

from __future__ import annotations

from pathlib import Path

from billing.core.importing import ImportFileError, read_csv
from metering import rmm_exports
from metering.connectors.common import Agents, ConnectorError, Inventory


class FolderConnector:
    """The newest *.csv file of a folder, in the rmm-assets format (import-formats 5.8: agent_id, machine_name,
    organization, group, [os], [last_seen]; extra columns ignored), or a Kaseya VSA, Datto RMM, NinjaOne,
    N-central or ConnectWise Automate export recognised by its header (import-formats 9).

    Newest by modification time (then by name). Hidden files are skipped. Whoever drops files
    should write them under another name and rename them to *.csv when complete (a rename is
    atomic), so a half-copied file is never read.
    """

    def fetch_inventory(self, integration) -> Inventory:
        folder = Path((integration.folder_path or "").strip())
        if not str(folder) or str(folder) == ".":
            raise ConnectorError("no folder is set on the integration")
        try:
            files = [p for p in folder.iterdir() if p.suffix.lower() == ".csv" and not p.name.startswith(".")
                     and p.is_file()]
        except FileNotFoundError:
            raise ConnectorError(f"{folder}: no such folder") from None
        except OSError as exc:
            raise ConnectorError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None
        if not files:
            raise ConnectorError(f"{folder}: no *.csv file to read")
        newest = max(files, key=lambda p: (p.stat().st_mtime_ns, p.name))
        return self.read(newest)

    def read(self, path: Path) -> Inventory:
        try:
            export = rmm_exports.read_export(path)
        except ImportFileError as exc:
            raise ConnectorError(f"{path}: {exc}") from None
        except OSError as exc:
            raise ConnectorError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
        if export is not None:
            return self._export(path, export)
        agents = Agents()
        try:
            with open(path, encoding="utf-8-sig", newline="") as stream:
                header, rows = read_csv(stream)
                agents.kind.check_header(header)
                for number, raw in rows:
                    if "__too_many__" in raw:
                        agents.error(f"row {number}", f"{raw['__too_many__']} cells for {len(header)} columns")
                        continue
                    agents.add_raw(f"row {number}", raw)
        except ImportFileError as exc:
            raise ConnectorError(f"{path}: {exc}") from None
        except OSError as exc:
            raise ConnectorError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
        return agents.result(str(path), announced=None, pages=1)

    @staticmethod
    def _export(path: Path, export) -> Inventory:
        """An RMM's export: each row as the rmm-assets import reads it (its warnings, about cells only
        informative, are not the sync's concern)."""
        agents = Agents()
        try:
            for number, raw in export.rows:
                if "__too_many__" in raw:
                    agents.error(f"row {number}", f"{raw['__too_many__']} cells for {len(export.header)} columns")
                    continue
                read = raw[rmm_exports.ROW]
                if read.errors:
                    for column, reason in read.errors:
                        agents.error(f"row {number}", f"{column}: {reason}")
                    continue
                agents.add(f"row {number}", **read.agent._asdict())
        except ImportFileError as exc:
            raise ConnectorError(f"{path}: {exc}") from None
        return agents.result(f"{path} ({export.fmt.title})", announced=None, pages=1)
