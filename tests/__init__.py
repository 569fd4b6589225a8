"""cmscan's test suite: unit tests of pure logic, integration tests against real servers."""
