"""Actions: what each flow and command does with the domain inside a step's transaction (and the orphan repair)."""
