"""Integrations, each an optional extra imported only when used:

- :mod:`lanterna.sdk.integrations.langchain`: a LangChain ``CallbackHandler``;
- :mod:`lanterna.sdk.integrations.openai`: a drop-in for the ``openai`` package.
"""
