"""The tally sub-commands the sandbox package adds: tally sandbox and tally demo."""
