"""The face of tally: the command line, its sub-commands and the process sessions they start."""
