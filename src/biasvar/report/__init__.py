"""The report: seaborn figures and the generated README (stage ``plot``)."""
