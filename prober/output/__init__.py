"""Renderings of journey results for people (a table) and programs (JSON lines)."""
