"""The study schema and dotted-key helpers: plain configuration below every other package.

`orchestrator/` parses study files into these models at the edge; the Ray Tune
adapters in `trainables/` validate the plain-dict form again inside each trial.
Public: `studyspec.schema` (the pydantic models), `studyspec.dotted`.
"""
