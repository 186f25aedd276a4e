"""Chat gateways (Telegram, Discord) and the Dagster bot sensor."""
