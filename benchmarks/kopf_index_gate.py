"""What Kopf's index readiness gate costs at startup, alone, in process (no cluster).

While Kopf lists a resource that has index handlers, it makes a toggle for each object it lists
and drops it once the object is indexed; every object's handlers then wait until all toggles are
dropped (``ToggleSet.wait_for``). Each toggle made or dropped wakes every waiting object
(``Condition.notify_all``), so the gate's CPU grows with the square of the objects listed. This
replays exactly that with Kopf's own ``ToggleSet`` and prints the CPU seconds per size, which the
scale benchmark's startup times at a thousand projects and ten thousand runs follow.

    .venv/bin/python benchmarks/kopf_index_gate.py 1000 2000 4000
"""

from __future__ import annotations

import argparse
import asyncio
import time

from kopf._cogs.aiokits import aiotoggles  # not re-exported by kopf: the gate's own type


async def gate_cpu_seconds(objects: int) -> float:
    toggles = aiotoggles.ToggleSet(all)
    listed = await toggles.make_toggle(name="resource listed")  # off until the listing ends
    started = time.process_time()

    async def one_object(indexed: aiotoggles.Toggle) -> None:
        await toggles.drop_toggle(indexed)
        await toggles.wait_for(True)  # its handlers wait until every object is indexed

    waiting = []
    for index in range(objects):
        toggle = await toggles.make_toggle(name=str(index))
        waiting.append(asyncio.create_task(one_object(toggle)))
        await asyncio.sleep(0)  # the object is picked up while the listing goes on
    await toggles.drop_toggle(listed)
    await asyncio.gather(*waiting)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("sizes", type=int, nargs="+", help="objects listed")
    for objects in parser.parse_args().sizes:
        print(f"{objects:6d} objects listed: {asyncio.run(gate_cpu_seconds(objects)):7.2f} s CPU in the gate")


if __name__ == "__main__":
    main()
