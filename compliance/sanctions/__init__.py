"""Sanctions screening: names matched fuzzily and crypto wallet addresses exactly, against a
list in the FollowTheMoney (OpenSanctions) format. ``core`` is plain Python; ``services``
loads the list and records hits as compliance alerts and cases."""
