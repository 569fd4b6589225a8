"""Read queries for metrics, the API, exports and `cmscan status`, aggregated in SQL.

Every figure here is computed by the database (GROUP BY over hosts in service), so its cost
grows with the number of groups, statuses and rules, not with the fleet. Only the host list,
one host's detail and the export read host rows, and those page or stream.

Definitions shared by every report:
- a host is *in service* until it is retired; retired hosts leave every report;
- a host is *stale* when it has been scanned at least once and its last good result is
  older than the freshness cut-off, or it never had one; a host never scanned is `unknown`,
  not stale;
- a group code that is missing or blank is reported as "unknown".

The modules: `groups` (what every report shares), `figures` (counts per group),
`host_pages` (the host list and one host) and `unpatched` (the export's stream).
"""
