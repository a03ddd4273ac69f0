"""Pipelines: one set of component YAML files, run locally node by node or submitted to Azure ML.

definitions (the @dsl.pipeline wiring), components (the YAML catalog), graph (a PipelineJob as
nodes), runner and reuse (the local runner), contract and environments (the checks), publish and
aml_client (validate, register, submit, schedule), commands (``refinery pipeline``).
"""
