"""The spot market: spot prices and spot availability as step functions of time.

Simulated time is seconds from ``t = 0`` (the start of the run). Prices are US
dollars per hour; costs are US dollars.

- :mod:`sim.market.steps`: what both step functions share (validated, read-only
  arrays of change times starting at 0.0);
- :mod:`sim.market.prices`: :class:`~sim.market.prices.PriceSeries` (a price step
  function with exact cost integrals), the spot price history CSV reader and its replay;
- :mod:`sim.market.price_model`: the seeded mean-reverting price model calibrated on
  such a history;
- :mod:`sim.market.availability`: :class:`~sim.market.availability.AvailabilitySeries`
  (whether spot capacity can be had in one AZ) from Can't-Be-Late traces, their replay
  per AZ, and which nodes a reclaim hits.

Import each name from the module that defines it.
"""
