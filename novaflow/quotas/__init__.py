"""The account's capacity as novaflow sees it: quotas per instance type (and other capacities), what a job needs of
them, and what to do when AWS refuses a job for capacity."""
