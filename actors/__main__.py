"""Actor process entry point: ``python -m streamasr.actors SPEC.json``."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

from streamasr.actors.errors import StreamAsrError
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.spec import ActorSpec

KINDS = {
    "capture": "streamasr.actors.capture.actor",
    "feature": "streamasr.actors.feature.actor",
    "inference": "streamasr.actors.inference.actor",
    "refine": "streamasr.actors.refine.actor",
    "gateway": "streamasr.actors.frontdoors.gateway",
    "wyoming": "streamasr.actors.frontdoors.wyoming",
    "assistant": "streamasr.actors.assistant.actor",
}


def main(argv: list[str] | None = None) -> int:
    """Run the actor described by the spec file; return the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m streamasr.actors SPEC.json", file=sys.stderr)
        return 2
    spec = ActorSpec.from_json(Path(args[0]).read_text())
    logging.basicConfig(
        level=spec.log_level,
        format=f"%(asctime)s {spec.actor_id}[%(process)d] %(levelname)s %(message)s",
    )
    module = importlib.import_module(KINDS[spec.kind])
    runtime = ActorRuntime(spec)
    try:
        module.run(runtime)
    except StreamAsrError as exc:
        logging.getLogger(spec.actor_id).error("%s", exc)
        runtime.error(str(exc))
        return 1
    finally:
        runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
