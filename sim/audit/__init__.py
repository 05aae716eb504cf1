"""CloudTrail-shaped audit events: benign principals with habits, plus attack campaigns.

Domain model
------------
*Principals* are the identities of one AWS account: admins (console + CLI, office
hours, MFA logins), developers (SDK/CLI reads, Lambda deploys), CI/CD roles (Terraform
bursts at any hour, creating and tearing down whole environments), read-only scanners
(a daily burst of Get/List/Describe calls with throttling), application roles running
on instances (secrets, parameters, KMS), AWS service principals and the cluster
autoscaler. Each has *habits*: working hours (UTC), usual networks, user agents and a
weighted set of APIs; benign activity is drawn session by session from those habits.

*Campaigns* are attacks injected on top: an entry followed by techniques of the Stratus
Red Team catalogue, each expanded into its CloudTrail calls. Ground truth stays *beside*
the records, never inside them.

Modules, one job each:

- :mod:`sim.audit.techniques`: the technique catalogue (``attack_techniques.csv``);
- :mod:`sim.audit.vocabulary`: APIs, console pages, user agents and error codes;
- :mod:`sim.audit.principals`: the principal kinds' habits (a declarative table) and the
  account's population;
- :mod:`sim.audit.parameters`: the request parameters of a call, benign or hostile;
- :mod:`sim.audit.generator`: benign sessions and attack campaigns as records + labels;
- :mod:`sim.audit.feed`: the scenario's ``audit:`` section inside a replay;
- :mod:`sim.audit.watch`: the seam to a security watcher, and detection figures.

Import each name from the module that defines it.
"""
