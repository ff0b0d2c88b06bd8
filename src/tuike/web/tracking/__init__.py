"""The tracker hot path: /c, /pb, /px.gif."""
