"""Reconcile loops that converge actual state toward the recorded intent."""
