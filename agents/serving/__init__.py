"""Every agent behind the SageMaker inference container contract.

A SageMaker bring-your-own container answers ``GET /ping`` (200 once the model is
loaded) and ``POST /invocations`` on port 8080, with the model's artefact folder in
``/opt/ml/model``. This package builds that server from one loaded model:

- :mod:`.protocol`: the :class:`~.protocol.Predictor` contract (request model, ``predict``,
  an example body, the CSV column order) and the base of every request model;
- :mod:`.scaling`, :mod:`.cost`, :mod:`.anomaly`, :mod:`.security`: one predictor per agent,
  built from the already-loaded model object and reusing the agent's own decision code;
- :mod:`.bodies`: request bodies (JSON, CSV) to validated records, with one-line errors;
- :mod:`.app`: the Starlette application; :mod:`.server`: run it with uvicorn;
- :mod:`.loading`: an artefact folder to a predictor.
"""
