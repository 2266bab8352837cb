"""The dependency-graph checks of plan writes live in `plansmith_server.graph`, the one
graph module (shared with scheduling and planning); this name stays for the domain's
existing imports."""

from plansmith_server.graph import (
    CONTAINS,
    DEPENDS_ON,
    SUBTASK_OF,
    ScheduleCycle,
    find_schedule_cycle,
    parent_loops,
)

__all__ = [
    "CONTAINS",
    "DEPENDS_ON",
    "SUBTASK_OF",
    "ScheduleCycle",
    "find_schedule_cycle",
    "parent_loops",
]
