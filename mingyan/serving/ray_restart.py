"""When a dead Ray replica is started again, and when it is given up.

A replica whose actor died (its process killed, its node gone) is replaced by a new actor with the
same Ray options (resources, placement) and the same model, after a back-off: `first_delay_s`, then
doubling up to `max_delay_s`. A replacement that fails to start, or that dies within `stable_s` of
starting, counts as a failure in a row; after `attempts` of them the replica is given up (its
state `dead`, said once in the log and on /health). A replica that ran for `stable_s` or longer
before dying starts again from the first delay.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    attempts: int = 3  # failed starts in a row before a replica is given up (0: never replaced)
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    stable_s: float = 60.0  # a replica that ran this long before dying was not dying at start

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next start, after `failures` failures in a row."""
        return min(self.max_delay_s, self.first_delay_s * (2 ** max(0, failures)))

    def failures_after_death(self, failures: int, ran_s: float) -> int:
        """The failures in a row once a replica that ran `ran_s` seconds has died."""
        return failures + 1 if ran_s < self.stable_s else 0

    def gives_up(self, failures: int) -> bool:
        return failures >= self.attempts
