"""The web console: its page, script and style (static/), and the npm packages it uses (assets.py)."""
