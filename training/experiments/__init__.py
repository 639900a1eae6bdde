"""Experiments that did not make the shipped model, kept runnable for RESULTS.md's rows
(`python3 -m experiments.<name>` from training/). The shipped path is in arpgnet/."""
