"""`cmscan demo`: the whole system on a simulated fleet, in one command."""
