"""Tests of `cmscan demo`."""
