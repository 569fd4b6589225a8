"""Tests of the policy engine, the default policy, re-grading, waivers and their commands."""
