"""Alerts: rules over tenant health signals, alert episodes, silences, maintenance
windows, and notifications by signed webhook and e-mail."""
