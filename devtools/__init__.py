"""Local tooling shared by the demo, the tests and the benchmarks: an Astute database and a Xero sandbox."""
