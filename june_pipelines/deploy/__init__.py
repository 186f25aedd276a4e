"""June as a team service: the Dagster instance, the process layout and the code-location image.

- `instance`: DAGSTER_HOME/dagster.yaml from the project's dagster.yaml plus storage (PostgreSQL or
  SQLite) and the run launcher chosen by the environment.
- `services`: the production layout's processes (code server, webserver, daemon), started alone
  (`june deploy code-server|webserver|daemon`, one per container) or together (`june deploy up`,
  `june ui`).
- `image`: the code-location image, built offline (debootstrap + `docker import`).
- `automation`: the sensor that keeps the leaderboard current and the deployment smoke schedule.
"""
