"""The survey web server: CSAT and NPS forms customers answer in a browser."""
