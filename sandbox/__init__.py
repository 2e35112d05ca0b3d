"""Local gateway sandboxes over real HTTP, and tally demo's world: never imported by production
code."""
