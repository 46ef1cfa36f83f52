"""When and on which thread: the dispatcher, its worker, the schedule, events and status."""
