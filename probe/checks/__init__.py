"""One module per kind of target; each turns a MonitorSpec into an Outcome and never raises for a bad target."""
