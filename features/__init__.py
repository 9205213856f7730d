"""Windowed feature definitions (pure) and their online and offline materializations."""
