"""Example projects: Keptn-style files and the code of a demo service."""
